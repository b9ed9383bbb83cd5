#include "python/cycle.hpp"

#include "asgi/errors.hpp"
#include "asgi/log.hpp"
#include "asgi/pubsub.hpp"
#include "python/http_cycle.hpp"
#include "python/loop_services.hpp"
#include "python/message_trace.hpp"
#include "python/pubsub_send.hpp"
#include "python/ws_cycle.hpp"

#include <fmt/format.h>

#include <new>
#include <utility>

namespace narwhal::python {

namespace log = narwhal::log;

namespace {

// --- the calls: arguments checked here, then the scope's protocol -------------------

PyObject* receive_call(PyObject* self, PyObject* args, PyObject* kwargs) {
    auto* c = reinterpret_cast<CycleObject*>(self);
    if ((args && PyTuple_GET_SIZE(args) != 0) || (kwargs && PyDict_GET_SIZE(kwargs) != 0))
        return raise(PyExc_TypeError, "receive() takes no arguments");
    if (!c->s->services)
        return stopped();
    PyObject* r = c->s->websocket ? ws_receive(c) : http_receive(c);
    if (message_trace::enabled() && r) [[unlikely]]
        message_trace::received(*c->s, self, r);
    return r;
}

PyObject* send_call(PyObject* self, PyObject* args, PyObject* kwargs) {
    auto* so = reinterpret_cast<SendObject*>(self);
    CycleState& s = *so->cycle->s;
    if (!s.services)
        return stopped();
    const Names& n = s.services->names();
    if (!args || PyTuple_GET_SIZE(args) != 1 || (kwargs && PyDict_GET_SIZE(kwargs)))
        return raise(PyExc_TypeError, "send() takes exactly one argument (the message)");
    PyObject* message = PyTuple_GET_ITEM(args, 0);
    if (!PyDict_Check(message)) {
        PyErr_Format(PyExc_TypeError, "ASGI message must be a dict, got '%s'.",
                     Py_TYPE(message)->tp_name);
        return nullptr;
    }
    if (message_trace::enabled()) [[unlikely]]
        message_trace::sent(s, message);
    PyObject* type = PyDict_GetItemWithError(message, n.type);
    if (!type) {
        if (!PyErr_Occurred())
            PyErr_SetObject(PyExc_KeyError, n.type);
        return nullptr;
    }
    if (!PyUnicode_Check(type))
        return raise(PyExc_TypeError, "ASGI message 'type' must be a str.");
    Py_ssize_t tlen;
    const char* tstr = PyUnicode_AsUTF8AndSize(type, &tlen);
    if (!tstr)
        return nullptr;
    std::string_view tview(tstr, static_cast<std::size_t>(tlen));
    // Before the disconnect check: a handler may publish after its client left.
    if (tview.starts_with(asgi::pubsub_prefix)) [[unlikely]]
        return pubsub_send(so, message, tview);
    if (s.disconnected)
        return raise(s.services->disconnected_type(), asgi::errors::client_disconnected);
    return s.websocket ? ws_send(so, message, tview) : http_send(so, message, tview);
}

// --- lifetime -------------------------------------------------------------------------
// Heap types: each instance holds a reference to its type, released after the object.

int receive_traverse(PyObject* self, visitproc visit, void* arg) {
    auto* c = reinterpret_cast<CycleObject*>(self);
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(c->base.pending);
    if (CycleState* s = c->s) {
        Py_VISIT(s->task.get());
        Py_VISIT(s->receive_waiter.get());
        if (s->parked_sends)
            for (const ParkedSend& p : *s->parked_sends)
                Py_VISIT(p.waiter.get());
    }
    return 0;
}

// Breaks the cycles through the task and the futures (send and the step only point
// back here).
int receive_clear(PyObject* self) {
    auto* c = reinterpret_cast<CycleObject*>(self);
    Py_CLEAR(c->base.pending);
    if (CycleState* s = c->s) {
        s->task = Ref();
        s->receive_waiter = Ref();
        // Moved out first: releasing a future may run code that looks at the cycle.
        auto parked = std::move(s->parked_sends);
    }
    return 0;
}

void receive_dealloc(PyObject* self) {
    PyTypeObject* type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    auto* c = reinterpret_cast<CycleObject*>(self);
    Py_CLEAR(c->base.pending);
    if (c->s) {
        if (c->s->services)
            c->s->services->forget(c);
        if (c->s->channel)
            c->s->channel->detach();
        delete c->s;
        c->s = nullptr;
    }
    type->tp_free(self);
    Py_DECREF(type);
}

int send_traverse(PyObject* self, visitproc visit, void* arg) {
    auto* so = reinterpret_cast<SendObject*>(self);
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(so->base.pending);
    Py_VISIT(reinterpret_cast<PyObject*>(so->cycle));
    return 0;
}

void send_dealloc(PyObject* self) {
    PyTypeObject* type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    auto* so = reinterpret_cast<SendObject*>(self);
    Py_CLEAR(so->base.pending);
    Py_CLEAR(so->cycle);
    type->tp_free(self);
    Py_DECREF(type);
}

PyType_Slot receive_slots[] = {
    {Py_tp_call, reinterpret_cast<void*>(receive_call)},
    {Py_tp_traverse, reinterpret_cast<void*>(receive_traverse)},
    {Py_tp_clear, reinterpret_cast<void*>(receive_clear)},
    {Py_tp_dealloc, reinterpret_cast<void*>(receive_dealloc)},
    {Py_am_await, reinterpret_cast<void*>(awaitable_await)},
    {Py_am_send, reinterpret_cast<void*>(awaitable_send)},
    {Py_tp_iter, reinterpret_cast<void*>(awaitable_await)},
    {Py_tp_iternext, reinterpret_cast<void*>(awaitable_iternext)},
    {Py_tp_methods, awaitable_methods},
    {Py_tp_doc, const_cast<char*>("ASGI receive(): awaitable that returns the next event.")},
    {0, nullptr},
};

PyType_Slot send_slots[] = {
    {Py_tp_call, reinterpret_cast<void*>(send_call)},
    {Py_tp_traverse, reinterpret_cast<void*>(send_traverse)},
    {Py_tp_dealloc, reinterpret_cast<void*>(send_dealloc)},
    {Py_am_await, reinterpret_cast<void*>(awaitable_await)},
    {Py_am_send, reinterpret_cast<void*>(awaitable_send)},
    {Py_tp_iter, reinterpret_cast<void*>(awaitable_await)},
    {Py_tp_iternext, reinterpret_cast<void*>(awaitable_iternext)},
    {Py_tp_methods, awaitable_methods},
    {Py_tp_doc,
     const_cast<char*>("ASGI send(message): awaitable that completes once the message is queued.")},
    {0, nullptr},
};

constexpr unsigned int type_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC |
                                    Py_TPFLAGS_DISALLOW_INSTANTIATION | Py_TPFLAGS_IMMUTABLETYPE;

PyType_Spec receive_spec = {"narwhal.Receive", sizeof(CycleObject), 0, type_flags, receive_slots};
PyType_Spec send_spec = {"narwhal.Send", sizeof(SendObject), 0, type_flags, send_slots};

// --- send backpressure: the parked senders ---------------------------------------------

Ref disconnected_error(CycleState& s) {
    std::string_view text = asgi::errors::client_disconnected;
    Ref message =
        Ref::steal(PyUnicode_FromStringAndSize(text.data(), static_cast<Py_ssize_t>(text.size())));
    return message ? Ref::steal(PyObject_CallOneArg(s.services->disconnected_type(), message.get()))
                   : Ref();
}

// Fails every parked sender with ClientDisconnected (its own instance each: tasks
// append their tracebacks to it); their held messages are dropped.
void fail_parked_sends(CycleState& s) {
    if (!s.sends_parked())
        return;
    std::vector<ParkedSend> parked = std::exchange(*s.parked_sends, {});
    for (ParkedSend& p : parked) {
        Ref exc = disconnected_error(s);
        if (exc)
            fail_waiter(s.services->names(), p.waiter, exc.get());
        else
            PyErr_Clear();
    }
}

// The app is done while senders (tasks it left running) are still parked: nothing is
// paced any more, so the held messages go out now, in order, and every sender completes.
void release_parked_sends(CycleState& s) {
    if (s.disconnected)
        return fail_parked_sends(s);
    std::vector<ParkedSend> parked = std::exchange(*s.parked_sends, {});
    for (std::size_t i = 1; i < parked.size(); ++i)
        if (s.channel)
            s.channel->submit(std::move(parked[i].message));
    for (ParkedSend& p : parked)
        resolve(s.services->names(), p.waiter, Py_None);
}

// --- how a request ends ---------------------------------------------------------------

void finish(CycleObject* c) {
    CycleState& s = *c->s;
    if (s.finished)
        return;
    s.finished = true;
    if (s.channel) {
        s.channel->owner = nullptr;
        s.channel->detach();
    }
    s.receive_waiter = Ref();
    if (s.sends_parked())
        release_parked_sends(s);
    s.services->on_cycle_finished(c);
}

void respond_500(CycleState& s) {
    asgi::Command cmd{.kind = asgi::Command::Kind::body, .status = 500};
    cmd.headers = {{"content-type", "text/plain; charset=utf-8"}, {"connection", "close"}};
    cmd.facts = {.close = true, .connection = true};
    cmd.body = "Internal Server Error";
    cmd.more = false;
    if (s.channel)
        s.channel->submit(std::move(cmd));
}

// A WebSocket app is done: a handshake never answered gets 403 (as a close before the
// accept: the ASGI rule) or 500 after an exception, an open socket is closed (1000, or
// 1011 after an exception). WsSession writes nothing of a denial response before its
// last body, so one left unfinished still gets a clean answer: what the app sent, or
// 500 if it failed or sent less than its Content-Length.
void settle_websocket(CycleState& s, bool failed) {
    if (s.disconnected || !s.channel)
        return;
    switch (s.ws.phase()) {
    case asgi::WebSocketState::Phase::connecting:
        if (failed) {
            respond_500(s);  // WsSession writes it as the HTTP answer to the upgrade
            break;
        }
        log::error("{}", asgi::errors::returned_without_handshake);
        s.channel->submit(asgi::Command{.kind = asgi::Command::Kind::ws_close, .status = 1000});
        break;
    case asgi::WebSocketState::Phase::denial: {
        const asgi::ResponseState& denial = s.ws.denial();
        if (!failed && denial.body_allowed() && denial.content_length() &&
            denial.body_bytes() != *denial.content_length()) {
            log::error("{}", asgi::errors::content_shorter);
            failed = true;
        }
        if (failed)
            respond_500(s);
        else
            s.channel->submit(asgi::Command{.kind = asgi::Command::Kind::body, .more = false});
        break;
    }
    case asgi::WebSocketState::Phase::open:
        s.channel->submit(
            asgi::Command{.kind = asgi::Command::Kind::ws_close, .status = failed ? 1011 : 1000});
        break;
    case asgi::WebSocketState::Phase::closed: break;
    }
}

// After the app is done (normally or not): make sure the connection gets an answer.
void settle_response(CycleState& s, bool failed) {
    if (s.websocket)
        return settle_websocket(s, failed);
    // Nobody left to answer (uvicorn is silent here too).
    if (s.response.complete() || s.disconnected)
        return;
    if (!s.response.started() || s.start_held) {
        // Nothing has left the server yet (a held start is dropped): a clean 500.
        if (!failed)
            log::error("{}", s.response.started() ? asgi::errors::returned_without_complete
                                                  : asgi::errors::returned_without_start);
        s.start_held = false;
        respond_500(s);
        return;
    }
    // Part of the response is out: the only honest signal left is closing the connection.
    if (!failed)
        log::error("{}", asgi::errors::returned_without_complete);
    if (s.channel)
        s.channel->submit(asgi::Command{.kind = asgi::Command::Kind::abort});
}

// Sets `name` on a type made immutable by its flags.
bool set_type_attr(PyTypeObject* type, const char* name, PyObject* value) {
    if (PyDict_SetItemString(type->tp_dict, name, value) < 0)
        return false;
    PyType_Modified(type);
    return true;
}

}  // namespace

int add_cycle_types(PyObject* module, NativeState& st) {
    st.receive_type =
        reinterpret_cast<PyTypeObject*>(PyType_FromModuleAndSpec(module, &receive_spec, nullptr));
    st.send_type =
        reinterpret_cast<PyTypeObject*>(PyType_FromModuleAndSpec(module, &send_spec, nullptr));
    if (!st.receive_type || !st.send_type)
        return -1;
    // Look like `async def` to asyncio.iscoroutinefunction (and so to asgiref, which
    // warns when handed something that does not): asyncio's marker on 3.11 to 3.13, and
    // inspect's from 3.12 on (named _is_coroutine_marker in the first 3.12 releases).
    Ref coroutines = Ref::steal(PyImport_ImportModule("asyncio.coroutines"));
    Ref marker =
        coroutines ? Ref::steal(PyObject_GetAttrString(coroutines.get(), "_is_coroutine")) : Ref();
    PyErr_Clear();
    Ref inspect = Ref::steal(PyImport_ImportModule("inspect"));
    Ref mark312;
    for (const char* name : {"_is_coroutine_mark", "_is_coroutine_marker"}) {
        if (inspect && !mark312)
            mark312 = Ref::steal(PyObject_GetAttrString(inspect.get(), name));
        PyErr_Clear();
    }
    for (PyTypeObject* t : {st.receive_type, st.send_type}) {
        if (marker && !set_type_attr(t, "_is_coroutine", marker.get()))
            return -1;
        if (mark312 && !set_type_attr(t, "_is_coroutine_marker", mark312.get()))
            return -1;
    }
    return 0;
}

CycleObject* new_cycle(LoopServices& services, std::shared_ptr<asgi::Channel> channel) {
    auto* c = PyObject_GC_New(CycleObject, services.types().receive_type);
    if (!c)
        return nullptr;
    c->base.pending = nullptr;
    c->s = new (std::nothrow) CycleState();
    if (!c->s) {
        Py_DECREF(c);
        PyErr_NoMemory();
        return nullptr;
    }
    c->s->services = &services;
    c->s->channel = std::move(channel);
    services.adopt(c);
    PyObject_GC_Track(c);
    return c;
}

PyObject* new_send(CycleObject* cycle) {
    auto* so = PyObject_GC_New(SendObject, cycle->s->services->types().send_type);
    if (!so)
        return nullptr;
    so->base.pending = nullptr;
    Py_INCREF(cycle);
    so->cycle = cycle;
    PyObject_GC_Track(so);
    return reinterpret_cast<PyObject*>(so);
}

namespace {

PyObject* park_send(CycleState& s, ParkedSend&& parked) {
    if (!s.parked_sends)
        s.parked_sends = std::make_unique<std::vector<ParkedSend>>();
    PyObject* fut = s.services->create_future();
    if (!fut)
        return nullptr;
    parked.waiter = Ref::borrow(fut);
    s.parked_sends->push_back(std::move(parked));
    return fut;
}

}  // namespace

PyObject* park_send_behind(CycleState& s, asgi::Command&& message, std::size_t bytes,
                           bool may_wait) {
    return park_send(
        s, ParkedSend{.message = std::move(message), .bytes = bytes, .may_wait = may_wait});
}

PyObject* park_send_first(CycleState& s) { return park_send(s, ParkedSend{}); }

void cycle_on_disconnect(CycleObject* c) {
    CycleState& s = *c->s;
    s.disconnected = true;
    wake_receiver_with_disconnect(s);
    scope_on_disconnect(c);
    fail_parked_sends(s);
}

void cycle_on_drained(CycleObject* c) {
    CycleState& s = *c->s;
    if (!s.sends_parked())
        return;
    std::vector<ParkedSend>& parked = *s.parked_sends;
    // The first sender's message has drained: it is done. The held messages behind it go
    // out in order until one crosses the high-water mark again; that sender becomes the
    // first and waits for the next drain. (A cancelled sender's message still goes: it
    // was checked and counted when send() was called.)
    std::size_t done = 1;
    while (done < parked.size()) {
        ParkedSend& p = parked[done];
        if (submit_counted(s, std::move(p.message), p.bytes, p.may_wait))
            break;
        ++done;
    }
    // Taken out before resolving: resolving runs Python code.
    std::vector<Ref> waiters;
    waiters.reserve(done);
    for (std::size_t i = 0; i < done; ++i)
        waiters.push_back(std::move(parked[i].waiter));
    parked.erase(parked.begin(), parked.begin() + static_cast<std::ptrdiff_t>(done));
    for (Ref& w : waiters)
        resolve(s.services->names(), w, Py_None);
}

void cycle_flush_start(CycleObject* c) {
    if (!c)
        return;
    CycleState& s = *c->s;
    if (!s.start_held)
        return;
    s.start_held = false;
    if (s.channel)
        s.channel->submit(std::move(s.held_start));
}

void cycle_complete(CycleObject* c, PyObject* exc, bool cancelled) {
    CycleState& s = *c->s;
    if (s.finished)
        return;
    bool failed = exc != nullptr;
    if (cancelled) {
        if (s.cancel_armed)
            log::warning("Request task cancelled because {}: {} ({})",
                         cancel_reason_text(s.cancel_reason), s.request_line(), s.label());
        else if (!s.response.complete())
            log::warning("Request task cancelled: {} ({})", s.request_line(), s.label());
    } else if (exc && s.disconnected &&
               PyObject_IsInstance(exc, s.services->disconnected_type()) == 1) {
        // send() after the client left raised ClientDisconnected and the app let it
        // propagate: the normal end of a request nobody listens to any more.
        log::debug("Client gone, request ended: {}", s.request_line());
    } else if (exc) {
        s.services->log_exception(
            fmt::format("{} ({})", asgi::errors::exception_in_app, s.request_line()), exc);
    }
    if (s.sends_parked())
        release_parked_sends(s);  // before the answer is settled: their messages come first
    settle_response(s, failed);
    s.task = Ref();
    finish(c);
}

std::string CycleState::label() const {
    return asgi::request_label(channel ? channel->id() : 0, request_id());
}

void cycle_fail(CycleObject* c, PyObject* exc) {
    CycleState& s = *c->s;
    s.services->log_exception(
        fmt::format("{} ({})", asgi::errors::exception_in_app, s.request_line()), exc);
    settle_response(s, true);
    finish(c);
}

void cycle_abandon(CycleObject* c) {
    CycleState& s = *c->s;
    if (s.finished)
        return;
    s.disconnected = true;  // nothing more goes to the client from this request
    if (s.channel)
        s.channel->submit(asgi::Command{.kind = asgi::Command::Kind::abort});
    s.task = Ref();
    finish(c);
}

}  // namespace narwhal::python
