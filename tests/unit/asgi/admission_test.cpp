#include "asgi/admission.hpp"

#include "catch.hpp"

#include <atomic>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

using narwhal::asgi::Admission;
using narwhal::asgi::AdmissionWaiter;
using Result = Admission::Result;

namespace {

// Records the order in which waiters were admitted, and how many slots were in flight
// at that moment.
struct Log {
    std::vector<int> order;
    std::vector<std::size_t> in_flight_at_admit;
};

class RecordingWaiter : public AdmissionWaiter {
public:
    RecordingWaiter(int id, Log& log, const Admission& adm) : id_(id), log_(log), adm_(adm) {}
    void admitted() override {
        ++calls;
        log_.order.push_back(id_);
        log_.in_flight_at_admit.push_back(adm_.in_flight());
    }
    int calls = 0;

private:
    int id_;
    Log& log_;
    const Admission& adm_;
};

std::shared_ptr<RecordingWaiter> waiter(int id, Log& log, const Admission& adm) {
    return std::make_shared<RecordingWaiter>(id, log, adm);
}

}  // namespace

TEST_CASE("Admission: limit 0 admits everything", "[asgi][admission]") {
    Admission adm(0, 0);
    Log log;
    auto w = waiter(1, log, adm);
    for (int i = 0; i < 1000; ++i)
        REQUIRE(adm.acquire(w) == Result::admitted);
    CHECK(adm.in_flight() == 1000);
    CHECK(adm.queued() == 0);
    for (int i = 0; i < 1000; ++i)
        adm.release();
    CHECK(adm.in_flight() == 0);
    CHECK(w->calls == 0);
}

TEST_CASE("Admission: admits up to the limit, queues up to queue_limit, then refuses",
          "[asgi][admission]") {
    Admission adm(3, 2);
    Log log;
    auto w = waiter(1, log, adm);
    CHECK(adm.acquire(w) == Result::admitted);
    CHECK(adm.acquire(w) == Result::admitted);
    CHECK(adm.acquire(w) == Result::admitted);
    CHECK(adm.in_flight() == 3);
    CHECK(adm.queued() == 0);

    auto q1 = waiter(10, log, adm);
    auto q2 = waiter(11, log, adm);
    CHECK(adm.acquire(q1) == Result::queued);
    CHECK(adm.queued() == 1);
    CHECK(adm.acquire(q2) == Result::queued);
    CHECK(adm.queued() == 2);

    auto r = waiter(12, log, adm);
    CHECK(adm.acquire(r) == Result::refused);
    CHECK(adm.acquire(r) == Result::refused);
    CHECK(adm.in_flight() == 3);
    CHECK(adm.queued() == 2);
    CHECK(log.order.empty());
}

TEST_CASE("Admission: queue_limit 0 refuses as soon as the limit is reached", "[asgi][admission]") {
    Admission adm(1, 0);
    Log log;
    auto w = waiter(1, log, adm);
    CHECK(adm.acquire(w) == Result::admitted);
    CHECK(adm.acquire(w) == Result::refused);
    CHECK(adm.queued() == 0);
    adm.release();
    CHECK(adm.in_flight() == 0);
    CHECK(adm.acquire(w) == Result::admitted);
}

TEST_CASE("Admission: release hands the slot to waiters in FIFO order", "[asgi][admission]") {
    Admission adm(2, 10);
    Log log;
    auto holder = waiter(0, log, adm);
    REQUIRE(adm.acquire(holder) == Result::admitted);
    REQUIRE(adm.acquire(holder) == Result::admitted);

    std::vector<std::shared_ptr<RecordingWaiter>> ws;
    for (int i = 1; i <= 4; ++i) {
        ws.push_back(waiter(i, log, adm));
        REQUIRE(adm.acquire(ws.back()) == Result::queued);
    }
    REQUIRE(adm.queued() == 4);

    adm.release();
    CHECK(log.order == std::vector<int>{1});
    CHECK(adm.in_flight() == 2);  // the slot passed on without being freed
    CHECK(adm.queued() == 3);

    adm.release();
    adm.release();
    adm.release();
    CHECK(log.order == std::vector<int>{1, 2, 3, 4});
    CHECK(adm.in_flight() == 2);
    CHECK(adm.queued() == 0);
    // admitted() is called after the hand-off, with in_flight unchanged.
    CHECK(log.in_flight_at_admit == std::vector<std::size_t>{2, 2, 2, 2});
    for (auto& w : ws)
        CHECK(w->calls == 1);

    // No waiters left: release frees slots.
    adm.release();
    CHECK(adm.in_flight() == 1);
    adm.release();
    CHECK(adm.in_flight() == 0);
    CHECK(log.order.size() == 4);
}

