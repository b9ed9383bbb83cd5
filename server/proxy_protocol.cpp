#include "server/proxy_protocol.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/endian/conversion.hpp>

#include <charconv>
#include <cstring>

namespace narwhal::server::proxy_protocol {

namespace ip = boost::asio::ip;

namespace {

constexpr std::string_view v1_signature = "PROXY ";
constexpr char v2_signature_bytes[] = "\r\n\r\n\0\r\nQUIT\n";
constexpr std::string_view v2_signature(v2_signature_bytes, 12);

Parse invalid(const char* why) {
    Parse p;
    p.status = Parse::Status::invalid;
    p.error = why;
    return p;
}

// True when `bytes` may still grow into `prefix` (or already starts with it).
bool may_start_with(std::string_view bytes, std::string_view prefix) {
    std::size_t n = std::min(bytes.size(), prefix.size());
    return bytes.substr(0, n) == prefix.substr(0, n);
}

// v1 port: decimal 0-65535 without leading zeros (the specification's form).
bool parse_port(std::string_view s, uint16_t& out) {
    if (s.empty() || s.size() > 5 || (s.size() > 1 && s[0] == '0'))
        return false;
    unsigned value = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (ec != std::errc() || end != s.data() + s.size() || value > 65535)
        return false;
    out = static_cast<uint16_t>(value);
    return true;
}

Parse parse_v1(std::string_view bytes) {
    if (!may_start_with(bytes, v1_signature))
        return invalid("not a PROXY protocol v1 header");
    auto cr = bytes.find('\r');
    if (cr == std::string_view::npos) {
        if (bytes.size() >= v1_max_size)
            return invalid("PROXY v1 line longer than 107 bytes");
        return {};
    }
    if (cr + 2 > v1_max_size)
        return invalid("PROXY v1 line longer than 107 bytes");
    if (cr + 1 == bytes.size())
        return {};
    if (bytes[cr + 1] != '\n')
        return invalid("PROXY v1 line not ended by CRLF");
    std::string_view line = bytes.substr(v1_signature.size(), cr - v1_signature.size());
    Parse p;
    p.status = Parse::Status::done;
    p.size = cr + 2;
    // "UNKNOWN" and anything after it: the proxy cannot say (the socket's addresses stay).
    if (line == "UNKNOWN" || line.starts_with("UNKNOWN "))
        return p;
    std::string_view fields[5];
    std::size_t n = 0;
    while (!line.empty() && n < 5) {
        auto sp = line.find(' ');
        fields[n++] = line.substr(0, sp);
        if (sp == std::string_view::npos) {
            line = {};
            break;
        }
        line.remove_prefix(sp + 1);
    }
    if (n != 5 || !line.empty())
        return invalid("PROXY v1 line does not have 5 fields");
    bool v4 = fields[0] == "TCP4";
    if (!v4 && fields[0] != "TCP6")
        return invalid("PROXY v1 family is not TCP4, TCP6 or UNKNOWN");
    boost::system::error_code ec;
    ip::address src = ip::make_address(std::string(fields[1]), ec);
    if (ec || src.is_v4() != v4)
        return invalid("PROXY v1 source address is not of its family");
    ip::address dst = ip::make_address(std::string(fields[2]), ec);
    if (ec || dst.is_v4() != v4)
        return invalid("PROXY v1 destination address is not of its family");
    if (!parse_port(fields[3], p.header.source_port) || !parse_port(fields[4], p.header.dest_port))
        return invalid("PROXY v1 port is not a number 0-65535");
    p.header.has_addresses = true;
    p.header.source_host = src.to_string();
    p.header.dest_host = dst.to_string();
    return p;
}

uint16_t read16(const unsigned char* b) { return boost::endian::load_big_u16(b); }

Parse parse_v2(std::string_view bytes) {
    if (!may_start_with(bytes, v2_signature))
        return invalid("not a PROXY protocol v2 header");
    if (bytes.size() < v2_fixed_size)
        return {};
    auto* b = reinterpret_cast<const unsigned char*>(bytes.data());
    const unsigned version = b[12] >> 4;
    const unsigned command = b[12] & 0x0F;
    const unsigned family = b[13];
    const std::size_t length = read16(b + 14);
    if (version != 2)
        return invalid("PROXY v2 version is not 2");
    if (command > 1)
        return invalid("PROXY v2 command is neither LOCAL nor PROXY");
    // Address family (high nibble): UNSPEC, INET, INET6, UNIX; transport: UNSPEC, STREAM,
    // DGRAM.
    if ((family >> 4) > 3 || (family & 0x0F) > 2)
        return invalid("PROXY v2 bad address family");
    const std::size_t total = v2_fixed_size + length;
    // The addresses' room is checked before waiting for them: a length too short for its
    // family is wrong however many bytes follow.
    const bool proxy = command == 1;
    if (proxy && family == 0x11 && length < 12)
        return invalid("PROXY v2 length too short for IPv4 addresses");
    if (proxy && family == 0x21 && length < 36)
        return invalid("PROXY v2 length too short for IPv6 addresses");
    if (proxy && family == 0x31 && length < 216)
        return invalid("PROXY v2 length too short for Unix addresses");
    if (proxy && ((family & 0x0F) == 2))
        return invalid("PROXY v2 datagram transport on a stream connection");
    if (bytes.size() < total)
        return {};
    Parse p;
    p.status = Parse::Status::done;
    p.size = total;  // TLVs after the addresses are skipped with the rest
    if (!proxy)
        return p;  // LOCAL: the proxy's own connection; the addresses are ignored
    const unsigned char* a = b + v2_fixed_size;
    if (family == 0x11) {
        ip::address_v4::bytes_type src, dst;
        std::memcpy(src.data(), a, 4);
        std::memcpy(dst.data(), a + 4, 4);
        p.header.source_host = ip::address_v4(src).to_string();
        p.header.dest_host = ip::address_v4(dst).to_string();
        p.header.source_port = read16(a + 8);
        p.header.dest_port = read16(a + 10);
        p.header.has_addresses = true;
    } else if (family == 0x21) {
        ip::address_v6::bytes_type src, dst;
        std::memcpy(src.data(), a, 16);
        std::memcpy(dst.data(), a + 16, 16);
        p.header.source_host = ip::address_v6(src).to_string();
        p.header.dest_host = ip::address_v6(dst).to_string();
        p.header.source_port = read16(a + 32);
        p.header.dest_port = read16(a + 34);
        p.header.has_addresses = true;
    }
    // UNSPEC and UNIX: nothing an ASGI scope can name as host and port.
    return p;
}

}  // namespace

Parse parse(std::string_view bytes, Version version) {
    if (bytes.empty())
        return {};
    switch (version) {
    case Version::v1: return parse_v1(bytes);
    case Version::v2: return parse_v2(bytes);
    case Version::any: break;
    }
    if (bytes[0] == 'P')
        return parse_v1(bytes);
    if (bytes[0] == '\r')
        return parse_v2(bytes);
    return invalid("not a PROXY protocol header");
}

}  // namespace narwhal::server::proxy_protocol
