// The worker bus: carries narwhal.pubsub publications between the worker processes of one
// server (--workers N without --pubsub-redis; with it, Redis links the workers instead).
//
// Each worker listens on a Unix stream socket in the master's private directory
// (server/pubsub_bus_directory.hpp) and connects to every other worker's socket, so each
// pair has two connections, each carrying one direction: what this worker publishes goes
// out on its own connections, what it receives comes in on the ones it accepted. A stream
// (not datagrams) keeps a publication of any size whole and one sender's publications in
// order; the frames are server/pubsub_frame.hpp's.
//
// Every publication goes to every other worker (a worker without subscribers of its topic
// drops it after one lookup): the workers do not tell each other their topics, so a
// subscription needs no message and a worker that restarts needs no resubscription.
//
// Never blocking, never growing without bound: each peer has a queue of at most
// --pubsub-max-queue publications (the setting that bounds a subscriber's queue, reused
// as the count per peer); a publication for a peer whose queue is full, or that is not
// connected (starting, restarting, gone), is counted in pubsub_bus_lost and skipped.
//
// Everything runs on the front end's relay thread (FrontEnd::relay_thread); forward() is
// the only entry from other threads, and it posts.
//
// Peers are found by watching the directory (inotify): a worker's socket name appears,
// already listening, when it starts; the master removes it when it reaps the process. A
// peer that refuses or drops the connection is tried again with a back-off.
//
// Access: only processes of this user can reach the sockets (the directory's mode is
// 0700); an accepted connection from another user (SO_PEERCRED) is closed all the same.
#pragma once

#include "asgi/pubsub.hpp"
#include "server/pubsub_relay.hpp"

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <sys/types.h>

namespace narwhal::server {

class IoThread;
class PubSubHub;
struct ServerContext;

class PubSubBus final : public PubSubRelay {
public:
    // A peer that is not up yet (a worker still starting, one that is being replaced) is
    // tried again after 100 ms, doubling to 2 s: a restarted worker binds its socket
    // within its start-up, which is longer than the first step, and is found again at
    // most 2 s after it listens, while a peer that stays down costs one connect() per 2 s.
    static constexpr std::chrono::milliseconds retry_first{100};
    static constexpr std::chrono::milliseconds retry_max{2000};

    // `dir`: the master's bus directory. `max_queue`: publications queued per peer.
    // `self`: the name this worker listens under, its process ID unless given (tests run
    // several buses in one process).
    PubSubBus(std::string dir, PubSubHub& hub, IoThread& thread, ServerContext& ctx,
              std::size_t max_queue, pid_t self = 0);
    // Only once `thread` has stopped (the front end's stop()): handlers still queued there
    // are never run. Removes this worker's socket name.
    ~PubSubBus() override;
    PubSubBus(const PubSubBus&) = delete;
    PubSubBus& operator=(const PubSubBus&) = delete;

    // Listens, watches the directory and connects to the workers already there, on the
    // relay thread (posted: it runs once the thread does).
    void start();

    // Any thread.
    void forward(const asgi::PublicationPtr& p) override;

    // This worker's socket; the peers it has (connected or not). Relay thread.
    const std::string& path() const { return path_; }
    std::size_t peer_count() const { return peers_.size(); }

private:
    class Peer;
    class Inbound;
    using Socket = boost::asio::local::stream_protocol::socket;

    void do_start();
    void listen();
    void watch();
    void do_accept();
    void on_accept(const boost::system::error_code& ec, Socket socket);
    void do_watch();
    void on_watch(const boost::system::error_code& ec, std::size_t n);
    void scan();
    void add_peer(pid_t pid);
    void drop_peer(pid_t pid);
    void send(const asgi::PublicationPtr& p);
    void lose(std::size_t n);

    std::string dir_;
    PubSubHub& hub_;
    IoThread& thread_;
    ServerContext& ctx_;
    std::size_t max_queue_;
    pid_t self_;
    pid_t master_;  // the parent when the bus started: the master that owns the directory
    std::string path_;
    std::optional<boost::asio::local::stream_protocol::acceptor> acceptor_;
    std::optional<boost::asio::steady_timer> accept_retry_;
    std::optional<boost::asio::posix::stream_descriptor> watch_;
    alignas(8) char watch_buf_[4096];
    std::map<pid_t, std::shared_ptr<Peer>> peers_;
};

}  // namespace narwhal::server
