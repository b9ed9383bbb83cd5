#include "server/watchdog.hpp"

#include "asgi/log.hpp"

#include <fmt/format.h>

#include <algorithm>

#include <unistd.h>

namespace narwhal::server {

namespace {
class SteadyClock final : public WatchdogClock {
public:
    int64_t now_ns() override { return asgi::LoopMonitor::now_ns(); }
    bool wait_for(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                  std::chrono::nanoseconds timeout, const std::function<bool()>& ready) override {
        return cv.wait_for(lock, timeout, ready);
    }
};

struct RequestParts {
    std::string method, path;
};

RequestParts split_line(const std::string& line) {
    auto sp1 = line.find(' ');
    auto sp2 = line.rfind(' ');
    if (sp1 == std::string::npos)
        return {line, ""};
    return {line.substr(0, sp1),
            line.substr(sp1 + 1, sp2 > sp1 ? sp2 - sp1 - 1 : std::string::npos)};
}

std::string request_text(const asgi::LoopMonitor::Step& step) {
    if (step.id == 0)
        return "outside any request";
    return fmt::format("in request {} ({})", step.line,
                       asgi::request_label(step.id, step.request_id));
}

std::string request_json(const asgi::LoopMonitor::Step& step) {
    if (step.id == 0)
        return "null";
    auto parts = split_line(step.line);
    std::string_view path = parts.path;
    path = path.substr(0, path.find('?'));  // the ASGI path: no query string
    return fmt::format("{{\"method\": {}, \"path\": {}, \"id\": {}, \"request_id\": {}}}",
                       log::json_string(parts.method), log::json_string(path), step.id,
                       log::json_string_or_null(step.request_id));
}

std::string stack_json(const std::vector<asgi::StackFrame>& frames) {
    std::string out = "[";
    for (std::size_t i = 0; i < frames.size(); ++i) {
        const auto& f = frames[i];
        out += fmt::format("{}{{\"file\": {}, \"line\": {}, \"function\": {}, \"code\": {}}}",
                           i ? ", " : "", log::json_string(f.file), f.line,
                           log::json_string(f.function), log::json_string(f.text));
    }
    return out + "]";
}
}  // namespace

WatchdogClock& WatchdogClock::steady() {
    static SteadyClock clock;
    return clock;
}

std::string format_stack(const std::vector<asgi::StackFrame>& frames) {
    std::string out = "Stack of the event loop thread (most recent call last):";
    for (const auto& f : frames) {
        out += fmt::format("\n  File \"{}\", line {}, in {}", f.file, f.line, f.function);
        if (!f.text.empty())
            out += fmt::format("\n    {}", f.text);
    }
    return out;
}

uint64_t stack_hash(const std::vector<asgi::StackFrame>& frames) {
    // FNV-1a: stable across runs and platforms, so equal stacks hash equal in every log.
    uint64_t h = 14695981039346656037ull;
    auto mix = [&h](std::string_view bytes) {
        for (unsigned char c : bytes) {
            h ^= c;
            h *= 1099511628211ull;
        }
    };
    for (const auto& f : frames) {
        mix(f.file);
        mix(std::string_view("\0", 1));
        mix(fmt::format("{}", f.line));
        mix(std::string_view("\0", 1));
        mix(f.function);
        mix(std::string_view("\n", 1));
    }
    return h;
}

Watchdog::Watchdog(asgi::LoopMonitor& monitor, asgi::Stats& stats, asgi::StackReader& stacks,
                   double threshold_seconds, int interpreter, WatchdogClock& clock)
    : monitor_(monitor), stats_(stats), stacks_(stacks), clock_(clock),
      threshold_ns_(static_cast<int64_t>(threshold_seconds * 1e9)),
      period_(std::max<int64_t>(threshold_ns_ / 4, 1'000'000)), interpreter_(interpreter) {}

Watchdog::~Watchdog() { stop(); }

void Watchdog::start() {
    thread_ = std::thread([this] { run(); });
}

void Watchdog::stop() {
    {
        std::lock_guard lock(mu_);
        stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) {
        thread_.join();
        // The watchdog thread is gone: what it counted goes out now, not never.
        close_repeat_windows(clock_.now_ns(), true);
    }
}

void Watchdog::run() {
    std::unique_lock lock(mu_);
    while (!clock_.wait_for(lock, cv_, period_, [this] { return stopping_; })) {
        lock.unlock();
        check(clock_.now_ns());
        lock.lock();
    }
}

void Watchdog::check(int64_t now) {
    close_repeat_windows(now, false);
    int64_t overdue = monitor_.overdue_ns(now);
    if (!stalled_) {
        if (overdue < threshold_ns_)
            return;
        stalled_ = true;
        stall_checks_ = 1;
        stall_quiet_ = false;
        stall_due_ns_ = now - overdue;
        stall_step_ = monitor_.current_step();
        stats_.loop_stalls.fetch_add(1, std::memory_order_relaxed);
        report_blocked(overdue);
        return;
    }
    if (monitor_.last_beat_ns() > stall_due_ns_) {
        // The loop turned: the stall lasted from the missed beat to the late one.
        int64_t blocked = monitor_.last_beat_ns() - stall_due_ns_;
        stats_.note_lag(blocked / 1000);
        report_unblocked(blocked);
        stalled_ = false;
        return;
    }
    ++stall_checks_;
}

bool Watchdog::repeats_recent_stack(uint64_t hash, int64_t now) {
    auto it = std::find_if(repeats_.begin(), repeats_.end(),
                           [hash](const Repeats& r) { return r.stack_hash == hash; });
    if (it != repeats_.end() && now - it->reported_ns < repeat_window.count()) {
        ++it->count;
        return true;
    }
    if (it == repeats_.end()) {
        repeats_.push_back({.stack_hash = hash, .reported_ns = now});
        return false;
    }
    // Its window closed since the last check: its count goes out before the new report.
    if (it->count > 0)
        report_repeats(*it, now);
    *it = {.stack_hash = hash, .reported_ns = now};
    return false;
}

void Watchdog::close_repeat_windows(int64_t now, bool all) {
    std::erase_if(repeats_, [&](const Repeats& r) {
        if (!all && now - r.reported_ns < repeat_window.count())
            return false;
        if (r.count > 0)
            report_repeats(r, now);
        return true;
    });
}

void Watchdog::report_repeats(const Repeats& r, int64_t now) {
    const double window_s = static_cast<double>(now - r.reported_ns) / 1e9;
    std::string text = fmt::format(
        "event loop blocked again with the same stack as before, {} more times in {:.1f} s "
        "(worker {}, interpreter {}, stack {:016x}): {} ms in all, the longest {} ms",
        r.count, window_s, ::getpid(), interpreter_, r.stack_hash, r.total_ns / 1'000'000,
        r.longest_ns / 1'000'000);
    std::string fields = fmt::format(
        "\"event\": \"loop_blocked_repeats\", \"worker\": {}, \"interpreter\": {}, "
        "\"stack_hash\": \"{:016x}\", \"count\": {}, \"window_s\": {:.3f}, \"total_ms\": {}, "
        "\"longest_ms\": {}",
        ::getpid(), interpreter_, r.stack_hash, r.count, window_s, r.total_ns / 1'000'000,
        r.longest_ns / 1'000'000);
    log::event(log::Level::warning, text, fields);
}

void Watchdog::report_blocked(int64_t blocked_ns) {
    uint64_t seq;
    {
        std::lock_guard lock(mu_);
        seq = ++stall_seq_;
        stack_ready_ = false;
        waiting_for_stack_ = true;
        stack_.clear();
    }
    int64_t asked = clock_.now_ns();
    stacks_.request(monitor_.thread_ident.load(),
                    [this, seq, asked, step = stall_step_](std::vector<asgi::StackFrame> frames) {
                        std::unique_lock lock(mu_);
                        if (seq != stall_seq_ || stopping_)
                            return;
                        if (waiting_for_stack_) {
                            // In time: the main report carries it.
                            stack_ready_ = true;
                            stack_ = std::move(frames);
                            lock.unlock();
                            cv_.notify_all();
                            return;
                        }
                        // The report already went out without it: the stack follows on its own.
                        lock.unlock();
                        report_stack_later(step, std::move(frames), clock_.now_ns() - asked);
                    });
    std::vector<asgi::StackFrame> frames;
    bool have_stack;
    {
        std::unique_lock lock(mu_);
        clock_.wait_for(lock, cv_, stack_wait, [this] { return stack_ready_ || stopping_; });
        waiting_for_stack_ = false;  // decided under the lock: the callback sees the same
        have_stack = stack_ready_;
        if (have_stack)
            frames = std::move(stack_);
    }
    if (have_stack) {
        stall_hash_ = stack_hash(frames);
        stall_quiet_ = repeats_recent_stack(stall_hash_, clock_.now_ns());
        if (stall_quiet_)
            return;  // counted; report_unblocked adds its length
    }
    std::string text =
        fmt::format("event loop blocked for {} ms so far (worker {}, interpreter {}) {}",
                    blocked_ns / 1'000'000, ::getpid(), interpreter_, request_text(stall_step_));
    text += "\n";
    text += have_stack ? format_stack(frames)
                       : "Stack not readable yet: the loop thread holds the GIL (a C call?); it "
                         "follows when it can be read.";
    std::string fields = fmt::format(
        "\"event\": \"loop_blocked\", \"worker\": {}, \"interpreter\": {}, \"blocked_ms\": {}, "
        "\"request\": {}, \"stack\": {}, \"stack_hash\": {}",
        ::getpid(), interpreter_, blocked_ns / 1'000'000, request_json(stall_step_),
        have_stack ? stack_json(frames) : "null",
        have_stack ? fmt::format("\"{:016x}\"", stall_hash_) : "null");
    log::event(log::Level::warning, text, fields);
}

void Watchdog::report_stack_later(const asgi::LoopMonitor::Step& step,
                                  std::vector<asgi::StackFrame> frames, int64_t read_after_ns) {
    std::string text = fmt::format(
        "stack of the blocked event loop (worker {}, interpreter {}) {}, read after {} ms\n{}",
        ::getpid(), interpreter_, request_text(step), read_after_ns / 1'000'000,
        format_stack(frames));
    std::string fields = fmt::format(
        "\"event\": \"loop_blocked_stack\", \"worker\": {}, \"interpreter\": {}, \"request\": {}, "
        "\"stack\": {}",
        ::getpid(), interpreter_, request_json(step), stack_json(frames));
    log::event(log::Level::warning, text, fields);
}

void Watchdog::report_unblocked(int64_t blocked_ns) {
    if (stall_quiet_) {
        auto it = std::find_if(repeats_.begin(), repeats_.end(),
                               [this](const Repeats& r) { return r.stack_hash == stall_hash_; });
        if (it != repeats_.end()) {
            it->total_ns += blocked_ns;
            it->longest_ns = std::max(it->longest_ns, blocked_ns);
        }
        return;
    }
    std::string text =
        fmt::format("event loop unblocked after {} ms, {} check{} (worker {}, interpreter {}) {}",
                    blocked_ns / 1'000'000, stall_checks_, stall_checks_ == 1 ? "" : "s",
                    ::getpid(), interpreter_, request_text(stall_step_));
    std::string fields = fmt::format(
        "\"event\": \"loop_unblocked\", \"worker\": {}, \"interpreter\": {}, \"blocked_ms\": {}, "
        "\"checks\": {}, \"request\": {}",
        ::getpid(), interpreter_, blocked_ns / 1'000'000, stall_checks_, request_json(stall_step_));
    log::event(log::Level::warning, text, fields);
}

}  // namespace narwhal::server
