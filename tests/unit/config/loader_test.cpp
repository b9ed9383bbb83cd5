#include "config/loader.hpp"

#include "config/options.hpp"
#include "config_test_util.hpp"

#include "catch.hpp"

#include <algorithm>
#include <cstdlib>

using namespace narwhal::config;
using namespace narwhal::config::test;
using Catch::Matchers::ContainsSubstring;
using Catch::Matchers::Equals;
using Catch::Matchers::StartsWith;

TEST_CASE("defaults: only APP given", "[config][loader]") {
    Loaded l = load_args({"main:app"});
    CHECK(l.action == Action::run);
    CHECK(l.warnings.empty());
    Settings expected;
    expected.app = "main:app";
    CHECK(same_settings(l.settings, expected));
    CHECK(l.settings.host == "127.0.0.1");
    CHECK(l.settings.port == 8000);
}

TEST_CASE("actions", "[config][loader]") {
    CHECK(load_args({"--help"}).action == Action::help);
    CHECK(load_args({"--version"}).action == Action::version);
    // --help and --version answer even beside options that would fail.
    CHECK(load_args({"--port", "abc", "--help"}).action == Action::help);
    CHECK(load_args({"--frobnicate", "--version"}).action == Action::version);
    CHECK(load_args({"--version", "--help"}).action == Action::help);
    // --print-config needs no APP but still validates.
    Loaded p = load_args({"--print-config", "--port", "9000"});
    CHECK(p.action == Action::print_config);
    CHECK(p.settings.port == 9000);
    CHECK_THROWS_WITH(load_args({"--print-config", "--port", "x"}), StartsWith("--port:"));
    CHECK_THROWS_WITH(load_args({}), Equals("missing argument APP ('module:attribute')"));
    CHECK_THROWS_WITH(load_args({"--help=1"}),
                      ContainsSubstring("--help: option does not take a value"));
}

TEST_CASE("CLI: --flag value and --flag=value", "[config][loader]") {
    Loaded a =
        load_args({"main:app", "--port", "9001", "--host=0.0.0.0",
                   "--root-path=", "--timeout-keep-alive=2.5", "--lifespan", "off",
                   "--log-level=debug", "--limit-request-body", "1048576", "--fd=-1", "--fd", "3"});
    CHECK(a.settings.port == 9001);
    CHECK(a.settings.host == "0.0.0.0");
    CHECK(a.settings.root_path.empty());
    CHECK(a.settings.timeout_keep_alive == 2.5);
    CHECK(a.settings.lifespan == LifespanMode::off);
    CHECK(a.settings.log_level == LogLevel::debug);
    CHECK(a.settings.limit_request_body == 1048576u);
    CHECK(a.settings.fd == 3);  // the last repeat wins
    // APP may come anywhere, and after "--" even when it looks like an option.
    CHECK(load_args({"--port", "1", "pkg.mod:app"}).settings.app == "pkg.mod:app");
    CHECK(load_args({"--", "-weird:app"}).settings.app == "-weird:app");
    CHECK(load_args({"--root-path", "-x", "m:a"}).settings.root_path == "-x");
}

TEST_CASE("CLI: booleans take no value; negations where listed", "[config][loader]") {
    Loaded a = load_args(
        {"m:a", "--factory", "--no-access-log", "--no-server-header", "--no-date-header"});
    CHECK(a.settings.factory);
    CHECK_FALSE(a.settings.access_log);
    CHECK_FALSE(a.settings.server_header);
    CHECK_FALSE(a.settings.date_header);
    Loaded b = load_args({"m:a", "--no-access-log", "--access-log"});
    CHECK(b.settings.access_log);
    CHECK_THROWS_WITH(load_args({"m:a", "--factory=true"}),
                      Equals("--factory: option does not take a value"));
    CHECK_THROWS_WITH(load_args({"m:a", "--no-access-log=1"}),
                      Equals("--no-access-log: option does not take a value"));
    CHECK_THROWS_WITH(load_args({"m:a", "--no-factory"}),
                      StartsWith("no such option: --no-factory"));
}

TEST_CASE("CLI: --ws-per-message-deflate takes uvicorn's boolean value too", "[config][loader]") {
    auto deflate = [](std::initializer_list<const char*> args) {
        return load_args(args).settings.ws_per_message_deflate;
    };
    CHECK_FALSE(deflate({"m:a", "--ws-per-message-deflate", "False"}));  // uvicorn's spelling
    CHECK_FALSE(deflate({"m:a", "--ws-per-message-deflate=0"}));
    CHECK(deflate({"--no-ws-per-message-deflate", "--ws-per-message-deflate", "true", "m:a"}));
    CHECK_FALSE(deflate({"--no-ws-per-message-deflate", "m:a"}));
    // Bare, before the APP or another option, it is the switch it was.
    CHECK(deflate({"--no-ws-per-message-deflate", "--ws-per-message-deflate", "m:a"}));
    Loaded a = load_args({"--ws-per-message-deflate", "--port", "9", "m:a"});
    CHECK(a.settings.ws_per_message_deflate);
    CHECK(a.settings.port == 9);
    CHECK_THROWS_WITH(load_args({"m:a", "--ws-per-message-deflate=maybe"}),
                      ContainsSubstring("--ws-per-message-deflate: invalid value 'maybe'"));
}

