// ws_bench: the WebSocket load client of loadtests/ws_compare.py.
//
//   ws_bench echo      --port P [--host 127.0.0.1] [--path /] --sockets N --seconds S --size B
//   ws_bench broadcast --port P [--host 127.0.0.1] [--path /] --sockets N --seconds S [--size B]
//                      [--interval-ms I | --window W] [--publisher-path /?role=publisher]
//   common: [--warmup W] [--connect-concurrency K] [--connect-timeout T] [--close-timeout T]
//
// One thread, one io_context, every socket asynchronous (Boost.Beast). permessage-deflate
// is never offered. Buffers are sized explicitly: each socket's read buffer holds one
// message (its limit is the message size plus a margin, and it is reserved up front),
// and the masking write buffer is as large as the message (at least 4 KiB).
//
// echo: N sockets, each writes a B-byte text message, waits for the echo (checked byte
// for byte), and repeats. Round-trip latency runs from the write to the end of the read.
//
// broadcast: N subscriber sockets plus one publisher socket on the same path. The
// publisher sends "<seq> <steady-clock ns> xxx..." text messages; every subscriber counts
// what it receives and computes delivery latency = receive time - the embedded timestamp
// (same process, same steady clock). By default the publisher is closed-loop: it sends the
// next message as soon as every subscriber got the previous one (or after --fanout-timeout-ms);
// --window W keeps W messages in flight instead of one (the next goes out when the fan-out of
// any earlier one completed or timed out), so a server that can fan out several messages at
// once shows its throughput, not one message's latency; --interval-ms I sends one every I ms
// (skipped while the previous write is pending). Fan-out latency = publish to the last
// subscriber's receipt. The publisher connects to --publisher-path (default: --path), so an
// app can tell it from the subscribers (e.g. "/?role=publisher") and not send it copies.
//
// Phases: connect all sockets (at most --connect-concurrency handshakes in flight), then
// --warmup seconds of load that are not counted (broadcast: also until every subscriber got
// a message, at most --sync-timeout s), then --seconds measured, then every socket is closed
// (close handshake, at most --close-timeout s). The lines "ws_bench: measure start" and
// "ws_bench: measure end" go to stderr at the window's edges (ws_compare.py reads the
// server's CPU time there); the result is one JSON object on stdout. Exit status 0 if the
// run completed (errors are reported in the JSON), 2 for bad usage, 1 if nothing could run.

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
using error_code = beast::error_code;

