// Option values: parsed from text (the command line, the environment, a config file),
// checked against an option's range, and written back for --help and --print-config.
#include "config/options.hpp"

#include "config/error.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <vector>

namespace narwhal::config {
namespace {

[[noreturn]] void invalid(const Option& o, std::string_view text, std::string_view label) {
    throw ConfigError(
        fmt::format("{}: invalid value {} (expected {})", label, quote(text), expected(o)));
}

bool is_tchar(char c) {
    // RFC 9110 token characters.
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

std::string_view trim(std::string_view s, std::string_view ws = " \t") {
    auto b = s.find_first_not_of(ws);
    if (b == std::string_view::npos)
        return {};
    return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

// Headers and lists: one entry per line, so the environment can carry several in one
// variable. Blank lines are skipped; each entry is trimmed.
template <class F> void for_each_entry(std::string_view text, F on_entry) {
    std::size_t start = 0;
    while (start <= text.size()) {
        std::size_t end = std::min(text.find('\n', start), text.size());
        std::string_view line = trim(text.substr(start, end - start), " \t\r");
        if (!line.empty())
            on_entry(line);
        start = end + 1;
    }
}

bool iequals(std::string_view a, std::string_view b) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                      [&](char x, char y) { return lower(x) == lower(y); });
}

// Edits (insert, delete, substitute, swap two neighbours) between a and b: the
// "optimal string alignment" distance, so a transposed pair of letters costs one.
std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
    for (std::size_t i = 0; i <= a.size(); ++i)
        d[i][0] = i;
    for (std::size_t j = 0; j <= b.size(); ++j)
        d[0][j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        for (std::size_t j = 1; j <= b.size(); ++j) {
            std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
        }
    }
    return d[a.size()][b.size()];
}

}  // namespace

bool is_token_char(char c) { return is_tchar(c); }

std::optional<bool> parse_boolean(std::string_view text) {
    // The spellings environment variables use for booleans in the wild.
    for (std::string_view yes : {"1", "true", "yes", "on"})
        if (iequals(text, yes))
            return true;
    for (std::string_view no : {"0", "false", "no", "off"})
        if (iequals(text, no))
            return false;
    return std::nullopt;
}

Value parse_text(const Option& o, std::string_view text, std::string_view label) {
    switch (o.kind) {
    case Kind::string: return std::string(text);
    case Kind::flag:
        if (auto b = parse_boolean(text))
            return *b;
        invalid(o, text, label);
    case Kind::integer: {
        if (!o.auto_word.empty() && text == o.auto_word)
            return o.auto_number;
        std::int64_t n = 0;
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
        if (ec != std::errc() || end != text.data() + text.size() || text.empty())
            invalid(o, text, label);
        if (n < o.min || n > o.max)
            invalid(o, text, label);
        return n;
    }
    case Kind::seconds: {
        double d = 0;
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), d);
        if (ec != std::errc() || end != text.data() + text.size() || text.empty() ||
            !std::isfinite(d) || d < 0 || (o.positive && d == 0))
            invalid(o, text, label);
        return d;
    }
    case Kind::choice: return check_choice(o, text, label);
    case Kind::headers: {
        HeaderList list;
        for_each_entry(text,
                       [&](std::string_view line) { list.push_back(parse_header(line, label)); });
        if (list.empty())
            invalid(o, text, label);
        return list;
    }
    case Kind::list: {
        TextList list;
        for_each_entry(text, [&](std::string_view line) { list.emplace_back(line); });
        if (list.empty())
            invalid(o, text, label);
        return list;
    }
    }
    invalid(o, text, label);
}

Value check_integer(const Option& o, std::int64_t number, std::string_view label) {
    if (number < o.min || number > o.max)
        throw ConfigError(
            fmt::format("{}: invalid value {} (expected {})", label, number, expected(o)));
    return number;
}

Value check_seconds(const Option& o, double seconds, std::string_view label) {
    if (!std::isfinite(seconds) || seconds < 0)
        throw ConfigError(
            fmt::format("{}: invalid value {} (expected {})", label, seconds, expected(o)));
    return seconds;
}

