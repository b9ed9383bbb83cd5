// The process's publish/subscribe fan-out: which sockets subscribe to which topic, and
// the delivery of each publication to them without entering Python per subscriber.
//
// Subscriptions live with the I/O thread that owns the socket: each thread has its own
// topic -> sockets table, touched only on that thread, so a delivery walks it without a
// lock. A shared table under one mutex says which threads have subscribers of a topic;
// a publication takes that lock once, posts one task per such thread (carrying the
// shared publication), and each thread hands it to its sockets. Per-topic order holds
// for every subscriber: one publisher's posts to one thread run in order, and each
// socket writes its queue in order.
//
// Publications come from the connections (the app's narwhal.pubsub.publish, carried as
// a command so it keeps its order with the same connection's subscribe) and from the
// relays (other workers, Redis), which get what this process publishes.
#pragma once

#include "asgi/pubsub.hpp"
#include "server/pubsub_relay.hpp"

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace narwhal::server {

class IoThread;
struct ServerContext;

// A socket that takes publications (WsSession). Called on its own I/O thread.
class PubSubSubscriber {
public:
    virtual void on_publication(const asgi::PublicationPtr& p) = 0;

protected:
    ~PubSubSubscriber() = default;
};

class PubSubHub {
public:
    // `threads`: every I/O thread of the worker, fixed for the hub's life.
    PubSubHub(ServerContext& ctx, std::vector<IoThread*> threads);
    ~PubSubHub();
    PubSubHub(const PubSubHub&) = delete;
    PubSubHub& operator=(const PubSubHub&) = delete;

    // Before any connection exists. The hub does not own the relay.
    void add_relay(PubSubRelay* relay) { relays_.push_back(relay); }

    // Any thread: a publication made in this process: to this process's subscribers and
    // to every relay.
    void publish(const asgi::PublicationPtr& p);
    // Any thread: a publication a relay received: to this process's subscribers only.
    void deliver(const asgi::PublicationPtr& p);

    // `io`'s own thread. Returns false when `s` already was (or was not) subscribed.
    bool subscribe(IoThread& io, const std::string& topic, PubSubSubscriber* s);
    bool unsubscribe(IoThread& io, const std::string& topic, PubSubSubscriber* s);

    // Any thread: the topics this process has subscribers of (a relay resubscribing
    // after it reconnected).
    std::vector<std::string> active_topics() const;

private:
    // One I/O thread's subscriptions. `walking` > 0 while a delivery walks a list: a
    // socket leaving then is nulled out and the list compacted after the walk.
    struct Local {
        std::unordered_map<std::string, std::vector<PubSubSubscriber*>> topics;
        int walking = 0;
        bool holes = false;
    };

    std::size_t index_of(const IoThread& io) const;
    void fan_out(const asgi::PublicationPtr& p);
    void deliver_on(std::size_t thread, const asgi::PublicationPtr& p);
    // Under mu_: thread `t` has its first subscriber of `topic`, or its last one left.
    void thread_joined(const std::string& topic, std::size_t t);
    void thread_left(const std::string& topic, std::size_t t);

    ServerContext& ctx_;
    std::vector<IoThread*> threads_;
    std::vector<std::unique_ptr<Local>> locals_;  // by thread index
    std::vector<PubSubRelay*> relays_;
    mutable std::mutex mu_;
    // Topic -> the indexes of the threads with subscribers of it (few: one per thread).
    std::unordered_map<std::string, std::vector<uint16_t>> topics_;
};

}  // namespace narwhal::server
