#include "server/pubsub_bus.hpp"

#include "server/io_thread.hpp"
#include "server/pubsub_bus_directory.hpp"
#include "server/pubsub_hub.hpp"
#include "server/server_context.hpp"

#include "catch.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include <chrono>
#include <fcntl.h>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace asgi = narwhal::asgi;
using narwhal::server::IoThread;
using narwhal::server::PubSubBus;
using narwhal::server::PubSubBusDirectory;
using narwhal::server::PubSubHub;
using narwhal::server::PubSubSubscriber;
using narwhal::server::ServerContext;

namespace {

using namespace std::chrono_literals;

// Waits for `done` with a generous limit: true when it held.
bool eventually(const std::function<bool()>& done, std::chrono::seconds limit = 20s) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() > until)
            return false;
        std::this_thread::sleep_for(5ms);
    }
    return true;
}

class Collector : public PubSubSubscriber {
public:
    void on_publication(const asgi::PublicationPtr& p) override {
        std::lock_guard lock(mu_);
        got_.push_back(p);
    }
    std::vector<asgi::PublicationPtr> got() const {
        std::lock_guard lock(mu_);
        return got_;
    }
    std::size_t count() const {
        std::lock_guard lock(mu_);
        return got_.size();
    }

private:
    mutable std::mutex mu_;
    std::vector<asgi::PublicationPtr> got_;
};

// Runs `f` on `thread` and waits for it.
template <class F> auto on(IoThread& thread, F f) {
    std::promise<decltype(f())> done;
    auto result = done.get_future();
    thread.post([&] {
        if constexpr (std::is_void_v<decltype(f())>) {
            f();
            done.set_value();
        } else {
            done.set_value(f());
        }
    });
    return result.get();
}

// One worker as the bus sees it: an I/O thread, a hub with a subscriber of "T", a bus.
struct Worker {
    Worker(const std::string& dir, pid_t name, std::size_t max_queue = 1024)
        : hub(ctx, {&thread}), bus(dir, hub, thread, ctx, max_queue, name) {
        hub.add_relay(&bus);
        thread.start();
        on(thread, [&] { hub.subscribe(thread, "T", &sub); });
        bus.start();
    }
    ~Worker() {
        on(thread, [&] { hub.unsubscribe(thread, "T", &sub); });
        thread.stop();
        thread.join();
    }
    std::size_t peers() {
        return on(thread, [&] { return bus.peer_count(); });
    }
    void publish(const std::string& data, bool text = true) {
        hub.publish(std::make_shared<asgi::Publication>(asgi::Publication{"T", data, text}));
    }
    uint64_t lost() const { return ctx.metrics->pubsub_bus_lost.load(); }
    uint64_t received() const { return ctx.metrics->pubsub_received.load(); }

    ServerContext ctx;
    IoThread thread;
    Collector sub;
    PubSubHub hub;
    PubSubBus bus;
};

// Publishes from `from` until `to` has received one (the bus connects in the
// background), then returns how many `from` published.
int publish_until_received(Worker& from, Worker& to) {
    int n = 0;
    eventually([&] {
        from.publish("hello " + std::to_string(n++));
        std::this_thread::sleep_for(10ms);
        return to.sub.count() > 0;
    });
    return n;
}

}  // namespace

TEST_CASE("pubsub bus: publications reach the other workers whole and in order", "[pubsub_bus]") {
    PubSubBusDirectory dir;
    // Room for the whole burst below: it is published faster than a socket drains.
    const int n = 2000;
    Worker a(dir.path(), 900001, n + 10);
    Worker b(dir.path(), 900002, n + 10);
    REQUIRE(eventually([&] { return a.peers() == 1 && b.peers() == 1; }));
    publish_until_received(a, b);
    publish_until_received(b, a);

    // Now both are connected: every publication goes across, in order, text and bytes,
    // small and large.
    std::size_t b_before = b.sub.count();
    std::size_t a_before = a.sub.count();
    for (int i = 0; i < n; ++i)
        a.publish(std::to_string(i), i % 2 == 0);
    std::string big(1 << 20, 'x');
    a.publish(big, false);
    b.publish("from b");
    // b's own publication reaches its subscriber too, somewhere among a's.
    REQUIRE(eventually([&] { return b.sub.count() == b_before + n + 2; }));
    auto got = b.sub.got();
    std::erase_if(got, [](const asgi::PublicationPtr& p) { return p->data == "from b"; });
    REQUIRE(got.size() == b_before + n + 1);
    for (int i = 0; i < n; ++i) {
        const auto& p = got[b_before + i];
        REQUIRE(p->data == std::to_string(i));
        CHECK(p->text == (i % 2 == 0));
        CHECK(p->topic == "T");
    }
    CHECK(got.back()->data == big);
    CHECK_FALSE(got.back()->text);
    // The publisher's own subscriber got them from its hub, not from the bus.
    REQUIRE(eventually([&] { return a.sub.count() == a_before + n + 1 + 1; }));
    CHECK(a.lost() == 0);
    CHECK(b.received() >= static_cast<uint64_t>(n + 1));
}

TEST_CASE("pubsub bus: a worker that starts later is found; one that leaves is dropped",
          "[pubsub_bus]") {
    PubSubBusDirectory dir;
    Worker a(dir.path(), 900011);
    {
        Worker c(dir.path(), 900012);
        publish_until_received(a, c);
        publish_until_received(c, a);
        CHECK(a.peers() == 1);
    }
    // c removed its name: a drops it rather than trying it again.
    REQUIRE(eventually([&] { return a.peers() == 0; }));
    // The next worker, in the same place.
    Worker d(dir.path(), 900013);
    publish_until_received(a, d);
    publish_until_received(d, a);
}

TEST_CASE("pubsub bus: a peer that is not up counts its publications lost", "[pubsub_bus]") {
    PubSubBusDirectory dir;
    // A name with nothing listening (a worker killed and not reaped yet): refused.
    std::string stale = PubSubBusDirectory::socket_path(dir.path(), 900021);
    ::close(::open(stale.c_str(), O_CREAT | O_WRONLY, 0600));
    Worker a(dir.path(), 900022);
    REQUIRE(eventually([&] { return a.peers() == 1; }));
    for (int i = 0; i < 10; ++i)
        a.publish("x");
    REQUIRE(eventually([&] { return a.lost() == 10; }));
    CHECK(a.sub.count() == 10);  // its own subscribers lose nothing
}

TEST_CASE("pubsub bus: a peer that does not read costs at most its queue, never a block",
          "[pubsub_bus]") {
    namespace net = boost::asio;
    using local = net::local::stream_protocol;
    PubSubBusDirectory dir;
    net::io_context ioc;
    std::string path = PubSubBusDirectory::socket_path(dir.path(), 900031);
    local::acceptor acceptor(ioc, local::endpoint(path));
    const std::size_t max_queue = 4;
    Worker a(dir.path(), 900032, max_queue);
    local::socket stuck(ioc);
    acceptor.accept(stuck);  // connected, and never read
    std::string chunk(64 * 1024, 'y');
    const uint64_t n = 1000;
    for (uint64_t i = 0; i < n; ++i)
        a.publish(chunk, false);
    // All but what the socket's buffers and the queue hold (a few 64 KiB frames) lost.
    REQUIRE(eventually([&] { return a.lost() >= n - 100; }));
    CHECK(eventually([&] { return a.sub.count() == n; }));
}
