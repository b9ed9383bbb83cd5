#include "server/worker_health.hpp"

#include "config/loader.hpp"
#include "server/worker_slots.hpp"

#include "catch.hpp"

#include <algorithm>
#include <random>
#include <set>
#include <string>
#include <vector>

using Catch::Matchers::ContainsSubstring;
using narwhal::server::accumulate;
using narwhal::server::aggregate_stats;
using narwhal::server::draw_request_limit;
using narwhal::server::HealthAction;
using narwhal::server::HealthSettings;
using narwhal::server::retire;
using narwhal::server::stats_fields;
using narwhal::server::stats_report_fields;
using narwhal::server::StatsReport;
using narwhal::server::WorkerCounters;
using narwhal::server::WorkerHealth;
using narwhal::server::WorkerSnapshot;
using narwhal::server::WorkerState;
using Kind = HealthAction::Kind;

namespace {

constexpr int64_t sec = 1'000'000'000;

// The policy sees plain snapshots, so the tests make them directly: a worker in slot
// `index`, its loops' last beats, in a state, with a request count.
WorkerSnapshot worker(std::size_t index, int32_t pid, std::vector<int64_t> beats,
                      WorkerState state = WorkerState::ready, uint64_t requests = 0,
                      uint64_t generation = 1) {
    WorkerSnapshot s;
    s.index = index;
    s.pid = pid;
    s.generation = generation;
    s.state = state;
    for (std::size_t i = 0; i < beats.size(); ++i)
        s.heartbeat_ns[i] = beats[i];
    s.counters.requests = requests;
    return s;
}

HealthSettings hung_only(int64_t timeout_ns, int64_t grace_ns) {
    HealthSettings h;
    h.healthcheck_timeout_ns = timeout_ns;
    h.kill_grace_ns = grace_ns;
    return h;
}

std::vector<Kind> kinds(const std::vector<HealthAction>& actions) {
    std::vector<Kind> out;
    for (const auto& a : actions)
        out.push_back(a.kind);
    return out;
}

}  // namespace

TEST_CASE("WorkerHealth: hung exactly past the timeout, not at it", "[server][worker_health]") {
    WorkerHealth health(hung_only(5 * sec, 5 * sec), 2);
    const int64_t beat = 1000 * sec;
    std::vector<WorkerSnapshot> slots{worker(0, 100, {beat})};

    CHECK(health.check(slots, beat).empty());
    CHECK(health.check(slots, beat + 5 * sec).empty());  // exactly the timeout: healthy

    auto actions = health.check(slots, beat + 5 * sec + 1);  // one nanosecond over
    REQUIRE(kinds(actions) == std::vector<Kind>{Kind::report_hung, Kind::terminate});
    CHECK(actions[0].pid == 100);
    CHECK(actions[0].slot == 0);
    CHECK(actions[0].loop == 0);
    CHECK(actions[0].blocked_ns == 5 * sec + 1);
    CHECK(actions[1].pid == 100);
    CHECK(health.counts().hung == 1);

    // Reported and terminated once; then SIGKILL exactly when the grace has passed.
    CHECK(health.check(slots, beat + 6 * sec).empty());
    CHECK(health.check(slots, beat + 10 * sec).empty());  // grace minus 1 ns
    actions = health.check(slots, beat + 10 * sec + 1);
    REQUIRE(kinds(actions) == std::vector<Kind>{Kind::kill});
    CHECK(actions[0].pid == 100);
    CHECK(health.counts().killed == 1);
    CHECK(health.check(slots, beat + 60 * sec).empty());  // killed once
}

