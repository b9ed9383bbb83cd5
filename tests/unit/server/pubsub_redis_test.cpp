#include "server/pubsub_redis.hpp"

#include "catch.hpp"

#include <set>

using namespace narwhal::server;
using std::chrono::milliseconds;

TEST_CASE("Redis reconnects back off from 100 ms to the cap, with jitter",
          "[server][pubsub_redis]") {
    std::mt19937_64 random(42);
    const milliseconds cap(5000);  // --pubsub-redis-retry-max's default
    RedisBackoff backoff(cap);
    // Each delay is drawn between half and all of 100, 200, 400, ... 5000 ms.
    milliseconds full = RedisBackoff::first;
    for (int i = 0; i < 12; ++i) {
        milliseconds d = backoff.next(random);
        INFO(i << ": " << d.count() << " ms of " << full.count());
        CHECK(d >= full / 2);
        CHECK(d <= full);
        full = std::min(full * 2, cap);
    }
    CHECK(full == cap);
    backoff.reset();
    CHECK(backoff.next(random) <= milliseconds(100));
}

TEST_CASE("A Redis retry cap below 100 ms is the delay from the first retry",
          "[server][pubsub_redis]") {
    std::mt19937_64 random(3);
    RedisBackoff backoff(milliseconds(40));
    for (int i = 0; i < 5; ++i) {
        milliseconds d = backoff.next(random);
        CHECK(d >= milliseconds(20));
        CHECK(d <= milliseconds(40));
    }
    RedisBackoff tiny(milliseconds(0));  // the loader refuses 0; a delay stays above it
    CHECK(tiny.next(random) <= milliseconds(1));
}

TEST_CASE("Redis reconnect delays are spread", "[server][pubsub_redis]") {
    // Many workers retrying at once do not all draw the same delay.
    std::mt19937_64 random(7);
    std::set<int64_t> seen;
    for (int i = 0; i < 20; ++i) {
        RedisBackoff backoff(milliseconds(5000));
        seen.insert(backoff.next(random).count());
    }
    CHECK(seen.size() > 5);
}
