#include "server/http/request_parser.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/rfc7230.hpp>

#include <algorithm>

namespace narwhal::server::http {

namespace bhttp = boost::beast::http;

namespace {
bool all_digits(std::string_view v) {
    return !v.empty() &&
           std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; });
}
}  // namespace

void RequestParser::fail(int status, const char* reason, error_code& ec) {
    error_status_ = status;
    error_reason_ = reason;
    // Any parser error stops the parse; the session answers with error_status().
    ec = bhttp::error::bad_value;
}

void RequestParser::on_request_impl(bhttp::verb method, string_view method_str, string_view target,
                                    int version, error_code& ec) {
    head_.method = head_.add(method_str);
    head_.target = head_.add(target);
    head_.version = version;
    head_.head_request = method == bhttp::verb::head;
}

void RequestParser::on_field_impl(bhttp::field name, string_view name_string, string_view value,
                                  error_code& ec) {
    switch (name) {
    case bhttp::field::content_length:
        // Beast accepts "5, 5" and repeated equal values; RFC 9112 6.3 lets a server
        // refuse them, and a proxy in front may have read them differently.
        if (++content_length_fields_ > 1)
            return fail(400, "repeated Content-Length", ec);
        if (!all_digits(value))
            return fail(400, "invalid Content-Length", ec);
        break;
    case bhttp::field::transfer_encoding:
        if (++transfer_encoding_fields_ > 1)
            return fail(400, "repeated Transfer-Encoding", ec);
        {
            // Only "chunked" alone: any other coding would have to be decoded (501), and
            // "chunked" twice is malformed (RFC 9112 7: chunked only once, last).
            int chunked = 0, other = 0;
            for (auto token : boost::beast::http::token_list{value})
                boost::beast::iequals(token, "chunked") ? ++chunked : ++other;
            if (other)
                return fail(501, "unsupported Transfer-Encoding", ec);
            if (chunked != 1 || !boost::beast::iequals(value, "chunked"))
                return fail(400, "malformed Transfer-Encoding", ec);
            chunked_ = true;
            break;
        }
    case bhttp::field::host:
        if (++host_fields_ > 1)
            return fail(400, "repeated Host", ec);
        break;
    case bhttp::field::expect:
        if (boost::beast::iequals(value, "100-continue"))
            head_.expect_continue = true;
        break;
    default: break;
    }
    head_.add_field(name_string, value);
}

void RequestParser::on_header_impl(error_code& ec) {
    if (head_.version == 11 && host_fields_ == 0)
        return fail(400, "missing Host", ec);
    // RFC 9112 6.1: chunked framing from an HTTP/1.0 client is suspect (a 1.0 proxy may
    // not have understood it); serve the request but do not reuse the connection.
    head_.keep_alive = keep_alive() && !(chunked_ && head_.version == 10);
}

void RequestParser::on_body_init_impl(boost::optional<std::uint64_t> const&, error_code&) {}

// Never called: the session stops feeding Beast at the end of the head.
std::size_t RequestParser::on_body_impl(string_view body, error_code&) { return body.size(); }

void RequestParser::on_chunk_header_impl(std::uint64_t, string_view, error_code&) {}

std::size_t RequestParser::on_chunk_body_impl(std::uint64_t, string_view body, error_code&) {
    return body.size();
}

}  // namespace narwhal::server::http
