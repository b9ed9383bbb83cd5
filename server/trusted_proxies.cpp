#include "server/trusted_proxies.hpp"

#include <charconv>

namespace narwhal::server {

namespace ip = boost::asio::ip;

namespace {

std::string_view trim(std::string_view s) {
    auto b = s.find_first_not_of(" \t");
    if (b == std::string_view::npos)
        return {};
    return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

// "10.0.0.0/8", "fd00::/8", "127.0.0.1": false when the entry is none of these. Host
// bits under the prefix are dropped (10.1.2.3/8 is 10.0.0.0/8), as proxies' configs
// often write a network by one of its addresses.
bool add_entry(std::string_view entry, std::vector<ip::network_v4>& v4,
               std::vector<ip::network_v6>& v6) {
    boost::system::error_code ec;
    auto slash = entry.find('/');
    auto addr = ip::make_address(std::string(entry.substr(0, slash)), ec);
    if (ec)
        return false;
    int max_bits = addr.is_v4() ? 32 : 128;
    int bits = max_bits;
    if (slash != std::string_view::npos) {
        auto prefix = entry.substr(slash + 1);
        auto [end, err] = std::from_chars(prefix.data(), prefix.data() + prefix.size(), bits);
        if (prefix.empty() || err != std::errc() || end != prefix.data() + prefix.size() ||
            bits < 0 || bits > max_bits)
            return false;
    }
    if (addr.is_v4())
        v4.push_back(ip::make_network_v4(addr.to_v4(), bits).canonical());
    else
        v6.push_back(ip::make_network_v6(addr.to_v6(), bits).canonical());
    return true;
}

}  // namespace

TrustedProxies TrustedProxies::parse(std::string_view list, std::string* bad_entry) {
    TrustedProxies t;
    while (true) {
        auto comma = list.find(',');
        std::string_view entry = trim(list.substr(0, comma));
        if (entry.empty())
            ;  // "": trust no one; "a,,b": nothing between the commas
        else if (entry == "*")
            t.all_ = true;
        else if (entry == "unix:")
            t.unix_ = true;
        else if (!add_entry(entry, t.v4_, t.v6_) && bad_entry && bad_entry->empty())
            *bad_entry = std::string(entry);
        if (comma == std::string_view::npos)
            break;
        list.remove_prefix(comma + 1);
    }
    return t;
}

bool TrustedProxies::trusts(const ip::address& addr) const {
    if (all_)
        return true;
    if (addr.is_v6() && addr.to_v6().is_v4_mapped()) {
        // A dual-stack socket names an IPv4 peer as ::ffff:a.b.c.d.
        return trusts(ip::address(ip::make_address_v4(ip::v4_mapped, addr.to_v6())));
    }
    if (addr.is_v4()) {
        auto a = addr.to_v4();
        for (const auto& n : v4_)
            if (ip::make_network_v4(a, n.prefix_length()).canonical() == n)
                return true;
        return false;
    }
    auto a = addr.to_v6();
    for (const auto& n : v6_)
        if (ip::make_network_v6(a, n.prefix_length()).canonical() == n)
            return true;
    return false;
}

bool TrustedProxies::trusts(std::string_view host) const {
    if (all_)
        return true;
    boost::system::error_code ec;
    auto addr = ip::make_address(std::string(host), ec);
    return !ec && trusts(addr);
}

std::shared_ptr<const asgi::Peer> forwarded_peer(const asgi::Peer& peer,
                                                 const asgi::RequestHead& head,
                                                 const TrustedProxies& trusted) {
    asgi::ForwardedFacts facts = asgi::read_forwarded(head, trusted);
    if (!facts.any())
        return nullptr;
    const bool client_changes = facts.client_host && (*facts.client_host != peer.client_host ||
                                                      facts.client_port != peer.client_port);
    const bool scheme_changes = facts.secure && *facts.secure != peer.secure;
    if (!client_changes && !scheme_changes)
        return nullptr;
    auto out = std::make_shared<asgi::Peer>(peer);
    if (client_changes) {
        out->client_host = std::move(*facts.client_host);
        out->client_port = facts.client_port;
    }
    if (scheme_changes)
        out->secure = *facts.secure;
    return out;
}

}  // namespace narwhal::server
