#include "asgi/events.hpp"

#include "asgi/http_syntax.hpp"

namespace narwhal::asgi {

RequestHead::Span RequestHead::add(std::string_view s) {
    Span span{static_cast<uint32_t>(arena_.size()), static_cast<uint32_t>(s.size())};
    arena_.append(s);
    return span;
}

RequestHead::Span RequestHead::add_lower(std::string_view s) {
    Span span{static_cast<uint32_t>(arena_.size()), static_cast<uint32_t>(s.size())};
    for (char c : s)
        arena_.push_back(syntax::to_lower(c));
    return span;
}

std::string Peer::client_label() const {
    if (client_host.empty())
        return "unix";
    // No fmt here: the request fuzz target builds this file without it.
    return client_host + ':' + std::to_string(client_port);
}

}  // namespace narwhal::asgi
