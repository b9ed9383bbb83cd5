#include "server/worker_slots.hpp"

#include <sys/mman.h>

#include <cerrno>
#include <new>
#include <system_error>

namespace narwhal::server {
namespace {

constexpr auto relaxed = std::memory_order_relaxed;
constexpr auto release_order = std::memory_order_release;
constexpr auto acquire = std::memory_order_acquire;

}  // namespace

std::string_view to_string(WorkerState state) {
    switch (state) {
    case WorkerState::stopped: return "stopped";
    case WorkerState::starting: return "starting";
    case WorkerState::ready: return "ready";
    case WorkerState::draining: return "draining";
    }
    return "unknown";
}

void WorkerSlot::set_state(WorkerState s) { state.store(static_cast<uint32_t>(s), release_order); }

bool WorkerSlot::beat(std::size_t loop, int64_t now_ns) {
    if (loop >= max_loops)
        return false;
    heartbeat_ns[loop].store(now_ns, release_order);
    return true;
}

void WorkerSlot::end_loop(std::size_t loop) {
    if (loop < max_loops)
        heartbeat_ns[loop].store(0, release_order);
}

WorkerCounters counters_of(const asgi::Stats& stats, int64_t in_flight, int64_t queued) {
    // Each counter is read on its own: a report is a sample, not a transaction.
    WorkerCounters c;
    c.requests = stats.requests.load(relaxed);
    c.shed = stats.shed.load(relaxed);
    c.queue_timeouts = stats.queue_timeouts.load(relaxed);
    c.in_flight = in_flight;
    c.queued = queued;
    c.connections = stats.connections.load(relaxed);
    c.loop_stalls = stats.loop_stalls.load(relaxed);
    c.loop_lag_max_us = stats.loop_lag_max_us.load(relaxed);
    c.cancelled = stats.cancelled.load(relaxed);
    c.abandoned = stats.abandoned.load(relaxed);
    c.tls_handshake_failures = stats.tls_handshake_failures.load(relaxed);
    c.proxy_protocol_errors = stats.proxy_protocol_errors.load(relaxed);
    c.orphan_tasks = stats.orphan_tasks.load(relaxed);
    c.unretrieved_exceptions = stats.unretrieved_exceptions.load(relaxed);
    return c;
}

void WorkerSlot::publish(const WorkerCounters& c) {
    requests.store(c.requests, relaxed);
    shed.store(c.shed, relaxed);
    queue_timeouts.store(c.queue_timeouts, relaxed);
    in_flight.store(c.in_flight, relaxed);
    queued.store(c.queued, relaxed);
    connections.store(c.connections, relaxed);
    loop_stalls.store(c.loop_stalls, relaxed);
    loop_lag_max_us.store(c.loop_lag_max_us, relaxed);
    cancelled.store(c.cancelled, relaxed);
    abandoned.store(c.abandoned, relaxed);
    tls_handshake_failures.store(c.tls_handshake_failures, relaxed);
    proxy_protocol_errors.store(c.proxy_protocol_errors, relaxed);
    orphan_tasks.store(c.orphan_tasks, relaxed);
    unretrieved_exceptions.store(c.unretrieved_exceptions, relaxed);
}

WorkerSnapshot WorkerSlot::snapshot(std::size_t index) const {
    WorkerSnapshot s;
    s.index = index;
    s.pid = pid.load(acquire);
    s.generation = generation.load(acquire);
    s.state = static_cast<WorkerState>(state.load(acquire));
    s.started_ns = started_ns.load(acquire);
    for (std::size_t i = 0; i < max_loops; ++i)
        s.heartbeat_ns[i] = heartbeat_ns[i].load(acquire);
    WorkerCounters& c = s.counters;
    c.requests = requests.load(acquire);
    c.shed = shed.load(acquire);
    c.queue_timeouts = queue_timeouts.load(acquire);
    c.in_flight = in_flight.load(acquire);
    c.queued = queued.load(acquire);
    c.connections = connections.load(acquire);
    c.loop_stalls = loop_stalls.load(acquire);
    c.loop_lag_max_us = loop_lag_max_us.load(acquire);
    c.cancelled = cancelled.load(acquire);
    c.abandoned = abandoned.load(acquire);
    c.tls_handshake_failures = tls_handshake_failures.load(acquire);
    c.proxy_protocol_errors = proxy_protocol_errors.load(acquire);
    c.orphan_tasks = orphan_tasks.load(acquire);
    c.unretrieved_exceptions = unretrieved_exceptions.load(acquire);
    return s;
}

WorkerSlots::WorkerSlots(std::size_t capacity)
    : capacity_(capacity == 0 ? 1 : capacity), bytes_(capacity_ * sizeof(WorkerSlot)) {
    // Anonymous shared memory: zero-filled pages that fork() shares instead of copying.
    // mmap's page alignment covers the slots' 64-byte alignment.
    void* memory = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED)
        throw std::system_error(errno, std::system_category(), "mmap of the worker slots");
    slots_ = static_cast<WorkerSlot*>(memory);
    for (std::size_t i = 0; i < capacity_; ++i)
        new (&slots_[i]) WorkerSlot();
}

WorkerSlots::~WorkerSlots() { munmap(slots_, bytes_); }

std::size_t WorkerSlots::find_free() const {
    for (std::size_t i = 0; i < capacity_; ++i)
        if (slots_[i].state.load(acquire) == static_cast<uint32_t>(WorkerState::stopped))
            return i;
    return capacity_;
}

uint64_t WorkerSlots::assign(std::size_t index) {
    WorkerSlot& s = slots_[index];
    s.pid.store(0, relaxed);
    s.started_ns.store(0, relaxed);
    for (auto& beat : s.heartbeat_ns)
        beat.store(0, relaxed);
    for (auto* counter : {&s.requests, &s.shed, &s.queue_timeouts, &s.loop_stalls, &s.cancelled,
                          &s.abandoned, &s.tls_handshake_failures, &s.proxy_protocol_errors,
                          &s.orphan_tasks, &s.unretrieved_exceptions})
        counter->store(0, relaxed);
    for (auto* gauge : {&s.in_flight, &s.queued, &s.connections, &s.loop_lag_max_us})
        gauge->store(0, relaxed);
    s.metrics.reset();
    s.state.store(static_cast<uint32_t>(WorkerState::starting), relaxed);
    // Last, with release: whoever sees the new generation sees the cleared slot.
    return s.generation.fetch_add(1, std::memory_order_acq_rel) + 1;
}

void WorkerSlots::set_pid(std::size_t index, int32_t pid, int64_t started_ns) {
    slots_[index].started_ns.store(started_ns, relaxed);
    slots_[index].pid.store(pid, release_order);  // last: whoever sees the pid sees the time
}

void WorkerSlots::release(std::size_t index) { slots_[index].set_state(WorkerState::stopped); }

std::vector<WorkerSnapshot> WorkerSlots::snapshot() const {
    std::vector<WorkerSnapshot> out;
    out.reserve(capacity_);
    for (std::size_t i = 0; i < capacity_; ++i)
        out.push_back(slots_[i].snapshot(i));
    return out;
}

}  // namespace narwhal::server
