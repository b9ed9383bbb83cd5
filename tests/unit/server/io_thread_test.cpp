#include "server/io_thread.hpp"

#include "asgi/deferred_wake.hpp"
#include "asgi/events.hpp"
#include "server/connection.hpp"

#include "catch.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using narwhal::server::Connection;
using narwhal::server::IoThread;
namespace asgi = narwhal::asgi;

namespace {

// Counts the commands its I/O thread hands it, and checks they arrive in order.
class CountingConnection : public Connection,
                           public std::enable_shared_from_this<CountingConnection> {
public:
    explicit CountingConnection(IoThread& thread, uint64_t throw_at = UINT64_MAX)
        : thread_(thread), throw_at_(throw_at) {}

    void on_command(asgi::Command&& cmd) override {
        if (cmd.request == throw_at_) {
            next_ = cmd.request + 1;
            throw std::runtime_error("refused");
        }
        if (cmd.request != next_)
            out_of_order_.store(true, std::memory_order_relaxed);
        next_ = cmd.request + 1;
        done_.fetch_add(1, std::memory_order_release);
        // Then some work, as a real connection writes to its socket: the producer sees
        // its command taken while this batch is still running, and pushes the next one
        // into the window between the batch and the I/O thread's going back to sleep.
        for (int i = 0; i < 2000; ++i)
            busy_.fetch_add(1, std::memory_order_relaxed);
    }
    void on_server_shutdown() override {}

    uint64_t done() const { return done_.load(std::memory_order_acquire); }
    bool out_of_order() const { return out_of_order_.load(std::memory_order_relaxed); }

protected:
    IoThread& io_thread() override { return thread_; }
    std::shared_ptr<Connection> shared_connection() override { return shared_from_this(); }

private:
    IoThread& thread_;
    uint64_t throw_at_;
    uint64_t next_ = 0;  // the I/O thread only
    std::atomic<uint64_t> done_{0};
    std::atomic<bool> out_of_order_{false};
    std::atomic<int> busy_{0};
};

asgi::Command command(uint64_t seq) {
    asgi::Command cmd;
    cmd.kind = asgi::Command::Kind::credit;
    cmd.request = seq;
    return cmd;
}

// Waits until `conn` has run `target` commands; false if that takes longer than a
// minute, which only a lost wake-up explains (the I/O thread has nothing else to do).
bool wait_done(const CountingConnection& conn, uint64_t target) {
    auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (conn.done() < target) {
        if (std::chrono::steady_clock::now() > limit)
            return false;
        std::this_thread::yield();
    }
    return true;
}

struct DeferredWakes {
    static void schedule(void* self) { static_cast<DeferredWakes*>(self)->owed = true; }
    bool owed = false;
};

// Each producer pushes a short burst, then waits for the I/O thread to run it, and
// pushes the next burst as soon as it sees the last command run: while the I/O thread
// is still finishing that batch and about to go back to sleep, the window in which a
// kick can be lost. With one producer a lost kick stalls it for good; with several,
// another producer's kick may rescue it, so both are run. Producers with
// `batching` defer their kicks to the end of each burst, as an interpreter thread does.
struct Outcome {
    int stalled = 0;       // producers whose commands stopped running
    int out_of_order = 0;  // connections that saw their commands reordered
};

Outcome hammer(int producers, bool batching, uint64_t rounds) {
    IoThread thread;
    thread.start();
    std::vector<std::shared_ptr<CountingConnection>> conns;
    for (int p = 0; p < producers; ++p)
        conns.push_back(std::make_shared<CountingConnection>(thread));
    std::atomic<int> stuck{0};
    std::vector<std::thread> threads;
    for (int p = 0; p < producers; ++p) {
        threads.emplace_back([&, p] {
            DeferredWakes deferred;
            if (batching)
                asgi::set_wake_scheduler(&DeferredWakes::schedule, &deferred);
            auto& conn = *conns[static_cast<std::size_t>(p)];
            uint64_t seq = 0;
            for (uint64_t r = 0; r < rounds; ++r) {
                uint64_t burst = 1 + (r * 7 + static_cast<uint64_t>(p)) % 4;
                for (uint64_t i = 0; i < burst; ++i)
                    conn.submit(nullptr, command(seq++));
                if (batching && deferred.owed) {
                    deferred.owed = false;
                    asgi::run_deferred_wakes();
                }
                if (!wait_done(conn, seq)) {
                    stuck.fetch_add(1);
                    break;
                }
            }
            if (batching)
                asgi::set_wake_scheduler(nullptr, nullptr);
        });
    }
    for (auto& t : threads)
        t.join();
    thread.stop();
    thread.join();
    Outcome out;
    out.stalled = stuck.load();
    for (auto& c : conns)
        out.out_of_order += c->out_of_order() ? 1 : 0;
    return out;
}

}  // namespace

TEST_CASE("io thread: no kick is lost between a batch and the next command",
          "[server][io_thread]") {
    auto check = [](Outcome out) {
        CHECK(out.stalled == 0);
        CHECK(out.out_of_order == 0);
    };
    SECTION("one producer, kicking at once") { check(hammer(1, false, 20000)); }
    SECTION("one producer, kicking at the end of its batch") { check(hammer(1, true, 20000)); }
    SECTION("racing producers") {
        check(hammer(4, false, 3000));
        check(hammer(4, true, 3000));
    }
}

TEST_CASE("io thread: a deferred kick waits for the end of the producer's batch",
          "[server][io_thread]") {
    IoThread thread;
    thread.start();
    auto conn = std::make_shared<CountingConnection>(thread);
    DeferredWakes deferred;
    asgi::set_wake_scheduler(&DeferredWakes::schedule, &deferred);
    conn->submit(nullptr, command(0));
    conn->submit(nullptr, command(1));
    CHECK(deferred.owed);
    // Nothing kicked the I/O thread yet, so nothing can have run.
    CHECK(conn->done() == 0);
    asgi::run_deferred_wakes();
    asgi::set_wake_scheduler(nullptr, nullptr);
    CHECK(wait_done(*conn, 2));
    CHECK(conn->done() == 2);
    thread.stop();
    thread.join();
}

TEST_CASE("io thread: a command that throws does not stall the commands after it",
          "[server][io_thread]") {
    IoThread thread;
    thread.start();
    auto failing = std::make_shared<CountingConnection>(thread, 1);
    auto other = std::make_shared<CountingConnection>(thread);
    // One batch: the failing connection's command 1 throws between the others.
    DeferredWakes deferred;
    asgi::set_wake_scheduler(&DeferredWakes::schedule, &deferred);
    failing->submit(nullptr, command(0));
    failing->submit(nullptr, command(1));
    other->submit(nullptr, command(0));
    failing->submit(nullptr, command(2));
    asgi::run_deferred_wakes();
    CHECK(wait_done(*other, 1));
    CHECK(wait_done(*failing, 2));  // commands 0 and 2
    // And the mailbox still kicks the thread for later batches.
    other->submit(nullptr, command(1));
    asgi::run_deferred_wakes();
    asgi::set_wake_scheduler(nullptr, nullptr);
    CHECK(wait_done(*other, 2));
    CHECK_FALSE(other->out_of_order());
    CHECK_FALSE(failing->out_of_order());
    thread.stop();
    thread.join();
}
