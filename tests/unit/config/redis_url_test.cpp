#include "config/redis_url.hpp"

#include "catch.hpp"

using namespace narwhal::config;

namespace {

RedisUrl parsed(std::string_view text) {
    std::string error;
    auto url = parse_redis_url(text, error);
    INFO(text << ": " << error);
    REQUIRE(url);
    CHECK(error.empty());
    return *url;
}

std::string rejected(std::string_view text) {
    std::string error;
    auto url = parse_redis_url(text, error);
    INFO(text);
    CHECK_FALSE(url);
    CHECK_FALSE(error.empty());
    return error;
}

}  // namespace

TEST_CASE("redis:// host, port and database", "[config][redis_url]") {
    RedisUrl u = parsed("redis://localhost");
    CHECK(u.host == "localhost");
    CHECK(u.port == 6379);
    CHECK_FALSE(u.unix_socket());
    CHECK(u.password.empty());
    CHECK_FALSE(u.db);

    u = parsed("redis://10.0.0.5:7000/3");
    CHECK(u.host == "10.0.0.5");
    CHECK(u.port == 7000);
    REQUIRE(u.db);
    CHECK(*u.db == 3);

    u = parsed("redis://cache:6380/");  // a trailing slash names no database
    CHECK(u.port == 6380);
    CHECK_FALSE(u.db);

    u = parsed("redis://[::1]:6390/0");
    CHECK(u.host == "::1");
    CHECK(u.port == 6390);
    CHECK(*u.db == 0);
    CHECK(parsed("redis://[::1]").port == 6379);
}

TEST_CASE("redis:// credentials", "[config][redis_url]") {
    RedisUrl u = parsed("redis://:s3cret@h:1");
    CHECK(u.user.empty());
    CHECK(u.password == "s3cret");
    CHECK(u.host == "h");

    u = parsed("redis://app:pw@h");
    CHECK(u.user == "app");
    CHECK(u.password == "pw");

    u = parsed("redis://onlyword@h");
    CHECK(u.user.empty());
    CHECK(u.password == "onlyword");

    // Escapes for the characters that would end the password early.
    u = parsed("redis://:a%40b%3Ac%2Fd%25@h/2");
    CHECK(u.password == "a@b:c/d%");
    CHECK(*u.db == 2);
    // An unescaped '@' belongs to the password: the host starts after the last one.
    CHECK(parsed("redis://:a@b@h").password == "a@b");
}

TEST_CASE("unix:// paths", "[config][redis_url]") {
    RedisUrl u = parsed("unix:///run/redis/redis.sock");
    CHECK(u.unix_socket());
    CHECK(u.path == "/run/redis/redis.sock");
    CHECK(u.host.empty());
}

TEST_CASE("bad Redis URLs say what is wrong", "[config][redis_url]") {
    using Catch::Matchers::ContainsSubstring;
    CHECK_THAT(rejected("localhost:6379"), ContainsSubstring("redis://"));
    CHECK_THAT(rejected("http://h"), ContainsSubstring("redis://"));
    CHECK_THAT(rejected("rediss://h"), ContainsSubstring("TLS"));
    CHECK_THAT(rejected("redis://"), ContainsSubstring("no host"));
    CHECK_THAT(rejected("redis://:pw@"), ContainsSubstring("no host"));
    CHECK_THAT(rejected("redis://h:"), ContainsSubstring("empty port"));
    CHECK_THAT(rejected("redis://h:0"), ContainsSubstring("port"));
    CHECK_THAT(rejected("redis://h:65536"), ContainsSubstring("port"));
    CHECK_THAT(rejected("redis://h:12ab"), ContainsSubstring("port"));
    CHECK_THAT(rejected("redis://h/x"), ContainsSubstring("database"));
    CHECK_THAT(rejected("redis://h/-1"), ContainsSubstring("database"));
    CHECK_THAT(rejected("redis://h/0?timeout=1"), ContainsSubstring("query"));
    CHECK_THAT(rejected("redis://[::1"), ContainsSubstring("]"));
    CHECK_THAT(rejected("redis://[::1]x"), ContainsSubstring("port"));
    CHECK_THAT(rejected("redis://:%zz@h"), ContainsSubstring("escape"));
    CHECK_THAT(rejected("redis://:%4@h"), ContainsSubstring("escape"));
    CHECK_THAT(rejected("redis://user:@h"), ContainsSubstring("password"));
    CHECK_THAT(rejected("unix://"), ContainsSubstring("path"));
    CHECK_THAT(rejected("unix://relative.sock"), ContainsSubstring("path"));
}

TEST_CASE("the displayed URL hides the password", "[config][redis_url]") {
    CHECK(display_redis_url(parsed("redis://:s3cret@h:1/2")) == "redis://:***@h:1/2");
    CHECK(display_redis_url(parsed("redis://app:pw@h")) == "redis://app:***@h:6379");
    CHECK(display_redis_url(parsed("redis://[::1]:7")) == "redis://[::1]:7");
    CHECK(display_redis_url(parsed("unix:///tmp/r.sock")) == "unix:///tmp/r.sock");
}
