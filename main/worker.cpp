#include "main/worker.hpp"

#include "asgi/inbox.hpp"
#include "asgi/log.hpp"
#include "python/dispatcher.hpp"
#include "python/interpreter.hpp"
#include "python/log_bridge.hpp"
#include "python/loop_services.hpp"
#include "python/stack_reader.hpp"
#include "server/front_end.hpp"
#include "server/watchdog.hpp"

#include <pybind11/embed.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <unistd.h>

namespace py = pybind11;

namespace narwhal {

using python::Dispatcher;
using python::LoopServices;

namespace {

const char* lifespan_name(config::LifespanMode m) {
    switch (m) {
    case config::LifespanMode::on: return "on";
    case config::LifespanMode::off: return "off";
    default: return "auto";
    }
}

const char* loop_name(config::LoopKind k) {
    switch (k) {
    case config::LoopKind::asyncio: return "asyncio";
    case config::LoopKind::uvloop: return "uvloop";
    default: return "auto";
    }
}

const char* interface_name(config::Interface i) {
    switch (i) {
    case config::Interface::asgi3: return "asgi3";
    case config::Interface::asgi2: return "asgi2";
    default: return "auto";
    }
}

// Logs a Python start-up error: the plain message for a LoadError (uvicorn prints no
// traceback there), the traceback for anything else.
void log_startup_error(py::error_already_set& e, const char* what) {
    py::module_ loader = py::module_::import("narwhal._loader");
    if (e.matches(loader.attr("LoadError"))) {
        log::error("{} {}", what, py::str(e.value()).cast<std::string>());
        return;
    }
    py::module_::import("narwhal._log").attr("log_exception")(what, e.value());
}

int serve_started(const config::Settings& settings, py::module_& rt,
                  const std::function<void()>& ready, server::WorkerSlot* slot);

const char* log_level_name(config::LogLevel l) {
    static constexpr const char* names[] = {"trace",   "debug", "info",
                                            "warning", "error", "critical"};
    return names[static_cast<int>(l)];
}

int serve(const config::Settings& settings, const std::function<void()>& ready,
          server::WorkerSlot* slot) {
    py::module_ rt = py::module_::import("narwhal._runtime");
    try {
        // Before the app is imported, as uvicorn does: an app that configures logging
        // when imported overrides this.
        py::module_::import("narwhal._logconfig")
            .attr("install")(settings.log_config, log_level_name(settings.log_level),
                             settings.log_format == config::LogFormat::json, settings.access_log,
                             settings.venv, settings.app_dir);
    } catch (py::error_already_set& e) {
        log::error("{}", py::str(e.value()).cast<std::string>());
        return 1;
    }
    try {
        rt.attr("setup")(settings.app, settings.app_dir, settings.factory,
                         interface_name(settings.interface));
        rt.attr("create_loop")(loop_name(settings.loop));
    } catch (py::error_already_set& e) {
        log_startup_error(e, "Error loading ASGI app.");
        return 1;
    }
    log::info("Started server process [{}]", ::getpid());
    if (!rt.attr("startup")(lifespan_name(settings.lifespan)).cast<bool>())
        return 3;
    // From here on the app's lifespan startup has run: whatever ends serving (a taken
    // address, a failure below), its shutdown runs too (a no-op when serving ran it).
    int status = 1;
    try {
        status = serve_started(settings, rt, ready, slot);
    } catch (py::error_already_set& e) {
        log::error("{}", e.what());
    }
    rt.attr("stop_lifespan")(settings.timeout_graceful_shutdown);
    rt.attr("finish")();
    return status;
}

// How often the loop beats: two beats per watchdog threshold, so a healthy loop is never
// more than half a threshold late. Under a master the loop beats even with the watchdog
// off: four beats per health-check timeout (at most 0.5 s apart, which also bounds how
// stale the stats the master reads, and its --limit-max-requests count, can be).
double heartbeat_interval(const config::Settings& settings, bool in_master_table) {
    double interval = settings.watchdog_threshold / 2;
    if (in_master_table) {
        double for_master = 0.5;
        if (settings.timeout_worker_healthcheck > 0)
            for_master = std::min(for_master, settings.timeout_worker_healthcheck / 4);
        interval = interval > 0 ? std::min(interval, for_master) : for_master;
    }
    return interval;
}

int serve_started(const config::Settings& settings, py::module_& rt,
                  const std::function<void()>& ready, server::WorkerSlot* slot) {
    asgi::Inbox inbox(settings.inbox_capacity);
    server::FrontEnd front(settings, inbox);
    try {
        front.bind();
    } catch (const std::system_error& e) {
        log::error("{}", e.what());
        log::error("Cannot serve: stopping the application.");
        return 1;
    }

    py::object state = rt.attr("lifespan_state")();
    py::object log_exception = py::module_::import("narwhal._log").attr("log_exception");
    py::object disconnected = py::module_::import("narwhal._errors").attr("ClientDisconnected");
    py::object loop = rt.attr("_loop");
    python::LoopConfig cfg;
    cfg.root_path = settings.root_path;
    cfg.read_window = settings.read_window;
    cfg.send_high_water = settings.send_high_water;
    cfg.send_low_water = settings.send_low_water;
    cfg.batch = settings.inbox_batch;
    cfg.disconnect_grace = settings.timeout_disconnect_grace;
    cfg.cancel_grace = settings.timeout_cancel_grace;
    cfg.request_timeout = settings.timeout_request;
    cfg.heartbeat_interval = heartbeat_interval(settings, slot != nullptr);
    asgi::LoopMonitor monitor;
    if (slot)
        monitor.on_beat = [slot, &front](int64_t now) {
            // At the end too: the master keeps a reaped worker's last published counts.
            slot->publish(front.context().stats, front.admission().in_flight(),
                          front.admission().queued());
            if (now == 0)
                slot->end_loop(0);
            else
                slot->beat(0, now);
        };
    monitor.thread_ident.store(PyThread_get_thread_ident());
    std::unique_ptr<LoopServices> services =
        LoopServices::create(py::module_::import("_narwhal").ptr(), front.context().stats, monitor,
                             cfg, loop.ptr(), rt.ptr(), log_exception.ptr(), disconnected.ptr());
    if (!services)
        throw py::error_already_set();
    py::object dispatcher_py;  // set below; the shutdown hook captures it by reference
    py::cpp_function on_shutdown([&]() {
        rt.attr("begin_shutdown")(dispatcher_py, settings.timeout_graceful_shutdown,
                                  settings.timeout_cancel_grace);
    });
    std::unique_ptr<Dispatcher> dispatcher = Dispatcher::create(
        inbox, *services, rt.attr("_app").ptr(), loop.ptr(), state.ptr(), on_shutdown.ptr());
    if (!dispatcher)
        throw py::error_already_set();
    dispatcher_py = py::reinterpret_borrow<py::object>(dispatcher->handle());
    rt.attr("attach_dispatcher")(dispatcher_py, settings.timeout_orphan_tasks);

    std::unique_ptr<python::StackReader> stacks;
    std::unique_ptr<server::Watchdog> watchdog;
    if (settings.watchdog_threshold > 0) {
        stacks = std::make_unique<python::StackReader>();
        watchdog = std::make_unique<server::Watchdog>(monitor, front.context().stats, *stacks,
                                                      settings.watchdog_threshold, 0);
        watchdog->start();
    }

    front.start([&front, &inbox, slot](int nth) {
        // I/O thread: stop taking work at once, then let the interpreter finish what it
        // has. Each signal reaches the interpreter: the second one stops the waiting.
        auto shutdown = [&inbox] {
            asgi::Event ev;
            ev.kind = asgi::Event::Kind::shutdown;
            inbox.push(std::move(ev));
        };
        if (nth != 1)
            return shutdown();
        front.begin_shutdown();
        if (slot)
            slot->set_state(server::WorkerState::draining);
        // The requests of connections accepted just before the listener closed reach
        // the interpreter before the shutdown does, so it waits for them.
        front.after_first_requests(shutdown);
    });
    // Under a master (a slot), the master printed where it runs, once (uvicorn's rule).
    if (!slot)
        log::info("narwhal running on {} (Press CTRL+C to quit)", front.description());
    if (slot)
        slot->set_state(server::WorkerState::ready);  // before the master hears it
    if (ready)
        ready();

    int status = 0;
    try {
        rt.attr("serve")(dispatcher_py);
    } catch (py::error_already_set& e) {
        py::module_::import("narwhal._log").attr("log_exception")("Event loop failed", e.value());
        status = 1;
    }
    // The loop stopped mid-iteration: responses the last tasks sent may still sit in the
    // deferred wake-ups (or a held start). Send them on their way.
    services->flush();
    {
        py::gil_scoped_release nogil;  // I/O threads and the stack reader may want the GIL
        // Let the I/O threads write what they were handed and close those connections
        // (bounded: a client that does not read must not hold the exit).
        auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
        while (front.context().stats.connections.load() > 0 &&
               std::chrono::steady_clock::now() < until)
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        monitor.stop();
        if (watchdog)
            watchdog->stop();
        if (stacks)
            stacks->stop();
        front.begin_shutdown();
        front.stop();
    }
    front.log_stats();
    dispatcher_py = py::object();
    return status;
}

}  // namespace

int run_worker(const config::Settings& settings, int argc, const char* const* argv,
               const std::function<void()>& ready, server::WorkerSlot* slot) {
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
    int status;
    std::unique_ptr<python::LogBridge> log_bridge;
    try {
        log_bridge = python::LogBridge::start();
        if (!log_bridge)
            throw py::error_already_set();
        status = serve(settings, ready, slot);
    } catch (py::error_already_set& e) {
        log::error("{}", e.what());
        status = 1;
    }
    log::info("Finished server process [{}]", ::getpid());
    log_bridge.reset();  // delivers what is queued while Python still runs
    python::stop_interpreter();
    return status;
}

}  // namespace narwhal
