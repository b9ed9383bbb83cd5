#include "asgi/events.hpp"
#include "asgi/request_id.hpp"

#include "catch.hpp"

#include <set>

using namespace narwhal::asgi;

namespace {
std::string_view field(const RequestHead& head, std::string_view name) {
    for (const auto& f : head.fields())
        if (head.view(f.name) == name)
            return head.view(f.value);
    return {};
}
}  // namespace

TEST_CASE("request id: what is sane", "[request_id]") {
    CHECK(sane_request_id("f47ac10b-58cc-4372-a567-0e02b2c3d479"));
    CHECK(sane_request_id("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"));
    CHECK(sane_request_id("YWJj+/="));
    CHECK(sane_request_id(std::string(max_request_id_size, 'a')));
    CHECK_FALSE(sane_request_id(""));
    CHECK_FALSE(sane_request_id(std::string(max_request_id_size + 1, 'a')));
    CHECK_FALSE(sane_request_id("a b"));
    CHECK_FALSE(sane_request_id("a\"b"));
    CHECK_FALSE(sane_request_id("a\tb"));
    CHECK_FALSE(sane_request_id("caf\xc3\xa9"));
}

TEST_CASE("request id: generated ids are 32 hex digits, distinct, prefixed per generator",
          "[request_id]") {
    RequestIdGenerator a(0x0123456789abcdefULL);
    CHECK(a.next() == "0123456789abcdef0000000000000000");
    CHECK(a.next() == "0123456789abcdef0000000000000001");
    RequestIdGenerator b, c;
    std::set<std::string> seen;
    for (int i = 0; i < 1000; ++i) {
        seen.insert(b.next());
        seen.insert(c.next());
    }
    CHECK(seen.size() == 2000);  // two random prefixes: no collisions between processes
    for (const auto& id : seen) {
        REQUIRE(id.size() == 32);
        CHECK(sane_request_id(id));
    }
}

TEST_CASE("request id: a sane id from the request is kept", "[request_id]") {
    RequestIdGenerator ids(1);
    RequestHead head;
    head.add_field("Host", "x");
    head.add_field("X-Request-ID", "abc-123");
    assign_request_id(head, "x-request-id", ids);
    CHECK(head.request_id_view() == "abc-123");
    CHECK(head.fields().size() == 2);
}

TEST_CASE("request id: none sent, one is added as a field", "[request_id]") {
    RequestIdGenerator ids(1);
    RequestHead head;
    head.add_field("Host", "x");
    assign_request_id(head, "x-request-id", ids);
    CHECK(head.request_id_view() == "00000000000000010000000000000000");
    REQUIRE(head.fields().size() == 2);
    CHECK(field(head, "x-request-id") == head.request_id_view());
}

TEST_CASE("request id: an insane id is replaced in place, not duplicated", "[request_id]") {
    RequestIdGenerator ids(2);
    RequestHead head;
    head.add_field("X-Request-Id", "bad id with spaces");
    head.add_field("Accept", "*/*");
    assign_request_id(head, "x-request-id", ids);
    CHECK(head.request_id_view() == "00000000000000020000000000000000");
    CHECK(head.fields().size() == 2);
    CHECK(field(head, "x-request-id") == head.request_id_view());
    CHECK(field(head, "accept") == "*/*");
}

TEST_CASE("request id: reports name it", "[request_id]") {
    CHECK(request_label(17, "") == "id 17");
    CHECK(request_label(17, "abc") == "id 17, request id abc");
}
