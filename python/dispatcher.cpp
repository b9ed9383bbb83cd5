#include "python/dispatcher.hpp"

#include "asgi/channel.hpp"
#include "python/cycle.hpp"
#include "python/http_cycle.hpp"
#include "python/request_step.hpp"
#include "python/scope.hpp"
#include "python/ws_cycle.hpp"

#include <exception>
#include <new>

namespace narwhal::python {

// --- the handle --------------------------------------------------------------------

namespace {

struct DispatcherObject {
    PyObject_HEAD Dispatcher* d;  // not owned; nullptr once the dispatcher is gone
};

Dispatcher* dispatcher_of(PyObject* self) { return reinterpret_cast<DispatcherObject*>(self)->d; }

// Runs `fn` for a handle method: a C++ exception must not cross into the interpreter.
template <typename Fn> PyObject* guarded(Fn&& fn) {
    try {
        return fn();
    } catch (const std::bad_alloc&) {
        return PyErr_NoMemory();
    } catch (const std::exception& e) {
        PyErr_SetString(PyExc_RuntimeError, e.what());
        return nullptr;
    }
}

PyObject* gone() { return raise(PyExc_RuntimeError, "the narwhal dispatcher has stopped"); }

PyObject* handle_drain(PyObject* self, PyObject*) {
    return guarded([&]() -> PyObject* {
        if (Dispatcher* d = dispatcher_of(self))
            d->drain();
        Py_RETURN_NONE;
    });
}

PyObject* handle_flush(PyObject* self, PyObject*) {
    return guarded([&]() -> PyObject* {
        if (Dispatcher* d = dispatcher_of(self))
            d->services().flush();
        Py_RETURN_NONE;
    });
}

PyObject* handle_beat(PyObject* self, PyObject*) {
    return guarded([&]() -> PyObject* {
        if (Dispatcher* d = dispatcher_of(self))
            d->services().beat();
        Py_RETURN_NONE;
    });
}

PyObject* handle_inflight(PyObject* self, PyObject*) {
    Dispatcher* d = dispatcher_of(self);
    return d ? PyLong_FromSize_t(d->services().inflight()) : gone();
}

PyObject* handle_idle(PyObject* self, PyObject*) {
    Dispatcher* d = dispatcher_of(self);
    return d ? guarded([&] { return d->services().idle(); }) : gone();
}

PyObject* handle_cancel_all(PyObject* self, PyObject*) {
    Dispatcher* d = dispatcher_of(self);
    if (!d)
        return gone();
    return guarded([&]() -> PyObject* {
        d->services().cancel_all();
        Py_RETURN_NONE;
    });
}

PyObject* handle_current_request(PyObject* self, PyObject*) {
    Dispatcher* d = dispatcher_of(self);
    if (!d)
        Py_RETURN_NONE;
    return guarded([&] { return d->services().current_request(); });
}

// The Python side reports what only it sees, as counters of the worker's stats (the
// metrics endpoint's narwhal_tasks_orphaned_total, ..._unretrieved_total).
PyObject* handle_note_orphan(PyObject* self, PyObject*) {
    if (Dispatcher* d = dispatcher_of(self))
        d->services().stats().orphan_tasks.fetch_add(1, std::memory_order_relaxed);
    Py_RETURN_NONE;
}

PyObject* handle_note_unretrieved(PyObject* self, PyObject*) {
    if (Dispatcher* d = dispatcher_of(self))
        d->services().stats().unretrieved_exceptions.fetch_add(1, std::memory_order_relaxed);
    Py_RETURN_NONE;
}

PyObject* handle_set_task_factory(PyObject* self, PyObject* factory) {
    if (Dispatcher* d = dispatcher_of(self))
        d->set_task_factory(factory);
    Py_RETURN_NONE;
}

PyObject* handle_fd(PyObject* self, void*) {
    Dispatcher* d = dispatcher_of(self);
    return d ? PyLong_FromLong(d->fd()) : gone();
}

PyObject* handle_io_fd(PyObject* self, void*) {
    Dispatcher* d = dispatcher_of(self);
    return d ? PyLong_FromLong(d->io_pump().fd) : gone();
}

PyObject* handle_pump_io(PyObject* self, PyObject*) {
    return guarded([&]() -> PyObject* {
        Dispatcher* d = dispatcher_of(self);
        if (d && d->io_pump().pump)
            d->io_pump().pump(d->io_pump().target);
        Py_RETURN_NONE;
    });
}

void handle_dealloc(PyObject* self) {
    PyTypeObject* type = Py_TYPE(self);
    type->tp_free(self);
    Py_DECREF(type);
}

PyMethodDef handle_methods[] = {
    {"drain", handle_drain, METH_NOARGS, "Takes a batch of events from the inbox."},
    {"pump_io", handle_pump_io, METH_NOARGS,
     "Runs the network events that are ready (when io_fd is not -1)."},
    {"_flush", handle_flush, METH_NOARGS, nullptr},
    {"_beat", handle_beat, METH_NOARGS, nullptr},
    {"inflight", handle_inflight, METH_NOARGS, "Requests running now."},
    {"idle", handle_idle, METH_NOARGS, "A future resolved when no request is running."},
    {"cancel_all", handle_cancel_all, METH_NOARGS, "Cancels every running request (shutdown)."},
    {"current_request", handle_current_request, METH_NOARGS,
     "(id, method, path) of the request whose step is running, or None."},
    {"note_orphan", handle_note_orphan, METH_NOARGS,
     "Counts a spawned task still pending after its request (--timeout-orphan-tasks)."},
    {"note_unretrieved", handle_note_unretrieved, METH_NOARGS,
     "Counts a task exception that was never retrieved."},
    {"set_task_factory", handle_set_task_factory, METH_O,
     "The task factory the app installed (or None): it creates the requests' tasks too."},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef handle_getset[] = {
    {"fd", handle_fd, nullptr, const_cast<char*>("The inbox's eventfd."), nullptr},
    {"io_fd", handle_io_fd, nullptr,
     const_cast<char*>("Readable when network events are ready for pump_io(); -1: none."), nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyType_Slot handle_slots[] = {
    {Py_tp_dealloc, reinterpret_cast<void*>(handle_dealloc)},
    {Py_tp_methods, handle_methods},
    {Py_tp_getset, handle_getset},
    {Py_tp_doc,
     const_cast<char*>("The interpreter's request dispatcher, as narwhal._runtime drives it.")},
    {0, nullptr},
};

PyType_Spec handle_spec = {"narwhal.Dispatcher", sizeof(DispatcherObject), 0,
                           Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION |
                               Py_TPFLAGS_IMMUTABLETYPE,
                           handle_slots};

}  // namespace

int add_dispatcher_type(PyObject* module, NativeState& st) {
    st.dispatcher_type =
        reinterpret_cast<PyTypeObject*>(PyType_FromModuleAndSpec(module, &handle_spec, nullptr));
    return st.dispatcher_type ? 0 : -1;
}

// --- the dispatcher ------------------------------------------------------------------

std::unique_ptr<Dispatcher> Dispatcher::create(asgi::Inbox& inbox, LoopServices& services,
                                               PyObject* app, PyObject* loop, PyObject* state,
                                               PyObject* on_shutdown) {
    std::unique_ptr<Dispatcher> d(new Dispatcher(inbox, services));
    d->app_ = Ref::borrow(app);
    d->loop_ = Ref::borrow(loop);
    d->state_ = Ref::borrow(state == Py_None ? nullptr : state);
    d->on_shutdown_ = Ref::borrow(on_shutdown);
    Ref asyncio = Ref::steal(PyImport_ImportModule("asyncio"));
    if (asyncio)
        d->task_type_ = Ref::steal(PyObject_GetAttrString(asyncio.get(), "Task"));
    d->loop_kwnames_ = Ref::steal(Py_BuildValue("(s)", "loop"));
    d->loop_context_kwnames_ = Ref::steal(Py_BuildValue("(ss)", "loop", "context"));
    d->context_kwnames_ = Ref::steal(Py_BuildValue("(s)", "context"));
    auto* h = PyObject_New(DispatcherObject, services.types().dispatcher_type);
    if (h)
        h->d = d.get();
    d->handle_ = Ref::steal(reinterpret_cast<PyObject*>(h));
    if (!d->task_type_ || !d->loop_kwnames_ || !d->loop_context_kwnames_ || !d->context_kwnames_ ||
        !d->handle_ || !d->scopes_.init(services.names(), services.config().root_path))
        return nullptr;
    d->drain_again_ = Ref::steal(PyObject_GetAttrString(d->handle_.get(), "drain"));
    Ref flush = Ref::steal(PyObject_GetAttrString(d->handle_.get(), "_flush"));
    Ref beat = Ref::steal(PyObject_GetAttrString(d->handle_.get(), "_beat"));
    if (!d->drain_again_ || !flush || !beat)
        return nullptr;
    services.start(flush.get(), beat.get());
    return d;
}

Dispatcher::Dispatcher(asgi::Inbox& inbox, LoopServices& services)
    : inbox_(inbox), services_(services) {
    batch_.reserve(services.config().batch);
}

Dispatcher::~Dispatcher() {
    if (handle_)
        reinterpret_cast<DispatcherObject*>(handle_.get())->d = nullptr;
}

void Dispatcher::drain() {
    drain_scheduled_ = false;
    bool more = inbox_.take(batch_, services_.config().batch);
    for (auto& ev : batch_) {
        switch (ev.kind) {
        case asgi::Event::Kind::request: start_request(ev); break;
        case asgi::Event::Kind::body:
            if (auto* c = static_cast<CycleObject*>(ev.channel->owner))
                cycle_on_body(c, std::move(ev.body), ev.more_body);
            break;
        case asgi::Event::Kind::disconnect:
            if (auto* c = static_cast<CycleObject*>(ev.channel->owner))
                cycle_on_disconnect(c);
            break;
        case asgi::Event::Kind::drained:
            if (auto* c = static_cast<CycleObject*>(ev.channel->owner))
                cycle_on_drained(c);
            break;
        case asgi::Event::Kind::ws_message:
            if (auto* c = static_cast<CycleObject*>(ev.channel->owner))
                cycle_on_ws_message(c, std::move(ev.body), ev.text);
            break;
        case asgi::Event::Kind::ws_closed:
            if (auto* c = static_cast<CycleObject*>(ev.channel->owner))
                cycle_on_ws_closed(c, ev.code);
            break;
        case asgi::Event::Kind::deadline:
            if (auto* c = static_cast<CycleObject*>(ev.channel->owner)) {
                cycle_on_disconnect(c);  // the client already got its 504 (or a close)
                scope_cancel(c, CancelReason::deadline);
            }
            break;
        case asgi::Event::Kind::shutdown: {
            Ref r = Ref::steal(PyObject_CallNoArgs(on_shutdown_.get()));
            if (!r)
                PyErr_WriteUnraisable(on_shutdown_.get());
            break;
        }
        }
        if (PyErr_Occurred())
            PyErr_WriteUnraisable(nullptr);
    }
    batch_.clear();
    // Leave the rest for the next loop iteration so running tasks are not starved.
    if (more && !drain_scheduled_ && drain_again_) {
        drain_scheduled_ = true;
        services_.call_soon(drain_again_.get());
    }
}

void Dispatcher::start_request(asgi::Event& ev) {
    Ref cycle_obj = Ref::steal(reinterpret_cast<PyObject*>(new_cycle(services_, ev.channel)));
    if (!cycle_obj) {
        PyErr_WriteUnraisable(nullptr);
        ev.channel->submit(asgi::Command{.kind = asgi::Command::Kind::abort});
        ev.channel->detach();
        return;
    }
    auto* c = reinterpret_cast<CycleObject*>(cycle_obj.get());
    CycleState& s = *c->s;
    const auto& head = *ev.head;
    s.response = asgi::ResponseState(head.head_request);
    s.websocket = head.websocket;
    s.expect_continue = head.expect_continue;
    // "GET /path HTTP/1.1", for log lines and the watchdog (plain appends: this runs for
    // every request, fmt's parsing does not pay here).
    std::string_view method = head.method_view(), target = head.target_view();
    std::string_view request_id = head.request_id_view();
    s.request_text.reserve(method.size() + target.size() + 10 + request_id.size());
    s.request_text.append(method).append(" ").append(target);
    s.request_text.append(head.version == 10 ? " HTTP/1.0" : " HTTP/1.1");
    s.line_size = s.request_text.size();
    s.request_text.append(request_id);
    if (!ev.body.empty())
        s.body_queue.push_back(std::move(ev.body));
    s.body_complete = !ev.more_body;
    ev.channel->owner = c;
    services_.track(c);  // the running list holds a reference until the request finishes

    Ref send = Ref::steal(new_send(c));
    Ref scope = Ref::steal(head.websocket ? scopes_.websocket(head, *ev.peer, state_.get())
                                          : scopes_.http(head, *ev.peer, state_.get()));
    if (!send || !scope) {
        Ref exc = Ref::steal(fetch_exception());
        cycle_fail(c, exc.get() ? exc.get() : Py_None);
        return;
    }
    Ref coro = Ref::steal(PyObject_CallFunctionObjArgs(app_.get(), scope.get(), cycle_obj.get(),
                                                       send.get(), nullptr));
    Ref step = coro ? Ref::steal(new_request_step(c, coro.get())) : Ref();
    // Not loop.create_task: narwhal's factory (which tracks tasks the app spawns) is not
    // for the request's own task. A factory the app installed is (it may trace requests).
    // --reset-contextvars: a new, empty Context, passed as loop.create_task passes one.
    const bool fresh = services_.config().reset_contextvars;
    Ref context = step && fresh ? Ref::steal(PyContext_New()) : Ref();
    Ref task;
    if (step && (!fresh || context)) {  // else the error that stopped it is set
        if (app_task_factory_) {
            PyObject* args[] = {loop_.get(), step.get(), context.get()};
            task = Ref::steal(PyObject_Vectorcall(app_task_factory_.get(), args, 2,
                                                  context ? context_kwnames_.get() : nullptr));
        } else {
            PyObject* args[] = {step.get(), loop_.get(), context.get()};
            task = Ref::steal(
                PyObject_Vectorcall(task_type_.get(), args, 1,
                                    context ? loop_context_kwnames_.get() : loop_kwnames_.get()));
        }
    }
    if (!task) {
        Ref exc = Ref::steal(fetch_exception());
        cycle_fail(c, exc.get() ? exc.get() : Py_None);
        return;
    }
    s.task = std::move(task);
}

}  // namespace narwhal::python
