#include "server/http/head_reader.hpp"

#include "asgi/errors.hpp"
#include "server/http/request_parser.hpp"
#include "server/http/ws_upgrade.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>

namespace narwhal::server::http {

namespace {
int status_for(const boost::beast::error_code& ec) {
    if (ec == boost::beast::http::error::header_limit)
        return 431;
    if (ec == boost::beast::http::error::body_limit)
        return 413;
    return 400;
}
}  // namespace

namespace {
// Fills `r`, so that read_request_head has one object to return and returns it in place.
void read_into(HeadRead& r, std::string_view buffered, const HeadLimits& limits,
               uint64_t body_limit, BodyReader& body, bool websocket) {
    auto invalid = [&r](int status, const char* reason) {
        r.outcome = HeadRead::Outcome::invalid;
        r.status = status;
        r.reason = reason;
        r.head.reset();
    };
    auto scan = scan_head(buffered, limits);
    if (scan.status == HeadStatus::incomplete)
        return;
    if (scan.status != HeadStatus::ok)
        return invalid(http_status(scan.status), scan.reason);

    const std::size_t skip = 2 * scan.skip;  // empty lines before the request line, CRLF each
    const std::size_t size = scan.size - skip;
    r.head = std::make_unique<asgi::RequestHead>();
    // The head's bytes bound its strings; the slack is for a request id the server adds
    // (asgi/request_id.hpp): one allocation, however many fields.
    r.head->reserve(size + 64);
    RequestParser parser(*r.head);
    // The scanner already enforced the head limits; Beast's own must not be lower.
    parser.header_limit(static_cast<std::uint32_t>(limits.head + 4));
    parser.body_limit(body_limit);  // a Content-Length over it fails here: 413
    parser.eager(false);

    boost::beast::error_code ec;
    std::size_t used = parser.put(boost::asio::buffer(buffered.data() + skip, size), ec);
    r.consumed = skip + used;
    if (!ec && used != size)
        return invalid(400, "head not fully parsed");
    if (ec || !parser.is_header_done()) {
        if (parser.error_status())
            return invalid(parser.error_status(), parser.error_reason());
        const int status = status_for(ec);
        return invalid(status,
                       ec ? asgi::errors::server_error(status).summary.data() : "incomplete head");
    }
    if (auto up = websocket ? check_websocket_upgrade(*r.head) : UpgradeCheck{}; up.websocket) {
        if (up.status) {
            invalid(up.status, up.reason);
            r.detail = up.reason;
            return;
        }
        r.outcome = HeadRead::Outcome::websocket;
        return;
    }
    if (parser.chunked_request())
        body.reset_chunked(body_limit);
    else if (auto length = parser.content_length(); length && *length > 0)
        body.reset_length(*length, body_limit);
    else
        body.reset_none();
    r.outcome = HeadRead::Outcome::request;
}
}  // namespace

HeadRead read_request_head(std::string_view buffered, const HeadLimits& limits, uint64_t body_limit,
                           BodyReader& body, bool websocket) {
    HeadRead r;
    read_into(r, buffered, limits, body_limit, body, websocket);
    if (r.outcome == HeadRead::Outcome::invalid) {
        auto line = scan_request_line(buffered, limits);
        r.method = line.method;
        r.target = line.target;
        r.version = line.version;
    }
    return r;
}

}  // namespace narwhal::server::http
