// The option table: one row per setting, naming it in every source (config key,
// CLI flag, environment variable) with its kind, help and accessors into Settings.
// The CLI parser, the environment and file loaders, --help, --print-config and
// docs/configuration.md all follow this one table, so a setting cannot exist in one
// place and be missing from another.
#pragma once

#include "config/settings.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace narwhal::config {

enum class Kind {
    string,   // any text
    flag,     // boolean; on the CLI a bare --x (and --no-x when negatable)
    integer,  // whole number within [min, max]; sizes are integers in bytes
    seconds,  // non-negative, finite, fractional seconds
    choice,   // one of `choices`; the Value is the index, equal to the enum's value
    headers,  // "name:value" entries; repeatable on the CLI
    list,     // text entries (paths, globs); repeatable on the CLI
};

using HeaderList = std::vector<std::pair<std::string, std::string>>;
using TextList = std::vector<std::string>;

// A setting's value between a source and Settings. The alternative follows the kind:
// flag -> bool, integer and choice -> int64_t, seconds -> double, string -> string,
// headers -> HeaderList, list -> TextList.
using Value = std::variant<bool, std::int64_t, double, std::string, HeaderList, TextList>;

struct Option {
    std::string_view key;   // config-file key, snake_case; the Settings field name
    std::string_view flag;  // "--timeout-keep-alive"; empty for the positional APP
    std::string_view env;   // "NARWHAL_TIMEOUT_KEEP_ALIVE"
    Kind kind = Kind::string;
    std::string_view metavar;  // placeholder in --help ("PATH", "BYTES", ...)
    std::string_view help;
    std::int64_t min = 0;  // integer range, inclusive
    std::int64_t max = 0;
    std::span<const std::string_view> choices = {};
    bool negatable = false;  // flags only: --no-<name> sets false
    // Flags only: also takes a boolean, `--x false` or `--x=false`, as the uvicorn options
    // declared `type=bool` do (--ws-per-message-deflate); bare, it still means true.
    bool takes_boolean = false;
    bool positive = false;  // seconds only: 0 is refused (a time that cannot be "none")
    // Integers only: a word that stands for a computed value (--workers auto), stored as
    // auto_number, which lies outside [min, max] so that it cannot be given as a number.
    std::string_view auto_word = {};
    std::int64_t auto_number = 0;
    void (*set)(Settings&, const Value&) = nullptr;
    Value (*get)(const Settings&) = nullptr;
};

// Flags that steer the loader rather than set a setting.
struct MetaOption {
    std::string_view flag;
    std::string_view metavar;  // empty: takes no value
    std::string_view help;
};

// One value from one source, kept with the label that error messages cite.
struct Assignment {
    const Option* option = nullptr;
    Value value;
    std::string source;  // "--port", "NARWHAL_PORT", "narwhal.toml: port"
};

std::span<const Option> options();
std::span<const MetaOption> meta_options();

const Option* find_by_key(std::string_view key);
const Option* find_by_flag(std::string_view flag);  // exact match; "--no-x" is not found
const Option* find_by_env(std::string_view name);
// uvicorn's environment variable for an option it shares with narwhal, "UVICORN_PORT"
// (click's auto_envvar_prefix: UVICORN_ and the parameter name); empty for narwhal's own.
std::string uvicorn_env(const Option& option);
const Option* find_by_uvicorn_env(std::string_view name);  // aliases' variables too
// The setting a uvicorn flag of another name stands for: --h11-max-incomplete-event-size
// is --limit-request-head. Null for other flags.
inline constexpr std::string_view h11_max_incomplete_event_size = "--h11-max-incomplete-event-size";
const Option* find_by_uvicorn_alias(std::string_view flag);
// "--reload-dir" -> "UVICORN_RELOAD_DIR": the variable of a uvicorn flag narwhal lacks.
std::string uvicorn_env_of_flag(std::string_view flag);

// Conversions shared by every source. `label` names the source and starts each error
// message: "--port: invalid value 'abc' (expected an integer 0-65535)".
Value parse_text(const Option& option, std::string_view text, std::string_view label);
// true/false for the spellings of a boolean (1/0, true/false, yes/no, on/off, any case).
std::optional<bool> parse_boolean(std::string_view text);
Value check_integer(const Option& option, std::int64_t number, std::string_view label);
Value check_seconds(const Option& option, double seconds, std::string_view label);
Value check_choice(const Option& option, std::string_view name, std::string_view label);
// RFC 9110 token character (header names). The same rule as asgi/http_syntax.hpp, which
// config/ may not include; a unit test checks that the two agree on every byte.
bool is_token_char(char c);
// One "name:value" entry: the name must be an HTTP token, the value free of CR, LF and
// other control characters; whitespace around the value is dropped.
std::pair<std::string, std::string> parse_header(std::string_view text, std::string_view label);

std::string expected(const Option& option);  // "an integer 0-65535", "one of auto, on, off"
std::string format_value(const Option& option, const Value& value);  // for --help and docs
std::string quote(std::string_view text);  // 'text', control characters escaped
// The candidate closest to a misspelt name, if it is close enough to be the likely
// intent; else empty. For "did you mean" hints.
std::string closest(std::string_view wrong, std::span<const std::string> candidates);

}  // namespace narwhal::config