TEST_CASE("--reload and its repeatable lists", "[config][loader]") {
    Loaded a =
        load_args({"m:a", "--reload", "--reload-dir", "src", "--reload-dir=lib", "--reload-include",
                   "*.html", "--reload-exclude", "test_*.py", "--reload-delay", "0.5"});
    CHECK(a.settings.reload);
    CHECK(a.settings.reload_dirs == TextList{"src", "lib"});
    CHECK(a.settings.reload_includes == TextList{"*.html"});
    CHECK(a.settings.reload_excludes == TextList{"test_*.py"});
    CHECK(a.settings.reload_delay == 0.5);
    Loaded defaults = load_args({"m:a"});
    CHECK_FALSE(defaults.settings.reload);
    CHECK(defaults.settings.reload_dirs.empty());
    CHECK(defaults.settings.reload_delay == 0.25);
    // uvicorn's variables: click splits a repeatable option's value on whitespace.
    Loaded env = load_args({"m:a"}, {"UVICORN_RELOAD=true", "UVICORN_RELOAD_DIRS=src lib",
                                     "NARWHAL_RELOAD_INCLUDES=*.html\n*.css"});
    CHECK(env.settings.reload);
    CHECK(env.settings.reload_dirs == TextList{"src", "lib"});
    CHECK(env.settings.reload_includes == TextList{"*.html", "*.css"});
    CHECK(env.warnings.empty());
    // In a file: an array, or one entry as a string; --print-config writes arrays back.
    ScratchDir dir;
    std::string file = dir.write("r.toml", "reload = true\nreload_dirs = [\"src\", \"lib\"]\n"
                                           "reload_excludes = \"venv\"\n");
    Loaded f = load_args({"m:a", "--config", file.c_str()});
    CHECK(f.settings.reload_dirs == TextList{"src", "lib"});
    CHECK(f.settings.reload_excludes == TextList{"venv"});
    CHECK_THAT(render_toml(f.settings), ContainsSubstring("reload_dirs = [\"src\", \"lib\"]"));
    std::string bad = dir.write("bad.toml", "reload_dirs = 3\n");
    CHECK_THROWS_WITH(load_args({"m:a", "--config", bad.c_str()}),
                      ContainsSubstring("reload_dirs: expected PATH entries"));
}

TEST_CASE("CLI: repeated --header adds up", "[config][loader]") {
    Loaded a =
        load_args({"m:a", "--header", "x-a:1", "--header=X-B: two words", "--header", "x-c:"});
    CHECK(a.settings.headers == HeaderList{{"x-a", "1"}, {"X-B", "two words"}, {"x-c", ""}});
}

TEST_CASE("CLI errors name the option", "[config][loader]") {
    CHECK_THROWS_WITH(load_args({"m:a", "--port", "abc"}),
                      Equals("--port: invalid value 'abc' (expected an integer 0-65535)"));
    CHECK_THROWS_WITH(load_args({"m:a", "--port=70000"}),
                      Equals("--port: invalid value '70000' (expected an integer 0-65535)"));
    CHECK_THROWS_WITH(load_args({"m:a", "--frobnicate"}), Equals("no such option: --frobnicate"));
    CHECK_THROWS_WITH(load_args({"m:a", "--prot", "1"}),
                      Equals("no such option: --prot (did you mean --port?)"));
    CHECK_THROWS_WITH(load_args({"m:a", "-p", "1"}), Equals("no such option: -p"));
    CHECK_THROWS_WITH(load_args({"m:a", "--workers", "-1"}),
                      Equals("--workers: invalid value '-1' (expected an integer 0-1024 or auto)"));
    CHECK_THROWS_WITH(load_args({"m:a", "--lifespan", "maybe"}),
                      Equals("--lifespan: invalid choice 'maybe' (choose from auto, on, off)"));
    CHECK_THROWS_WITH(load_args({"m:a", "--port"}), Equals("--port: option requires a value"));
    CHECK_THROWS_WITH(load_args({"m:a", "--root-path", "--port", "1"}),
                      Equals("--root-path: option requires a value"));
    CHECK_THROWS_WITH(load_args({"m:a", "other:app"}),
                      Equals("got unexpected extra argument 'other:app'"));
    CHECK_THROWS_WITH(load_args({"m:a", "--header", "nocolon"}),
                      Equals("--header: invalid header 'nocolon' (expected NAME:VALUE)"));
    CHECK_THROWS_WITH(load_args({"main"}),
                      Equals("APP: invalid value 'main' (expected 'module:attribute')"));
    CHECK_THROWS_WITH(load_args({"main:"}), ContainsSubstring("expected 'module:attribute'"));
    CHECK_THROWS_WITH(load_args({"m:a", "--config="}), Equals("--config: option requires a value"));
}

TEST_CASE("uvicorn's --http and --ws are accepted and explained", "[config][loader]") {
    Loaded a = load_args({"m:a", "--http", "httptools", "--ws=wsproto"});
    CHECK(a.settings.http == HttpImpl::httptools);
    CHECK(a.settings.ws == WsImpl::wsproto);
    CHECK(a.warnings.empty());
    REQUIRE(a.notes.size() == 2);
    CHECK(a.notes[0] == "--http httptools: served by narwhal's own HTTP/1.1 implementation");
    CHECK(a.notes[1] == "--ws wsproto: served by narwhal's own WebSocket implementation");
    CHECK(load_args({"m:a", "--ws", "websockets-sansio"}).settings.ws == WsImpl::websockets_sansio);
    // Defaults say nothing.
    CHECK(load_args({"m:a"}).notes.empty());
    // none turns WebSocket off, and says what that means.
    Loaded none = load_args({"m:a", "--ws", "none"});
    CHECK(none.settings.ws == WsImpl::none);
    CHECK(none.warnings.empty());
    REQUIRE(none.notes.size() == 1);
    CHECK_THAT(none.notes[0], StartsWith("--ws none: WebSocket is off; upgrade requests are "
                                         "served as plain HTTP requests"));
    // uvicorn's choices in uvicorn's order.
    CHECK_THROWS_WITH(
        load_args({"m:a", "--http", "h3"}),
        Equals("--http: invalid choice 'h3' (choose from auto, h11, httptools, zttp)"));
    CHECK_THROWS_WITH(load_args({"m:a", "--ws", "yes"}),
                      Equals("--ws: invalid choice 'yes' (choose from auto, none, websockets, "
                             "websockets-sansio, wsproto)"));
}

