#include "server/settings_reload.hpp"

#include "catch.hpp"

#include <algorithm>

using narwhal::config::Settings;
using narwhal::server::reload_settings;

namespace {

bool has(const std::vector<std::string>& list, std::string_view item) {
    return std::find(list.begin(), list.end(), item) != list.end();
}

}  // namespace

TEST_CASE("a reload applies worker settings and keeps the listeners' ones",
          "[server][supervisor]") {
    Settings running;
    running.workers = 2;
    running.port = 8000;
    Settings loaded = running;
    loaded.port = 9000;
    loaded.backlog = 10;
    loaded.uds = "/run/n.sock";
    loaded.root_path = "/api";
    loaded.headers = {{"x-version", "2"}};
    loaded.timeout_graceful_shutdown = 3;

    auto r = reload_settings(running, loaded);
    CHECK(r.applied.port == 8000);
    CHECK(r.applied.backlog == running.backlog);
    CHECK(r.applied.uds.empty());
    CHECK(r.applied.root_path == "/api");
    CHECK(r.applied.headers == loaded.headers);
    CHECK(r.applied.timeout_graceful_shutdown == 3);
    CHECK(r.need_restart.size() == 3);
    CHECK(has(r.need_restart, "port: 9000 (running: 8000)"));
    CHECK(has(r.need_restart, "uds: '/run/n.sock' (running: '')"));
    CHECK(has(r.need_restart, "backlog: 10 (running: 2048)"));
    CHECK(r.changed.size() == 3);
    CHECK((has(r.changed, "root_path") && has(r.changed, "headers") &&
           has(r.changed, "timeout_graceful_shutdown")));
    CHECK_FALSE(r.workers_changed);
}

TEST_CASE("every listener setting needs a full restart", "[server][supervisor]") {
    Settings running;
    running.workers = 1;
    Settings loaded = running;
    loaded.host = "0.0.0.0";
    loaded.fd = 3;
    loaded.reuse_port = true;
    loaded.env_file = ".env";
    auto r = reload_settings(running, loaded);
    CHECK(r.need_restart.size() == 4);
    CHECK(r.changed.empty());
    CHECK(r.applied.host == running.host);
    CHECK(r.applied.fd == -1);
    CHECK_FALSE(r.applied.reuse_port);
    CHECK(r.applied.env_file.empty());
}

TEST_CASE("a reload's workers value is a new target, except one process", "[server][supervisor]") {
    Settings running;
    running.workers = 2;
    Settings loaded = running;
    CHECK_FALSE(reload_settings(running, loaded).workers_changed);
    CHECK(reload_settings(running, loaded).changed.empty());

    loaded.workers = 3;
    auto grow = reload_settings(running, loaded);
    CHECK(grow.workers_changed);
    CHECK(grow.applied.workers == 3);
    CHECK(grow.need_restart.empty());

    loaded.workers = Settings::workers_auto;
    CHECK(reload_settings(running, loaded).workers_changed);

    loaded.workers = 0;  // without a master: only a new start can do that
    auto single = reload_settings(running, loaded);
    CHECK_FALSE(single.workers_changed);
    CHECK(single.applied.workers == 2);
    REQUIRE(single.need_restart.size() == 1);
    CHECK(single.need_restart[0].starts_with("workers: 0 "));
}
