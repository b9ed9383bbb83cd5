#include "asgi/errors.hpp"

#include <fmt/format.h>

namespace narwhal::asgi::errors {

std::string expected_message(std::string_view expected, std::string_view got) {
    return fmt::format("Expected ASGI message '{}', but got '{}'.", expected, got);
}

std::string unexpected_after_complete(std::string_view got) {
    return fmt::format("Unexpected ASGI message '{}' sent, after response already completed.", got);
}

std::string pathsend_not_absolute(std::string_view path) {
    return fmt::format("ASGI 'http.response.pathsend' path must be absolute, got '{}'.", path);
}

std::string pathsend_not_regular_file(std::string_view path) {
    return fmt::format("ASGI 'http.response.pathsend' path is not a regular file: '{}'.", path);
}

}  // namespace narwhal::asgi::errors
