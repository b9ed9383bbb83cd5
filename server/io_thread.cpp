#include "server/io_thread.hpp"

#include "asgi/deferred_wake.hpp"
#include "asgi/log.hpp"
#include "server/connection.hpp"
#include "server/reactor_fd.hpp"

#include <boost/asio/post.hpp>

#include <pthread.h>

namespace narwhal::server {

namespace net = boost::asio;

// At most one kick is in flight: one is owed only on the mailbox's empty -> non-empty
// transition, and the mailbox is emptied only by run_mailbox, which Asio calls after it
// has freed the kick's operation. So the slot is free for every kick; should two ever
// overlap, the second takes the heap.
struct IoThread::Kick {
    IoThread* self;

    using allocator_type = HandlerSlot::Allocator<void>;
    allocator_type get_allocator() const noexcept { return allocator_type(self->kick_slot_); }

    void operator()() const { self->run_mailbox(); }
};

IoThread::IoThread(Mode mode) : mode_(mode) {
    if (mode_ == Mode::inline_)
        keep_.emplace(ioc_.get_executor());
}

IoThread::~IoThread() { join(); }

void IoThread::push_command(std::shared_ptr<Connection> session, asgi::Command&& cmd) {
    bool was_empty;
    {
        std::lock_guard lock(mu_);
        was_empty = mailbox_.empty();
        mailbox_.push_back({std::move(session), std::move(cmd)});
    }
    // Woken once per batch of commands; an interpreter that batches defers even that
    // to the end of its loop iteration.
    if (was_empty && !asgi::defer_wake(&IoThread::kick_fn, this))
        kick();
}

void IoThread::kick() {
    if (mode_ == Mode::inline_ && !pumping_) {
        // Inline, at the end of the interpreter's batch: write the responses now, on
        // this thread, and run what that made ready (a write that completed at once).
        pumping_ = true;
        run_mailbox();
        run_logged([this] { ioc_.poll(); });
        pumping_ = false;
        return;
    }
    // Posted from the interpreter thread and freed on this one: with Asio's default
    // per-thread recycling that would be a malloc and a free on different threads per
    // batch; the slot makes it none.
    net::post(ioc_, Kick{this});
}

void IoThread::kick_fn(void* self) { static_cast<IoThread*>(self)->kick(); }

void IoThread::pump_fn(void* self) { static_cast<IoThread*>(self)->pump(); }

template <class Run> void IoThread::run_logged(Run&& run) {
    // A handler that throws must not take every connection of this thread with it:
    // log and keep running.
    for (;;) {
        try {
            run();
            return;
        } catch (const std::exception& e) {
            log::error("I/O thread: a handler failed: {}", e.what());
        }
    }
}

int IoThread::descriptor() { return reactor_descriptor(ioc_); }

void IoThread::pump() {
    if (pumping_)
        return;
    pumping_ = true;
    run_logged([this] { ioc_.poll(); });
    pumping_ = false;
}

void IoThread::owe_pump() {
    // A post from a handler of this context runs in the pump already under way. Any
    // other: Asio only interrupts a reactor that a thread is blocked in, and none is, so
    // nothing would make the descriptor readable for it.
    if (pumping_)
        return;
    if (!asgi::defer_wake(&IoThread::pump_fn, this))
        pump();
}

void IoThread::drive_until(const std::function<bool()>& done, std::chrono::milliseconds limit) {
    auto until = std::chrono::steady_clock::now() + limit;
    pumping_ = true;
    while (!done() && std::chrono::steady_clock::now() < until)
        run_logged([this] { ioc_.run_one_for(std::chrono::milliseconds(5)); });
    pumping_ = false;
}

void IoThread::schedule_wakes(void* self) {
    // Runs after the handlers already queued on this thread: the end of its batch.
    auto* t = static_cast<IoThread*>(self);
    net::post(t->ioc_, [] { asgi::run_deferred_wakes(); });
}

void IoThread::run_mailbox() {
    {
        std::lock_guard lock(mu_);
        running_.swap(mailbox_);
    }
    // A command that throws is logged here rather than in the thread's run loop: leaving
    // the batch half done would strand the rest of it in running_, the next swap would
    // put it back into the mailbox, and with the mailbox never empty again no push would
    // kick this thread: every connection on it would wait for ever.
    for (auto& item : running_) {
        if (item.cmd.kind == asgi::Command::Kind::release)
            continue;
        try {
            item.session->on_command(std::move(item.cmd));
        } catch (const std::exception& e) {
            log::error("I/O thread: a command failed: {}", e.what());
        }
    }
    // The last reference to a finished connection may be dropped here, on its own thread.
    running_.clear();
}

void IoThread::begin_shutdown() {
    post([this] {
        // Copy: closing a session may remove it from the set.
        std::vector<Connection*> all(sessions_.begin(), sessions_.end());
        for (auto* s : all)
            if (sessions_.count(s))
                s->on_server_shutdown();
    });
}

void IoThread::start() {
    if (mode_ == Mode::inline_)
        return;  // driven by the interpreter's thread
    thread_ = std::thread([this] {
        auto guard = net::make_work_guard(ioc_);
        asgi::set_wake_scheduler(&IoThread::schedule_wakes, this);
        run_logged([this] { ioc_.run(); });
    });
    // Named for `top -H` and /proc/PID/task/*/comm: which threads do the network I/O. By
    // the starting thread, so the name is there before the worker says it is ready.
    ::pthread_setname_np(thread_.native_handle(), "narwhal-io");
}

void IoThread::stop() {
    keep_.reset();
    ioc_.stop();
}

void IoThread::join() {
    if (thread_.joinable())
        thread_.join();
}

}  // namespace narwhal::server
