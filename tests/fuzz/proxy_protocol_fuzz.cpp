// libFuzzer target for the PROXY protocol header parser (server/proxy_protocol.cpp) as
// HttpSession drives it: the bytes arrive in pieces, and the parser is asked again with
// everything so far after each piece. Checked on every input, for each version setting:
// - a whole header's size is within the bytes given, and at least its fixed part;
// - the answer for the whole input is the answer when it arrives split at any point
//   (once done or invalid, more bytes change nothing about the header);
// - a done header's addresses are set exactly when it says it has them.
// Seed: tests/fuzz/corpus/proxy_protocol (v1 TCP4/TCP6/UNKNOWN, v2 IPv4 with TLVs,
// IPv6, LOCAL). Run: make fuzz.
#include "server/proxy_protocol.hpp"

#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace pp = narwhal::server::proxy_protocol;

namespace {

void check(bool ok) {
    if (!ok)
        std::abort();
}

void one(std::string_view bytes, pp::Version version) {
    const pp::Parse whole = pp::parse(bytes, version);
    if (whole.status == pp::Parse::Status::done) {
        check(whole.size <= bytes.size());
        check(whole.size >= 15);  // "PROXY UNKNOWN\r\n", the shortest header
        check(whole.header.has_addresses == !whole.header.source_host.empty());
        check(whole.header.has_addresses == !whole.header.dest_host.empty());
        // The header alone says the same.
        const pp::Parse exact = pp::parse(bytes.substr(0, whole.size), version);
        check(exact.status == pp::Parse::Status::done && exact.size == whole.size);
        check(exact.header.source_host == whole.header.source_host);
        check(exact.header.source_port == whole.header.source_port);
    }
    if (whole.status == pp::Parse::Status::invalid)
        check(whole.error != nullptr);
    // Any prefix: incomplete, or the same final answer as the whole input.
    for (std::size_t n = 0; n < bytes.size(); n += 1 + n / 8) {
        const pp::Parse part = pp::parse(bytes.substr(0, n), version);
        if (part.status == pp::Parse::Status::incomplete)
            continue;
        check(part.status == whole.status);
        if (part.status == pp::Parse::Status::done)
            check(part.size == whole.size);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
    std::string_view bytes(reinterpret_cast<const char*>(data), size);
    one(bytes, pp::Version::v1);
    one(bytes, pp::Version::v2);
    one(bytes, pp::Version::any);
    return 0;
}
