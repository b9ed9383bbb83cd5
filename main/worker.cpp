#include "main/worker.hpp"

#include "asgi/inbox.hpp"
#include "asgi/log.hpp"
#include "main/interpreter_thread.hpp"
#include "main/loop_watch.hpp"
#include "python/app_loop.hpp"
#include "python/interpreter.hpp"
#include "python/log_bridge.hpp"
#include "python/subinterpreter.hpp"
#include "server/front_end.hpp"
#include "server/io_thread.hpp"
#include "server/metrics_exposition.hpp"
#include "server/metrics_listener.hpp"
#include "server/pubsub_bus.hpp"
#include "server/pubsub_bus_directory.hpp"
#include "server/pubsub_redis.hpp"
#include "server/supervisor.hpp"
#include "server/systemd.hpp"
#include "server/systemd_watchdog.hpp"
#include "server/tls_context.hpp"

#include <Python.h>
#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <unistd.h>
#include <utility>
#include <vector>

namespace narwhal {

namespace {

// Runs `f` with the main thread's GIL released: the sub-interpreters' threads need it to
// be made and finalised, the I/O threads and stack readers may want it.
template <class F> void without_gil(F&& f) {
    PyThreadState* state = PyEval_SaveThread();
    f();
    PyEval_RestoreThread(state);
}

void push_shutdown(asgi::Inbox& inbox) {
    asgi::Event ev;
    ev.kind = asgi::Event::Kind::shutdown;
    inbox.push(std::move(ev));
}

// The interpreters 1..M-1 of the worker, each on its thread.
class OtherInterpreters {
public:
    // Starts them all at once (their imports and lifespan startups run in parallel);
    // 0 once each has started, else the first failure's status, the others aborted.
    int start(const config::Settings& settings, const std::string& venv) {
        int status = 0;
        without_gil([&] {
            for (int i = 1; i < settings.interpreters; ++i)
                threads_.push_back(std::make_unique<InterpreterThread>(settings, i, venv));
            for (auto& t : threads_)
                if (int s = t->wait_started(); s != 0 && status == 0)
                    status = s;
        });
        if (status != 0)
            abort();
        return status;
    }
    // Each joined to its inbox; false if one could not be (the others were).
    bool serve(std::vector<std::unique_ptr<asgi::Inbox>>& inboxes, asgi::Stats& stats,
               std::vector<std::unique_ptr<LoopWatch>>& watches) {
        bool all = true;
        without_gil([&] {
            for (std::size_t i = 0; i < threads_.size(); ++i)
                all = threads_[i]->serve(*inboxes[i + 1], stats, *watches[i + 1]) && all;
        });
        return all;
    }
    // Those not serving run their lifespan shutdown; all are finalised.
    void abort() {
        without_gil([&] {
            for (auto& t : threads_)
                t->abort();
            join();
        });
    }
    // GIL released. Until each is finalised: 0, or the first failure's status.
    int join() {
        int status = 0;
        for (auto& t : threads_)
            if (int s = t->join(); s != 0 && status == 0)
                status = s;
        return status;
    }

private:
    std::vector<std::unique_ptr<InterpreterThread>> threads_;
};

int serve_bound(const config::Settings& settings, python::AppLoop& main_loop,
                OtherInterpreters& others, std::vector<std::unique_ptr<asgi::Inbox>>& inboxes,
                server::FrontEnd& front, const std::function<void()>& ready,
                server::WorkerSlot* slot, const std::string& bus_dir) {
    // Under a master, observations go straight to the worker's row of its table.
    if (slot)
        front.context().metrics = &slot->metrics;
    std::vector<std::unique_ptr<LoopWatch>> watches;
    for (int i = 0; i < settings.interpreters; ++i)
        watches.push_back(std::make_unique<LoopWatch>(settings, i, front, slot));
    if (auto& health = front.context().health) {
        std::vector<const asgi::LoopMonitor*> loops;
        for (auto& watch : watches)
            loops.push_back(&watch->monitor());
        health->set_loops(std::move(loops));
    }
    // A single process serves its own /metrics, on a thread of its own so it answers
    // while the loops are stuck (under a master, the master serves it for all workers).
    std::unique_ptr<server::MetricsListener> metrics;
    if (!slot && !settings.metrics_bind.empty()) {
        metrics = std::make_unique<server::MetricsListener>(
            settings.metrics_bind, [&front, n = settings.interpreters] {
                server::MetricsSample sample;
                sample.counters = server::counters_of(front.context().stats,
                                                      static_cast<int64_t>(front.in_flight()),
                                                      static_cast<int64_t>(front.queued()));
                sample.metrics = front.context().metrics;
                sample.interpreters = static_cast<std::size_t>(n);
                sample.start_time_seconds = server::process_start_time();
                return server::render_metrics(sample);
            });
        metrics->start_thread();
        log::info("Prometheus metrics on {}", metrics->url());
    }
    auto& stats = front.context().stats;
    asgi::IoPump io;
    if (server::IoThread* inline_io = front.inline_io())
        io = {inline_io->descriptor(), [](void* t) { static_cast<server::IoThread*>(t)->pump(); },
              inline_io};
    if (!main_loop.attach(*inboxes[0], stats, watches[0]->monitor(),
                          watches[0]->heartbeat_interval(), io)) {
        others.abort();
        return 1;
    }
    if (!others.serve(inboxes, stats, watches)) {
        for (auto& inbox : inboxes)
            push_shutdown(*inbox);
        without_gil([&] { others.join(); });
        return 1;
    }
    watches[0]->start(nullptr);

    // --pubsub-redis: Redis links this worker to the others and to other servers. Made
    // before the front end starts, destroyed after it stopped (end of this function).
    std::unique_ptr<server::PubSubRedis> redis;
    if (!settings.pubsub_redis.empty()) {
        redis = std::make_unique<server::PubSubRedis>(settings, front.context(), front.pubsub(),
                                                      front.relay_thread());
        front.pubsub().add_relay(redis.get());
    }

    // Under a master, without --pubsub-redis: the worker bus carries publications to the
    // other workers (server/pubsub_bus.hpp). Also with one worker: SIGTTIN and rolling
    // restarts run others beside it. Destroyed after front.stop() below.
    std::unique_ptr<server::PubSubBus> bus;
    if (slot && !bus_dir.empty() && settings.pubsub_redis.empty()) {
        bus = std::make_unique<server::PubSubBus>(
            bus_dir, front.pubsub(), front.relay_thread(), front.context(),
            static_cast<std::size_t>(settings.pubsub_max_queue));
        front.pubsub().add_relay(bus.get());
        bus->start();
    }

    auto drain_begun = std::make_shared<bool>(false);
    front.start(
        [&front, &inboxes, slot, drain_begun, delay = settings.timeout_shutdown_delay](int nth) {
            // I/O thread: stop taking work at once, then let the interpreters finish what
            // they have. Each signal reaches every interpreter: the second one stops the
            // waiting.
            auto shutdown = [&inboxes] {
                for (auto& inbox : inboxes)
                    push_shutdown(*inbox);
            };
            auto drain = [&front, shutdown, drain_begun] {
                if (std::exchange(*drain_begun, true))
                    return;
                front.begin_shutdown();
                // The requests of connections accepted just before the listener closed reach
                // the interpreters before the shutdown does, so they wait for them.
                front.after_first_requests(shutdown);
            };
            if (nth != 1) {
                drain();  // a second signal during --timeout-shutdown-delay ends the delay
                return shutdown();
            }
            if (slot)
                slot->set_state(server::WorkerState::draining);
            if (delay <= 0)
                return drain();
            // --timeout-shutdown-delay: ready probes answer 503 while the listener still
            // serves, so a balancer takes this process out before connections are refused.
            log::info("Shutting down in {:g} s (--timeout-shutdown-delay)", delay);
            front.delay_shutdown(config::milliseconds_of(delay), drain);
        });
    // Under a master (a slot), the master printed where it runs, once (uvicorn's rule).
    if (!slot)
        log::info("narwhal running on {} (Press CTRL+C to quit)", front.description());
    if (settings.interpreters > 1)
        log::info("Serving with {} interpreters, each with its own GIL and event loop",
                  settings.interpreters);
    if (slot)
        slot->set_state(server::WorkerState::ready);  // before the master hears it
    if (ready)
        ready();
    // systemd (a no-op outside it, and in a master's workers): READY=1 now that the
    // lifespan startup is done and the listener accepts; WATCHDOG=1 while the loops turn.
    server::systemd::ready(fmt::format("Serving on {}", front.description()));
    std::vector<const asgi::LoopMonitor*> loops;
    for (auto& watch : watches)
        loops.push_back(&watch->monitor());
    server::systemd::WatchdogFeeder systemd_watchdog(std::move(loops),
                                                     settings.timeout_worker_healthcheck);

    int status = main_loop.serve();
    if (status != 0)  // the main loop failed: the others stop too
        for (std::size_t i = 1; i < inboxes.size(); ++i)
            push_shutdown(*inboxes[i]);
    without_gil([&] {
        // This loop has ended: no watchdog report while the others finish their requests.
        watches[0]->stop();
        if (int s = others.join(); s != 0 && status == 0)
            status = s;
        // Let the I/O threads write what they were handed and close those connections
        // (bounded: a client that does not read must not hold the exit). Inline, this
        // thread is the I/O thread: it runs the network side until then.
        auto closed = [&stats] { return stats.connections.load() == 0; };
        auto limit = std::chrono::seconds(2);
        if (server::IoThread* inline_io = front.inline_io()) {
            inline_io->drive_until(closed, limit);
        } else {
            auto until = std::chrono::steady_clock::now() + limit;
            while (!closed() && std::chrono::steady_clock::now() < until)
                std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        front.begin_shutdown();
        front.stop();
    });
    front.log_stats();
    return status;
}

// The main thread, holding the main interpreter's GIL: interpreter 0 is the main
// interpreter on this thread (so one interpreter is exactly the path without
// sub-interpreters); the others have threads of their own.
int serve(const config::Settings& settings, const std::string& venv,
          const std::shared_ptr<server::TlsStore>& tls, const std::function<void()>& ready,
          server::WorkerSlot* slot, const std::string& bus_dir) {
    python::AppLoop main_loop(settings, 0);
    int status = main_loop.start();
    OtherInterpreters others;
    if (status == 0 && settings.interpreters > 1)
        status = others.start(settings, venv);
    if (status == 0) {
        std::vector<std::unique_ptr<asgi::Inbox>> inboxes;
        std::vector<asgi::Inbox*> inbox_list;
        for (int i = 0; i < settings.interpreters; ++i) {
            inboxes.push_back(std::make_unique<asgi::Inbox>(settings.inbox_capacity));
            inbox_list.push_back(inboxes.back().get());
        }
        server::FrontEnd front(settings, inbox_list, tls);
        try {
            front.bind();
            status = serve_bound(settings, main_loop, others, inboxes, front, ready, slot, bus_dir);
        } catch (const std::system_error& e) {
            log::error("{}", e.what());
            log::error("Cannot serve: stopping the application.");
            for (auto& inbox : inboxes)  // those already serving stop too
                push_shutdown(*inbox);
            others.abort();
            status = 1;
        }
    }
    // From the lifespan startup on, whatever ended serving, the lifespan shutdown runs
    // (a no-op when serving ran it).
    main_loop.finish();
    return status;
}

}  // namespace

int refuse_interpreters(const config::Settings& settings) {
    if (settings.interpreters > 1 && settings.io_threads == 0) {
        log::error("--io-threads 0 runs the network I/O on the interpreter's thread; with "
                   "--interpreters {} the I/O needs threads of its own (--io-threads 1 or "
                   "more, or auto).",
                   settings.interpreters);
        return 2;
    }
    if (settings.interpreters <= 1 || python::own_gil_supported)
        return 0;
    log::error("--interpreters {} needs own-GIL sub-interpreters (CPython 3.12 or later), but "
               "narwhal embeds CPython {}: use --workers {} instead.",
               settings.interpreters, PY_VERSION, settings.interpreters);
    return 2;
}

int run_worker(const config::Settings& given, int argc, const char* const* argv,
               const std::function<void()>& ready, server::WorkerSlot* slot) {
    config::Settings settings = given;
    settings.io_threads = given.resolved_io_threads(server::usable_cpus());
    if (int refused = refuse_interpreters(settings))
        return refused;
    // Before Python starts: a certificate that cannot be used stops start-up at once.
    std::shared_ptr<server::TlsStore> tls;
    if (settings.tls()) {
        try {
            tls = std::make_shared<server::TlsStore>(settings);
        } catch (const server::TlsError& e) {
            log::error("{}", e.what());
            return 2;
        }
    }
    // Before Python starts, so the app never sees it in its environment.
    std::string bus_dir = server::PubSubBusDirectory::take_from_environment();
    // Like `python`, a VIRTUAL_ENV in the environment names the venv when --venv does not.
    const char* env_venv = std::getenv("VIRTUAL_ENV");
    std::string venv = !settings.venv.empty() ? settings.venv : env_venv ? env_venv : "";
    try {
        python::start_interpreter(argc, argv, venv);
    } catch (const python::VenvError& e) {
        log::error("Cannot use the virtualenv: {}", e.what());
        return 2;
    } catch (const std::exception& e) {
        log::error("Cannot start Python: {}", e.what());
        return 1;
    }
    int status = 1;
    std::unique_ptr<python::LogBridge> log_bridge = python::LogBridge::start();
    if (log_bridge) {
        status = serve(settings, venv, tls, ready, slot, bus_dir);
    } else {
        PyErr_Print();
    }
    log::info("Finished server process [{}]", ::getpid());
    log_bridge.reset();  // delivers what is queued while Python still runs
    python::stop_interpreter();
    return status;
}

}  // namespace narwhal