TEST_CASE("WorkerHealth: a worker that exits within the grace is not killed",
          "[server][worker_health]") {
    WorkerHealth health(hung_only(1 * sec, 2 * sec), 1);
    std::vector<WorkerSnapshot> slots{worker(0, 100, {10 * sec})};
    CHECK(kinds(health.check(slots, 12 * sec)) ==
          std::vector<Kind>{Kind::report_hung, Kind::terminate});
    // The master reaped it: released slot.
    slots[0].state = WorkerState::stopped;
    CHECK(health.check(slots, 20 * sec).empty());
    CHECK(health.counts().killed == 0);

    // The next worker in the slot is a new generation, judged afresh.
    slots[0] = worker(0, 101, {30 * sec}, WorkerState::ready, 0, 2);
    CHECK(health.check(slots, 30 * sec + sec).empty());
    CHECK(kinds(health.check(slots, 30 * sec + sec + 1)) ==
          std::vector<Kind>{Kind::report_hung, Kind::terminate});
    CHECK(health.counts().hung == 2);
}

TEST_CASE("WorkerHealth: which loops and states are judged", "[server][worker_health]") {
    WorkerHealth health(hung_only(1 * sec, 1 * sec), 4);
    const int64_t now = 100 * sec;
    std::vector<WorkerSnapshot> slots{
        // Loop 2 is stuck while 0 and 1 turn: the oldest beat decides.
        worker(0, 10, {now, now - sec / 2, now - 3 * sec}),
        // A loop that never beat, or ended (0), is not judged.
        worker(1, 11, {0, now}),
        // Still starting: start-up has its own limit.
        worker(2, 12, {now - 30 * sec}, WorkerState::starting),
        // Draining workers are judged too: a stuck loop will never finish its drain.
        worker(3, 13, {now - 2 * sec}, WorkerState::draining),
    };
    auto actions = health.check(slots, now);
    REQUIRE(actions.size() == 4);
    CHECK(actions[0].kind == Kind::report_hung);
    CHECK(actions[0].pid == 10);
    CHECK(actions[0].loop == 2);
    CHECK(actions[0].blocked_ns == 3 * sec);
    CHECK(actions[1].kind == Kind::terminate);
    CHECK(actions[1].pid == 10);
    CHECK(actions[2].kind == Kind::report_hung);
    CHECK(actions[2].pid == 13);
    CHECK(actions[3].kind == Kind::terminate);

    // A timeout of 0 turns the check off.
    WorkerHealth off(hung_only(0, 0), 1);
    CHECK(off.check(std::vector{worker(0, 10, {1})}, 1000 * sec).empty());
}

TEST_CASE("draw_request_limit: N plus a jitter in [0, J]", "[server][worker_health]") {
    std::mt19937_64 random(42);
    CHECK(draw_request_limit(0, 100, random) == 0);  // no limit, whatever the jitter
    CHECK(draw_request_limit(1000, 0, random) == 1000);

    std::set<uint64_t> seen;
    for (int i = 0; i < 5000; ++i) {
        uint64_t limit = draw_request_limit(1000, 10, random);
        REQUIRE(limit >= 1000);
        REQUIRE(limit <= 1010);
        seen.insert(limit);
    }
    // Every value of the range comes up (both ends included): uniform over [N, N+J].
    CHECK(seen.size() == 11);
    CHECK(*seen.begin() == 1000);
    CHECK(*seen.rbegin() == 1010);

    // Saturates instead of wrapping.
    CHECK(draw_request_limit(UINT64_MAX - 1, 1000, random) >= UINT64_MAX - 1);
}

TEST_CASE("WorkerHealth: replace at the request limit, once", "[server][worker_health]") {
    HealthSettings h;
    h.max_requests = 100;
    h.max_requests_jitter = 0;
    WorkerHealth health(h, 2);
    std::vector<WorkerSnapshot> slots{worker(0, 10, {}, WorkerState::ready, 99),
                                      worker(1, 11, {}, WorkerState::starting, 500)};
    CHECK(health.check(slots, 0).empty());  // 99 served; slot 1 still starting
    CHECK(health.request_limit(0) == 100);

    slots[0].counters.requests = 100;
    auto actions = health.check(slots, 0);
    REQUIRE(actions.size() == 1);
    CHECK(actions[0].kind == Kind::replace);
    CHECK(actions[0].pid == 10);
    CHECK(actions[0].slot == 0);
    CHECK(actions[0].requests == 100);
    CHECK(actions[0].limit == 100);
    CHECK(health.counts().recycled == 1);

    // While its replacement starts the old worker goes on serving: asked once only.
    slots[0].counters.requests = 150;
    CHECK(health.check(slots, 0).empty());
    slots[0].state = WorkerState::draining;
    CHECK(health.check(slots, 0).empty());

    // No limit: never.
    WorkerHealth unlimited(HealthSettings{}, 1);
    CHECK(
        unlimited.check(std::vector{worker(0, 10, {}, WorkerState::ready, UINT64_MAX)}, 0).empty());
}

