#include "server/worker_process.hpp"

#include "catch.hpp"

#include <csignal>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

using narwhal::server::describe_wait_status;
using narwhal::server::exit_code_of;
using narwhal::server::WorkerProcess;

namespace {

// Waits (poll without a timeout: the child either writes or exits) for the start-up pipe.
bool wait_ready(WorkerProcess& w) {
    pollfd p{w.ready_fd(), POLLIN, 0};
    REQUIRE(::poll(&p, 1, -1) == 1);
    return w.on_ready_readable();
}

int wait_exit(pid_t pid) {
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    return status;
}

}  // namespace

TEST_CASE("a worker process reports ready over its pipe and exits with its status",
          "[server][supervisor]") {
    WorkerProcess w(
        [](const std::function<void()>& ready) {
            ready();
            // Its own process group: a terminal's Ctrl-C reaches the master only.
            return ::getpgid(0) == ::getpid() ? 7 : 1;
        },
        {});
    CHECK(w.pid() != ::getpid());
    CHECK(wait_ready(w));
    CHECK(w.ready());
    CHECK(w.ready_fd() == -1);
    int status = wait_exit(w.pid());
    CHECK(exit_code_of(status) == 7);
    CHECK(describe_wait_status(status) == "exit status 7");
}

TEST_CASE("a worker that ends before ready closes its pipe unread", "[server][supervisor]") {
    WorkerProcess w([](const std::function<void()>&) { return 3; }, {});
    CHECK_FALSE(wait_ready(w));
    CHECK_FALSE(w.ready());
    CHECK(exit_code_of(wait_exit(w.pid())) == 3);
}

TEST_CASE("a worker killed by a signal is described by its name", "[server][supervisor]") {
    WorkerProcess w(
        [](const std::function<void()>& ready) {
            ready();
            ::pause();  // until the signal below
            return 0;
        },
        {});
    REQUIRE(wait_ready(w));
    w.signal(SIGKILL);
    int status = wait_exit(w.pid());
    CHECK(describe_wait_status(status) == "signal SIGKILL");
    CHECK(exit_code_of(status) == 128 + SIGKILL);
}
