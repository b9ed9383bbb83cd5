#include "server/file_watcher.hpp"

#include "asgi/log.hpp"

#include <array>
#include <cerrno>
#include <cstring>
#include <sys/inotify.h>
#include <system_error>
#include <unistd.h>

namespace narwhal::server {

namespace {

// What counts as a change: a file's content complete (close after writing; an editor's
// rename over it), a file appearing (created empty, then written: the close follows) or
// going away. IN_MODIFY is left out: one save would report once per write(2).
constexpr std::uint32_t file_events =
    IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_MOVED_FROM;

// Room for many events per read(2): each is a header plus a name of up to NAME_MAX.
constexpr std::size_t read_buffer_size = 64 * 1024;

}  // namespace

FileWatcher::FileWatcher(const std::vector<std::filesystem::path>& roots, Skip skip)
    : skip_(std::move(skip)) {
    fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd_ < 0)
        throw std::system_error(errno, std::generic_category(), "inotify_init1");
    for (const auto& root : roots)
        add_tree(root, nullptr);
}

FileWatcher::~FileWatcher() {
    if (fd_ >= 0)
        ::close(fd_);
}

void FileWatcher::add_one(const std::filesystem::path& dir) {
    int wd = ::inotify_add_watch(fd_, dir.c_str(), file_events | IN_ONLYDIR | IN_DONT_FOLLOW);
    if (wd < 0) {
        // ENOSPC: fs.inotify.max_user_watches reached; the rest of the tree still works.
        if (errno != ENOENT)
            log::warning("--reload: cannot watch {}: {}", dir.string(), std::strerror(errno));
        return;
    }
    dirs_[wd] = dir;
}

// The tree under `root`; with `found`, its files too (a directory that just appeared:
// what was written into it before its watch existed).
void FileWatcher::add_tree(const std::filesystem::path& root,
                           std::vector<std::filesystem::path>* found) {
    if (skip_ && skip_(root))
        return;
    add_one(root);
    std::error_code ec;
    std::filesystem::recursive_directory_iterator it(
        root, std::filesystem::directory_options::skip_permission_denied, ec);
    for (; !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
        std::error_code type_ec;
        if (it->is_directory(type_ec) && !it->is_symlink(type_ec)) {
            if (skip_ && skip_(it->path())) {
                it.disable_recursion_pending();
                continue;
            }
            add_one(it->path());
        } else if (found) {
            found->push_back(it->path());
        }
    }
}

std::vector<std::filesystem::path> FileWatcher::on_readable() {
    std::vector<std::filesystem::path> changed;
    alignas(inotify_event) std::array<char, read_buffer_size> buffer;
    for (;;) {
        ssize_t n = ::read(fd_, buffer.data(), buffer.size());
        if (n <= 0) {
            if (n < 0 && errno != EAGAIN && errno != EINTR)
                log::warning("--reload: reading inotify events: {}", std::strerror(errno));
            break;
        }
        for (ssize_t at = 0; at < n;) {
            const auto* event = reinterpret_cast<const inotify_event*>(buffer.data() + at);
            at += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
            if (event->mask & IN_Q_OVERFLOW) {
                // Events were lost: something changed, which is all a restart needs.
                log::warning("--reload: the inotify queue overflowed; restarting anyway");
                changed.emplace_back();
                continue;
            }
            if (event->mask & IN_IGNORED) {
                dirs_.erase(event->wd);  // its directory is gone (or unmounted)
                continue;
            }
            auto dir = dirs_.find(event->wd);
            if (dir == dirs_.end() || event->len == 0)
                continue;
            std::filesystem::path path = dir->second / event->name;
            if (event->mask & IN_ISDIR) {
                if (event->mask & (IN_CREATE | IN_MOVED_TO))
                    add_tree(path, &changed);
                continue;  // a directory's own event changes no file
            }
            changed.push_back(std::move(path));
        }
    }
    return changed;
}

}  // namespace narwhal::server