TEST_CASE("WorkerHealth: each worker draws its jitter once", "[server][worker_health]") {
    HealthSettings h;
    h.max_requests = 1000;
    h.max_requests_jitter = 500;
    WorkerHealth health(h, 8, 7);
    std::vector<WorkerSnapshot> slots;
    for (std::size_t i = 0; i < 8; ++i)
        slots.push_back(worker(i, static_cast<int32_t>(100 + i), {}));
    health.check(slots, 0);
    std::vector<uint64_t> limits;
    for (std::size_t i = 0; i < 8; ++i) {
        uint64_t limit = health.request_limit(i);
        CHECK(limit >= 1000);
        CHECK(limit <= 1500);
        limits.push_back(limit);
    }
    // Drawn per worker: not all the same (the seed is fixed, so this is not luck).
    CHECK(std::set<uint64_t>(limits.begin(), limits.end()).size() > 1);
    // Kept across checks of the same generation...
    health.check(slots, 1);
    for (std::size_t i = 0; i < 8; ++i)
        CHECK(health.request_limit(i) == limits[i]);
    // ... and the worker is replaced at its own limit, not at N.
    slots[0].counters.requests = limits[0] - 1;
    CHECK(health.check(slots, 2).empty());
    slots[0].counters.requests = limits[0];
    REQUIRE(health.check(slots, 3).size() == 1);
}

TEST_CASE("WorkerHealth: a hung worker is not also recycled", "[server][worker_health]") {
    HealthSettings h = hung_only(1 * sec, 1 * sec);
    h.max_requests = 10;
    WorkerHealth health(h, 1);
    std::vector<WorkerSnapshot> slots{worker(0, 10, {0 + 1}, WorkerState::ready, 50)};
    // Both apply at once: the hung check comes first, and the SIGTERM replaces it anyway.
    CHECK(kinds(health.check(slots, 10 * sec)) ==
          std::vector<Kind>{Kind::report_hung, Kind::terminate});
    CHECK(health.counts().recycled == 0);
}

TEST_CASE("HealthSettings from the configuration", "[server][worker_health]") {
    const char* defaults[] = {"narwhal", "m:a"};
    auto d = HealthSettings::from(narwhal::config::load(2, defaults, {}).settings);
    CHECK(d.healthcheck_timeout_ns == 5 * sec);  // uvicorn's default
    CHECK(d.kill_grace_ns == 5 * sec);
    CHECK(d.max_requests == 0);
    CHECK(d.max_requests_jitter == 0);
    CHECK(d.startup_timeout_ns == 60 * sec);

    const char* args[] = {
        "narwhal", "m:a", "--timeout-worker-healthcheck", "0.5", "--limit-max-requests", "1000"};
    auto loaded = narwhal::config::load(6, args, {"UVICORN_LIMIT_MAX_REQUESTS_JITTER=50"});
    auto h = HealthSettings::from(loaded.settings);
    CHECK(h.healthcheck_timeout_ns == sec / 2);
    CHECK(h.kill_grace_ns == sec / 2);
    CHECK(h.max_requests == 1000);
    CHECK(h.max_requests_jitter == 50);  // uvicorn's variable is honoured
    CHECK(loaded.warnings.empty());

    const char* off[] = {"narwhal", "m:a", "--timeout-worker-startup", "0"};
    CHECK(HealthSettings::from(narwhal::config::load(4, off, {}).settings).startup_timeout_ns == 0);
    auto env = narwhal::config::load(2, defaults, {"NARWHAL_TIMEOUT_WORKER_STARTUP=2.5"});
    CHECK(HealthSettings::from(env.settings).startup_timeout_ns == 5 * sec / 2);
}

