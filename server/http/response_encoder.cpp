#include "server/http/response_encoder.hpp"

#include "asgi/response_headers.hpp"

#include <fmt/format.h>

#include <iterator>

namespace narwhal::server::http {

void ResponseEncoder::start(int status, HeaderList&& headers, const asgi::HeaderFacts& facts) {
    status_ = status;
    headers_ = std::move(headers);
    facts_ = facts;
    started_ = true;
}

void ResponseEncoder::append_head(std::string& out, const RequestSide& request,
                                  std::size_t first_body_size, bool more,
                                  const ResponseDefaults& defaults, bool body_in_out) {
    head_written_ = true;
    framing_ = decide_framing({
        .status = status_,
        .head_request = request.head_request,
        .app_length = facts_.content_length,
        .first_body_size = first_body_size,
        .more_body = more,
        .version = request.version,
        .request_keep_alive = request.keep_alive,
        .request_body_done = request.body_done,
        .draining = request.draining,
        .app_close = facts_.close,
    });
    ResponseHeadSpec spec;
    spec.status = status_;
    spec.version = request.version;
    spec.app_headers = &headers_;
    spec.framing = framing_.framing;
    spec.content_length = framing_.content_length;
    spec.app_gave_length = !framing_.add_length_header;
    spec.app_connection = facts_.connection;
    spec.close = !framing_.keep_alive;
    spec.request_id = request.request_id;
    // One allocation for the head and, when it travels with it, the whole body.
    out.reserve(out.size() + 256 + request.request_id.size() +
                (more || !body_in_out ? 0 : first_body_size));
    append_response_head(out, spec, defaults);
}

std::size_t ResponseEncoder::append_body(std::string& out, std::string&& body, bool more) {
    const bool on_wire = framing_.body_allowed;
    const std::size_t app_bytes = on_wire ? body.size() : 0;
    const bool chunked = framing_.framing == Framing::chunked;
    if (on_wire && !body.empty()) {
        if (chunked) {
            fmt::format_to(std::back_inserter(out), "{:x}\r\n", body.size());
            out.append(body);
            out.append("\r\n");
        } else if (out.empty()) {
            out = std::move(body);  // a streamed part on its own: no copy
        } else {
            out.append(body);
        }
    }
    if (!more) {
        done_ = true;
        if (chunked && on_wire)
            out.append("0\r\n\r\n");
    }
    return app_bytes;
}

bool ResponseEncoder::begin_file(std::string& out, uint64_t size) {
    if (!framing_.body_allowed || size == 0)
        return false;
    if (framing_.framing == Framing::chunked)
        fmt::format_to(std::back_inserter(out), "{:x}\r\n", size);
    return true;
}

void ResponseEncoder::end_file(std::string& out, uint64_t size) {
    if (framing_.body_allowed && size > 0 && framing_.framing == Framing::chunked)
        out.append("\r\n");
    append_body(out, {}, false);
}

}  // namespace narwhal::server::http