TEST_CASE("environment: UVICORN_* below NARWHAL_* below the CLI", "[config][loader]") {
    Loaded a = load_args({"m:a"}, {"UVICORN_PORT=9200", "UVICORN_HOST=0.0.0.0",
                                   "UVICORN_LOG_LEVEL=debug", "UVICORN_ACCESS_LOG=false",
                                   "UVICORN_HEADERS=x-a:1 x-b:2", "UVICORN_WS=wsproto"});
    CHECK(a.settings.port == 9200);
    CHECK(a.settings.host == "0.0.0.0");
    CHECK(a.settings.log_level == LogLevel::debug);
    CHECK_FALSE(a.settings.access_log);
    CHECK(a.settings.headers == HeaderList{{"x-a", "1"}, {"x-b", "2"}});  // click splits on spaces
    CHECK(a.warnings.empty());
    CHECK(std::find(a.notes.begin(), a.notes.end(), "UVICORN_PORT: honoured as --port") !=
          a.notes.end());
    CHECK(std::find(a.notes.begin(), a.notes.end(),
                    "UVICORN_WS wsproto: served by narwhal's own WebSocket implementation") !=
          a.notes.end());

    Loaded b = load_args({"m:a", "--host", "::1"},
                         {"UVICORN_PORT=9200", "NARWHAL_PORT=9300", "UVICORN_HOST=0.0.0.0"});
    CHECK(b.settings.port == 9300);
    CHECK(b.settings.host == "::1");
    CHECK(b.notes ==
          std::vector<std::string>{"UVICORN_PORT: ignored, NARWHAL_PORT takes precedence",
                                   "UVICORN_HOST: ignored, --host takes precedence"});
    // UVICORN_APP is uvicorn's variable for the positional argument.
    CHECK(load_args({}, {"UVICORN_APP=env:app"}).settings.app == "env:app");
    CHECK(load_args({}, {"UVICORN_APP=env:app"}).notes[0] == "UVICORN_APP: honoured as APP");
    // Empty is unset; errors name the variable.
    CHECK(load_args({"m:a"}, {"UVICORN_PORT="}).settings.port == 8000);
    CHECK_THROWS_WITH(load_args({"m:a"}, {"UVICORN_PORT=abc"}),
                      Equals("UVICORN_PORT: invalid value 'abc' (expected an integer 0-65535)"));
    // narwhal's own options have no UVICORN_ name; unknown UVICORN_ names are not ours.
    Loaded c = load_args({"m:a"}, {"UVICORN_READ_WINDOW=1", "UVICORN_SOMETHING=1"});
    CHECK(c.settings.read_window == Settings{}.read_window);
    CHECK(c.warnings.empty());
    CHECK(c.notes.empty());
}

TEST_CASE("uvicorn's --h11-max-incomplete-event-size is --limit-request-head", "[config][loader]") {
    CHECK(load_args({"m:a", "--h11-max-incomplete-event-size", "65536"})
              .settings.limit_request_head == 65536);
    CHECK(load_args({"m:a", "--h11-max-incomplete-event-size=4096"}).settings.limit_request_head ==
          4096);
    // One setting under two names: the last one given wins, as for a repeated flag.
    CHECK(load_args(
              {"m:a", "--limit-request-head", "1000", "--h11-max-incomplete-event-size", "2000"})
              .settings.limit_request_head == 2000);
    Loaded env = load_args({"m:a"}, {"UVICORN_H11_MAX_INCOMPLETE_EVENT_SIZE=20000"});
    CHECK(env.settings.limit_request_head == 20000);
    CHECK(env.warnings.empty());
    CHECK(load_args({"m:a"}, {"UVICORN_H11_MAX_INCOMPLETE_EVENT_SIZE=20000",
                              "NARWHAL_LIMIT_REQUEST_HEAD=30000"})
              .settings.limit_request_head == 30000);  // NARWHAL_* above UVICORN_*
    // h11 bounds the whole head only: one field or the request line may use all of it.
    Settings big = load_args({"m:a", "--h11-max-incomplete-event-size", "65536"}).settings;
    CHECK(big.limit_request_field_size == 65536);
    CHECK(big.limit_request_line == 65536);
    Settings set = load_args({"m:a", "--h11-max-incomplete-event-size", "65536",
                              "--limit-request-field-size", "9000"})
                       .settings;
    CHECK(set.limit_request_field_size == 9000);  // set itself: kept
    Settings small = load_args({"m:a", "--h11-max-incomplete-event-size", "4096"}).settings;
    CHECK(small.limit_request_field_size == Settings{}.limit_request_field_size);
    CHECK(load_args({"m:a"}, {"UVICORN_H11_MAX_INCOMPLETE_EVENT_SIZE=20000"})
              .settings.limit_request_field_size == 20000);
    CHECK(load_args({"m:a", "--limit-request-head", "65536"}).settings.limit_request_field_size ==
          Settings{}.limit_request_field_size);  // narwhal's own flag: the limits stay apart
    CHECK_THROWS_WITH(load_args({"m:a", "--h11-max-incomplete-event-size", "0"}),
                      StartsWith("--h11-max-incomplete-event-size: invalid value '0'"));
}

