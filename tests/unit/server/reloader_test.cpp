#include "server/reloader.hpp"

#include "catch.hpp"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <poll.h>

using narwhal::server::Reloader;

namespace {

struct Tree {
    Tree() {
        std::string pattern = (std::filesystem::temp_directory_path() / "narwhal-reload-XXXXXX");
        root = ::mkdtemp(pattern.data());
    }
    ~Tree() {
        std::error_code ec;
        std::filesystem::remove_all(root, ec);
    }
    void write(const std::filesystem::path& name, const std::string& text) const {
        std::filesystem::create_directories((root / name).parent_path());
        std::ofstream(root / name) << text;
    }
    std::filesystem::path root;
};

// Reads the watcher until its events stop arriving (each wait bounded by 2 s).
void drain(Reloader& reloader, Reloader::Clock::time_point now) {
    pollfd fd{reloader.fd(), POLLIN, 0};
    while (::poll(&fd, 1, reloader.deadline() ? 200 : 2000) > 0)
        reloader.on_readable(now);
}

}  // namespace

TEST_CASE("reloader: a matching change is due after the delay, once", "[server][reload]") {
    Tree tree;
    narwhal::config::Settings settings;
    settings.reload_dirs = {tree.root.string()};
    settings.reload_delay = 0.25;
    Reloader reloader(settings);
    REQUIRE(reloader.dirs() ==
            std::vector<std::filesystem::path>{std::filesystem::weakly_canonical(tree.root)});
    CHECK_FALSE(reloader.deadline());

    auto t0 = Reloader::Clock::now();
    tree.write("notes.txt", "ignored");
    tree.write("app.py", "x = 1");
    tree.write("app.py", "x = 2");
    drain(reloader, t0);
    REQUIRE(reloader.deadline());
    CHECK(*reloader.deadline() == t0 + std::chrono::milliseconds(250));
    CHECK_FALSE(reloader.take_due(t0 + std::chrono::milliseconds(249)));
    auto due = reloader.take_due(t0 + std::chrono::milliseconds(250));
    REQUIRE(due);
    CHECK(due->find("app.py'") != std::string::npos);
    CHECK(due->find("notes.txt") == std::string::npos);
    CHECK_FALSE(reloader.deadline());
    CHECK_FALSE(reloader.take_due(t0 + std::chrono::seconds(10)));
}

TEST_CASE("reloader: files in a new subdirectory are seen", "[server][reload]") {
    Tree tree;
    narwhal::config::Settings settings;
    settings.reload_dirs = {tree.root.string()};
    Reloader reloader(settings);
    auto t0 = Reloader::Clock::now();
    // Written at once after the directory: perhaps before its watch exists.
    tree.write("pkg/sub/mod.py", "x = 1");
    drain(reloader, t0);
    auto due = reloader.take_due(t0 + std::chrono::seconds(1));
    REQUIRE(due);
    CHECK(due->find("mod.py'") != std::string::npos);

    // And the directory is watched from then on.
    tree.write("pkg/sub/mod.py", "x = 2");
    drain(reloader, t0);
    CHECK(reloader.take_due(t0 + std::chrono::seconds(1)));
}
