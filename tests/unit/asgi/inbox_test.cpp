#include "asgi/deferred_wake.hpp"
#include "asgi/events.hpp"
#include "asgi/inbox.hpp"

#include "catch.hpp"

#include <poll.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using narwhal::asgi::Event;
using narwhal::asgi::Inbox;
using narwhal::asgi::RequestHead;
namespace asgi = narwhal::asgi;

namespace {

bool readable(int fd, int timeout_ms = 0) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}

// Reads (and so clears) the eventfd counter: the number of wake() writes since the last
// read, 0 when none.
uint64_t eventfd_count(int fd) {
    uint64_t v = 0;
    if (::read(fd, &v, sizeof v) != sizeof v) {
        REQUIRE(errno == EAGAIN);
        return 0;
    }
    return v;
}

Event body_event(std::string body) {
    Event ev;
    ev.kind = Event::Kind::body;
    ev.body = std::move(body);
    return ev;
}

Event request_event(std::string tag) {
    Event ev;
    ev.kind = Event::Kind::request;
    ev.head = std::make_unique<RequestHead>();
    ev.body = std::move(tag);
    return ev;
}

std::string encode(uint32_t producer, uint32_t seq) {
    std::string s(8, '\0');
    std::memcpy(s.data(), &producer, 4);
    std::memcpy(s.data() + 4, &seq, 4);
    return s;
}

void decode(const std::string& s, uint32_t& producer, uint32_t& seq) {
    REQUIRE(s.size() == 8);
    std::memcpy(&producer, s.data(), 4);
    std::memcpy(&seq, s.data() + 4, 4);
}

struct SchedulerCount {
    int calls = 0;
    static void schedule(void* self) { ++static_cast<SchedulerCount*>(self)->calls; }
};

// Installs a wake scheduler on this thread; on scope exit runs what is pending (so no
// stale pointer outlives the inboxes declared before it) and uninstalls it.
class ScopedScheduler {
public:
    explicit ScopedScheduler(SchedulerCount& count) {
        asgi::set_wake_scheduler(&SchedulerCount::schedule, &count);
    }
    ~ScopedScheduler() {
        asgi::run_deferred_wakes();
        asgi::set_wake_scheduler(nullptr, nullptr);
    }
    ScopedScheduler(const ScopedScheduler&) = delete;
    ScopedScheduler& operator=(const ScopedScheduler&) = delete;
};

}  // namespace

TEST_CASE("inbox: single producer keeps order", "[asgi][inbox]") {
    Inbox inbox(8);
    for (int i = 0; i < 100; ++i)
        inbox.push(body_event(std::to_string(i)));
    CHECK(inbox.size() == 100);

    std::vector<Event> out;
    CHECK(inbox.take(out, 30));
    CHECK(out.size() == 30);
    CHECK(inbox.size() == 70);
    CHECK(inbox.take(out, 30));
    CHECK(out.size() == 60);
    // Exactly the rest: nothing remains, so false.
    CHECK_FALSE(inbox.take(out, 40));
    REQUIRE(out.size() == 100);
    CHECK(inbox.size() == 0);
    for (int i = 0; i < 100; ++i) {
        CHECK(out[i].kind == Event::Kind::body);
        CHECK(out[i].body == std::to_string(i));
    }
    // Taking from an empty inbox appends nothing.
    CHECK_FALSE(inbox.take(out, 10));
    CHECK(out.size() == 100);
}

TEST_CASE("inbox: take appends to what the caller already holds", "[asgi][inbox]") {
    Inbox inbox(8);
    inbox.push(body_event("b"));
    std::vector<Event> out;
    out.push_back(body_event("a"));
    CHECK_FALSE(inbox.take(out, 10));
    REQUIRE(out.size() == 2);
    CHECK(out[0].body == "a");
    CHECK(out[1].body == "b");
}

