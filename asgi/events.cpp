#include "asgi/events.hpp"

namespace narwhal::asgi {

RequestHead::Span RequestHead::add(std::string_view s) {
    Span span{static_cast<uint32_t>(arena_.size()), static_cast<uint32_t>(s.size())};
    arena_.append(s);
    return span;
}

RequestHead::Span RequestHead::add_lower(std::string_view s) {
    Span span{static_cast<uint32_t>(arena_.size()), static_cast<uint32_t>(s.size())};
    for (char c : s)
        arena_.push_back((c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c);
    return span;
}

}  // namespace narwhal::asgi
