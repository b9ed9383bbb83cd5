#include "asgi/channel.hpp"
#include "asgi/events.hpp"

#include "catch.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <semaphore>
#include <thread>
#include <utility>
#include <vector>

using narwhal::asgi::Channel;
using narwhal::asgi::Command;
using narwhal::asgi::CommandSink;

namespace {

// Records every submitted command and the reference handed with it.
class FakeSink final : public CommandSink {
public:
    struct Submitted {
        std::shared_ptr<CommandSink> self;
        Command cmd;
    };
    void submit(std::shared_ptr<CommandSink> self_or_null, Command&& cmd) override {
        log.push_back({std::move(self_or_null), std::move(cmd)});
    }
    std::vector<Submitted> log;
};

}  // namespace

TEST_CASE("channel: submit stamps the channel id and forwards without a reference",
          "[asgi][channel]") {
    auto sink = std::make_shared<FakeSink>();
    Channel ch(42, sink);
    CHECK(ch.id() == 42);
    CHECK(ch.attached());

    Command cmd;
    cmd.kind = Command::Kind::start;
    cmd.request = 7;  // whatever the caller left there is overwritten
    cmd.status = 201;
    cmd.headers = {{"content-type", "text/plain"}};
    ch.submit(std::move(cmd));

    Command body;
    body.kind = Command::Kind::body;
    body.body = "hello";
    body.more = true;
    ch.submit(std::move(body));

    REQUIRE(sink->log.size() == 2);
    CHECK(sink->log[0].self == nullptr);
    CHECK(sink->log[0].cmd.kind == Command::Kind::start);
    CHECK(sink->log[0].cmd.request == 42);
    CHECK(sink->log[0].cmd.status == 201);
    REQUIRE(sink->log[0].cmd.headers.size() == 1);
    CHECK(sink->log[0].cmd.headers[0].first == "content-type");
    CHECK(sink->log[1].self == nullptr);
    CHECK(sink->log[1].cmd.kind == Command::Kind::body);
    CHECK(sink->log[1].cmd.request == 42);
    CHECK(sink->log[1].cmd.body == "hello");
    CHECK(sink->log[1].cmd.more);
}

TEST_CASE("channel: detach hands the sink reference back with a release command",
          "[asgi][channel]") {
    auto sink = std::make_shared<FakeSink>();
    std::weak_ptr<FakeSink> weak = sink;
    FakeSink* raw = sink.get();
    auto ch = std::make_shared<Channel>(9, std::move(sink));
    REQUIRE(weak.use_count() == 1);  // only the channel holds it now

    ch->detach();
    CHECK_FALSE(ch->attached());
    REQUIRE(raw->log.size() == 1);
    CHECK(raw->log[0].cmd.kind == Command::Kind::release);
    // The channel's reference moved into the command: it is the only one left.
    CHECK(raw->log[0].self.get() == raw);
    CHECK(weak.use_count() == 1);

    // A second detach does nothing.
    ch->detach();
    CHECK(raw->log.size() == 1);

    // Commands after detach are dropped.
    Command late;
    late.kind = Command::Kind::body;
    late.body = "late";
    ch->submit(std::move(late));
    CHECK(raw->log.size() == 1);

    // Destroying the channel does not keep the sink alive; the handed-back reference
    // does, until the connection's thread drops it.
    ch.reset();
    CHECK_FALSE(weak.expired());
    auto handed = std::move(raw->log[0].self);
    handed.reset();
    CHECK(weak.expired());
}

TEST_CASE("channel: a channel without a sink drops everything", "[asgi][channel]") {
    Channel ch(1, nullptr);
    CHECK_FALSE(ch.attached());
    ch.submit(Command{});
    ch.detach();  // no crash, nothing to hand back
    CHECK_FALSE(ch.attached());
}

