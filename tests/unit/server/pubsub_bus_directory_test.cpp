#include "server/pubsub_bus_directory.hpp"

#include "catch.hpp"

#include <cstdlib>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

using narwhal::server::PubSubBusDirectory;

namespace {
bool exists(const std::string& path) {
    struct stat st{};
    return ::stat(path.c_str(), &st) == 0;
}
}  // namespace

TEST_CASE("pubsub bus directory: private, announced to the workers, removed with what is in it",
          "[pubsub_bus_directory]") {
    std::string path;
    {
        PubSubBusDirectory dir;
        path = dir.path();
        struct stat st{};
        REQUIRE(::stat(path.c_str(), &st) == 0);
        CHECK(S_ISDIR(st.st_mode));
        CHECK((st.st_mode & 0777) == 0700);
        const char* env = std::getenv(PubSubBusDirectory::environment);
        REQUIRE(env != nullptr);
        CHECK(std::string(env) == path);

        // A worker takes it out of its environment.
        CHECK(PubSubBusDirectory::take_from_environment() == path);
        CHECK(std::getenv(PubSubBusDirectory::environment) == nullptr);
        CHECK(PubSubBusDirectory::take_from_environment().empty());

        // The names of two workers; one is reaped.
        for (pid_t pid : {101, 102})
            ::close(::open(PubSubBusDirectory::socket_path(path, pid).c_str(), O_CREAT | O_WRONLY,
                           0600));
        dir.forget(101);
        CHECK_FALSE(exists(PubSubBusDirectory::socket_path(path, 101)));
        CHECK(exists(PubSubBusDirectory::socket_path(path, 102)));
    }
    CHECK_FALSE(exists(path));
}

TEST_CASE("pubsub bus directory: socket names", "[pubsub_bus_directory]") {
    CHECK(PubSubBusDirectory::socket_path("/d", 42) == "/d/42.sock");
    CHECK(PubSubBusDirectory::pid_of("42.sock") == 42);
    CHECK(PubSubBusDirectory::pid_of("42.sock.new") == 0);
    CHECK(PubSubBusDirectory::pid_of(".sock") == 0);
    CHECK(PubSubBusDirectory::pid_of("-4.sock") == 0);
    CHECK(PubSubBusDirectory::pid_of("0.sock") == 0);
    CHECK(PubSubBusDirectory::pid_of("4x.sock") == 0);
    CHECK(PubSubBusDirectory::pid_of("42") == 0);
}
