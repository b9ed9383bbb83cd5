// Where the worker bus's sockets live (server/pubsub_bus.hpp): a private directory the
// master makes before it forks any worker, and removes when it exits. Each worker listens
// on <dir>/<pid>.sock and finds the others by reading the directory.
//
// Why a directory of its own and not abstract sockets: its mode (0700) is the access
// check - only this user's processes can reach the sockets - and it goes away with the
// master, so nothing of a server is left behind when it stops (after a master killed with
// SIGKILL, its last worker to exit removes it).
//
// Why sockets named by process ID and not by the worker's row in the master's table: a
// worker does not know its row, rows are not 0..N-1 (a replacement runs beside the worker
// it replaces), and a name that is never reused cannot be mistaken for the process that
// had it before; the master removes a worker's name when it reaps the process.
#pragma once

#include <string>
#include <sys/types.h>

namespace narwhal::server {

class PubSubBusDirectory {
public:
    // The environment variable through which the master's forked workers learn the
    // directory. A worker takes it out of its environment (take_from_environment) before
    // Python starts, so the app and its child processes never see it.
    static constexpr const char* environment = "NARWHAL_WORKER_BUS";

    // The master's: makes the directory (mode 0700) under $XDG_RUNTIME_DIR, else /tmp, and
    // sets the environment variable for the workers forked from now on. Throws
    // std::system_error when it cannot be made.
    PubSubBusDirectory();
    // Removes what is left in it (the names of workers that did not remove their own),
    // then the directory.
    ~PubSubBusDirectory();
    PubSubBusDirectory(const PubSubBusDirectory&) = delete;
    PubSubBusDirectory& operator=(const PubSubBusDirectory&) = delete;

    const std::string& path() const { return path_; }
    // The master reaped `pid`: its socket's name goes, so the others stop trying it.
    void forget(pid_t pid) const;

    // A worker's: the directory its master made, removed from the environment; empty when
    // there is none (no master, or it could not make one).
    static std::string take_from_environment();
    // <dir>/<pid>.sock
    static std::string socket_path(const std::string& dir, pid_t pid);
    // The process ID in a directory entry's name "<pid>.sock"; 0 for any other name.
    static pid_t pid_of(const std::string& name);

private:
    std::string path_;
};

}  // namespace narwhal::server
