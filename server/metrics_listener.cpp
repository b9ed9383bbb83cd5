#include "server/metrics_listener.hpp"

#include "asgi/log.hpp"
#include "server/metrics_text.hpp"

#include <fmt/format.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

namespace narwhal::server {
namespace {

// A scrape request is one short head; anything longer is not a scraper.
constexpr std::size_t max_head = 8 * 1024;
// A client that has not sent its head (or taken the answer) by then is dropped: a
// scraper's own timeout is about 10 s, and nothing here may be held open for long.
constexpr auto client_time = std::chrono::seconds(10);
constexpr std::size_t max_clients = 64;

[[noreturn]] void fail(const std::string& what) {
    throw std::system_error(errno, std::system_category(), what);
}

std::string response(int status, std::string_view reason, std::string_view type,
                     const std::string& body, bool head_only, std::string_view extra = {}) {
    std::string out = fmt::format("HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n"
                                  "Cache-Control: no-store\r\n{}Connection: close\r\n\r\n",
                                  status, reason, type, body.size(), extra);
    if (!head_only)
        out += body;
    return out;
}

// Binds and listens on `bind` (HOST:PORT); returns the descriptor.
int bind_listener(const std::string& bind) {
    auto colon = bind.rfind(':');
    std::string host = bind.substr(0, colon);
    std::string port = bind.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    addrinfo* found = nullptr;
    if (int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &found);
        rc != 0)
        throw std::system_error(EINVAL, std::system_category(),
                                fmt::format("--metrics-bind {}: {}", bind, ::gai_strerror(rc)));
    int fd = ::socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        ::freeaddrinfo(found);
        fail("--metrics-bind " + bind);
    }
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, found->ai_addr, found->ai_addrlen) != 0 || ::listen(fd, 64) != 0) {
        int e = errno;
        ::freeaddrinfo(found);
        ::close(fd);
        errno = e;
        fail("--metrics-bind " + bind);
    }
    ::freeaddrinfo(found);
    return fd;
}

// "fd:N": a listening socket passed by systemd's socket activation (server/systemd.hpp),
// adopted as it is.
int adopt_listener(const std::string& bind) {
    int fd = std::stoi(bind.substr(3));
    int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0 ||
        ::fcntl(fd, F_SETFD, FD_CLOEXEC) != 0 || ::listen(fd, 64) != 0)
        fail("--metrics-bind " + bind);
    return fd;
}

}  // namespace

MetricsListener::MetricsListener(const std::string& bind, Render render)
    : render_(std::move(render)) {
    fd_ = bind.starts_with("fd:") ? adopt_listener(bind) : bind_listener(bind);
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    char text[INET6_ADDRSTRLEN] = {};
    uint16_t bound = 0;
    if (addr.ss_family == AF_INET6) {
        auto* a = reinterpret_cast<sockaddr_in6*>(&addr);
        ::inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof text);
        bound = ntohs(a->sin6_port);
        url_ = fmt::format("http://[{}]:{}/metrics", text, bound);
    } else {
        auto* a = reinterpret_cast<sockaddr_in*>(&addr);
        ::inet_ntop(AF_INET, &a->sin_addr, text, sizeof text);
        bound = ntohs(a->sin_port);
        url_ = fmt::format("http://{}:{}/metrics", text, bound);
    }
}

MetricsListener::~MetricsListener() {
    stop_thread();
    for (Client& c : clients_)
        ::close(c.fd);
    if (fd_ >= 0)
        ::close(fd_);
}

void MetricsListener::add_fds(std::vector<pollfd>& fds) const {
    if (clients_.size() < max_clients)
        fds.push_back({fd_, POLLIN, 0});
    for (const Client& c : clients_)
        fds.push_back({c.fd, static_cast<short>(c.out.empty() ? POLLIN : POLLOUT), 0});
}

void MetricsListener::descriptors(std::vector<int>& out) const {
    out.push_back(fd_);
    for (const Client& c : clients_)
        out.push_back(c.fd);
}

