// The one object both sides of a request hold: the I/O thread's connection and the
// interpreter's request cycle. It carries commands to the connection and counts the
// response bytes in flight so `send()` can wait for the socket to drain.
#pragma once

#include "asgi/admission.hpp"
#include "asgi/events.hpp"

#include <atomic>
#include <cstdint>
#include <memory>
#include <utility>

namespace narwhal::asgi {

// Implemented by the I/O side. `submit` is called from an interpreter thread and must
// only queue the command for the connection's own thread.
class CommandSink {
public:
    virtual ~CommandSink() = default;
    virtual void submit(std::shared_ptr<CommandSink> self_or_null, Command&& cmd) = 0;
};

class Channel {
public:
    // `admission`: the slot this request holds, released when the request cycle ends.
    Channel(uint64_t id, std::shared_ptr<CommandSink> sink, Admission* admission = nullptr)
        : id_(id), sink_(std::move(sink)), admission_(admission) {}

    uint64_t id() const { return id_; }

    // Interpreter thread. Commands after detach() are dropped: the connection is gone
    // or has moved on.
    void submit(Command&& cmd) {
        if (!sink_)
            return;
        cmd.request = id_;
        sink_->submit(nullptr, std::move(cmd));
    }

    // Interpreter thread, once, when the request cycle ends. The reference is handed to
    // the connection's thread so the connection is never destroyed on this thread.
    void detach() {
        if (auto* a = std::exchange(admission_, nullptr))
            a->release();
        if (auto sink = std::move(sink_)) {
            CommandSink* raw = sink.get();
            raw->submit(std::move(sink), Command{.kind = Command::Kind::release});
        }
    }
    bool attached() const { return sink_ != nullptr; }

    // --- outbound flow control (send high/low water) -----------------------------
    // Interpreter thread: account `n` bytes handed to the connection. Returns true when
    // the sender must wait for a `drained` event.
    bool add_outbound(std::size_t n, std::size_t high, std::size_t low) {
        std::size_t now = outbound_.fetch_add(n) + n;
        if (now <= high)
            return false;
        sender_waiting_.store(true);
        // The I/O thread may have drained everything between the add and the flag.
        if (outbound_.load() <= low && sender_waiting_.exchange(false))
            return false;
        return true;
    }
    // I/O thread: `n` bytes left the buffer. Returns true when a waiting sender must be
    // woken (exactly once per wait).
    bool on_written(std::size_t n, std::size_t low) {
        std::size_t now = outbound_.fetch_sub(n) - n;
        return now <= low && sender_waiting_.load() && sender_waiting_.exchange(false);
    }
    // Either thread: the connection is gone; nobody waits any more.
    void cancel_wait() { sender_waiting_.store(false); }

    // Interpreter-thread-only back pointer to the Python-side cycle (opaque here).
    void* owner = nullptr;

private:
    uint64_t id_;
    std::shared_ptr<CommandSink> sink_;
    Admission* admission_;
    std::atomic<std::size_t> outbound_{0};
    std::atomic<bool> sender_waiting_{false};
};

}  // namespace narwhal::asgi
