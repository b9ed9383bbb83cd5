// How a row of the options table (config/options.cpp) is made: one accessor pair per
// Settings field, and one builder per kind of option. Included by that file only.
#pragma once

#include "config/options.hpp"

#include <cstdint>
#include <limits>
#include <span>
#include <string_view>
#include <type_traits>

namespace narwhal::config::rows {

constexpr std::int64_t int64_max = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t int_max = std::numeric_limits<int>::max();

// Accessors, one instantiation per Settings field. The member pointer is a template
// argument so each row holds plain function pointers and the table stays constexpr.
template <auto Member> void set_string(Settings& s, const Value& v) {
    s.*Member = std::get<std::string>(v);
}
template <auto Member> Value get_string(const Settings& s) { return s.*Member; }

template <auto Member> void set_bool(Settings& s, const Value& v) { s.*Member = std::get<bool>(v); }
template <auto Member> Value get_bool(const Settings& s) { return s.*Member; }

// Integers and enums alike: the Value holds the number (for enums, the choice index).
template <auto Member> void set_number(Settings& s, const Value& v) {
    using T = std::remove_reference_t<decltype(s.*Member)>;
    s.*Member = static_cast<T>(std::get<std::int64_t>(v));
}
template <auto Member> Value get_number(const Settings& s) {
    return static_cast<std::int64_t>(s.*Member);
}

template <auto Member> void set_seconds(Settings& s, const Value& v) {
    s.*Member = std::get<double>(v);
}
template <auto Member> Value get_seconds(const Settings& s) { return s.*Member; }

inline void set_headers(Settings& s, const Value& v) { s.headers = std::get<HeaderList>(v); }
inline Value get_headers(const Settings& s) { return s.headers; }

struct Names {
    std::string_view key, flag, env;
};

constexpr Option row(Names n, Kind kind, std::string_view metavar, std::string_view help,
                     void (*set)(Settings&, const Value&), Value (*get)(const Settings&)) {
    Option o;
    o.key = n.key;
    o.flag = n.flag;
    o.env = n.env;
    o.kind = kind;
    o.metavar = metavar;
    o.help = help;
    o.set = set;
    o.get = get;
    return o;
}

template <auto Member>
constexpr Option text(Names n, std::string_view metavar, std::string_view help) {
    return row(n, Kind::string, metavar, help, set_string<Member>, get_string<Member>);
}

template <auto Member> constexpr Option flag(Names n, bool negatable, std::string_view help) {
    Option o = row(n, Kind::flag, "", help, set_bool<Member>, get_bool<Member>);
    o.negatable = negatable;
    return o;
}

// A switch that also takes a boolean, as uvicorn's `type=bool` options do: uvicorn's
// `--ws-per-message-deflate False` and narwhal's bare switch and --no- form all work.
template <auto Member> constexpr Option boolean_flag(Names n, std::string_view help) {
    Option o = flag<Member>(n, true, help);
    o.takes_boolean = true;
    return o;
}

template <auto Member>
constexpr Option integer(Names n, std::string_view metavar, std::int64_t min, std::int64_t max,
                         std::string_view help) {
    Option o = row(n, Kind::integer, metavar, help, set_number<Member>, get_number<Member>);
    o.min = min;
    o.max = max;
    return o;
}

template <auto Member>
constexpr Option integer_or_auto(Names n, std::string_view metavar, std::int64_t min,
                                 std::int64_t max, std::int64_t auto_number,
                                 std::string_view help) {
    Option o = integer<Member>(n, metavar, min, max, help);
    o.auto_word = "auto";
    o.auto_number = auto_number;
    return o;
}

template <auto Member> constexpr Option bytes(Names n, std::string_view help) {
    return integer<Member>(n, "BYTES", 1, int64_max, help);
}

template <auto Member> constexpr Option seconds(Names n, std::string_view help) {
    return row(n, Kind::seconds, "SECONDS", help, set_seconds<Member>, get_seconds<Member>);
}

// A time that 0 cannot stand for: a connect without a limit, a retry without a delay.
template <auto Member> constexpr Option positive_seconds(Names n, std::string_view help) {
    Option o = seconds<Member>(n, help);
    o.positive = true;
    return o;
}

template <auto Member>
constexpr Option choice(Names n, std::span<const std::string_view> choices, std::string_view help) {
    Option o = row(n, Kind::choice, "", help, set_number<Member>, get_number<Member>);
    o.choices = choices;
    return o;
}

template <auto Member> void set_list(Settings& s, const Value& v) {
    s.*Member = std::get<TextList>(v);
}
template <auto Member> Value get_list(const Settings& s) { return s.*Member; }

template <auto Member>
constexpr Option text_list(Names n, std::string_view metavar, std::string_view help) {
    return row(n, Kind::list, metavar, help, set_list<Member>, get_list<Member>);
}

constexpr Option header_list(Names n, std::string_view help) {
    return row(n, Kind::headers, "NAME:VALUE", help, set_headers, get_headers);
}

}  // namespace narwhal::config::rows