TEST_CASE("Admission: release with no waiters decrements, never below zero", "[asgi][admission]") {
    Admission adm(2, 2);
    Log log;
    auto w = waiter(1, log, adm);
    REQUIRE(adm.acquire(w) == Result::admitted);
    REQUIRE(adm.acquire(w) == Result::admitted);
    adm.release();
    CHECK(adm.in_flight() == 1);
    adm.release();
    CHECK(adm.in_flight() == 0);
    adm.release();  // unbalanced: stays at zero
    CHECK(adm.in_flight() == 0);
    CHECK(w->calls == 0);
}

TEST_CASE("Admission: a waiter whose shared_ptr expired is skipped", "[asgi][admission]") {
    Admission adm(1, 10);
    Log log;
    auto holder = waiter(0, log, adm);
    REQUIRE(adm.acquire(holder) == Result::admitted);

    auto a = waiter(1, log, adm);
    auto b = waiter(2, log, adm);
    auto c = waiter(3, log, adm);
    REQUIRE(adm.acquire(a) == Result::queued);
    REQUIRE(adm.acquire(b) == Result::queued);
    REQUIRE(adm.acquire(c) == Result::queued);

    SECTION("the oldest live waiter gets the slot") {
        a.reset();
        b.reset();
        adm.release();
        CHECK(log.order == std::vector<int>{3});
        CHECK(adm.in_flight() == 1);
        CHECK(adm.queued() == 0);
        adm.release();
        CHECK(adm.in_flight() == 0);
    }
    SECTION("only dead waiters: the slot is freed") {
        a.reset();
        b.reset();
        c.reset();
        CHECK(adm.queued() == 3);  // expired entries are dropped lazily
        adm.release();
        CHECK(log.order.empty());
        CHECK(adm.in_flight() == 0);
        CHECK(adm.queued() == 0);
    }
    SECTION("a dead waiter in the middle keeps the order of the others") {
        b.reset();
        adm.release();
        adm.release();
        CHECK(log.order == std::vector<int>{1, 3});
        CHECK(adm.in_flight() == 1);
        CHECK(adm.queued() == 0);
    }
}

TEST_CASE("Admission: cancel", "[asgi][admission]") {
    Admission adm(1, 10);
    Log log;
    auto holder = waiter(0, log, adm);
    REQUIRE(adm.acquire(holder) == Result::admitted);
    auto a = waiter(1, log, adm);
    auto b = waiter(2, log, adm);
    auto c = waiter(3, log, adm);
    REQUIRE(adm.acquire(a) == Result::queued);
    REQUIRE(adm.acquire(b) == Result::queued);
    REQUIRE(adm.acquire(c) == Result::queued);

    SECTION("removes a queued waiter") {
        CHECK(adm.cancel(b.get()));
        CHECK(adm.queued() == 2);
        CHECK_FALSE(adm.cancel(b.get()));  // already gone
        adm.release();
        adm.release();
        CHECK(log.order == std::vector<int>{1, 3});
        CHECK(b->calls == 0);
        CHECK(adm.in_flight() == 1);
    }
    SECTION("false for a waiter already handed a slot") {
        adm.release();
        REQUIRE(log.order == std::vector<int>{1});
        CHECK_FALSE(adm.cancel(a.get()));
        CHECK(adm.queued() == 2);
        CHECK(adm.in_flight() == 1);
    }
    SECTION("false for a waiter never queued") {
        auto stranger = waiter(9, log, adm);
        CHECK_FALSE(adm.cancel(stranger.get()));
        CHECK(adm.queued() == 3);
    }
    SECTION("cancelling every waiter leaves release to free the slot") {
        CHECK(adm.cancel(c.get()));
        CHECK(adm.cancel(a.get()));
        CHECK(adm.cancel(b.get()));
        CHECK(adm.queued() == 0);
        adm.release();
        CHECK(log.order.empty());
        CHECK(adm.in_flight() == 0);
    }
    SECTION("a dead waiter ahead does not hide a live one") {
        a.reset();
        CHECK(adm.cancel(c.get()));
        CHECK(adm.queued() == 2);
    }
}

TEST_CASE("Admission: a freed slot can be acquired again while nobody waits", "[asgi][admission]") {
    Admission adm(1, 1);
    Log log;
    auto w = waiter(1, log, adm);
    auto q = waiter(2, log, adm);
    REQUIRE(adm.acquire(w) == Result::admitted);
    REQUIRE(adm.acquire(q) == Result::queued);
    adm.release();                            // to q
    CHECK(adm.acquire(w) == Result::queued);  // q holds the only slot
    adm.release();                            // q done: to w
    CHECK(log.order == std::vector<int>{2, 1});
    adm.release();
    CHECK(adm.in_flight() == 0);
    CHECK(adm.acquire(w) == Result::admitted);
}

