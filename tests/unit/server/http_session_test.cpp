// HttpSession through real parts: a connected Unix socket pair (the client end is a
// plain fd), the real Inbox and Admission, and an IoThread whose io_context the test
// runs itself. The test plays the interpreter: it takes events from the inbox and
// answers through the request's Channel. Every wait is a condition with a generous limit.
#include "server/http_session.hpp"

#include "asgi/log.hpp"
#include "server/io_thread.hpp"

#include "catch.hpp"

#include <boost/asio/generic/stream_protocol.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

using narwhal::asgi::Command;
using narwhal::asgi::Event;
using narwhal::asgi::HeaderFacts;
using narwhal::server::HttpSession;
using narwhal::server::IoThread;
using narwhal::server::ServerContext;
namespace nlog = narwhal::log;
using namespace std::chrono_literals;

namespace {

struct Rig {
    IoThread io;
    narwhal::asgi::Inbox inbox{16};
    narwhal::asgi::Admission admission;
    ServerContext ctx;
    std::weak_ptr<HttpSession> session;
    int client = -1;
    std::string received;  // everything the client has read
    bool eof = false;      // the server closed the connection
    std::vector<Event> events;

    explicit Rig(std::size_t concurrency = 1) : admission(concurrency, 4) {
        nlog::configure(nlog::Level::warning, false, false);  // no access lines in test output
        ctx.limits.body_limit = 1 << 20;
        ctx.limits.read_window = 64 * 1024;
        ctx.limits.send_high_water = 64 * 1024;
        ctx.limits.send_low_water = 16 * 1024;
        ctx.defaults.server_header = false;
        ctx.defaults.date_header = false;
        ctx.lanes = {{&inbox, &admission}};
        ctx.stats.connections = 1;  // as the listener counts at accept

        int fds[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
        client = fds[0];
        boost::asio::generic::stream_protocol::socket server_end(
            io.context(), boost::asio::generic::stream_protocol(AF_UNIX, SOCK_STREAM), fds[1]);
        auto peer = std::make_shared<narwhal::asgi::Peer>();
        peer->server_port = -1;
        auto s = std::make_shared<HttpSession>(narwhal::server::Stream(std::move(server_end)), ctx,
                                               io, peer);
        session = s;
        s->start();
    }

    ~Rig() {
        // Let go of everything that holds the session, then let it close and go away
        // before the IoThread does.
        for (auto& ev : events)
            if (ev.channel)
                ev.channel->detach();
        events.clear();
        if (client >= 0)
            ::close(client);
        run_until([&] { return session.expired(); });
        nlog::configure(nlog::Level::info, false, true);
    }

    void send(std::string_view bytes) {
        REQUIRE(::send(client, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
                static_cast<ssize_t>(bytes.size()));
    }

    void pump_client() {
        char buf[4096];
        for (;;) {
            ssize_t n = ::recv(client, buf, sizeof buf, MSG_DONTWAIT);
            if (n > 0) {
                received.append(buf, static_cast<std::size_t>(n));
                continue;
            }
            if (n == 0)
                eof = true;
            return;
        }
    }

    // Runs the connection's handlers until `done()` holds; false after 10 s without.
    template <typename Done> bool run_until(Done done) {
        auto deadline = std::chrono::steady_clock::now() + 10s;
        for (;;) {
            pump_client();
            std::vector<Event> more;
            inbox.take(more, 64);
            for (auto& ev : more)
                events.push_back(std::move(ev));
            if (done())
                return true;
            if (std::chrono::steady_clock::now() > deadline)
                return false;
            io.context().restart();
            io.context().run_one_for(10ms);
        }
    }

    // Runs every handler that is ready, and those they make ready, until none is left:
    // what the client has sent so far has been read.
    void settle() {
        for (int i = 0; i < 1000; ++i) {
            io.context().restart();
            if (io.context().poll() == 0)
                return;
        }
    }

    bool received_contains(std::string_view s) const {
        return received.find(s) != std::string::npos;
    }
};

Command body_command(int status, narwhal::asgi::HeaderList headers, HeaderFacts facts,
                     std::string body, bool more) {
    Command cmd{.kind = Command::Kind::body, .status = status, .more = more};
    cmd.headers = std::move(headers);
    cmd.facts = facts;
    cmd.body = std::move(body);
    return cmd;
}

}  // namespace

TEST_CASE("http_session: a body malformed from its first bytes gives the slot back",
          "[http_session]") {
    Rig rig(1);  // --limit-concurrency 1: a leaked slot would refuse everything after
    rig.send("POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
    REQUIRE(rig.run_until([&] { return rig.eof; }));
    CHECK(rig.received.rfind("HTTP/1.1 400 Bad Request\r\n", 0) == 0);
    CHECK(rig.events.empty());  // the app never heard of it
    CHECK(rig.admission.in_flight() == 0);
}

TEST_CASE("http_session: decided facts frame the response; pipelined requests follow",
          "[http_session]") {
    Rig rig(1);
    rig.send("GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n");
    REQUIRE(rig.run_until([&] { return rig.events.size() == 1; }));
    Event& first = rig.events[0];
    REQUIRE(first.kind == Event::Kind::request);
    CHECK(first.head->target_view() == "/1");
    CHECK_FALSE(first.more_body);

    // The boundary decided: the app declared 2 bytes. The head carries the app's header
    // and no second one.
    first.channel->submit(
        body_command(200, {{"content-length", "2"}}, {.content_length = 2}, "ok", false));
    const std::string response1 = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
    REQUIRE(rig.run_until([&] { return rig.received == response1; }));

    // The second request waits for the only slot, which the first cycle's end frees.
    REQUIRE(rig.run_until([&] { return rig.admission.queued() == 1; }));
    CHECK(rig.events.size() == 1);
    first.channel->detach();
    REQUIRE(rig.run_until([&] { return rig.events.size() == 2; }));
    Event& second = rig.events[1];
    CHECK(second.head->target_view() == "/2");
    second.channel->submit(body_command(204, {}, {}, "", false));
    REQUIRE(rig.run_until([&] { return rig.received_contains("204 No Content"); }));
    CHECK(rig.received == response1 + "HTTP/1.1 204 No Content\r\n\r\n");
    CHECK_FALSE(rig.eof);  // kept alive
}

TEST_CASE("http_session: undecided facts are read from the headers: connection: close",
          "[http_session]") {
    Rig rig;
    rig.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    REQUIRE(rig.run_until([&] { return rig.events.size() == 1; }));
    // As a command built by hand (not through asgi::ResponseHeaders) arrives.
    rig.events[0].channel->submit(
        body_command(500, {{"connection", "close"}}, HeaderFacts{}, "oops", false));
    REQUIRE(rig.run_until([&] { return rig.eof; }));
    CHECK(rig.received ==
          "HTTP/1.1 500 Internal Server Error\r\nconnection: close\r\ncontent-length: 4\r\n"
          "\r\noops");
}

TEST_CASE("http_session: a start alone, then streamed parts, go out chunked", "[http_session]") {
    Rig rig;
    rig.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc");
    REQUIRE(rig.run_until([&] { return rig.events.size() == 1; }));
    Event& req = rig.events[0];
    CHECK(req.body == "abc");
    CHECK_FALSE(req.more_body);
    Command start{.kind = Command::Kind::start, .status = 200};
    start.headers = {{"content-type", "text/plain"}};
    start.facts = {};
    req.channel->submit(std::move(start));
    const std::string head = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n"
                             "transfer-encoding: chunked\r\n\r\n";
    REQUIRE(rig.run_until([&] { return rig.received == head; }));
    req.channel->submit(body_command(0, {}, {}, "hello", true));
    req.channel->submit(body_command(0, {}, {}, "", false));
    REQUIRE(rig.run_until([&] { return rig.received_contains("0\r\n\r\n"); }));
    CHECK(rig.received == head + "5\r\nhello\r\n0\r\n\r\n");
}

TEST_CASE("http_session: commands for another request are stale", "[http_session]") {
    Rig rig;
    rig.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    REQUIRE(rig.run_until([&] { return rig.events.size() == 1; }));
    auto stale = std::make_shared<narwhal::asgi::Channel>(rig.events[0].channel->id() + 1000,
                                                          rig.session.lock());
    stale->submit(body_command(418, {}, {}, "no", false));
    rig.events[0].channel->submit(body_command(200, {}, {}, "yes", false));
    REQUIRE(rig.run_until([&] { return rig.received_contains("yes"); }));
    CHECK(rig.received == "HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nyes");
    stale->detach();
}

TEST_CASE("http_session: bytes that arrive while a request waits for a slot are its body",
          "[http_session]") {
    Rig rig(1);
    // The second request's head comes with the first; its body comes while it is queued
    // behind the first for the only slot (a read is pending then: the disconnect watch).
    rig.send("GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
             "POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n");
    REQUIRE(rig.run_until([&] { return rig.events.size() == 1; }));
    rig.events[0].channel->submit(body_command(200, {}, {}, "1", false));
    REQUIRE(rig.run_until([&] { return rig.admission.queued() == 1; }));
    rig.send("ab\r\n\r");  // would read as a malformed head if parsed as one
    rig.settle();          // ...and the session has read it while the request waits
    CHECK_FALSE(rig.received_contains("400"));
    rig.events[0].channel->detach();
    REQUIRE(rig.run_until([&] { return rig.events.size() == 2; }));
    Event& second = rig.events[1];
    CHECK(second.head->target_view() == "/2");
    CHECK(second.body == "ab\r\n\r");
    CHECK_FALSE(second.more_body);
    CHECK_FALSE(rig.received_contains("400"));
    CHECK_FALSE(rig.eof);
}
