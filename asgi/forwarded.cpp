#include "asgi/forwarded.hpp"

#include "asgi/http_syntax.hpp"

#include <charconv>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>

namespace narwhal::asgi {

namespace {

std::string_view trim(std::string_view s) {
    auto b = s.find_first_not_of(" \t");
    if (b == std::string_view::npos)
        return {};
    return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

bool is_address(std::string_view host) {
    if (host.empty() || host.size() >= INET6_ADDRSTRLEN)
        return false;
    char text[INET6_ADDRSTRLEN];
    host.copy(text, host.size());
    text[host.size()] = '\0';
    unsigned char buf[sizeof(in6_addr)];
    return ::inet_pton(AF_INET, text, buf) == 1 || ::inet_pton(AF_INET6, text, buf) == 1;
}

// A port: 1-5 digits, at most 65535. -1 when not.
int parse_port(std::string_view s) {
    int port = -1;
    if (s.empty() || s.size() > 5)
        return -1;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), port);
    if (ec != std::errc() || end != s.data() + s.size() || port < 0 || port > 65535)
        return -1;
    return port;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size())
        return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (syntax::to_lower(a[i]) != syntax::to_lower(b[i]))
            return false;
    return true;
}

// "https" -> true, "http" -> false (and ws/wss); anything else: not a protocol we take.
std::optional<bool> parse_proto(std::string_view v) {
    v = trim(v);
    if (iequals(v, "https") || iequals(v, "wss"))
        return true;
    if (iequals(v, "http") || iequals(v, "ws"))
        return false;
    return std::nullopt;
}

// One Forwarded element's "for" and "proto" (raw, unquoted). `ok` false: malformed.
struct Element {
    std::string_view for_;
    std::string for_storage;  // the unquoted value when it had escapes
    std::string_view proto;
    bool has_for = false;
};

// RFC 7239 section 4: elements separated by ",", pairs by ";", each pair token "="
// (token / quoted-string). False when the value is not of that shape.
bool parse_forwarded(std::string_view v, std::vector<Element>& out) {
    std::size_t i = 0;
    out.emplace_back();
    while (i <= v.size()) {
        while (i < v.size() && (v[i] == ' ' || v[i] == '\t'))
            ++i;
        if (i == v.size())
            break;
        if (v[i] == ',') {
            out.emplace_back();
            ++i;
            continue;
        }
        if (v[i] == ';') {
            ++i;
            continue;
        }
        std::size_t name_start = i;
        while (i < v.size() && syntax::is_tchar(v[i]))
            ++i;
        std::string_view name = v.substr(name_start, i - name_start);
        if (name.empty() || i == v.size() || v[i] != '=')
            return false;
        ++i;
        std::string unquoted;
        std::string_view value;
        bool escaped = false;
        if (i < v.size() && v[i] == '"') {
            ++i;
            std::size_t start = i;
            bool closed = false;
            while (i < v.size()) {
                char c = v[i];
                if (c == '"') {
                    closed = true;
                    break;
                }
                if (c == '\\') {
                    if (i + 1 == v.size())
                        return false;
                    escaped = true;
                    unquoted += v[i + 1];
                    i += 2;
                    continue;
                }
                if (!syntax::is_field_value_char(c))
                    return false;
                unquoted += c;
                ++i;
            }
            if (!closed)
                return false;
            value = v.substr(start, i - start);
            ++i;  // the closing quote
        } else {
            std::size_t start = i;
            while (i < v.size() && syntax::is_tchar(v[i]))
                ++i;
            value = v.substr(start, i - start);
            if (value.empty())
                return false;
        }
        while (i < v.size() && (v[i] == ' ' || v[i] == '\t'))
            ++i;
        if (i < v.size() && v[i] != ';' && v[i] != ',')
            return false;
        Element& e = out.back();
        if (iequals(name, "for")) {
            if (e.has_for)
                return false;  // a pair may appear once per element (RFC 7239 4)
            e.has_for = true;
            if (escaped) {
                e.for_storage = std::move(unquoted);
                e.for_ = {};
            } else {
                e.for_ = value;
            }
        } else if (iequals(name, "proto")) {
            e.proto = escaped ? std::string_view{} : value;
        }
    }
    return true;
}

struct Pick {
    bool found = false;
    ForwardedHop hop;
    std::size_t index = 0;
};

// The rightmost hop that is not a trusted proxy, else the leftmost; not found when that
// hop is not an address.
template <class Hops> Pick pick_client(const Hops& hops, const TrustCheck& trust) {
    Pick p;
    if (hops.empty())
        return p;
    std::size_t i = hops.size();
    while (i-- > 0) {
        ForwardedHop hop = parse_forwarded_hop(hops[i]);
        if (hop.host.empty())
            return p;  // an unknown hop where the walk stops: the client is not known
        if (!trust.trusts(hop.host) || i == 0) {
            p = {true, hop, i};
            return p;
        }
    }
    return p;
}

}  // namespace