TEST_CASE("interpreters: 1 to 16, the loops a worker's slot tracks", "[config][loader]") {
    CHECK(load_args({"m:a"}).settings.interpreters == 1);
    CHECK(load_args({"m:a", "--interpreters", "16"}).settings.interpreters == 16);
    CHECK(load_args({"m:a"}, {"NARWHAL_INTERPRETERS=2"}).settings.interpreters == 2);
    CHECK_THROWS_WITH(load_args({"m:a", "--interpreters", "17"}),
                      ContainsSubstring("--interpreters: invalid value '17'"));
    CHECK_THROWS_WITH(load_args({"m:a", "--interpreters", "0"}),
                      ContainsSubstring("--interpreters: invalid value '0'"));
}

TEST_CASE("workers: --workers N|auto, WEB_CONCURRENCY as its default", "[config][loader]") {
    CHECK(load_args({"m:a"}).settings.workers == 0);
    CHECK(load_args({"m:a", "--workers", "3"}).settings.workers == 3);
    CHECK(load_args({"m:a", "--workers", "auto"}).settings.workers == Settings::workers_auto);
    CHECK(load_args({"m:a", "--workers=0"}).settings.workers == 0);
    // WEB_CONCURRENCY is uvicorn's default for --workers: honoured, and said so once.
    Loaded b = load_args({"m:a"}, {"WEB_CONCURRENCY=3"});
    CHECK(b.settings.workers == 3);
    CHECK(b.warnings.empty());
    REQUIRE(b.notes.size() == 1);
    CHECK(b.notes[0] == "WEB_CONCURRENCY=3: honoured as --workers");
    CHECK(load_args({"m:a"}, {"WEB_CONCURRENCY=auto"}).settings.workers == Settings::workers_auto);
    // Every other source wins over it, UVICORN_WORKERS included.
    Loaded c = load_args({"m:a", "--workers", "2"}, {"WEB_CONCURRENCY=3"});
    CHECK(c.settings.workers == 2);
    REQUIRE(c.notes.size() == 1);
    CHECK(c.notes[0] == "WEB_CONCURRENCY: ignored, --workers takes precedence");
    Loaded d = load_args({"m:a"}, {"WEB_CONCURRENCY=3", "UVICORN_WORKERS=4"});
    CHECK(d.settings.workers == 4);
    CHECK_THROWS_WITH(load_args({"m:a"}, {"WEB_CONCURRENCY=many"}),
                      StartsWith("WEB_CONCURRENCY: invalid value 'many'"));
    // --reuse-port only means something for TCP under a master.
    Loaded e = load_args({"m:a", "--reuse-port"});
    REQUIRE(e.warnings.size() == 1);
    CHECK(e.warnings[0] == "--reuse-port: ignored, it applies to TCP listeners under --workers");
    CHECK(load_args({"m:a", "--reuse-port", "--workers", "2"}).warnings.empty());
    // In a file, auto is a string and a count a number; WEB_CONCURRENCY ranks below it.
    ScratchDir dir;
    std::string file = dir.write("w.toml", "workers = \"auto\"\n");
    Loaded f = load_args({"m:a", "--config", file.c_str()}, {"WEB_CONCURRENCY=3"});
    CHECK(f.settings.workers == Settings::workers_auto);
    REQUIRE(f.notes.size() == 1);
    CHECK_THAT(f.notes[0], StartsWith("WEB_CONCURRENCY: ignored, " + file + ": workers"));
    std::string bad = dir.write("bad.toml", "workers = \"many\"\n");
    CHECK_THROWS_WITH(load_args({"m:a", "--config", bad.c_str()}),
                      ContainsSubstring("expected an integer 0-1024 or auto"));
}

TEST_CASE("proxies: --forwarded-allow-ips checked, FORWARDED_ALLOW_IPS as its default",
          "[config][loader]") {
    Settings defaults = load_args({"m:a"}).settings;
    CHECK(defaults.proxy_headers);
    CHECK(defaults.forwarded_allow_ips == "127.0.0.1,::1");  // uvicorn's
    CHECK(defaults.proxy_protocol == Settings::ProxyProtocol::off);
    CHECK_FALSE(load_args({"m:a", "--no-proxy-headers"}).settings.proxy_headers);
    CHECK(load_args({"m:a", "--proxy-protocol", "auto"}).settings.proxy_protocol ==
          Settings::ProxyProtocol::auto_);
    for (const char* good : {"*", "unix:", "10.0.0.1", " 10.0.0.0/8 , fd00::/8,::1", "",
                             "192.168.1.7/24", "::ffff:10.0.0.1", "0.0.0.0/0"}) {
        INFO(good);
        CHECK(load_args({"m:a", "--forwarded-allow-ips", good}).settings.forwarded_allow_ips ==
              good);
    }
    for (const char* bad : {"localhost", "10.0.0.0/33", "::/129", "10.0.0.1/", "10.0.0.1/x",
                            "10.0.0.1, *.example.com", "unix"}) {
        INFO(bad);
        CHECK_THROWS_WITH(load_args({"m:a", "--forwarded-allow-ips", bad}),
                          StartsWith("--forwarded-allow-ips: invalid value"));
    }
    // The environment and a file are named as the source.
    CHECK_THROWS_WITH(load_args({"m:a"}, {"NARWHAL_FORWARDED_ALLOW_IPS=nope"}),
                      StartsWith("NARWHAL_FORWARDED_ALLOW_IPS: invalid value 'nope'"));
    ScratchDir dir;
    std::string file = dir.write("p.toml", "forwarded_allow_ips = \"10.0.0.1,bad\"\n");
    CHECK_THROWS_WITH(load_args({"m:a", "--config", file.c_str()}),
                      StartsWith(file + ": forwarded_allow_ips: invalid value 'bad'"));
    // uvicorn's FORWARDED_ALLOW_IPS: the default, below every other source.
    Loaded e = load_args({"m:a"}, {"FORWARDED_ALLOW_IPS=10.0.0.0/8"});
    CHECK(e.settings.forwarded_allow_ips == "10.0.0.0/8");
    REQUIRE(e.notes.size() == 1);
    CHECK(e.notes[0] == "FORWARDED_ALLOW_IPS=10.0.0.0/8: honoured as --forwarded-allow-ips");
    CHECK(load_args({"m:a", "--forwarded-allow-ips", "10.0.0.2"}, {"FORWARDED_ALLOW_IPS=10.0.0.1"})
              .settings.forwarded_allow_ips == "10.0.0.2");
    CHECK(load_args({"m:a"}, {"FORWARDED_ALLOW_IPS=10.0.0.1", "UVICORN_FORWARDED_ALLOW_IPS=*"})
              .settings.forwarded_allow_ips == "*");
    CHECK_THROWS_WITH(load_args({"m:a"}, {"FORWARDED_ALLOW_IPS=x"}),
                      StartsWith("FORWARDED_ALLOW_IPS: invalid value 'x'"));
}

