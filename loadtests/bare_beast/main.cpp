// bare_beast: the lower-bound reference for CPU per request in loadtests/.
// A single-threaded Boost.Beast HTTP/1.1 keep-alive server that answers every
// request with 200 "Hello, world!" and runs no Python at all.
//
//   usage: bare_beast [host] [port]     (defaults: 127.0.0.1 8000)

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

constexpr std::size_t kReadBufferLimit = 16 * 1024;  // explicit flat_buffer size: one request head
constexpr char kBody[] = "Hello, world!";

class Session : public std::enable_shared_from_this<Session> {
public:
    explicit Session(tcp::socket socket) : socket_(std::move(socket)) {}

    void start() { read(); }

private:
    void read() {
        req_ = {};
        http::async_read(
            socket_, buffer_, req_,
            [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
    }

    void on_read(beast::error_code ec) {
        if (ec) {  // end_of_stream, reset, parse error: just close
            close();
            return;
        }
        res_ = {};
        res_.version(req_.version());
        res_.result(http::status::ok);
        res_.set(http::field::server, "bare-beast");
        res_.set(http::field::content_type, "text/plain");
        res_.keep_alive(req_.keep_alive());
        res_.body() = kBody;
        res_.prepare_payload();
        http::async_write(socket_, res_,
                          [self = shared_from_this()](beast::error_code ec, std::size_t) {
                              if (ec || !self->res_.keep_alive()) {
                                  self->close();
                                  return;
                              }
                              self->read();
                          });
    }

    void close() {
        beast::error_code ignored;
        socket_.shutdown(tcp::socket::shutdown_send, ignored);
        socket_.close(ignored);
    }

    tcp::socket socket_;
    beast::flat_buffer buffer_{kReadBufferLimit};
    http::request<http::string_body> req_;
    http::response<http::string_body> res_;
};

void accept(tcp::acceptor& acceptor) {
    acceptor.async_accept([&acceptor](beast::error_code ec, tcp::socket socket) {
        if (!ec) {
            socket.set_option(tcp::no_delay(true), ec);
            std::make_shared<Session>(std::move(socket))->start();
        }
        if (acceptor.is_open())
            accept(acceptor);
    });
}

}  // namespace

int main(int argc, char** argv) {
    const std::string host = argc > 1 ? argv[1] : "127.0.0.1";
    const auto port = static_cast<unsigned short>(argc > 2 ? std::atoi(argv[2]) : 8000);
    try {
        net::io_context ioc{1};  // single thread: concurrency hint 1
        tcp::acceptor acceptor{ioc, {net::ip::make_address(host), port}, /*reuse_address=*/true};
        accept(acceptor);
        net::signal_set signals{ioc, SIGINT, SIGTERM};
        signals.async_wait([&](beast::error_code, int) { ioc.stop(); });
        std::cout << "bare_beast listening on " << host << ":" << port << std::endl;
        ioc.run();
    } catch (const std::exception& e) {
        std::cerr << "bare_beast: " << e.what() << std::endl;
        return 1;
    }
    return 0;
}
