#include "server/worker_process.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <system_error>
#include <unistd.h>

namespace narwhal::server {

namespace {

// The child's side, right after fork(): only async-signal-safe work until `body` runs,
// which is safe because the master is single-threaded.
[[noreturn]] void become_worker(const WorkerBody& body, std::span<const int> close_in_child,
                                int ready_write, pid_t master) {
    // Its own process group: a Ctrl-C on the terminal signals the foreground group,
    // which is then the master alone; the master forwards one graceful stop to each
    // worker instead of every worker seeing SIGINT and the master's SIGTERM on top.
    ::setpgid(0, 0);
    // A master killed with SIGKILL cannot stop its workers: the kernel does, with a
    // graceful SIGTERM. (The signal follows the thread that forked: the master has only
    // one.) If the master is already gone, getppid() shows it.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != master)
        ::_exit(1);
    for (int fd : close_in_child)
        ::close(fd);
    // The master blocks the signals it reads through its signalfd; a worker takes them.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);

    auto ready = [ready_write]() mutable {
        if (ready_write < 0)
            return;
        const char byte = 'R';
        while (::write(ready_write, &byte, 1) < 0 && errno == EINTR) {
        }
        ::close(ready_write);
        ready_write = -1;
    };
    int status = body(ready);
    std::fflush(nullptr);
    // Not exit(): the master's atexit handlers and static objects are not this
    // process's to run.
    ::_exit(status);
}

}  // namespace

WorkerProcess::WorkerProcess(const WorkerBody& body, std::span<const int> close_in_child) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0)
        throw std::system_error(errno, std::generic_category(), "pipe");
    pid_t master = ::getpid();
    std::fflush(nullptr);  // nothing buffered may be written twice
    pid_t pid = ::fork();
    if (pid < 0) {
        int err = errno;
        ::close(fds[0]);
        ::close(fds[1]);
        throw std::system_error(err, std::generic_category(), "fork");
    }
    if (pid == 0) {
        ::close(fds[0]);
        become_worker(body, close_in_child, fds[1], master);
    }
    ::close(fds[1]);
    pid_ = pid;
    ready_fd_ = fds[0];
    started_ = std::chrono::steady_clock::now();
}

WorkerProcess::~WorkerProcess() { close_pipe(); }

bool WorkerProcess::on_ready_readable() {
    char byte = 0;
    ssize_t n;
    do {
        n = ::read(ready_fd_, &byte, 1);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN)
        return false;
    close_pipe();
    if (n == 1) {
        ready_ = true;
        started_ = std::chrono::steady_clock::now();  // uptime counts from ready
    }
    return ready_;
}

void WorkerProcess::signal(int sig) const {
    if (pid_ > 0)
        ::kill(pid_, sig);
}

void WorkerProcess::close_pipe() {
    if (ready_fd_ >= 0)
        ::close(ready_fd_);
    ready_fd_ = -1;
}

std::string describe_wait_status(int status) {
    if (WIFEXITED(status))
        return fmt::format("exit status {}", WEXITSTATUS(status));
    if (WIFSIGNALED(status)) {
        const char* name = ::sigabbrev_np(WTERMSIG(status));
        return name ? fmt::format("signal SIG{}", name)
                    : fmt::format("signal {}", WTERMSIG(status));
    }
    return fmt::format("wait status {}", status);
}

int exit_code_of(int status) {
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return 1;
}

}  // namespace narwhal::server