namespace {

// Tracks the slots the test itself believes it holds.
struct Tracker {
    std::atomic<int> current{0};
    std::atomic<int> max{0};
    std::atomic<long> admitted_late{0};
    void enter() {
        int now = current.fetch_add(1) + 1;
        int seen = max.load();
        while (now > seen && !max.compare_exchange_weak(seen, now)) {
        }
    }
    void leave() { current.fetch_sub(1); }
};

// Releases its slot as soon as it gets one.
class ReleasingWaiter : public AdmissionWaiter {
public:
    ReleasingWaiter(Admission& adm, Tracker& t) : adm_(adm), t_(t) {}
    void admitted() override {
        t_.enter();
        t_.admitted_late.fetch_add(1);
        calls.fetch_add(1);
        t_.leave();
        adm_.release();
    }
    std::atomic<int> calls{0};

private:
    Admission& adm_;
    Tracker& t_;
};

}  // namespace

TEST_CASE("Admission: concurrent acquire/release keeps the counters consistent",
          "[asgi][admission][threads]") {
    constexpr std::size_t limit = 8;
    constexpr int threads = 4;
    constexpr int iterations = 10'000;
    // Each thread holds up to 3 slots; when it is refused a slot (or has 3) it frees its
    // oldest. Four threads want 12 slots for 8, so waiters queue.
    constexpr std::size_t hold = 3;
    // The test itself holds this many slots until the first waiter queued, so the queue
    // is used even if the scheduler runs the threads one after the other.
    constexpr int reserved = 6;

    Admission adm(limit, 1000);
    Tracker t;
    std::atomic<long> admitted_now{0}, queued{0}, refused{0};
    std::atomic<int> ready{0}, finished{0};
    std::atomic<std::size_t> observed_in_flight_max{0};
    std::vector<std::vector<std::shared_ptr<ReleasingWaiter>>> keep(threads);

    auto note_in_flight = [&] {
        std::size_t v = adm.in_flight();
        std::size_t seen = observed_in_flight_max.load();
        while (v > seen && !observed_in_flight_max.compare_exchange_weak(seen, v)) {
        }
    };

    auto dummy = std::make_shared<ReleasingWaiter>(adm, t);
    for (int i = 0; i < reserved; ++i) {
        REQUIRE(adm.acquire(dummy) == Result::admitted);
        t.enter();
    }

    std::vector<std::thread> pool;
    for (int k = 0; k < threads; ++k) {
        pool.emplace_back([&, k] {
            std::deque<int> held;  // slots this thread owns
            auto release_oldest = [&] {
                held.pop_front();
                t.leave();
                adm.release();
            };
            keep[k].reserve(iterations);
            ready.fetch_add(1);
            while (ready.load() < threads)
                std::this_thread::yield();
            for (int i = 0; i < iterations; ++i) {
                auto w = std::make_shared<ReleasingWaiter>(adm, t);
                keep[k].push_back(w);  // alive until the end: every waiter gets its slot
                Result r = adm.acquire(w);
                switch (r) {
                case Result::admitted:
                    t.enter();
                    admitted_now.fetch_add(1);
                    held.push_back(i);
                    break;
                case Result::queued: queued.fetch_add(1); break;
                case Result::refused: refused.fetch_add(1); break;
                }
                note_in_flight();
                if (!held.empty() && (held.size() >= hold || r != Result::admitted))
                    release_oldest();
            }
            while (!held.empty())
                release_oldest();
            finished.fetch_add(1);
        });
    }

    while (queued.load() == 0 && finished.load() < threads)
        std::this_thread::yield();
    for (int i = 0; i < reserved; ++i) {
        t.leave();
        adm.release();
    }
    for (auto& th : pool)
        th.join();

    INFO("admitted " << admitted_now << ", queued " << queued << ", refused " << refused);
    CHECK(adm.in_flight() == 0);
    CHECK(adm.queued() == 0);
    CHECK(t.current.load() == 0);
    CHECK(t.max.load() <= static_cast<int>(limit));
    CHECK(observed_in_flight_max.load() <= limit);
    CHECK(admitted_now + queued + refused == threads * iterations);
    CHECK(queued.load() > 0);  // the queue path was exercised
    // Every queued waiter was handed a slot exactly once.
    CHECK(t.admitted_late.load() == queued.load());
    long calls = 0, twice = 0;
    for (auto& v : keep)
        for (auto& w : v) {
            calls += w->calls.load();
            twice += w->calls.load() > 1;
        }
    CHECK(twice == 0);
    CHECK(calls == queued.load());
    CHECK(dummy->calls == 0);
}
