#include "server/watchdog.hpp"

#include "asgi/log.hpp"
#include "asgi/loop_monitor.hpp"
#include "asgi/stack_reader.hpp"
#include "asgi/stats.hpp"

#include "catch.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

using narwhal::asgi::LoopMonitor;
using narwhal::asgi::StackFrame;
using narwhal::asgi::StackReader;
using narwhal::asgi::Stats;
using narwhal::server::format_stack;
using narwhal::server::stack_hash;
using narwhal::server::Watchdog;
using narwhal::server::WatchdogClock;
using namespace std::chrono_literals;
namespace nlog = narwhal::log;

// The watchdog runs on its own thread, as in production, but its time is the test's: a
// ManualClock moves only when the test says so, and tells the test when the watchdog is
// back in a wait (its work for that moment done). No test sleeps; the only real-time
// limits are generous guards on waits for the watchdog thread.

// A text line starts with "YYYY-MM-DD HH:MM:SS.mmm ".
constexpr std::size_t timestamp_width = 24;

namespace {

// Guard for every wait on the watchdog thread: a failure, not a pace.
constexpr auto guard = 30s;

// Sends fd 2 (where the logger write(2)s) to an unlinked temp file until destroyed.
class StderrCapture {
public:
    StderrCapture() {
        char path[] = "/tmp/narwhal-watchdog-test-XXXXXX";
        fd_ = ::mkstemp(path);
        REQUIRE(fd_ >= 0);
        ::unlink(path);
        std::fflush(stderr);
        saved_ = ::dup(2);
        REQUIRE(saved_ >= 0);
        REQUIRE(::dup2(fd_, 2) == 2);
    }
    ~StderrCapture() {
        restore();
        ::close(fd_);
    }
    StderrCapture(const StderrCapture&) = delete;
    StderrCapture& operator=(const StderrCapture&) = delete;

    void restore() {
        if (saved_ < 0)
            return;
        std::fflush(stderr);
        ::dup2(saved_, 2);
        ::close(saved_);
        saved_ = -1;
    }

