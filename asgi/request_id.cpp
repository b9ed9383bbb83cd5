#include "asgi/request_id.hpp"

#include "asgi/events.hpp"

#include <fmt/format.h>

#include <sys/random.h>

#include <chrono>
#include <cstring>

namespace narwhal::asgi {

bool sane_request_id(std::string_view id) {
    if (id.empty() || id.size() > max_request_id_size)
        return false;
    for (char c : id) {
        const bool alnum =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && std::string_view("-_.:+/=@~").find(c) == std::string_view::npos)
            return false;
    }
    return true;
}

namespace {
uint64_t random_prefix() {
    uint64_t v = 0;
    if (::getrandom(&v, sizeof v, GRND_NONBLOCK) == static_cast<ssize_t>(sizeof v))
        return v;
    // No entropy yet (early boot): the clock still separates processes started apart.
    return static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count()) ^
           (static_cast<uint64_t>(::getpid()) << 32);
}

// Two digits per step: this runs for every request without an id.
void put_hex(char* out, uint64_t v) {
    constexpr char digits[] = "0123456789abcdef";
    for (int i = 14; i >= 0; i -= 2, v >>= 8) {
        out[i] = digits[(v >> 4) & 0xf];
        out[i + 1] = digits[v & 0xf];
    }
}
}  // namespace

RequestIdGenerator::RequestIdGenerator() : RequestIdGenerator(random_prefix()) {}

RequestIdGenerator::RequestIdGenerator(uint64_t prefix) { put_hex(prefix_, prefix); }

void RequestIdGenerator::next(char (&out)[size]) {
    std::memcpy(out, prefix_, sizeof prefix_);
    put_hex(out + 16, counter_.fetch_add(1, std::memory_order_relaxed));
}

std::string RequestIdGenerator::next() {
    char buf[size];
    next(buf);
    return {buf, size};
}

void assign_request_id(RequestHead& head, std::string_view name, RequestIdGenerator& ids) {
    const auto& fields = head.fields();
    for (std::size_t i = 0; i < fields.size(); ++i) {
        if (head.view(fields[i].name) != name)
            continue;
        if (sane_request_id(head.view(fields[i].value))) {
            head.request_id = fields[i].value;
        } else {
            char id[RequestIdGenerator::size];
            ids.next(id);
            head.set_value(i, {id, sizeof id});
            head.request_id = head.fields()[i].value;
        }
        return;
    }
    char id[RequestIdGenerator::size];
    ids.next(id);
    head.add_field_lowered(name, {id, sizeof id});
    head.request_id = head.fields().back().value;
}

std::string request_label(uint64_t id, std::string_view request_id) {
    if (request_id.empty())
        return fmt::format("id {}", id);
    return fmt::format("id {}, request id {}", id, request_id);
}

}  // namespace narwhal::asgi
