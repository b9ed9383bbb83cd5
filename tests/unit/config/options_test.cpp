#include "config/error.hpp"
#include "config/options.hpp"

#include "catch.hpp"
#include <fmt/format.h>

#include <fstream>
#include <set>
#include <sstream>

using namespace narwhal::config;
using Catch::Matchers::ContainsSubstring;
using Catch::Matchers::Equals;

namespace {

std::string upper(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
}

std::string dashed(std::string_view key) {
    std::string out(key);
    for (char& c : out)
        if (c == '_')
            c = '-';
    return "--" + out;
}

// The number of members of an aggregate: the most initialisers `T{...}` accepts.
struct any_value {
    template <typename T> operator T() const;
};
template <typename T, typename... Given> constexpr std::size_t field_count() {
    if constexpr (requires { T{Given{}..., any_value{}}; })
        return field_count<T, Given..., any_value>();
    else
        return sizeof...(Given);
}

const Option& opt(std::string_view key) {
    const Option* o = find_by_key(key);
    REQUIRE(o != nullptr);
    return *o;
}

}  // namespace

TEST_CASE("every option names itself consistently in every source", "[config][options]") {
    std::set<std::string_view> keys, flags, envs;
    for (const Option& o : options()) {
        INFO(o.key);
        CHECK(keys.insert(o.key).second);
        CHECK(envs.insert(o.env).second);
        CHECK(o.env == "NARWHAL_" + upper(o.key));
        CHECK(!o.help.empty());
        CHECK(o.set != nullptr);
        CHECK(o.get != nullptr);
        if (o.key == "app") {
            CHECK(o.flag.empty());  // positional
        } else if (o.key == "headers") {
            CHECK(o.flag == "--header");  // uvicorn's singular, repeatable flag
        } else if (o.kind == Kind::list) {
            CHECK(std::string(o.flag) + "s" ==
                  dashed(o.key));  // --reload-dir, uvicorn's reload_dirs
        } else {
            CHECK(o.flag == dashed(o.key));
        }
        if (!o.flag.empty())
            CHECK(flags.insert(o.flag).second);
        if (o.negatable)
            CHECK(o.kind == Kind::flag);
        if (o.kind == Kind::choice)
            CHECK(!o.choices.empty());
        if (o.kind == Kind::integer)
            CHECK(o.min <= o.max);
    }
}

TEST_CASE("the table has the flags narwhal promises", "[config][options]") {
    for (std::string_view flag : {"--host",
                                  "--port",
                                  "--uds",
                                  "--fd",
                                  "--app-dir",
                                  "--factory",
                                  "--root-path",
                                  "--lifespan",
                                  "--loop",
                                  "--interface",
                                  "--log-level",
                                  "--access-log",
                                  "--header",
                                  "--server-header",
                                  "--date-header",
                                  "--env-file",
                                  "--timeout-keep-alive",
                                  "--timeout-graceful-shutdown",
                                  "--backlog",
                                  "--venv",
                                  "--io-threads",
                                  "--limit-request-line",
                                  "--limit-request-head",
                                  "--limit-request-field-size",
                                  "--limit-request-fields",
                                  "--limit-request-body",
                                  "--read-window",
                                  "--send-high-water",
                                  "--send-low-water",
                                  "--inbox-batch",
                                  "--inbox-capacity",
                                  "--log-format"}) {
        INFO(flag);
        CHECK(find_by_flag(flag) != nullptr);
    }
    CHECK(opt("access_log").negatable);
    CHECK(opt("server_header").negatable);
    CHECK(opt("date_header").negatable);
    CHECK_FALSE(opt("factory").negatable);
    std::set<std::string_view> meta;
    for (const MetaOption& m : meta_options())
        meta.insert(m.flag);
    CHECK(meta == std::set<std::string_view>{"--config", "--print-config", "--version", "--help"});
}

TEST_CASE("every Settings field is reachable and set/get round-trips", "[config][options]") {
    Settings defaults;
    for (const Option& o : options()) {
        INFO(o.key);
        Settings s;
        o.set(s, o.get(defaults));
        CHECK(o.get(s) == o.get(defaults));
    }
    // One row per Settings field: a field added without a row fails here.
    CHECK(options().size() == field_count<Settings>());
}

