#include "server/health.hpp"

#include "server/server_context.hpp"

#include <fmt/format.h>

#include <unistd.h>

namespace narwhal::server {

HealthPaths::HealthPaths(std::string live_path, std::string ready_path, double timeout_seconds)
    : live_path_(std::move(live_path)), ready_path_(std::move(ready_path)),
      timeout_ns_(static_cast<int64_t>(timeout_seconds * 1e9)) {}

HealthPaths::Probe HealthPaths::match(std::string_view target) const {
    std::string_view path = target.substr(0, target.find('?'));
    if (!live_path_.empty() && path == live_path_)
        return Probe::live;
    if (!ready_path_.empty() && path == ready_path_)
        return Probe::ready;
    return Probe::none;
}

HealthPaths::Answer HealthPaths::answer(Probe probe, const ServerContext& ctx,
                                        int64_t now_ns) const {
    bool live = true;
    bool admission_full = false;
    const bool draining = ctx.draining.load(std::memory_order_relaxed);
    std::size_t in_flight = 0, queued = 0;
    std::string loops;
    for (std::size_t i = 0; i < ctx.lanes.size(); ++i) {
        const asgi::Admission& a = *ctx.lanes[i].admission;
        std::size_t f = a.in_flight(), q = a.queued();
        bool full = a.full();
        in_flight += f;
        queued += q;
        admission_full = admission_full || full;
        int64_t beat = i < loops_.size() ? loops_[i]->last_beat_ns() : 0;
        bool turning = true;
        std::string age = "null";
        if (beat != 0) {
            int64_t ns = now_ns - beat;
            turning = timeout_ns_ <= 0 || ns <= timeout_ns_;
            age = fmt::format("{:.1f}", static_cast<double>(ns) / 1e6);
        }
        live = live && turning;
        loops += fmt::format("{}{{\"interpreter\": {}, \"last_beat_ms\": {}, \"turning\": {}, "
                             "\"in_flight\": {}, \"queued\": {}, \"admission_full\": {}}}",
                             i ? ", " : "", i, age, turning, f, q, full);
    }
    const bool ready = live && !draining && !admission_full;
    const bool ok = probe == Probe::live ? live : ready;
    Answer out;
    out.status = ok ? 200 : 503;
    out.body = fmt::format("{{\"status\": \"{}\", \"probe\": \"{}\", \"live\": {}, \"ready\": {}, "
                           "\"pid\": {}, \"draining\": {}, \"in_flight\": {}, \"queued\": {}, "
                           "\"interpreters\": [{}]}}\n",
                           ok ? "ok" : "unavailable", probe == Probe::live ? "live" : "ready", live,
                           ready, ::getpid(), draining, in_flight, queued, loops);
    return out;
}

}  // namespace narwhal::server