ForwardedHop parse_forwarded_hop(std::string_view text) {
    text = trim(text);
    ForwardedHop hop;
    if (text.starts_with('[')) {
        auto close = text.find(']');
        if (close == std::string_view::npos)
            return {};
        std::string_view host = text.substr(1, close - 1);
        std::string_view rest = text.substr(close + 1);
        if (!rest.empty()) {
            if (rest[0] != ':')
                return {};
            int port = parse_port(rest.substr(1));
            if (port < 0 && !rest.substr(1).starts_with('_'))  // an obfuscated port
                return {};
            hop.port = port < 0 ? 0 : port;
        }
        if (host.find(':') == std::string_view::npos || !is_address(host))
            return {};
        hop.host = host;
        return hop;
    }
    auto colon = text.find(':');
    if (colon != std::string_view::npos && text.find(':', colon + 1) == std::string_view::npos) {
        std::string_view host = text.substr(0, colon);
        std::string_view port_text = text.substr(colon + 1);
        int port = parse_port(port_text);
        if (port < 0 && !port_text.starts_with('_'))
            return {};
        if (!is_address(host) || host.find(':') != std::string_view::npos)
            return {};
        hop.host = host;
        hop.port = port < 0 ? 0 : port;
        return hop;
    }
    if (!is_address(text))
        return {};
    hop.host = text;
    return hop;
}

ForwardedFacts read_forwarded(const RequestHead& head, const TrustCheck& trust) {
    // Several X-Forwarded-For lines are one list (RFC 9110 5.3); the last
    // X-Forwarded-Proto line wins, as in uvicorn.
    std::string xff_joined;
    std::string_view xff;
    int xff_lines = 0;
    std::optional<std::string_view> xfp;
    std::string fwd_joined;
    std::string_view fwd;
    int fwd_lines = 0;
    for (const auto& f : head.fields()) {
        std::string_view name = head.view(f.name);
        if (name.size() == 15 && name == "x-forwarded-for") {
            std::string_view v = head.view(f.value);
            if (xff_lines++ == 0) {
                xff = v;
            } else {
                if (xff_lines == 2)
                    xff_joined.assign(xff);
                xff_joined.append(",").append(v);
                xff = xff_joined;
            }
        } else if (name.size() == 17 && name == "x-forwarded-proto") {
            xfp = head.view(f.value);
        } else if (name.size() == 9 && name == "forwarded") {
            std::string_view v = head.view(f.value);
            if (fwd_lines++ == 0) {
                fwd = v;
            } else {
                if (fwd_lines == 2)
                    fwd_joined.assign(fwd);
                fwd_joined.append(",").append(v);
                fwd = fwd_joined;
            }
        }
    }
    ForwardedFacts facts;
    if (xff_lines == 0 && !xfp && fwd_lines == 0)
        return facts;

    if (xff_lines > 0) {
        std::vector<std::string_view> hops;
        std::string_view rest = xff;
        while (true) {
            auto comma = rest.find(',');
            hops.push_back(rest.substr(0, comma));
            if (comma == std::string_view::npos)
                break;
            rest.remove_prefix(comma + 1);
        }
        Pick p = pick_client(hops, trust);
        if (p.found) {
            facts.client_host = std::string(p.hop.host);
            facts.client_port = p.hop.port;
        }
    }
    if (xfp)
        facts.secure = parse_proto(*xfp);

    if (fwd_lines > 0 && (xff_lines == 0 || !xfp)) {
        std::vector<Element> elements;
        if (parse_forwarded(fwd, elements)) {
            // The client's element: the one whose "for" the walk picks. Elements without
            // "for" cannot be placed in the chain; the walk needs every hop.
            std::vector<std::string_view> hops;
            bool complete = true;
            for (const Element& e : elements) {
                if (!e.has_for) {
                    complete = false;
                    break;
                }
                hops.push_back(e.for_storage.empty() ? e.for_ : std::string_view(e.for_storage));
            }
            Pick p;
            if (complete)
                p = pick_client(hops, trust);
            if (p.found) {
                if (xff_lines == 0) {
                    facts.client_host = std::string(p.hop.host);
                    facts.client_port = p.hop.port;
                }
                // The protocol of the connection the client made to the proxy that wrote
                // this element.
                if (!xfp && !elements[p.index].proto.empty())
                    facts.secure = parse_proto(elements[p.index].proto);
            }
        }
    }
    return facts;
}

}  // namespace narwhal::asgi
