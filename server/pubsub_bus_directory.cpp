#include "server/pubsub_bus_directory.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <dirent.h>
#include <system_error>
#include <unistd.h>
#include <vector>

namespace narwhal::server {

namespace {

constexpr std::string_view suffix = ".sock";

}  // namespace

PubSubBusDirectory::PubSubBusDirectory() {
    // $XDG_RUNTIME_DIR (per user, on tmpfs) when it is set and usable; a socket path must
    // fit sockaddr_un's 108 bytes, so a very long one falls back to /tmp.
    std::string base = "/tmp";
    if (const char* runtime = std::getenv("XDG_RUNTIME_DIR");
        runtime && *runtime == '/' && std::string_view(runtime).size() < 60 &&
        ::access(runtime, W_OK | X_OK) == 0)
        base = runtime;
    std::string templ = base + "/narwhal-bus-XXXXXX";
    if (!::mkdtemp(templ.data()))  // mode 0700
        throw std::system_error(errno, std::generic_category(),
                                fmt::format("cannot make a directory in {}", base));
    path_ = templ;
    ::setenv(environment, path_.c_str(), 1);
}

PubSubBusDirectory::~PubSubBusDirectory() {
    ::unsetenv(environment);
    std::vector<std::string> names;
    if (DIR* dir = ::opendir(path_.c_str())) {
        while (dirent* e = ::readdir(dir)) {
            std::string_view name = e->d_name;
            if (name != "." && name != "..")
                names.emplace_back(name);
        }
        ::closedir(dir);
    }
    for (const auto& name : names)
        ::unlink((path_ + "/" + name).c_str());
    ::rmdir(path_.c_str());
}

void PubSubBusDirectory::forget(pid_t pid) const { ::unlink(socket_path(path_, pid).c_str()); }

std::string PubSubBusDirectory::take_from_environment() {
    const char* value = std::getenv(environment);
    std::string dir = value ? value : "";
    ::unsetenv(environment);
    return dir;
}

std::string PubSubBusDirectory::socket_path(const std::string& dir, pid_t pid) {
    return fmt::format("{}/{}{}", dir, pid, suffix);
}

pid_t PubSubBusDirectory::pid_of(const std::string& name) {
    if (name.size() <= suffix.size() || !name.ends_with(suffix))
        return 0;
    pid_t pid = 0;
    const char* first = name.data();
    const char* last = name.data() + name.size() - suffix.size();
    auto [end, ec] = std::from_chars(first, last, pid);
    if (ec != std::errc() || end != last || pid <= 0)
        return 0;
    return pid;
}

}  // namespace narwhal::server