TEST_CASE("inbox: requests and other events share one FIFO", "[asgi][inbox]") {
    Inbox inbox(8);
    Event r1 = request_event("r1");
    REQUIRE(inbox.push_request(r1));
    inbox.push(body_event("b1"));
    Event r2 = request_event("r2");
    REQUIRE(inbox.push_request(r2));
    std::vector<Event> out;
    CHECK_FALSE(inbox.take(out, 10));
    REQUIRE(out.size() == 3);
    CHECK(out[0].kind == Event::Kind::request);
    CHECK(out[0].body == "r1");
    CHECK(out[0].head != nullptr);
    CHECK(out[1].kind == Event::Kind::body);
    CHECK(out[2].body == "r2");
}

TEST_CASE("inbox: many producers, one consumer draining in bounded batches", "[asgi][inbox]") {
    constexpr uint32_t producers = 4;
    constexpr uint32_t per_producer = 20'000;
    constexpr uint32_t total = producers * per_producer;
    // Every other event of each producer is a new request; the capacity admits all of
    // them, so none is refused, and afterwards the request count must be back to zero.
    constexpr std::size_t request_capacity = total / 2;
    Inbox inbox(request_capacity);

    std::atomic<uint32_t> refused{0};
    std::vector<std::thread> threads;
    for (uint32_t p = 0; p < producers; ++p) {
        threads.emplace_back([&inbox, &refused, p] {
            for (uint32_t seq = 0; seq < per_producer; ++seq) {
                if (seq % 2 == 0) {
                    Event ev = request_event(encode(p, seq));
                    if (!inbox.push_request(ev))
                        refused.fetch_add(1);
                } else {
                    inbox.push(body_event(encode(p, seq)));
                }
            }
        });
    }

    std::array<int64_t, producers> last{};
    last.fill(-1);
    uint32_t received = 0;
    bool over_max = false, out_of_order = false, duplicate_or_foreign = false, stalled = false;
    const std::array<std::size_t, 4> batch_sizes{1, 7, 64, 500};
    std::size_t round = 0;
    std::vector<Event> out;
    while (received < total) {
        // The consumer's protocol: sleep on the fd, then take until nothing remains.
        if (!readable(inbox.fd(), 5000)) {
            stalled = true;  // a wake-up was lost: events queued, fd never readable
            break;
        }
        bool more = true;
        while (more) {
            const std::size_t max = batch_sizes[round++ % batch_sizes.size()];
            out.clear();
            more = inbox.take(out, max);
            if (out.size() > max)
                over_max = true;
            for (const Event& ev : out) {
                uint32_t p = 0, seq = 0;
                decode(ev.body, p, seq);
                if (p >= producers) {
                    duplicate_or_foreign = true;
                    continue;
                }
                if (static_cast<int64_t>(seq) != last[p] + 1)
                    out_of_order = true;
                if ((seq % 2 == 0) != (ev.kind == Event::Kind::request))
                    duplicate_or_foreign = true;
                last[p] = seq;
                ++received;
            }
        }
    }
    for (auto& t : threads)
        t.join();

    CHECK_FALSE(stalled);
    CHECK_FALSE(over_max);
    CHECK_FALSE(out_of_order);
    CHECK_FALSE(duplicate_or_foreign);
    CHECK(refused.load() == 0);
    CHECK(received == total);
    for (uint32_t p = 0; p < producers; ++p)
        CHECK(last[p] == per_producer - 1);
    CHECK(inbox.size() == 0);

    // Every taken request was un-counted: the full capacity is available again.
    for (std::size_t i = 0; i < request_capacity; ++i) {
        Event ev = request_event("again");
        REQUIRE(inbox.push_request(ev));
    }
    Event one_more = request_event("over");
    CHECK_FALSE(inbox.push_request(one_more));
}

