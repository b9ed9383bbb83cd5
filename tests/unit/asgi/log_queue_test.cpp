// The queue of log records into Python's logging: bounded, drops counted, never waits.
#include "asgi/log_queue.hpp"

#include "catch.hpp"

#include <thread>

namespace nlog = narwhal::log;

namespace {
nlog::Record record(std::string message) {
    nlog::Record r;
    r.message = std::move(message);
    return r;
}
}  // namespace

TEST_CASE("log queue: full drops and counts, in order otherwise", "[log]") {
    nlog::LogQueue q(2);
    CHECK(q.push(record("a")));
    CHECK(q.push(record("b")));
    CHECK_FALSE(q.push(record("c")));  // full: dropped, the producer does not wait
    CHECK_FALSE(q.push(record("d")));
    auto batch = q.take();
    REQUIRE(batch.size() == 2);
    CHECK(batch[0].message == "a");
    CHECK(batch[1].message == "b");
    CHECK(q.take_dropped() == 2);
    CHECK(q.take_dropped() == 0);  // reported once
    CHECK(q.push(record("e")));    // room again
}

TEST_CASE("log queue: the consumer wakes for records and for stop", "[log]") {
    nlog::LogQueue q(8);
    std::vector<std::string> seen;
    std::thread consumer([&] {
        for (;;) {
            auto batch = q.wait_take();
            if (batch.empty())
                return;  // stopped, nothing left
            for (auto& r : batch)
                seen.push_back(r.message);
        }
    });
    q.push(record("one"));
    q.push(record("two"));
    q.stop();
    consumer.join();
    CHECK(seen == std::vector<std::string>{"one", "two"});
}