TEST_CASE("aggregate_stats: sums over live workers, and each worker", "[server][worker_health]") {
    std::vector<WorkerSnapshot> slots(3);
    for (std::size_t i = 0; i < slots.size(); ++i) {
        slots[i].index = i;
        slots[i].pid = static_cast<int32_t>(200 + i);
        slots[i].generation = 1;
        slots[i].state = WorkerState::ready;
        WorkerCounters& c = slots[i].counters;
        c.requests = 100 * (i + 1);
        c.shed = i;
        c.queue_timeouts = 1;
        c.in_flight = 2;
        c.queued = 3;
        c.connections = 10;
        c.loop_stalls = i;
        c.loop_lag_max_us = 1000 * static_cast<int64_t>(i + 1);
        c.cancelled = 4;
        c.abandoned = 1;
        c.tls_handshake_failures = 5 * (i + 1);
    }
    slots[1].state = WorkerState::draining;  // still counted: it is still serving
    slots[2].state = WorkerState::stopped;   // gone: not counted

    StatsReport r = aggregate_stats(slots);
    REQUIRE(r.workers.size() == 2);
    CHECK(r.workers[0].pid == 200);
    CHECK(r.workers[1].pid == 201);
    CHECK(r.workers[1].state == WorkerState::draining);
    CHECK(r.total.requests == 300);
    CHECK(r.total.shed == 1);
    CHECK(r.total.queue_timeouts == 2);
    CHECK(r.total.in_flight == 4);
    CHECK(r.total.queued == 6);
    CHECK(r.total.connections == 20);
    CHECK(r.total.loop_stalls == 1);
    CHECK(r.total.loop_lag_max_us == 2000);  // the worst, not the sum
    CHECK(r.total.cancelled == 8);
    CHECK(r.total.abandoned == 2);
    CHECK(r.total.tls_handshake_failures == 15);

    WorkerCounters sum;
    accumulate(sum, r.workers[0].counters);
    accumulate(sum, r.workers[1].counters);
    CHECK(stats_fields(sum) == stats_fields(r.total));

    WorkerHealth::Counts counts;
    counts.hung = 2;
    counts.killed = 1;
    counts.recycled = 5;
    counts.start_timeouts = 3;
    std::string line = stats_report_fields(r, counts);
    CHECK_THAT(line, ContainsSubstring("\"requests\": 300, \"shed\": 1, "));
    CHECK_THAT(line, ContainsSubstring("\"workers_hung\": 2, \"workers_killed\": 1, "
                                       "\"workers_recycled\": 5, \"workers_start_timeouts\": 3"));
    CHECK_THAT(line, ContainsSubstring("\"loop_lag_max_ms\": 2.0"));
    CHECK_THAT(line, ContainsSubstring("\"workers\": [{\"pid\": 200, \"slot\": 0, "
                                       "\"generation\": 1, \"state\": \"ready\", "
                                       "\"requests\": 100, "));
    CHECK_THAT(line, ContainsSubstring("{\"pid\": 201, \"slot\": 1, \"generation\": 1, "
                                       "\"state\": \"draining\", \"requests\": 200, "));
    CHECK_THAT(line, !ContainsSubstring("\"pid\": 202"));
}

TEST_CASE("aggregate_stats: gone workers' counters stay in the total", "[server][worker_health]") {
    WorkerCounters gone;
    gone.requests = 1000;
    gone.cancelled = 3;
    gone.in_flight = 7;  // gauges end with the worker
    gone.connections = 50;
    gone.loop_lag_max_us = 9000;
    WorkerCounters retired;
    retire(retired, gone);
    retire(retired, gone);

    std::vector<WorkerSnapshot> slots(1);
    slots[0].pid = 300;
    slots[0].generation = 2;
    slots[0].state = WorkerState::ready;
    slots[0].counters.requests = 5;
    slots[0].counters.in_flight = 1;
    slots[0].counters.connections = 2;
    StatsReport r = aggregate_stats(slots, retired);
    CHECK(r.total.requests == 2005);  // recycling does not make the count go backwards
    CHECK(r.total.cancelled == 6);
    CHECK(r.total.in_flight == 1);  // only what runs now
    CHECK(r.total.connections == 2);
    CHECK(r.total.loop_lag_max_us == 9000);
    REQUIRE(r.workers.size() == 1);
    CHECK(r.workers[0].counters.requests == 5);
}

