// --pubsub-redis: carries narwhal.pubsub publications between servers (and between the
// workers of one server) through Redis pub/sub. Each worker process has one relay with
// two connections, because a RESP2 connection that has subscribed can only (un)subscribe:
//   - the subscriber connection holds one SUBSCRIBE (prefix + topic) per topic this
//     process has subscribers of, however many sockets subscribe to it, and hands what
//     arrives to the hub (PubSubHub::deliver);
//   - the publisher connection sends PUBLISH (prefix + topic, envelope) for every
//     publication made in this process (server/pubsub_redis_envelope.hpp); the copy
//     Redis sends back to this process is recognised by its origin and skipped, as the
//     hub delivered it here already.
//
// Everything runs on the front end's relay thread, with hiredis's async API driven by
// its io_context (server/redis_asio.hpp): the hub's calls post there, and nothing waits
// on Redis. When Redis cannot be reached (at start or later), the relay logs one
// warning per outage, retries with a growing delay, counts the publications it cannot
// send as lost (ones that waited would arrive late and out of order), and when it is
// back it subscribes again to every topic the hub has subscribers of.
#pragma once

#include "config/redis_url.hpp"
#include "config/settings.hpp"
#include "server/pubsub_relay.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <random>
#include <string>

struct redisAsyncContext;
struct redisReply;

namespace narwhal::server {

class IoThread;
class PubSubHub;
struct ServerContext;

// The delay before the next connection attempt: 100 ms doubling to `cap`
// (--pubsub-redis-retry-max), each drawn between half and all of that (jitter).
class RedisBackoff {
public:
    // 100 ms: a Redis restarting (or a failover) is back within a few hundred ms, and
    // publications are lost meanwhile, so the first tries come quickly.
    static constexpr std::chrono::milliseconds first{100};

    explicit RedisBackoff(std::chrono::milliseconds cap)
        : cap_(std::max(cap, std::chrono::milliseconds(1))), delay_(std::min(first, cap_)) {}

    // Jitter: after a Redis restart every worker of every server retries; drawn delays
    // spread their reconnects instead of landing them all in the same instant.
    std::chrono::milliseconds next(std::mt19937_64& random) {
        auto base = delay_;
        delay_ = std::min(delay_ * 2, cap_);
        std::uniform_int_distribution<int64_t> half(base.count() / 2, base.count());
        return std::chrono::milliseconds(half(random));
    }
    void reset() { delay_ = std::min(first, cap_); }

private:
    std::chrono::milliseconds cap_;
    std::chrono::milliseconds delay_;
};

class PubSubRedis final : public PubSubRelay {
public:
    // Starts connecting on `thread` as soon as it runs. `settings.pubsub_redis` was
    // validated by the config loader. Destroy after `thread` has stopped for good
    // (FrontEnd::stop): the destructor then closes both connections on the calling thread.
    PubSubRedis(const config::Settings& settings, ServerContext& ctx, PubSubHub& hub,
                IoThread& thread);
    ~PubSubRedis() override;
    PubSubRedis(const PubSubRedis&) = delete;
    PubSubRedis& operator=(const PubSubRedis&) = delete;

    void forward(const asgi::PublicationPtr& p) override;
    void topic_active(const std::string& topic) override;
    void topic_idle(const std::string& topic) override;

private:
    enum class Phase {
        waiting,     // for the next attempt (or the first turn of the thread)
        connecting,  // resolving, connecting, AUTH/SELECT/PING not answered yet
        up,          // both connections answered
    };
    // One of the two connections. `ac` is null when closed.
    struct Link {
        PubSubRedis* owner;
        const char* role;  // "subscriber", "publisher": for messages
        redisAsyncContext* ac = nullptr;
        bool ready = false;
    };

    void do_connect();
    void on_resolved(uint64_t attempt, const boost::system::error_code& ec,
                     const boost::asio::ip::tcp::resolver::results_type& results);
    void tick_while_resolving(uint64_t attempt);
    void open(const std::string& host);
    bool open_link(Link& link, const std::string& host);
    void on_link_ready(Link& link);
    void on_up();
    void fail(const std::string& reason);
    void close_links();
    void close_link(Link& link);
    void schedule_retry();

    void do_forward(const asgi::PublicationPtr& p);
    void do_subscription(const std::string& topic, bool subscribe);
    void on_message(const redisReply& reply);
    void on_published(const redisReply* reply);

    // hiredis's callbacks: `ac->data` is the Link (null once this relay closes it).
    static void on_connect(const redisAsyncContext* ac, int status);
    static void on_disconnect(const redisAsyncContext* ac, int status);
    static void on_handshake_reply(redisAsyncContext* ac, void* reply, void* step);
    static void on_publish_reply(redisAsyncContext* ac, void* reply, void* unused);
    static void on_subscriber_reply(redisAsyncContext* ac, void* reply, void* unused);

    ServerContext& ctx_;
    PubSubHub& hub_;
    IoThread& thread_;
    const config::RedisUrl url_;
    const std::string shown_url_;  // without the password
    const std::string prefix_;
    const std::size_t max_pending_;
    const std::chrono::milliseconds connect_timeout_;  // --pubsub-redis-connect-timeout
    // Made here, in the worker process (after the fork): each process its own.
    const uint64_t origin_;

    Link sub_{this, "subscriber"};
    Link pub_{this, "publisher"};
    Phase phase_ = Phase::waiting;
    uint64_t attempt_ = 0;  // tells a stale resolve or timer from the current attempt
    bool ever_up_ = false;
    bool outage_reported_ = false;      // one warning per outage
    bool congestion_reported_ = false;  // one warning per stretch at --pubsub-redis-max-pending
    bool unknown_reported_ = false;     // one warning for messages of an unknown version
    std::size_t pending_ = 0;           // PUBLISH replies outstanding
    std::size_t address_turn_ = 0;      // which of a name's addresses to try next
    RedisBackoff backoff_;
    std::mt19937_64 random_;
    boost::asio::steady_timer retry_timer_;
    boost::asio::steady_timer connect_timer_;
    // Inline (--io-threads 0) only: Asio's resolver answers from a thread of its own, and
    // a post from another thread does not wake a context that no thread is blocked in;
    // this timer keeps it turning until the answer is in.
    boost::asio::steady_timer resolve_tick_;
    boost::asio::ip::tcp::resolver resolver_;
};

}  // namespace narwhal::server
