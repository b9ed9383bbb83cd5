#include "server/pubsub_bus.hpp"

#include "asgi/log.hpp"
#include "server/io_thread.hpp"
#include "server/pubsub_bus_directory.hpp"
#include "server/pubsub_frame.hpp"
#include "server/pubsub_hub.hpp"
#include "server/server_context.hpp"

#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <dirent.h>
#include <span>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

namespace narwhal::server {

namespace net = boost::asio;
using local = net::local::stream_protocol;
using error_code = boost::system::error_code;

namespace {

constexpr auto relaxed = std::memory_order_relaxed;
// Frames gathered into one write: enough to batch a burst, few enough that the iovec
// array stays small (three buffers per frame).
constexpr std::size_t write_batch = 64;
// What one read asks for: a burst of small publications in one call.
constexpr std::size_t read_chunk = 64 * 1024;

}  // namespace

// --- an outgoing link: this worker's publications to one other worker ------------------

class PubSubBus::Peer : public std::enable_shared_from_this<Peer> {
public:
    Peer(PubSubBus& bus, pid_t pid)
        : bus_(bus), pid_(pid), socket_(bus.thread_.context()), timer_(bus.thread_.context()) {}

    pid_t pid() const { return pid_; }
    // Connected, with room in its queue.
    bool can_take() const {
        return phase_ == Phase::connected && queue_.size() + writing_.size() < bus_.max_queue_;
    }
    void push(const asgi::PublicationPtr& p, const char (&head)[pubsub_frame_header]) {
        Out& out = queue_.emplace_back();
        out.p = p;
        std::memcpy(out.head, head, sizeof head);
        if (writing_.empty())
            do_write();
    }

    void do_connect() {
        phase_ = Phase::connecting;
        ++conn_;
        socket_ = Socket(bus_.thread_.context());
        socket_.async_connect(local::endpoint(PubSubBusDirectory::socket_path(bus_.dir_, pid_)),
                              [self = shared_from_this(), conn = conn_](const error_code& ec) {
                                  self->on_connect(ec, conn);
                              });
    }

    // The peer is gone for good (its name left the directory).
    void close() {
        phase_ = Phase::closed;
        drop_connection();
        timer_.cancel();
    }

private:
    // The socket is closed and what waits in its queue counted lost; handlers of that
    // connection still to come are stale (conn_ moves on).
    void drop_connection() {
        ++conn_;
        bus_.lose(queue_.size());
        queue_.clear();
        error_code ignored;
        socket_.close(ignored);
    }

    enum class Phase { connecting, connected, waiting, closed };
    struct Out {
        asgi::PublicationPtr p;
        char head[pubsub_frame_header];
    };

    void on_connect(const error_code& ec, uint64_t conn) {
        if (conn != conn_ || phase_ != Phase::connecting)
            return;
        if (ec == boost::system::errc::no_such_file_or_directory) {
            // Its name went between the directory's event and the connect: it is gone.
            bus_.drop_peer(pid_);  // destroys nothing yet: this handler holds `this`
            return;
        }
        if (ec)
            return wait(ec, "cannot connect");
        phase_ = Phase::connected;
        backoff_ = retry_first;
        log::debug("Worker bus: connected to worker [{}]", pid_);
        do_read();
    }

    // The peer never writes on this connection: a read completes when it closes.
    void do_read() {
        socket_.async_read_some(
            net::buffer(read_byte_, 1),
            [self = shared_from_this(), conn = conn_](const error_code& ec, std::size_t) {
                self->on_read(ec, conn);
            });
    }
    void on_read(const error_code& ec, uint64_t conn) {
        if (conn != conn_ || phase_ != Phase::connected)
            return;
        wait(ec ? ec : net::error::make_error_code(net::error::eof), "disconnected");
    }

    void do_write() {
        std::size_t n = std::min(queue_.size(), write_batch);
        if (n == 0)
            return;
        for (std::size_t i = 0; i < n; ++i) {
            writing_.push_back(std::move(queue_.front()));
            queue_.pop_front();
        }
        // Only once writing_ is complete: a push_back may move its elements (the headers).
        buffers_.clear();
        for (const Out& out : writing_) {
            buffers_.emplace_back(out.head, sizeof out.head);
            if (!out.p->topic.empty())
                buffers_.emplace_back(out.p->topic.data(), out.p->topic.size());
            if (!out.p->data.empty())
                buffers_.emplace_back(out.p->data.data(), out.p->data.size());
        }
        net::async_write(socket_, buffers_,
                         [self = shared_from_this(), conn = conn_](
                             const error_code& ec, std::size_t) { self->on_write(ec, conn); });
    }
    void on_write(const error_code& ec, uint64_t conn) {
        // A write cut short by a failure (or a close) may have reached the peer or not:
        // counted lost either way.
        bool current = conn == conn_ && phase_ == Phase::connected;
        if (ec || !current)
            bus_.lose(writing_.size());
        writing_.clear();
        if (!current)
            return;
        if (ec)
            return wait(ec, "disconnected");
        do_write();
    }