TEST_CASE("io_threads auto: the interpreter's thread does the I/O when the processes fill "
          "the CPUs",
          "[config][loader]") {
    auto resolved = [](std::initializer_list<const char*> args, int cpus) {
        return load_args(args).settings.resolved_io_threads(cpus);
    };
    CHECK(load_args({"m:a"}).settings.io_threads == Settings::io_threads_auto);
    // One process: a thread of its own for the I/O while a core is free for it.
    CHECK(resolved({"m:a"}, 2) == 1);
    CHECK(resolved({"m:a"}, 1) == 0);
    // A master with N workers: inline once N reaches the CPUs.
    CHECK(resolved({"m:a", "--workers", "1"}, 2) == 1);
    CHECK(resolved({"m:a", "--workers", "2"}, 2) == 0);
    CHECK(resolved({"m:a", "--workers", "3"}, 2) == 0);
    CHECK(resolved({"m:a", "--workers", "3"}, 8) == 1);
    CHECK(resolved({"m:a", "--workers", "auto"}, 8) == 0);
    // Several interpreters share the front end: it keeps a thread.
    CHECK(resolved({"m:a", "--workers", "2", "--interpreters", "2"}, 2) == 1);
    // An explicit count is kept as given.
    CHECK(resolved({"m:a", "--workers", "2", "--io-threads", "1"}, 2) == 1);
    CHECK(resolved({"m:a", "--io-threads", "0"}, 8) == 0);
    CHECK(resolved({"m:a", "--io-threads", "4"}, 1) == 4);
}

TEST_CASE("environment: NARWHAL_* sets, unknown ones warn", "[config][loader]") {
    Loaded a = load_args({"m:a"}, {"NARWHAL_PORT=9100", "NARWHAL_ACCESS_LOG=false",
                                   "NARWHAL_HEADERS=x-a:1\nx-b:2", "NARWHAL_LOG_FORMAT=json",
                                   "PATH=/usr/bin", "NARWHAL_PROT=1", "NOT_NARWHAL_PORT=1"});
    CHECK(a.settings.port == 9100);
    CHECK_FALSE(a.settings.access_log);
    CHECK(a.settings.headers == HeaderList{{"x-a", "1"}, {"x-b", "2"}});
    CHECK(a.settings.log_format == LogFormat::json);
    REQUIRE(a.warnings.size() == 1);
    CHECK_THAT(a.warnings[0], StartsWith("NARWHAL_PROT: not a narwhal setting"));
    CHECK_THAT(a.warnings[0], ContainsSubstring("did you mean NARWHAL_PORT?"));
    // APP from the environment, the CLI positional overriding it.
    CHECK(load_args({}, {"NARWHAL_APP=env:app"}).settings.app == "env:app");
    CHECK(load_args({"cli:app"}, {"NARWHAL_APP=env:app"}).settings.app == "cli:app");
    // An empty variable counts as unset.
    CHECK(load_args({"m:a"}, {"NARWHAL_PORT=", "NARWHAL_HOST="}).settings.port == 8000);
    CHECK_THROWS_WITH(load_args({"m:a"}, {"NARWHAL_PORT=abc"}),
                      Equals("NARWHAL_PORT: invalid value 'abc' (expected an integer 0-65535)"));
    CHECK_THROWS_WITH(load_args({"m:a"}, {"NARWHAL_LOOP=trio"}),
                      Equals("NARWHAL_LOOP: invalid choice 'trio' (choose from auto, asyncio, "
                             "uvloop)"));
}

TEST_CASE("layers: file < environment < CLI", "[config][loader]") {
    ScratchDir dir;
    std::string file = dir.write("narwhal.toml", "port = 1111\n"
                                                 "host = \"0.0.0.0\"\n"
                                                 "backlog = 10\n"
                                                 "headers = [\"x-file:1\"]\n"
                                                 "app = \"file:app\"\n");
    Loaded f = load_args({"--config", file.c_str()});
    CHECK(f.settings.port == 1111);
    CHECK(f.settings.host == "0.0.0.0");
    CHECK(f.settings.app == "file:app");
    CHECK(f.settings.headers == HeaderList{{"x-file", "1"}});

    Loaded e =
        load_args({"--config", file.c_str()}, {"NARWHAL_PORT=2222", "NARWHAL_HEADERS=x-env:2"});
    CHECK(e.settings.port == 2222);
    CHECK(e.settings.host == "0.0.0.0");
    CHECK(e.settings.headers == HeaderList{{"x-env", "2"}});  // a later source replaces the list

    Loaded c = load_args({"--config", file.c_str(), "--port=3333", "cli:app"},
                         {"NARWHAL_PORT=2222", "NARWHAL_BACKLOG=20"});
    CHECK(c.settings.port == 3333);
    CHECK(c.settings.backlog == 20);
    CHECK(c.settings.app == "cli:app");
    CHECK(c.settings.headers == HeaderList{{"x-file", "1"}});

    // NARWHAL_CONFIG names the file when --config does not.
    std::string other = dir.write("other.toml", "port = 4444\n");
    CHECK(load_args({"m:a"}, {"NARWHAL_CONFIG=" + file}).settings.port == 1111);
    CHECK(load_args({"m:a", "--config", other.c_str()}, {"NARWHAL_CONFIG=" + file}).settings.port ==
          4444);
}

