#include "server/pubsub_redis.hpp"

#include "asgi/log.hpp"
#include "server/io_thread.hpp"
#include "server/pubsub_hub.hpp"
#include "server/pubsub_redis_envelope.hpp"
#include "server/redis_asio.hpp"
#include "server/server_context.hpp"

#include <boost/asio/ip/address.hpp>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <iterator>
#include <string_view>

namespace narwhal::server {

namespace net = boost::asio;

namespace {

constexpr auto relaxed = std::memory_order_relaxed;

// The handshake's steps, passed as the reply's private data.
enum class Step : uintptr_t { auth, select, ping };

void* as_data(Step s) { return reinterpret_cast<void*>(static_cast<uintptr_t>(s)); }
Step step_of(void* p) { return static_cast<Step>(reinterpret_cast<uintptr_t>(p)); }
const char* step_name(Step s) {
    switch (s) {
    case Step::auth: return "AUTH";
    case Step::select: return "SELECT";
    case Step::ping: return "PING";
    }
    return "?";
}

std::string_view text_of(const redisReply& r) {
    return std::string_view(r.str ? r.str : "", r.str ? r.len : 0);
}

// The error hiredis recorded, or what the context knows of its descriptor.
std::string reason_of(const redisAsyncContext* ac) {
    if (ac->errstr && *ac->errstr)
        return ac->errstr;
    return "connection closed";
}

}  // namespace

PubSubRedis::PubSubRedis(const config::Settings& settings, ServerContext& ctx, PubSubHub& hub,
                         IoThread& thread)
    : ctx_(ctx), hub_(hub), thread_(thread), url_([&] {
          std::string error;
          auto url = config::parse_redis_url(settings.pubsub_redis, error);
          if (!url)  // the loader has refused it already; this is a programming error
              throw std::invalid_argument("--pubsub-redis: " + error);
          return *url;
      }()),
      shown_url_(config::display_redis_url(url_)), prefix_(settings.pubsub_redis_prefix),
      max_pending_(static_cast<std::size_t>(settings.pubsub_redis_max_pending)),
      connect_timeout_(config::milliseconds_of(settings.pubsub_redis_connect_timeout)),
      origin_(redis_envelope::random_origin()),
      backoff_(config::milliseconds_of(settings.pubsub_redis_retry_max)),
      random_(std::random_device{}()), retry_timer_(thread.context()),
      connect_timer_(thread.context()), resolve_tick_(thread.context()),
      resolver_(thread.context()) {
    ctx_.metrics->pubsub_redis_connected.store(0, relaxed);
    thread_.post([this] { do_connect(); });
}

PubSubRedis::~PubSubRedis() {
    // The relay thread has stopped: nothing else touches this relay or its contexts.
    close_links();
    if (phase_ == Phase::up)
        ctx_.metrics->pubsub_redis_connected.store(0, relaxed);
}

// --- the hub's side (any thread) -------------------------------------------------------

void PubSubRedis::forward(const asgi::PublicationPtr& p) {
    thread_.post([this, p] { do_forward(p); });
}

void PubSubRedis::topic_active(const std::string& topic) {
    thread_.post([this, topic] { do_subscription(topic, true); });
}

void PubSubRedis::topic_idle(const std::string& topic) {
    thread_.post([this, topic] { do_subscription(topic, false); });
}

// --- connecting (the relay thread from here on) -----------------------------------------

void PubSubRedis::do_connect() {
    phase_ = Phase::connecting;
    uint64_t attempt = ++attempt_;
    log::debug("pubsub: connecting to Redis at {}", shown_url_);
    // Until both connections have answered their PING (--pubsub-redis-connect-timeout).
    connect_timer_.expires_after(connect_timeout_);
    connect_timer_.async_wait([this, attempt](boost::system::error_code ec) {
        if (!ec && attempt == attempt_ && phase_ == Phase::connecting)
            fail(fmt::format("no answer within {} s",
                             std::chrono::duration<double>(connect_timeout_).count()));
    });
    if (url_.unix_socket())
        return open(url_.path);
    // hiredis resolves names with a blocking getaddrinfo: names go through Asio's
    // resolver (its own thread) first, so hiredis only ever sees an address.
    boost::system::error_code ec;
    net::ip::make_address(url_.host, ec);
    if (!ec)
        return open(url_.host);
    resolver_.async_resolve(url_.host, std::to_string(url_.port),
                            [this, attempt](const boost::system::error_code& ec,
                                            const net::ip::tcp::resolver::results_type& r) {
                                on_resolved(attempt, ec, r);
                            });
    if (thread_.is_inline())
        tick_while_resolving(attempt);
}

void PubSubRedis::tick_while_resolving(uint64_t attempt) {
    // 10 ms: a resolver answers within a few; each tick only turns the context.
    resolve_tick_.expires_after(std::chrono::milliseconds(10));
    resolve_tick_.async_wait([this, attempt](boost::system::error_code ec) {
        if (!ec && attempt == attempt_ && phase_ == Phase::connecting)
            tick_while_resolving(attempt);
    });
}

void PubSubRedis::on_resolved(uint64_t attempt, const boost::system::error_code& ec,
                              const net::ip::tcp::resolver::results_type& results) {
    if (attempt != attempt_ || phase_ != Phase::connecting)
        return;  // timed out meanwhile
    resolve_tick_.cancel();
    if (ec || results.empty())
        return fail(fmt::format("cannot resolve {}: {}", url_.host,
                                ec ? ec.message() : std::string("no address")));
    // A name with several addresses (localhost: ::1 and 127.0.0.1, a Redis bound to one
    // of them): each failed attempt moves on to the next.
    auto it = results.begin();
    std::advance(it, static_cast<std::ptrdiff_t>(address_turn_ % results.size()));
    open(it->endpoint().address().to_string());
}

void PubSubRedis::open(const std::string& host) {
    if (open_link(sub_, host))
        open_link(pub_, host);
}

bool PubSubRedis::open_link(Link& link, const std::string& host) {
    redisAsyncContext* ac = url_.unix_socket() ? redisAsyncConnectUnix(host.c_str())
                                               : redisAsyncConnect(host.c_str(), url_.port);
    if (ac == nullptr) {
        fail("out of memory");
        return false;
    }
    if (ac->err) {  // refused at once (a UNIX socket that is not there, ...)
        std::string reason = reason_of(ac);
        redisAsyncFree(ac);
        fail(reason);
        return false;
    }
    link.ac = ac;
    link.ready = false;
    ac->data = &link;
    redis_asio_attach(ac, thread_.context());
    redisAsyncSetConnectCallback(ac, &PubSubRedis::on_connect);
    redisAsyncSetDisconnectCallback(ac, &PubSubRedis::on_disconnect);
    // Queued now, written once connected; the PING's answer says the link works.
    if (!url_.password.empty()) {
        if (url_.user.empty())
            redisAsyncCommand(ac, &PubSubRedis::on_handshake_reply, as_data(Step::auth), "AUTH %b",
                              url_.password.data(), url_.password.size());
        else
            redisAsyncCommand(ac, &PubSubRedis::on_handshake_reply, as_data(Step::auth),
                              "AUTH %b %b", url_.user.data(), url_.user.size(),
                              url_.password.data(), url_.password.size());
    }
    if (url_.db)
        redisAsyncCommand(ac, &PubSubRedis::on_handshake_reply, as_data(Step::select), "SELECT %d",
                          *url_.db);
    redisAsyncCommand(ac, &PubSubRedis::on_handshake_reply, as_data(Step::ping), "PING");
    return true;
}

void PubSubRedis::on_connect(const redisAsyncContext* ac, int status) {
    auto* link = static_cast<Link*>(ac->data);
    if (link == nullptr || status == REDIS_OK)
        return;  // connected: the handshake's replies follow
    // hiredis frees the context after this callback.
    link->ac = nullptr;
    link->owner->fail(reason_of(ac));
}

void PubSubRedis::on_disconnect(const redisAsyncContext* ac, int status) {
    (void)status;
    auto* link = static_cast<Link*>(ac->data);
    if (link == nullptr)
        return;  // closed by this relay
    // hiredis frees the context after this callback.
    link->ac = nullptr;
    link->owner->fail(fmt::format("{} connection lost: {}", link->role, reason_of(ac)));
}

void PubSubRedis::on_handshake_reply(redisAsyncContext* ac, void* r, void* step) {
    auto* link = static_cast<Link*>(ac->data);
    auto* reply = static_cast<redisReply*>(r);
    if (link == nullptr || reply == nullptr)
        return;  // closing
    Step s = step_of(step);
    if (reply->type == REDIS_REPLY_ERROR)
        return link->owner->fail(fmt::format("{}: {}", step_name(s), text_of(*reply)));
    if (s == Step::ping)
        link->owner->on_link_ready(*link);
}

void PubSubRedis::on_link_ready(Link& link) {
    link.ready = true;
    if (sub_.ready && pub_.ready && phase_ == Phase::connecting)
        on_up();
}

void PubSubRedis::on_up() {
    phase_ = Phase::up;
    connect_timer_.cancel();
    backoff_.reset();
    pending_ = 0;
    congestion_reported_ = false;
    ctx_.metrics->pubsub_redis_connected.store(1, relaxed);
    // The hub's topics now, then the changes posted since: an activation already counted
    // here subscribes once more, which Redis treats as the same subscription.
    std::vector<std::string> topics = hub_.active_topics();
    for (const std::string& topic : topics)
        do_subscription(topic, true);
    if (ever_up_) {
        ctx_.metrics->pubsub_redis_reconnects.fetch_add(1, relaxed);
        log::info("pubsub: reconnected to Redis at {}, {} topics resubscribed", shown_url_,
                  topics.size());
    } else {
        log::info("pubsub: connected to Redis at {}, {} topics subscribed", shown_url_,
                  topics.size());
    }
    ever_up_ = true;
    outage_reported_ = false;
}

void PubSubRedis::fail(const std::string& reason) {
    bool was_up = phase_ == Phase::up;
    ++address_turn_;
    close_links();
    connect_timer_.cancel();
    resolve_tick_.cancel();
    resolver_.cancel();
    phase_ = Phase::waiting;
    // Sent before the loss but unanswered: they may or may not have reached Redis;
    // they are not counted lost.
    pending_ = 0;
    if (was_up) {
        ctx_.metrics->pubsub_redis_connected.store(0, relaxed);
        backoff_.reset();
    }
    if (!std::exchange(outage_reported_, true))
        log::warning("pubsub: Redis at {} unreachable: {}; retrying", shown_url_, reason);
    schedule_retry();
}

void PubSubRedis::schedule_retry() {
    uint64_t attempt = attempt_;
    auto delay = backoff_.next(random_);
    log::debug("pubsub: next Redis attempt in {} ms", delay.count());
    retry_timer_.expires_after(delay);
    retry_timer_.async_wait([this, attempt](boost::system::error_code ec) {
        if (!ec && attempt == attempt_ && phase_ == Phase::waiting)
            do_connect();
    });
}

void PubSubRedis::close_links() {
    close_link(sub_);
    close_link(pub_);
}

void PubSubRedis::close_link(Link& link) {
    link.ready = false;
    redisAsyncContext* ac = std::exchange(link.ac, nullptr);
    if (ac == nullptr)
        return;
    // Its callbacks (run now with no reply, or after the callback under way returns)
    // see no link and do nothing.
    ac->data = nullptr;
    redisAsyncFree(ac);
}

// --- publishing and subscribing ---------------------------------------------------------

void PubSubRedis::do_forward(const asgi::PublicationPtr& p) {
    auto& lost = ctx_.metrics->pubsub_redis_lost;
    if (phase_ != Phase::up) {
        lost.fetch_add(1, relaxed);
        return;
    }
    if (pending_ >= max_pending_) {
        lost.fetch_add(1, relaxed);
        if (!std::exchange(congestion_reported_, true))
            log::warning("pubsub: Redis at {} has not answered {} publications "
                         "(--pubsub-redis-max-pending); further ones are lost until it does",
                         shown_url_, pending_);
        return;
    }
    std::string channel = prefix_ + p->topic;
    std::string payload = redis_envelope::encode(*p, origin_);
    const char* argv[] = {"PUBLISH", channel.data(), payload.data()};
    const std::size_t lengths[] = {7, channel.size(), payload.size()};
    if (redisAsyncCommandArgv(pub_.ac, &PubSubRedis::on_publish_reply, nullptr, 3, argv, lengths) !=
        REDIS_OK) {
        lost.fetch_add(1, relaxed);
        return;
    }
    ++pending_;
}

void PubSubRedis::on_publish_reply(redisAsyncContext* ac, void* reply, void* unused) {
    (void)unused;
    if (auto* link = static_cast<Link*>(ac->data))
        link->owner->on_published(static_cast<const redisReply*>(reply));
}

void PubSubRedis::on_published(const redisReply* reply) {
    if (reply == nullptr)
        return;
    if (pending_ > 0)
        --pending_;
    if (pending_ == 0)
        congestion_reported_ = false;
    if (reply->type == REDIS_REPLY_ERROR) {  // refused (OOM, ...): it went nowhere
        ctx_.metrics->pubsub_redis_lost.fetch_add(1, relaxed);
        log::debug("pubsub: Redis refused a PUBLISH: {}", text_of(*reply));
    }
}

void PubSubRedis::do_subscription(const std::string& topic, bool subscribe) {
    if (phase_ != Phase::up)
        return;  // on_up subscribes to what the hub has then
    std::string channel = prefix_ + topic;
    const char* argv[] = {subscribe ? "SUBSCRIBE" : "UNSUBSCRIBE", channel.data()};
    const std::size_t lengths[] = {std::char_traits<char>::length(argv[0]), channel.size()};
    // Every message, and the (un)subscribe confirmations, come to the callback given
    // with SUBSCRIBE; hiredis takes none with UNSUBSCRIBE.
    redisAsyncCommandArgv(sub_.ac, subscribe ? &PubSubRedis::on_subscriber_reply : nullptr, nullptr,
                          2, argv, lengths);
}

void PubSubRedis::on_subscriber_reply(redisAsyncContext* ac, void* r, void* unused) {
    (void)unused;
    auto* link = static_cast<Link*>(ac->data);
    auto* reply = static_cast<redisReply*>(r);
    if (link == nullptr || reply == nullptr)
        return;
    link->owner->on_message(*reply);
}

void PubSubRedis::on_message(const redisReply& reply) {
    // ["message", channel, payload]; "subscribe"/"unsubscribe" confirmations pass by.
    if (reply.type != REDIS_REPLY_ARRAY || reply.elements != 3)
        return;
    const redisReply& kind = *reply.element[0];
    const redisReply& channel = *reply.element[1];
    const redisReply& payload = *reply.element[2];
    if (kind.type != REDIS_REPLY_STRING || text_of(kind) != "message" ||
        channel.type != REDIS_REPLY_STRING || payload.type != REDIS_REPLY_STRING)
        return;
    std::string_view name = text_of(channel);
    if (!name.starts_with(prefix_))
        return;
    redis_envelope::Decoded d = redis_envelope::decode(text_of(payload));
    using Kind = redis_envelope::Decoded::Kind;
    if (d.kind == Kind::envelope && d.origin == origin_)
        return;  // this process's own: the hub delivered it here when it was published
    if (d.kind == Kind::unknown) {
        if (!std::exchange(unknown_reported_, true))
            log::warning("pubsub: a message on Redis channel {} has a narwhal envelope of a "
                         "version this server does not read; such messages are dropped",
                         log::json_string(name));
        return;
    }
    auto p = std::make_shared<asgi::Publication>();
    p->topic = std::string(name.substr(prefix_.size()));
    p->data = std::string(d.data);
    p->text = d.text;
    hub_.deliver(p);
}

}  // namespace narwhal::server
