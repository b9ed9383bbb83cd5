#include "python/app_loop.hpp"

#include "asgi/deferred_wake.hpp"
#include "asgi/log.hpp"
#include "python/dispatcher.hpp"
#include "python/loop_services.hpp"

#include <string>
#include <unistd.h>

namespace narwhal::python {

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

const char* log_level_name(config::LogLevel l) {
    static constexpr const char* names[] = {"trace",   "debug", "info",
                                            "warning", "error", "critical"};
    return names[static_cast<int>(l)];
}

Ref import(const char* name) { return Ref::steal(PyImport_ImportModule(name)); }

Ref attr(PyObject* o, const char* name) {
    return o ? Ref::steal(PyObject_GetAttrString(o, name)) : Ref();
}

Ref boolean(bool b) { return Ref::borrow(b ? Py_True : Py_False); }

std::string text(PyObject* o) {
    Ref s = o ? Ref::steal(PyObject_Str(o)) : Ref();
    const char* p = s ? PyUnicode_AsUTF8(s.get()) : nullptr;
    if (!p) {
        PyErr_Clear();
        return "(unprintable error)";
    }
    return p;
}

// The Python error being raised, as one line (its str()), cleared.
std::string error_text() {
    Ref exc = Ref::steal(fetch_exception());
    return exc ? text(exc.get()) : std::string("unknown error");
}

}  // namespace

AppLoop::AppLoop(const config::Settings& settings, int interpreter)
    : settings_(settings), interpreter_(interpreter) {}

AppLoop::~AppLoop() = default;

void AppLoop::log_startup_error(const char* what) {
    Ref exc = Ref::steal(fetch_exception());
    if (!exc)
        return;
    Ref load_error = attr(import("narwhal._loader").get(), "LoadError");
    if (load_error && PyObject_IsInstance(exc.get(), load_error.get()) == 1) {
        log::error("{} {}", what, text(exc.get()));  // uvicorn prints no traceback there
    } else {
        Ref log_exception = attr(import("narwhal._log").get(), "log_exception");
        Ref r = log_exception
                    ? Ref::steal(PyObject_CallFunction(log_exception.get(), "sO", what, exc.get()))
                    : Ref();
        if (!r)
            log::error("{} {}", what, text(exc.get()));
    }
    PyErr_Clear();
    if (interpreter_ == 0)
        return;
    Ref module = runtime_ ? Ref::steal(PyObject_CallMethod(runtime_.get(), "subinterpreter_refusal",
                                                           "O", exc.get()))
                          : Ref();
    if (module && PyUnicode_Check(module.get()))
        log::error("Interpreter {}: the extension module {} cannot be loaded in a sub-interpreter; "
                   "run this app with --workers {} instead of --interpreters {}.",
                   interpreter_, text(module.get()), settings_.interpreters,
                   settings_.interpreters);
    PyErr_Clear();
}

int AppLoop::start() {
    runtime_ = import("narwhal._runtime");
    Ref logconfig = import("narwhal._logconfig");
    if (!runtime_ || !logconfig) {
        log::error("{}", error_text());
        return 1;
    }
    // Before the app is imported, as uvicorn does: an app that configures logging when
    // imported overrides this.
    Ref installed = Ref::steal(PyObject_CallMethod(
        logconfig.get(), "install", "sOOOss", settings_.log_config.c_str(),
        Ref::steal(PyUnicode_FromString(log_level_name(settings_.log_level))).get(),
        boolean(settings_.log_format == config::LogFormat::json).get(),
        boolean(settings_.access_log).get(), settings_.venv.c_str(), settings_.app_dir.c_str()));
    if (!installed) {
        log::error("{}", error_text());
        return 1;
    }
    Ref app = Ref::steal(PyObject_CallMethod(
        runtime_.get(), "setup", "ssOs", settings_.app.c_str(), settings_.app_dir.c_str(),
        boolean(settings_.factory).get(), interface_name(settings_.interface)));
    Ref loop = app ? Ref::steal(PyObject_CallMethod(runtime_.get(), "create_loop", "s",
                                                    loop_name(settings_.loop)))
                   : Ref();
    if (!loop) {
        log_startup_error("Error loading ASGI app.");
        return 1;
    }
    if (interpreter_ == 0)
        log::info("Started server process [{}]", ::getpid());
    else
        log::info(
            "Started interpreter {} in server process [{}] ({} loop)", interpreter_, ::getpid(),
            text(Ref::steal(PyObject_GetAttrString(reinterpret_cast<PyObject*>(Py_TYPE(loop.get())),
                                                   "__module__"))
                     .get()));
    Ref started = Ref::steal(
        PyObject_CallMethod(runtime_.get(), "startup", "s", lifespan_name(settings_.lifespan)));
    if (!started) {
        log::error("{}", error_text());
        return 1;
    }
    if (PyObject_IsTrue(started.get()) != 1)
        return 3;
    // From here on the app's lifespan startup has run: whatever ends serving (a taken
    // address, a failure below), its shutdown runs too (finish()).
    lifespan_started_ = true;
    return 0;
}

