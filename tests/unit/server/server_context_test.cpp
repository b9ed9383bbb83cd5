#include "server/server_context.hpp"

#include "catch.hpp"

#include <atomic>
#include <thread>
#include <vector>

using narwhal::server::ServerContext;

TEST_CASE("count_request: no limit counts and never calls back", "[server_context]") {
    ServerContext ctx;
    for (int i = 0; i < 100; ++i)
        ctx.count_request();  // on_request_limit is empty: calling it would throw
    CHECK(ctx.stats.requests.load() == 100);
}

TEST_CASE("count_request: the request that reaches the limit calls back once", "[server_context]") {
    ServerContext ctx;
    int calls = 0;
    uint64_t seen_at = 0;
    ctx.request_limit = 3;
    ctx.on_request_limit = [&] {
        ++calls;
        seen_at = ctx.stats.requests.load();
    };
    ctx.count_request();
    ctx.count_request();
    CHECK(calls == 0);
    ctx.count_request();
    CHECK(calls == 1);
    CHECK(seen_at == 3);
    ctx.count_request();  // past the limit (requests in flight while stopping): not again
    CHECK(calls == 1);
}

TEST_CASE("count_request: exactly one of many threads sees the limit", "[server_context]") {
    ServerContext ctx;
    std::atomic<int> calls{0};
    ctx.request_limit = 1000;
    ctx.on_request_limit = [&] { calls.fetch_add(1); };
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 500; ++i)
                ctx.count_request();
        });
    for (auto& t : threads)
        t.join();
    CHECK(ctx.stats.requests.load() == 2000);
    CHECK(calls.load() == 1);
}
