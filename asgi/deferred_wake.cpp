#include "asgi/deferred_wake.hpp"

#include <utility>
#include <vector>

namespace narwhal::asgi {

namespace {
struct Batch {
    void (*schedule)(void*) = nullptr;
    void* ctx = nullptr;
    bool scheduled = false;
    std::vector<std::pair<WakeFn, void*>> wakes;
};
thread_local Batch batch;
}  // namespace

void set_wake_scheduler(void (*schedule)(void* ctx), void* ctx) {
    batch.schedule = schedule;
    batch.ctx = ctx;
}

bool defer_wake(WakeFn fn, void* target) {
    if (!batch.schedule)
        return false;
    for (auto& w : batch.wakes)
        if (w.first == fn && w.second == target)
            return true;
    batch.wakes.emplace_back(fn, target);
    if (!batch.scheduled) {
        batch.scheduled = true;
        batch.schedule(batch.ctx);
    }
    return true;
}

void run_deferred_wakes() {
    batch.scheduled = false;
    auto wakes = std::move(batch.wakes);
    batch.wakes.clear();
    for (auto& [fn, target] : wakes)
        fn(target);
}

}  // namespace narwhal::asgi
