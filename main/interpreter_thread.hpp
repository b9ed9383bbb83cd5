// One own-GIL sub-interpreter of a worker on a thread of its own, from its creation to its
// finalisation: as soon as it is made it imports the app and runs the lifespan startup
// (as a separate worker process would); once the front end is bound it is joined to its
// inbox and serves until a shutdown event ends its loop; then it runs its lifespan
// shutdown and is finalised, all in its own thread. The worker's main thread drives it
// through the calls below, holding no GIL while it does.
#pragma once

#include "asgi/inbox.hpp"
#include "asgi/stats.hpp"
#include "config/settings.hpp"
#include "main/loop_watch.hpp"

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace narwhal {

class InterpreterThread {
public:
    // Starts the thread. `index` >= 1 (0 is the main interpreter).
    InterpreterThread(const config::Settings& settings, int index, std::string venv);
    // Joins (after abort() if it never served).
    ~InterpreterThread();
    InterpreterThread(const InterpreterThread&) = delete;
    InterpreterThread& operator=(const InterpreterThread&) = delete;

    // Until the app is imported and its lifespan started: 0, or the worker's exit status
    // (the cause logged by the thread).
    int wait_started();
    // After wait_started() gave 0: joins the loop to `inbox` and starts serving. Returns
    // once it serves (true) or could not be joined (false, logged; the thread then
    // finishes on its own).
    bool serve(asgi::Inbox& inbox, asgi::Stats& stats, LoopWatch& watch);
    // Instead of serve(): the thread runs the lifespan shutdown and finishes.
    void abort();
    // Until the interpreter is finalised: 0, or 1 when its loop failed.
    int join();

private:
    // The main thread moves starting -> serving or aborted; the interpreter's thread
    // moves on to started, attached and done.
    enum class Phase { starting, started, serving, aborted, attached, done };
    void run();
    // The interpreter's own thread, its GIL held: start, then serve or not, then finish.
    int run_app(PyInterpreterState* interpreter);
    void enter(Phase phase);

    const config::Settings& settings_;
    int index_;
    std::string venv_;
    asgi::Inbox* inbox_ = nullptr;
    asgi::Stats* stats_ = nullptr;
    LoopWatch* watch_ = nullptr;
    int status_ = 0;
    bool attached_ = false;

    std::mutex mu_;
    std::condition_variable cv_;
    Phase phase_ = Phase::starting;
    std::thread thread_;
};

}  // namespace narwhal