TEST_CASE("toml: every kind, and type errors naming key and file", "[config][loader]") {
    ScratchDir dir;
    std::string file = dir.write("narwhal.toml", R"(
# flat keys at the top level
app = "main:app"
factory = true
lifespan = "on"
timeout_keep_alive = 3        # an integer is fine for seconds
timeout_graceful_shutdown = 10.5
limit_request_body = 2048
access_log = false
headers = ["x-a: 1", "x-b:2"]
)");
    Settings s = load_args({"--config", file.c_str()}).settings;
    CHECK(s.factory);
    CHECK(s.lifespan == LifespanMode::on);
    CHECK(s.timeout_keep_alive == 3.0);
    CHECK(s.timeout_graceful_shutdown == 10.5);
    CHECK(s.limit_request_body == 2048u);
    CHECK_FALSE(s.access_log);
    CHECK(s.headers == HeaderList{{"x-a", "1"}, {"x-b", "2"}});

    auto error_for = [&](const std::string& body) {
        std::string path = dir.write("bad.toml", body);
        try {
            load_args({"m:a", "--config", path.c_str()});
        } catch (const ConfigError& e) {
            std::string what = e.what();
            // Strip the scratch directory so the expectations read plainly.
            return what.substr(what.find("bad.toml"));
        }
        return std::string("no error");
    };
    CHECK(error_for("prot = 1\n") == "bad.toml: unknown key 'prot' (did you mean 'port'?)");
    CHECK(error_for("frobnicate = 1\n") == "bad.toml: unknown key 'frobnicate'");
    CHECK(error_for("port = \"8000\"\n") ==
          "bad.toml: port: expected an integer 0-65535, got a string");
    CHECK(error_for("port = 70000\n") ==
          "bad.toml: port: invalid value 70000 (expected an integer 0-65535)");
    CHECK(error_for("access_log = \"no\"\n") ==
          "bad.toml: access_log: expected a boolean: true/false, 1/0, yes/no or on/off, got a "
          "string");
    CHECK(error_for("lifespan = \"maybe\"\n") ==
          "bad.toml: lifespan: invalid choice 'maybe' (choose from auto, on, off)");
    CHECK(error_for("timeout_keep_alive = -1.0\n") ==
          "bad.toml: timeout_keep_alive: invalid value -1 (expected a non-negative number of "
          "seconds)");
    CHECK(error_for("headers = \"x-a:1\"\n") ==
          "bad.toml: headers: expected NAME:VALUE, got a string");
    CHECK(error_for("headers = [1]\n") ==
          "bad.toml: headers: expected NAME:VALUE, got a list with non-string items");
    CHECK(error_for("headers = [\"x a:1\"]\n") ==
          "bad.toml: headers: invalid header name 'x a' (expected an HTTP token)");
    CHECK(error_for("[server]\nport = 1\n") == "bad.toml: unknown key 'server'");
    CHECK(error_for("host = 1979-05-27\n") ==
          "bad.toml: host: expected a string, got a date or time");
    CHECK_THAT(error_for("port = \n"), StartsWith("bad.toml:1:"));
    CHECK_THAT(error_for("port = \n"), ContainsSubstring("invalid TOML"));
}

TEST_CASE("pyproject.toml: the [tool.narwhal] table", "[config][loader]") {
    ScratchDir dir;
    std::string file = dir.write("pyproject.toml", R"(
[project]
name = "demo"
port = "not ours"

[tool.black]
line-length = 100

[tool.narwhal]
app = "demo.main:app"
port = 5000
)");
    Settings s = load_args({"--config", file.c_str()}).settings;
    CHECK(s.app == "demo.main:app");
    CHECK(s.port == 5000);

    std::string bad = dir.write("sub/pyproject.toml", "[tool.narwhal]\nprot = 1\n");
    CHECK_THROWS_WITH(load_args({"m:a", "--config", bad.c_str()}),
                      ContainsSubstring("pyproject.toml [tool.narwhal]: unknown key 'prot'"));
    std::string none = dir.write("none/pyproject.toml", "[project]\nname = \"x\"\n");
    CHECK_THROWS_WITH(load_args({"m:a", "--config", none.c_str()}),
                      ContainsSubstring("pyproject.toml: no [tool.narwhal] table"));
}

TEST_CASE("json: a flat object, types checked", "[config][loader]") {
    ScratchDir dir;
    std::string file = dir.write("narwhal.json", R"({
        "app": "main:app", "port": 7000, "factory": true, "timeout_keep_alive": 1.5,
        "timeout_graceful_shutdown": 30, "loop": "asyncio", "headers": ["x-j:1"]
    })");
    Settings s = load_args({"--config", file.c_str()}).settings;
    CHECK(s.app == "main:app");
    CHECK(s.port == 7000);
    CHECK(s.factory);
    CHECK(s.timeout_keep_alive == 1.5);
    CHECK(s.timeout_graceful_shutdown == 30.0);
    CHECK(s.loop == LoopKind::asyncio);
    CHECK(s.headers == HeaderList{{"x-j", "1"}});

    auto error_for = [&](const std::string& body) {
        std::string path = dir.write("bad.json", body);
        try {
            load_args({"m:a", "--config", path.c_str()});
        } catch (const ConfigError& e) {
            std::string what = e.what();
            return what.substr(what.find("bad.json"));
        }
        return std::string("no error");
    };
    CHECK(error_for(R"({"port": "8000"})") ==
          "bad.json: port: expected an integer 0-65535, got a string");
    CHECK(error_for(R"({"port": 80.5})") ==
          "bad.json: port: expected an integer 0-65535, got a float");
    CHECK(error_for(R"({"prot": 1})") == "bad.json: unknown key 'prot' (did you mean 'port'?)");
    CHECK(error_for(R"({"host": null})") == "bad.json: host: expected a string, got null");
    CHECK(error_for(R"({"limit_request_body": 18446744073709551615})") ==
          "bad.json: limit_request_body: expected a positive integer (bytes), got an integer "
          "beyond 64 bits");
    CHECK(error_for(R"([1, 2])") ==
          "bad.json: expected a JSON object of settings at the top level");
    CHECK_THAT(error_for(R"({"port": )"), StartsWith("bad.json: invalid JSON:"));
}