TEST_CASE("inbox: the eventfd is written only on empty -> non-empty", "[asgi][inbox]") {
    Inbox inbox(8);
    REQUIRE(inbox.fd() >= 0);
    CHECK_FALSE(readable(inbox.fd()));

    SECTION("first push makes it readable, later pushes do not write again") {
        inbox.push(body_event("a"));
        CHECK(readable(inbox.fd()));
        inbox.push(body_event("b"));
        inbox.push(body_event("c"));
        CHECK(eventfd_count(inbox.fd()) == 1);
        // Queue still non-empty: further pushes owe no wake-up.
        inbox.push(body_event("d"));
        CHECK_FALSE(readable(inbox.fd()));
        CHECK(inbox.size() == 4);
    }
    SECTION("take clears it, including when events remain") {
        inbox.push(body_event("a"));
        inbox.push(body_event("b"));
        REQUIRE(readable(inbox.fd()));
        std::vector<Event> out;
        CHECK(inbox.take(out, 1));  // one left: the caller reschedules itself
        CHECK_FALSE(readable(inbox.fd()));
        CHECK_FALSE(inbox.take(out, 1));
        CHECK_FALSE(readable(inbox.fd()));
        CHECK(out.size() == 2);
    }
    SECTION("after the queue empties, the next push wakes again") {
        inbox.push(body_event("a"));
        std::vector<Event> out;
        CHECK_FALSE(inbox.take(out, 10));
        CHECK_FALSE(readable(inbox.fd()));
        inbox.push(body_event("b"));
        CHECK(readable(inbox.fd()));
        CHECK(eventfd_count(inbox.fd()) == 1);
    }
    SECTION("a partial take leaves the queue non-empty, so a push does not wake") {
        inbox.push(body_event("a"));
        inbox.push(body_event("b"));
        std::vector<Event> out;
        REQUIRE(inbox.take(out, 1));
        inbox.push(body_event("c"));
        CHECK_FALSE(readable(inbox.fd()));
    }
    SECTION("push_request follows the same rule") {
        Event r = request_event("r");
        REQUIRE(inbox.push_request(r));
        Event r2 = request_event("r2");
        REQUIRE(inbox.push_request(r2));
        CHECK(eventfd_count(inbox.fd()) == 1);
    }
    SECTION("wake() writes unconditionally") {
        inbox.wake();
        inbox.wake();
        CHECK(eventfd_count(inbox.fd()) == 2);
    }
}

TEST_CASE("inbox: request capacity", "[asgi][inbox]") {
    Inbox inbox(2);
    Event a = request_event("a"), b = request_event("b");
    REQUIRE(inbox.push_request(a));
    REQUIRE(inbox.push_request(b));
    CHECK(a.head == nullptr);  // moved into the queue

    Event c = request_event("c");
    RequestHead* c_head = c.head.get();
    CHECK_FALSE(inbox.push_request(c));
    // Refused: the event is left untouched for the caller's 503.
    CHECK(c.head.get() == c_head);
    CHECK(c.body == "c");
    CHECK(c.kind == Event::Kind::request);
    CHECK(inbox.size() == 2);

    // Other events are always accepted, even with the request queue full.
    for (int i = 0; i < 50; ++i) {
        Event d;
        d.kind = i % 2 ? Event::Kind::disconnect : Event::Kind::drained;
        inbox.push(std::move(d));
    }
    Event s;
    s.kind = Event::Kind::shutdown;
    inbox.push(std::move(s));
    CHECK(inbox.size() == 53);
    CHECK_FALSE(inbox.push_request(c));

    // Taking a queued request frees its slot.
    std::vector<Event> out;
    REQUIRE(inbox.take(out, 1));
    REQUIRE(out.back().body == "a");
    CHECK(inbox.push_request(c));  // one slot freed
    CHECK(c.head == nullptr);
    Event d = request_event("d");
    CHECK_FALSE(inbox.push_request(d));  // b and c are queued: full again

    // Draining everything frees both slots.
    CHECK_FALSE(inbox.take(out, 1000));
    CHECK(inbox.size() == 0);
    CHECK(inbox.push_request(d));
    Event e = request_event("e");
    CHECK(inbox.push_request(e));
    Event f = request_event("f");
    CHECK_FALSE(inbox.push_request(f));
}

TEST_CASE("inbox: non-request events taken do not free request slots", "[asgi][inbox]") {
    Inbox inbox(1);
    inbox.push(body_event("x"));
    Event r = request_event("r");
    REQUIRE(inbox.push_request(r));
    std::vector<Event> out;
    REQUIRE(inbox.take(out, 1));  // takes only the body event
    REQUIRE(out.back().kind == Event::Kind::body);
    Event r2 = request_event("r2");
    CHECK_FALSE(inbox.push_request(r2));
}

