// Plain C++ values that cross between the I/O threads and an interpreter thread.
// Nothing here refers to Python: the I/O side fills these, the interpreter side turns
// them into scope dicts and messages.
#pragma once

#include "asgi/pubsub.hpp"
#include "asgi/unique_fd.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace narwhal::asgi {

class Channel;

// One parsed request head. All strings live in `arena_` so a head is two allocations
// however many headers it has.
class RequestHead {
public:
    struct Span {
        uint32_t offset;
        uint32_t size;
    };
    struct Field {
        Span name;  // lowercased
        Span value;
    };

    void clear() {
        arena_.clear();
        fields_.clear();
    }
    // Room for `bytes` of strings: a head's own size bounds what parsing it adds.
    void reserve(std::size_t bytes) { arena_.reserve(bytes); }
    Span add(std::string_view s);
    Span add_lower(std::string_view s);
    void add_field(std::string_view name, std::string_view value) {
        Span n = add_lower(name);
        fields_.push_back({n, add(value)});
    }
    // `name` is lowercase already.
    void add_field_lowered(std::string_view name, std::string_view value) {
        Span n = add(name);
        fields_.push_back({n, add(value)});
    }
    std::string_view view(Span s) const { return {arena_.data() + s.offset, s.size}; }
    const std::vector<Field>& fields() const { return fields_; }

    Span method{};
    Span target{};     // the raw request-target: path plus "?query"
    int version = 11;  // 10 or 11
    bool keep_alive = true;
    bool expect_continue = false;
    bool head_request = false;
    bool websocket = false;  // a valid WebSocket upgrade: the scope type is "websocket"
    Span request_id{};       // --request-id-header's value (asgi/request_id.hpp); empty: none

    std::string_view method_view() const { return view(method); }
    std::string_view target_view() const { return view(target); }
    std::string_view request_id_view() const { return view(request_id); }
    // Points field `i` at a new value (the old bytes stay in the arena, unused).
    void set_value(std::size_t i, std::string_view value) { fields_[i].value = add(value); }

private:
    std::string arena_;
    std::vector<Field> fields_;
};

// What the ASGI `tls` extension reports about a TLS connection, taken once after its
// handshake.
struct TlsInfo {
    std::shared_ptr<const std::string> server_cert;  // PEM, shared by the connections
    std::vector<std::string> client_cert_chain;      // PEM, leaf first; empty: none sent
    std::string client_cert_name;                    // RFC 4514; empty with no chain
    int tls_version = 0;                             // 0x0303 TLS 1.2, 0x0304 TLS 1.3
    int cipher_suite = 0;                            // the IANA number, e.g. 0x1301
};

// The connection-level facts the scope needs: who is talking to whom.
struct Peer {
    std::string client_host;  // empty for Unix sockets
    int client_port = 0;
    std::string server_host;  // for Unix sockets the socket path
    int server_port = 0;      // -1 for Unix sockets (scope "server" gets None as the port)
    // The scope's scheme is https/wss: the connection is TLS, or a trusted proxy said the
    // client's was (X-Forwarded-Proto, Forwarded proto=). tls_info alone says TLS is here.
    bool secure = false;
    std::shared_ptr<const TlsInfo> tls_info;  // set once the handshake is done

    // The client as access log lines name it: "host:port", or "unix".
    std::string client_label() const;
};

// Events flow I/O thread -> interpreter, through the inbox.
struct Event {
    enum class Kind : uint8_t {
        request,     // a new request: head + whatever body arrived with it
        body,        // more request body
        disconnect,  // the client went away (or the connection failed)
        drained,     // outbound bytes fell below the low-water mark
        deadline,    // --timeout-request passed: cancel the request's task
        ws_message,  // a WebSocket message (body; `text` says which kind)
        ws_closed,   // the WebSocket closed (by the peer, a ping timeout, an error): `code`
        shutdown,    // the server is stopping: finish in-flight work and stop the loop
    };
    Kind kind = Kind::request;
    std::shared_ptr<Channel> channel;
    std::unique_ptr<RequestHead> head;  // request only
    std::shared_ptr<const Peer> peer;   // request only
    std::string body;
    bool more_body = false;
    bool text = false;  // ws_message
    int code = 0;       // ws_closed: the close code (1006 when there was no close frame)
};

// Response header fields as the app gave them: names lowercased, values as they are.
using HeaderList = std::vector<std::pair<std::string, std::string>>;

// What a response's headers mean for its framing, decided once where the app's headers
// enter (asgi::ResponseHeaders, response_headers.hpp) so the network layer never parses
// them again. A command built by hand (the interpreter's own 500) states its facts.
struct HeaderFacts {
    bool close = false;       // the app sent "connection: close": no request after this one
    bool connection = false;  // the app sent a connection header: the server adds none
    std::optional<uint64_t> content_length;  // the app's declared Content-Length
};

// Commands flow interpreter -> I/O thread, to the connection that owns the channel.
struct Command {
    enum class Kind : uint8_t {
        start,      // response head (status + headers); may be held until the first body
        body,       // response body bytes; more == false completes the response
        credit,     // the app consumed request body: the connection may read `credit` more bytes
        abort,      // close the connection now (app failed mid-response, or was abandoned)
        release,    // no-op: carries the interpreter's last reference back to the I/O thread
        ws_accept,  // complete the handshake: `body` = subprotocol (may be empty), `headers`
        ws_send,    // one message: `body`, `text`
        ws_close,   // `status` = close code, `body` = reason; before accept: 403
        ws_credit,  // the app took `credit` messages: the socket may be read again
        file,       // http.response.pathsend: the whole body is `file_size` bytes of `file`
        // narwhal.pubsub: carried like the cycle's other messages so they keep its order
        // (a socket that subscribes and then publishes gets its own publication).
        ws_subscribe,    // `body` = the topic
        ws_unsubscribe,  // `body` = the topic
        publish,         // `publication`; taken whatever the request's state
    };
    Kind kind = Kind::body;
    uint64_t request = 0;  // the request this belongs to; stale commands are ignored
    int status = 0;
    bool more = false;
    bool text = false;
    std::size_t credit = 0;
    HeaderList headers;
    // start, and a body command that carries the start (status != 0): about `headers`.
    HeaderFacts facts;
    std::string body;
    // file: the open file, sent from offset 0 (empty when no body goes on the wire, as
    // for HEAD), and the body's length: the app's Content-Length, or the file's size.
    UniqueFd file;
    uint64_t file_size = 0;
    PublicationPtr publication;  // publish
};

}  // namespace narwhal::asgi
