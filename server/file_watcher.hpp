// A recursive watch of directory trees with Linux inotify, for --reload. One descriptor
// for the caller's poll loop (the master's): no thread and no polling of the files.
//
// Every directory of each tree has its own watch (inotify is not recursive); a directory
// created or moved in later is watched as soon as its event is read, and the files it
// already holds by then are reported as changed, so a file written right after its new
// directory was made is not missed.
#pragma once

#include <filesystem>
#include <functional>
#include <unordered_map>
#include <vector>

namespace narwhal::server {

class FileWatcher {
public:
    // Directories not to descend into (--reload-exclude naming a directory).
    using Skip = std::function<bool(const std::filesystem::path&)>;

    // Watches `roots` (absolute paths of existing directories). Throws std::system_error
    // when inotify cannot be set up; a subdirectory that cannot be watched (gone, no
    // permission, the user's watch limit reached) is logged and left out.
    FileWatcher(const std::vector<std::filesystem::path>& roots, Skip skip);
    ~FileWatcher();
    FileWatcher(const FileWatcher&) = delete;
    FileWatcher& operator=(const FileWatcher&) = delete;

    int fd() const { return fd_; }
    std::size_t directories() const { return dirs_.size(); }

    // After poll says fd() is readable: the files written, created, deleted or moved in
    // or out since the last call (may repeat a path; may be empty).
    std::vector<std::filesystem::path> on_readable();

private:
    void add_tree(const std::filesystem::path& root, std::vector<std::filesystem::path>* found);
    void add_one(const std::filesystem::path& dir);

    int fd_ = -1;
    Skip skip_;
    std::unordered_map<int, std::filesystem::path> dirs_;  // watch descriptor -> directory
};

}  // namespace narwhal::server