    std::string text() const {
        std::string out;
        char buf[4096];
        off_t off = 0;
        for (;;) {
            ssize_t n = ::pread(fd_, buf, sizeof buf, off);
            if (n <= 0)
                break;
            out.append(buf, static_cast<std::size_t>(n));
            off += n;
        }
        return out;
    }

private:
    int fd_ = -1;
    int saved_ = -1;
};

std::size_t count(const std::string& haystack, const std::string& needle) {
    std::size_t n = 0;
    for (auto pos = haystack.find(needle); pos != std::string::npos;
         pos = haystack.find(needle, pos + needle.size()))
        ++n;
    return n;
}

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

// The line of `text` holding `needle`, without its newline.
std::string line_with(const std::string& text, const std::string& needle) {
    auto pos = text.find(needle);
    if (pos == std::string::npos)
        return {};
    auto begin = text.rfind('\n', pos);
    begin = begin == std::string::npos ? 0 : begin + 1;
    auto end = text.find('\n', pos);
    return text.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

// The integer after the first `prefix` in `text`, -1 if none.
long number_after(const std::string& text, const std::string& prefix) {
    auto pos = text.find(prefix);
    if (pos == std::string::npos)
        return -1;
    return std::strtol(text.c_str() + pos + prefix.size(), nullptr, 10);
}

// A WatchdogClock that counts the watchdog's waits by their length, and lets the test
// block until a condition holds: the condition is re-checked whenever the watchdog starts
// a wait, which is when whatever it did before (a check, a report) has become visible.
class ObservedClock : public WatchdogClock {
public:
    // Waits started so far with this timeout (the check period, or Watchdog::stack_wait).
    int waits(std::chrono::nanoseconds timeout) {
        std::lock_guard lock(mu_);
        auto it = waits_.find(timeout.count());
        return it == waits_.end() ? 0 : it->second;
    }

    // Blocks until `pred()` holds; false if it still does not after the guard. `pred` runs
    // without any lock held, so it may look at anything (the clock, the log, the stats).
    bool await(const std::function<bool()>& pred) {
        auto until = std::chrono::steady_clock::now() + guard;
        std::unique_lock lock(mu_);
        for (;;) {
            uint64_t seen = started_;
            lock.unlock();
            bool done = pred();
            lock.lock();
            if (done)
                return true;
            if (!changed_.wait_until(lock, until, [&] { return started_ != seen; })) {
                lock.unlock();
                return pred();
            }
        }
    }

protected:
    // Called by wait_for as it starts; `mu_` held.
    void note_wait(std::chrono::nanoseconds timeout) {
        ++waits_[timeout.count()];
        ++started_;
        changed_.notify_all();
    }

    std::mutex mu_;  // taken after the watchdog's own mutex, never before it

private:
    std::condition_variable changed_;
    std::map<int64_t, int> waits_;  // guarded by mu_
    uint64_t started_ = 0;          // guarded by mu_
};

// Time that moves only in advance(). A wait ends when its predicate holds or when
// advance() has moved time to its deadline.
class ManualClock final : public ObservedClock {
public:
    int64_t now_ns() override { return now_.load(); }

    bool wait_for(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                  std::chrono::nanoseconds timeout, const std::function<bool()>& ready) override {
        Waiter self{lock.mutex(), &cv};
        int64_t deadline;
        {
            std::lock_guard guard_lock(mu_);
            deadline = now_.load() + timeout.count();
            waiters_.push_back(&self);
            note_wait(timeout);
        }
        cv.wait(lock, [&] { return ready() || now_.load() >= deadline; });
        {
            std::lock_guard guard_lock(mu_);
            waiters_.erase(std::find(waiters_.begin(), waiters_.end(), &self));
        }
        return ready();
    }

    // Moves time on and wakes every waiting watchdog thread to look at it.
    void advance(std::chrono::nanoseconds by) {
        std::vector<Waiter> waiting;
        {
            std::lock_guard lock(mu_);
            now_ += by.count();
            for (auto* w : waiters_)
                waiting.push_back(*w);
        }
        // Taking the waiter's mutex once orders this after its predicate check (it holds
        // the mutex until it sleeps), so the notification cannot be lost.
        for (auto& w : waiting) {
            {
                std::lock_guard lock(*w.mutex);
            }
            w.cv->notify_all();
        }
    }

private:
    struct Waiter {
        std::mutex* mutex;
        std::condition_variable* cv;
    };
    std::atomic<int64_t> now_{1'000'000'000'000};  // 1000 s: "a second ago" is positive
    std::vector<Waiter*> waiters_;                 // guarded by mu_
};

// The production clock, observed: for the one test that checks real waiting.
class SteadyObservedClock final : public ObservedClock {
public:
    int64_t now_ns() override { return WatchdogClock::steady().now_ns(); }
    bool wait_for(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                  std::chrono::nanoseconds timeout, const std::function<bool()>& ready) override {
        {
            std::lock_guard guard_lock(mu_);
            note_wait(timeout);
        }
        return WatchdogClock::steady().wait_for(lock, cv, timeout, ready);
    }
};

std::vector<StackFrame> sleeping_stack() {
    return {StackFrame{"app.py", 7, "handler", "time.sleep(1)"}};
}

// Answers at once, inside request() (the stack was readable), or keeps the request until
// the test calls answer() from its own thread (the stack became readable later).
class FakeStackReader : public StackReader {
public:
    enum class Mode { at_once, later };
    explicit FakeStackReader(Mode mode) : mode_(mode) {}

    void request(unsigned long ident, std::function<void(std::vector<StackFrame>)> done) override {
        std::unique_lock lock(mu_);
        ++requests;
        last_ident = ident;
        if (mode_ == Mode::later) {
            kept_.push_back(std::move(done));
            return;
        }
        auto frames = stack_;
        lock.unlock();
        done(std::move(frames));
    }

    // The stack every later answer gives (sleeping_stack() until set).
    void set_stack(std::vector<StackFrame> frames) {
        std::lock_guard lock(mu_);
        stack_ = std::move(frames);
    }

    // Answers the kept requests on the calling thread; how many there were.
    std::size_t answer() {
        std::vector<std::function<void(std::vector<StackFrame>)>> kept;
        std::vector<StackFrame> frames;
        {
            std::lock_guard lock(mu_);
            kept.swap(kept_);
            frames = stack_;
        }
        for (auto& done : kept)
            done(frames);
        return kept.size();
    }

    std::atomic<int> requests{0};
    std::atomic<unsigned long> last_ident{0};

private:
    Mode mode_;
    std::mutex mu_;
    std::vector<std::function<void(std::vector<StackFrame>)>> kept_;
    std::vector<StackFrame> stack_ = sleeping_stack();
};

constexpr double threshold_seconds = 0.02;

template <typename Clock> struct BasicRig {
    explicit BasicRig(FakeStackReader::Mode mode = FakeStackReader::Mode::at_once)
        : reader(mode), watchdog(monitor, stats, reader, threshold_seconds, 3, clock) {
        monitor.thread_ident = 4242;
    }
    ~BasicRig() { watchdog.stop(); }

    // The loop last turned a second ago and its next beat was due 10 ms after that.
    void stall() { monitor.beat(clock.now_ns() - 1'000'000'000, 10'000'000); }
    // The loop turns now; its next beat is far away.
    void unstall() { monitor.beat(clock.now_ns(), 10'000'000'000); }

    int period_waits() { return clock.waits(watchdog.period()); }
    int stack_waits() { return clock.waits(Watchdog::stack_wait); }

    // Starts the watchdog and returns once it waits for its first check.
    void start() {
        watchdog.start();
        REQUIRE(clock.await([&] { return period_waits() >= 1; }));
    }

    Clock clock;
    LoopMonitor monitor;
    Stats stats;
    FakeStackReader reader;
    Watchdog watchdog;
};

struct Rig : BasicRig<ManualClock> {
    using BasicRig::BasicRig;

    // One check period passes; returns once the watchdog has checked (and reported, if it
    // had to) and waits for the next period.
    void tick() {
        int n = period_waits();
        clock.advance(watchdog.period());
        REQUIRE(clock.await([&] { return period_waits() > n; }));
    }
    // One check period passes and the watchdog, having found a stall, waits for the stack.
    void tick_to_stack_wait() {
        int n = stack_waits();
        clock.advance(watchdog.period());
        REQUIRE(clock.await([&] { return stack_waits() > n; }));
    }
    // The wait for the stack runs out; returns once the report went out without it.
    void stack_wait_runs_out() {
        int n = period_waits();
        clock.advance(Watchdog::stack_wait);
        REQUIRE(clock.await([&] { return period_waits() > n; }));
    }
};

// Puts the logger in json mode, and back to the default text mode at the end.
struct JsonLog {
    JsonLog() { nlog::configure(nlog::Level::info, true, true); }
    ~JsonLog() { nlog::configure(nlog::Level::info, false, true); }
};

const std::string blocked_text = "event loop blocked for ";
const std::string unblocked_text = "event loop unblocked after ";
const std::string stack_line = "File \"app.py\", line 7, in handler";
const std::string not_readable = "Stack not readable yet";

}  // namespace

TEST_CASE("format_stack", "[server][watchdog]") {
    CHECK(format_stack({}) == "Stack of the event loop thread (most recent call last):");
    CHECK(format_stack({{"a.py", 1, "<module>", "main()"}, {"b.py", 20, "run", ""}}) ==
          "Stack of the event loop thread (most recent call last):\n"
          "  File \"a.py\", line 1, in <module>\n"
          "    main()\n"
          "  File \"b.py\", line 20, in run");
}

TEST_CASE("Watchdog: checks four times per threshold, at least every millisecond",
          "[server][watchdog]") {
    LoopMonitor monitor;
    Stats stats;
    FakeStackReader reader(FakeStackReader::Mode::at_once);
    ManualClock clock;
    CHECK(Watchdog(monitor, stats, reader, 0.1, 0, clock).period() == 25ms);
    CHECK(Watchdog(monitor, stats, reader, 0.02, 0, clock).period() == 5ms);
    CHECK(Watchdog(monitor, stats, reader, 0.001, 0, clock).period() == 1ms);
}

TEST_CASE("Watchdog: a loop on time is not reported", "[server][watchdog]") {
    StderrCapture err;
    Rig rig;
    SECTION("beating") { rig.unstall(); }
    SECTION("never beat") {}
    SECTION("stopped after a beat long ago") {
        rig.stall();
        rig.monitor.stop();
    }
    rig.start();
    for (int i = 0; i < 8; ++i)  // two thresholds' worth of checks
        rig.tick();
    rig.watchdog.stop();
    err.restore();
    CHECK(rig.period_waits() == 9);
    CHECK(rig.stats.loop_stalls == 0);
    CHECK(rig.reader.requests == 0);
    CHECK(err.text().empty());
}

TEST_CASE("Watchdog: a stall is reported at the first check at or past the threshold",
          "[server][watchdog]") {
    StderrCapture err;
    Rig rig;
    rig.start();
    int64_t due_after_ns = 0;
    long reported_ms = 0;
    SECTION("due now: 20 ms overdue at the fourth check") {
        due_after_ns = 0;
        reported_ms = 20;
    }
    SECTION("due 1 ns from now: 1 ns short at the fourth check, reported at the fifth") {
        due_after_ns = 1;
        reported_ms = 24;
    }
    rig.monitor.beat(rig.clock.now_ns(), due_after_ns);
    for (int i = 0; i < 4; ++i) {
        CHECK(rig.stats.loop_stalls == 0);
        rig.tick();
    }
    if (due_after_ns) {
        CHECK(rig.stats.loop_stalls == 0);
        rig.tick();
    }
    rig.watchdog.stop();
    err.restore();
    CHECK(rig.stats.loop_stalls == 1);
    CHECK(count(err.text(), blocked_text) == 1);
    CHECK(number_after(err.text(), blocked_text) == reported_ms);
}

TEST_CASE("Watchdog: a stall is counted and reported once, with request and stack",
          "[server][watchdog]") {
    StderrCapture err;
    Rig rig;
    rig.monitor.step_begin(42, "GET /slow HTTP/1.1");
    rig.stall();  // the beat was due 990 ms ago
    rig.start();
    // 995 ms overdue at the first check: reported. The loop stays blocked for three more.
    for (int i = 0; i < 4; ++i)
        rig.tick();
    std::string text = err.text();
    CHECK(rig.stats.loop_stalls == 1);
    CHECK(rig.reader.requests == 1);
    CHECK(rig.reader.last_ident == 4242);
    CHECK(count(text, "event loop blocked") == 1);
    CHECK(count(text, stack_line) == 1);
    CHECK(text.find("WARNING:  event loop blocked for 995 ms so far ") == timestamp_width);
    CHECK(contains(text, "(worker " + std::to_string(::getpid()) + ", interpreter 3)"));
    CHECK(contains(text, "in request GET /slow HTTP/1.1 (id 42)"));
    CHECK(contains(text, format_stack(sleeping_stack())));
    CHECK(contains(text, "\n  " + stack_line + "\n    time.sleep(1)\n"));
    CHECK_FALSE(contains(text, "not readable"));
    CHECK(count(text, unblocked_text) == 0);

    // The loop turns 15 ms after the report: one "unblocked" report at the next check,
    // with the stall from the missed beat to the late one, noted as lag.
    rig.monitor.step_end();
    rig.unstall();
    rig.tick();
    rig.tick();
    rig.watchdog.stop();
    err.restore();
    text = err.text();
    CHECK(count(text, unblocked_text) == 1);
    CHECK(count(text, "event loop blocked") == 1);
    CHECK(rig.stats.loop_stalls == 1);
    auto unblocked = line_with(text, unblocked_text);
    // Found stalled by the check that reported it and the three after it.
    CHECK(unblocked.find("WARNING:  event loop unblocked after 1010 ms, 4 checks ") ==
          timestamp_width);
    // Reported with the request of the stall, not the (now idle) current step.
    CHECK(contains(unblocked, "in request GET /slow HTTP/1.1 (id 42)"));
    CHECK(rig.stats.loop_lag_max_us == 1'010'000);
    CHECK(text.find(blocked_text) < text.find(unblocked_text));
}

TEST_CASE("Watchdog: each new stall is counted and reported", "[server][watchdog]") {
    StderrCapture err;
    Rig rig;
    rig.monitor.step_begin(7, "POST /upload HTTP/1.1");
    rig.stall();
    rig.start();
    rig.tick();
    CHECK(rig.stats.loop_stalls == 1);
    rig.unstall();
    rig.tick();
    CHECK(count(err.text(), unblocked_text) == 1);

    // Somewhere else: a stack reported before would only be counted (flood control).
    rig.reader.set_stack({StackFrame{"other.py", 3, "elsewhere", "time.sleep(2)"}});
    rig.monitor.step_begin(8, "GET /again HTTP/1.1");
    rig.stall();
    rig.tick();
    CHECK(rig.stats.loop_stalls == 2);
    CHECK(count(err.text(), blocked_text) == 2);
    rig.unstall();
    rig.tick();
    rig.tick();
    rig.watchdog.stop();
    err.restore();

    std::string text = err.text();
    CHECK(rig.stats.loop_stalls == 2);
    CHECK(rig.reader.requests == 2);
    CHECK(count(text, blocked_text) == 2);
    CHECK(count(text, unblocked_text) == 2);
    CHECK(count(text, stack_line) == 1);
    CHECK(count(text, "File \"other.py\", line 3, in elsewhere") == 1);
    CHECK(count(text, "(id 7)") == 2);  // blocked + unblocked of the first stall
    CHECK(count(text, "in request GET /again HTTP/1.1 (id 8)") == 2);
}

TEST_CASE("stack_hash: files, lines and functions, not the source text", "[server][watchdog]") {
    const StackFrame a{"app.py", 7, "handler", "time.sleep(1)"};
    CHECK(stack_hash({a}) == stack_hash({StackFrame{"app.py", 7, "handler", "other text"}}));
    CHECK(stack_hash({a}) != stack_hash({StackFrame{"app.py", 8, "handler", "time.sleep(1)"}}));
    CHECK(stack_hash({a}) != stack_hash({StackFrame{"app.py", 7, "other", "time.sleep(1)"}}));
    CHECK(stack_hash({a}) != stack_hash({StackFrame{"b.py", 7, "handler", "time.sleep(1)"}}));
    CHECK(stack_hash({a}) != stack_hash({a, a}));
    // The parts are delimited: moving a character from one field to the next changes it.
    CHECK(stack_hash({StackFrame{"ab", 1, "c", ""}}) != stack_hash({StackFrame{"a", 1, "bc", ""}}));
}

namespace {
// One stall of `rig`'s loop in request `id`: found at the next check, over at the one after.
void one_stall(Rig& rig, uint64_t id) {
    rig.monitor.step_begin(id, "GET /stream HTTP/1.1");
    rig.stall();
    rig.tick();
    rig.monitor.step_end();
    rig.unstall();
    rig.tick();
}
const std::string repeats_text = "with the same stack as before, ";
}  // namespace

TEST_CASE("Watchdog: stalls repeating a reported stack are counted, then summed up in one line",
          "[server][watchdog]") {
    StderrCapture err;
    Rig rig;
    rig.start();
    for (uint64_t id = 1; id <= 32; ++id)  // a streamed response blocking once per chunk
        one_stall(rig, id);
    std::string text = err.text();
    CHECK(rig.stats.loop_stalls == 32);
    CHECK(rig.reader.requests == 32);  // every stall's stack is read, to compare it
    CHECK(count(text, blocked_text) == 1);
    CHECK(count(text, stack_line) == 1);
    CHECK(count(text, unblocked_text) == 1);
    CHECK(count(text, repeats_text) == 0);  // the window is still open

    // A different stack within the window is reported in full.
    rig.reader.set_stack({StackFrame{"other.py", 3, "elsewhere", "time.sleep(2)"}});
    one_stall(rig, 33);
    CHECK(count(err.text(), blocked_text) == 2);

    // The window closes: the count goes out at the next check, once.
    rig.reader.set_stack(sleeping_stack());
    int n = rig.period_waits();
    rig.clock.advance(Watchdog::repeat_window);
    REQUIRE(rig.clock.await([&] { return rig.period_waits() > n; }));
    rig.tick();
    text = err.text();
    CHECK(count(text, repeats_text) == 1);
    auto line = line_with(text, repeats_text);
    CHECK(line.find("WARNING:  event loop blocked again with the same stack as before, 31 more "
                    "times in ") == timestamp_width);
    // Each counted stall lasted from its missed beat (990 ms before the check) to the
    // beat at the check after: 995 ms.
    CHECK(contains(line, "31 more times in 30.3 s"));
    CHECK(contains(line, ": 30845 ms in all, the longest 995 ms"));
    CHECK(contains(line, "(worker " + std::to_string(::getpid()) + ", interpreter 3, stack "));

    // After the window the stack is reported in full again.
    one_stall(rig, 34);
    rig.watchdog.stop();
    err.restore();
    text = err.text();
    CHECK(count(text, blocked_text) == 3);
    CHECK(count(text, stack_line) == 2);
    CHECK(count(text, repeats_text) == 1);  // nothing repeated since
}

TEST_CASE("Watchdog: a count still open goes out when the watchdog stops", "[server][watchdog]") {
    StderrCapture err;
    Rig rig;
    rig.start();
    for (uint64_t id = 1; id <= 3; ++id)
        one_stall(rig, id);
    CHECK(count(err.text(), repeats_text) == 0);
    rig.watchdog.stop();
    err.restore();
    std::string text = err.text();
    CHECK(count(text, blocked_text) == 1);
    CHECK(count(text, repeats_text) == 1);
    CHECK(contains(line_with(text, repeats_text), ", 2 more times in "));
}

TEST_CASE("Watchdog: a stall outside any request", "[server][watchdog]") {
    StderrCapture err;
    Rig rig;
    rig.stall();
    rig.start();
    rig.tick();
    rig.watchdog.stop();
    err.restore();
    std::string text = err.text();
    CHECK(contains(line_with(text, blocked_text), "outside any request"));
    CHECK_FALSE(contains(text, "in request"));
}

TEST_CASE("Watchdog: a stack read late follows in its own report", "[server][watchdog]") {
    StderrCapture err;
    Rig rig(FakeStackReader::Mode::later);
    rig.monitor.step_begin(42, "GET /slow HTTP/1.1");
    rig.stall();
    rig.start();
    rig.tick_to_stack_wait();
    CHECK(err.text().empty());  // the report waits for the stack, up to stack_wait

    // The wait runs out: the report goes out without the stack.
    rig.stack_wait_runs_out();
    std::string text = err.text();
    CHECK(count(text, not_readable) == 1);
    CHECK_FALSE(contains(text, stack_line));
    CHECK(contains(text, "in request GET /slow HTTP/1.1 (id 42)"));

    // Another 30 ms later the stack can be read: it follows on its own.
    rig.clock.advance(30ms);
    REQUIRE(rig.reader.answer() == 1);
    rig.watchdog.stop();
    err.restore();
    text = err.text();
    CHECK(rig.stats.loop_stalls == 1);
    CHECK(count(text, blocked_text) == 1);
    CHECK(count(text, stack_line) == 1);
    CHECK(text.find(not_readable) < text.find(stack_line));
    // The late stack's own report: a warning of its own, not a second "blocked" report.
    auto later = line_with(text, ", read after ");
    CHECK(later.find("WARNING:  ") == timestamp_width);
    CHECK_FALSE(contains(later, blocked_text));
    CHECK(contains(later, "(worker " + std::to_string(::getpid()) + ", interpreter 3)"));
    CHECK(contains(later, "in request GET /slow HTTP/1.1 (id 42)"));
    CHECK(number_after(later, ", read after ") == 80);
    CHECK(contains(text, format_stack(sleeping_stack())));
}

TEST_CASE("Watchdog: a stack that comes within stack_wait is in the report itself",
          "[server][watchdog]") {
    StderrCapture err;
    Rig rig(FakeStackReader::Mode::later);
    rig.stall();
    rig.start();
    rig.tick_to_stack_wait();
    // Time runs to 1 ns before the wait's end (the watchdog wakes, looks, waits on),
    // then the stack arrives from another thread.
    rig.clock.advance(Watchdog::stack_wait - 1ns);
    int n = rig.period_waits();
    REQUIRE(rig.reader.answer() == 1);
    REQUIRE(rig.clock.await([&] { return rig.period_waits() > n; }));
    rig.watchdog.stop();
    err.restore();
    std::string text = err.text();
    CHECK(count(text, blocked_text) == 1);
    CHECK(count(text, stack_line) == 1);
    CHECK(text.find(blocked_text) < text.find(stack_line));
    CHECK_FALSE(contains(text, not_readable));
    CHECK_FALSE(contains(text, ", read after "));
}

TEST_CASE("Watchdog: a stack that never comes", "[server][watchdog]") {
    StderrCapture err;
    Rig rig(FakeStackReader::Mode::later);
    rig.stall();
    rig.start();
    rig.tick_to_stack_wait();
    rig.stack_wait_runs_out();
    rig.tick();
    rig.unstall();
    rig.tick();
    rig.watchdog.stop();
    err.restore();
    std::string text = err.text();
    CHECK(rig.reader.requests == 1);
    CHECK(rig.stats.loop_stalls == 1);
    CHECK(count(text, not_readable) == 1);
    CHECK(count(text, unblocked_text) == 1);
    CHECK_FALSE(contains(text, "Stack of the event loop thread"));
}

TEST_CASE("Watchdog: a stack answered after stop is dropped", "[server][watchdog]") {
    StderrCapture err;
    Rig rig(FakeStackReader::Mode::later);
    rig.stall();
    rig.start();
    rig.tick_to_stack_wait();
    rig.stack_wait_runs_out();
    rig.watchdog.stop();
    REQUIRE(rig.reader.answer() == 1);  // reaches a stopped (still alive) watchdog
    err.restore();
    CHECK(count(err.text(), not_readable) == 1);
    CHECK_FALSE(contains(err.text(), stack_line));
}

TEST_CASE("Watchdog: stop ends the wait for a stack at once", "[server][watchdog]") {
    StderrCapture err;
    Rig rig(FakeStackReader::Mode::later);
    rig.stall();
    rig.start();
    rig.tick_to_stack_wait();
    rig.watchdog.stop();  // returns although no time passes on the clock
    REQUIRE(rig.reader.answer() == 1);
    err.restore();
    CHECK(count(err.text(), blocked_text) == 1);
    CHECK_FALSE(contains(err.text(), stack_line));
}

TEST_CASE("Watchdog: json reports", "[server][watchdog]") {
    JsonLog json;
    StderrCapture err;

    SECTION("stall and unblock, each one line") {
        Rig rig;
        rig.monitor.step_begin(42, "GET /slow HTTP/1.1", "rid-42");
        rig.stall();
        rig.start();
        rig.tick();
        rig.unstall();
        rig.tick();
        rig.watchdog.stop();
        err.restore();
        std::string text = err.text();

        CHECK(count(text, "\"event\": \"loop_blocked\"") == 1);
        CHECK(count(text, "\n") == 2);  // two reports, one line each
        auto line = line_with(text, "\"event\": \"loop_blocked\"");
        INFO(line);
        REQUIRE_FALSE(line.empty());
        CHECK(line.front() == '{');
        CHECK(line.back() == '}');
        CHECK(contains(line, "\"level\": \"warning\""));
        CHECK(number_after(line, "\"blocked_ms\": ") == 995);
        CHECK(contains(line, "\"worker\": " + std::to_string(::getpid()) + ", "));
        CHECK(contains(line, "\"interpreter\": 3, "));
        CHECK(contains(line, "\"request\": {\"method\": \"GET\", \"path\": \"/slow\", \"id\": 42, "
                             "\"request_id\": \"rid-42\"}"));
        CHECK(contains(line, "(id 42, request id rid-42)"));
        CHECK(contains(line, "\"stack\": [{\"file\": \"app.py\", \"line\": 7, \"function\": "
                             "\"handler\", \"code\": \"time.sleep(1)\"}]"));
        // The human text rides along, its newlines escaped.
        CHECK(contains(line, "\"message\": \"event loop blocked for 995 ms so far"));
        CHECK(contains(line, "\\n  File \\\"app.py\\\", line 7, in handler\\n    time.sleep(1)"));

        auto unblocked = line_with(text, "\"event\": \"loop_unblocked\"");
        REQUIRE_FALSE(unblocked.empty());
        CHECK(unblocked.front() == '{');
        CHECK(unblocked.back() == '}');
        CHECK(number_after(unblocked, "\"blocked_ms\": ") == 995);
        CHECK(contains(unblocked, "\"request\": {\"method\": \"GET\", \"path\": \"/slow\", \"id\": "
                                  "42, \"request_id\": \"rid-42\"}"));
    }
    SECTION("a query string is not part of the path") {
        Rig rig;
        rig.monitor.step_begin(5, "GET /search?q=slow HTTP/1.1");
        rig.stall();
        rig.start();
        rig.tick();
        rig.watchdog.stop();
        err.restore();
        CHECK(contains(err.text(), "\"request\": {\"method\": \"GET\", \"path\": \"/search\", "
                                   "\"id\": 5, \"request_id\": null}"));
    }
    SECTION("outside any request, stack late") {
        Rig rig(FakeStackReader::Mode::later);
        rig.stall();
        rig.start();
        rig.tick_to_stack_wait();
        rig.stack_wait_runs_out();
        REQUIRE(rig.reader.answer() == 1);
        rig.watchdog.stop();
        err.restore();
        std::string text = err.text();
        CHECK(count(text, "\n") == 2);
        auto first = line_with(text, "\"event\": \"loop_blocked\"");
        CHECK(contains(first, "\"request\": null"));
        CHECK(contains(first, "\"stack\": null"));
        auto later = line_with(text, "\"event\": \"loop_blocked_stack\"");
        REQUIRE_FALSE(later.empty());
        CHECK(later.front() == '{');
        CHECK(later.back() == '}');
        CHECK(contains(later, "\"request\": null"));
        CHECK(contains(later, "\"stack\": [{\"file\": \"app.py\", \"line\": 7"));
    }
}

// The production clock: the same reports come out when real time passes. Only lower
// bounds on durations are checked (a busy machine makes waits longer, never shorter).
TEST_CASE("Watchdog: on the steady clock", "[server][watchdog]") {
    StderrCapture err;
    BasicRig<SteadyObservedClock> rig(FakeStackReader::Mode::later);
    rig.monitor.step_begin(42, "GET /slow HTTP/1.1");
    rig.stall();
    rig.start();
    // The report waits stack_wait for the stack, then goes out without it.
    REQUIRE(rig.clock.await([&] { return contains(err.text(), not_readable); }));
    REQUIRE(rig.reader.answer() == 1);
    CHECK(number_after(line_with(err.text(), ", read after "), ", read after ") >= 50);
    rig.unstall();
    REQUIRE(rig.clock.await([&] { return contains(err.text(), unblocked_text); }));
    rig.watchdog.stop();
    err.restore();
    std::string text = err.text();
    CHECK(rig.stats.loop_stalls == 1);
    CHECK(count(text, blocked_text) == 1);
    CHECK(count(text, stack_line) == 1);
    CHECK(number_after(text, blocked_text) >= 990);
    CHECK(number_after(text, unblocked_text) >= 990);
    CHECK(contains(text, "in request GET /slow HTTP/1.1 (id 42)"));
}
