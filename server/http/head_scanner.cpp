#include "server/http/head_scanner.hpp"

#include "asgi/http_syntax.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>

namespace narwhal::server::http {
namespace {

// Character classes (asgi/http_syntax.hpp), one bit each, so every byte costs one table
// load and one AND.
using asgi::syntax::char_classes;
constexpr std::uint8_t k_tchar = asgi::syntax::tchar;        // method and field name
constexpr std::uint8_t k_target = asgi::syntax::vchar;       // request-target byte: any VCHAR;
                                                             // its grammar is Beast's job
constexpr std::uint8_t k_value = asgi::syntax::field_value;  // field-value byte

// RFC 9112 2.2 asks servers to tolerate at least one empty line before the request line
// (left over from a client's previous body); a handful is generous, more is abuse.
constexpr std::size_t k_max_leading_empty_lines = 4;

constexpr bool is_eol(unsigned char c) noexcept { return c == '\r' || c == '\n'; }
constexpr bool is_digit(unsigned char c) noexcept { return c >= '0' && c <= '9'; }

// One scan. Member functions return false once the result in `r_` is final (ok, an error,
// or incomplete) and true to go on. Positions index the window `b_[0, n_)`: the first
// `limits.head` bytes of the buffer, since nothing beyond them can be part of an
// acceptable head. That bounds the work per call whatever the caller has buffered.
// `Record`: keep the request line's parts (scan_request_line), compiled out otherwise.
template <bool Record> class Scanner {
public:
    Scanner(std::string_view buffered, const HeadLimits& limits) noexcept
        : b_(reinterpret_cast<const unsigned char*>(buffered.data())),
          n_(std::min(buffered.size(), limits.head)), total_(buffered.size()), limits_(limits) {}

    HeadScan run() noexcept {
        if (skip_empty_lines() && request_line())
            while (field_line()) {
            }
        return r_;
    }

    RequestLine run_request_line() noexcept {
        if (skip_empty_lines())
            request_line();
        return request_line_;
    }

private:
    bool fail(HeadStatus status, const char* reason) noexcept {
        r_.status = status;
        r_.reason = reason;
        return false;
    }

    // The window ran out before the head ended. If the caller holds more bytes than the
    // window, the head cannot end within `limits.head`: say so now rather than wait.
    bool need_more() noexcept {
        if (total_ > limits_.head)
            return fail(HeadStatus::head_too_large, "request head too large");
        r_.status = HeadStatus::incomplete;
        return false;
    }

    // Starts a line at `pos_` whose content (without CRLF) may hold at most `limit` bytes.
    // Content may extend up to `stop_`; a non-EOL byte at `stop_` breaks the limit.
    void begin_line(std::size_t limit, HeadStatus too_long, const char* reason) noexcept {
        line_ = pos_;
        stop_ = pos_ + std::min(limit, n_ - pos_);
        too_long_ = too_long;
        too_long_reason_ = reason;
    }

    void span(std::uint8_t mask) noexcept {
        while (pos_ < stop_ && (char_classes[b_[pos_]] & mask) != 0)
            ++pos_;
    }

    // span(k_value), eight bytes at a time: values are most of a head's bytes, and a word
    // without any byte below 0x20 or equal to 0x7F is all value bytes. A word that has
    // one (HTAB, which is valid, or the CR that ends the line) goes byte by byte.
    void span_value() noexcept {
        constexpr std::uint64_t ones = 0x0101010101010101u;
        constexpr std::uint64_t highs = 0x8080808080808080u;
        for (;;) {
            while (stop_ - pos_ >= 8) {
                std::uint64_t w;
                std::memcpy(&w, b_ + pos_, 8);
                const std::uint64_t del = w ^ (ones * 0x7F);  // zero byte where w has 0x7F
                // Classic "has a byte less than n" test; exact as to whether any byte is.
                if ((((w - ones * 0x20) & ~w) | ((del - ones) & ~del)) & highs)
                    break;
                pos_ += 8;
            }
            const std::size_t end = std::min(pos_ + 8, stop_);
            while (pos_ < end && (char_classes[b_[pos_]] & k_value) != 0)
                ++pos_;
            if (pos_ != end || pos_ == stop_)
                return;
        }
    }

    // After a run of valid bytes: is there a byte to look at, within the line's limit?
    bool at_byte() noexcept {
        if (pos_ == n_)
            return need_more();
        if (pos_ == stop_ && !is_eol(b_[pos_]))
            return fail(too_long_, too_long_reason_);
        return true;
    }

    // `b_[pos_]` is CR or LF and ends the current line; `status` says whether the line may
    // end here (ok) or what is wrong with it. A CR as the last byte still needs its LF,
    // but a line that is malformed as it stands fails already: whatever follows, it is a
    // 400 (either the line ends here, or the CR is bare). Other verdicts (505) wait for
    // the LF, so that a verdict, once given, never changes as more bytes arrive.
    bool end_line(HeadStatus status, const char* reason) noexcept {
        if (b_[pos_] == '\n')
            return fail(HeadStatus::bad_request, "bare LF in request head");
        const bool pending = pos_ + 1 == n_;
        if (!pending && b_[pos_ + 1] != '\n')
            return fail(HeadStatus::bad_request, "bare CR in request head");
        if (status == HeadStatus::bad_request)
            return fail(status, reason);
        if (pending)
            return need_more();
        if (status != HeadStatus::ok)
            return fail(status, reason);
        pos_ += 2;
        return true;
    }

    bool skip_empty_lines() noexcept {
        while (pos_ < n_ && is_eol(b_[pos_])) {
            if (r_.skip == k_max_leading_empty_lines) {
                // Before end_line so that an overlong run fails even while incomplete.
                return fail(HeadStatus::bad_request, "too many empty lines before request line");
            }
            if (!end_line(HeadStatus::ok, nullptr))
                return false;
            ++r_.skip;
        }
        return true;
    }

    // method SP request-target SP HTTP-version CRLF, exactly one SP between the parts.
    bool request_line() noexcept {
        begin_line(limits_.request_line, HeadStatus::uri_too_long, "request line too long");

        span(k_tchar);
        if (!at_byte())
            return false;
        unsigned char c = b_[pos_];
        if (c != ' ') {
            return is_eol(c) ? end_line(HeadStatus::bad_request, "missing request target")
                             : fail(HeadStatus::bad_request, "invalid character in method");
        }
        if (pos_ == line_)
            return fail(HeadStatus::bad_request, "empty method");
        if constexpr (Record)
            request_line_.method = {reinterpret_cast<const char*>(b_ + line_), pos_ - line_};
        ++pos_;

        const std::size_t target = pos_;
        span(k_target);
        if (!at_byte())
            return false;
        c = b_[pos_];
        if (pos_ == target) {
            if (c == ' ')
                return fail(HeadStatus::bad_request, "extra space in request line");
            return is_eol(c) ? end_line(HeadStatus::bad_request, "missing request target")
                             : fail(HeadStatus::bad_request, "invalid character in request target");
        }
        if (c != ' ') {
            return is_eol(c) ? end_line(HeadStatus::bad_request, "missing HTTP version")
                             : fail(HeadStatus::bad_request, "invalid character in request target");
        }
        if constexpr (Record)
            request_line_.target = {reinterpret_cast<const char*>(b_ + target), pos_ - target};
        ++pos_;

        // HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive (RFC 9112 2.3).
        constexpr std::string_view pattern = "HTTP/#.#";
        for (const char want : pattern) {
            if (!at_byte())
                return false;
            c = b_[pos_];
            if (want == '#' ? !is_digit(c) : c != static_cast<unsigned char>(want)) {
                return is_eol(c) ? end_line(HeadStatus::bad_request, "malformed HTTP version")
                                 : fail(HeadStatus::bad_request, "malformed HTTP version");
            }
            ++pos_;
        }
        if (!at_byte())
            return false;
        if (!is_eol(b_[pos_]))
            return fail(HeadStatus::bad_request, "malformed HTTP version");
        const unsigned char major = b_[pos_ - 3];
        const unsigned char minor = b_[pos_ - 1];
        if constexpr (Record)
            request_line_.version = (major - '0') * 10 + (minor - '0');
        if (major == '1' && (minor == '0' || minor == '1'))
            return end_line(HeadStatus::ok, nullptr);
        return end_line(HeadStatus::version_not_supported, "HTTP version not supported");
    }

    // field-name ":" OWS field-value OWS CRLF, or the empty line that ends the head.
    bool field_line() noexcept {
        if (pos_ == n_)
            return need_more();
        const unsigned char first = b_[pos_];
        if (is_eol(first)) {
            if (!end_line(HeadStatus::ok, nullptr))
                return false;
            r_.status = HeadStatus::ok;
            r_.size = pos_;
            return false;
        }
        // obs-fold (RFC 9112 5.2): a server may reject it, and must not pass it on as is.
        if (first == ' ' || first == '\t')
            return fail(HeadStatus::bad_request, "obs-fold in header");
        if (++fields_ > limits_.fields)
            return fail(HeadStatus::head_too_large, "too many header fields");
        begin_line(limits_.field_size, HeadStatus::head_too_large, "header field too long");

        span(k_tchar);
        if (!at_byte())
            return false;
        unsigned char c = b_[pos_];
        if (c != ':') {
            // RFC 9112 5.1: whitespace before the colon must be rejected with 400.
            if (c == ' ' || c == '\t')
                return fail(HeadStatus::bad_request, "whitespace before colon in header");
            return is_eol(c) ? end_line(HeadStatus::bad_request, "missing colon in header")
                             : fail(HeadStatus::bad_request, "invalid character in header name");
        }
        if (pos_ == line_)
            return fail(HeadStatus::bad_request, "empty header name");
        ++pos_;

        // OWS needs no separate step: SP and HTAB are value bytes anyway.
        span_value();
        if (!at_byte())
            return false;
        c = b_[pos_];
        if (is_eol(c))
            return end_line(HeadStatus::ok, nullptr);
        return fail(HeadStatus::bad_request,
                    c == 0 ? "NUL in header value" : "control character in header value");
    }

    const unsigned char* b_;
    std::size_t n_;      // window size: min(buffer size, limits.head)
    std::size_t total_;  // bytes the caller has buffered
    const HeadLimits& limits_;
    HeadScan r_;
    std::size_t pos_ = 0;
    std::size_t line_ = 0;  // start of the current line
    std::size_t stop_ = 0;  // end of the content the current line may have
    HeadStatus too_long_ = HeadStatus::head_too_large;
    const char* too_long_reason_ = "";
    std::size_t fields_ = 0;
    RequestLine request_line_;  // Record only
};

}  // namespace

HeadScan scan_head(std::string_view buffered, const HeadLimits& limits) noexcept {
    return Scanner<false>(buffered, limits).run();
}

RequestLine scan_request_line(std::string_view buffered, const HeadLimits& limits) noexcept {
    return Scanner<true>(buffered, limits).run_request_line();
}

int http_status(HeadStatus status) noexcept {
    switch (status) {
    case HeadStatus::ok:
    case HeadStatus::incomplete: return 0;
    case HeadStatus::bad_request: return 400;
    case HeadStatus::uri_too_long: return 414;
    case HeadStatus::head_too_large: return 431;
    case HeadStatus::version_not_supported: return 505;
    }
    return 400;
}

}  // namespace narwhal::server::http
