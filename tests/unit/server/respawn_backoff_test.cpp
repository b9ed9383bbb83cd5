#include "server/respawn_backoff.hpp"

#include "catch.hpp"

using narwhal::server::RespawnBackoff;
using namespace std::chrono_literals;

TEST_CASE("respawn backoff doubles up to its cap and resets after a long life",
          "[server][supervisor]") {
    RespawnBackoff b;
    CHECK(b.on_death(1s) == RespawnBackoff::first);
    CHECK(b.on_death(1s) == 2 * RespawnBackoff::first);
    CHECK(b.on_death(0s) == 4 * RespawnBackoff::first);
    for (int i = 0; i < 20; ++i)
        b.on_death(1s);
    CHECK(b.on_death(1s) == RespawnBackoff::cap);
    // A worker that lived long enough: its successor starts at once, and the next
    // quick death starts the doubling over.
    CHECK(b.on_death(RespawnBackoff::reset_after) == RespawnBackoff::Duration::zero());
    CHECK(b.on_death(1s) == RespawnBackoff::first);
}