TEST_CASE("stats_fields: the single process's stats line fields", "[server][worker_health]") {
    WorkerCounters c;
    c.requests = 1;
    c.loop_lag_max_us = 1500;
    c.tls_handshake_failures = 3;
    // The same names in the same order as the "narwhal stats" line of one process.
    CHECK(stats_fields(c) ==
          "\"requests\": 1, \"shed\": 0, \"queue_timeouts\": 0, \"in_flight\": 0, \"queued\": 0, "
          "\"connections\": 0, \"loop_stalls\": 0, \"loop_lag_max_ms\": 1.5, \"cancelled\": 0, "
          "\"abandoned\": 0, \"tls_handshake_failures\": 3, \"proxy_protocol_errors\": 0");
}

namespace {

// A worker the master forked at `started_ns`, in `state`.
WorkerSnapshot forked(std::size_t index, int32_t pid, int64_t started_ns,
                      WorkerState state = WorkerState::starting, uint64_t generation = 1) {
    WorkerSnapshot s = worker(index, pid, {}, state, 0, generation);
    s.started_ns = started_ns;
    return s;
}

HealthSettings startup_only(int64_t timeout_ns, int64_t grace_ns) {
    HealthSettings h;
    h.startup_timeout_ns = timeout_ns;
    h.kill_grace_ns = grace_ns;
    return h;
}

}  // namespace

TEST_CASE("WorkerHealth: not ready exactly past the start-up bound, not at it",
          "[server][worker_health]") {
    WorkerHealth health(startup_only(60 * sec, 5 * sec), 2);
    const int64_t fork = 1000 * sec;
    std::vector<WorkerSnapshot> slots{forked(0, 100, fork), forked(1, 101, fork + 30 * sec)};

    CHECK(health.check(slots, fork).empty());
    CHECK(health.check(slots, fork + 60 * sec).empty());  // exactly the bound: still waited for

    auto actions = health.check(slots, fork + 60 * sec + 1);
    REQUIRE(kinds(actions) == std::vector<Kind>{Kind::report_start_timeout, Kind::terminate});
    CHECK(actions[0].pid == 100);
    CHECK(actions[0].slot == 0);
    CHECK(actions[0].starting_ns == 60 * sec + 1);
    CHECK(actions[1].pid == 100);
    CHECK(health.counts().start_timeouts == 1);
    CHECK(health.counts().hung == 0);

    // Still there after the grace: SIGKILL, once. The other worker has its own bound.
    CHECK(health.check(slots, fork + 65 * sec).empty());
    actions = health.check(slots, fork + 65 * sec + 1);
    REQUIRE(kinds(actions) == std::vector<Kind>{Kind::kill});
    CHECK(actions[0].pid == 100);
    CHECK(health.counts().killed == 1);
    actions = health.check(slots, fork + 91 * sec);
    REQUIRE(kinds(actions) == std::vector<Kind>{Kind::report_start_timeout, Kind::terminate});
    CHECK(actions[0].pid == 101);
    CHECK(health.check(slots, fork + 92 * sec).empty());  // not reported twice
    CHECK(health.counts().start_timeouts == 2);
}

