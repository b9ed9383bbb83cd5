// The master process of --workers: binds the listeners once, forks the workers, and
// supervises them (respawn with backoff, stop on start-up failure, graceful stop on
// SIGTERM/SIGINT, rolling restart on SIGHUP, one worker more or fewer on SIGTTIN and
// SIGTTOU). It never starts Python: a worker's body comes from the composition root, and
// runs only in the forked child.
#pragma once

#include "config/settings.hpp"
#include "server/worker_process.hpp"
#include "server/worker_slots.hpp"

#include <functional>

namespace narwhal::server {

// What a worker runs, given the settings it serves with (the master's, with the
// inherited listening socket as `fd`, or the resolved port under --reuse-port), and its
// slot in the master's table (state, loop heartbeat, stats).
using WorkerMain = std::function<int(const config::Settings&, WorkerSlot& slot,
                                     const std::function<void()>& ready)>;

// SIGHUP: the configuration read again from the same sources as at start (command line,
// environment, config file), with the same precedence. Throws (config::ConfigError) when
// it no longer loads; the master then keeps its settings and workers.
using SettingsReader = std::function<config::Settings()>;

// Runs the master until it stops; returns the process exit status: 0 after a clean
// stop, the failing worker's status when a worker fails during start-up, 1 when the
// address cannot be bound or workers had to be killed.
int run_supervisor(const config::Settings& settings, const WorkerMain& worker_main,
                   const SettingsReader& reread);

// --workers auto: the CPUs this process may run on (its affinity mask, which container
// CPU sets narrow), at least 1.
int usable_cpus();

}  // namespace narwhal::server
