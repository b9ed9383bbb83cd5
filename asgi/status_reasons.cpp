#include "asgi/status_reasons.hpp"

#include <array>

namespace narwhal::asgi {
namespace {

struct Entry {
    int status;
    std::string_view reason;
};

// The IANA HTTP Status Code Registry, RFC 9110 names. Two deliberate departures:
// 418 keeps RFC 2324's "I'm a teapot", which is what apps that send it mean, and
// 306 and 418, registered as "(Unused)", get a phrase without parentheses. Codes
// registered only temporarily are left out.
constexpr Entry registry[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {102, "Processing"},
    {103, "Early Hints"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {203, "Non-Authoritative Information"},
    {204, "No Content"},
    {205, "Reset Content"},
    {206, "Partial Content"},
    {207, "Multi-Status"},
    {208, "Already Reported"},
    {226, "IM Used"},
    {300, "Multiple Choices"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {305, "Use Proxy"},
    {306, "Unused"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {402, "Payment Required"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {407, "Proxy Authentication Required"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {412, "Precondition Failed"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {416, "Range Not Satisfiable"},
    {417, "Expectation Failed"},
    {418, "I'm a teapot"},
    {421, "Misdirected Request"},
    {422, "Unprocessable Content"},
    {423, "Locked"},
    {424, "Failed Dependency"},
    {425, "Too Early"},
    {426, "Upgrade Required"},
    {428, "Precondition Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {451, "Unavailable For Legal Reasons"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
    {506, "Variant Also Negotiates"},
    {507, "Insufficient Storage"},
    {508, "Loop Detected"},
    {510, "Not Extended"},
    {511, "Network Authentication Required"},
};

// Indexed by status - 100, so a status line costs one load rather than a search.
constexpr auto by_status = [] {
    std::array<std::string_view, 500> out{};
    for (const Entry& e : registry)
        out[static_cast<std::size_t>(e.status - 100)] = e.reason;
    return out;
}();

}  // namespace

std::string_view status_reason(int status) noexcept {
    if (status < 100 || status > 599)
        return {};
    return by_status[static_cast<std::size_t>(status - 100)];
}

}  // namespace narwhal::asgi
