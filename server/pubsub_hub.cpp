#include "server/pubsub_hub.hpp"

#include "server/io_thread.hpp"
#include "server/server_context.hpp"

#include <algorithm>
#include <cassert>

namespace narwhal::server {

namespace {
constexpr auto relaxed = std::memory_order_relaxed;
}

PubSubHub::PubSubHub(ServerContext& ctx, std::vector<IoThread*> threads)
    : ctx_(ctx), threads_(std::move(threads)) {
    for (std::size_t i = 0; i < threads_.size(); ++i)
        locals_.push_back(std::make_unique<Local>());
}

PubSubHub::~PubSubHub() = default;

std::size_t PubSubHub::index_of(const IoThread& io) const {
    for (std::size_t i = 0; i < threads_.size(); ++i)
        if (threads_[i] == &io)
            return i;
    assert(false && "an I/O thread the hub was not given");
    return 0;
}

void PubSubHub::publish(const asgi::PublicationPtr& p) {
    ctx_.metrics->pubsub_published.fetch_add(1, relaxed);
    fan_out(p);
    for (PubSubRelay* relay : relays_)
        relay->forward(p);
}

void PubSubHub::deliver(const asgi::PublicationPtr& p) {
    ctx_.metrics->pubsub_received.fetch_add(1, relaxed);
    fan_out(p);
}

void PubSubHub::fan_out(const asgi::PublicationPtr& p) {
    // Copied out so no post runs under the lock; a topic has at most one entry per thread.
    uint16_t targets[64];
    std::size_t n = 0;
    {
        std::lock_guard lock(mu_);
        auto it = topics_.find(p->topic);
        if (it == topics_.end())
            return;  // nobody here listens: a publication costs one lookup
        for (uint16_t t : it->second)
            if (n < std::size(targets))
                targets[n++] = t;
    }
    for (std::size_t i = 0; i < n; ++i) {
        std::size_t t = targets[i];
        threads_[t]->post([this, t, p] { deliver_on(t, p); });
    }
}

void PubSubHub::deliver_on(std::size_t thread, const asgi::PublicationPtr& p) {
    Local& local = *locals_[thread];
    auto it = local.topics.find(p->topic);
    if (it == local.topics.end())
        return;  // the last subscriber left after the post
    ++local.walking;
    // By index: a subscriber that leaves during the walk only nulls its entry.
    auto& subs = it->second;
    std::size_t delivered = 0;
    for (std::size_t i = 0; i < subs.size(); ++i) {
        if (PubSubSubscriber* s = subs[i]) {
            s->on_publication(p);
            ++delivered;
        }
    }
    ctx_.metrics->pubsub_delivered.fetch_add(delivered, relaxed);
    if (--local.walking == 0 && std::exchange(local.holes, false)) {
        for (auto t = local.topics.begin(); t != local.topics.end();) {
            std::erase(t->second, nullptr);
            if (t->second.empty()) {
                {
                    std::lock_guard lock(mu_);
                    thread_left(t->first, thread);
                }
                t = local.topics.erase(t);
            } else {
                ++t;
            }
        }
    }
}

bool PubSubHub::subscribe(IoThread& io, const std::string& topic, PubSubSubscriber* s) {
    std::size_t t = index_of(io);
    Local& local = *locals_[t];
    auto& subs = local.topics[topic];
    if (std::find(subs.begin(), subs.end(), s) != subs.end())
        return false;
    subs.push_back(s);
    ctx_.metrics->pubsub_subscriptions.fetch_add(1, relaxed);
    if (subs.size() == 1) {
        std::lock_guard lock(mu_);
        thread_joined(topic, t);
    }
    return true;
}

bool PubSubHub::unsubscribe(IoThread& io, const std::string& topic, PubSubSubscriber* s) {
    std::size_t t = index_of(io);
    Local& local = *locals_[t];
    auto it = local.topics.find(topic);
    if (it == local.topics.end())
        return false;
    auto& subs = it->second;
    auto pos = std::find(subs.begin(), subs.end(), s);
    if (pos == subs.end())
        return false;
    ctx_.metrics->pubsub_subscriptions.fetch_sub(1, relaxed);
    if (local.walking > 0) {
        *pos = nullptr;  // compacted when the walk ends
        local.holes = true;
        return true;
    }
    // Order does not matter within a topic's list: swap-and-pop.
    *pos = subs.back();
    subs.pop_back();
    if (subs.empty()) {
        local.topics.erase(it);
        std::lock_guard lock(mu_);
        thread_left(topic, t);
    }
    return true;
}

void PubSubHub::thread_joined(const std::string& topic, std::size_t t) {
    auto [it, first] = topics_.try_emplace(topic);
    it->second.push_back(static_cast<uint16_t>(t));
    if (first)
        for (PubSubRelay* relay : relays_)
            relay->topic_active(topic);
}

void PubSubHub::thread_left(const std::string& topic, std::size_t t) {
    auto it = topics_.find(topic);
    if (it == topics_.end())
        return;
    std::erase(it->second, static_cast<uint16_t>(t));
    if (!it->second.empty())
        return;
    topics_.erase(it);
    for (PubSubRelay* relay : relays_)
        relay->topic_idle(topic);
}

std::vector<std::string> PubSubHub::active_topics() const {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    out.reserve(topics_.size());
    for (const auto& [topic, threads] : topics_)
        out.push_back(topic);
    return out;
}

}  // namespace narwhal::server
