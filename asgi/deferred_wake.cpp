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
    // The previous batch's list, emptied, kept for its capacity.
    std::vector<std::pair<WakeFn, void*>> spare;
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
    // Trade the recorded list for the spare one instead of moving it out, so that both
    // keep their capacity and a batch allocates nothing once they have grown. Wakes
    // deferred while these run go to the next batch; a nested call finds no spare and
    // only allocates.
    auto wakes = std::move(batch.spare);
    wakes.swap(batch.wakes);
    for (auto& [fn, target] : wakes)
        fn(target);
    wakes.clear();
    batch.spare = std::move(wakes);
}

}  // namespace narwhal::asgi