TEST_CASE("choice indexes are the enum values", "[config][options]") {
    Settings s;
    opt("lifespan").set(s, check_choice(opt("lifespan"), "off", "x"));
    CHECK(s.lifespan == LifespanMode::off);
    opt("loop").set(s, check_choice(opt("loop"), "uvloop", "x"));
    CHECK(s.loop == LoopKind::uvloop);
    opt("interface").set(s, check_choice(opt("interface"), "asgi2", "x"));
    CHECK(s.interface == Interface::asgi2);
    opt("log_level").set(s, check_choice(opt("log_level"), "critical", "x"));
    CHECK(s.log_level == LogLevel::critical);
    opt("log_level").set(s, check_choice(opt("log_level"), "trace", "x"));
    CHECK(s.log_level == LogLevel::trace);
    opt("log_format").set(s, check_choice(opt("log_format"), "json", "x"));
    CHECK(s.log_format == LogFormat::json);
    CHECK(format_value(opt("log_level"), opt("log_level").get(Settings{})) == "info");
}

TEST_CASE("parse_text converts each kind", "[config][options]") {
    CHECK(parse_text(opt("port"), "8080", "--port") == Value(std::int64_t{8080}));
    CHECK(parse_text(opt("port"), "0", "--port") == Value(std::int64_t{0}));
    CHECK(parse_text(opt("fd"), "-1", "--fd") == Value(std::int64_t{-1}));
    CHECK(parse_text(opt("limit_request_body"), "10737418240", "x") ==
          Value(std::int64_t{10737418240}));
    CHECK(parse_text(opt("timeout_keep_alive"), "2.5", "x") == Value(2.5));
    CHECK(parse_text(opt("timeout_keep_alive"), "0", "x") == Value(0.0));
    CHECK(parse_text(opt("host"), "0.0.0.0", "x") == Value(std::string("0.0.0.0")));
    CHECK(parse_text(opt("lifespan"), "on", "x") == Value(std::int64_t{1}));
    for (const char* yes : {"1", "true", "TRUE", "yes", "on", "On"})
        CHECK(parse_text(opt("access_log"), yes, "x") == Value(true));
    for (const char* no : {"0", "false", "False", "no", "off"})
        CHECK(parse_text(opt("access_log"), no, "x") == Value(false));
    CHECK(parse_text(opt("headers"), "x-a: 1\nx-b:2\n", "x") ==
          Value(HeaderList{{"x-a", "1"}, {"x-b", "2"}}));
}

TEST_CASE("parse_text errors name the source and what was expected", "[config][options]") {
    CHECK_THROWS_WITH(parse_text(opt("port"), "abc", "--port"),
                      Equals("--port: invalid value 'abc' (expected an integer 0-65535)"));
    CHECK_THROWS_WITH(parse_text(opt("port"), "65536", "NARWHAL_PORT"),
                      Equals("NARWHAL_PORT: invalid value '65536' (expected an integer 0-65535)"));
    CHECK_THROWS_WITH(parse_text(opt("port"), "80 ", "--port"),
                      ContainsSubstring("invalid value '80 '"));
    CHECK_THROWS_WITH(parse_text(opt("port"), "", "--port"), ContainsSubstring("invalid value ''"));
    CHECK_THROWS_WITH(
        parse_text(opt("io_threads"), "65", "--io-threads"),
        Equals("--io-threads: invalid value '65' (expected an integer 0-64 or auto)"));
    CHECK_THROWS_WITH(parse_text(opt("io_threads"), "-1", "--io-threads"),
                      ContainsSubstring("expected an integer 0-64 or auto"));
    CHECK(parse_text(opt("io_threads"), "0", "--io-threads") == Value(std::int64_t{0}));
    CHECK(parse_text(opt("io_threads"), "auto", "--io-threads") ==
          Value(std::int64_t{Settings::io_threads_auto}));
    CHECK_THROWS_WITH(
        parse_text(opt("read_window"), "0", "--read-window"),
        Equals("--read-window: invalid value '0' (expected a positive integer (bytes))"));
    CHECK_THROWS_WITH(parse_text(opt("read_window"), "64k", "--read-window"),
                      ContainsSubstring("invalid value '64k'"));
    CHECK_THROWS_WITH(parse_text(opt("limit_request_body"), "99999999999999999999", "x"),
                      ContainsSubstring("expected a positive integer (bytes)"));
    CHECK_THROWS_WITH(parse_text(opt("fd"), "-2", "--fd"),
                      ContainsSubstring("expected an integer >= -1"));
    CHECK_THROWS_WITH(parse_text(opt("timeout_keep_alive"), "-1", "--timeout-keep-alive"),
                      Equals("--timeout-keep-alive: invalid value '-1' (expected a non-negative "
                             "number of seconds)"));
    CHECK_THROWS_WITH(parse_text(opt("timeout_keep_alive"), "inf", "x"),
                      ContainsSubstring("non-negative number of seconds"));
    CHECK_THROWS_WITH(parse_text(opt("timeout_keep_alive"), "5s", "x"),
                      ContainsSubstring("invalid value '5s'"));
    CHECK_THROWS_WITH(parse_text(opt("lifespan"), "maybe", "--lifespan"),
                      Equals("--lifespan: invalid choice 'maybe' (choose from auto, on, off)"));
    CHECK_THROWS_WITH(
        parse_text(opt("access_log"), "sure", "NARWHAL_ACCESS_LOG"),
        ContainsSubstring("NARWHAL_ACCESS_LOG: invalid value 'sure' (expected a boolean"));
    CHECK_THROWS_AS(parse_text(opt("port"), "x", "y"), ConfigError);
}

