#include "asgi/target.hpp"

#include "asgi/http_syntax.hpp"

namespace narwhal::asgi {

TargetParts split_target(std::string_view target) {
    std::string_view path = target;
    std::string_view query;
    if (auto q = target.find('?'); q != std::string_view::npos) {
        path = target.substr(0, q);
        query = target.substr(q + 1);
    }
    // absolute-form (RFC 9112 3.2.2): "http://host:port/path" -> "/path".
    if (!path.empty() && path[0] != '/' && path != "*") {
        if (auto scheme = path.find("://"); scheme != std::string_view::npos) {
            auto slash = path.find('/', scheme + 3);
            path = slash == std::string_view::npos ? std::string_view("/") : path.substr(slash);
        }
    }
    return {path, query};
}

using syntax::hex_value;

std::string percent_decode(std::string_view path) {
    std::string out;
    out.reserve(path.size());
    for (std::size_t i = 0; i < path.size(); ++i) {
        if (path[i] == '%' && i + 2 < path.size()) {
            int hi = hex_value(path[i + 1]);
            int lo = hex_value(path[i + 2]);
            if (hi >= 0 && lo >= 0) {
                out.push_back(static_cast<char>(hi * 16 + lo));
                i += 2;
                continue;
            }
        }
        out.push_back(path[i]);
    }
    return out;
}

}  // namespace narwhal::asgi
