// Config files: narwhal.toml (flat keys), pyproject.toml ([tool.narwhal]) or a flat
// JSON object. The format readers only turn the file into (key, FileValue) pairs;
// checking keys and types against the option table happens once, here.
#pragma once

#include "config/options.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace narwhal::config {

// `origin` is where the path came from ("--config" or "NARWHAL_CONFIG"), cited when
// the file cannot be read at all.
std::vector<Assignment> read_config_file(const std::string& path, std::string_view origin);

namespace detail {

// A value as the file spells it, before it meets an option's kind. Types that no
// option takes (tables, dates, null, mixed lists) arrive as monostate, with `type`
// saying what they were for the error message.
struct FileValue {
    std::variant<std::monostate, bool, std::int64_t, double, std::string, std::vector<std::string>>
        value;
    std::string type;  // "a string", "an integer", "a table", ...
};

struct FileEntry {
    std::string key;
    FileValue value;
};

// Syntax errors throw ConfigError citing `path` (and line:column where the format has
// one). For pyproject.toml only the [tool.narwhal] table is returned.
std::vector<FileEntry> parse_toml(const std::string& text, const std::string& path, bool pyproject);
std::vector<FileEntry> parse_json(const std::string& text, const std::string& path);

}  // namespace detail
}  // namespace narwhal::config
