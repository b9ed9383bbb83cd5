#include "server/watchdog.hpp"

#include "asgi/log.hpp"
#include "asgi/loop_monitor.hpp"
#include "asgi/stats.hpp"

#include "catch.hpp"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using narwhal::asgi::LoopMonitor;
using narwhal::asgi::Stats;
using narwhal::server::format_stack;
using narwhal::server::StackFrame;
using narwhal::server::StackReader;
using narwhal::server::Watchdog;
using namespace std::chrono_literals;
namespace nlog = narwhal::log;

namespace {

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
    StderrCapture(const StderrCapture &) = delete;
    StderrCapture &operator=(const StderrCapture &) = delete;

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

std::size_t count(const std::string &haystack, const std::string &needle) {
    std::size_t n = 0;
    for (auto pos = haystack.find(needle); pos != std::string::npos;
         pos = haystack.find(needle, pos + needle.size()))
        ++n;
    return n;
}

// Waits until `pred` holds; the limit is only a failure guard (every use expects true, so
// a passing run never waits it out). It is generous: a sanitizer build on a loaded
// two-core machine missed 400 ms for the watchdog thread's first report.
template <typename Pred> bool eventually(Pred pred, std::chrono::milliseconds timeout = 10s) {
    auto until = std::chrono::steady_clock::now() + timeout;
    while (!pred()) {
        if (std::chrono::steady_clock::now() >= until)
            return pred();
        std::this_thread::sleep_for(1ms);
    }
    return true;
}

// The line of `text` holding `needle`, without its newline.
std::string line_with(const std::string &text, const std::string &needle) {
    auto pos = text.find(needle);
    if (pos == std::string::npos)
        return {};
    auto begin = text.rfind('\n', pos);
    begin = begin == std::string::npos ? 0 : begin + 1;
    auto end = text.find('\n', pos);
    return text.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

// The integer after the first `prefix` in `text`, -1 if none.
long number_after(const std::string &text, const std::string &prefix) {
    auto pos = text.find(prefix);
    if (pos == std::string::npos)
        return -1;
    return std::strtol(text.c_str() + pos + prefix.size(), nullptr, 10);
}

std::vector<StackFrame> sleeping_stack() {
    return {StackFrame{"app.py", 7, "handler", "time.sleep(1)"}};
}

// Answers from another thread after `delay`, or never. `block` is spent inside request()
// itself, on the watchdog's thread, before the answer is scheduled.
class FakeStackReader : public StackReader {
public:
    enum class Mode { answer, never };
    explicit FakeStackReader(Mode mode = Mode::answer, std::chrono::milliseconds delay = 0ms,
                             std::chrono::milliseconds block = 0ms)
        : mode_(mode), delay_(delay), block_(block) {}
    ~FakeStackReader() override { join(); }

    void request(unsigned long ident, std::function<void(std::vector<StackFrame>)> done) override {
        if (block_ > 0ms)
            std::this_thread::sleep_for(block_);
        std::lock_guard lock(mu_);
        ++requests;
        last_ident = ident;
        if (mode_ == Mode::never) {
            kept_.push_back(std::move(done));
            return;
        }
        threads_.emplace_back([this, done = std::move(done)] {
            if (delay_ > 0ms)
                std::this_thread::sleep_for(delay_);
            done(sleeping_stack());
            ++answered;
        });
    }

    void join() {
        std::vector<std::thread> threads;
        {
            std::lock_guard lock(mu_);
            threads.swap(threads_);
        }
        for (auto &t : threads)
            t.join();
    }

    std::atomic<int> requests{0};
    std::atomic<int> answered{0};
    std::atomic<unsigned long> last_ident{0};

private:
    Mode mode_;
    std::chrono::milliseconds delay_;
    std::chrono::milliseconds block_;
    std::mutex mu_;
    std::vector<std::thread> threads_;
    std::vector<std::function<void(std::vector<StackFrame>)>> kept_;
};

// Stops the watchdog before the reader's answers can reach it, whatever the test did.
struct Rig {
    explicit Rig(FakeStackReader::Mode mode = FakeStackReader::Mode::answer,
                 std::chrono::milliseconds delay = 0ms, std::chrono::milliseconds block = 0ms,
                 double threshold = 0.02,
                 std::chrono::milliseconds stack_wait = narwhal::server::default_stack_wait)
        : reader(mode, delay, block), watchdog(monitor, stats, reader, threshold, 3, stack_wait) {
        monitor.thread_ident = 4242;
    }
    ~Rig() {
        watchdog.stop();
        reader.join();
    }
    // The loop last turned a second ago and its next beat was due 10 ms after that.
    void stall() { monitor.beat(LoopMonitor::now_ns() - 1'000'000'000, 10'000'000); }
    // The loop turns again; its next beat is far away.
    void unstall() { monitor.beat(LoopMonitor::now_ns(), 10'000'000'000); }

    LoopMonitor monitor;
    Stats stats;
    FakeStackReader reader;
    Watchdog watchdog;
};

// Puts the logger in json mode, and back to the default text mode at the end.
struct JsonLog {
    JsonLog() { nlog::configure(nlog::Level::info, true, true); }
    ~JsonLog() { nlog::configure(nlog::Level::info, false, true); }
};

const std::string blocked_text = "event loop blocked for ";
const std::string unblocked_text = "event loop unblocked after ";
const std::string stack_line = "File \"app.py\", line 7, in handler";

} // namespace

TEST_CASE("format_stack", "[server][watchdog]") {
    CHECK(format_stack({}) == "Stack of the event loop thread (most recent call last):");
    CHECK(format_stack({{"a.py", 1, "<module>", "main()"}, {"b.py", 20, "run", ""}}) ==
          "Stack of the event loop thread (most recent call last):\n"
          "  File \"a.py\", line 1, in <module>\n"
          "    main()\n"
          "  File \"b.py\", line 20, in run");
}

TEST_CASE("Watchdog: a loop on time is not reported", "[server][watchdog]") {
    StderrCapture err;
    Rig rig;
    SECTION("beating") {
        rig.unstall();
    }
    SECTION("never beat") {}
    SECTION("stopped after a beat long ago") {
        rig.stall();
        rig.monitor.stop();
    }
    rig.watchdog.start();
    std::this_thread::sleep_for(80ms);
    rig.watchdog.stop();
    err.restore();
    CHECK(rig.stats.loop_stalls == 0);
    CHECK(rig.reader.requests == 0);
    CHECK(err.text().empty());
}

TEST_CASE("Watchdog: a stall is counted and reported once, with request and stack",
          "[server][watchdog]") {
    StderrCapture err;
    Rig rig;
    rig.monitor.step_begin(42, "GET /slow HTTP/1.1");
    rig.stall();
    rig.watchdog.start();

    REQUIRE(eventually([&] { return err.text().find(blocked_text) != std::string::npos; }));
    // Several more checks (every 5 ms) while the loop stays blocked.
    std::this_thread::sleep_for(60ms);
    std::string text = err.text();
    CHECK(rig.stats.loop_stalls == 1);
    CHECK(rig.reader.requests == 1);
    CHECK(rig.reader.last_ident == 4242);
    CHECK(count(text, "event loop blocked") == 1);
    CHECK(count(text, stack_line) == 1);
    CHECK(text.find("WARNING:  event loop blocked for ") == 0);
    CHECK(number_after(text, blocked_text) >= 990);
    CHECK(text.find("(worker " + std::to_string(::getpid()) + ", interpreter 3)") !=
          std::string::npos);
    CHECK(text.find("in request GET /slow HTTP/1.1 (id 42)") != std::string::npos);
    CHECK(text.find(format_stack(sleeping_stack())) != std::string::npos);
    CHECK(text.find("\n  " + stack_line + "\n    time.sleep(1)\n") != std::string::npos);
    CHECK(text.find("not readable") == std::string::npos);
    CHECK(count(text, unblocked_text) == 0);

    // The loop turns: one "unblocked" report, the stall's length noted as lag.
    rig.monitor.step_end();
    rig.unstall();
    REQUIRE(eventually([&] { return err.text().find(unblocked_text) != std::string::npos; }));
    std::this_thread::sleep_for(40ms);
    rig.watchdog.stop();
    err.restore();
    text = err.text();
    CHECK(count(text, unblocked_text) == 1);
    CHECK(count(text, "event loop blocked") == 1);
    CHECK(rig.stats.loop_stalls == 1);
    auto unblocked = line_with(text, unblocked_text);
    CHECK(unblocked.find("WARNING:  ") == 0);
    // Reported with the request of the stall, not the (now idle) current step.
    CHECK(unblocked.find("in request GET /slow HTTP/1.1 (id 42)") != std::string::npos);
    CHECK(number_after(unblocked, unblocked_text) >= 990);
    CHECK(rig.stats.loop_lag_max_us >= 990'000);
    CHECK(text.find(blocked_text) < text.find(unblocked_text));
}

TEST_CASE("Watchdog: each new stall is counted and reported", "[server][watchdog]") {
    StderrCapture err;
    Rig rig;
    rig.monitor.step_begin(7, "POST /upload HTTP/1.1");
    rig.stall();
    rig.watchdog.start();
    REQUIRE(eventually([&] { return rig.stats.loop_stalls == 1; }));
    rig.unstall();
    REQUIRE(eventually([&] { return count(err.text(), unblocked_text) == 1; }));

    rig.monitor.step_begin(8, "GET /again HTTP/1.1");
    rig.stall();
    REQUIRE(eventually([&] { return rig.stats.loop_stalls == 2; }));
    REQUIRE(eventually([&] { return count(err.text(), blocked_text) == 2; }));
    rig.unstall();
    REQUIRE(eventually([&] { return count(err.text(), unblocked_text) == 2; }));
    std::this_thread::sleep_for(30ms);
    rig.watchdog.stop();
    err.restore();

    std::string text = err.text();
    CHECK(rig.stats.loop_stalls == 2);
    CHECK(rig.reader.requests == 2);
    CHECK(count(text, blocked_text) == 2);
    CHECK(count(text, unblocked_text) == 2);
    CHECK(count(text, stack_line) == 2);
    CHECK(count(text, "(id 7)") == 2); // blocked + unblocked of the first stall
    CHECK(count(text, "in request GET /again HTTP/1.1 (id 8)") == 2);
}

TEST_CASE("Watchdog: a stall outside any request", "[server][watchdog]") {
    StderrCapture err;
    Rig rig;
    rig.stall();
    rig.watchdog.start();
    REQUIRE(eventually([&] { return err.text().find(blocked_text) != std::string::npos; }));
    rig.watchdog.stop();
    err.restore();
    std::string text = err.text();
    CHECK(line_with(text, blocked_text).find("outside any request") != std::string::npos);
    CHECK(text.find("in request") == std::string::npos);
}

TEST_CASE("Watchdog: a stack read late follows in its own report", "[server][watchdog]") {
    StderrCapture err;
    Rig rig(FakeStackReader::Mode::answer, 200ms);
    rig.monitor.step_begin(42, "GET /slow HTTP/1.1");
    rig.stall();
    rig.watchdog.start();

    // The first report goes out without waiting for the stack.
    REQUIRE(eventually([&] { return err.text().find(blocked_text) != std::string::npos; }));
    std::string text = err.text();
    CHECK(text.find("Stack not readable yet") != std::string::npos);
    CHECK(text.find(stack_line) == std::string::npos);
    CHECK(text.find("in request GET /slow HTTP/1.1 (id 42)") != std::string::npos);

    REQUIRE(eventually([&] { return err.text().find(stack_line) != std::string::npos; }));
    std::this_thread::sleep_for(20ms);
    rig.watchdog.stop();
    err.restore();
    text = err.text();
    CHECK(rig.stats.loop_stalls == 1);
    CHECK(count(text, blocked_text) == 1);
    CHECK(count(text, stack_line) == 1);
    CHECK(text.find("Stack not readable yet") < text.find(stack_line));
    // The late stack's own report: a warning of its own, not a second "blocked" report.
    auto later = line_with(text, ", read after ");
    CHECK(later.find("WARNING:  ") == 0);
    CHECK(later.find(blocked_text) == std::string::npos);
    CHECK(later.find("(worker " + std::to_string(::getpid()) + ", interpreter 3)") !=
          std::string::npos);
    CHECK(later.find("in request GET /slow HTTP/1.1 (id 42)") != std::string::npos);
    CHECK(number_after(later, ", read after ") >= 200);
    CHECK(text.find(format_stack(sleeping_stack())) != std::string::npos);
}

TEST_CASE("Watchdog: a stack that never comes", "[server][watchdog]") {
    StderrCapture err;
    Rig rig(FakeStackReader::Mode::never);
    rig.stall();
    rig.watchdog.start();
    REQUIRE(eventually([&] { return err.text().find(blocked_text) != std::string::npos; }));
    std::this_thread::sleep_for(40ms);
    rig.unstall();
    REQUIRE(eventually([&] { return err.text().find(unblocked_text) != std::string::npos; }));
    rig.watchdog.stop();
    err.restore();
    std::string text = err.text();
    CHECK(rig.reader.requests == 1);
    CHECK(rig.stats.loop_stalls == 1);
    CHECK(count(text, "Stack not readable yet") == 1);
    CHECK(text.find("Stack of the event loop thread") == std::string::npos);
}

TEST_CASE("Watchdog: a stack answered after stop is dropped", "[server][watchdog]") {
    StderrCapture err;
    Rig rig(FakeStackReader::Mode::answer, 150ms);
    rig.stall();
    rig.watchdog.start();
    REQUIRE(eventually([&] { return err.text().find(blocked_text) != std::string::npos; }));
    rig.watchdog.stop();
    rig.reader.join(); // the answer arrives at a stopped (still alive) watchdog
    err.restore();
    CHECK(rig.reader.answered == 1);
    CHECK(err.text().find(stack_line) == std::string::npos);
}

// Whether the stack is late is decided by the report's own wait, under the lock the
// callback takes: a slow request() (1.5 s) followed by an answer 1 s later lands inside
// a 2 s wait and is printed once, in the stall's report. A wait counted from before
// request() would have run out (2.5 s); the answer still has 1 s to spare on a loaded
// machine (with the 50 ms default and 30 ms steps, an ASan build missed it).
TEST_CASE("Watchdog: a stack arriving after a slow request() but within the wait is reported "
          "once, after the stall",
          "[server][watchdog]") {
    StderrCapture err;
    Rig rig(FakeStackReader::Mode::answer, 1000ms, 1500ms, 0.02, 2000ms);
    rig.stall();
    rig.watchdog.start();
    REQUIRE(eventually([&] { return err.text().find(blocked_text) != std::string::npos; }));
    REQUIRE(eventually([&] { return rig.reader.answered == 1; }));
    std::this_thread::sleep_for(20ms);
    rig.watchdog.stop();
    err.restore();
    std::string text = err.text();
    CHECK(count(text, stack_line) == 1);
    // The stall's report comes first.
    CHECK(text.find(blocked_text) < text.find(stack_line));
    CHECK(text.find(", read after ") == std::string::npos);
}

TEST_CASE("Watchdog: json reports", "[server][watchdog]") {
    JsonLog json;
    StderrCapture err;

    SECTION("stall and unblock, each one line") {
        Rig rig;
        rig.monitor.step_begin(42, "GET /slow HTTP/1.1");
        rig.stall();
        rig.watchdog.start();
        REQUIRE(eventually(
            [&] { return err.text().find("\"event\": \"loop_blocked\"") != std::string::npos; }));
        rig.unstall();
        REQUIRE(eventually(
            [&] { return err.text().find("\"event\": \"loop_unblocked\"") != std::string::npos; }));
        rig.watchdog.stop();
        err.restore();
        std::string text = err.text();

        CHECK(count(text, "\"event\": \"loop_blocked\"") == 1);
        CHECK(count(text, "\n") == 2); // two reports, one line each
        auto line = line_with(text, "\"event\": \"loop_blocked\"");
        INFO(line);
        CHECK(line.front() == '{');
        CHECK(line.back() == '}');
        CHECK(line.find("\"level\": \"warning\"") != std::string::npos);
        CHECK(number_after(line, "\"blocked_ms\": ") >= 990);
        CHECK(line.find("\"worker\": " + std::to_string(::getpid()) + ", ") != std::string::npos);
        CHECK(line.find("\"interpreter\": 3, ") != std::string::npos);
        CHECK(line.find("\"request\": {\"method\": \"GET\", \"path\": \"/slow\", \"id\": 42}") !=
              std::string::npos);
        CHECK(line.find("\"stack\": [{\"file\": \"app.py\", \"line\": 7, \"function\": "
                        "\"handler\", \"code\": \"time.sleep(1)\"}]") != std::string::npos);
        // The human text rides along, its newlines escaped.
        CHECK(line.find("\"message\": \"event loop blocked for ") != std::string::npos);
        CHECK(line.find("\\n  File \\\"app.py\\\", line 7, in handler\\n    time.sleep(1)") !=
              std::string::npos);

        auto unblocked = line_with(text, "\"event\": \"loop_unblocked\"");
        CHECK(unblocked.front() == '{');
        CHECK(unblocked.back() == '}');
        CHECK(number_after(unblocked, "\"blocked_ms\": ") >= 990);
        CHECK(
            unblocked.find("\"request\": {\"method\": \"GET\", \"path\": \"/slow\", \"id\": 42}") !=
            std::string::npos);
    }
    SECTION("outside any request, stack late") {
        Rig rig(FakeStackReader::Mode::answer, 120ms);
        rig.stall();
        rig.watchdog.start();
        REQUIRE(eventually([&] {
            return err.text().find("\"event\": \"loop_blocked_stack\"") != std::string::npos;
        }));
        rig.watchdog.stop();
        err.restore();
        std::string text = err.text();
        CHECK(count(text, "\n") == 2);
        auto first = line_with(text, "\"event\": \"loop_blocked\"");
        CHECK(first.find("\"request\": null") != std::string::npos);
        CHECK(first.find("\"stack\": null") != std::string::npos);
        auto later = line_with(text, "\"event\": \"loop_blocked_stack\"");
        CHECK(later.front() == '{');
        CHECK(later.back() == '}');
        CHECK(later.find("\"request\": null") != std::string::npos);
        CHECK(later.find("\"stack\": [{\"file\": \"app.py\", \"line\": 7") != std::string::npos);
    }
}