TEST_CASE("config file errors name the file and where its path came from", "[config][loader]") {
    ScratchDir dir;
    std::string missing = dir.path("missing.toml");
    CHECK_THROWS_WITH(
        load_args({"m:a", "--config", missing.c_str()}),
        Equals("--config: cannot read config file '" + missing + "': No such file or directory"));
    CHECK_THROWS_WITH(load_args({"m:a"}, {"NARWHAL_CONFIG=" + missing}),
                      StartsWith("NARWHAL_CONFIG: cannot read config file"));
    std::string yaml = dir.write("narwhal.yaml", "port: 1\n");
    CHECK_THROWS_WITH(load_args({"m:a", "--config", yaml.c_str()}),
                      ContainsSubstring("(use a .toml or .json file)"));
    CHECK_THROWS_WITH(load_args({"m:a", "--config", dir.path("").c_str()}),
                      ContainsSubstring("Is a directory"));
}

TEST_CASE("validation after all layers names both sides", "[config][loader]") {
    CHECK_THROWS_WITH(load_args({"m:a", "--send-low-water", "70000"}),
                      Equals("send_low_water (70000, from --send-low-water) must not exceed "
                             "send_high_water (65536, from default)"));
    CHECK_THROWS_WITH(
        load_args({"m:a", "--send-high-water", "1000"}, {"NARWHAL_SEND_LOW_WATER=2000"}),
        Equals("send_low_water (2000, from NARWHAL_SEND_LOW_WATER) must not exceed "
               "send_high_water (1000, from --send-high-water)"));
    CHECK_NOTHROW(load_args({"m:a", "--send-high-water", "1000", "--send-low-water", "1000"}));
    CHECK(load_args({"m:a", "--port", "0"}).settings.port == 0);  // ephemeral
    CHECK_THROWS_WITH(load_args({"m:a", "--host", ""}),
                      Equals("--host: invalid value '' (expected a host name or address)"));
    CHECK_THROWS_WITH(load_args({}, {"NARWHAL_APP=nocolon"}),
                      Equals("NARWHAL_APP: invalid value 'nocolon' (expected 'module:attribute')"));
}

TEST_CASE("uds and fd take precedence over host/port, with a warning", "[config][loader]") {
    Loaded a = load_args({"m:a", "--uds", "/tmp/n.sock", "--port", "9000"});
    CHECK(a.settings.uds == "/tmp/n.sock");
    REQUIRE(a.warnings.size() == 1);
    CHECK(a.warnings[0] == "--port: ignored, uds takes precedence (from --uds)");
    Loaded b = load_args({"m:a", "--fd", "3", "--uds", "/tmp/n.sock"});
    REQUIRE(b.warnings.size() == 1);
    CHECK(b.warnings[0] == "--uds: ignored, fd takes precedence (from --fd)");
    CHECK(load_args({"m:a", "--uds", "/tmp/n.sock", "--host", ""}).settings.host.empty());
}

TEST_CASE("--env-file is checked at load time", "[config][loader]") {
    ScratchDir dir;
    std::string env = dir.write(".env", "A=1\n");
    CHECK(load_args({"m:a", "--env-file", env.c_str()}).settings.env_file == env);
    std::string missing = dir.path("nope.env");
    CHECK_THROWS_WITH(
        load_args({"m:a", "--env-file", missing.c_str()}),
        Equals("--env-file: cannot read env file '" + missing + "': No such file or directory"));
    std::string bad = dir.write("bad.env", "A=1\nB=\"open\n");
    CHECK_THROWS_WITH(load_args({"m:a"}, {"NARWHAL_ENV_FILE=" + bad}),
                      Equals("NARWHAL_ENV_FILE: " + bad + ":2: unterminated double quote"));
}

TEST_CASE("render_toml round-trips through load", "[config][loader]") {
    Settings s;
    s.app = "pkg.app:make";
    s.app_dir = "src";
    s.factory = true;
    s.interface = Interface::asgi2;
    s.lifespan = LifespanMode::off;
    s.loop = LoopKind::asyncio;
    s.root_path = "/api \"v1\"\\";
    s.venv = "/opt/venv";
    s.host = "::";
    s.port = 0;
    s.uds = "/run/n.sock";
    s.fd = 7;
    s.backlog = 100;
    s.io_threads = 4;
    s.workers = Settings::workers_auto;
    s.reuse_port = true;
    s.limit_request_line = 1;
    s.limit_request_head = 2;
    s.limit_request_field_size = 3;
    s.limit_request_fields = 4;
    s.limit_request_body = 5'000'000'000ull;
    s.read_window = 6;
    s.send_high_water = 8;
    s.send_low_water = 7;
    s.timeout_keep_alive = 0.1;
    s.timeout_graceful_shutdown = 30;
    s.inbox_batch = 9;
    s.inbox_capacity = 10;
    s.server_header = false;
    s.date_header = false;
    s.headers = {{"x-a", "1"}, {"x-b", "with \"quotes\" and \\ and \tab"}};
    s.log_level = LogLevel::critical;
    s.log_format = LogFormat::json;
    s.access_log = false;

    ScratchDir dir;
    std::string text = render_toml(s);
    std::string file = dir.write("printed.toml", text);
    Loaded back = load_args({"--config", file.c_str()});
    INFO(text);
    CHECK(same_settings(back.settings, s));
    CHECK_THAT(text, ContainsSubstring("workers = \"auto\"\n"));

    std::string defaults = dir.write("defaults.toml", render_toml(Settings{}));
    Loaded d = load_args({"--print-config", "--config", defaults.c_str()});
    CHECK(same_settings(d.settings, Settings{}));
    CHECK_THAT(render_toml(Settings{}), ContainsSubstring("timeout_keep_alive = 5.0\n"));
    CHECK_THAT(render_toml(Settings{}), ContainsSubstring("lifespan = \"auto\"\n"));
}