TEST_CASE("channel: outbound high/low water", "[asgi][channel]") {
    Channel ch(1, std::make_shared<FakeSink>());
    constexpr std::size_t high = 100, low = 20;

    SECTION("at or below high water the sender never waits") {
        CHECK_FALSE(ch.add_outbound(40, high, low));
        CHECK_FALSE(ch.add_outbound(60, high, low));  // exactly high
        // Nobody waits, so draining wakes nobody.
        CHECK_FALSE(ch.on_written(100, low));
    }
    SECTION("above high water the sender waits, and is woken once at low water") {
        CHECK_FALSE(ch.add_outbound(60, high, low));
        CHECK(ch.add_outbound(60, high, low));  // 120 > 100
        CHECK_FALSE(ch.on_written(50, low));    // 70: still above low
        CHECK_FALSE(ch.on_written(30, low));    // 40
        CHECK(ch.on_written(20, low));          // 20: exactly low -> wake
        CHECK_FALSE(ch.on_written(20, low));    // 0: already woken
        // The next wait works the same way.
        CHECK(ch.add_outbound(101, high, low));
        CHECK_FALSE(ch.on_written(80, low));  // 21
        CHECK(ch.on_written(1, low));         // 20
    }
    SECTION("a single write can take it from above high to zero") {
        CHECK(ch.add_outbound(1000, high, low));
        CHECK(ch.on_written(1000, low));
        CHECK_FALSE(ch.on_written(0, low));
    }
    SECTION("a further send while waiting still gets exactly one wake") {
        CHECK(ch.add_outbound(150, high, low));
        CHECK(ch.add_outbound(10, high, low));  // 160, still over
        CHECK_FALSE(ch.on_written(100, low));   // 60
        CHECK(ch.on_written(50, low));          // 10
        CHECK_FALSE(ch.on_written(10, low));    // 0
    }
    SECTION("cancel_wait: nobody is woken") {
        CHECK(ch.add_outbound(150, high, low));
        ch.cancel_wait();
        CHECK_FALSE(ch.on_written(150, low));
    }
    SECTION("writer drained before the flag was set: add_outbound does not wait") {
        // The window between add_outbound's fetch_add and its flag store cannot be hit
        // from one thread; a low mark above the high mark lands in the same branch: the
        // add takes it over high, the re-check finds it at or below low, and the sender
        // must not wait (nor leave the flag set for on_written to fire later).
        constexpr std::size_t odd_high = 10, odd_low = 50;
        CHECK_FALSE(ch.add_outbound(30, odd_high, odd_low));
        CHECK_FALSE(ch.on_written(30, odd_low));
    }
}

TEST_CASE("channel: every wait is woken exactly once under concurrency", "[asgi][channel]") {
    // Interpreter thread: account a chunk, publish it, and wait when told to.
    // I/O thread: write whatever is published; wake the sender when on_written says so.
    // The race (the writer drains between add_outbound's add and its flag) happens
    // naturally here; a lost wake-up shows as a timed-out wait, a spurious or double
    // wake-up as a surplus permit.
    Channel ch(1, std::make_shared<FakeSink>());
    constexpr std::size_t high = 64, low = 16;
    constexpr int sends = 20'000;

    std::atomic<std::size_t> published{0};
    std::atomic<bool> done{false};
    std::counting_semaphore<> wake(0);
    std::atomic<int> wakes{0};

    std::thread writer([&] {
        while (!done.load()) {
            std::size_t n = published.exchange(0);
            if (n == 0) {
                std::this_thread::yield();
                continue;
            }
            if (ch.on_written(n, low)) {
                wakes.fetch_add(1);
                wake.release();
            }
        }
    });

    int waits = 0;
    bool lost = false;
    for (int i = 0; i < sends && !lost; ++i) {
        std::size_t n = 1 + static_cast<std::size_t>(i % 40);
        bool must_wait = ch.add_outbound(n, high, low);
        published.fetch_add(n);
        if (must_wait) {
            ++waits;
            if (!wake.try_acquire_for(std::chrono::seconds(5)))
                lost = true;
        }
    }
    // Let the writer drain the rest, then stop it.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (published.load() != 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::yield();
    done = true;
    writer.join();

    CHECK_FALSE(lost);
    CHECK(waits > 0);
    CHECK(wakes.load() == waits);
    CHECK_FALSE(wake.try_acquire());  // no surplus wake-up
    // Everything written: a fresh small send does not wait.
    CHECK_FALSE(ch.add_outbound(1, high, low));
}