int MetricsListener::timeout_ms() const {
    if (clients_.empty())
        return -1;
    auto now = std::chrono::steady_clock::now();
    auto first = std::min_element(clients_.begin(), clients_.end(), [](auto& a, auto& b) {
                     return a.deadline < b.deadline;
                 })->deadline;
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(first - now).count();
    return static_cast<int>(std::clamp<int64_t>(ms + 1, 0, 10000));
}

void MetricsListener::on_poll(std::span<const pollfd> fds) {
    bool accept_now = false;
    for (const pollfd& p : fds) {
        if (!p.revents)
            continue;
        if (p.fd == fd_) {
            accept_now = true;
            continue;
        }
        auto it = std::find_if(clients_.begin(), clients_.end(),
                               [&](const Client& c) { return c.fd == p.fd; });
        if (it == clients_.end())
            continue;
        bool keep = it->out.empty() ? on_readable(*it) : on_writable(*it);
        if (!keep) {
            ::close(it->fd);
            it->fd = -1;
        }
    }
    auto now = std::chrono::steady_clock::now();
    for (Client& c : clients_)
        if (c.fd >= 0 && now >= c.deadline) {
            ::close(c.fd);
            c.fd = -1;
        }
    std::erase_if(clients_, [](const Client& c) { return c.fd < 0; });
    if (accept_now)
        accept_all();
}

void MetricsListener::accept_all() {
    while (clients_.size() < max_clients) {
        int fd = ::accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;  // EAGAIN, or an error the next poll will show again
        clients_.push_back({fd, {}, {}, 0, std::chrono::steady_clock::now() + client_time});
    }
}

bool MetricsListener::on_readable(Client& c) {
    char buf[2048];
    for (;;) {
        ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
        if (n == 0)
            return false;
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
        c.in.append(buf, static_cast<std::size_t>(n));
        if (c.in.find("\r\n\r\n") != std::string::npos || c.in.find("\n\n") != std::string::npos) {
            answer(c);
            return on_writable(c);
        }
        if (c.in.size() > max_head)
            return false;
    }
}

void MetricsListener::answer(Client& c) {
    // The request line: METHOD SP TARGET SP VERSION. Only the path before any query counts.
    std::string_view line(c.in);
    line = line.substr(0, line.find_first_of("\r\n"));
    auto sp1 = line.find(' ');
    auto sp2 = line.find(' ', sp1 == std::string_view::npos ? sp1 : sp1 + 1);
    std::string_view method = line.substr(0, sp1);
    std::string_view target =
        sp1 == std::string_view::npos
            ? std::string_view{}
            : line.substr(sp1 + 1,
                          sp2 == std::string_view::npos ? std::string_view::npos : sp2 - sp1 - 1);
    std::string_view path = target.substr(0, target.find('?'));
    const bool head = method == "HEAD";
    if (path != "/metrics")
        c.out = response(404, "Not Found", "text/plain; charset=utf-8", "Not Found\n", head);
    else if (method != "GET" && !head)
        c.out = response(405, "Method Not Allowed", "text/plain; charset=utf-8",
                         "Method Not Allowed\n", false, "Allow: GET, HEAD\r\n");
    else
        c.out = response(200, "OK", metrics_content_type, render_(), head);
}

bool MetricsListener::on_writable(Client& c) {
    while (c.sent < c.out.size()) {
        ssize_t n = ::send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
        c.sent += static_cast<std::size_t>(n);
    }
    ::shutdown(c.fd, SHUT_WR);
    return false;
}

void MetricsListener::start_thread() {
    wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd_ < 0)
        fail("eventfd");
    thread_ = std::thread([this] { run(); });
}

void MetricsListener::stop_thread() {
    if (!thread_.joinable())
        return;
    uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
    thread_.join();
    ::close(wake_fd_);
    wake_fd_ = -1;
}

void MetricsListener::run() {
    std::vector<pollfd> fds;
    for (;;) {
        fds.clear();
        fds.push_back({wake_fd_, POLLIN, 0});
        add_fds(fds);
        int n = ::poll(fds.data(), fds.size(), timeout_ms());
        if (n < 0 && errno != EINTR) {
            log::error("metrics listener: poll: {}", std::strerror(errno));
            return;
        }
        if (fds[0].revents)
            return;
        on_poll(std::span<const pollfd>(fds).subspan(1));
    }
}

}  // namespace narwhal::server