Value check_choice(const Option& o, std::string_view name, std::string_view label) {
    for (std::size_t i = 0; i < o.choices.size(); ++i)
        if (o.choices[i] == name)
            return static_cast<std::int64_t>(i);
    throw ConfigError(fmt::format("{}: invalid choice {} (choose from {})", label, quote(name),
                                  fmt::join(o.choices, ", ")));
}

std::pair<std::string, std::string> parse_header(std::string_view text, std::string_view label) {
    auto colon = text.find(':');
    if (colon == std::string_view::npos || colon == 0)
        throw ConfigError(
            fmt::format("{}: invalid header {} (expected NAME:VALUE)", label, quote(text)));
    std::string_view name = text.substr(0, colon);
    std::string_view value = trim(text.substr(colon + 1));
    if (!std::all_of(name.begin(), name.end(), is_tchar))
        throw ConfigError(
            fmt::format("{}: invalid header name {} (expected an HTTP token)", label, quote(name)));
    // CR and LF would let a header value split the response (header injection).
    for (unsigned char c : value)
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            throw ConfigError(fmt::format(
                "{}: invalid value for header {} (control characters such as CR and LF are not "
                "allowed)",
                label, quote(name)));
    return {std::string(name), std::string(value)};
}

std::string expected(const Option& o) {
    switch (o.kind) {
    case Kind::string: return "a string";
    case Kind::flag: return "a boolean: true/false, 1/0, yes/no or on/off";
    case Kind::integer: {
        std::string_view unit = o.metavar == "BYTES" ? " (bytes)" : "";
        if (!o.auto_word.empty())
            return fmt::format("an integer {}-{} or {}", o.min, o.max, o.auto_word);
        if (o.max == std::numeric_limits<std::int64_t>::max() ||
            o.max == std::numeric_limits<int>::max()) {
            if (o.min == 1)
                return fmt::format("a positive integer{}", unit);
            if (o.min == 0)
                return fmt::format("a non-negative integer{}", unit);
            return fmt::format("an integer >= {}", o.min);
        }
        return fmt::format("an integer {}-{}", o.min, o.max);
    }
    case Kind::seconds:
        return o.positive ? "a positive number of seconds" : "a non-negative number of seconds";
    case Kind::choice: return fmt::format("one of {}", fmt::join(o.choices, ", "));
    case Kind::headers: return "NAME:VALUE";
    case Kind::list: return fmt::format("{} entries", o.metavar);
    }
    return "a value";
}

std::string format_value(const Option& o, const Value& v) {
    switch (o.kind) {
    case Kind::string: return std::get<std::string>(v);
    case Kind::flag: return std::get<bool>(v) ? "true" : "false";
    case Kind::integer: {
        auto n = std::get<std::int64_t>(v);
        return !o.auto_word.empty() && n == o.auto_number ? std::string(o.auto_word)
                                                          : fmt::format("{}", n);
    }
    case Kind::seconds: return fmt::format("{}", std::get<double>(v));
    case Kind::choice: {
        auto i = std::get<std::int64_t>(v);
        return i >= 0 && static_cast<std::size_t>(i) < o.choices.size() ? std::string(o.choices[i])
                                                                        : fmt::format("{}", i);
    }
    case Kind::headers: {
        std::string out;
        for (const auto& [name, value] : std::get<HeaderList>(v))
            out += fmt::format("{}{}:{}", out.empty() ? "" : ", ", name, value);
        return out;
    }
    case Kind::list: return fmt::format("{}", fmt::join(std::get<TextList>(v), ", "));
    }
    return {};
}

std::string quote(std::string_view text) {
    std::string out = "'";
    for (unsigned char c : text) {
        if (c == '\n')
            out += "\\n";
        else if (c == '\r')
            out += "\\r";
        else if (c == '\t')
            out += "\\t";
        else if (c < 0x20 || c == 0x7f)
            out += fmt::format("\\x{:02x}", c);
        else
            out += static_cast<char>(c);
    }
    return out + "'";
}

std::string closest(std::string_view wrong, std::span<const std::string> candidates) {
    // At most a third of the word (and at least one edit): typos, not unrelated names.
    std::size_t best = std::max<std::size_t>(1, wrong.size() / 3) + 1;
    std::string found;
    for (const std::string& c : candidates) {
        std::size_t d = edit_distance(wrong, c);
        if (d < best) {
            best = d;
            found = c;
        }
    }
    return found;
}

}  // namespace narwhal::config
