// Request ids (--request-id-header): the id a client or a proxy sent is kept when it is
// sane, otherwise the server makes one. The id follows the request into the app's scope
// headers, onto the response, into the access line and into watchdog and cancel reports,
// so one id ties a balancer's log to narwhal's lines about the same request.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

namespace narwhal::asgi {

// An id worth keeping: 1 to max_request_id_size characters, each a letter, a digit or one
// of "-_.:+/=@~". UUIDs, hex ids, base64 and W3C trace ids all pass; anything that could
// break a log line or a header (spaces, quotes, control bytes) does not.
constexpr std::size_t max_request_id_size = 128;
bool sane_request_id(std::string_view id);

// Makes ids unique across processes and restarts without coordination: 32 lowercase hex
// digits, a random 64-bit prefix drawn once per generator, then a counter. Generating one
// is an atomic increment and a formatting loop: no system call per request.
class RequestIdGenerator {
public:
    RequestIdGenerator();  // draws the prefix from the kernel's random source
    explicit RequestIdGenerator(uint64_t prefix);

    static constexpr std::size_t size = 32;
    // Any thread.
    void next(char (&out)[size]);
    std::string next();

private:
    char prefix_[16];  // the prefix's digits, written once
    std::atomic<uint64_t> counter_{0};
};

class RequestHead;

// Gives `head` its request id: the value of the first `name` field (lowercase) when it is
// sane, else a new id from `ids`, which replaces a bad value or is added as a field, so
// the app finds the id under `name` in its scope's headers.
void assign_request_id(RequestHead& head, std::string_view name, RequestIdGenerator& ids);

// How reports name a request: "id 17" or, with a request id, "id 17, request id abc".
std::string request_label(uint64_t id, std::string_view request_id);

}  // namespace narwhal::asgi
