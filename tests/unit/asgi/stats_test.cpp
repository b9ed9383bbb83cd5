#include "asgi/stats.hpp"

#include "catch.hpp"

#include <algorithm>
#include <cstdint>
#include <random>
#include <thread>
#include <vector>

using narwhal::asgi::Stats;

TEST_CASE("Stats: counters start at zero", "[asgi][stats]") {
    Stats s;
    CHECK(s.requests == 0);
    CHECK(s.shed == 0);
    CHECK(s.queue_timeouts == 0);
    CHECK(s.connections == 0);
    CHECK(s.cancelled == 0);
    CHECK(s.abandoned == 0);
    CHECK(s.loop_stalls == 0);
    CHECK(s.loop_lag_max_us == 0);
}

TEST_CASE("Stats: note_lag keeps the maximum", "[asgi][stats]") {
    Stats s;
    s.note_lag(500);
    CHECK(s.loop_lag_max_us == 500);
    s.note_lag(200);
    CHECK(s.loop_lag_max_us == 500);
    s.note_lag(500);
    CHECK(s.loop_lag_max_us == 500);
    s.note_lag(501);
    CHECK(s.loop_lag_max_us == 501);
    s.note_lag(-7);
    CHECK(s.loop_lag_max_us == 501);
    s.note_lag(0);
    CHECK(s.loop_lag_max_us == 501);
}

TEST_CASE("Stats: note_lag keeps the maximum under concurrent writers", "[asgi][stats][threads]") {
    constexpr int threads = 4;
    constexpr int per_thread = 50'000;
    for (int round = 0; round < 5; ++round) {
        Stats s;
        std::vector<std::vector<int64_t>> values(threads);
        int64_t expected = 0;
        std::mt19937_64 rng(1234 + round);
        for (int k = 0; k < threads; ++k) {
            // Disjoint values per thread; one thread ascending, one descending, the rest
            // shuffled, so the winning write comes at different times.
            for (int i = 0; i < per_thread; ++i)
                values[k].push_back(static_cast<int64_t>(i) * threads + k);
            if (k == 1)
                std::reverse(values[k].begin(), values[k].end());
            else if (k > 1)
                std::shuffle(values[k].begin(), values[k].end(), rng);
            expected = std::max(expected, *std::max_element(values[k].begin(), values[k].end()));
        }
        std::vector<std::thread> pool;
        for (int k = 0; k < threads; ++k)
            pool.emplace_back([&s, &values, k] {
                for (int64_t v : values[k])
                    s.note_lag(v);
            });
        for (auto& t : pool)
            t.join();
        INFO("round " << round);
        CHECK(s.loop_lag_max_us.load() == expected);
    }
}
