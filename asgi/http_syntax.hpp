// The character rules of HTTP syntax (RFC 9110 5.5, 5.6.2), in one place for every
// parser and validator: the request head scanner, the chunked body reader, the target
// decoder and the check of the app's response headers. One 256-entry table with a bit
// per class, so a check is one load and one AND on the hot path.
//
// config/ may not include this (it is the lowest layer) and keeps its own is_token_char;
// a unit test holds the two to the same 256 answers.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace narwhal::asgi::syntax {

enum CharClass : std::uint8_t {
    tchar = 1,        // token character: method, field name, chunk extension name
    vchar = 2,        // visible character 0x21..0x7E: request-target bytes
    field_value = 4,  // field-value byte: SP, HTAB, VCHAR, obs-text (0x80..0xFF)
};

constexpr std::array<std::uint8_t, 256> make_char_classes() noexcept {
    constexpr std::string_view tchar_symbols = "!#$%&'*+-.^_`|~";
    std::array<std::uint8_t, 256> table{};
    for (int c = 0; c < 256; ++c) {
        const bool alnum =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        const bool visible = c >= 0x21 && c <= 0x7E;
        std::uint8_t bits = 0;
        if (alnum || tchar_symbols.find(static_cast<char>(c)) != std::string_view::npos)
            bits |= tchar;
        if (visible)
            bits |= vchar;
        if (visible || c == ' ' || c == '\t' || c >= 0x80)
            bits |= field_value;
        table[static_cast<std::size_t>(c)] = bits;
    }
    return table;
}

inline constexpr std::array<std::uint8_t, 256> char_classes = make_char_classes();

constexpr bool is_tchar(unsigned char c) noexcept { return (char_classes[c] & tchar) != 0; }
constexpr bool is_tchar(char c) noexcept { return is_tchar(static_cast<unsigned char>(c)); }

constexpr bool is_field_value_char(unsigned char c) noexcept {
    return (char_classes[c] & field_value) != 0;
}
constexpr bool is_field_value_char(char c) noexcept {
    return is_field_value_char(static_cast<unsigned char>(c));
}

// A non-empty run of token characters (a field name, a method).
constexpr bool is_token(std::string_view s) noexcept {
    if (s.empty())
        return false;
    for (char c : s)
        if (!is_tchar(c))
            return false;
    return true;
}

// The value of a hex digit, or -1.
constexpr int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

constexpr char to_lower(char c) noexcept {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c;
}

// ASCII case-insensitive equality, for field names and tokens such as "close".
constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size())
        return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (to_lower(a[i]) != to_lower(b[i]))
            return false;
    return true;
}

}  // namespace narwhal::asgi::syntax
