#include "server/read_buffer.hpp"

#include "catch.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/write.hpp>

#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>

using narwhal::server::ReadBuffer;
namespace net = boost::asio;

namespace {

// Copies `bytes` into the region prepare() returns and commits them: a read that got them.
void append(ReadBuffer& buf, std::string_view bytes) {
    auto region = buf.prepare(bytes.size());
    REQUIRE(region.size() == bytes.size());
    std::memcpy(region.data(), bytes.data(), bytes.size());
    buf.commit(bytes.size());
}

const char* storage_of(const ReadBuffer& buf) { return buf.data().data(); }

}  // namespace

TEST_CASE("ReadBuffer: starts empty, without memory", "[server][read_buffer]") {
    ReadBuffer buf;
    CHECK(buf.size() == 0);
    CHECK(buf.capacity() == 0);
    CHECK(buf.data().empty());
}

TEST_CASE("ReadBuffer: prepare gives room after the data, commit makes it data",
          "[server][read_buffer]") {
    ReadBuffer buf;
    auto region = buf.prepare(8);
    CHECK(region.size() == 8);
    CHECK(buf.capacity() >= 8);
    CHECK(buf.size() == 0);  // prepared bytes are not data yet
    std::memcpy(region.data(), "hello", 5);
    buf.commit(5);
    CHECK(buf.data() == "hello");

    auto more = buf.prepare(3);
    CHECK(static_cast<const char*>(more.data()) == buf.data().data() + 5);
    std::memcpy(more.data(), "!!!", 3);
    buf.commit(3);
    CHECK(buf.data() == "hello!!!");
}

TEST_CASE("ReadBuffer: consume never moves the remaining bytes", "[server][read_buffer]") {
    ReadBuffer buf;
    append(buf, "GET / HTTP/1.1\r\n\r\nnext");
    const char* first = storage_of(buf);
    std::size_t cap = buf.capacity();

    buf.consume(4);
    CHECK(buf.data() == "/ HTTP/1.1\r\n\r\nnext");
    CHECK(storage_of(buf) == first + 4);  // same bytes, same place
    buf.consume(14);
    CHECK(buf.data() == "next");
    CHECK(storage_of(buf) == first + 18);
    CHECK(buf.capacity() == cap);

    SECTION("consuming more than there is empties it") {
        buf.consume(100);
        CHECK(buf.size() == 0);
        CHECK(buf.data().empty());
        CHECK(buf.capacity() == cap);
    }
}

TEST_CASE("ReadBuffer: prepare compacts consumed bytes away before growing",
          "[server][read_buffer]") {
    ReadBuffer buf;
    append(buf, std::string(60, 'a') + "bcde");
    std::size_t cap = buf.capacity();
    const char* start = storage_of(buf);
    buf.consume(60);
    REQUIRE(storage_of(buf) == start + 60);

    SECTION("the live bytes move to the front when that makes room") {
        auto region = buf.prepare(cap - 4);
        CHECK(buf.capacity() == cap);
        CHECK(storage_of(buf) == start);
        CHECK(buf.data() == "bcde");
        CHECK(region.size() == cap - 4);
        CHECK(static_cast<const char*>(region.data()) == start + 4);
    }
    SECTION("it grows when even the compacted bytes leave too little room") {
        auto region = buf.prepare(cap);
        CHECK(buf.capacity() >= 4 + cap);
        CHECK(buf.capacity() >= 2 * cap);  // at least doubles: few reallocations
        CHECK(buf.data() == "bcde");
        CHECK(region.size() == cap);
        CHECK(static_cast<const char*>(region.data()) == storage_of(buf) + 4);
    }
    SECTION("nothing moves while nothing was consumed") {
        ReadBuffer fresh;
        append(fresh, "xy");
        const char* at = storage_of(fresh);
        fresh.prepare(fresh.capacity() - 2);
        CHECK(storage_of(fresh) == at);
        CHECK(fresh.data() == "xy");
    }
}

TEST_CASE("ReadBuffer: data stays intact across prepare", "[server][read_buffer]") {
    ReadBuffer buf;
    std::string expected;
    // Many small reads with parsing in between: every byte not consumed survives every
    // compaction and every growth, in order.
    for (int i = 0; i < 200; ++i) {
        std::string piece = std::to_string(i) + ",";
        append(buf, piece);
        expected += piece;
        if (i % 3 == 0) {
            buf.consume(2);
            expected.erase(0, 2);
        }
        REQUIRE(buf.data() == expected);
    }
    // A big read after all that.
    std::string big(100'000, 'z');
    append(buf, big);
    expected += big;
    CHECK(buf.data() == expected);
}

TEST_CASE("ReadBuffer: shrink gives the memory back only when empty", "[server][read_buffer]") {
    ReadBuffer buf;
    append(buf, "keep me");
    std::size_t cap = buf.capacity();
    buf.consume(5);

    buf.shrink();  // "me" is still unread: nothing changes
    CHECK(buf.data() == "me");
    CHECK(buf.capacity() == cap);

    buf.consume(2);
    buf.shrink();
    CHECK(buf.capacity() == 0);
    CHECK(buf.size() == 0);

    // Usable again afterwards.
    append(buf, "again");
    CHECK(buf.data() == "again");
}

TEST_CASE("ReadBuffer: clear drops the data and keeps the memory", "[server][read_buffer]") {
    ReadBuffer buf;
    append(buf, "pipelined bytes");
    std::size_t cap = buf.capacity();
    buf.clear();
    CHECK(buf.size() == 0);
    CHECK(buf.capacity() == cap);
    append(buf, "x");
    CHECK(buf.data() == "x");
}

// The reason the type exists: a read into the prepared region is still pending while the
// session parses (consumes) what is already there; the read lands after those bytes, and
// consume() must not have moved them under it.
TEST_CASE("ReadBuffer: a read pending across consume lands after the existing bytes",
          "[server][read_buffer]") {
    net::io_context io;
    net::local::stream_protocol::socket ours(io), peer(io);
    net::local::connect_pair(ours, peer);

    ReadBuffer buf;
    append(buf, "GET /a HTTP/1.1\r\n\r\nGET /b");
    std::size_t got = 0;
    boost::system::error_code read_ec;
    ours.async_read_some(buf.prepare(64), [&](boost::system::error_code ec, std::size_t n) {
        read_ec = ec;
        got = n;
    });

    // The first request is parsed while the read is pending.
    buf.consume(std::string_view("GET /a HTTP/1.1\r\n\r\n").size());
    CHECK(buf.data() == "GET /b");

    std::string rest = " HTTP/1.1\r\n\r\n";
    net::write(peer, net::buffer(rest));
    io.run();
    REQUIRE_FALSE(read_ec);
    REQUIRE(got == rest.size());
    buf.commit(got);
    CHECK(buf.data() == "GET /b HTTP/1.1\r\n\r\n");
}
