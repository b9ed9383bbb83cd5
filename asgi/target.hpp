// Splitting an HTTP request-target into the scope's raw_path / query_string and
// percent-decoding the path, in plain C++ (the scope builder turns the bytes into str).
#pragma once

#include <string>
#include <string_view>

namespace narwhal::asgi {

struct TargetParts {
    std::string_view raw_path;      // without the query; absolute-form stripped to its path
    std::string_view query_string;  // after the first '?', without it
};

TargetParts split_target(std::string_view target);

// %XX sequences decoded to bytes; malformed escapes are kept as they are (like Python's
// urllib.parse.unquote). The result may not be valid UTF-8: the caller decodes with
// replacement.
std::string percent_decode(std::string_view path);
// False when `path` has no '%' at all, i.e. decoding would be the identity.
inline bool needs_decoding(std::string_view path) {
    return path.find('%') != std::string_view::npos;
}

}  // namespace narwhal::asgi
