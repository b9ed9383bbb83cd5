#include "asgi/http_syntax.hpp"
#include "config/options.hpp"

#include "catch.hpp"

#include <cctype>
#include <string>
#include <string_view>

namespace syntax = narwhal::asgi::syntax;

namespace {
bool rfc_tchar(int c) {
    // RFC 9110 5.6.2, spelled out independently of the table.
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    for (char s : std::string_view("!#$%&'*+-.^_`|~"))
        if (c == static_cast<unsigned char>(s))
            return true;
    return false;
}
}  // namespace

TEST_CASE("http_syntax: tchar is exactly RFC 9110's token characters", "[asgi][http_syntax]") {
    int count = 0;
    for (int c = 0; c < 256; ++c) {
        INFO("byte " << c);
        CHECK(syntax::is_tchar(static_cast<unsigned char>(c)) == rfc_tchar(c));
        CHECK(syntax::is_tchar(static_cast<char>(c)) == rfc_tchar(c));
        count += rfc_tchar(c) ? 1 : 0;
    }
    CHECK(count == 62 + 15);  // alphanumerics and the 15 symbols
    for (char c : std::string_view("()<>@,;:\\\"/[]?={} \t"))
        CHECK_FALSE(syntax::is_tchar(c));  // the delimiters
}

TEST_CASE("http_syntax: config's token rule agrees on all 256 byte values",
          "[asgi][http_syntax][config]") {
    // config/ may not include asgi/, so it keeps its own copy of the rule.
    for (int c = 0; c < 256; ++c) {
        INFO("byte " << c);
        CHECK(narwhal::config::is_token_char(static_cast<char>(c)) ==
              syntax::is_tchar(static_cast<unsigned char>(c)));
    }
}

TEST_CASE("http_syntax: vchar and field-value characters", "[asgi][http_syntax]") {
    for (int c = 0; c < 256; ++c) {
        INFO("byte " << c);
        const auto u = static_cast<unsigned char>(c);
        const bool visible = c >= 0x21 && c <= 0x7e;
        CHECK(((syntax::char_classes[u] & syntax::vchar) != 0) == visible);
        // SP, HTAB, VCHAR, obs-text; never CR, LF, NUL, other controls or DEL.
        const bool value = visible || c == ' ' || c == '\t' || c >= 0x80;
        CHECK(syntax::is_field_value_char(u) == value);
        CHECK(syntax::is_field_value_char(static_cast<char>(c)) == value);
    }
    CHECK_FALSE(syntax::is_field_value_char('\r'));
    CHECK_FALSE(syntax::is_field_value_char('\n'));
    CHECK_FALSE(syntax::is_field_value_char('\0'));
    CHECK_FALSE(syntax::is_field_value_char('\x7f'));
}

TEST_CASE("http_syntax: is_token", "[asgi][http_syntax]") {
    CHECK(syntax::is_token("content-type"));
    CHECK(syntax::is_token("X-Custom_1!#$%&'*+.^`|~"));
    CHECK_FALSE(syntax::is_token(""));
    CHECK_FALSE(syntax::is_token("bad name"));
    CHECK_FALSE(syntax::is_token("name:"));
    CHECK_FALSE(syntax::is_token("caf\xc3\xa9"));
    CHECK_FALSE(syntax::is_token(std::string_view("a\0b", 3)));
}

TEST_CASE("http_syntax: hex_value", "[asgi][http_syntax]") {
    const std::string digits = "0123456789abcdef";
    for (int i = 0; i < 16; ++i) {
        CHECK(syntax::hex_value(digits[i]) == i);
        CHECK(syntax::hex_value(static_cast<char>(std::toupper(digits[i]))) == i);
    }
    int valid = 0;
    for (int c = 0; c < 256; ++c)
        valid += syntax::hex_value(static_cast<char>(c)) >= 0 ? 1 : 0;
    CHECK(valid == 22);
    CHECK(syntax::hex_value('g') == -1);
    CHECK(syntax::hex_value('G') == -1);
    CHECK(syntax::hex_value('/') == -1);
    CHECK(syntax::hex_value(':') == -1);
    CHECK(syntax::hex_value('\xff') == -1);
    static_assert(syntax::hex_value('F') == 15, "usable in constant expressions");
}

TEST_CASE("http_syntax: to_lower and iequals touch ASCII letters only", "[asgi][http_syntax]") {
    for (int c = 0; c < 256; ++c) {
        const char ch = static_cast<char>(c);
        const char want = (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : ch;
        CHECK(syntax::to_lower(ch) == want);
    }
    CHECK(syntax::iequals("Content-Length", "content-length"));
    CHECK(syntax::iequals("CLOSE", "close"));
    CHECK(syntax::iequals("", ""));
    CHECK_FALSE(syntax::iequals("close", "closed"));
    CHECK_FALSE(syntax::iequals("\xc9", "\xe9"));  // not Latin-1 case folding
}
