#include "asgi/deferred_wake.hpp"

#include "catch.hpp"

#include <vector>

namespace asgi = narwhal::asgi;

namespace {

struct Scheduler {
    static void schedule(void* self) { ++static_cast<Scheduler*>(self)->scheduled; }
    int scheduled = 0;
};

// Installs the scheduler for this thread for the test's duration.
struct Installed {
    explicit Installed(Scheduler& s) { asgi::set_wake_scheduler(&Scheduler::schedule, &s); }
    ~Installed() {
        asgi::run_deferred_wakes();
        asgi::set_wake_scheduler(nullptr, nullptr);
    }
};

struct Target {
    static void wake(void* self) { ++static_cast<Target*>(self)->woken; }
    int woken = 0;
};

// A target whose wake-up defers a wake of another: the second belongs to the next batch.
struct Chained {
    static void wake(void* self) {
        auto* c = static_cast<Chained*>(self);
        ++c->woken;
        if (c->next)
            asgi::defer_wake(&Target::wake, c->next);
    }
    int woken = 0;
    Target* next = nullptr;
};

}  // namespace

TEST_CASE("deferred wake: each target is woken once per batch, batch after batch",
          "[asgi][deferred_wake]") {
    Scheduler sched;
    Installed installed(sched);
    std::vector<Target> targets(40);
    // Batches of changing sizes: the lists are reused across batches, so a smaller
    // batch after a larger one must not replay the larger one's leftovers.
    for (int round = 0; round < 6; ++round) {
        std::size_t n = round % 2 == 0 ? targets.size() : 3;
        for (std::size_t i = 0; i < n; ++i) {
            CHECK(asgi::defer_wake(&Target::wake, &targets[i]));
            CHECK(asgi::defer_wake(&Target::wake, &targets[i]));  // recorded once
        }
        CHECK(sched.scheduled == round + 1);  // one schedule per batch
        asgi::run_deferred_wakes();
    }
    for (std::size_t i = 0; i < targets.size(); ++i)
        CHECK(targets[i].woken == (i < 3 ? 6 : 3));
}

TEST_CASE("deferred wake: a wake deferred while the batch's wakes run goes to the next batch",
          "[asgi][deferred_wake]") {
    Scheduler sched;
    Installed installed(sched);
    Target last;
    Chained first;
    first.next = &last;
    CHECK(asgi::defer_wake(&Chained::wake, &first));
    asgi::run_deferred_wakes();
    CHECK(first.woken == 1);
    CHECK(last.woken == 0);
    CHECK(sched.scheduled == 2);  // the new batch was scheduled
    asgi::run_deferred_wakes();
    CHECK(last.woken == 1);
    CHECK(first.woken == 1);
    asgi::run_deferred_wakes();  // nothing left
    CHECK(last.woken == 1);
}

TEST_CASE("deferred wake: without a scheduler nothing is deferred", "[asgi][deferred_wake]") {
    Target t;
    CHECK_FALSE(asgi::defer_wake(&Target::wake, &t));
    asgi::run_deferred_wakes();
    CHECK(t.woken == 0);
}