namespace {

struct Options {
    std::string mode;
    std::string host = "127.0.0.1";
    std::string path = "/";
    unsigned short port = 0;
    int sockets = 1;
    double seconds = 5;
    double warmup = 1;
    std::size_t size = 0;  // 0: mode default (echo 64, broadcast 64)
    double interval_ms = 0;
    int window = 1;              // broadcast, closed loop: messages in flight
    std::string publisher_path;  // broadcast: empty = path
    int connect_concurrency = 64;
    double connect_timeout = 30;
    double fanout_timeout_ms = 2000;
    double sync_timeout = 10;
    double close_timeout = 5;
};

[[noreturn]] void usage(const char* msg) {
    std::fprintf(stderr,
                 "ws_bench: %s\n"
                 "usage: ws_bench echo|broadcast --port P [--host H] [--path /] [--sockets N]\n"
                 "       [--seconds S] [--size B] [--warmup W] [--interval-ms I | --window W]\n"
                 "       [--publisher-path P]\n"
                 "       [--connect-concurrency K] [--connect-timeout T] [--fanout-timeout-ms T]\n"
                 "       [--sync-timeout T] [--close-timeout T]\n",
                 msg);
    std::exit(2);
}

Options parse(int argc, char** argv) {
    Options o;
    if (argc < 2)
        usage("missing mode");
    o.mode = argv[1];
    if (o.mode != "echo" && o.mode != "broadcast")
        usage("mode must be echo or broadcast");
    for (int i = 2; i < argc; ++i) {
        std::string k = argv[i];
        if (i + 1 >= argc)
            usage(("missing value for " + k).c_str());
        const char* v = argv[++i];
        auto num = [&](double lo) {
            char* end = nullptr;
            double d = std::strtod(v, &end);
            if (end == v || *end != '\0' || !(d >= lo))
                usage(("bad value for " + k).c_str());
            return d;
        };
        if (k == "--host")
            o.host = v;
        else if (k == "--path")
            o.path = v;
        else if (k == "--port")
            o.port = static_cast<unsigned short>(num(1));
        else if (k == "--sockets")
            o.sockets = static_cast<int>(num(1));
        else if (k == "--seconds")
            o.seconds = num(0.001);
        else if (k == "--warmup")
            o.warmup = num(0);
        else if (k == "--size")
            o.size = static_cast<std::size_t>(num(1));
        else if (k == "--interval-ms")
            o.interval_ms = num(0);
        else if (k == "--window")
            o.window = static_cast<int>(num(1));
        else if (k == "--publisher-path")
            o.publisher_path = v;
        else if (k == "--connect-concurrency")
            o.connect_concurrency = static_cast<int>(num(1));
        else if (k == "--connect-timeout")
            o.connect_timeout = num(0.001);
        else if (k == "--fanout-timeout-ms")
            o.fanout_timeout_ms = num(1);
        else if (k == "--sync-timeout")
            o.sync_timeout = num(0);
        else if (k == "--close-timeout")
            o.close_timeout = num(0.001);
        else
            usage(("unknown option " + k).c_str());
    }
    if (o.port == 0)
        usage("--port is required");
    if (o.size == 0)
        o.size = 64;
    if (o.window > 1 && o.interval_ms > 0)
        usage("--window and --interval-ms exclude each other");
    if (o.window > 1 << 14)
        usage("--window is at most 16384");  // far below the ring of tracked fan-outs
    if (o.publisher_path.empty())
        o.publisher_path = o.path;
    return o;
}

// The soft descriptor limit must cover every socket; raise it toward the hard limit.
void ensure_descriptors(std::size_t sockets) {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = static_cast<rlim_t>(sockets) + 64;
    if (rl.rlim_cur >= want)
        return;
    rlimit raised = rl;
    raised.rlim_cur = rl.rlim_max == RLIM_INFINITY ? want : std::min(want, rl.rlim_max);
    ::setrlimit(RLIMIT_NOFILE, &raised);
    ::getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < want)
        std::fprintf(stderr, "ws_bench: descriptor limit %llu is below %llu; connects will fail\n",
                     static_cast<unsigned long long>(rl.rlim_cur),
                     static_cast<unsigned long long>(want));
}

double seconds_between(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
}

