#include "server/write_queue.hpp"

#include "catch.hpp"

#include <string>
#include <string_view>

using narwhal::server::WriteQueue;

namespace {
std::string joined(const std::vector<boost::asio::const_buffer>& buffers) {
    std::string out;
    for (const auto& b : buffers)
        out.append(static_cast<const char*>(b.data()), b.size());
    return out;
}
}  // namespace

TEST_CASE("write_queue: pieces queued together leave in one write", "[write_queue]") {
    WriteQueue q;
    CHECK_FALSE(q.waiting());
    CHECK_FALSE(q.writing());
    q.push("HTTP/1.1 100 Continue\r\n\r\n");
    q.tail().append("head");  // joins the last piece
    q.tail().append("+body");
    q.count_app_bytes(4);
    CHECK(q.waiting());
    const auto& buffers = q.begin_write();
    CHECK(buffers.size() == 1);
    CHECK(joined(buffers) == "HTTP/1.1 100 Continue\r\n\r\nhead+body");
    CHECK(q.writing());
    CHECK_FALSE(q.waiting());
    CHECK(q.end_write() == 4);
    CHECK_FALSE(q.writing());
}

TEST_CASE("write_queue: what is queued during a write waits for the next one", "[write_queue]") {
    WriteQueue q;
    q.tail() = "first";
    q.count_app_bytes(5);
    const auto& first = q.begin_write();
    CHECK(joined(first) == "first");
    // While in flight: new pieces and their app bytes belong to the next write.
    q.tail() = "second";  // a fresh piece, not the one in flight
    q.push("third");
    q.count_app_bytes(11);
    CHECK(q.waiting());
    CHECK(joined(first) == "first");  // the buffers in flight are untouched
    CHECK(q.end_write() == 5);
    const auto& next = q.begin_write();
    CHECK(next.size() == 2);
    CHECK(joined(next) == "secondthird");
    CHECK(q.end_write() == 11);
    CHECK_FALSE(q.waiting());
}

TEST_CASE("write_queue: a write with no app bytes counts none", "[write_queue]") {
    WriteQueue q;
    q.push("HTTP/1.1 400 Bad Request\r\n\r\n");
    q.begin_write();
    CHECK(q.end_write() == 0);
}
