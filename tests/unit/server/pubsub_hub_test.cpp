#include "server/pubsub_hub.hpp"

#include "server/io_thread.hpp"
#include "server/server_context.hpp"

#include "catch.hpp"

#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using narwhal::server::IoThread;
using narwhal::server::PubSubHub;
using narwhal::server::PubSubRelay;
using narwhal::server::PubSubSubscriber;
using narwhal::server::ServerContext;
namespace asgi = narwhal::asgi;

namespace {

// Runs `f` on `io`'s thread and waits for it.
template <class F> void on(IoThread& io, F f) {
    std::promise<void> done;
    io.post([&] {
        f();
        done.set_value();
    });
    done.get_future().wait();
}

// Records what it is given (on its I/O thread; read after a round trip through it).
struct Recorder final : PubSubSubscriber {
    void on_publication(const asgi::PublicationPtr& p) override {
        got.push_back(p->data);
        if (on_each)
            on_each();
    }
    std::vector<std::string> got;
    std::function<void()> on_each;
};

struct Relay final : PubSubRelay {
    void forward(const asgi::PublicationPtr& p) override {
        std::lock_guard lock(mu);
        forwarded.push_back(p->data);
    }
    void topic_active(const std::string& t) override {
        std::lock_guard lock(mu);
        events.push_back("+" + t);
    }
    void topic_idle(const std::string& t) override {
        std::lock_guard lock(mu);
        events.push_back("-" + t);
    }
    std::mutex mu;
    std::vector<std::string> forwarded;
    std::vector<std::string> events;
};

asgi::PublicationPtr pub(std::string topic, std::string data) {
    return std::make_shared<const asgi::Publication>(
        asgi::Publication{std::move(topic), std::move(data), true});
}

struct Fixture {
    Fixture() {
        a.start();
        b.start();
    }
    ~Fixture() {
        a.stop();
        b.stop();
        a.join();
        b.join();
    }
    ServerContext ctx;
    IoThread a;
    IoThread b;
    PubSubHub hub{ctx, {&a, &b}};
};

}  // namespace

TEST_CASE("pubsub hub: every subscriber on every thread gets each publication, in order") {
    Fixture f;
    Relay relay;
    f.hub.add_relay(&relay);
    Recorder ra, rb, other;
    on(f.a, [&] { CHECK(f.hub.subscribe(f.a, "t", &ra)); });
    on(f.b, [&] { CHECK(f.hub.subscribe(f.b, "t", &rb)); });
    on(f.b, [&] { CHECK(f.hub.subscribe(f.b, "u", &other)); });
    on(f.a, [&] { CHECK_FALSE(f.hub.subscribe(f.a, "t", &ra)); });  // once per topic
    std::vector<std::string> want;
    for (int i = 0; i < 1000; ++i) {
        want.push_back(std::to_string(i));
        f.hub.publish(pub("t", want.back()));
    }
    on(f.a, [] {});  // the posts before this one have run
    on(f.b, [] {});
    CHECK(ra.got == want);
    CHECK(rb.got == want);
    CHECK(other.got.empty());
    CHECK(relay.forwarded.size() == 1000);
    CHECK(f.ctx.metrics->pubsub_published.load() == 1000);
    CHECK(f.ctx.metrics->pubsub_delivered.load() == 2000);
    CHECK(f.ctx.metrics->pubsub_subscriptions.load() == 3);
    // What a relay received goes to this process's subscribers only, not back out.
    f.hub.deliver(pub("u", "from afar"));
    on(f.b, [] {});
    CHECK(other.got == std::vector<std::string>{"from afar"});
    CHECK(relay.forwarded.size() == 1000);
    CHECK(f.ctx.metrics->pubsub_received.load() == 1);
}

TEST_CASE("pubsub hub: relays hear a topic's first and last subscriber of the process") {
    Fixture f;
    Relay relay;
    f.hub.add_relay(&relay);
    Recorder r1, r2, r3;
    on(f.a, [&] { f.hub.subscribe(f.a, "t", &r1); });
    on(f.a, [&] { f.hub.subscribe(f.a, "t", &r2); });
    on(f.b, [&] { f.hub.subscribe(f.b, "t", &r3); });
    CHECK(f.hub.active_topics() == std::vector<std::string>{"t"});
    on(f.a, [&] { CHECK(f.hub.unsubscribe(f.a, "t", &r1)); });
    on(f.a, [&] { CHECK_FALSE(f.hub.unsubscribe(f.a, "t", &r1)); });
    on(f.a, [&] { f.hub.unsubscribe(f.a, "t", &r2); });
    CHECK(relay.events == std::vector<std::string>{"+t"});  // b still has one
    on(f.b, [&] { f.hub.unsubscribe(f.b, "t", &r3); });
    CHECK(relay.events == std::vector<std::string>{"+t", "-t"});
    CHECK(f.hub.active_topics().empty());
    CHECK(f.ctx.metrics->pubsub_subscriptions.load() == 0);
    // Nobody listens: nothing is posted, nothing delivered.
    f.hub.publish(pub("t", "lost"));
    on(f.a, [] {});
    CHECK(r1.got.empty());
    CHECK(f.ctx.metrics->pubsub_delivered.load() == 0);
}

TEST_CASE("pubsub hub: a subscriber may leave while a delivery walks its topic") {
    Fixture f;
    Recorder first, second, third;
    // `first` unsubscribes itself and `second` during its delivery (a socket that closes
    // from inside on_publication, and one closed by it); `third` still gets the message.
    first.on_each = [&] {
        f.hub.unsubscribe(f.a, "t", &first);
        f.hub.unsubscribe(f.a, "t", &second);
    };
    on(f.a, [&] {
        f.hub.subscribe(f.a, "t", &first);
        f.hub.subscribe(f.a, "t", &second);
        f.hub.subscribe(f.a, "t", &third);
    });
    f.hub.publish(pub("t", "one"));
    f.hub.publish(pub("t", "two"));
    on(f.a, [] {});
    CHECK(first.got == std::vector<std::string>{"one"});
    CHECK(second.got.empty());
    CHECK(third.got == std::vector<std::string>{"one", "two"});
    on(f.a, [&] { f.hub.unsubscribe(f.a, "t", &third); });
    CHECK(f.hub.active_topics().empty());
}
