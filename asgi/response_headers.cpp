#include "asgi/response_headers.hpp"

#include "asgi/errors.hpp"
#include "asgi/http_syntax.hpp"

#include <string>

namespace narwhal::asgi {

namespace {
constexpr std::string_view trim_ows(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

bool value_is_safe(std::string_view value) {
    for (char c : value)
        if (c == '\r' || c == '\n' || c == '\0')
            return false;
    return true;
}
}  // namespace

std::optional<uint64_t> parse_content_length(std::string_view value) {
    value = trim_ows(value);
    if (value.empty())
        return std::nullopt;
    // Up to 19 digits cannot overflow 64 bits; only longer values need the checks.
    const bool may_overflow = value.size() > 19;
    uint64_t n = 0;
    for (char c : value) {
        if (c < '0' || c > '9')
            return std::nullopt;  // a sign, a list, a space inside, ...
        const auto digit = static_cast<unsigned>(c - '0');
        if (!may_overflow)
            n = n * 10 + digit;
        else if (__builtin_mul_overflow(n, 10u, &n) || __builtin_add_overflow(n, digit, &n))
            return std::nullopt;
    }
    return n;
}

bool lists_close(std::string_view value) {
    while (!value.empty()) {
        auto comma = value.find(',');
        if (syntax::iequals(trim_ows(value.substr(0, comma)), "close"))
            return true;
        if (comma == std::string_view::npos)
            break;
        value.remove_prefix(comma + 1);
    }
    return false;
}

std::optional<std::string_view> ResponseHeaders::add(std::string_view name,
                                                     std::string_view value) {
    if (!syntax::is_token(name))
        return errors::invalid_header_name;
    if (!value_is_safe(value))
        return errors::invalid_header_value;
    std::string lowered(name);
    for (char& c : lowered)
        c = syntax::to_lower(c);
    if (lowered == "content-length") {
        auto length = parse_content_length(value);
        if (!length)
            return errors::invalid_content_length;
        if (facts_.content_length) {
            if (*facts_.content_length != *length)
                return errors::conflicting_content_length;
            return std::nullopt;  // the same again: one on the wire is enough (RFC 9110 8.6)
        }
        facts_.content_length = length;
    } else if (lowered == "connection") {
        facts_.connection = true;
        facts_.close = facts_.close || lists_close(value);
    }
    headers_.emplace_back(std::move(lowered), std::string(value));
    return std::nullopt;
}

void ResponseHeaders::finish(Command& cmd) {
    cmd.headers = std::move(headers_);
    cmd.facts = facts_;
    headers_.clear();
}

}  // namespace narwhal::asgi
