// The --metrics-bind listener: a tiny HTTP/1.x server for one path, /metrics, driven by
// poll(2). Each connection is read until its head is complete, answered with the text the
// `render` callback gives (404 elsewhere, 405 for methods other than GET/HEAD) and closed.
//
// Why poll and not the front end's Asio machinery: the master of --workers stays
// single-threaded for every fork and already runs one poll loop (server/supervisor.cpp),
// which takes this listener's descriptors beside its own; a single process runs the same
// loop on a thread of its own (start_thread), so /metrics answers while the event loops
// and the I/O threads are busy or stuck. Scrapes are rare and small: one at a time per
// connection, a few connections at most.
#pragma once

#include <poll.h>

#include <chrono>
#include <functional>
#include <span>
#include <string>
#include <thread>
#include <vector>

namespace narwhal::server {

class MetricsListener {
public:
    using Render = std::function<std::string()>;

    // Binds `bind` ("HOST:PORT", "[v6]:PORT"; port 0: any). Throws std::system_error
    // naming the address.
    MetricsListener(const std::string& bind, Render render);
    ~MetricsListener();
    MetricsListener(const MetricsListener&) = delete;
    MetricsListener& operator=(const MetricsListener&) = delete;

    // "http://HOST:PORT/metrics", with the port bound.
    const std::string& url() const { return url_; }

    // --- inside someone else's poll loop ----------------------------------------
    // Appends the descriptors to watch (the listener's, each connection's).
    void add_fds(std::vector<pollfd>& fds) const;
    // After poll: serves those of `fds` that are ours; expires connections past their
    // deadline.
    void on_poll(std::span<const pollfd> fds);
    // The longest the caller's poll may wait for our sake (-1: no deadline pending).
    int timeout_ms() const;

    // Every descriptor it holds: what a forked worker must close.
    void descriptors(std::vector<int>& out) const;

    // --- on a thread of its own ---------------------------------------------------
    void start_thread();
    void stop_thread();

private:
    struct Client {
        int fd = -1;
        std::string in;
        std::string out;
        std::size_t sent = 0;
        std::chrono::steady_clock::time_point deadline;
    };
    void accept_all();
    // False: the client is done (answered or gone) and to be closed.
    bool on_readable(Client& c);
    bool on_writable(Client& c);
    void answer(Client& c);
    void run();

    Render render_;
    int fd_ = -1;
    std::string url_;
    std::vector<Client> clients_;
    int wake_fd_ = -1;  // eventfd: stop_thread wakes the thread's poll
    std::thread thread_;
};

}  // namespace narwhal::server
