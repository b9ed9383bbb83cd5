#include "server/io_thread.hpp"

#include "asgi/deferred_wake.hpp"
#include "asgi/events.hpp"
#include "server/connection.hpp"

#include "catch.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
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
    explicit CountingConnection(IoThread& thread) : thread_(thread) {}

    void on_command(asgi::Command&& cmd) override {
        if (cmd.request != next_)
            out_of_order_.store(true, std::memory_order_relaxed);
        next_ = cmd.request + 1;
        done_.fetch_add(1, std::memory_order_release);
    }
    void on_server_shutdown() override {}

    uint64_t done() const { return done_.load(std::memory_order_acquire); }
    bool out_of_order() const { return out_of_order_.load(std::memory_order_relaxed); }

protected:
    IoThread& io_thread() override { return thread_; }
    std::shared_ptr<Connection> shared_connection() override { return shared_from_this(); }

private:
    IoThread& thread_;
    uint64_t next_ = 0;  // the I/O thread only
    std::atomic<uint64_t> done_{0};
    std::atomic<bool> out_of_order_{false};
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

}  // namespace

TEST_CASE("io thread: every command runs, in order, under racing producers",
          "[server][io_thread]") {
    // Each producer pushes a short burst, then waits for the I/O thread to run it: the
    // mailbox keeps going empty and refilling while the I/O thread is between taking
    // it and going back to sleep, the window in which a kick could be lost. Half of
    // the producers batch their kicks like an interpreter thread does.
    IoThread thread;
    thread.start();
    constexpr int producers = 4;
    constexpr uint64_t rounds = 3000;
    std::vector<std::shared_ptr<CountingConnection>> conns;
    for (int p = 0; p < producers; ++p)
        conns.push_back(std::make_shared<CountingConnection>(thread));
    std::atomic<int> stuck{0};
    std::vector<std::thread> threads;
    for (int p = 0; p < producers; ++p) {
        threads.emplace_back([&, p] {
            DeferredWakes deferred;
            bool batching = p % 2 == 1;
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
    CHECK(stuck.load() == 0);
    for (auto& c : conns) {
        CHECK(c->done() >= rounds);
        CHECK_FALSE(c->out_of_order());
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
