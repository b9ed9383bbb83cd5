#include "server/http/head_reader.hpp"

#include "server/http/request_parser.hpp"
#include "server/http/ws_upgrade.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>

namespace narwhal::server::http {

namespace {
HeadRead invalid(HeadRead r, int status, const char* reason) {
    r.outcome = HeadRead::Outcome::invalid;
    r.status = status;
    r.reason = reason;
    r.head.reset();
    return r;
}

int status_for(const boost::beast::error_code& ec) {
    if (ec == boost::beast::http::error::header_limit)
        return 431;
    if (ec == boost::beast::http::error::body_limit)
        return 413;
    return 400;
}
}  // namespace

HeadRead read_request_head(std::string_view buffered, const HeadLimits& limits,
                           uint64_t body_limit) {
    HeadRead r;
    auto scan = scan_head(buffered, limits);
    if (scan.status == HeadStatus::incomplete)
        return r;
    if (scan.status != HeadStatus::ok)
        return invalid(std::move(r), http_status(scan.status), scan.reason);

    const std::size_t skip = 2 * scan.skip;  // empty lines before the request line, CRLF each
    const std::size_t size = scan.size - skip;
    r.head = std::make_unique<asgi::RequestHead>();
    RequestParser parser(*r.head);
    // The scanner already enforced the head limits; Beast's own must not be lower.
    parser.header_limit(static_cast<std::uint32_t>(limits.head + 4));
    parser.body_limit(body_limit);  // a Content-Length over it fails here: 413
    parser.eager(false);

    boost::beast::error_code ec;
    std::size_t used = parser.put(boost::asio::buffer(buffered.data() + skip, size), ec);
    r.consumed = skip + used;
    if (!ec && used != size)
        return invalid(std::move(r), 400, "head not fully parsed");
    if (ec || !parser.is_header_done()) {
        if (parser.error_status())
            return invalid(std::move(r), parser.error_status(), parser.error_reason());
        return invalid(std::move(r), status_for(ec), ec ? "malformed request" : "incomplete head");
    }
    if (auto up = check_websocket_upgrade(*r.head); up.websocket) {
        if (up.status)
            return invalid(std::move(r), up.status, up.reason);
        r.outcome = HeadRead::Outcome::websocket;
        return r;
    }
    if (parser.chunked_request())
        r.body.reset_chunked(body_limit);
    else if (auto length = parser.content_length(); length && *length > 0)
        r.body.reset_length(*length, body_limit);
    else
        r.body.reset_none();
    r.outcome = HeadRead::Outcome::request;
    return r;
}

}  // namespace narwhal::server::http
