// Runs a hiredis async context on a Boost.Asio io_context: hiredis asks for read and
// write readiness through its event hooks (addRead/delRead/addWrite/delWrite/cleanup),
// and this adapter waits for it on the context's descriptor with a stream_descriptor's
// async_wait, then hands the event back (redisAsyncHandleRead/Write). hiredis does all
// the reading, writing and RESP parsing; hiredis ships adapters for libevent, libev,
// libuv and others, but none for Asio.
//
// The descriptor belongs to hiredis: the adapter releases it from Asio when hiredis
// cleans up (before it closes it), never closes it. Everything runs on the thread that
// runs the io_context, as hiredis contexts are not thread-safe.
#pragma once

#include <boost/asio/io_context.hpp>

struct redisAsyncContext;

namespace narwhal::server {

// Attach before setting the context's connect callback (which asks for the first write
// readiness). Returns false when the context already has event hooks. The adapter lives
// until hiredis calls its cleanup hook (when the context is freed or disconnects).
bool redis_asio_attach(redisAsyncContext* ac, boost::asio::io_context& io);

}  // namespace narwhal::server
