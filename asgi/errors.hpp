// Every message narwhal raises into an application or logs about one, in one place.
// The ASGI ordering errors use uvicorn's wording so apps see the same text.
#pragma once

#include <string>
#include <string_view>

namespace narwhal::asgi::errors {

std::string expected_message(std::string_view expected, std::string_view got);
std::string unexpected_after_complete(std::string_view got);

inline constexpr std::string_view content_longer = "Response content longer than Content-Length";
inline constexpr std::string_view content_shorter = "Response content shorter than Content-Length";
inline constexpr std::string_view returned_without_start =
    "ASGI callable returned without starting response.";
inline constexpr std::string_view returned_without_complete =
    "ASGI callable returned without completing response.";
inline constexpr std::string_view exception_in_app = "Exception in ASGI application";
inline constexpr std::string_view message_not_dict = "ASGI message must be a dict, got '{}'.";
inline constexpr std::string_view status_not_int =
    "ASGI 'http.response.start' status must be an int.";
inline constexpr std::string_view status_out_of_range =
    "ASGI 'http.response.start' status must be between 100 and 999.";
// uvicorn's wording for a websocket.http.response.start status; {} is the status. We
// take 200 to 599: a 1xx is no final answer to an upgrade.
inline constexpr std::string_view denial_status_invalid =
    "Invalid HTTP status code '{}' in response.";
inline constexpr std::string_view returned_without_handshake =
    "ASGI callable returned without completing handshake.";
// uvicorn's wording; {} is str() of the value.
inline constexpr std::string_view returned_value =
    "ASGI callable should return None, but returned '{}'.";
inline constexpr std::string_view headers_not_iterable =
    "ASGI 'headers' must be an iterable of [name, value] pairs of bytes.";
inline constexpr std::string_view header_not_bytes = "ASGI header names and values must be bytes.";
inline constexpr std::string_view invalid_header_name = "Invalid HTTP header name.";
inline constexpr std::string_view invalid_header_value = "Invalid HTTP header value.";
// The client would see either no valid framing or two (a response smuggling risk).
inline constexpr std::string_view invalid_content_length =
    "Response Content-Length must be a non-negative integer.";
inline constexpr std::string_view conflicting_content_length =
    "Response has conflicting Content-Length headers.";
inline constexpr std::string_view body_not_bytes = "ASGI 'body' must be bytes.";
// http.response.pathsend: the spec asks for an absolute path; a relative one would
// depend on the server's working directory.
inline constexpr std::string_view pathsend_path_not_str =
    "ASGI 'http.response.pathsend' path must be a str.";
std::string pathsend_not_absolute(std::string_view path);
std::string pathsend_not_regular_file(std::string_view path);
// Logged when the file shrank while it was being sent: the client gets a short body.
inline constexpr std::string_view pathsend_file_truncated =
    "http.response.pathsend: the file ended before its length; connection closed";
// Logged when the file cannot be read while it is sent over TLS (read, then encrypted).
inline constexpr std::string_view pathsend_file_unreadable =
    "http.response.pathsend: reading the file failed; connection closed:";
inline constexpr std::string_view client_disconnected = "The client disconnected.";
inline constexpr std::string_view receive_unsupported = "receive() is not available here.";
// narwhal.pubsub (asgi/pubsub.hpp); {} is the message type.
inline constexpr std::string_view pubsub_unknown_type =
    "Unknown narwhal.pubsub message type '{}': expected narwhal.pubsub.subscribe, "
    "narwhal.pubsub.unsubscribe or narwhal.pubsub.publish.";
inline constexpr std::string_view pubsub_needs_socket =
    "'{}' is only valid on an accepted, open WebSocket.";
inline constexpr std::string_view pubsub_publish_before_accept =
    "'{}' from a WebSocket handler needs 'websocket.accept' first.";
inline constexpr std::string_view pubsub_topic_not_str =
    "ASGI 'topic' of a narwhal.pubsub message must be a non-empty str.";
inline constexpr std::string_view pubsub_publish_payload =
    "'narwhal.pubsub.publish' needs exactly one of 'text' (a str) and 'bytes' (bytes).";

// The responses the server answers itself, without the app: per status, what the log
// says happened (`summary`, also the fallback detail when no more precise one is known)
// and the text the client gets as the body. One table, so a 413 is never logged or
// answered as a malformed request.
struct ServerError {
    int status;
    std::string_view summary;  // lower case, for log lines: "request body too large"
    std::string_view body;     // a sentence, for the client
};
// The entry for `status`; a generic one for a status not in the table.
const ServerError& server_error(int status);

// The warning logged when a request is shed for load (503), in uvicorn's words.
inline constexpr std::string_view load_shed_warning = "Exceeded concurrency limit.";

}  // namespace narwhal::asgi::errors
