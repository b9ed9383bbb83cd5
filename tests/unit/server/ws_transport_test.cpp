#include "server/ws_transport.hpp"

#include "catch.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/websocket/stream.hpp>

#include <string>

using narwhal::server::drop_library_server_line;
using narwhal::server::WsTransport;

namespace net = boost::asio;
namespace bhttp = boost::beast::http;
namespace websocket = boost::beast::websocket;

namespace {
const std::string beast_line = std::string("Server: ") + BOOST_BEAST_VERSION_STRING + "\r\n";

// The bytes a Beast handshake through WsTransport puts on the wire, with `decorate`
// applied to the response.
template <class Decorate> std::string handshake_bytes(Decorate decorate) {
    net::io_context ioc;
    net::local::stream_protocol::socket ours(ioc), peer(ioc);
    net::local::connect_pair(ours, peer);
    WsTransport::Socket generic(ioc, net::generic::stream_protocol(AF_UNIX, SOCK_STREAM),
                                ours.release());
    websocket::stream<WsTransport> ws(narwhal::server::Stream(std::move(generic)));
    ws.set_option(websocket::stream_base::decorator(decorate));
    bhttp::request<bhttp::empty_body> req{bhttp::verb::get, "/chat", 11};
    req.set(bhttp::field::host, "example.com");
    req.set(bhttp::field::upgrade, "websocket");
    req.set(bhttp::field::connection, "Upgrade");
    req.set(bhttp::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
    req.set(bhttp::field::sec_websocket_version, "13");
    boost::beast::error_code accepted = net::error::would_block;
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
