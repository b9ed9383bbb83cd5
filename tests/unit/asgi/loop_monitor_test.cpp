#include "asgi/loop_monitor.hpp"

#include "catch.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>

using narwhal::asgi::LoopMonitor;

TEST_CASE("LoopMonitor: before the first beat nothing is overdue", "[asgi][loop_monitor]") {
    LoopMonitor m;
    CHECK(m.last_beat_ns() == 0);
    CHECK(m.overdue_ns(0) == 0);
    CHECK(m.overdue_ns(LoopMonitor::now_ns()) == 0);
    CHECK(m.thread_ident.load() == 0);
}

TEST_CASE("LoopMonitor: beat sets last beat and due time", "[asgi][loop_monitor]") {
    LoopMonitor m;
    m.beat(1'000, 500);
    CHECK(m.last_beat_ns() == 1'000);
    CHECK(m.overdue_ns(1'200) == -300);  // early: negative
    CHECK(m.overdue_ns(1'500) == 0);     // exactly due
    CHECK(m.overdue_ns(2'000) == 500);

    m.beat(3'000, 1'000);
    CHECK(m.last_beat_ns() == 3'000);
    CHECK(m.overdue_ns(2'000) == -2'000);
    CHECK(m.overdue_ns(4'250) == 250);
}

TEST_CASE("LoopMonitor: stop disables the overdue check until the next beat",
          "[asgi][loop_monitor]") {
    LoopMonitor m;
    m.beat(1'000, 500);
    m.stop();
    CHECK(m.overdue_ns(1'000'000'000) == 0);
    CHECK(m.last_beat_ns() == 1'000);  // stop keeps the last beat
    m.beat(2'000, 500);
    CHECK(m.overdue_ns(3'000) == 500);
}

TEST_CASE("LoopMonitor: now_ns is a monotonic clock", "[asgi][loop_monitor]") {
    int64_t a = LoopMonitor::now_ns();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    int64_t b = LoopMonitor::now_ns();
    CHECK(a > 0);
    CHECK(b - a >= 2'000'000);
}

TEST_CASE("LoopMonitor: step_begin / step_end / current_step", "[asgi][loop_monitor]") {
    LoopMonitor m;
    auto s = m.current_step();
    CHECK(s.id == 0);
    CHECK(s.line.empty());

    m.step_begin(42, "GET /slow HTTP/1.1");
    s = m.current_step();
    CHECK(s.id == 42);
    CHECK(s.line == "GET /slow HTTP/1.1");
    // Reading does not consume.
    CHECK(m.current_step().line == "GET /slow HTTP/1.1");

    m.step_end();
    s = m.current_step();
    CHECK(s.id == 0);
    CHECK(s.line.empty());

    // A shorter line after a longer one leaves nothing behind.
    m.step_begin(1, "POST /a/very/long/path/indeed HTTP/1.1");
    m.step_begin(2, "GET / HTTP/1.1");
    s = m.current_step();
    CHECK(s.id == 2);
    CHECK(s.line == "GET / HTTP/1.1");

    m.step_begin(3, "");
    s = m.current_step();
    CHECK(s.id == 3);
    CHECK(s.line.empty());
}

TEST_CASE("LoopMonitor: long request lines are truncated to 255 characters",
          "[asgi][loop_monitor]") {
    LoopMonitor m;
    std::string exact(255, 'x');
    m.step_begin(1, exact);
    CHECK(m.current_step().line == exact);

    std::string one_more = "GET /" + std::string(251, 'y');  // 256 chars
    REQUIRE(one_more.size() == 256);
    m.step_begin(2, one_more);
    auto s = m.current_step();
    CHECK(s.id == 2);
    CHECK(s.line == one_more.substr(0, 255));

    std::string huge = "GET /" + std::string(10'000, 'z') + " HTTP/1.1";
    m.step_begin(3, huge);
    s = m.current_step();
    CHECK(s.line.size() == 255);
    CHECK(s.line == huge.substr(0, 255));

    // Bytes that are not text survive as they are.
    std::string binary("GET /\0\xff\x01 HTTP/1.1", 18);
    m.step_begin(4, binary);
    CHECK(m.current_step().line == binary);
}

namespace {
// Odd ids get a short line, even ids a long one (at most 234 chars: never truncated), so a
// torn read would mix lengths too.
std::string line_for(uint64_t id) {
    std::string line = "GET /" + std::to_string(id);
    if (id % 2 == 0)
        line += "/" + std::string(100 + id % 100, static_cast<char>('a' + id % 26));
    return line + " HTTP/1.1";
}
}  // namespace

TEST_CASE("LoopMonitor: current_step never sees a torn step", "[asgi][loop_monitor][threads]") {
    LoopMonitor m;
    std::atomic<bool> done{false};
    std::atomic<uint64_t> written{0};

    std::thread writer([&] {
        uint64_t id = 1;
        while (!done.load(std::memory_order_relaxed)) {
            std::string line = line_for(id);
            m.step_begin(id, line);
            // Stay in the step for a microsecond, so the reader sees steps as well as the
            // gaps between them.
            auto step_until = std::chrono::steady_clock::now() + std::chrono::microseconds(1);
            while (std::chrono::steady_clock::now() < step_until) {
            }
            m.step_end();
            ++id;
        }
        written = id - 1;
    });

    long reads = 0, idle = 0, busy = 0, torn = 0;
    uint64_t last_id = 0;
    bool backwards = false;
    std::string first_bad;
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
    while (std::chrono::steady_clock::now() < until || reads < 10'000) {
        auto s = m.current_step();
        ++reads;
        bool ok;
        if (s.id == 0) {
            ok = s.line.empty();
            ++idle;
        } else {
            ok = s.line == line_for(s.id);
            ++busy;
            if (s.id < last_id)
                backwards = true;
            last_id = s.id;
        }
        if (!ok && torn++ == 0)
            first_bad = std::to_string(s.id) + ": '" + s.line + "'";
    }
    done = true;
    writer.join();

    INFO("reads " << reads << ", idle " << idle << ", in a step " << busy << ", steps written "
                  << written.load() << ", first torn: " << first_bad);
    CHECK(torn == 0);
    CHECK_FALSE(backwards);
    CHECK(written.load() > 0);
    CHECK(busy > 0);  // the check saw real steps, not just idle ones
}
