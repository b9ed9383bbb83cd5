// libFuzzer target for the request path before the app: the strict head scanner, the
// Beast head parser and the body reader, fed the way HttpSession feeds them (the body in
// pieces, with the read window as credit). Run: make fuzz.
#include "asgi/events.hpp"
#include "server/http/body_reader.hpp"
#include "server/http/head_scanner.hpp"
#include "server/http/request_parser.hpp"

#include <boost/asio/buffer.hpp>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

using namespace narwhal::server::http;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
    if (size < 2)
        return 0;
    // First byte: the read window; second: where the body is split.
    std::size_t window = 1 + data[0] % 64;
    std::size_t split = data[1];
    std::string_view in(reinterpret_cast<const char*>(data) + 2, size - 2);

    HeadLimits limits{256, 2048, 256, 16};
    HeadScan scan = scan_head(in, limits);
    if (scan.status != HeadStatus::ok)
        return 0;
    if (scan.size > in.size() || 2 * scan.skip > scan.size)
        std::abort();
    std::string_view head = in.substr(2 * scan.skip, scan.size - 2 * scan.skip);

    narwhal::asgi::RequestHead parsed;
    RequestParser parser(parsed);
    parser.header_limit(4096);
    parser.body_limit(1 << 20);
    parser.eager(false);
    boost::beast::error_code ec;
    std::size_t used = parser.put(boost::asio::buffer(head.data(), head.size()), ec);
    if (ec || !parser.is_header_done())
        return 0;
    if (used != head.size())
        std::abort();  // the scanner and Beast disagree about where the head ends

    BodyReader body;
    if (parser.chunked_request())
        body.reset_chunked(1 << 20);
    else if (auto n = parser.content_length(); n && *n > 0)
        body.reset_length(*n, 1 << 20);
    else
        body.reset_none();

    std::string_view rest = in.substr(scan.size);
    std::string out;
    std::size_t fed = 0;
    while (fed < rest.size() && !body.done()) {
        std::size_t piece = std::min<std::size_t>(rest.size() - fed, split ? split : 1);
        std::size_t credit = window;
        std::size_t consumed = 0;
        auto status = body.feed(rest.substr(fed, piece), credit, out, consumed);
        if (consumed > piece || credit > window)
            std::abort();
        if (status == BodyReader::Status::bad_request || status == BodyReader::Status::too_large)
            break;
        if (consumed == 0 && status != BodyReader::Status::paused)
            break;  // needs more than this piece: the session would read again
        fed += consumed;
    }
    return 0;
}
