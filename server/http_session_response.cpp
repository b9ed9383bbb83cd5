// HttpSession, the response side: the interpreter's commands for the request in progress
// (start, body, file, credit), the response head they make, and writing what is queued,
// files included (sendfile on plain TCP, pieces through the stream over TLS).
#include "server/http_session.hpp"

#include "asgi/errors.hpp"
#include "asgi/log.hpp"
#include "server/io_thread.hpp"
#include "server/pubsub_hub.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

namespace narwhal::server {

namespace net = boost::asio;

namespace {
// Most bytes of a file sent in one turn of the I/O thread, so one fast client fetching a
// large file cannot hold up every other connection of the thread.
constexpr std::size_t file_turn_size = 1024 * 1024;
// Over TLS a file is read into memory: pieces of this size, each encrypted and written
// before the next is read (at most one piece per connection in memory).
constexpr std::size_t tls_file_piece_size = 256 * 1024;
}  // namespace

// --- commands from the interpreter ------------------------------------------------

void HttpSession::on_command(asgi::Command&& cmd) {
    if (cmd.kind == asgi::Command::Kind::publish)
        return ctx_.pubsub->publish(cmd.publication);  // not about this response
    if (phase_ != Phase::request || cmd.request != request_.id)
        return;  // stale: the connection closed or moved on to another request
    switch (cmd.kind) {
    case asgi::Command::Kind::start: on_start(std::move(cmd)); break;
    case asgi::Command::Kind::body: on_body(std::move(cmd)); break;
    case asgi::Command::Kind::file: on_file(std::move(cmd)); break;
    case asgi::Command::Kind::credit: on_credit(cmd.credit); break;
    case asgi::Command::Kind::abort: close_now(); break;
    case asgi::Command::Kind::release: break;
    case asgi::Command::Kind::ws_accept:
    case asgi::Command::Kind::ws_send:
    case asgi::Command::Kind::ws_close:
    case asgi::Command::Kind::ws_credit:
    case asgi::Command::Kind::ws_subscribe:
    case asgi::Command::Kind::ws_unsubscribe:
    case asgi::Command::Kind::publish: break;  // never sent for an HTTP request
    }
}

void HttpSession::on_start(asgi::Command&& cmd) {
    // A start on its own: no body came with it, so the app is about to stream (or wait);
    // the client gets the head now.
    if (response_.started())
        return;
    response_.start(cmd.status, std::move(cmd.headers), cmd.facts);
    write_head(output_.tail(), 0, true);
    do_write();
}

void HttpSession::on_body(asgi::Command&& cmd) {
    if (cmd.status != 0 && !response_.started())
        response_.start(cmd.status, std::move(cmd.headers), cmd.facts);  // start came along
    if (!response_.started() || response_.done())
        return;
    std::string& out = output_.tail();
    if (!response_.head_written())
        write_head(out, cmd.body.size(), cmd.more);
    record_.bytes_out += cmd.body.size();
    output_.count_app_bytes(response_.append_body(out, std::move(cmd.body), cmd.more));
    do_write();
}

// http.response.pathsend: the whole body is a file. The head (with the file's length
// unless the app gave one) is queued first; the file follows once it has left.
void HttpSession::on_file(asgi::Command&& cmd) {
    if (cmd.status != 0 && !response_.started())
        response_.start(cmd.status, std::move(cmd.headers), cmd.facts);  // start came along
    if (!response_.started() || response_.done() || request_.file)
        return;
    std::string& out = output_.tail();
    if (!response_.head_written())
        write_head(out, cmd.file_size, false, false);
    if (cmd.file && response_.begin_file(out, cmd.file_size)) {
        record_.bytes_out = cmd.file_size;
        request_.file.emplace(std::move(cmd.file), cmd.file_size);
    } else
        response_.end_file(out, 0);  // HEAD, 204, 304 or an empty file: the head says all
    do_write();
}

void HttpSession::on_credit(std::size_t credit) {
    request_.credit += credit;
    if (request_.expect_pending) {
        request_.expect_pending = false;
        if (!response_.started())
            queue_write(request_.version == 10 ? "HTTP/1.0 100 Continue\r\n\r\n"
                                               : "HTTP/1.1 100 Continue\r\n\r\n");
    }
    process();
}

void HttpSession::write_head(std::string& out, std::size_t first_body_size, bool more,
                             bool body_in_out) {
    response_.append_head(out,
                          {.version = request_.version,
                           .head_request = request_.head_request,
                           .keep_alive = request_.keep_alive,
                           .body_done = request_.body_done,
                           .draining = ctx_.draining.load(std::memory_order_relaxed),
                           .request_id = request_id_},
                          first_body_size, more, ctx_.defaults, body_in_out);
    record_.status = response_.status();
}

// --- writing ----------------------------------------------------------------------

void HttpSession::queue_write(std::string&& bytes) {
    output_.push(std::move(bytes));
    do_write();
}

void HttpSession::do_write() {
    if (output_.writing() || file_waiting_ || phase_ == Phase::closed)
        return;
    if (!output_.waiting()) {
        if (request_.file)
            do_send_file();  // the bytes before the file have left
        return;
    }
    net::async_write(
        stream_, output_.begin_write(),
        [self = shared_from_this()](error_code ec, std::size_t n) { self->on_write(ec, n); });
}

void HttpSession::on_write(error_code ec, std::size_t) {
    std::size_t app_bytes = output_.end_write();
    if (phase_ == Phase::closed)
        return;
    if (ec) {
        fail(ec, "write");
        notify_disconnect();
        close_now();
        return;
    }
    if (app_bytes && request_.channel &&
        request_.channel->on_written(app_bytes, ctx_.limits.send_low_water))
        push_event(asgi::Event::Kind::drained);
    if (output_.waiting() || request_.file)
        return do_write();
    on_output_idle();
}

// Everything queued has left: the response may be complete, or the connection closing.
void HttpSession::on_output_idle() {
    if (phase_ == Phase::request && response_.done())
        return finish_request();
    if (phase_ == Phase::closing)
        close_gracefully();
}

// Every byte of the file is out: the response may still have a last chunk to send.
void HttpSession::finish_file() {
    if (wait_ == Wait::send)
        clear_wait();
    const uint64_t size = request_.file->length();
    request_.file.reset();  // closes the file
    // What follows the file: a chunked response's last chunk, nothing otherwise.
    std::string after;
    response_.end_file(after, size);
    if (!after.empty())
        return queue_write(std::move(after));  // its completion ends the response
    on_output_idle();
}

// Over TLS: read a piece of the file and write it like any other bytes; the write's
// completion comes back here for the next piece.
void HttpSession::send_file_piece() {
    std::string piece;
    std::error_code ec;
    switch (request_.file->read_some(piece, tls_file_piece_size, ec)) {
    case FileBody::Progress::done: return finish_file();
    case FileBody::Progress::yield:
    case FileBody::Progress::would_block:
        // The client takes nothing for --timeout-send: it is gone, or stalling on purpose.
        set_wait(Wait::send, ctx_.limits.send);
        return queue_write(std::move(piece));
    case FileBody::Progress::short_file:
        log::warning("{}", asgi::errors::pathsend_file_truncated);
        return close_now();
    case FileBody::Progress::failed:
        log::warning("{} {}", asgi::errors::pathsend_file_unreadable, ec.message());
        notify_disconnect();
        return close_now();
    }
}

// Sends the file while the socket takes it, then waits until the socket is writable
// again: Asio's reactor watches the socket, sendfile(2) moves the bytes.
void HttpSession::do_send_file() {
    if (stream_.is_tls())
        return send_file_piece();
    auto& socket = stream_.socket();
    if (!socket.native_non_blocking()) {
        error_code ec;
        socket.native_non_blocking(true, ec);
        if (ec) {
            fail(ec, "sendfile");
            return close_now();
        }
    }
    std::error_code ec;
    switch (request_.file->send_some(socket.native_handle(), file_turn_size, ec)) {
    case FileBody::Progress::done: return finish_file();
    case FileBody::Progress::would_block:
        // The client takes nothing for --timeout-send: it is gone, or stalling on purpose.
        set_wait(Wait::send, ctx_.limits.send);
        file_waiting_ = true;
        socket.async_wait(Socket::wait_write, [self = shared_from_this()](error_code ec) {
            self->on_send_file_ready(ec);
        });
        return;
    case FileBody::Progress::yield:
        file_waiting_ = true;
        net::post(stream_.get_executor(),
                  [self = shared_from_this()] { self->on_send_file_ready({}); });
        return;
    case FileBody::Progress::short_file:
        // The file shrank after the head promised its length: cutting the connection is
        // the only way left to tell the client its body is incomplete.
        log::warning("{}", asgi::errors::pathsend_file_truncated);
        return close_now();
    case FileBody::Progress::failed:
        fail(error_code(ec.value(), boost::system::system_category()), "sendfile");
        notify_disconnect();
        return close_now();
    }
}

void HttpSession::on_send_file_ready(error_code ec) {
    file_waiting_ = false;
    if (phase_ == Phase::closed || !request_.file)
        return;
    if (ec) {
        fail(ec, "sendfile wait");
        notify_disconnect();
        return close_now();
    }
    do_send_file();
}

}  // namespace narwhal::server