TEST_CASE("WorkerHealth: the start-up bound judges starting workers only",
          "[server][worker_health]") {
    WorkerHealth health(startup_only(2 * sec, 2 * sec), 8);
    const int64_t now = 100 * sec;
    std::vector<WorkerSnapshot> slots{
        forked(0, 10, 1 * sec, WorkerState::ready),     // became ready: start-up is over
        forked(1, 11, 1 * sec, WorkerState::draining),  // on its way out
        forked(2, 12, 0),                               // not forked yet: no time to judge
        forked(3, 0, 1 * sec),                          // no pid yet
        forked(4, 14, 1 * sec, WorkerState::stopped),   // reaped
    };
    CHECK(health.check(slots, now).empty());
    CHECK(health.counts().start_timeouts == 0);

    // 0: a starting worker is waited for however long it takes.
    WorkerHealth forever(startup_only(0, 2 * sec), 1);
    CHECK(forever.check(std::vector{forked(0, 10, 1)}, 1'000'000 * sec).empty());

    // The hung-loop rule leaves starting workers alone, and the start-up bound ready ones.
    HealthSettings both = startup_only(2 * sec, 2 * sec);
    both.healthcheck_timeout_ns = 2 * sec;
    WorkerHealth health_both(both, 2);
    WorkerSnapshot starting = forked(0, 10, 50 * sec);
    starting.heartbeat_ns[0] = 1;  // an old beat cannot make a starting worker hung
    WorkerSnapshot ready = forked(1, 11, 1, WorkerState::ready);
    ready.heartbeat_ns[0] = 99 * sec;  // beating: healthy, however long ago it started
    CHECK(health_both.check(std::vector{starting, ready}, 51 * sec).empty());
}

TEST_CASE("WorkerHealth: a new worker in the slot gets its own start-up bound",
          "[server][worker_health]") {
    WorkerHealth health(startup_only(2 * sec, 2 * sec), 1);
    std::vector<WorkerSnapshot> slots{forked(0, 10, 1 * sec)};
    REQUIRE(kinds(health.check(slots, 4 * sec)) ==
            std::vector<Kind>{Kind::report_start_timeout, Kind::terminate});
    // Reaped before the grace ended, the slot reused by the next worker.
    slots[0] = forked(0, 20, 5 * sec, WorkerState::starting, 2);
    CHECK(health.check(slots, 6 * sec).empty());  // neither killed nor timed out
    CHECK(health.counts().killed == 0);
    CHECK(kinds(health.check(slots, 7 * sec + 1)) ==
          std::vector<Kind>{Kind::report_start_timeout, Kind::terminate});
}

TEST_CASE("WorkerHealth: a failed replacement is asked for again after a back-off",
          "[server][worker_health]") {
    HealthSettings h;
    h.max_requests = 10;
    WorkerHealth health(h, 2);
    std::vector<WorkerSnapshot> slots{worker(0, 10, {}, WorkerState::ready, 10)};
    int64_t now = 1000 * sec;
    REQUIRE(kinds(health.check(slots, now)) == std::vector<Kind>{Kind::replace});
    CHECK(health.check(slots, now).empty());  // its successor is starting

    // The successor failed: 10 s, then twice as long each time, at most 5 minutes.
    std::vector<int64_t> delays;
    for (int attempt = 0; attempt < 7; ++attempt) {
        int64_t delay = health.replace_failed(0, 1, now);
        delays.push_back(delay / sec);
        CHECK(health.check(slots, now + delay - 1).empty());
        REQUIRE(kinds(health.check(slots, now + delay)) == std::vector<Kind>{Kind::replace});
        now += delay;
    }
    CHECK(delays == std::vector<int64_t>{10, 20, 40, 80, 160, 300, 300});
    // One worker that reached its limit, however many tries its replacement took.
    CHECK(health.counts().recycled == 1);

    // A worker no longer in that slot (another generation) has nothing to try again.
    CHECK(health.replace_failed(0, 2, now) == 0);
    CHECK(health.replace_failed(1, 1, now) == 0);
    // The next worker in the slot starts with no back-off of its own.
    slots[0] = worker(0, 20, {}, WorkerState::ready, 10, 2);
    CHECK(kinds(health.check(slots, now)) == std::vector<Kind>{Kind::replace});
    CHECK(health.counts().recycled == 2);
}