    // The connection failed or ended: what is queued is lost; try again after the
    // back-off. A peer that is really gone leaves the directory, which drops it.
    void wait(const error_code& ec, const char* what) {
        if (phase_ == Phase::connected)
            log::debug("Worker bus: worker [{}] {} ({})", pid_, what, ec.message());
        phase_ = Phase::waiting;
        drop_connection();
        timer_.expires_after(backoff_);
        backoff_ = std::min(backoff_ * 2, retry_max);
        timer_.async_wait([self = shared_from_this(), conn = conn_](const error_code& e) {
            if (!e && conn == self->conn_ && self->phase_ == Phase::waiting)
                self->do_connect();
        });
    }

    PubSubBus& bus_;
    pid_t pid_;
    Socket socket_;
    net::steady_timer timer_;
    Phase phase_ = Phase::waiting;
    uint64_t conn_ = 0;  // which connection a handler belongs to: stale ones do nothing
    std::chrono::milliseconds backoff_ = retry_first;
    std::deque<Out> queue_;
    std::vector<Out> writing_;  // the frames of the write in progress
    std::vector<net::const_buffer> buffers_;
    char read_byte_[1] = {};
};

// --- an incoming link: another worker's publications to this one ----------------------

class PubSubBus::Inbound : public std::enable_shared_from_this<Inbound> {
public:
    Inbound(PubSubBus& bus, Socket socket) : bus_(bus), socket_(std::move(socket)) {}

