// What an I/O thread needs from each of its connections, HTTP or WebSocket: commands
// from the interpreter (through the thread's mailbox) and the shutdown notice.
#pragma once

#include "asgi/channel.hpp"

#include <memory>

namespace narwhal::server {

class IoThread;

class Connection : public asgi::CommandSink {
public:
    // Interpreter thread: queue a command for this connection's own thread.
    void submit(std::shared_ptr<asgi::CommandSink> self, asgi::Command&& cmd) final;

    // This connection's own thread.
    virtual void on_command(asgi::Command&& cmd) = 0;
    virtual void on_server_shutdown() = 0;

protected:
    virtual IoThread& io_thread() = 0;
    virtual std::shared_ptr<Connection> shared_connection() = 0;
};

}  // namespace narwhal::server