TEST_CASE("headers: NAME:VALUE with a token name and no control characters", "[config][options]") {
    CHECK(parse_header("x-a:b", "x") == std::pair<std::string, std::string>{"x-a", "b"});
    CHECK(parse_header("X-Trace:  a:b c \t", "x") ==
          std::pair<std::string, std::string>{"X-Trace", "a:b c"});
    CHECK(parse_header("x-empty:", "x") == std::pair<std::string, std::string>{"x-empty", ""});
    CHECK_THROWS_WITH(parse_header("novalue", "--header"),
                      Equals("--header: invalid header 'novalue' (expected NAME:VALUE)"));
    CHECK_THROWS_WITH(parse_header(":v", "--header"), ContainsSubstring("expected NAME:VALUE"));
    CHECK_THROWS_WITH(parse_header("bad name:v", "--header"),
                      Equals("--header: invalid header name 'bad name' (expected an HTTP token)"));
    CHECK_THROWS_WITH(parse_header("x-a:b\r\nx-evil: 1", "NARWHAL_HEADERS"),
                      ContainsSubstring("NARWHAL_HEADERS: invalid value for header 'x-a'"));
    CHECK_THROWS_WITH(parse_header(std::string("x-a:b\0c", 7), "x"), ContainsSubstring("control"));
    CHECK_THROWS_WITH(parse_text(opt("headers"), "\n\n", "NARWHAL_HEADERS"),
                      ContainsSubstring("NARWHAL_HEADERS: invalid value"));
}

TEST_CASE("closest suggests near misses only", "[config][options]") {
    std::vector<std::string> names{"port", "host", "uds", "timeout_keep_alive"};
    CHECK(closest("prot", names) == "port");
    CHECK(closest("timeout_keepalive", names) == "timeout_keep_alive");
    CHECK(closest("frobnicate", names).empty());
}

TEST_CASE("the read window default is the measured 1 MiB", "[config][options]") {
    // docs/benchmarks.md "Request read window": the default is a measured choice.
    CHECK(Settings{}.read_window == 1024 * 1024);
    CHECK(format_value(opt("read_window"), opt("read_window").get(Settings{})) == "1048576");
}

TEST_CASE("--http and --ws choices are uvicorn's and index their enums", "[config][options]") {
    Settings s;
    opt("http").set(s, check_choice(opt("http"), "httptools", "x"));
    CHECK(s.http == HttpImpl::httptools);
    opt("ws").set(s, check_choice(opt("ws"), "websockets-sansio", "x"));
    CHECK(s.ws == WsImpl::websockets_sansio);
    opt("ws").set(s, check_choice(opt("ws"), "none", "x"));
    CHECK(s.ws == WsImpl::none);
    CHECK(expected(opt("http")) == "one of auto, h11, httptools, zttp");
    CHECK(expected(opt("ws")) == "one of auto, none, websockets, websockets-sansio, wsproto");
}

