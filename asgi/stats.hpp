// A worker's counters, written by the I/O threads and the interpreter, read by the
// stats report (SIGUSR1, shutdown) and, later, the metrics endpoint.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace narwhal::asgi {

struct Stats {
    std::atomic<uint64_t> requests{0};  // handed to the interpreter
    std::atomic<uint64_t> shed{0};      // answered 503: no slot, queue full, inbox full

    std::atomic<uint64_t> queue_timeouts{0};          // of those, waited --timeout-queue
    std::atomic<int64_t> connections{0};              // open now
    std::atomic<uint64_t> cancelled{0};               // tasks cancelled by a cancel scope
    std::atomic<uint64_t> abandoned{0};               // tasks that ignored cancellation
    std::atomic<uint64_t> tls_handshake_failures{0};  // TLS connections closed before a request
    std::atomic<uint64_t> proxy_protocol_errors{0};   // PROXY header missing, bad, or refused
    std::atomic<uint64_t> loop_stalls{0};             // watchdog reports
    std::atomic<int64_t> loop_lag_max_us{0};          // worst heartbeat delay seen
    // Reported by the Python side (python/narwhal/_runtime.py through the dispatcher):
    std::atomic<uint64_t> orphan_tasks{0};            // spawned tasks that outlived their request
    std::atomic<uint64_t> unretrieved_exceptions{0};  // task exceptions never retrieved

    void note_lag(int64_t us) {
        int64_t seen = loop_lag_max_us.load(std::memory_order_relaxed);
        while (us > seen && !loop_lag_max_us.compare_exchange_weak(seen, us)) {
        }
    }
};

}  // namespace narwhal::asgi
