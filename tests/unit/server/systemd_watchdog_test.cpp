#include "server/systemd_watchdog.hpp"

#include "catch.hpp"

#include <vector>

using namespace narwhal;
using server::WorkerSnapshot;
using server::WorkerState;

namespace {

constexpr int64_t second = 1'000'000'000;

WorkerSnapshot worker(WorkerState state, std::vector<int64_t> beats) {
    WorkerSnapshot w;
    w.state = state;
    for (std::size_t i = 0; i < beats.size(); ++i)
        w.heartbeat_ns[i] = beats[i];
    return w;
}

}  // namespace

TEST_CASE("the master feeds systemd's watchdog only while every ready worker's loops turn",
          "[server][systemd]") {
    const int64_t now = 100 * second;
    std::vector<WorkerSnapshot> table{worker(WorkerState::ready, {now - second / 2}),
                                      worker(WorkerState::ready, {now - second, now - 1})};
    CHECK(server::systemd::workers_turning(table, now, 5 * second));
    CHECK(server::systemd::workers_turning(table, now, second));  // exactly the timeout: live
    // One loop of one worker stuck past the timeout: no keep-alive for the whole service.
    table[1].heartbeat_ns[1] = now - 6 * second;
    CHECK_FALSE(server::systemd::workers_turning(table, now, 5 * second));
    // --timeout-worker-healthcheck 0: loops are not judged.
    CHECK(server::systemd::workers_turning(table, now, 0));
    // A worker that is draining or still starting is not judged; nor a loop that has not
    // beaten yet (0).
    table[1].state = WorkerState::draining;
    table.push_back(worker(WorkerState::starting, {now - 60 * second}));
    table.push_back(worker(WorkerState::ready, {0}));
    CHECK(server::systemd::workers_turning(table, now, 5 * second));
}

TEST_CASE("a single process feeds the watchdog only while its loops beat", "[server][systemd]") {
    asgi::LoopMonitor a, b;
    const int64_t now = 100 * second;
    std::vector<const asgi::LoopMonitor*> loops{&a, &b};
    CHECK(server::systemd::loops_turning(loops, now, 5 * second));  // none has beaten yet
    a.beat(now - second, second);
    b.beat(now - 2 * second, second);
    CHECK(server::systemd::loops_turning(loops, now, 5 * second));
    CHECK_FALSE(server::systemd::loops_turning(loops, now, second));
}