double micros(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

// Nearest-rank percentile of a sorted sample; -1 when empty (printed as null).
double percentile(const std::vector<double>& sorted, double q) {
    if (sorted.empty())
        return -1;
    auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
    return sorted[std::min(sorted.size() - 1, rank == 0 ? 0 : rank - 1)];
}

std::string json_num(double v) {
    if (v < 0 || !std::isfinite(v))
        return "null";
    char b[64];
    std::snprintf(b, sizeof b, "%.3f", v);
    return b;
}

std::string json_str(const std::string& s) {
    std::string out = "\"";
    for (char ch : s) {
        if (ch == '"' || ch == '\\') {
            out += '\\';
            out += ch;
        } else if (static_cast<unsigned char>(ch) < 0x20) {
            char b[8];
            std::snprintf(b, sizeof b, "\\u%04x", ch);
            out += b;
        } else {
            out += ch;
        }
    }
    return out + "\"";
}

struct Errors {
    uint64_t connect = 0, handshake = 0, read = 0, write = 0, mismatch = 0, close = 0;
    std::string first;
    void note(uint64_t& counter, const char* what, const std::string& detail) {
        ++counter;
        if (first.empty())
            first = std::string(what) + ": " + detail;
    }
    // close errors are reported apart: they happen after the measurement
    uint64_t total() const { return connect + handshake + read + write + mismatch; }
    std::string json() const {
        std::ostringstream o;
        o << "{\"connect\": " << connect << ", \"handshake\": " << handshake
          << ", \"read\": " << read << ", \"write\": " << write << ", \"mismatch\": " << mismatch
          << ", \"close\": " << close << "}";
        return o.str();
    }
};

struct Conn {
    Conn(net::io_context& io, std::size_t read_limit) : ws(io), buf(read_limit) {}
    enum class State { idle, connecting, open, closing, done };
    websocket::stream<tcp::socket> ws;
    beast::flat_buffer buf;
    State state = State::idle;
    bool writing = false;
    Clock::time_point sent;  // echo: when the message in flight was written
    uint64_t received = 0;   // broadcast subscriber: messages received, all phases
};

class Runner {
public:
    explicit Runner(Options o)
        : opt_(std::move(o)), endpoint_(net::ip::make_address(opt_.host), opt_.port),
          host_header_(opt_.host + ":" + std::to_string(opt_.port)), warm_timer_(io_),
          end_timer_(io_), hard_timer_(io_), pub_timer_(io_), fanout_timer_(io_) {
        broadcast_ = opt_.mode == "broadcast";
        if (broadcast_)
            opt_.size = std::max<std::size_t>(opt_.size, kHeaderLen + 1);
        payload_.assign(opt_.size, 'x');
        const std::size_t total = static_cast<std::size_t>(opt_.sockets) + (broadcast_ ? 1 : 0);
        // one message plus a margin; a larger message is an error (read fails)
        const std::size_t read_limit = opt_.size + 1024;
        conns_.reserve(total);
        for (std::size_t i = 0; i < total; ++i) {
            conns_.push_back(std::make_unique<Conn>(io_, read_limit));
            conns_.back()->buf.reserve(opt_.size + 64);
        }
        if (broadcast_)
            ring_.resize(kRing);
    }

    int run() {
        deadline(warm_timer_, opt_.connect_timeout, [this] { connect_timed_out(); });
        const int first = std::min<int>(opt_.connect_concurrency, static_cast<int>(conns_.size()));
        for (int i = 0; i < first; ++i)
            connect_next();
        io_.run();
        report();
        return connected_ == 0 ? 1 : 0;
    }

private:
    static constexpr std::size_t kHeaderLen = 42;  // "%020llu %020llu " = seq, ns
    static constexpr std::size_t kRing = 1 << 16;  // fan-outs tracked at once (by seq)

    struct Pending {
        uint64_t seq = 0;
        Clock::time_point sent;
        int remaining = 0;
        bool measured = false;  // published inside the measurement window
        bool open = false;      // closed loop: holds a place in the window until done or timed out
    };

    template <class F> void deadline(net::steady_timer& t, double secs, F f) {
        t.expires_after(
            std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(secs)));
        t.async_wait([f](error_code ec) {
            if (!ec)
                f();
        });
    }

    Conn* publisher() { return broadcast_ ? conns_.back().get() : nullptr; }

    // ---------------------------------------------------------------- connect

    void connect_next() {
        if (next_connect_ >= conns_.size() || phase_ != Phase::connecting)
            return;
        Conn& c = *conns_[next_connect_++];
        c.state = Conn::State::connecting;
        c.ws.next_layer().async_connect(endpoint_,
                                        [this, &c](error_code ec) { on_connect(c, ec); });
    }

    void on_connect(Conn& c, error_code ec) {
        if (phase_ != Phase::connecting)
            return;  // given up at --connect-timeout (counted there)
        if (ec) {
            errors_.note(errors_.connect, "connect", ec.message());
            return connect_finished(c, false);
        }
        c.ws.next_layer().set_option(tcp::no_delay(true), ec);
        websocket::permessage_deflate pmd;  // explicit: never offer compression
        pmd.client_enable = false;
        pmd.server_enable = false;
        c.ws.set_option(pmd);
        c.ws.auto_fragment(false);
        c.ws.read_message_max(opt_.size + 1024);
        c.ws.write_buffer_bytes(std::max<std::size_t>(opt_.size, 4096));
        c.ws.text(true);
        c.ws.set_option(websocket::stream_base::decorator(
            [](websocket::request_type& req) { req.set(http::field::user_agent, "ws_bench"); }));
        const std::string& path = &c == publisher() ? opt_.publisher_path : opt_.path;
        c.ws.async_handshake(host_header_, path, [this, &c](error_code ec) {
            if (phase_ != Phase::connecting)
                return;
            if (ec) {
                errors_.note(errors_.handshake, "handshake", ec.message());
                return connect_finished(c, false);
            }
            connect_finished(c, true);
        });
    }

    void connect_finished(Conn& c, bool ok) {
        c.state = ok ? Conn::State::open : Conn::State::done;
        if (ok)
            ++connected_;
        if (++connects_done_ == conns_.size())
            all_connected();
        else
            connect_next();
    }

    void connect_timed_out() {
        if (phase_ != Phase::connecting)
            return;
        for (auto& c : conns_) {
            if (c->state == Conn::State::idle || c->state == Conn::State::connecting) {
                errors_.note(errors_.connect, "connect", "not connected within --connect-timeout");
                c->state = Conn::State::done;
                error_code ignored;
                c->ws.next_layer().close(ignored);
            }
        }
        all_connected();
    }

    void all_connected() {
        warm_timer_.cancel();
        phase_ = Phase::warmup;
        connect_seconds_ = seconds_between(start_, Clock::now());
        if (connected_ == 0)
            return stop_all();
        if (broadcast_) {
            Conn* pub = publisher();
            publisher_ok_ = pub->state == Conn::State::open;
            if (!publisher_ok_) {
                errors_.note(errors_.connect, "publisher", "publisher socket did not connect");
                return stop_all();
            }
            for (std::size_t i = 0; i + 1 < conns_.size(); ++i)
                if (conns_[i]->state == Conn::State::open) {
                    ++live_subs_;
                    sub_read(*conns_[i]);
                }
            pub_read();
            warm_start_ = Clock::now();
            if (opt_.interval_ms > 0) {
                pub_tick();
            } else {
                publish();
                sweep();
            }
            sync_check();
        } else {
            for (auto& c : conns_)
                if (c->state == Conn::State::open)
                    echo_send(*c);
            if (opt_.warmup > 0)
                deadline(warm_timer_, opt_.warmup, [this] { begin_measuring(); });
            else
                begin_measuring();
        }
    }

    // ---------------------------------------------------------------- phases

    void begin_measuring() {
        if (phase_ != Phase::warmup)
            return;
        phase_ = Phase::measuring;
        measure_start_ = Clock::now();
        std::fprintf(stderr, "ws_bench: measure start\n");
        std::fflush(stderr);
        deadline(end_timer_, opt_.seconds, [this] { end_measuring(); });
    }

    void end_measuring() { stop_all(); }

    // Ends the measurement (also early, when the publisher fails), closes every open socket
    // (echo sockets close when their round trip completes, the publisher when its write
    // completes), and gives up on stragglers after --close-timeout.
    void stop_all() {
        if (phase_ == Phase::stopping)
            return;
        if (phase_ == Phase::measuring) {
            measure_end_ = Clock::now();
            measured_ = true;
            std::fprintf(stderr, "ws_bench: measure end\n");
            std::fflush(stderr);
        }
        phase_ = Phase::stopping;
        warm_timer_.cancel();
        pub_timer_.cancel();
        fanout_timer_.cancel();
        deadline(hard_timer_, opt_.close_timeout, [this] { io_.stop(); });
        for (auto& c : conns_) {
            if (c->state != Conn::State::open)
                continue;
            if (broadcast_ && !c->writing)
                close(*c);
        }
        check_done();
    }

    void close(Conn& c) {
        if (c.state != Conn::State::open)
            return;
        c.state = Conn::State::closing;
        c.ws.async_close(websocket::close_code::normal, [this, &c](error_code ec) {
            if (ec && ec != websocket::error::closed && ec != net::error::operation_aborted)
                errors_.note(errors_.close, "close", ec.message());
            c.state = Conn::State::done;
            error_code ignored;
            c.ws.next_layer().close(ignored);
            check_done();
        });
    }

    void fail(Conn& c, uint64_t& counter, const char* what, error_code ec) {
        if (c.state == Conn::State::done || c.state == Conn::State::closing)
            return;  // a closing socket is finished by its close handler
        const bool expected = phase_ == Phase::stopping;
        if (!expected)
            errors_.note(counter, what, ec.message());
        c.state = Conn::State::done;
        error_code ignored;
        c.ws.next_layer().close(ignored);
        if (!expected && broadcast_ && &c != publisher())
            --live_subs_;
        if (!expected && broadcast_ && &c == publisher())
            return stop_all();
        check_done();
    }

    void check_done() {
        if (phase_ != Phase::stopping)
            return;
        for (auto& c : conns_)
            if (c->state == Conn::State::open || c->state == Conn::State::closing)
                return;
        io_.stop();
    }

    // ---------------------------------------------------------------- echo

    void echo_send(Conn& c) {
        c.sent = Clock::now();
        c.ws.async_write(net::buffer(payload_), [this, &c](error_code ec, std::size_t) {
            if (ec)
                return fail(c, errors_.write, "write", ec);
            c.ws.async_read(c.buf, [this, &c](error_code ec, std::size_t n) { on_echo(c, ec, n); });
        });
    }

    void on_echo(Conn& c, error_code ec, std::size_t n) {
        const auto now = Clock::now();
        if (ec)
            return fail(c, errors_.read, "read", ec);
        if (n != payload_.size() || !c.ws.got_text() ||
            std::memcmp(c.buf.data().data(), payload_.data(), n) != 0)
            errors_.note(errors_.mismatch, "mismatch", "echo differs from the message sent");
        c.buf.consume(c.buf.size());
        if (phase_ == Phase::measuring) {
            ++round_trips_;
            latencies_.push_back(micros(now - c.sent));
        }
        if (phase_ == Phase::stopping)
            return close(c);
        echo_send(c);
    }

    // ---------------------------------------------------------------- broadcast

    void sync_check() {
        // Measure once the warm-up is over and every subscriber got a message (the app
        // registers a socket around its accept, so the first messages may miss late ones).
        if (phase_ != Phase::warmup)
            return;
        const double t = seconds_between(warm_start_, Clock::now());
        if (t >= opt_.warmup && (synced_ >= live_subs_ || t >= opt_.warmup + opt_.sync_timeout)) {
            synced_at_start_ = synced_;
            return begin_measuring();
        }
        deadline(warm_timer_, 0.01, [this] { sync_check(); });
    }

    bool closed_loop() const { return opt_.interval_ms <= 0; }

    void publish() {
        Conn& p = *publisher();
        if (phase_ == Phase::stopping || p.state != Conn::State::open || p.writing)
            return;
        if (closed_loop() && in_flight_ >= opt_.window)
            return;
        const uint64_t seq = ++seq_;
        const auto now = Clock::now();
        const auto ns =
            std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch());
        char head[kHeaderLen + 1];
        std::snprintf(head, sizeof head, "%020llu %020llu ", static_cast<unsigned long long>(seq),
                      static_cast<unsigned long long>(ns.count()));
        std::memcpy(payload_.data(), head, kHeaderLen);
        Pending& slot = ring_[seq % kRing];
        if (slot.open)
            release(slot, true);  // not finished a whole ring later: as good as timed out
        slot = Pending{seq, now, live_subs_, phase_ == Phase::measuring, closed_loop()};
        if (slot.open)
            ++in_flight_;
        if (phase_ == Phase::measuring)
            ++published_;
        p.writing = true;
        p.ws.async_write(net::buffer(payload_), [this, &p](error_code ec, std::size_t) {
            p.writing = false;
            if (ec)
                return fail(p, errors_.write, "publisher write", ec);
            if (phase_ == Phase::stopping)
                return close(p);
            if (closed_loop())
                publish();  // a place in the window is free (also if the fan-out beat this handler)
        });
    }

    // A message leaves the window: its fan-out completed, or it timed out.
    void release(Pending& slot, bool timed_out) {
        slot.open = false;
        --in_flight_;
        if (timed_out)
            ++fanout_timeouts_;
    }

    // Closed loop: every 10 ms, messages whose fan-out took longer than --fanout-timeout-ms
    // leave the window (a subscriber that died or a message the server dropped must not stall
    // the publisher). Messages go out in sequence order, so the scan stops at the first open
    // message still within its time; oldest_open_ skips the finished ones for good.
    void sweep() {
        if (phase_ == Phase::stopping)
            return;
        const auto limit = std::chrono::duration_cast<Clock::duration>(
            std::chrono::duration<double, std::milli>(opt_.fanout_timeout_ms));
        const auto now = Clock::now();
        bool freed = false;
        for (; oldest_open_ <= seq_; ++oldest_open_) {
            Pending& slot = ring_[oldest_open_ % kRing];
            if (slot.seq != oldest_open_ || !slot.open)
                continue;
            if (now - slot.sent < limit)
                break;
            release(slot, true);
            freed = true;
        }
        if (freed)
            publish();
        deadline(fanout_timer_, 0.01, [this] { sweep(); });
    }

    void pub_tick() {
        if (phase_ == Phase::stopping)
            return;
        if (publisher()->writing)
            ++skipped_ticks_;
        else
            publish();
        deadline(pub_timer_, opt_.interval_ms / 1000.0, [this] { pub_tick(); });
    }

    void pub_read() {
        Conn& p = *publisher();
        p.ws.async_read(p.buf, [this, &p](error_code ec, std::size_t) {
            if (ec)
                return fail(p, errors_.read, "publisher read", ec);
            ++publisher_received_;  // the app should not echo to the sender
            p.buf.consume(p.buf.size());
            pub_read();
        });
    }

    void sub_read(Conn& c) {
        c.ws.async_read(c.buf, [this, &c](error_code ec, std::size_t n) {
            const auto now = Clock::now();
            if (ec)
                return fail(c, errors_.read, "subscriber read", ec);
            on_delivery(c, now, n);
            c.buf.consume(c.buf.size());
            sub_read(c);  // also while closing: the read consumes frames until the close reply
        });
    }

    void on_delivery(Conn& c, Clock::time_point now, std::size_t n) {
        const char* d = static_cast<const char*>(c.buf.data().data());
        unsigned long long seq = 0, ns = 0;
        if (n != payload_.size() || std::from_chars(d, d + 20, seq).ec != std::errc{} ||
            std::from_chars(d + 21, d + 41, ns).ec != std::errc{}) {
            errors_.note(errors_.mismatch, "mismatch", "unexpected broadcast payload");
            return;
        }
        if (c.received++ == 0)
            ++synced_;
        if (phase_ == Phase::measuring) {
            ++deliveries_;
            const auto sent = Clock::time_point(std::chrono::nanoseconds(ns));
            latencies_.push_back(micros(now - sent));
        }
        Pending& slot = ring_[seq % kRing];
        if (slot.seq != seq || slot.remaining <= 0)
            return;
        if (--slot.remaining > 0)
            return;
        if (slot.measured && phase_ == Phase::measuring)
            fanouts_.push_back(micros(now - slot.sent));
        if (slot.open) {
            release(slot, false);
            if (!publisher()->writing)
                net::post(io_, [this] { publish(); });
        }
    }

    // ---------------------------------------------------------------- report

    void report() {
        const double secs = measured_ ? seconds_between(measure_start_, measure_end_) : 0;
        std::sort(latencies_.begin(), latencies_.end());
        std::sort(fanouts_.begin(), fanouts_.end());
        std::ostringstream o;
        o << "{\"mode\": \"" << opt_.mode << "\", \"sockets\": " << opt_.sockets
          << ", \"connected\": " << connected_ - (publisher_ok_ ? 1 : 0)
          << ", \"size\": " << opt_.size << ", \"warmup_s\": " << json_num(opt_.warmup)
          << ", \"connect_s\": " << json_num(connect_seconds_)
          << ", \"seconds\": " << json_num(secs)
          << ", \"measured\": " << (measured_ ? "true" : "false");
        if (broadcast_) {
            o << ", \"interval_ms\": " << json_num(opt_.interval_ms)
              << ", \"window\": " << (closed_loop() ? opt_.window : 0)
              << ", \"publisher_connected\": " << (publisher_ok_ ? "true" : "false")
              << ", \"synced\": " << synced_at_start_ << ", \"published\": " << published_
              << ", \"publishes_per_s\": " << json_num(secs > 0 ? published_ / secs : -1)
              << ", \"deliveries\": " << deliveries_
              << ", \"deliveries_per_s\": " << json_num(secs > 0 ? deliveries_ / secs : -1)
              << ", \"p50_us\": " << json_num(percentile(latencies_, 0.50))
              << ", \"p99_us\": " << json_num(percentile(latencies_, 0.99))
              << ", \"max_us\": " << json_num(latencies_.empty() ? -1 : latencies_.back())
              << ", \"fanout_p50_us\": " << json_num(percentile(fanouts_, 0.50))
              << ", \"fanout_p99_us\": " << json_num(percentile(fanouts_, 0.99))
              << ", \"fanout_timeouts\": " << fanout_timeouts_
              << ", \"skipped_ticks\": " << skipped_ticks_
              << ", \"publisher_received\": " << publisher_received_;
        } else {
            o << ", \"round_trips\": " << round_trips_
              << ", \"rps\": " << json_num(secs > 0 ? round_trips_ / secs : -1)
              << ", \"p50_us\": " << json_num(percentile(latencies_, 0.50))
              << ", \"p99_us\": " << json_num(percentile(latencies_, 0.99))
              << ", \"max_us\": " << json_num(latencies_.empty() ? -1 : latencies_.back());
        }
        o << ", \"errors\": " << errors_.total() << ", \"error_detail\": " << errors_.json()
          << ", \"first_error\": " << (errors_.first.empty() ? "null" : json_str(errors_.first))
          << "}";
        std::printf("%s\n", o.str().c_str());
        std::fflush(stdout);
    }

    enum class Phase { connecting, warmup, measuring, stopping };

    Options opt_;
    net::io_context io_{1};
    tcp::endpoint endpoint_;
    std::string host_header_;
    bool broadcast_ = false;
    std::string payload_;
    std::vector<std::unique_ptr<Conn>> conns_;
    net::steady_timer warm_timer_, end_timer_, hard_timer_, pub_timer_, fanout_timer_;
    Phase phase_ = Phase::connecting;
    Clock::time_point start_ = Clock::now(), warm_start_, measure_start_, measure_end_;
    bool measured_ = false;
    double connect_seconds_ = -1;
    std::size_t next_connect_ = 0, connects_done_ = 0;
    int connected_ = 0;
    Errors errors_;
    std::vector<double> latencies_;  // µs: echo round trips, or broadcast deliveries
    uint64_t round_trips_ = 0;
    // broadcast
    bool publisher_ok_ = false;
    std::vector<Pending> ring_;
    std::vector<double> fanouts_;  // µs: publish to the last subscriber's receipt
    int live_subs_ = 0, synced_ = 0, synced_at_start_ = 0;
    int in_flight_ = 0;         // closed loop: open messages (at most --window)
    uint64_t oldest_open_ = 1;  // closed loop: no message before this seq is open
    uint64_t seq_ = 0, published_ = 0, deliveries_ = 0, fanout_timeouts_ = 0, skipped_ticks_ = 0,
             publisher_received_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
    Options opt = parse(argc, argv);
    ensure_descriptors(static_cast<std::size_t>(opt.sockets) + 1);
    try {
        Runner runner(std::move(opt));
        return runner.run();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ws_bench: %s\n", e.what());
        return 1;
    }
}
