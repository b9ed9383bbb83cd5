#include "server/reactor_fd.hpp"

#include <boost/asio/detail/reactor.hpp>

namespace narwhal::server {

#if !defined(BOOST_ASIO_HAS_EPOLL) || !defined(BOOST_ASIO_HAS_TIMERFD)
#error "--io-threads 0 needs Asio's epoll reactor with timerfd (Linux)"
#endif

namespace {

// Asio keeps the epoll descriptor private and offers no accessor. An explicit
// instantiation may name a private member (C++20 [temp.spec.general]/6), which is how
// this reads it: a member renamed in a later Boost fails to compile here instead of
// misbehaving. Timers reach the same descriptor through Asio's timerfd, and
// signal_set through its pipe, so "readable" covers every kind of event the front end
// waits for. Handlers posted from outside a run are not covered: the front end runs
// those itself (IoThread::pump).
using Reactor = boost::asio::detail::epoll_reactor;

int Reactor::* epoll_member();

template <int Reactor::* Member> struct Expose {
    friend int Reactor::* epoll_member() { return Member; }
};
template struct Expose<&Reactor::epoll_fd_>;

}  // namespace

int reactor_descriptor(boost::asio::io_context& ioc) {
    auto& reactor = boost::asio::use_service<Reactor>(ioc);
    return reactor.*epoll_member();
}

}  // namespace narwhal::server
