// A link that carries publications beyond this process: to the other workers of this
// server (server/pubsub_bus.*) or to other servers through Redis (server/pubsub_redis.*).
// The hub (server/pubsub_hub.hpp) hands each link what this process publishes and tells
// it which topics this process has subscribers for; what a link receives it gives back
// to PubSubHub::deliver, which fans it out here only.
#pragma once

#include "asgi/pubsub.hpp"

#include <string>

namespace narwhal::server {

class PubSubRelay {
public:
    virtual ~PubSubRelay() = default;
    // Any thread: a publication made in this process. Must not block: a link that
    // cannot take it now queues it (bounded) or counts it lost.
    virtual void forward(const asgi::PublicationPtr& p) = 0;
    // Any thread, called in order under the hub's lock (so an active/idle pair is never
    // seen reversed): this process has its first subscriber of `topic`, or no more. Must
    // not block and must not call back into the hub.
    virtual void topic_active(const std::string& topic) { (void)topic; }
    virtual void topic_idle(const std::string& topic) { (void)topic; }
};

}  // namespace narwhal::server
