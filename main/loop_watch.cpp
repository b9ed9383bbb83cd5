#include "main/loop_watch.hpp"

#include <algorithm>

namespace narwhal {

namespace {

// How often the loop beats: two beats per watchdog threshold, so a healthy loop is never
// more than half a threshold late. Under a master the loop beats even with the watchdog
// off: four beats per health-check timeout (at most 0.5 s apart, which also bounds how
// stale the stats the master reads, and its --limit-max-requests count, can be).
double beat_interval(const config::Settings& settings, bool in_master_table) {
    double interval = settings.watchdog_threshold / 2;
    if (in_master_table) {
        double for_master = 0.5;
        if (settings.timeout_worker_healthcheck > 0)
            for_master = std::min(for_master, settings.timeout_worker_healthcheck / 4);
        interval = interval > 0 ? std::min(interval, for_master) : for_master;
    }
    return interval;
}

}  // namespace

LoopWatch::LoopWatch(const config::Settings& settings, int interpreter, server::FrontEnd& front,
                     server::WorkerSlot* slot)
    : settings_(settings), interpreter_(interpreter), front_(front),
      heartbeat_interval_(beat_interval(settings, slot != nullptr)) {
    // Each beat: how late it ran goes to the loop-lag histogram (the metrics endpoint);
    // under a master, the worker's slot also gets the beat and the stats counters.
    monitor_.on_beat = [this, slot, &front,
                        loop = static_cast<std::size_t>(interpreter)](int64_t now) {
        if (now != 0) {
            if (due_ns_ != 0)
                front.context().metrics->observe_lag(loop, now - due_ns_);
            due_ns_ = now + static_cast<int64_t>(heartbeat_interval_ * 1e9);
        }
        if (!slot)
            return;
        // At the end too: the master keeps a reaped worker's last published counts.
        slot->publish(server::counters_of(front.context().stats,
                                          static_cast<int64_t>(front.in_flight()),
                                          static_cast<int64_t>(front.queued())));
        if (now == 0)
            slot->end_loop(loop);
        else
            slot->beat(loop, now);
    };
}

LoopWatch::~LoopWatch() { stop(); }

void LoopWatch::start(PyInterpreterState* interpreter) {
    if (settings_.watchdog_threshold <= 0)
        return;
    stacks_ = std::make_unique<python::StackReader>(interpreter);
    watchdog_ = std::make_unique<server::Watchdog>(monitor_, front_.context().stats, *stacks_,
                                                   settings_.watchdog_threshold, interpreter_);
    watchdog_->start();
}

void LoopWatch::stop() {
    if (stopped_)
        return;
    stopped_ = true;
    monitor_.stop();
    if (watchdog_)
        watchdog_->stop();
    if (stacks_)
        stacks_->stop();
}

}  // namespace narwhal
