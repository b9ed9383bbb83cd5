#include "config/config_file.hpp"

#include "config/error.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace narwhal::config {
namespace {

std::string read_whole(const std::string& path, std::string_view origin) {
    auto fail = [&](int err) {
        return ConfigError(fmt::format("{}: cannot read config file {}: {}", origin, quote(path),
                                       std::strerror(err)));
    };
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec))
        throw fail(EISDIR);
    errno = 0;
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw fail(errno != 0 ? errno : ENOENT);
    std::ostringstream text;
    text << in.rdbuf();
    return std::move(text).str();
}

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) {
        return static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
    });
    return s;
}

[[noreturn]] void mismatch(const Option& o, const detail::FileValue& v, std::string_view label) {
    throw ConfigError(fmt::format("{}: expected {}, got {}", label, expected(o), v.type));
}

// Types are checked, not coerced: "8000" where port wants a number is an error, so a
// quoting mistake in the file cannot silently mean something else.
Value convert(const Option& o, const detail::FileValue& v, std::string_view label) {
    const auto& value = v.value;
    switch (o.kind) {
    case Kind::string:
        if (auto* s = std::get_if<std::string>(&value))
            return *s;
        break;
    case Kind::flag:
        if (auto* b = std::get_if<bool>(&value))
            return *b;
        break;
    case Kind::integer:
        if (auto* n = std::get_if<std::int64_t>(&value))
            return check_integer(o, *n, label);
        if (auto* s = std::get_if<std::string>(&value); s && !o.auto_word.empty())
            if (*s == o.auto_word)
                return o.auto_number;
        break;
    case Kind::seconds:
        if (auto* n = std::get_if<std::int64_t>(&value))
            return check_seconds(o, static_cast<double>(*n), label);
        if (auto* d = std::get_if<double>(&value))
            return check_seconds(o, *d, label);
        break;
    case Kind::choice:
        if (auto* s = std::get_if<std::string>(&value))
            return check_choice(o, *s, label);
        break;
    case Kind::headers:
        if (auto* list = std::get_if<std::vector<std::string>>(&value)) {
            HeaderList headers;
            for (const std::string& entry : *list)
                headers.push_back(parse_header(entry, label));
            return headers;
        }
        break;
    case Kind::list:
        // An array, or one entry as a plain string (uvicorn's reload_dirs="src").
        if (auto* list = std::get_if<std::vector<std::string>>(&value))
            return *list;
        if (auto* s = std::get_if<std::string>(&value))
            return TextList{*s};
        break;
    }
    mismatch(o, v, label);
}

}  // namespace

std::vector<Assignment> read_config_file(const std::string& path, std::string_view origin) {
    std::string text = read_whole(path, origin);
    std::filesystem::path p(path);
    std::string ext = lower(p.extension().string());
    bool pyproject = p.filename() == "pyproject.toml";

    std::vector<detail::FileEntry> entries;
    if (ext == ".toml")
        entries = detail::parse_toml(text, path, pyproject);
    else if (ext == ".json")
        entries = detail::parse_json(text, path);
    else
        throw ConfigError(
            fmt::format("{}: cannot tell the format of config file {} (use a .toml or .json file)",
                        origin, quote(path)));

    std::string where = pyproject ? path + " [tool.narwhal]" : path;
    std::vector<std::string> keys;
    for (const Option& o : options())
        keys.emplace_back(o.key);

    std::vector<Assignment> out;
    for (const auto& [key, value] : entries) {
        const Option* o = find_by_key(key);
        if (o == nullptr) {
            std::string hint = closest(key, keys);
            throw ConfigError(
                fmt::format("{}: unknown key {}{}", where, quote(key),
                            hint.empty() ? "" : fmt::format(" (did you mean {}?)", quote(hint))));
        }
        std::string label = fmt::format("{}: {}", where, key);
        out.push_back({o, convert(*o, value, label), label});
    }
    return out;
}

}  // namespace narwhal::config
