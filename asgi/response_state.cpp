#include "asgi/response_state.hpp"

#include "asgi/errors.hpp"

namespace narwhal::asgi {

namespace {
constexpr std::string_view start_type = "http.response.start";
constexpr std::string_view body_type = "http.response.body";
}  // namespace

std::optional<std::string> ResponseState::check_order(std::string_view type) const {
    switch (phase_) {
    case Phase::start:
        if (type != start_type)
            return errors::expected_message(start_type, type);
        return std::nullopt;
    case Phase::body:
        // pathsend replaces the body messages, so it may only come first.
        if (type != body_type && (type != pathsend_type || body_seen_))
            return errors::expected_message(body_type, type);
        return std::nullopt;
    case Phase::done: return errors::unexpected_after_complete(type);
    }
    return std::nullopt;
}

void ResponseState::on_start(int status, std::optional<uint64_t> content_length) {
    phase_ = Phase::body;
    status_ = status;
    body_allowed_ = !head_request_ && status_has_body(status);
    declared_ = content_length;
}

std::optional<std::string> ResponseState::on_body(uint64_t n, bool more) {
    body_seen_ = true;
    if (!body_allowed_) {
        // The body is dropped, as uvicorn does for HEAD; nothing to account.
        if (!more)
            phase_ = Phase::done;
        return std::nullopt;
    }
    if (declared_) {
        if (sent_ + n > *declared_)
            return std::string(errors::content_longer);
        if (!more && sent_ + n < *declared_)
            return std::string(errors::content_shorter);
    }
    sent_ += n;
    if (!more)
        phase_ = Phase::done;
    return std::nullopt;
}

std::optional<std::string> ResponseState::on_pathsend(uint64_t file_size) {
    if (body_allowed_ && declared_ && file_size != *declared_)
        return std::string(file_size > *declared_ ? errors::content_longer
                                                  : errors::content_shorter);
    if (body_allowed_)
        sent_ = file_size;
    body_seen_ = true;
    phase_ = Phase::done;
    return std::nullopt;
}

}  // namespace narwhal::asgi
