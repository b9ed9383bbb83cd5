// DeadlineTimer driven by a real io_context with poll(): deadlines in the past fire at
// once, deadlines an hour away never do within a test, so nothing here sleeps or
// depends on timing.
#include "server/deadline_timer.hpp"

#include "catch.hpp"

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <vector>

using narwhal::server::DeadlineTimer;

namespace {
enum class Slot { a, b, c };
using Timer = DeadlineTimer<Slot, 3>;
using clock_type = Timer::clock;
using namespace std::chrono_literals;

// Records every wake of the timer and whether it was one to act on.
struct Harness {
    boost::asio::io_context ioc;
    Timer timer{ioc.get_executor()};
    int wakes = 0;    // handler calls
    int current = 0;  // of those, fired() == true
    std::vector<Slot> due;
    clock_type::time_point now = clock_type::now();

    void start() {
        timer.start([this](boost::system::error_code ec) {
            ++wakes;
            if (!timer.fired(ec))
                return;
            ++current;
            timer.expire(clock_type::now(), [this](Slot s) { due.push_back(s); });
        });
    }
    void run() {
        ioc.restart();
        ioc.poll();
    }
};
}  // namespace

TEST_CASE("deadline_timer: a deadline that has passed fires once and is cleared",
          "[deadline_timer]") {
    Harness h;
    CHECK_FALSE(h.timer.is_set(Slot::a));
    CHECK(h.timer.set(Slot::a, h.now - 1s));  // nothing armed: start
    CHECK(h.timer.is_set(Slot::a));
    CHECK(h.timer.pending());
    h.start();
    CHECK_FALSE(h.timer.pending());  // waiting for it now
    h.run();
    CHECK(h.wakes == 1);
    CHECK(h.current == 1);
    CHECK(h.due == std::vector<Slot>{Slot::a});
    CHECK_FALSE(h.timer.is_set(Slot::a));
    CHECK(h.timer.next() == Timer::never);
    CHECK_FALSE(h.timer.pending());
}

TEST_CASE("deadline_timer: a later deadline leaves the timer alone", "[deadline_timer]") {
    Harness h;
    CHECK(h.timer.set(Slot::a, h.now + 1h));
    h.start();
    CHECK_FALSE(h.timer.set(Slot::b, h.now + 2h));  // later: no re-arm
    CHECK_FALSE(h.timer.set(Slot::a, h.now + 3h));  // a moved later: no re-arm either
    CHECK_FALSE(h.timer.pending());
    h.run();
    CHECK(h.wakes == 0);
    CHECK(h.timer.deadline(Slot::a) == h.now + 3h);
    CHECK(h.timer.next() == h.now + 2h);
}

TEST_CASE("deadline_timer: an earlier deadline re-arms, the replaced wait is stale",
          "[deadline_timer]") {
    Harness h;
    CHECK(h.timer.set(Slot::a, h.now + 1h));
    h.start();
    CHECK(h.timer.set(Slot::b, h.now - 1s));  // earlier than the armed hour
    h.start();
    h.run();
    CHECK(h.wakes == 2);    // the replaced wait (aborted) and the new one
    CHECK(h.current == 1);  // only the new one counts
    CHECK(h.due == std::vector<Slot>{Slot::b});
    CHECK(h.timer.is_set(Slot::a));  // still due in an hour
    CHECK(h.timer.pending());        // ...and nothing waits for it: start again
    h.start();
    CHECK_FALSE(h.timer.pending());
    h.run();
    CHECK(h.wakes == 2);
}

TEST_CASE("deadline_timer: a wake that finds nothing due re-arms for what is left",
          "[deadline_timer]") {
    Harness h;
    CHECK(h.timer.set(Slot::a, h.now - 1s));
    h.start();
    // Moved later before the timer ran: the timer still fires at the old time.
    CHECK_FALSE(h.timer.set(Slot::a, h.now + 1h));
    h.run();
    CHECK(h.current == 1);
    CHECK(h.due.empty());
    CHECK(h.timer.pending());
    h.start();
    h.run();
    CHECK(h.current == 1);
}

TEST_CASE("deadline_timer: clear leaves the wait, which then finds nothing", "[deadline_timer]") {
    Harness h;
    CHECK(h.timer.set(Slot::c, h.now - 1s));
    h.start();
    h.timer.clear(Slot::c);
    CHECK_FALSE(h.timer.is_set(Slot::c));
    h.run();
    CHECK(h.current == 1);
    CHECK(h.due.empty());
    CHECK_FALSE(h.timer.pending());
}

TEST_CASE("deadline_timer: expire goes in slot order; later slots set meanwhile count",
          "[deadline_timer]") {
    Harness h;
    h.timer.set(Slot::a, h.now - 2s);
    h.timer.set(Slot::c, h.now - 1s);
    std::vector<Slot> seen;
    h.timer.expire(h.now, [&](Slot s) {
        seen.push_back(s);
        if (s == Slot::a) {
            h.timer.set(Slot::b, h.now - 1s);  // after a: looked at in this pass
        }
        if (s == Slot::b) {
            h.timer.set(Slot::a, h.now - 1s);  // before b: left for the next pass
            h.timer.set(Slot::c, h.now + 1h);  // moved out of reach before its turn
        }
    });
    CHECK(seen == std::vector<Slot>{Slot::a, Slot::b});
    CHECK(h.timer.is_set(Slot::a));
    CHECK(h.timer.deadline(Slot::c) == h.now + 1h);
}

TEST_CASE("deadline_timer: expire takes only what is due", "[deadline_timer]") {
    Harness h;
    h.timer.set(Slot::a, h.now + 1h);
    h.timer.set(Slot::b, h.now);  // exactly now counts as due
    std::vector<Slot> seen;
    h.timer.expire(h.now, [&](Slot s) { seen.push_back(s); });
    CHECK(seen == std::vector<Slot>{Slot::b});
    CHECK(h.timer.is_set(Slot::a));
}

TEST_CASE("deadline_timer: stop cancels the wait and refuses new ones", "[deadline_timer]") {
    Harness h;
    CHECK(h.timer.set(Slot::a, h.now - 1s));
    h.start();
    h.timer.stop();
    CHECK(h.timer.stopped());
    CHECK_FALSE(h.timer.is_set(Slot::a));
    CHECK_FALSE(h.timer.set(Slot::b, h.now - 1s));
    CHECK_FALSE(h.timer.pending());
    h.start();  // does nothing once stopped
    h.run();
    CHECK(h.wakes == 1);    // the cancelled wait
    CHECK(h.current == 0);  // ...is not one to act on
    CHECK(h.due.empty());
}
