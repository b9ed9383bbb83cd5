#include "server/redis_asio.hpp"

#include <boost/asio/posix/stream_descriptor.hpp>

#include <hiredis/async.h>

#include <memory>

namespace narwhal::server {

namespace net = boost::asio;

namespace {

class RedisWatcher : public std::enable_shared_from_this<RedisWatcher> {
public:
    RedisWatcher(redisAsyncContext* ac, net::io_context& io) : ac_(ac), fd_(io, ac->c.fd) {}

    static void attach(redisAsyncContext* ac, net::io_context& io) {
        auto w = std::make_shared<RedisWatcher>(ac, io);
        // The context holds the adapter until cleanup; each pending wait holds it too,
        // so a wait that completes after cleanup finds it alive (and finds ac_ null).
        w->self_ = w;
        ac->ev.data = w.get();
        ac->ev.addRead = [](void* p) { of(p).want(read, true); };
        ac->ev.delRead = [](void* p) { of(p).want(read, false); };
        ac->ev.addWrite = [](void* p) { of(p).want(write, true); };
        ac->ev.delWrite = [](void* p) { of(p).want(write, false); };
        ac->ev.cleanup = [](void* p) { of(p).cleanup(); };
    }

private:
    enum Direction { read = 0, write = 1 };

    static RedisWatcher& of(void* p) { return *static_cast<RedisWatcher*>(p); }

    // hiredis's hooks mean "from now on, until told otherwise": a wanted direction is
    // waited for again after each event while it stays wanted.
    void want(Direction d, bool on) {
        wanted_[d] = on;
        if (on)
            arm(d);
    }

    void arm(Direction d) {
        if (!ac_ || !wanted_[d] || waiting_[d])
            return;
        waiting_[d] = true;
        auto kind = d == read ? net::posix::stream_descriptor::wait_read
                              : net::posix::stream_descriptor::wait_write;
        fd_.async_wait(kind, [self = shared_from_this(), d](boost::system::error_code ec) {
            self->on_ready(d, ec);
        });
    }

    void on_ready(Direction d, boost::system::error_code ec) {
        waiting_[d] = false;
        if (ec || !ac_ || !wanted_[d])
            return;  // released (cleanup), or no longer wanted
        // May free the context: cleanup() then nulls ac_ (this object is kept alive by
        // the handler's reference).
        if (d == read)
            redisAsyncHandleRead(ac_);
        else
            redisAsyncHandleWrite(ac_);
        arm(d);
    }

    void cleanup() {
        // hiredis runs the cleanup hook on disconnect and again on free (versions differ
        // in whether they clear it between): after the first, no hook reaches this
        // adapter again.
        ac_->ev = {};
        ac_ = nullptr;
        // Cancels the waits (their handlers see operation_aborted) without closing the
        // descriptor, which hiredis closes itself.
        fd_.release();
        auto last = std::move(self_);  // may be the last reference: dropped on return
    }

    redisAsyncContext* ac_;
    net::posix::stream_descriptor fd_;
    bool wanted_[2] = {false, false};
    bool waiting_[2] = {false, false};
    std::shared_ptr<RedisWatcher> self_;
};

}  // namespace

bool redis_asio_attach(redisAsyncContext* ac, net::io_context& io) {
    if (ac->ev.data != nullptr)
        return false;
    RedisWatcher::attach(ac, io);
    return true;
}

}  // namespace narwhal::server