TEST_CASE("inbox: zero request capacity refuses every request", "[asgi][inbox]") {
    Inbox inbox(0);
    Event r = request_event("r");
    CHECK_FALSE(inbox.push_request(r));
    CHECK(r.head != nullptr);
    CHECK(inbox.size() == 0);
    CHECK_FALSE(readable(inbox.fd()));
}

TEST_CASE("inbox: without a wake scheduler the eventfd write is immediate",
          "[asgi][inbox][deferred_wake]") {
    Inbox inbox(8);
    inbox.push(body_event("a"));
    CHECK(readable(inbox.fd()));
    CHECK_FALSE(asgi::defer_wake([](void*) {}, &inbox));
}

TEST_CASE("inbox: a wake scheduler defers the eventfd write to the end of the batch",
          "[asgi][inbox][deferred_wake]") {
    Inbox first(8), second(8);
    SchedulerCount count;
    ScopedScheduler scheduler(count);

    first.push(body_event("a"));
    CHECK_FALSE(readable(first.fd()));
    CHECK(count.calls == 1);
    first.push(body_event("b"));
    second.push(body_event("c"));
    CHECK_FALSE(readable(second.fd()));
    // One schedule call per batch, however many inboxes or events are involved.
    CHECK(count.calls == 1);

    asgi::run_deferred_wakes();
    CHECK(readable(first.fd()));
    CHECK(readable(second.fd()));
    CHECK(eventfd_count(first.fd()) == 1);
    CHECK(eventfd_count(second.fd()) == 1);

    // The next batch schedules again.
    std::vector<Event> out;
    REQUIRE_FALSE(first.take(out, 10));
    first.push(body_event("d"));
    CHECK(count.calls == 2);
    CHECK_FALSE(readable(first.fd()));
    asgi::run_deferred_wakes();
    CHECK(eventfd_count(first.fd()) == 1);
    // Nothing is left recorded: running again writes nothing.
    asgi::run_deferred_wakes();
    CHECK_FALSE(readable(first.fd()));
    CHECK_FALSE(readable(second.fd()));
}

TEST_CASE("inbox: a target is woken once per batch even if it empties and refills",
          "[asgi][inbox][deferred_wake]") {
    Inbox inbox(8);
    SchedulerCount count;
    ScopedScheduler scheduler(count);

    std::vector<Event> out;
    inbox.push(body_event("a"));
    REQUIRE_FALSE(inbox.take(out, 10));
    inbox.push(body_event("b"));  // empty -> non-empty again, same batch
    CHECK(count.calls == 1);
    asgi::run_deferred_wakes();
    CHECK(eventfd_count(inbox.fd()) == 1);
}

TEST_CASE("inbox: the wake scheduler is per thread", "[asgi][inbox][deferred_wake]") {
    Inbox inbox(8);
    SchedulerCount count;
    std::atomic<bool> pushed{false}, may_run{false};
    std::atomic<bool> readable_before_run{true};

    std::thread producer([&] {
        asgi::set_wake_scheduler(&SchedulerCount::schedule, &count);
        inbox.push(body_event("from producer"));
        pushed = true;
        while (!may_run)
            std::this_thread::yield();
        asgi::run_deferred_wakes();
        asgi::set_wake_scheduler(nullptr, nullptr);
    });
    while (!pushed)
        std::this_thread::yield();
    readable_before_run = readable(inbox.fd());
    // This thread has no scheduler: its own push would wake at once, but the queue is
    // not empty, so it owes nothing.
    inbox.push(body_event("from main"));
    bool readable_after_main_push = readable(inbox.fd());
    may_run = true;
    producer.join();

    CHECK_FALSE(readable_before_run.load());
    CHECK_FALSE(readable_after_main_push);
    CHECK(count.calls == 1);
    CHECK(eventfd_count(inbox.fd()) == 1);

    // And an empty -> non-empty push from this (unscheduled) thread wakes immediately.
    std::vector<Event> out;
    REQUIRE_FALSE(inbox.take(out, 10));
    inbox.push(body_event("again"));
    CHECK(readable(inbox.fd()));
}
