#include "server/ws_transport.hpp"

#include "catch.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/websocket/stream.hpp>

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

using narwhal::server::accepts_deflate;
using narwhal::server::drop_library_server_line;
using narwhal::server::encode_frame_head;
using narwhal::server::max_frame_head;
using narwhal::server::WsTransport;

namespace net = boost::asio;
namespace bhttp = boost::beast::http;
namespace websocket = boost::beast::websocket;

namespace {
const std::string beast_line = std::string("Server: ") + BOOST_BEAST_VERSION_STRING + "\r\n";

// A Beast server stream through WsTransport on one end of a local socket pair; the
// other end is `peer`, for the test to read and write raw bytes.
websocket::stream<WsTransport> server_end(net::io_context& ioc,
                                          net::local::stream_protocol::socket& peer) {
    net::local::stream_protocol::socket ours(ioc);
    net::local::connect_pair(ours, peer);
    WsTransport::Socket generic(ioc, net::generic::stream_protocol(AF_UNIX, SOCK_STREAM),
                                ours.release());
    return websocket::stream<WsTransport>(narwhal::server::Stream(std::move(generic)));
}

// A client's WebSocket upgrade request for `target` on `host`.
bhttp::request<bhttp::empty_body> upgrade_request(const char* target, const char* host) {
    bhttp::request<bhttp::empty_body> req{bhttp::verb::get, target, 11};
    req.set(bhttp::field::host, host);
    req.set(bhttp::field::upgrade, "websocket");
    req.set(bhttp::field::connection, "Upgrade");
    req.set(bhttp::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
    req.set(bhttp::field::sec_websocket_version, "13");
    return req;
}

// The bytes a Beast handshake through WsTransport puts on the wire, with `decorate`
// applied to the response.
template <class Decorate> std::string handshake_bytes(Decorate decorate) {
    net::io_context ioc;
    net::local::stream_protocol::socket peer(ioc);
    websocket::stream<WsTransport> ws = server_end(ioc, peer);
    ws.set_option(websocket::stream_base::decorator(decorate));
    boost::beast::error_code accepted = net::error::would_block;
    const auto req = upgrade_request("/chat", "example.com");
    ws.async_accept(req, [&](boost::beast::error_code ec) { accepted = ec; });
    std::string out;
    net::async_read_until(peer, net::dynamic_buffer(out), "\r\n\r\n",
                          [](boost::beast::error_code, std::size_t) {});
    ioc.run();
    CHECK_FALSE(accepted);
    CHECK(ws.is_open());
    return out;
}
}  // namespace

TEST_CASE("ws_transport: Beast's own Server line is dropped from a head", "[ws_transport]") {
    SECTION("among other fields") {
        std::string head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n" +
                           beast_line + "Connection: upgrade\r\n\r\n";
        drop_library_server_line(head);
        CHECK(head == "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: "
                      "upgrade\r\n\r\n");
    }
    SECTION("as the last field") {
        std::string head = "HTTP/1.1 101 Switching Protocols\r\n" + beast_line + "\r\n";
        drop_library_server_line(head);
        CHECK(head == "HTTP/1.1 101 Switching Protocols\r\n\r\n");
    }
    SECTION("any other Server field stays, and so does the body") {
        const std::string head =
            "HTTP/1.1 101 Switching Protocols\r\nServer: narwhal\r\n\r\n" + beast_line;
        std::string copy = head;
        drop_library_server_line(copy);
        CHECK(copy == head);
    }
}

TEST_CASE("ws_transport: a real handshake carries only the decorated fields", "[ws_transport]") {
    SECTION("no Server field decorated: none on the wire") {
        std::string out = handshake_bytes([](websocket::response_type&) {});
        CHECK(out.rfind("HTTP/1.1 101 ", 0) == 0);
        CHECK(out.find("Server") == std::string::npos);
        CHECK(out.find("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n") !=
              std::string::npos);
    }
    SECTION("ours decorated: exactly that one") {
        std::string out = handshake_bytes(
            [](websocket::response_type& res) { res.set(bhttp::field::server, "narwhal"); });
        CHECK(out.find("Server: narwhal\r\n") != std::string::npos);
        CHECK(out.find("Beast") == std::string::npos);
    }
}

namespace {
std::vector<int> head_of(bool text, std::size_t size) {
    uint8_t out[max_frame_head];
    std::size_t n = encode_frame_head(out, text, size);
    return {out, out + n};
}
}  // namespace

TEST_CASE("frame heads: FIN, opcode and the three length forms of RFC 6455") {
    CHECK(head_of(true, 0) == std::vector<int>{0x81, 0});
    CHECK(head_of(true, 125) == std::vector<int>{0x81, 125});
    CHECK(head_of(false, 126) == std::vector<int>{0x82, 126, 0, 126});
    CHECK(head_of(true, 65535) == std::vector<int>{0x81, 126, 0xFF, 0xFF});
    CHECK(head_of(false, 65536) == std::vector<int>{0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0});
    CHECK(head_of(true, 0x0102030405ull) == std::vector<int>{0x81, 127, 0, 0, 0, 1, 2, 3, 4, 5});
}

TEST_CASE("the handshake response says whether permessage-deflate was accepted") {
    const std::string plain = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                              "Connection: upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n";
    CHECK_FALSE(accepts_deflate(plain));
    const std::string deflate = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                "Sec-WebSocket-Extensions: permessage-deflate; "
                                "client_max_window_bits=15\r\n\r\n";
    CHECK(accepts_deflate(deflate));
    // Another field naming it does not count.
    CHECK_FALSE(accepts_deflate("HTTP/1.1 101 OK\r\nX-Note: permessage-deflate\r\n\r\n"));
}

namespace {
// Server frames from `bytes`: (opcode, payload) each, unmasked and unfragmented.
std::vector<std::pair<int, std::string>> frames_of(const std::string& bytes) {
    std::vector<std::pair<int, std::string>> out;
    std::size_t i = 0;
    while (i + 2 <= bytes.size()) {
        int op = static_cast<uint8_t>(bytes[i]) & 0x0F;
        std::size_t n = static_cast<uint8_t>(bytes[i + 1]) & 0x7F, at = i + 2;
        if (n == 126) {
            n = (static_cast<uint8_t>(bytes[i + 2]) << 8) | static_cast<uint8_t>(bytes[i + 3]);
            at = i + 4;
        }
        out.emplace_back(op, bytes.substr(at, n));
        i = at + n;
    }
    return out;
}
}  // namespace

TEST_CASE("ws_transport: the session's frames and Beast's control frames never interleave",
          "[ws_transport]") {
    const bool frames_first = GENERATE(true, false);
    net::io_context ioc;
    net::local::stream_protocol::socket peer(ioc);
    websocket::stream<WsTransport> ws = server_end(ioc, peer);
    const auto req = upgrade_request("/", "h");
    ws.async_accept(req, [](boost::beast::error_code ec) { REQUIRE_FALSE(ec); });
    std::string head;
    net::async_read_until(peer, net::dynamic_buffer(head), "\r\n\r\n",
                          [](boost::beast::error_code, std::size_t) {});
    ioc.run();
    ioc.restart();
    CHECK_FALSE(ws.next_layer().deflate());
    head.erase(0, head.find("\r\n\r\n") + 4);  // whatever came after the head

    // Two frames of 300 bytes (4-byte headers) in one gather write, and a ping.
    const std::string a(300, 'a'), b(300, 'b');
    std::array<std::array<uint8_t, max_frame_head>, 2> heads{};
    std::array<net::const_buffer, 4> bufs{
        net::buffer(heads[0].data(), encode_frame_head(heads[0].data(), true, a.size())),
        net::buffer(a),
        net::buffer(heads[1].data(), encode_frame_head(heads[1].data(), false, b.size())),
        net::buffer(b)};
    int done = 0;
    auto write_frames = [&] {
        ws.next_layer().async_write_frames(std::span<const net::const_buffer>(bufs),
                                           [&](boost::beast::error_code ec, std::size_t n) {
                                               CHECK_FALSE(ec);
                                               CHECK(n == 608);
                                               ++done;
                                           });
    };
    auto ping = [&] {
        ws.async_ping("p", [&](boost::beast::error_code ec) {
            CHECK_FALSE(ec);
            ++done;
        });
    };
    if (frames_first) {
        write_frames();
        ping();
    } else {
        ping();
        write_frames();
    }
    ioc.run();
    CHECK(done == 2);
    std::string wire = head;
    std::array<char, 4096> chunk;
    boost::beast::error_code ec;
    std::size_t n = peer.read_some(net::buffer(chunk), ec);
    wire.append(chunk.data(), n);
    auto frames = frames_of(wire);
    REQUIRE(frames.size() == 3);
    std::vector<std::pair<int, std::string>> data;
    for (auto& f : frames)
        if (f.first != 0x9)
            data.push_back(f);
        else
            CHECK(f.second == "p");
    CHECK(data == std::vector<std::pair<int, std::string>>{{0x1, a}, {0x2, b}});
}
