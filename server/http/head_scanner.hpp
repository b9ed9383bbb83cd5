// Strict scanner for an HTTP/1.1 request head (RFC 9112), run over the raw bytes before
// Boost.Beast's parser sees them. Beast is lenient in places a front end must not be
// (obs-fold, bare LF, stray whitespace), and two parsers that disagree about where a
// request ends are what request smuggling exploits. So every byte of the head is checked
// here, once, and anything ambiguous is rejected before it reaches Beast.
//
// The scanner is stateless: it is called again with the whole buffer each time more
// bytes arrive. It never looks further than `HeadLimits::head` bytes, so one call costs
// at most one pass over that many bytes, and it never allocates.
#pragma once

#include <cstddef>
#include <string_view>

namespace narwhal::server::http {

enum class HeadStatus {
    ok,
    incomplete,
    bad_request,
    uri_too_long,
    head_too_large,
    version_not_supported
};

struct HeadLimits {
    std::size_t request_line = 8190;  // bytes of the request line without CRLF
    std::size_t head = 32768;         // whole head incl. request line and the final CRLFCRLF
    std::size_t field_size = 8190;    // one field line without CRLF
    std::size_t fields = 100;         // number of field lines
};

struct HeadScan {
    HeadStatus status = HeadStatus::incomplete;
    // Leading empty lines (CRLF) to ignore before the request line (RFC 9112 2.2).
    std::size_t skip = 0;
    // When ok: bytes from the start of the buffer through the final CRLFCRLF (includes the
    // skipped empty lines). Bytes after it belong to the body or the next request.
    std::size_t size = 0;
    // When an error: a short static English reason, e.g. "obs-fold in header".
    const char* reason = "";
};

// The parts of a request line, as far as they are valid: views into the scanned bytes.
// Empty: not (validly) there. `version`: 11 for HTTP/1.1, 20 for HTTP/2.0; 0: not read.
struct RequestLine {
    std::string_view method;
    std::string_view target;
    int version = 0;
};

// Scans `buffered`, the bytes received so far for a new request.
//  - ok: the head is complete and valid; `size` bytes form it (`skip` empty lines first,
//    at most 4).
//  - incomplete: no complete head yet, nothing seen so far is invalid and no limit is
//    exceeded; call again when more bytes arrived.
//  - any other status: reject the request with http_status(status) and close.
// Every byte is checked as soon as it arrives, not only when the head is complete, so
// garbage (a TLS handshake on a plain port, a NUL in a header) fails on the first read.
HeadScan scan_head(std::string_view buffered, const HeadLimits& limits) noexcept;

// The request line of `buffered` as far as scan_head accepts it, so that a rejected head
// can still be logged with the request it answers. The same scan as scan_head's first
// line; a separate call so that scan_head, run for every request, records nothing.
RequestLine scan_request_line(std::string_view buffered, const HeadLimits& limits) noexcept;

// The response status for an error: 400, 414, 431 or 505; 0 for ok and incomplete.
int http_status(HeadStatus status) noexcept;

}  // namespace narwhal::server::http
