#include "server/rolling_restart.hpp"

#include "catch.hpp"

using narwhal::server::RollingRestart;

TEST_CASE("a rolling restart replaces one position at a time, in order", "[server][supervisor]") {
    RollingRestart roll;
    CHECK_FALSE(roll.active());
    CHECK_FALSE(roll.next_step());
    CHECK(roll.request({7, 9}) == RollingRestart::Request::started);
    CHECK(roll.active());
    CHECK(roll.next_step() == 7u);
    CHECK((roll.step() == 1 && roll.total() == 2));
    // One step at a time: nothing more until this one is over.
    CHECK_FALSE(roll.next_step());
    CHECK_FALSE(roll.step_done());
    CHECK(roll.next_step() == 9u);
    CHECK(roll.step() == 2);
    CHECK(roll.step_done());
    CHECK_FALSE(roll.active());
    CHECK_FALSE(roll.next_step());
}

TEST_CASE("SIGHUPs during a step coalesce into one new roll after it", "[server][supervisor]") {
    RollingRestart roll;
    roll.request({1, 2, 3});
    CHECK(roll.next_step() == 1u);
    CHECK(roll.request({1, 2, 3}) == RollingRestart::Request::restarts);
    CHECK(roll.request({1, 2, 3, 4}) == RollingRestart::Request::restarts);
    // The step under way finishes first.
    CHECK(roll.current() == 1u);
    CHECK_FALSE(roll.next_step());
    CHECK_FALSE(roll.step_done());
    // Then every position of the last SIGHUP, the one just replaced included.
    CHECK(roll.total() == 4);
    for (RollingRestart::Id id : {1, 2, 3, 4}) {
        CHECK(roll.next_step() == id);
        bool over = roll.step_done();
        CHECK(over == (id == 4));
    }
    CHECK_FALSE(roll.active());
}

TEST_CASE("a SIGHUP between two steps starts the roll over at once", "[server][supervisor]") {
    RollingRestart roll;
    roll.request({1, 2});
    roll.next_step();
    roll.step_done();
    CHECK(roll.request({1, 2}) == RollingRestart::Request::restarts);
    CHECK((roll.step() == 0 && roll.total() == 2));
    CHECK(roll.next_step() == 1u);
}

TEST_CASE("a position that leaves (SIGTTOU) leaves the roll", "[server][supervisor]") {
    RollingRestart roll;
    roll.request({1, 2, 3});
    CHECK(roll.next_step() == 1u);
    CHECK_FALSE(roll.forget(2));
    CHECK(roll.total() == 2);
    CHECK_FALSE(roll.step_done());
    CHECK(roll.next_step() == 3u);
    // The position of the step under way: that step is over, and with it the roll.
    CHECK(roll.forget(3));
    CHECK_FALSE(roll.active());
    // Without a roll, or a position that was never in it: nothing changes.
    CHECK_FALSE(roll.forget(3));
    CHECK_FALSE(roll.active());
    roll.request({5});
    CHECK_FALSE(roll.forget(6));
    CHECK(roll.total() == 1);
}

TEST_CASE("a failed step stops the roll unless a SIGHUP came meanwhile", "[server][supervisor]") {
    RollingRestart roll;
    roll.request({1, 2});
    roll.next_step();
    CHECK_FALSE(roll.abort());
    CHECK_FALSE(roll.active());
    CHECK_FALSE(roll.next_step());

    roll.request({1, 2});
    roll.next_step();
    roll.request({1, 2});
    CHECK(roll.abort());
    CHECK((roll.step() == 0 && roll.total() == 2));
    CHECK(roll.next_step() == 1u);
}
