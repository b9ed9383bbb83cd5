// The descriptor of an io_context's reactor: an epoll instance that is readable while
// any socket, timer or signal of that context has an event ready. Another event loop
// can watch it and run the context's ready handlers when it fires, so one thread serves
// both (--io-threads 0).
#pragma once

#include <boost/asio/io_context.hpp>

namespace narwhal::server {

// Creates the reactor if the context has none yet. Linux (epoll) only.
int reactor_descriptor(boost::asio::io_context& ioc);

}  // namespace narwhal::server
