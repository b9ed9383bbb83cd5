#include "asgi/errors.hpp"
#include "asgi/response_headers.hpp"

#include "catch.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

using namespace std::string_literals;
using namespace std::string_view_literals;
using narwhal::asgi::Command;
using narwhal::asgi::HeaderFacts;
using narwhal::asgi::HeaderList;
using narwhal::asgi::lists_close;
using narwhal::asgi::parse_content_length;
using narwhal::asgi::ResponseHeaders;
namespace errors = narwhal::asgi::errors;

TEST_CASE("response_headers: valid headers are kept in order, names lowercased",
          "[asgi][response_headers]") {
    ResponseHeaders check;
    CHECK_FALSE(check.add("Content-Type", "text/plain; charset=utf-8"));
    CHECK_FALSE(check.add("X-Custom_1!#$%&'*+.^`|~", "  spaced value\t"));
    CHECK_FALSE(check.add("set-cookie", "a=1"));
    CHECK_FALSE(check.add("SET-COOKIE", "b=2"));  // repeats are fine
    CHECK_FALSE(check.add("x-empty", ""));
    CHECK_FALSE(check.add("x-latin", "caf\xe9 \x01\x7f"));  // only CR, LF, NUL are refused

    Command cmd;
    cmd.headers = {{"stale", "replaced"}};
    check.finish(cmd);
    const HeaderList expected = {
        {"content-type", "text/plain; charset=utf-8"},
        {"x-custom_1!#$%&'*+.^`|~", "  spaced value\t"},
        {"set-cookie", "a=1"},
        {"set-cookie", "b=2"},
        {"x-empty", ""},
        {"x-latin", "caf\xe9 \x01\x7f"},
    };
    CHECK(cmd.headers == expected);
    CHECK_FALSE(cmd.facts.close);
    CHECK_FALSE(cmd.facts.connection);
    CHECK_FALSE(cmd.facts.content_length);
}

TEST_CASE("response_headers: no headers at all still decides the facts",
          "[asgi][response_headers]") {
    ResponseHeaders check;
    Command cmd;
    check.finish(cmd);
    CHECK(cmd.headers.empty());
    CHECK_FALSE(cmd.facts.content_length);
}

TEST_CASE("response_headers: invalid names", "[asgi][response_headers]") {
    for (std::string_view name : {""sv, "bad name"sv, "name:"sv, "a\tb"sv, "caf\xc3\xa9"sv,
                                  "x(y)"sv, "x\r\ny"sv, "\0"sv, "a/b"sv, "a@b"sv}) {
        INFO("name '" << std::string(name) << "'");
        ResponseHeaders check;
        auto error = check.add(name, "v");
        REQUIRE(error);
        CHECK(*error == errors::invalid_header_name);
        CHECK(check.headers().empty());  // nothing kept
    }
}

TEST_CASE("response_headers: CR, LF and NUL in values", "[asgi][response_headers]") {
    for (std::string_view value :
         {"a\rb"sv, "a\nb"sv, "injected\r\nx-evil: 1"sv, std::string_view("a\0b", 3), "\n"sv}) {
        ResponseHeaders check;
        auto error = check.add("x-header", value);
        REQUIRE(error);
        CHECK(*error == errors::invalid_header_value);
        CHECK(check.headers().empty());
    }
}

