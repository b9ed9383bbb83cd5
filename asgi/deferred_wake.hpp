// Batching wake-ups across threads. A thread that produces work for another (the
// interpreter for an I/O thread, an I/O thread for the interpreter) can defer the
// wake-up to the end of its current batch of work, so the consumer is woken once per
// batch instead of once per item: each wake-up is a syscall and, when the consumer
// sleeps, a context switch.
#pragma once

namespace narwhal::asgi {

using WakeFn = void (*)(void* target);

// Installs, for the calling thread, the function that arranges for
// run_deferred_wakes() to be called at the end of the current batch. Without one,
// defer_wake() refuses and the caller wakes at once.
void set_wake_scheduler(void (*schedule)(void* ctx), void* ctx);

// Records `fn(target)` to run at the end of the batch. Returns false when this thread
// does not batch (the caller must wake now). A target is recorded once per batch.
bool defer_wake(WakeFn fn, void* target);

// Runs and clears the recorded wake-ups.
void run_deferred_wakes();

}  // namespace narwhal::asgi
