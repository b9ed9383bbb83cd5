#include "config/redis_url.hpp"

#include <fmt/format.h>

#include <charconv>

namespace narwhal::config {
namespace {

std::optional<int> parse_number(std::string_view s, int max) {
    int n = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size() || n < 0 || n > max)
        return std::nullopt;
    return n;
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

// A password with '@', ':' or '/' in it can only be written escaped.
std::optional<std::string> percent_decode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out += s[i];
            continue;
        }
        if (i + 2 >= s.size())
            return std::nullopt;
        int hi = hex_digit(s[i + 1]);
        int lo = hex_digit(s[i + 2]);
        if (hi < 0 || lo < 0)
            return std::nullopt;
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
    }
    return out;
}

}  // namespace

std::optional<RedisUrl> parse_redis_url(std::string_view text, std::string& error) {
    constexpr std::string_view tcp = "redis://";
    constexpr std::string_view unix_scheme = "unix://";
    RedisUrl url;
    if (text.starts_with(unix_scheme)) {
        std::string_view path = text.substr(unix_scheme.size());
        if (path.empty() || path.front() != '/') {
            error = "expected unix:///absolute/path";
            return std::nullopt;
        }
        url.path = std::string(path);
        return url;
    }
    if (text.starts_with("rediss://")) {
        error = "TLS (rediss://) is not supported; use redis:// or unix://";
        return std::nullopt;
    }
    if (!text.starts_with(tcp)) {
        error = "expected redis://[:password@]host[:port][/db] or unix:///path";
        return std::nullopt;
    }
    std::string_view rest = text.substr(tcp.size());
    // The authority ends at the first '/'; the user information at its last '@' (an
    // unescaped '@' in a password is taken as part of it, as most clients do).
    std::string_view authority = rest.substr(0, rest.find('/'));
    std::string_view tail = rest.substr(authority.size());
    if (auto at = authority.rfind('@'); at != std::string_view::npos) {
        std::string_view userinfo = authority.substr(0, at);
        authority.remove_prefix(at + 1);
        // redis://secret@host: a single word before '@' is taken as the password, the
        // only credential a Redis before 6 (no ACL users) has.
        auto colon = userinfo.find(':');
        std::string_view user_text =
            colon == std::string_view::npos ? std::string_view{} : userinfo.substr(0, colon);
        std::string_view password_text =
            colon == std::string_view::npos ? userinfo : userinfo.substr(colon + 1);
        auto user = percent_decode(user_text);
        auto password = percent_decode(password_text);
        if (!user || !password) {
            error = "a bad percent escape in the user or password";
            return std::nullopt;
        }
        url.user = std::move(*user);
        url.password = std::move(*password);
        if (url.password.empty() && !url.user.empty()) {
            error = "a user without a password";
            return std::nullopt;
        }
    }
    std::string_view port;
    if (authority.starts_with('[')) {
        auto close = authority.find(']');
        if (close == std::string_view::npos) {
            error = "an IPv6 address without its closing ']'";
            return std::nullopt;
        }
        url.host = std::string(authority.substr(1, close - 1));
        std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') {
                error = "expected ':port' after the IPv6 address";
                return std::nullopt;
            }
            port = after.substr(1);
            if (port.empty()) {
                error = "an empty port";
                return std::nullopt;
            }
        }
    } else {
        auto colon = authority.find(':');
        url.host = std::string(authority.substr(0, colon));
        if (colon != std::string_view::npos) {
            port = authority.substr(colon + 1);
            if (port.empty()) {
                error = "an empty port";
                return std::nullopt;
            }
        }
    }
    if (url.host.empty()) {
        error = "no host";
        return std::nullopt;
    }
    if (!port.empty()) {
        auto n = parse_number(port, 65535);
        if (!n || *n == 0) {
            error = fmt::format("bad port '{}' (expected 1-65535)", port);
            return std::nullopt;
        }
        url.port = *n;
    }
    // "/", "/3"; a query or fragment is not something this client would honour.
    if (!tail.empty()) {
        std::string_view db = tail.substr(1);
        if (db.find_first_of("?#") != std::string_view::npos) {
            error = "query parameters are not supported";
            return std::nullopt;
        }
        if (!db.empty()) {
            auto n = parse_number(db, 1 << 30);
            if (!n) {
                error = fmt::format("bad database number '{}'", db);
                return std::nullopt;
            }
            url.db = *n;
        }
    }
    return url;
}

std::string display_redis_url(const RedisUrl& url) {
    if (url.unix_socket())
        return fmt::format("unix://{}", url.path);
    std::string auth;
    if (!url.password.empty())
        auth = fmt::format("{}:***@", url.user);
    bool v6 = url.host.find(':') != std::string::npos;
    std::string out =
        fmt::format("redis://{}{}{}{}:{}", auth, v6 ? "[" : "", url.host, v6 ? "]" : "", url.port);
    if (url.db)
        out += fmt::format("/{}", *url.db);
    return out;
}

}  // namespace narwhal::config