TEST_CASE("response_headers: Content-Length is decided once", "[asgi][response_headers]") {
    SECTION("one valid value") {
        ResponseHeaders check;
        CHECK_FALSE(check.add("Content-Length", "42"));
        REQUIRE(check.facts().content_length);
        CHECK(*check.facts().content_length == 42);
        CHECK(check.headers() == HeaderList{{"content-length", "42"}});
    }
    SECTION("zero and the largest value") {
        ResponseHeaders zero;
        CHECK_FALSE(zero.add("content-length", "0"));
        CHECK(zero.facts().content_length == std::optional<uint64_t>(0));
        ResponseHeaders big;
        CHECK_FALSE(big.add("content-length", "18446744073709551615"));
        CHECK(big.facts().content_length == std::optional<uint64_t>(18446744073709551615ull));
    }
    SECTION("the same value twice is accepted and sent once") {
        ResponseHeaders check;
        CHECK_FALSE(check.add("content-length", "5"));
        CHECK_FALSE(check.add("Content-Length", " 5"));
        CHECK(check.facts().content_length == std::optional<uint64_t>(5));
        CHECK(check.headers() == HeaderList{{"content-length", "5"}});
    }
    SECTION("two different values are an app error") {
        ResponseHeaders check;
        CHECK_FALSE(check.add("content-length", "5"));
        auto error = check.add("content-length", "6");
        REQUIRE(error);
        CHECK(*error == errors::conflicting_content_length);
        CHECK(check.headers().size() == 1);
    }
    SECTION("invalid values are an app error") {
        for (std::string_view value :
             {""sv, " "sv, "abc"sv, "-1"sv, "+5"sv, "5 5"sv, "5,5"sv, "5, 5"sv, "0x10"sv, "1e3"sv,
              "5."sv, "18446744073709551616"sv, "99999999999999999999999"sv}) {
            INFO("value '" << std::string(value) << "'");
            ResponseHeaders check;
            auto error = check.add("content-length", value);
            REQUIRE(error);
            CHECK(*error == errors::invalid_content_length);
            CHECK_FALSE(check.facts().content_length);
        }
    }
    SECTION("the finished command carries the length") {
        ResponseHeaders check;
        CHECK_FALSE(check.add("content-type", "text/plain"));
        CHECK_FALSE(check.add("content-length", "11"));
        Command cmd{.kind = Command::Kind::start, .status = 200};
        check.finish(cmd);
        CHECK(cmd.facts.content_length == std::optional<uint64_t>(11));
        CHECK(cmd.status == 200);
    }
}

TEST_CASE("response_headers: the error messages are clear", "[asgi][response_headers][errors]") {
    CHECK(errors::invalid_content_length ==
          "Response Content-Length must be a non-negative integer.");
    CHECK(errors::conflicting_content_length == "Response has conflicting Content-Length headers.");
    CHECK(errors::invalid_header_name == "Invalid HTTP header name.");
    CHECK(errors::invalid_header_value == "Invalid HTTP header value.");
}

TEST_CASE("response_headers: connection header", "[asgi][response_headers]") {
    SECTION("close") {
        ResponseHeaders check;
        CHECK_FALSE(check.add("Connection", "Close"));
        CHECK(check.facts().connection);
        CHECK(check.facts().close);
    }
    SECTION("keep-alive is a connection header that does not close") {
        ResponseHeaders check;
        CHECK_FALSE(check.add("connection", "keep-alive"));
        CHECK(check.facts().connection);
        CHECK_FALSE(check.facts().close);
    }
    SECTION("close among other options, in any header") {
        ResponseHeaders check;
        CHECK_FALSE(check.add("connection", "x-foo"));
        CHECK_FALSE(check.facts().close);
        CHECK_FALSE(check.add("connection", "keep-alive , CLOSE"));
        CHECK(check.facts().close);
    }
    SECTION("other headers that mention close do not count") {
        ResponseHeaders check;
        CHECK_FALSE(check.add("x-connection", "close"));
        CHECK_FALSE(check.add("keep-alive", "close"));
        CHECK_FALSE(check.facts().connection);
        CHECK_FALSE(check.facts().close);
    }
}

TEST_CASE("response_headers: parse_content_length", "[asgi][response_headers]") {
    CHECK(parse_content_length("0") == std::optional<uint64_t>(0));
    CHECK(parse_content_length("007") == std::optional<uint64_t>(7));
    CHECK(parse_content_length("\t12 ") == std::optional<uint64_t>(12));
    CHECK_FALSE(parse_content_length(""));
    CHECK_FALSE(parse_content_length("-0"));
    CHECK_FALSE(parse_content_length("1 2"));
    CHECK_FALSE(parse_content_length("18446744073709551616"));
}

TEST_CASE("response_headers: lists_close", "[asgi][response_headers]") {
    CHECK(lists_close("close"));
    CHECK(lists_close("CLOSE"));
    CHECK(lists_close(" close "));
    CHECK(lists_close("upgrade,close"));
    CHECK(lists_close("close, upgrade"));
    CHECK_FALSE(lists_close(""));
    CHECK_FALSE(lists_close("closed"));
    CHECK_FALSE(lists_close("keep-alive"));
    CHECK_FALSE(lists_close("x-close"));
    CHECK_FALSE(lists_close(","));
}
