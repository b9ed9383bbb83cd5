// One I/O thread: its io_context, the connections it owns, and the mailbox through
// which interpreter threads hand it commands. Commands are queued under a mutex and
// the thread is poked with one post per batch, not one per command, and that post
// reuses one piece of memory instead of allocating.
//
// Or, inline (--io-threads 0), no thread of its own: the interpreter's thread runs the
// context between event-loop iterations, woken by the reactor's descriptor. A worker
// that already has a core to itself then hands a request from network to Python and
// back without a thread switch (docs/operations.md, "I/O threads").
#pragma once

#include "asgi/events.hpp"
#include "server/handler_slot.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_set>
#include <vector>

namespace narwhal::server {

class Connection;

class IoThread {
public:
    enum class Mode { thread, inline_ };
    explicit IoThread(Mode mode = Mode::thread);
    ~IoThread();
    IoThread(const IoThread&) = delete;
    IoThread& operator=(const IoThread&) = delete;

    boost::asio::io_context& context() { return ioc_; }

    // Any thread.
    void push_command(std::shared_ptr<Connection> connection, asgi::Command&& cmd);
    // Runs `f` on this thread. For work handed over from outside this thread's handlers:
    // inline, a plain post would not wake the loop that drives the context.
    template <class F> void post(F&& f) {
        boost::asio::post(ioc_, std::forward<F>(f));
        if (mode_ == Mode::inline_)
            owe_pump();
    }

    // --- inline mode, on the thread that drives it -------------------------------------
    bool is_inline() const { return mode_ == Mode::inline_; }
    // Readable when handlers are ready to run (the reactor's epoll descriptor).
    int descriptor();
    // Runs every ready handler, without waiting.
    void pump();
    // Runs handlers as they become ready until `done()` or `limit` has passed.
    void drive_until(const std::function<bool()>& done, std::chrono::milliseconds limit);

    // This thread only.
    void add_session(Connection* s) { sessions_.insert(s); }
    void remove_session(Connection* s) { sessions_.erase(s); }
    // Posts the shutdown notice to every connection of this thread.
    void begin_shutdown();
    std::size_t session_count() const { return sessions_.size(); }

    void start();
    void stop();
    void join();

private:
    struct Item {
        std::shared_ptr<Connection> session;
        asgi::Command cmd;
    };
    // The handler that runs the mailbox; its operation lives in kick_slot_.
    struct Kick;

    void run_mailbox();
    void kick();
    static void kick_fn(void* self);
    static void pump_fn(void* self);
    static void schedule_wakes(void* self);
    // Inline: a pump at the end of the current batch (or now, when nothing batches).
    void owe_pump();
    // Runs ready handlers, logging (not propagating) a handler's exception.
    template <class Run> void run_logged(Run&& run);

    // Before ioc_: a kick still queued when the context is destroyed is freed into it.
    HandlerSlot kick_slot_;
    boost::asio::io_context ioc_{1};
    Mode mode_;
    // Inline: poll() would stop the context for good once it runs out of work.
    std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> keep_;
    bool pumping_ = false;
    std::thread thread_;
    std::mutex mu_;
    std::vector<Item> mailbox_;
    std::vector<Item> running_;
    std::unordered_set<Connection*> sessions_;
};

}  // namespace narwhal::server
