#include "server/worker_slots.hpp"

#include "asgi/stats.hpp"

#include "catch.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <thread>

using narwhal::asgi::Stats;
using narwhal::server::counters_of;
using narwhal::server::WorkerSlot;
using narwhal::server::WorkerSlots;
using narwhal::server::WorkerSnapshot;
using narwhal::server::WorkerState;
using namespace std::chrono_literals;

namespace {

// Polls `ready` until it holds or `limit` passes; the limit is a guard against a broken
// test hanging, never what makes a check pass.
bool wait_until(const std::function<bool()>& ready, std::chrono::milliseconds limit = 10s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!ready()) {
        if (std::chrono::steady_clock::now() > deadline)
            return false;
        std::this_thread::sleep_for(1ms);
    }
    return true;
}

}  // namespace

TEST_CASE("WorkerSlots: a new table is all free", "[server][worker_slots]") {
    WorkerSlots slots(3);
    REQUIRE(slots.capacity() == 3);
    CHECK(slots.find_free() == 0);
    for (const WorkerSnapshot& s : slots.snapshot()) {
        CHECK(s.state == WorkerState::stopped);
        CHECK(s.generation == 0);
        CHECK(s.pid == 0);
        CHECK(s.counters.requests == 0);
        for (int64_t beat : s.heartbeat_ns)
            CHECK(beat == 0);
    }
    // Slots never share a cache line: two workers' heartbeats do not contend.
    CHECK(sizeof(WorkerSlot) % 64 == 0);
    CHECK(reinterpret_cast<uintptr_t>(&slots[1]) % 64 == 0);
    CHECK(WorkerSlots(0).capacity() == 1);
}

TEST_CASE("WorkerSlots: assign, set_pid and release", "[server][worker_slots]") {
    WorkerSlots slots(2);
    CHECK(slots.assign(0) == 1);
    slots.set_pid(0, 4242, 777);
    CHECK(slots.find_free() == 1);
    CHECK(slots.assign(1) == 1);
    CHECK(slots.find_free() == slots.capacity());  // full

    WorkerSnapshot s = slots[0].snapshot(0);
    CHECK(s.state == WorkerState::starting);
    CHECK(s.pid == 4242);
    CHECK(s.started_ns == 777);
    CHECK(s.generation == 1);

    // The worker used the slot; once the master reaps it, the slot is free again and the
    // next worker in it starts from zero under a new generation.
    Stats stats;
    stats.requests = 10;
    stats.loop_stalls = 2;
    slots[0].set_state(WorkerState::ready);
    slots[0].beat(0, 123);
    slots[0].beat(3, 456);
    slots[0].publish(counters_of(stats, 4, 5));
    slots.release(0);
    CHECK(slots.find_free() == 0);
    CHECK(slots.assign(0) == 2);
    s = slots[0].snapshot(0);
    CHECK(s.state == WorkerState::starting);
    CHECK(s.pid == 0);
    CHECK(s.started_ns == 0);
    CHECK(s.heartbeat_ns[0] == 0);
    CHECK(s.heartbeat_ns[3] == 0);
    CHECK(s.counters.requests == 0);
    CHECK(s.counters.loop_stalls == 0);
    CHECK(s.counters.in_flight == 0);
    CHECK(s.counters.queued == 0);
}

TEST_CASE("WorkerSlot: publish copies the stats line's counters", "[server][worker_slots]") {
    WorkerSlots slots(1);
    slots.assign(0);
    Stats st;
    st.requests = 1;
    st.shed = 2;
    st.queue_timeouts = 3;
    st.connections = 6;
    st.loop_stalls = 7;
    st.note_lag(8000);
    st.cancelled = 9;
    st.abandoned = 10;
    st.tls_handshake_failures = 11;
    slots[0].publish(counters_of(st, 4, 5));
    auto c = slots[0].snapshot(0).counters;
    CHECK(c.requests == 1);
    CHECK(c.shed == 2);
    CHECK(c.queue_timeouts == 3);
    CHECK(c.in_flight == 4);
    CHECK(c.queued == 5);
    CHECK(c.connections == 6);
    CHECK(c.loop_stalls == 7);
    CHECK(c.loop_lag_max_us == 8000);
    CHECK(c.cancelled == 9);
    CHECK(c.abandoned == 10);
    CHECK(c.tls_handshake_failures == 11);
}

