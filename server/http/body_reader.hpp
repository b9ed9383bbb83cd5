// Request body framing: Content-Length counting or a strict chunked decoder
// (RFC 9112 7.1). Beast parses the head; the body is decoded here so that the read
// window (credit) is exact and so that chunk lines are held to the same strictness
// as the head: CRLF only, no bare CR/LF inside extensions, bounded line lengths.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace narwhal::server::http {

class BodyReader {
public:
    enum class Status { need_more, paused, done, bad_request, too_large };

    // No body, a Content-Length body, or a chunked body; `limit` caps the decoded size.
    void reset_none() {
        *this = BodyReader();
        done_ = true;
    }
    void reset_length(uint64_t length, uint64_t limit);
    void reset_chunked(uint64_t limit);

    // Decodes from `in`, appending at most `credit` body bytes to `out` (and lowering
    // `credit`). `consumed` is set to the bytes of `in` used, framing included.
    Status feed(std::string_view in, std::size_t& credit, std::string& out, std::size_t& consumed);

    bool done() const { return done_; }
    const char* reason() const { return reason_; }

private:
    enum class State { size, size_ext, size_lf, data, data_cr, data_lf, trailer, trailer_lf, done };
    enum class Ext {
        after_size,
        name_start,
        name,
        after_name,
        value_start,
        value,
        quoted,
        escape,
        after_value
    };
    bool ext_step(char c);
    Status fail(const char* why) {
        reason_ = why;
        return Status::bad_request;
    }

    bool chunked_ = false;
    bool done_ = false;
    uint64_t remaining_ = 0;  // Content-Length left, or bytes left in the current chunk
    uint64_t limit_ = 0;
    uint64_t total_ = 0;
    State state_ = State::size;
    int size_digits_ = 0;
    std::size_t line_bytes_ = 0;  // bytes of the current chunk-size or trailer line
    std::size_t trailer_bytes_ = 0;
    Ext ext_ = Ext::after_size;
    bool trailer_line_empty_ = true;
    bool trailer_in_value_ = false;
    const char* reason_ = "";
};

}  // namespace narwhal::server::http