bool AppLoop::attach(asgi::Inbox& inbox, asgi::Stats& stats, asgi::LoopMonitor& monitor,
                     double heartbeat_interval, const asgi::IoPump& io) {
    Ref state = Ref::steal(PyObject_CallMethod(runtime_.get(), "lifespan_state", nullptr));
    Ref log_exception = attr(import("narwhal._log").get(), "log_exception");
    Ref disconnected = attr(import("narwhal._errors").get(), "ClientDisconnected");
    Ref loop = attr(runtime_.get(), "_loop");
    Ref app = attr(runtime_.get(), "_app");
    Ref on_shutdown = attr(runtime_.get(), "on_shutdown_event");
    Ref native = import("_narwhal");
    if (!state || !log_exception || !disconnected || !loop || !app || !on_shutdown || !native) {
        log::error("{}", error_text());
        return false;
    }
    LoopConfig cfg;
    cfg.root_path = settings_.root_path;
    cfg.read_window = settings_.read_window;
    cfg.send_high_water = settings_.send_high_water;
    cfg.send_low_water = settings_.send_low_water;
    cfg.batch = settings_.inbox_batch;
    cfg.disconnect_grace = settings_.timeout_disconnect_grace;
    cfg.cancel_grace = settings_.timeout_cancel_grace;
    cfg.request_timeout = settings_.timeout_request;
    cfg.heartbeat_interval = heartbeat_interval;
    cfg.reset_contextvars = settings_.reset_contextvars;
    monitor.thread_ident.store(PyThread_get_thread_ident());
    services_ = LoopServices::create(native.get(), stats, monitor, cfg, loop.get(), runtime_.get(),
                                     log_exception.get(), disconnected.get());
    if (services_)
        dispatcher_ = Dispatcher::create(inbox, *services_, app.get(), loop.get(), state.get(),
                                         on_shutdown.get());
    if (dispatcher_)
        dispatcher_->set_io_pump(io);
    Ref attached = dispatcher_
                       ? Ref::steal(PyObject_CallMethod(
                             runtime_.get(), "attach_dispatcher", "Oddd", dispatcher_->handle(),
                             settings_.timeout_orphan_tasks, settings_.timeout_graceful_shutdown,
                             settings_.timeout_cancel_grace))
                       : Ref();
    if (!attached) {
        log::error("{}", error_text());
        return false;
    }
    return true;
}

int AppLoop::serve() {
    int status = 0;
    Ref served =
        Ref::steal(PyObject_CallMethod(runtime_.get(), "serve", "O", dispatcher_->handle()));
    if (!served) {
        Ref exc = Ref::steal(fetch_exception());
        Ref log_exception = attr(import("narwhal._log").get(), "log_exception");
        Ref r = log_exception ? Ref::steal(PyObject_CallFunction(log_exception.get(), "sO",
                                                                 "Event loop failed", exc.get()))
                              : Ref();
        if (!r)
            log::error("Event loop failed: {}", text(exc.get()));
        PyErr_Clear();
        status = 1;
    }
    // The loop stopped mid-iteration: responses the last tasks sent may still sit in the
    // deferred wake-ups (or a held start). Send them on their way.
    services_->flush();
    // No loop iteration is left to batch wake-ups into: from here on (the network side
    // finishing on this thread, the lifespan shutdown), whoever produces work wakes its
    // consumer at once.
    asgi::set_wake_scheduler(nullptr, nullptr);
    return status;
}

void AppLoop::finish() {
    // The Python handle outlives the dispatcher (its methods then do nothing).
    dispatcher_.reset();
    services_.reset();
    if (!lifespan_started_)
        return;
    Ref stopped = Ref::steal(PyObject_CallMethod(runtime_.get(), "stop_lifespan", "d",
                                                 settings_.timeout_graceful_shutdown));
    if (!stopped)
        log::error("{}", error_text());
    Ref finished = Ref::steal(PyObject_CallMethod(runtime_.get(), "finish", nullptr));
    if (!finished)
        log::error("{}", error_text());
}

}  // namespace narwhal::python
