#include "server/pubsub_redis.hpp"

#include "catch.hpp"

#include <set>

using namespace narwhal::server;
using std::chrono::milliseconds;

TEST_CASE("Redis reconnects back off from 100 ms to 5 s, with jitter", "[server][pubsub_redis]") {
    std::mt19937_64 random(42);
    RedisBackoff backoff;
    // Each delay is drawn between half and all of 100, 200, 400, ... 5000 ms.
    milliseconds full = RedisBackoff::first;
    for (int i = 0; i < 12; ++i) {
        milliseconds d = backoff.next(random);
        INFO(i << ": " << d.count() << " ms of " << full.count());
        CHECK(d >= full / 2);
        CHECK(d <= full);
        full = std::min(full * 2, RedisBackoff::cap);
    }
    CHECK(full == milliseconds(5000));
    backoff.reset();
    CHECK(backoff.next(random) <= milliseconds(100));
}

TEST_CASE("Redis reconnect delays are spread", "[server][pubsub_redis]") {
    // Many workers retrying at once do not all draw the same delay.
    std::mt19937_64 random(7);
    std::set<int64_t> seen;
    for (int i = 0; i < 20; ++i) {
        RedisBackoff backoff;
        seen.insert(backoff.next(random).count());
    }
    CHECK(seen.size() > 5);
}
