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
inline constexpr std::string_view client_disconnected = "The client disconnected.";
inline constexpr std::string_view receive_unsupported = "receive() is not available here.";

}  // namespace narwhal::asgi::errors
