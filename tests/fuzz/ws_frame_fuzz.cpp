// libFuzzer target for the WebSocket frame path: the bytes a client sends after a completed
// handshake, read by a server-side Beast websocket::stream the way WsSession reads them
// (read_message_max, permessage-deflate server_enable, reads into a flat_buffer), with each
// message echoed back so that pings, pongs, closes and the deflate encoder run too. The
// socket is Beast's test::stream (header-only); the client side is a second test::stream
// that only collects, and drops, what the server writes. Run: make fuzz.
//
// Input: one configuration byte, then the client's bytes.
//   bit 0     the server enables permessage-deflate (server_enable, as --ws-deflate does)
//   bit 1     the client offers permessage-deflate in the upgrade request
//   bits 2-3  which parameters the offer carries (see kOffers)
//   bit 4     asynchronous reads and writes (async_accept/async_read/async_write, as
//             WsSession does) instead of synchronous ones
//   bits 5-6  how many bytes one read_some on the socket returns: all, 1, 3 or 100
//   bit 7     read_message_max 1 KiB instead of 64 KiB
#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/websocket/stream.hpp>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
namespace bhttp = boost::beast::http;

namespace {

using Ws = websocket::stream<beast::test::stream>;

constexpr const char* kOffers[] = {
    "permessage-deflate",
    "permessage-deflate; client_max_window_bits",
    "permessage-deflate; client_no_context_takeover; server_max_window_bits=10",
    // Two offers: the server takes the first it can accept.
    "permessage-deflate; server_no_context_takeover; client_max_window_bits=9, permessage-deflate",
};

constexpr std::size_t kReadSizes[] = {0, 1, 3, 100};

// Strict UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF): what
// Beast must have checked before it hands out a text message.
bool valid_utf8(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            ++i;
            continue;
        }
        std::size_t len;
        std::uint32_t cp;
        std::uint32_t min;
        if ((c & 0xE0) == 0xC0) {
            len = 2, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (s.size() - i < len)
            return false;
        for (std::size_t k = 1; k < len; ++k) {
            auto cc = static_cast<unsigned char>(s[i + k]);
            if ((cc & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (cc & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += len;
    }
    return true;
}

// Runs the handlers of the operation just started: with the input already in the test
// stream, its eof set and no timers, run() returns once that operation has completed.
void run(net::io_context& ioc) {
    ioc.restart();
    ioc.run();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
    if (size < 1)
        return 0;
    const std::uint8_t cfg = data[0];
    const bool server_deflate = cfg & 0x01;
    const bool client_offer = cfg & 0x02;
    const char* offer = kOffers[(cfg >> 2) & 0x03];
    const bool async = cfg & 0x10;
    const std::size_t read_size = kReadSizes[(cfg >> 5) & 0x03];
    const std::size_t message_max = (cfg & 0x80) ? 1024 : 64 * 1024;
    std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);

    net::io_context ioc;
    beast::test::stream client(ioc);
    Ws ws(ioc);
    ws.next_layer().connect(client);
    if (read_size)
        ws.next_layer().read_size(read_size);

    // As WsSession::do_accept sets it up (no timers: they would make runs depend on time).
    ws.read_message_max(message_max);
    websocket::stream_base::timeout opt{};
    opt.handshake_timeout = websocket::stream_base::none();
    opt.idle_timeout = websocket::stream_base::none();
    opt.keep_alive_pings = false;
    ws.set_option(opt);
    if (server_deflate) {
        websocket::permessage_deflate pmd;
        pmd.server_enable = true;
        ws.set_option(pmd);
    }

    // The handshake request WsSession rebuilds from the parsed head.
    bhttp::request<bhttp::empty_body> req;
    req.method(bhttp::verb::get);
    req.target("/ws");
    req.version(11);
    req.set(bhttp::field::host, "localhost");
    req.set(bhttp::field::upgrade, "websocket");
    req.set(bhttp::field::connection, "Upgrade");
    req.set(bhttp::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
    req.set(bhttp::field::sec_websocket_version, "13");
    if (client_offer)
        req.set(bhttp::field::sec_websocket_extensions, offer);

    beast::error_code ec;
    if (async) {
        bool done = false;
        ws.async_accept(req, [&](beast::error_code e) { ec = e, done = true; });
        run(ioc);
        if (!done)
            std::abort();
    } else {
        ws.accept(req, ec);
    }
    if (ec)
        std::abort();  // a fixed, valid upgrade request
    client.clear();    // the 101 response

    // Everything the client sends, then the client's end of the stream: a read past the
    // input sees eof instead of blocking.
    ws.next_layer().append(in);
    ws.next_layer().close_remote();

    // Bounded like WsSession::read_buffer_: Beast 1.74 sizes a compressed frame's read from
    // its claimed length (boostorg/beast#2879); the bound makes that a read error.
    beast::flat_buffer buffer(message_max + 64 * 1024);
    // Every message costs at least one frame header: this bounds the loop by the input.
    for (std::size_t messages = 0; messages <= in.size(); ++messages) {
        std::size_t n = 0;
        if (async) {
            bool done = false;
            ws.async_read(buffer, [&](beast::error_code e, std::size_t bytes) {
                ec = e, n = bytes, done = true;
            });
            run(ioc);
            if (!done)
                std::abort();
        } else {
            n = ws.read(buffer, ec);
        }
        client.clear();  // pongs and close replies the read wrote
        if (ec) {
            // What WsSession::on_read looks at.
            if (ec == websocket::error::closed)
                (void)ws.reason().code;
            return 0;
        }
        if (buffer.size() > message_max || n > buffer.size())
            std::abort();

        // As WsSession::on_read takes the message out.
        std::string body = beast::buffers_to_string(buffer.data());
        bool text = ws.got_text();
        if (text && !valid_utf8(body))
            std::abort();  // Beast let an invalid text message through
        buffer.consume(buffer.size());
        if (buffer.capacity() > 16 * 1024)
            buffer.shrink_to_fit();

        // The echo, as WsSession::do_write sends an app's message.
        ws.text(text);
        std::size_t written = 0;
        if (async) {
            bool done = false;
            ws.async_write(net::buffer(body), [&](beast::error_code e, std::size_t bytes) {
                ec = e, written = bytes, done = true;
            });
            run(ioc);
            if (!done)
                std::abort();
        } else {
            written = ws.write(net::buffer(body), ec);
        }
        client.clear();
        if (ec)
            return 0;
        if (written != body.size())
            std::abort();
    }
    std::abort();  // more messages than input bytes
}
