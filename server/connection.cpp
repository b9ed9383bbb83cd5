#include "server/connection.hpp"

#include "server/io_thread.hpp"

namespace narwhal::server {

void Connection::submit(std::shared_ptr<asgi::CommandSink> self, asgi::Command&& cmd) {
    // `self` (when given) is this connection, handed back by Channel::detach.
    auto conn = self ? std::static_pointer_cast<Connection>(std::move(self)) : shared_connection();
    io_thread().push_command(std::move(conn), std::move(cmd));
}

}  // namespace narwhal::server
