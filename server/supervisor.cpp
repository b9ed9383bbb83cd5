#include "server/supervisor.hpp"

#include "asgi/log.hpp"
#include "server/listener.hpp"
#include "server/supervisor_state.hpp"
#include "server/systemd.hpp"

#include <boost/asio/io_context.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <memory>
#include <optional>
#include <poll.h>
#include <sched.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>
#include <utility>
#include <vector>

namespace narwhal::server {

namespace detail {

namespace {

// A stopping worker's own bound is --timeout-graceful-shutdown, then 3 cancellation
// rounds + 1 s (docs/operations.md, "Graceful shutdown"); this much more covers its
// lifespan shutdown and last log lines before the master uses SIGKILL.
constexpr auto stop_margin = std::chrono::seconds(5);

// How often the master reads the table: four times per health-check or start-up timeout
// (a hung or stuck worker is acted on at most a quarter late), and with
// --limit-max-requests every 0.1 s (uvicorn's tick), at most once a second otherwise.
Clock::duration check_period(const config::Settings& s) {
    double seconds = 1.0;
    for (double timeout : {s.timeout_worker_healthcheck, s.timeout_worker_startup})
        if (timeout > 0)
            seconds = std::min(seconds, timeout / 4);
    if (s.limit_max_requests > 0)
        seconds = std::min(seconds, 0.1);
    seconds = std::max(seconds, 0.01);
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

}  // namespace

Supervisor::Supervisor(const config::Settings& settings, const WorkerMain& worker_main,
                       const SettingsReader& reread)
    : settings_(settings), worker_main_(worker_main), reread_(reread),
      health_(HealthSettings::from(settings), 0), check_period_(check_period(settings)) {}

Supervisor::~Supervisor() {
    if (signal_fd_ >= 0)
        ::close(signal_fd_);
    if (listen_fd_ >= 0)
        ::close(listen_fd_);
    // The socket file is the master's: workers only inherited its descriptor.
    if (!settings_.uds.empty() && settings_.fd < 0)
        ::unlink(settings_.uds.c_str());
    ::sigprocmask(SIG_SETMASK, &old_mask_, nullptr);
}

// Binds once, with the same code a single process uses. The io_context only carries the
// socket while it is made: it starts no thread, and is gone before any fork. The master's
// start line is uvicorn's: where it listens, then its own PID; workers do not repeat it.
bool Supervisor::bind() {
    ListenSpec spec{settings_.host, settings_.port, settings_.uds, settings_.fd, settings_.backlog};
    spec.tls = settings_.tls();
    bool reuse_port = settings_.reuse_port && settings_.fd < 0 && settings_.uds.empty();
    if (reuse_port) {
        // Bound, not listening: it checks the address, resolves port 0 and keeps the port
        // for the workers' own SO_REUSEPORT sockets, but takes no connections itself.
        spec.reuse_port = true;
        spec.listen = false;
    }
    try {
        boost::asio::io_context ioc;
        Listener listener(ioc, spec);
        bound_port_ = listener.port();
        listen_on_ = listener.description();
        log::info("narwhal running on {} (Press CTRL+C to quit)", listener.description());
        if (reuse_port)
            log::info("Workers listen on http://{}:{} with SO_REUSEPORT", settings_.host,
                      listener.port());
        listen_fd_ = listener.release();
    } catch (const std::system_error& e) {
        log::error("{}", e.what());
        return false;
    }
    reuse_port_ = reuse_port;
    apply(settings_);
    return true;
}

// The settings the next workers start with, and the master's own uses of them. The
// listener keys never change here (settings_reload.hpp): the workers serve the socket
// (or, under --reuse-port, the port) bound at start.
void Supervisor::apply(const config::Settings& settings) {
    settings_ = settings;
    worker_settings_ = settings;
    worker_settings_.port = bound_port_;
    if (!reuse_port_)
        worker_settings_.fd = listen_fd_;
    health_.configure(HealthSettings::from(settings));
    check_period_ = check_period(settings);
}

int Supervisor::run() {
    // Signals arrive through a descriptor, read in the one loop below: nothing runs in
    // a signal handler, and the master stays single-threaded for every fork (Asio's
    // signal_set would add a process-wide handler state that forked children share).
    sigset_t mask;
    sigemptyset(&mask);
    for (int sig : {SIGCHLD, SIGINT, SIGTERM, SIGUSR1, SIGHUP, SIGTTIN, SIGTTOU})
        sigaddset(&mask, sig);
    ::sigprocmask(SIG_BLOCK, &mask, &old_mask_);
    signal_fd_ = ::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (signal_fd_ < 0) {
        log::error("signalfd: {}", std::strerror(errno));
        return 1;
    }
    if (!bind())
        return 1;
    log::info("Started parent process [{}]", ::getpid());
    auto count = static_cast<std::size_t>(
        settings_.workers == config::Settings::workers_auto ? usable_cpus() : settings_.workers);
    if (count == 0)
        count = 1;  // --reload without --workers
    if (settings_.reload && !start_reloader())
        return 1;
    max_positions_ = std::max(min_position_capacity, count * position_capacity_factor);
    try {
        table_ = std::make_unique<WorkerSlots>(max_positions_ * rows_per_position);
    } catch (const std::system_error& e) {
        log::error("Cannot map the workers' table: {}", e.what());
        return 1;
    }
    try {
        bus_dir_ = std::make_unique<PubSubBusDirectory>();
    } catch (const std::system_error& e) {
        // The server still serves; only narwhal.pubsub stays within each worker.
        log::warning("Worker bus: {}; publications reach only the worker that made them", e.what());
    }
    if (!settings_.metrics_bind.empty()) {
        // Before the first fork; a worker closes its descriptors first thing (start_worker's
        // masters_fds), as close-on-exec does nothing for a fork without exec.
        try {
            metrics_ = std::make_unique<MetricsListener>(settings_.metrics_bind,
                                                         [this] { return render_metrics(); });
        } catch (const std::system_error& e) {
            log::error("{}", e.what());
            return 1;
        }
        log::info("Prometheus metrics on {}", metrics_->url());
    }
    slots_.resize(count);
    for (Slot& slot : slots_) {
        slot.id = next_id_++;
        spawn(slot);
    }
    next_check_ = Clock::now() + check_period_;

    while (!stopping_ || running() > 0) {
        std::vector<pollfd> fds{{signal_fd_, POLLIN, 0}};
        if (reloader_)
            fds.push_back({reloader_->fd(), POLLIN, 0});
        const std::size_t ready_from = fds.size();
        for (const Slot& slot : slots_)
            for (const auto* p : {&slot.process, &slot.successor})
                if (*p && (*p)->ready_fd() >= 0)
                    fds.push_back({(*p)->ready_fd(), POLLIN, 0});
        const std::size_t metrics_from = fds.size();
        int timeout = poll_timeout_ms(Clock::now());
        if (int t = systemd_timeout_ms(Clock::now()); t >= 0 && (timeout < 0 || t < timeout))
            timeout = t;
        if (metrics_) {
            metrics_->add_fds(fds);
            int m = metrics_->timeout_ms();
            if (m >= 0 && (timeout < 0 || m < timeout))
                timeout = m;
        }
        int n = ::poll(fds.data(), fds.size(), timeout);
        if (n < 0 && errno != EINTR) {
            log::error("poll: {}", std::strerror(errno));
            kill_all(SIGKILL);
            return 1;
        }
        // Ready reports before exits: a worker that said ready and died at once must count
        // as having started (respawn), not as a start-up failure (stop everything).
        for (std::size_t i = ready_from; i < metrics_from; ++i) {
            if (!fds[i].revents)
                continue;
            for (Slot& slot : slots_) {
                if (slot.process && slot.process->ready_fd() == fds[i].fd) {
                    if (slot.process->on_ready_readable())
                        on_ready(slot, false);
                    break;
                }
                if (slot.successor && slot.successor->ready_fd() == fds[i].fd) {
                    if (slot.successor->on_ready_readable())
                        on_ready(slot, true);
                    break;
                }
            }
        }
        if (fds[0].revents & POLLIN)
            on_signal();
        if (reloader_ && fds[1].revents)
            reloader_->on_readable(Clock::now());
        if (metrics_ && n >= 0)  // also on a timeout: it drops clients past their deadline
            metrics_->on_poll(std::span<const pollfd>(fds).subspan(metrics_from));
        auto now = Clock::now();
        if (stopping_ && now >= stop_deadline_ && running() > 0) {
            log::warning("Workers still running after the graceful timeout: killing them");
            kill_all(SIGKILL);
            exit_status_ = exit_status_ ? exit_status_ : 1;
            stop_deadline_ = now + stop_margin;  // SIGKILL is not ignored: only reaping left
        }
        if (!stopping_) {
            reload_due(now);
            advance_roll();
            respawn_due(now);
            if (now >= next_check_) {
                check_health(now);
                next_check_ = now + check_period_;
            }
        }
        notify_systemd(now);
    }
    log::info("Stopping parent process [{}]", ::getpid());
    return exit_status_;
}

// Forks a worker into a free row of the table; null when none is free or fork fails.
std::unique_ptr<WorkerProcess> Supervisor::start_worker(std::size_t& row) {
    row = table_->find_free();
    if (row == table_->capacity()) {
        log::error("Cannot start a worker process: every row of the workers' table is in use");
        return nullptr;
    }
    table_->assign(row);
    // In the child: the master's descriptors, except the listening socket it serves.
    std::vector<int> masters_fds{signal_fd_};
    for (const Slot& other : slots_)
        for (const auto* p : {&other.process, &other.successor})
            if (*p && (*p)->ready_fd() >= 0)
                masters_fds.push_back((*p)->ready_fd());
    for (const Worker& w : retiring_)  // a starting worker that SIGTTOU removed
        if (w.process->ready_fd() >= 0)
            masters_fds.push_back(w.process->ready_fd());
    if (metrics_)
        metrics_->descriptors(masters_fds);
    if (reloader_)
        masters_fds.push_back(reloader_->fd());
    if (listen_fd_ >= 0 && worker_settings_.fd != listen_fd_)
        masters_fds.push_back(listen_fd_);  // --reuse-port: the workers bind their own
    const config::Settings& ws = worker_settings_;
    const WorkerMain& main = worker_main_;
    WorkerSlot& mine = (*table_)[row];
    std::unique_ptr<WorkerProcess> process;
    try {
        process = std::make_unique<WorkerProcess>(
            [&ws, &main, &mine](const std::function<void()>& ready) {
                return main(ws, mine, ready);
            },
            masters_fds);
    } catch (const std::system_error& e) {
        log::error("Cannot start a worker process: {}", e.what());
        table_->release(row);
        return nullptr;
    }
    table_->set_pid(
        row, process->pid(),
        std::chrono::duration_cast<std::chrono::nanoseconds>(process->started().time_since_epoch())
            .count());
    log::info("Started worker process [{}]", process->pid());
    return process;
}

void Supervisor::spawn(Slot& slot) {
    slot.respawn_at.reset();
    slot.process = start_worker(slot.row);
    if (!slot.process)
        slot.respawn_at = Clock::now() + RespawnBackoff::cap;
}

void Supervisor::on_signal() {
    signalfd_siginfo info{};
    while (::read(signal_fd_, &info, sizeof info) == sizeof info) {
        int sig = static_cast<int>(info.ssi_signo);
        if (sig == SIGCHLD)
            continue;  // reaped below, all at once: several exits may share one signal
        if (sig == SIGUSR1) {
            // The master's line from the table, then each worker's own line. (Its default
            // action would end the master, and with it every worker.) Only ready workers
            // have their handler; a starting one would die of it.
            log_stats();
            for (Slot& slot : slots_)
                if (slot.process && slot.process->ready())
                    slot.process->signal(SIGUSR1);
            continue;
        }
        if (sig == SIGHUP || sig == SIGTTIN || sig == SIGTTOU) {
            // The operator's: while stopping, there is nothing left to restart or resize.
            if (stopping_)
                log::info("Received {} while stopping: ignored", sig == SIGHUP    ? "SIGHUP"
                                                                 : sig == SIGTTIN ? "SIGTTIN"
                                                                                  : "SIGTTOU");
            else if (sig == SIGHUP)
                on_hangup();
            else if (sig == SIGTTIN)
                add_position("Received SIGTTIN");
            else
                remove_position("Received SIGTTOU");
            continue;
        }
        if (!stopping_) {
            begin_stop(sig == SIGINT ? "SIGINT" : "SIGTERM", 0);
        } else {
            log::warning("Second stop signal: killing the workers without waiting.");
            kill_all(SIGKILL);
            exit_status_ = exit_status_ ? exit_status_ : 1;
        }
    }
    int status = 0;
    pid_t pid;
    while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0)
        on_child_exit(pid, status);
}

void Supervisor::on_child_exit(pid_t pid, int status) {
    if (bus_dir_)
        bus_dir_->forget(pid);  // the other workers stop trying its socket
    std::string how = describe_wait_status(status);
    // The master's own status for a start-up failure: the worker's, or 1 when the master
    // stopped a worker that took too long (its signal is the master's, not the app's).
    int code = exit_code_of(status);
    if (auto timed_out = start_timeouts_.find(pid); timed_out != start_timeouts_.end()) {
        how = fmt::format("{}, then {}", timed_out->second, how);
        code = 1;
        start_timeouts_.erase(timed_out);
    }
    if (code == 0)
        code = 1;  // a worker that exited 0 before it was ready still failed to start
    // A replaced worker that finished draining: its position already has its successor.
    // (Or a starting one SIGTTOU removed: dying of SIGTERM is its clean stop.)
    auto old = std::find_if(retiring_.begin(), retiring_.end(),
                            [pid](const Worker& w) { return w.process->pid() == pid; });
    if (old != retiring_.end()) {
        bool clean = (WIFEXITED(status) && WEXITSTATUS(status) == 0) ||
                     (!old->process->ready() && WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
        release_row(old->row);
        retiring_.erase(old);
        if (clean)
            log::info("Worker process [{}] stopped", pid);
        else
            log::warning("Worker process [{}] stopped with {}", pid, how);
        if (pid == roll_draining_pid_ && !stopping_)
            on_roll_drained(pid);
        return;
    }
    auto succ = std::find_if(slots_.begin(), slots_.end(), [pid](const Slot& s) {
        return s.successor && s.successor->pid() == pid;
    });
    if (succ != slots_.end()) {
        on_successor_failed(*succ, pid, how, code);
        return;
    }
    auto it = std::find_if(slots_.begin(), slots_.end(),
                           [pid](const Slot& s) { return s.process && s.process->pid() == pid; });
    if (it == slots_.end())
        return;
    Slot& slot = *it;
    bool was_ready = slot.process->ready();
    auto uptime = Clock::now() - slot.process->started();
    slot.process.reset();
    release_row(slot.row);
    if (stopping_) {
        // A worker still starting has no handler for SIGTERM yet: dying of it is its
        // clean stop (it had nothing to drain).
        bool clean = (WIFEXITED(status) && WEXITSTATUS(status) == 0) ||
                     (!was_ready && WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
        if (clean)
            log::info("Worker process [{}] stopped", pid);
        else
            log::warning("Worker process [{}] stopped with {}", pid, how);
        if (!clean && exit_status_ == 0)
            exit_status_ = 1;
        return;
    }
    if (!was_ready && on_added_failed(slot, pid, how))
        return;  // the position is gone (`slot` with it)
    if (!was_ready && on_reload_start_failed(pid, how))
        return;
    if (!was_ready) {
        // Import errors, a failed lifespan start-up, a port in use: the next worker would
        // fail the same way. Stop rather than crash-loop, with the worker's status.
        log::error("Worker process [{}] failed during start-up ({}): stopping", pid, how);
        begin_stop("a worker's start-up failure", code);
        return;
    }
    // Replaced on its own account, unless the health check stopped it (counted there).
    if (terminated_.erase(pid) == 0)
        ++restarts_.exit;
    if (slot.successor) {
        // Its replacement is already starting: it takes the position when ready.
        log::warning("Worker process [{}] {} ({}); its replacement is starting", pid,
                     WIFSIGNALED(status) ? "died" : "exited", how);
        return;
    }
    auto delay = slot.backoff.on_death(uptime);
    log::warning("Worker process [{}] {} ({}); starting a new one in {:.1f} s", pid,
                 WIFSIGNALED(status) ? "died" : "exited", how,
                 std::chrono::duration<double>(delay).count());
    slot.respawn_at = Clock::now() + delay;
}

// A replacement that never became ready (it exited, or was stopped for taking too long):
// a start-up failure. The worker it was to replace keeps serving: a rolling restart stops
// at this step; a --limit-max-requests replacement is tried again after a back-off. Only
// when that worker is gone as well is nothing left serving the position: then, as for
// any worker that fails to start, the master stops.
void Supervisor::on_successor_failed(Slot& slot, pid_t pid, const std::string& how, int code) {
    release_row(slot.successor_row);
    slot.successor.reset();
    bool for_roll = std::exchange(slot.successor_for_roll, false);
    if (stopping_)
        return;
    if (for_roll) {
        on_roll_failed(pid, how);
        return;
    }
    if (!slot.process) {
        log::error("Worker process [{}] failed during start-up ({}): stopping", pid, how);
        begin_stop("a worker's start-up failure", code);
        return;
    }
    int64_t now_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
            .count();
    int64_t delay = health_.replace_failed(slot.row, (*table_)[slot.row].generation.load(), now_ns);
    log::error("Worker process [{}] failed during start-up ({}); worker process [{}] keeps "
               "serving, its replacement is tried again in {:.0f} s",
               pid, how, slot.process->pid(), delay / 1e9);
}

void Supervisor::begin_stop(const char* why, int exit_status) {
    stopping_ = true;
    exit_status_ = exit_status;
    log::info("Stopping {} worker processes ({})", running(), why);
    systemd::stopping(fmt::format("Stopping {} worker processes ({})", running(), why));
    kill_all(SIGTERM);
    double worker_bound = settings_.timeout_shutdown_delay + settings_.timeout_graceful_shutdown +
                          3 * settings_.timeout_cancel_grace + 1.0;
    stop_deadline_ =
        Clock::now() +
        std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(worker_bound)) +
        stop_margin;
}

void Supervisor::kill_all(int sig) {
    for (Slot& slot : slots_)
        for (auto* p : {&slot.process, &slot.successor})
            if (*p)
                (*p)->signal(sig);
    for (Worker& w : retiring_)
        w.process->signal(sig);
}

void Supervisor::respawn_due(Clock::time_point now) {
    for (Slot& slot : slots_)
        if (!slot.process && slot.respawn_at && *slot.respawn_at <= now)
            spawn(slot);
}

int Supervisor::poll_timeout_ms(Clock::time_point now) const {
    std::optional<Clock::time_point> next;
    if (stopping_)
        next = stop_deadline_;
    else {
        next = next_check_;
        for (const Slot& slot : slots_)
            if (!slot.process && slot.respawn_at && (!next || *slot.respawn_at < *next))
                next = slot.respawn_at;
        if (auto reload = reloader_ ? reloader_->deadline() : std::nullopt;
            reload && *reload < *next)
            next = reload;
    }
    if (!next)
        return -1;
    auto ms = std::chrono::ceil<std::chrono::milliseconds>(*next - now).count();
    return static_cast<int>(std::clamp<int64_t>(ms, 0, 60'000));
}

std::size_t Supervisor::running() const {
    std::size_t n = retiring_.size();
    for (const Slot& slot : slots_)
        n += (slot.process ? 1 : 0) + (slot.successor ? 1 : 0);
    return n;
}

}  // namespace detail

int usable_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (::sched_getaffinity(0, sizeof set, &set) == 0)
        return std::max(1, CPU_COUNT(&set));
    long n = ::sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? static_cast<int>(n) : 1;
}

int run_supervisor(const config::Settings& settings, const WorkerMain& worker_main,
                   const SettingsReader& reread) {
    detail::Supervisor supervisor(settings, worker_main, reread);
    return supervisor.run();
}

}  // namespace narwhal::server
