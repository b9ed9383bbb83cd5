#include "asgi/target.hpp"

#include "catch.hpp"

#include <string>
#include <string_view>

using namespace std::string_literals;
using namespace std::string_view_literals;
using narwhal::asgi::needs_decoding;
using narwhal::asgi::percent_decode;
using narwhal::asgi::split_target;

namespace {

void check_split(std::string_view target, std::string_view path, std::string_view query) {
    INFO("target: " << target);
    auto parts = split_target(target);
    CHECK(parts.raw_path == path);
    CHECK(parts.query_string == query);
}

}  // namespace

TEST_CASE("target: origin-form with and without a query", "[asgi][target]") {
    check_split("/", "/", "");
    check_split("/a/b", "/a/b", "");
    check_split("/a/b?x=1&y=2", "/a/b", "x=1&y=2");
    // Only the first '?' splits; the rest belongs to the query.
    check_split("/a?x=?&y=a?b", "/a", "x=?&y=a?b");
    // A trailing "?" gives an empty query string.
    check_split("/a?", "/a", "");
    check_split("?q=1", "", "q=1");
    // Percent escapes are not decoded here.
    check_split("/a%20b?c%3Dd", "/a%20b", "c%3Dd");
    // A scheme-like string in the query is left alone.
    check_split("/r?next=http://example.com/x", "/r", "next=http://example.com/x");
}

TEST_CASE("target: views point into the input", "[asgi][target]") {
    std::string target = "/path?query";
    auto parts = split_target(target);
    CHECK(parts.raw_path.data() == target.data());
    CHECK(parts.query_string.data() == target.data() + 6);
}

TEST_CASE("target: absolute-form is stripped to its path", "[asgi][target]") {
    check_split("http://example.com:8080/p?q", "/p", "q");
    check_split("http://example.com/a/b/c", "/a/b/c", "");
    check_split("https://user@host/x?y=1", "/x", "y=1");
    check_split("http://example.com:8080", "/", "");
    check_split("http://example.com", "/", "");
    check_split("http://example.com?q=1", "/", "q=1");
    check_split("http://example.com/", "/", "");
}

TEST_CASE("target: asterisk-form and authority-form are kept", "[asgi][target]") {
    check_split("*", "*", "");
    check_split("example.com:443", "example.com:443", "");
}

TEST_CASE("target: percent_decode decodes valid escapes", "[asgi][target]") {
    CHECK(percent_decode("/a%20b") == "/a b");
    CHECK(percent_decode("%41%42%43") == "ABC");
    CHECK(percent_decode("%2f") == "/");
    CHECK(percent_decode("%2F") == "/");
    CHECK(percent_decode("%aB%Ab") == "\xab\xab");
    CHECK(percent_decode("%C3%A9") == "\xc3\xa9");
    CHECK(percent_decode("%ff") == "\xff");
    CHECK(percent_decode("%25") == "%");
    // A decoded '%' is not decoded again.
    CHECK(percent_decode("%2541") == "%41");
    CHECK(percent_decode("/plain/path") == "/plain/path");
    CHECK(percent_decode("") == "");
}

TEST_CASE("target: percent_decode keeps %00 as a NUL byte", "[asgi][target]") {
    const std::string out = percent_decode("a%00b");
    CHECK(out.size() == 3);
    CHECK(out == "a\0b"s);
}

TEST_CASE("target: percent_decode keeps malformed escapes", "[asgi][target]") {
    CHECK(percent_decode("%") == "%");
    CHECK(percent_decode("/a%") == "/a%");
    CHECK(percent_decode("%4") == "%4");
    CHECK(percent_decode("/a%4") == "/a%4");
    CHECK(percent_decode("%zz") == "%zz");
    CHECK(percent_decode("%G1") == "%G1");
    CHECK(percent_decode("%1G") == "%1G");
    CHECK(percent_decode("%-1") == "%-1");
    CHECK(percent_decode("% 1") == "% 1");
    // A malformed '%' does not swallow a valid escape that follows it.
    CHECK(percent_decode("%%41") == "%A");
    CHECK(percent_decode("%4%41") == "%4A");
    CHECK(percent_decode("100%") == "100%");
    CHECK(percent_decode("%%%") == "%%%");
}

TEST_CASE("target: needs_decoding is true exactly when there is a '%'", "[asgi][target]") {
    CHECK(needs_decoding("/a%20b"));
    CHECK(needs_decoding("%"));
    CHECK(needs_decoding("/a%zz"));  // malformed, but still has to go through the decoder
    CHECK_FALSE(needs_decoding("/a/b"));
    CHECK_FALSE(needs_decoding(""));
    // Without '%' decoding is the identity.
    for (std::string_view p : {"/"sv, "/a+b"sv, "/caf\xc3\xa9"sv, "/a b?c"sv}) {
        CHECK_FALSE(needs_decoding(p));
        CHECK(percent_decode(p) == p);
    }
}
