// One worker process: its interpreters (the main one on this thread, with --interpreters
// M the sub-interpreters 1..M-1 on threads of their own) plus the front end's I/O threads,
// from app import to shutdown. The assembly that joins a server::FrontEnd to the
// interpreters' dispatchers.
#pragma once

#include "config/settings.hpp"
#include "server/worker_slots.hpp"

#include <functional>

namespace narwhal {

// Returns the process exit status: 0 after a clean shutdown, 1 when the app cannot be
// loaded or the address cannot be bound (after running the app's lifespan shutdown),
// 2 when the virtualenv does not fit the embedded Python or --interpreters asks for
// sub-interpreters it lacks, 3 when lifespan start-up fails (in any interpreter).
// `ready` runs once the worker serves (app imported, lifespan started, listening): a
// master counts start-up failures until then. Under a master, `slot` is this worker's
// place in the master's table: its state, loop heartbeat and stats go there.
// 2 (logged) when --interpreters asks for more than one interpreter and the embedded
// Python has no own-GIL sub-interpreters (CPython < 3.12), else 0. run_worker checks it
// first; a master checks it before it binds or forks anything.
int refuse_interpreters(const config::Settings& settings);

int run_worker(const config::Settings& settings, int argc, const char* const* argv,
               const std::function<void()>& ready = {}, server::WorkerSlot* slot = nullptr);

}  // namespace narwhal
