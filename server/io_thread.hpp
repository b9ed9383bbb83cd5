// One I/O thread: its io_context, the connections it owns, and the mailbox through
// which interpreter threads hand it commands. Commands are queued under a mutex and
// the thread is poked with one post per batch, not one per command, and that post
// reuses one piece of memory instead of allocating.
#pragma once

#include "asgi/events.hpp"
#include "server/handler_slot.hpp"

#include <boost/asio/io_context.hpp>

#include <memory>
#include <mutex>
#include <thread>
#include <unordered_set>
#include <vector>

namespace narwhal::server {

class Connection;

class IoThread {
public:
    IoThread();
    ~IoThread();
    IoThread(const IoThread&) = delete;
    IoThread& operator=(const IoThread&) = delete;

    boost::asio::io_context& context() { return ioc_; }

    // Any thread.
    void push_command(std::shared_ptr<Connection> connection, asgi::Command&& cmd);

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
    static void schedule_wakes(void* self);

    // Before ioc_: a kick still queued when the context is destroyed is freed into it.
    HandlerSlot kick_slot_;
    boost::asio::io_context ioc_{1};
    std::thread thread_;
    std::mutex mu_;
    std::vector<Item> mailbox_;
    std::vector<Item> running_;
    std::unordered_set<Connection*> sessions_;
};

}  // namespace narwhal::server