TEST_CASE("UVICORN_* names: click's prefix plus the key, for shared options only",
          "[config][options]") {
    CHECK(uvicorn_env(opt("port")) == "UVICORN_PORT");
    CHECK(uvicorn_env(opt("headers")) == "UVICORN_HEADERS");
    CHECK(uvicorn_env(opt("ws_per_message_deflate")) == "UVICORN_WS_PER_MESSAGE_DEFLATE");
    CHECK(uvicorn_env(opt("read_window")).empty());  // narwhal's own
    CHECK(uvicorn_env(opt("venv")).empty());
    CHECK(find_by_uvicorn_env("UVICORN_LOG_LEVEL") == &opt("log_level"));
    CHECK(find_by_uvicorn_env("UVICORN_READ_WINDOW") == nullptr);
    CHECK(find_by_uvicorn_env("NARWHAL_PORT") == nullptr);
    CHECK(uvicorn_env_of_flag("--reload-dir") == "UVICORN_RELOAD_DIR");
    CHECK(uvicorn_env_of_flag("--no-use-colors").empty());
    // Every shared option is one uvicorn has: its flag is spelt as uvicorn spells it.
    int shared = 0;
    for (const Option& o : options()) {
        if (uvicorn_env(o).empty())
            continue;
        ++shared;
        INFO(o.key);
        CHECK(find_by_uvicorn_env(uvicorn_env(o)) == &o);
    }
    CHECK(shared == 50);
    CHECK(uvicorn_env(opt("reload_dirs")) == "UVICORN_RELOAD_DIRS");  // click: the parameter
    CHECK(uvicorn_env(opt("workers")) == "UVICORN_WORKERS");
    CHECK(uvicorn_env(opt("reuse_port")).empty());  // uvicorn has no --reuse-port
}

TEST_CASE("an integer with an auto word: --workers N|auto", "[config][options]") {
    const Option& w = opt("workers");
    CHECK(parse_text(w, "auto", "--workers") == Value(std::int64_t{Settings::workers_auto}));
    CHECK(parse_text(w, "4", "--workers") == Value(std::int64_t{4}));
    CHECK(format_value(w, Value(std::int64_t{Settings::workers_auto})) == "auto");
    CHECK(format_value(w, Value(std::int64_t{4})) == "4");
    // The auto number itself is not a value one can give.
    CHECK_THROWS_WITH(parse_text(w, "-1", "--workers"),
                      Equals("--workers: invalid value '-1' (expected an integer 0-1024 or auto)"));
    CHECK_THROWS_WITH(
        parse_text(w, "Auto", "--workers"),
        Equals("--workers: invalid value 'Auto' (expected an integer 0-1024 or auto)"));
    CHECK_THROWS(check_integer(w, Settings::workers_auto, "workers"));
}

TEST_CASE("uvicorn aliases name a setting of the table", "[config][options]") {
    const Option* head = find_by_uvicorn_alias("--h11-max-incomplete-event-size");
    REQUIRE(head != nullptr);
    CHECK(head->key == "limit_request_head");
    CHECK(find_by_flag("--h11-max-incomplete-event-size") == nullptr);  // not listed twice
    CHECK(find_by_uvicorn_alias("--port") == nullptr);
    CHECK(find_by_uvicorn_env("UVICORN_H11_MAX_INCOMPLETE_EVENT_SIZE") == head);
}

TEST_CASE("quote escapes control characters", "[config][options]") {
    CHECK(quote("a b") == "'a b'");
    CHECK(quote("a\nb\x01") == "'a\\nb\\x01'");
}

#ifdef NARWHAL_SOURCE_DIR
TEST_CASE("docs/configuration.md documents every option", "[config][options][docs]") {
    std::ifstream in(std::string(NARWHAL_SOURCE_DIR) + "/docs/configuration.md");
    REQUIRE(in);
    std::stringstream buffer;
    buffer << in.rdbuf();
    const std::string doc = buffer.str();
    auto documented = [&](std::string_view word) {
        // As code, so "--port" does not pass by appearing inside "--port-foo".
        return doc.find(fmt::format("`{}`", word)) != std::string::npos ||
               doc.find(fmt::format("`{} ", word)) != std::string::npos;
    };
    for (const Option& o : options()) {
        INFO(o.key);
        CHECK(documented(o.key));
        CHECK(documented(o.env));
        if (!o.flag.empty())
            CHECK(documented(o.flag));
        if (o.negatable)
            CHECK(documented(fmt::format("--no-{}", o.flag.substr(2))));
    }
    for (const MetaOption& m : meta_options()) {
        INFO(m.flag);
        CHECK(documented(m.flag));
    }
}
#endif