TEST_CASE("help_text lists every option with its default", "[config][loader]") {
    std::string help = help_text();
    CHECK_THAT(help, StartsWith("Usage: narwhal [OPTIONS] APP"));
    for (const Option& o : options()) {
        if (o.flag.empty())
            continue;
        INFO(o.flag);
        CHECK_THAT(help, ContainsSubstring(std::string(o.flag)));
    }
    for (const MetaOption& m : meta_options())
        CHECK_THAT(help, ContainsSubstring(std::string(m.flag)));
    CHECK_THAT(help, ContainsSubstring("--access-log / --no-access-log"));
    CHECK_THAT(help, ContainsSubstring("--lifespan [auto|on|off]"));
    CHECK_THAT(help, ContainsSubstring("[default: 127.0.0.1]"));
    CHECK_THAT(help, ContainsSubstring("[default: 8000]"));
    std::size_t start = 0;
    while (start < help.size()) {
        std::size_t end = help.find('\n', start);
        CHECK(end - start <= 100);
        start = end + 1;
    }
}

// Expectations checked against python-dotenv 1.2 (load_dotenv, as uvicorn calls it).
TEST_CASE("read_env_file: python-dotenv's dialect", "[config][env_file]") {
    ScratchDir dir;
    std::string path =
        dir.write(".env", "\xEF\xBB\xBF# a comment\n"
                          "PLAIN=value\n"
                          "export EXPORTED=yes\n"
                          "  SPACED = padded value   \n"
                          "INLINE=abc # trailing comment\n"
                          "HASH=abc#not-a-comment\n"
                          "ONLY_COMMENT=  # nothing\n"
                          "EMPTY=\n"
                          "SINGLE='raw \\n \\' ${PLAIN}' # comment\n"
                          "DOUBLE=\"tab\\there\\nnl \\\"q\\\" \\x\"\n"
                          "MULTI=\"line1\nline2\"\n"
                          "'QUOTED KEY'=q\n"
                          "EXPAND=${PLAIN}-${MISSING:-fallback}-${MISSING}-${BAD:x}\n"
                          "PROC=${NARWHAL_TEST_FROM_PROCESS}\n"
                          "NARWHAL_TEST_FROM_PROCESS=file\n"
                          "PROC2=${NARWHAL_TEST_FROM_PROCESS}\n"
                          "NO_EQUALS\n"
                          "PLAIN=again\r\n"
                          "CR=x\rLAST=1");
    // Expansion looks at the process environment first, as load_dotenv does.
    ::setenv("NARWHAL_TEST_FROM_PROCESS", "proc", 1);
    ::unsetenv("MISSING");
    auto vars = read_env_file(path);
    ::unsetenv("NARWHAL_TEST_FROM_PROCESS");
    std::vector<std::pair<std::string, std::string>> expected{
        {"PLAIN", "again"},  // first position, last value
        {"EXPORTED", "yes"},
        {"SPACED", "padded value"},
        {"INLINE", "abc"},
        {"HASH", "abc#not-a-comment"},
        {"ONLY_COMMENT", ""},
        {"EMPTY", ""},
        {"SINGLE", "raw \\n ' value"},
        {"DOUBLE", "tab\there\nnl \"q\" \\x"},
        {"MULTI", "line1\nline2"},
        {"QUOTED KEY", "q"},
        {"EXPAND", "value-fallback--${BAD:x}"},
        {"PROC", "proc"},
        {"NARWHAL_TEST_FROM_PROCESS", "file"},
        {"PROC2", "proc"},
        {"CR", "x"},
        {"LAST", "1"},
    };
    CHECK(vars == expected);
}

TEST_CASE("read_env_file: errors name the file and line", "[config][env_file]") {
    ScratchDir dir;
    auto error_for = [&](const std::string& body) {
        std::string path = dir.write("e.env", body);
        try {
            read_env_file(path);
        } catch (const ConfigError& e) {
            std::string what = e.what();
            return what.substr(what.find("e.env"));
        }
        return std::string("no error");
    };
    CHECK(error_for("A=1\n\nB='open\nstill open\n") == "e.env:3: unterminated single quote");
    CHECK(error_for("A=\"x\" y\n") == "e.env:1: unexpected text 'y' after A");
    CHECK(error_for("A=1\nA B=c\n") == "e.env:2: unexpected text 'B=c' after A");
    CHECK(error_for("=value\n") == "e.env:1: expected a variable name");
    CHECK(error_for("''=1\n") == "e.env:1: empty variable name");
    CHECK(error_for("# only\n\n   \n") == "no error");
    std::string missing = dir.path("missing.env");
    CHECK_THROWS_WITH(read_env_file(missing),
                      Equals("cannot read env file '" + missing + "': No such file or directory"));
}