TEST_CASE("WorkerSlot: heartbeats per loop", "[server][worker_slots]") {
    WorkerSlots slots(1);
    slots.assign(0);
    CHECK(slots[0].beat(0, 100));
    CHECK(slots[0].beat(WorkerSlot::max_loops - 1, 200));
    CHECK_FALSE(slots[0].beat(WorkerSlot::max_loops, 300));  // past the table: not tracked
    auto s = slots[0].snapshot(0);
    CHECK(s.heartbeat_ns[0] == 100);
    CHECK(s.heartbeat_ns[WorkerSlot::max_loops - 1] == 200);
    slots[0].end_loop(0);
    CHECK(slots[0].snapshot(0).heartbeat_ns[0] == 0);
    slots[0].end_loop(WorkerSlot::max_loops);  // ignored, not out of bounds
}

TEST_CASE("WorkerSlots: a forked worker's writes reach the master", "[server][worker_slots]") {
    WorkerSlots slots(2);
    uint64_t generation = slots.assign(1);
    int release_pipe[2];
    REQUIRE(pipe(release_pipe) == 0);

    pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        // The worker. Only async-signal-safe work and _exit: no Catch2 in this process.
        close(release_pipe[1]);
        WorkerSlot& mine = slots[1];
        // The master writes the pid after the fork: seeing it proves master -> worker.
        bool saw_pid = wait_until([&] { return mine.pid.load() == getpid(); });
        Stats st;
        st.requests = 77;
        st.connections = 3;
        mine.set_state(WorkerState::ready);
        mine.publish(counters_of(st, 1, 0));
        mine.beat(0, 111'000);
        mine.beat(1, 222'000);
        // Stay alive until the master has looked: the parent closes the pipe when done.
        char byte;
        while (read(release_pipe[0], &byte, 1) > 0) {
        }
        _exit(saw_pid ? 0 : 3);
    }
    close(release_pipe[0]);
    slots.set_pid(1, child, 1);

    // The master sees the beats while the worker is alive (it blocks on the pipe).
    bool seen = wait_until([&] { return slots[1].heartbeat_ns[1].load() == 222'000; });
    int status = 0;
    CHECK(waitpid(child, &status, WNOHANG) == 0);  // still running
    if (!seen)
        kill(child, SIGKILL);
    REQUIRE(seen);
    WorkerSnapshot s = slots[1].snapshot(1);
    CHECK(s.pid == child);
    CHECK(s.generation == generation);
    CHECK(s.state == WorkerState::ready);
    CHECK(s.heartbeat_ns[0] == 111'000);
    CHECK(s.counters.requests == 77);
    CHECK(s.counters.connections == 3);
    CHECK(s.counters.in_flight == 1);
    // The other slot was not touched.
    CHECK(slots[0].snapshot(0).state == WorkerState::stopped);

    close(release_pipe[1]);
    REQUIRE(waitpid(child, &status, 0) == child);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);  // the worker saw the pid the master wrote
    slots.release(1);
    CHECK(slots.find_free() == 0);
}

TEST_CASE("WorkerSlots: a worker thread writes while the master reads", "[server][worker_slots]") {
    // The same sharing as between processes, within one: ThreadSanitizer sees both sides
    // here (it cannot follow a fork), so a non-atomic access to a slot would show up.
    WorkerSlots slots(2);
    slots.assign(0);
    constexpr int64_t last = 20'000;
    std::thread worker([&] {
        Stats st;
        slots[0].set_state(WorkerState::ready);
        for (int64_t i = 1; i <= last; ++i) {
            st.requests.fetch_add(1);
            slots[0].publish(counters_of(st, i % 3, 0));
            slots[0].beat(static_cast<std::size_t>(i % 2), i);
        }
    });
    int64_t seen = 0;
    bool monotonic = true;
    bool done = wait_until([&] {
        WorkerSnapshot s = slots[0].snapshot(0);
        int64_t beat = std::max(s.heartbeat_ns[0], s.heartbeat_ns[1]);
        monotonic = monotonic && beat >= seen;
        seen = beat;
        return beat == last;
    });
    worker.join();
    CHECK(done);
    CHECK(monotonic);  // a reader never sees a beat go back in time
    CHECK(slots[0].snapshot(0).counters.requests == static_cast<uint64_t>(last));
}
