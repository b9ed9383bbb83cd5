// The ASGI HTTP response rules for one request, in plain C++: message order
// (start, then body... or one pathsend, then nothing) and Content-Length accounting. The Python
// boundary converts each sent dict to a call here and raises the returned error.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace narwhal::asgi {

// The http.response.pathsend extension's message: the body is a file the server sends.
inline constexpr std::string_view pathsend_type = "http.response.pathsend";

class ResponseState {
public:
    enum class Phase : uint8_t { start, body, done };

    // `head_request`: HEAD responses carry no body, so their length is not checked
    // (uvicorn's rule).
    explicit ResponseState(bool head_request = false) : head_request_(head_request) {}

    Phase phase() const { return phase_; }
    bool started() const { return phase_ != Phase::start; }
    bool complete() const { return phase_ == Phase::done; }

    // Order check for a message of type `type`. Returns the error to raise, if any.
    std::optional<std::string> check_order(std::string_view type) const;

    // `http.response.start` accepted. `content_length` is the app's declared length.
    void on_start(int status, std::optional<uint64_t> content_length);
    // `http.response.body` with `n` bytes. Returns the error to raise, if any; on error
    // the state does not change.
    std::optional<std::string> on_body(uint64_t n, bool more);
    // `http.response.pathsend` of a file of `file_size` bytes: the whole body. Checked
    // against Content-Length as a body of that size would be (a file cut to the declared
    // length would be a different file). Returns the error to raise, if any.
    std::optional<std::string> on_pathsend(uint64_t file_size);

    // Whether the status forbids a body (1xx, 204, 304) or the request was HEAD.
    bool body_allowed() const { return body_allowed_; }
    int status() const { return status_; }
    std::optional<uint64_t> content_length() const { return declared_; }
    uint64_t body_bytes() const { return sent_; }

private:
    Phase phase_ = Phase::start;
    bool head_request_;
    bool body_allowed_ = true;
    int status_ = 0;
    std::optional<uint64_t> declared_;
    uint64_t sent_ = 0;
    bool body_seen_ = false;  // a body message came: pathsend may no longer replace the body
};

// RFC 9110: 1xx, 204 and 304 responses never have content.
constexpr bool status_has_body(int status) {
    return !(status < 200 || status == 204 || status == 304);
}

}  // namespace narwhal::asgi
