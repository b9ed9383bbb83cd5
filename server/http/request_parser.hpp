// Boost.Beast's HTTP/1.1 request parser, fed straight into narwhal's RequestHead
// (no intermediate field container) and made stricter where RFC 9112 asks servers
// to refuse smuggling-prone shapes that Beast tolerates.
#pragma once

#include "asgi/events.hpp"

#include <boost/beast/http/basic_parser.hpp>

#include <cstdint>
#include <string>

namespace narwhal::server::http {

class RequestParser final : public boost::beast::http::basic_parser<true> {
public:
    using error_code = boost::beast::error_code;
    using string_view = boost::beast::string_view;

    // `head` receives the request line and fields. Only the head is fed to Beast: the
    // body is framed by BodyReader, which is stricter about chunk lines.
    explicit RequestParser(asgi::RequestHead& head) : head_(head) {}

    // Set when a callback refused the request; the HTTP status to answer with.
    int error_status() const { return error_status_; }
    const char* error_reason() const { return error_reason_; }
    bool chunked_request() const { return chunked_; }

private:
    void fail(int status, const char* reason, error_code& ec);

    void on_request_impl(boost::beast::http::verb method, string_view method_str,
                         string_view target, int version, error_code& ec) override;
    void on_response_impl(int, string_view, int, error_code&) override {}
    void on_field_impl(boost::beast::http::field name, string_view name_string, string_view value,
                       error_code& ec) override;
    void on_header_impl(error_code& ec) override;
    void on_body_init_impl(boost::optional<std::uint64_t> const& length, error_code& ec) override;
    std::size_t on_body_impl(string_view body, error_code& ec) override;
    void on_chunk_header_impl(std::uint64_t size, string_view extensions, error_code& ec) override;
    std::size_t on_chunk_body_impl(std::uint64_t remain, string_view body, error_code& ec) override;
    void on_finish_impl(error_code& ec) override {}

    asgi::RequestHead& head_;
    int error_status_ = 0;
    const char* error_reason_ = "";
    int content_length_fields_ = 0;
    int transfer_encoding_fields_ = 0;
    int host_fields_ = 0;
    bool chunked_ = false;
};

}  // namespace narwhal::server::http
