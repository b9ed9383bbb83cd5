// One worker process as its master sees it: forking it with a start-up pipe, setting
// the child up to live under the master, and the words for how it ended.
#pragma once

#include <chrono>
#include <functional>
#include <span>
#include <string>
#include <sys/types.h>

namespace narwhal::server {

// What a worker runs: returns its exit status. It calls `ready` once it serves (app
// imported, lifespan started, listening), which tells the master that start-up is over.
using WorkerBody = std::function<int(const std::function<void()>& ready)>;

class WorkerProcess {
public:
    // Forks a worker running `body`. In the child, `close_in_child` (the master's own
    // descriptors) are closed first; the child never returns from here. Throws
    // std::system_error when fork or pipe fails.
    WorkerProcess(const WorkerBody& body, std::span<const int> close_in_child);
    ~WorkerProcess();
    WorkerProcess(const WorkerProcess&) = delete;
    WorkerProcess& operator=(const WorkerProcess&) = delete;

    pid_t pid() const { return pid_; }
    // The read end of the start-up pipe while the worker is starting; -1 afterwards.
    int ready_fd() const { return ready_fd_; }
    bool ready() const { return ready_; }
    std::chrono::steady_clock::time_point started() const { return started_; }
    // Reads the pipe after poll() said it is readable: true when the worker reported
    // ready. At end of file (the worker is exiting) the pipe is closed either way.
    bool on_ready_readable();

    void signal(int sig) const;

private:
    void close_pipe();

    pid_t pid_ = -1;
    int ready_fd_ = -1;
    bool ready_ = false;
    std::chrono::steady_clock::time_point started_;
};

// A waitpid() status in words: "exit status 3", "signal SIGKILL".
std::string describe_wait_status(int status);
// The shell's convention: the exit status, or 128 + the signal number.
int exit_code_of(int status);

}  // namespace narwhal::server