    void start() {
        ucred cred{};
        socklen_t len = sizeof cred;
        if (::getsockopt(socket_.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
            cred.uid != ::geteuid()) {
            log::warning("Worker bus: refused a connection from uid {} (pid {})", cred.uid,
                         cred.pid);
            return;  // the socket closes with this object
        }
        pid_ = cred.pid;
        do_read();
    }

private:
    void do_read() {
        std::span<char> room = reader_.prepare(read_chunk);
        socket_.async_read_some(net::buffer(room.data(), room.size()),
                                [self = shared_from_this()](const error_code& ec, std::size_t n) {
                                    self->on_read(ec, n);
                                });
    }
    void on_read(const error_code& ec, std::size_t n) {
        if (ec) {
            if (ec != net::error::operation_aborted)
                log::debug("Worker bus: worker [{}] closed its connection ({})", pid_,
                           ec.message());
            return;
        }
        reader_.commit(n);
        try {
            while (asgi::PublicationPtr p = reader_.next())
                bus_.hub_.deliver(p);
        } catch (const PubSubFrameError& e) {
            log::warning("Worker bus: {} from worker [{}]: connection closed", e.what(), pid_);
            return;
        }
        do_read();
    }

    PubSubBus& bus_;
    Socket socket_;
    pid_t pid_ = 0;
    PubSubFrameReader reader_;
};

// --- the bus --------------------------------------------------------------------------

PubSubBus::PubSubBus(std::string dir, PubSubHub& hub, IoThread& thread, ServerContext& ctx,
                     std::size_t max_queue, pid_t self)
    : dir_(std::move(dir)), hub_(hub), thread_(thread), ctx_(ctx),
      max_queue_(std::max<std::size_t>(max_queue, 1)), self_(self > 0 ? self : ::getpid()),
      master_(::getppid()), path_(PubSubBusDirectory::socket_path(dir_, self_)) {}

PubSubBus::~PubSubBus() {
    // The peers and inbound links still referenced by queued handlers go with the
    // thread's context; only this worker's name is removed here.
    if (acceptor_)
        ::unlink(path_.c_str());
    // A master killed with SIGKILL could not remove the directory: the workers it leaves
    // (stopped by their parent-death signal) do, the last one out succeeding. Never while
    // the master lives: it may be about to start a worker in it.
    if (::getppid() != master_)
        ::rmdir(dir_.c_str());
}

void PubSubBus::start() {
    thread_.post([this] { do_start(); });
}

void PubSubBus::do_start() {
    // Watch first, then read the directory: a worker that starts in between is seen by
    // one or both (add_peer ignores a second sighting).
    watch();
    listen();
    scan();
}

// Bound and listening under a temporary name, then renamed: the name appears (and the
// others connect) only once connections are taken.
void PubSubBus::listen() {
    std::string temporary = path_ + ".new";
    ::unlink(temporary.c_str());
    error_code ec;
    acceptor_.emplace(thread_.context());
    accept_retry_.emplace(thread_.context());
    acceptor_->open(local(), ec);
    if (!ec)
        acceptor_->bind(local::endpoint(temporary), ec);
    if (!ec)
        acceptor_->listen(net::socket_base::max_listen_connections, ec);
    if (!ec && ::rename(temporary.c_str(), path_.c_str()) != 0)
        ec.assign(errno, boost::system::generic_category());
    if (ec) {
        log::error("Worker bus: cannot listen on {}: {}; publications of the other workers "
                   "will not reach this one",
                   path_, ec.message());
        ::unlink(temporary.c_str());
        acceptor_.reset();
        return;
    }
    do_accept();
}

void PubSubBus::do_accept() {
    acceptor_->async_accept(
        [this](const error_code& ec, Socket socket) { on_accept(ec, std::move(socket)); });
}

void PubSubBus::on_accept(const error_code& ec, Socket socket) {
    if (ec == net::error::operation_aborted)
        return;
    if (!ec) {
        std::make_shared<Inbound>(*this, std::move(socket))->start();
        return do_accept();
    }
    // Out of descriptors (EMFILE) and the like: the connection waits in the backlog, and
    // accepting again at once would spin; the peer's own retry covers a longer outage.
    log::warning("Worker bus: accept: {}", ec.message());
    accept_retry_->expires_after(retry_first);
    accept_retry_->async_wait([this](const error_code& e) {
        if (!e)
            do_accept();
    });
}

void PubSubBus::watch() {
    int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0 || ::inotify_add_watch(fd, dir_.c_str(), IN_MOVED_TO | IN_DELETE) < 0) {
        log::warning("Worker bus: cannot watch {}: {}; workers started later will not get "
                     "this worker's publications",
                     dir_, std::strerror(errno));
        if (fd >= 0)
            ::close(fd);
        return;
    }
    watch_.emplace(thread_.context(), fd);
    do_watch();
}

void PubSubBus::do_watch() {
    watch_->async_read_some(net::buffer(watch_buf_),
                            [this](const error_code& ec, std::size_t n) { on_watch(ec, n); });
}

void PubSubBus::on_watch(const error_code& ec, std::size_t n) {
    if (ec) {
        if (ec != net::error::operation_aborted)
            log::warning("Worker bus: watching {}: {}", dir_, ec.message());
        return;
    }
    for (std::size_t at = 0; at + sizeof(inotify_event) <= n;) {
        inotify_event ev;
        std::memcpy(&ev, watch_buf_ + at, sizeof ev);
        std::string name;
        if (ev.len > 0)
            name = std::string(watch_buf_ + at + sizeof ev,
                               ::strnlen(watch_buf_ + at + sizeof ev, ev.len));
        at += sizeof ev + ev.len;
        if (ev.mask & IN_Q_OVERFLOW) {
            scan();
            continue;
        }
        pid_t pid = PubSubBusDirectory::pid_of(name);
        if (pid == 0 || pid == self_)
            continue;
        if (ev.mask & IN_MOVED_TO)
            add_peer(pid);
        else if (ev.mask & IN_DELETE)
            drop_peer(pid);
    }
    do_watch();
}

void PubSubBus::scan() {
    DIR* dir = ::opendir(dir_.c_str());
    if (!dir) {
        log::warning("Worker bus: cannot read {}: {}", dir_, std::strerror(errno));
        return;
    }
    std::vector<pid_t> found;
    while (dirent* e = ::readdir(dir))
        if (pid_t pid = PubSubBusDirectory::pid_of(e->d_name); pid != 0 && pid != self_)
            found.push_back(pid);
    ::closedir(dir);
    for (pid_t pid : found)
        add_peer(pid);
}

void PubSubBus::add_peer(pid_t pid) {
    auto [it, added] = peers_.try_emplace(pid);
    if (!added)
        return;
    it->second = std::make_shared<Peer>(*this, pid);
    it->second->do_connect();
}

void PubSubBus::drop_peer(pid_t pid) {
    auto it = peers_.find(pid);
    if (it == peers_.end())
        return;
    log::debug("Worker bus: worker [{}] left", pid);
    std::shared_ptr<Peer> peer = std::move(it->second);
    peers_.erase(it);
    peer->close();
}

void PubSubBus::forward(const asgi::PublicationPtr& p) {
    thread_.post([this, p] { send(p); });
}

void PubSubBus::send(const asgi::PublicationPtr& p) {
    if (peers_.empty())
        return;  // the only worker: nobody to lose it for
    char head[pubsub_frame_header];
    if (!encode_pubsub_header(*p, head)) {
        lose(peers_.size());
        return;
    }
    for (auto& [pid, peer] : peers_) {
        if (peer->can_take())
            peer->push(p, head);
        else
            lose(1);
    }
}

void PubSubBus::lose(std::size_t n) {
    if (n > 0)
        ctx_.metrics->pubsub_bus_lost.fetch_add(n, relaxed);
}

}  // namespace narwhal::server
