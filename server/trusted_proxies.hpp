// The peers whose word about the client is believed (--forwarded-allow-ips): proxy
// headers and PROXY protocol headers from anyone else are ignored. Built once from the
// settings; asked once per connection (is the socket's peer a proxy?) and, for each
// X-Forwarded-For hop, by a request from one. Addresses are compared as parsed values
// (boost::asio::ip), not as text: "::1" and "0:0:0:0:0:0:0:1" are the same peer.
#pragma once

#include "asgi/events.hpp"
#include "asgi/forwarded.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/network_v4.hpp>
#include <boost/asio/ip/network_v6.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace narwhal::server {

class TrustedProxies final : public asgi::TrustCheck {
public:
    // From a comma-separated list of IPs and CIDRs, "*" (every peer) and "unix:" (peers
    // on a Unix socket). The settings loader has already refused a bad entry; here one is
    // reported as the entry itself, for a caller that did not go through it (tests).
    static TrustedProxies parse(std::string_view list, std::string* bad_entry = nullptr);

    // A peer address as text (the socket's, or an X-Forwarded-For hop). Text that is
    // not an address is trusted only under "*".
    bool trusts(std::string_view host) const override;
    bool trusts(const boost::asio::ip::address& addr) const;
    // A peer on a Unix socket (it has no address): trusted under "*" or "unix:".
    bool trusts_unix() const { return all_ || unix_; }
    bool trusts_all() const { return all_; }
    // The socket's peer (a Unix socket's has no address).
    bool trusts_peer(const asgi::Peer& peer) const {
        return peer.client_host.empty() ? trusts_unix() : trusts(peer.client_host);
    }
    bool empty() const { return !all_ && !unix_ && v4_.empty() && v6_.empty(); }

private:
    bool all_ = false;
    bool unix_ = false;
    std::vector<boost::asio::ip::network_v4> v4_;  // a single address is a /32
    std::vector<boost::asio::ip::network_v6> v6_;  // ... or a /128
};

// The peer a request's app sees: the connection's `peer` with the client and scheme a
// trusted proxy's headers give (asgi/forwarded.hpp); nullptr when the headers change
// nothing, so the common request shares the connection's Peer and allocates nothing.
// The caller has checked that the connection's peer is trusted.
std::shared_ptr<const asgi::Peer> forwarded_peer(const asgi::Peer& peer,
                                                 const asgi::RequestHead& head,
                                                 const TrustedProxies& trusted);

}  // namespace narwhal::server
