#include "main/interpreter_thread.hpp"

#include "asgi/log.hpp"
#include "python/app_loop.hpp"
#include "python/subinterpreter.hpp"

#include <memory>
#include <unistd.h>

namespace narwhal {

InterpreterThread::InterpreterThread(const config::Settings& settings, int index, std::string venv)
    : settings_(settings), index_(index), venv_(std::move(venv)) {
    thread_ = std::thread([this] { run(); });
}

InterpreterThread::~InterpreterThread() {
    abort();
    join();
}

void InterpreterThread::enter(Phase phase) {
    {
        std::lock_guard lock(mu_);
        phase_ = phase;
    }
    cv_.notify_all();
}

int InterpreterThread::wait_started() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return phase_ != Phase::starting; });
    return status_;
}

bool InterpreterThread::serve(asgi::Inbox& inbox, asgi::Stats& stats, LoopWatch& watch) {
    std::unique_lock lock(mu_);
    inbox_ = &inbox;
    stats_ = &stats;
    watch_ = &watch;
    phase_ = Phase::serving;
    cv_.notify_all();
    cv_.wait(lock, [this] { return phase_ == Phase::attached || phase_ == Phase::done; });
    return attached_;
}

void InterpreterThread::abort() {
    std::lock_guard lock(mu_);
    if (phase_ == Phase::starting || phase_ == Phase::started) {
        phase_ = Phase::aborted;
        cv_.notify_all();
    }
}

int InterpreterThread::join() {
    if (thread_.joinable())
        thread_.join();
    return status_;
}

void InterpreterThread::run() {
    auto sub = std::make_unique<python::SubInterpreter>(venv_);
    int status = 1;
    if (!sub->ok())
        log::error("Interpreter {}: {}", index_, sub->error());
    else
        status = run_app(sub->interpreter());
    sub.reset();  // finalised here, in its own thread
    if (status == 0)
        log::info("Finished interpreter {} in server process [{}]", index_, ::getpid());
    std::unique_lock lock(mu_);
    if (phase_ == Phase::starting) {  // it could not even be made
        status_ = status;
        phase_ = Phase::started;
    }
    cv_.notify_all();
    cv_.wait(lock, [this] { return phase_ != Phase::started; });  // abort() or serve()
    status_ = status;
    phase_ = Phase::done;
    cv_.notify_all();
}

int InterpreterThread::run_app(PyInterpreterState* interpreter) {
    python::AppLoop app(settings_, index_);
    int status = app.start();
    PyThreadState* own = PyEval_SaveThread();
    bool serve;
    {
        std::unique_lock lock(mu_);
        status_ = status;
        phase_ = Phase::started;
        cv_.notify_all();
        cv_.wait(lock, [this] { return phase_ == Phase::serving || phase_ == Phase::aborted; });
        serve = phase_ == Phase::serving && status == 0;
    }
    PyEval_RestoreThread(own);
    if (serve) {
        bool attached =
            app.attach(*inbox_, *stats_, watch_->monitor(), watch_->heartbeat_interval());
        if (attached)
            watch_->start(interpreter);
        {
            std::lock_guard lock(mu_);
            attached_ = attached;
            phase_ = Phase::attached;
        }
        cv_.notify_all();
        if (attached) {
            status = app.serve();
            own = PyEval_SaveThread();
            watch_->stop();
            PyEval_RestoreThread(own);
        } else {
            status = 1;
        }
    }
    app.finish();
    return status;
}

}  // namespace narwhal
