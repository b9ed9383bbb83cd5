#include "python/cycle.hpp"

#include "asgi/errors.hpp"
#include "asgi/log.hpp"
#include "python/bridge.hpp"

#include <cstring>

#include <fmt/format.h>

#include <charconv>
#include <new>

namespace narwhal::python {

namespace log = narwhal::log;

namespace {

// --- helpers -----------------------------------------------------------------------

PyObject* raise(PyObject* type, std::string_view message) {
    PyErr_SetString(type, std::string(message).c_str());
    return nullptr;
}

// Resolves `fut` unless the app cancelled it meanwhile. Steals nothing.
bool future_pending(const Names& n, PyObject* fut) {
    Ref done = Ref::steal(PyObject_CallMethodNoArgs(fut, n.done));
    if (!done)
        return false;
    return done.get() == Py_False;
}

void resolve(const Names& n, Ref& waiter, PyObject* value) {
    Ref fut = std::move(waiter);
    if (!fut)
        return;
    if (!future_pending(n, fut.get())) {
        PyErr_Clear();
        return;
    }
    Ref r = Ref::steal(PyObject_CallMethodOneArg(fut.get(), n.set_result, value));
    if (!r)
        PyErr_WriteUnraisable(fut.get());
}

void fail_waiter(const Names& n, Ref& waiter, PyObject* exc) {
    Ref fut = std::move(waiter);
    if (!fut)
        return;
    if (!future_pending(n, fut.get())) {
        PyErr_Clear();
        return;
    }
    Ref r = Ref::steal(PyObject_CallMethodOneArg(fut.get(), n.set_exception, exc));
    if (!r)
        PyErr_WriteUnraisable(fut.get());
}

PyObject* disconnect_message(const Names& n) {
    PyObject* d = PyDict_New();
    if (d && PyDict_SetItem(d, n.type, n.http_disconnect) < 0)
        Py_CLEAR(d);
    return d;
}

// Builds the next http.request message from the queued body and grants the connection
// credit for what was consumed.
PyObject* request_message(CycleState& s) {
    const Names& n = s.bridge->names();
    std::size_t consumed = 0;
    Ref body;
    if (s.body_queue.size() == 1) {
        auto& chunk = s.body_queue.front();
        consumed = chunk.size();
        body = Ref::steal(PyBytes_FromStringAndSize(chunk.data(), static_cast<Py_ssize_t>(chunk.size())));
    } else if (s.body_queue.empty()) {
        body = Ref::borrow(n.empty_bytes);
    } else {
        for (auto& c : s.body_queue)
            consumed += c.size();
        body = Ref::steal(PyBytes_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(consumed)));
        if (body) {
            char* p = PyBytes_AS_STRING(body.get());
            for (auto& c : s.body_queue) {
                std::memcpy(p, c.data(), c.size());
                p += c.size();
            }
        }
    }
    if (!body)
        return nullptr;
    s.body_queue.clear();
    bool more = !s.body_complete;
    if (!more)
        s.final_delivered = true;
    if (more && consumed > 0 && s.channel)
        s.channel->submit(asgi::Command{.kind = asgi::Command::Kind::credit, .credit = consumed});
    PyObject* d = PyDict_New();
    if (!d)
        return nullptr;
    if (PyDict_SetItem(d, n.type, n.http_request) < 0 || PyDict_SetItem(d, n.body, body.get()) < 0 ||
        PyDict_SetItem(d, n.more_body, more ? Py_True : Py_False) < 0) {
        Py_DECREF(d);
        return nullptr;
    }
    return d;
}

bool can_deliver_body(const CycleState& s) {
    return !s.final_delivered && (!s.body_queue.empty() || s.body_complete);
}

void wake_receiver_with_disconnect(CycleState& s) {
    if (!s.receive_waiter)
        return;
    Ref msg = Ref::steal(disconnect_message(s.bridge->names()));
    if (msg)
        resolve(s.bridge->names(), s.receive_waiter, msg.get());
}

// Returns `self` (awaiting itself) with `value` as the await result, or, if a result is
// already pending on it, a done future.
PyObject* ready(PyObject* self, Ref& slot, PyObject* value_stolen, Bridge* bridge) {
    Ref value = Ref::steal(value_stolen);
    if (!value)
        return nullptr;
    if (!slot) {
        slot = std::move(value);
        Py_INCREF(self);
        return self;
    }
    Ref fut = Ref::steal(bridge->create_future());
    if (!fut)
        return nullptr;
    Ref r = Ref::steal(PyObject_CallMethodOneArg(fut.get(), bridge->names().set_result, value.get()));
    if (!r)
        return nullptr;
    return fut.release();
}

// --- receive -----------------------------------------------------------------------

PyObject* ws_receive(PyObject* self, CycleState& s);
PyObject* ws_send(PyObject* self, CycleState& s, PyObject* message, std::string_view type);

PyObject* cycle_call(PyObject* self, PyObject* args, PyObject* kwargs) {
    auto* c = reinterpret_cast<CycleObject*>(self);
    CycleState& s = *c->s;
    const Names& n = s.bridge->names();
    if ((args && PyTuple_GET_SIZE(args) != 0) || (kwargs && PyDict_GET_SIZE(kwargs) != 0))
        return raise(PyExc_TypeError, "receive() takes no arguments");
    if (s.websocket)
        return ws_receive(self, s);
    if (s.disconnected || s.response.complete())
        return ready(self, s.pending, disconnect_message(n), s.bridge);
    if (can_deliver_body(s))
        return ready(self, s.pending, request_message(s), s.bridge);
    if (s.receive_waiter)
        return raise(PyExc_RuntimeError, "receive() is already being awaited");
    if (s.expect_continue && !s.credit_requested && !s.final_delivered && s.channel) {
        // The first receive() is what sends "100 Continue" and opens the body.
        s.credit_requested = true;
        s.channel->submit(asgi::Command{.kind = asgi::Command::Kind::credit,
                                        .credit = s.bridge->config().read_window});
    }
    PyObject* fut = s.bridge->create_future();
    if (!fut)
        return nullptr;
    s.receive_waiter = Ref::borrow(fut);
    return fut;
}

// --- await protocol shared by both types --------------------------------------------

PyObject* await_self(PyObject* self) {
    Py_INCREF(self);
    return self;
}

bool is_receive(PyObject* self) { return Py_TYPE(self)->tp_call == cycle_call; }

// The value a fast-path await completes with: the message for receive(), None for send().
PyObject* take_pending(PyObject* self) {
    if (is_receive(self)) {
        Ref v = std::move(reinterpret_cast<CycleObject*>(self)->s->pending);
        if (v)
            return v.release();
    } else {
        reinterpret_cast<SendObject*>(self)->has_pending = false;
    }
    Py_RETURN_NONE;
}

PySendResult am_send(PyObject* self, PyObject*, PyObject** result) {
    *result = take_pending(self);
    return PYGEN_RETURN;
}

PyObject* iternext(PyObject* self) {
    PyObject* result = take_pending(self);
    if (result == Py_None) {
        Py_DECREF(result);
        return nullptr;  // StopIteration(None) without creating it
    }
    // StopIteration(value): wrap in a tuple so dict/tuple values are not unpacked.
    PyObject* exc = PyObject_CallOneArg(PyExc_StopIteration, result);
    Py_DECREF(result);
    if (exc) {
        PyErr_SetObject(PyExc_StopIteration, exc);
        Py_DECREF(exc);
    }
    return nullptr;
}

PyObject* method_send(PyObject* self, PyObject*) { return iternext(self); }

PyObject* method_throw(PyObject* self, PyObject* args) {
    PyObject *type, *value = nullptr, *tb = nullptr;
    if (!PyArg_UnpackTuple(args, "throw", 1, 3, &type, &value, &tb))
        return nullptr;
    Py_DECREF(take_pending(self));
    if (PyExceptionInstance_Check(type)) {
        PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(type)), type);
    } else {
        PyErr_SetObject(type, value ? value : Py_None);
    }
    return nullptr;
}

PyObject* method_close(PyObject* self, PyObject*) {
    Py_DECREF(take_pending(self));
    Py_RETURN_NONE;
}

PyMethodDef awaitable_methods[] = {
    {"send", method_send, METH_O, nullptr},
    {"throw", method_throw, METH_VARARGS, nullptr},
    {"close", method_close, METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyAsyncMethods async_methods = {await_self, nullptr, nullptr, am_send};

void cycle_dealloc(PyObject* self) {
    auto* c = reinterpret_cast<CycleObject*>(self);
    if (c->s) {
        if (c->s->channel)
            c->s->channel->detach();
        delete c->s;
        c->s = nullptr;
    }
    Py_TYPE(self)->tp_free(self);
}

// --- send --------------------------------------------------------------------------

bool parse_headers(CycleState& s, PyObject* headers, asgi::Command& cmd,
                   std::optional<uint64_t>& length) {
    Ref it = Ref::steal(PyObject_GetIter(headers));
    if (!it) {
        PyErr_Clear();
        raise(PyExc_TypeError, asgi::errors::headers_not_iterable);
        return false;
    }
    while (Ref item = Ref::steal(PyIter_Next(it.get()))) {
        Ref pair = Ref::steal(PySequence_Fast(item.get(), ""));
        if (!pair || PySequence_Fast_GET_SIZE(pair.get()) != 2) {
            PyErr_Clear();
            raise(PyExc_TypeError, asgi::errors::headers_not_iterable);
            return false;
        }
        PyObject* name = PySequence_Fast_GET_ITEM(pair.get(), 0);
        PyObject* value = PySequence_Fast_GET_ITEM(pair.get(), 1);
        if (!PyBytes_Check(name) || !PyBytes_Check(value)) {
            raise(PyExc_TypeError, asgi::errors::header_not_bytes);
            return false;
        }
        std::string_view nv(PyBytes_AS_STRING(name), static_cast<std::size_t>(PyBytes_GET_SIZE(name)));
        std::string_view vv(PyBytes_AS_STRING(value), static_cast<std::size_t>(PyBytes_GET_SIZE(value)));
        std::string lowered(nv);
        for (char& ch : lowered) {
            unsigned char u = static_cast<unsigned char>(ch);
            // RFC 9110 token characters only.
            bool ok = (u >= 'a' && u <= 'z') || (u >= '0' && u <= '9') ||
                      std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(u)) != std::string_view::npos;
            if (u >= 'A' && u <= 'Z') {
                ch = static_cast<char>(u + 32);
                ok = true;
            }
            if (!ok) {
                raise(PyExc_RuntimeError, asgi::errors::invalid_header_name);
                return false;
            }
        }
        if (lowered.empty()) {
            raise(PyExc_RuntimeError, asgi::errors::invalid_header_name);
            return false;
        }
        for (char ch : vv) {
            if (ch == '\r' || ch == '\n' || ch == '\0') {
                raise(PyExc_RuntimeError, asgi::errors::invalid_header_value);
                return false;
            }
        }
        if (lowered == "content-length") {
            uint64_t v = 0;
            auto [p, err] = std::from_chars(vv.data(), vv.data() + vv.size(), v);
            if (err == std::errc() && p == vv.data() + vv.size())
                length = v;
        }
        cmd.headers.emplace_back(std::move(lowered), std::string(vv));
    }
    return !PyErr_Occurred();
}


// --- WebSocket receive/send ----------------------------------------------------------

PyObject* simple_message(PyObject* type) {
    PyObject* d = PyDict_New();
    if (d && PyDict_SetItemString(d, "type", type) < 0)
        Py_CLEAR(d);
    return d;
}

PyObject* ws_disconnect_message(const CycleState& s) {
    Ref type = Ref::steal(PyUnicode_FromString("websocket.disconnect"));
    Ref d = type ? Ref::steal(simple_message(type.get())) : Ref();
    Ref code = Ref::steal(PyLong_FromLong(s.ws_close_code));
    if (!d || !code || PyDict_SetItemString(d.get(), "code", code.get()) < 0)
        return nullptr;
    return d.release();
}

// The next queued message; tells the connection it may read one more.
PyObject* ws_next_message(CycleState& s) {
    auto [data, text] = std::move(s.ws_messages.front());
    s.ws_messages.pop_front();
    if (s.channel)
        s.channel->submit(asgi::Command{.kind = asgi::Command::Kind::ws_credit, .credit = 1});
    Ref type = Ref::steal(PyUnicode_FromString("websocket.receive"));
    Ref d = type ? Ref::steal(simple_message(type.get())) : Ref();
    if (!d)
        return nullptr;
    Ref value = text ? Ref::steal(PyUnicode_DecodeUTF8(data.data(), static_cast<Py_ssize_t>(data.size()), "replace"))
                     : Ref::steal(PyBytes_FromStringAndSize(data.data(), static_cast<Py_ssize_t>(data.size())));
    if (!value || PyDict_SetItemString(d.get(), text ? "text" : "bytes", value.get()) < 0)
        return nullptr;
    return d.release();
}

PyObject* ws_receive(PyObject* self, CycleState& s) {
    if (!s.ws_connect_delivered) {
        s.ws_connect_delivered = true;
        Ref type = Ref::steal(PyUnicode_FromString("websocket.connect"));
        return ready(self, s.pending, type ? simple_message(type.get()) : nullptr, s.bridge);
    }
    if (!s.ws_messages.empty())
        return ready(self, s.pending, ws_next_message(s), s.bridge);
    if (s.ws_close_code)
        return ready(self, s.pending, ws_disconnect_message(s), s.bridge);
    if (s.receive_waiter)
        return raise(PyExc_RuntimeError, "receive() is already being awaited");
    PyObject* fut = s.bridge->create_future();
    if (!fut)
        return nullptr;
    s.receive_waiter = Ref::borrow(fut);
    return fut;
}

// Optional member `key` of `message`: borrowed, nullptr when absent or None.
PyObject* member(PyObject* message, const char* key) {
    PyObject* v = PyDict_GetItemString(message, key);
    return v == Py_None ? nullptr : v;
}

PyObject* ws_send(PyObject* self, CycleState& s, PyObject* message, std::string_view type) {
    bool more = false;
    if (type == "websocket.http.response.body") {
        PyObject* m = member(message, "more_body");
        more = m && PyObject_IsTrue(m) == 1;
    }
    if (auto err = s.ws.on_send(type, more))
        return raise(PyExc_RuntimeError, *err);
    asgi::Command cmd;
    std::size_t wait_bytes = 0;
    if (type == "websocket.accept") {
        cmd.kind = asgi::Command::Kind::ws_accept;
        if (PyObject* sub = member(message, "subprotocol")) {
            if (!PyUnicode_Check(sub))
                return raise(PyExc_TypeError, "ASGI 'subprotocol' must be a str or None.");
            cmd.body = PyUnicode_AsUTF8(sub);
        }
        std::optional<uint64_t> ignored;
        if (PyObject* headers = member(message, "headers"))
            if (!parse_headers(s, headers, cmd, ignored))
                return nullptr;
    } else if (type == "websocket.send") {
        cmd.kind = asgi::Command::Kind::ws_send;
        PyObject* bytes = member(message, "bytes");
        PyObject* text = member(message, "text");
        if ((bytes == nullptr) == (text == nullptr))
            return raise(PyExc_TypeError,
                         "ASGI 'websocket.send' needs exactly one of 'bytes' and 'text'.");
        if (text) {
            if (!PyUnicode_Check(text))
                return raise(PyExc_TypeError, "ASGI 'text' must be a str.");
            Py_ssize_t n;
            const char* p = PyUnicode_AsUTF8AndSize(text, &n);
            if (!p)
                return nullptr;
            cmd.body.assign(p, static_cast<std::size_t>(n));
            cmd.text = true;
        } else {
            if (!PyBytes_Check(bytes))
                return raise(PyExc_TypeError, "ASGI 'bytes' must be bytes.");
            cmd.body.assign(PyBytes_AS_STRING(bytes), static_cast<std::size_t>(PyBytes_GET_SIZE(bytes)));
        }
        wait_bytes = cmd.body.size();
    } else if (type == "websocket.close") {
        cmd.kind = asgi::Command::Kind::ws_close;
        cmd.status = 1000;
        if (PyObject* code = member(message, "code")) {
            if (!PyLong_Check(code))
                return raise(PyExc_TypeError, "ASGI 'code' must be an int.");
            cmd.status = static_cast<int>(PyLong_AsLong(code));
        }
        if (PyObject* reason = member(message, "reason")) {
            if (!PyUnicode_Check(reason))
                return raise(PyExc_TypeError, "ASGI 'reason' must be a str.");
            cmd.body = PyUnicode_AsUTF8(reason);
        }
    } else if (type == "websocket.http.response.start") {
        cmd.kind = asgi::Command::Kind::start;
        PyObject* status = member(message, "status");
        if (!status || !PyLong_Check(status))
            return raise(PyExc_TypeError, asgi::errors::status_not_int);
        cmd.status = static_cast<int>(PyLong_AsLong(status));
        std::optional<uint64_t> ignored;
        if (PyObject* headers = member(message, "headers"))
            if (!parse_headers(s, headers, cmd, ignored))
                return nullptr;
    } else {  // websocket.http.response.body
        cmd.kind = asgi::Command::Kind::body;
        if (PyObject* body = member(message, "body")) {
            if (!PyBytes_Check(body))
                return raise(PyExc_TypeError, asgi::errors::body_not_bytes);
            cmd.body.assign(PyBytes_AS_STRING(body), static_cast<std::size_t>(PyBytes_GET_SIZE(body)));
        }
        cmd.more = more;
    }
    bool must_wait = false;
    if (s.channel) {
        const auto& cfg = s.bridge->config();
        must_wait = wait_bytes &&
                    s.channel->add_outbound(wait_bytes, cfg.send_high_water, cfg.send_low_water);
        s.channel->submit(std::move(cmd));
    }
    if (must_wait) {
        PyObject* fut = s.bridge->create_future();
        if (!fut)
            return nullptr;
        s.send_waiter = Ref::borrow(fut);
        return fut;
    }
    reinterpret_cast<SendObject*>(self)->has_pending = true;
    Py_INCREF(self);
    return self;
}

PyObject* send_call(PyObject* self, PyObject* args, PyObject* kwargs) {
    auto* so = reinterpret_cast<SendObject*>(self);
    CycleState& s = *so->cycle->s;
    const Names& n = s.bridge->names();
    if (!args || PyTuple_GET_SIZE(args) != 1 || (kwargs && PyDict_GET_SIZE(kwargs)))
        return raise(PyExc_TypeError, "send() takes exactly one argument (the message)");
    PyObject* message = PyTuple_GET_ITEM(args, 0);
    if (!PyDict_Check(message)) {
        PyErr_Format(PyExc_TypeError, "ASGI message must be a dict, got '%s'.",
                     Py_TYPE(message)->tp_name);
        return nullptr;
    }
    PyObject* type = PyDict_GetItemWithError(message, n.type);
    if (!type) {
        if (!PyErr_Occurred())
            PyErr_SetObject(PyExc_KeyError, n.type);
        return nullptr;
    }
    if (!PyUnicode_Check(type))
        return raise(PyExc_TypeError, "ASGI message 'type' must be a str.");
    if (s.disconnected)
        return raise(s.bridge->disconnected_type(), asgi::errors::client_disconnected);
    Py_ssize_t tlen;
    const char* tstr = PyUnicode_AsUTF8AndSize(type, &tlen);
    if (!tstr)
        return nullptr;
    std::string_view tview(tstr, static_cast<std::size_t>(tlen));
    if (s.websocket)
        return ws_send(self, s, message, tview);
    if (auto err = s.response.check_order(tview))
        return raise(PyExc_RuntimeError, *err);

    if (!s.response.started()) {
        PyObject* status = PyDict_GetItemWithError(message, n.status);
        if (!status) {
            if (!PyErr_Occurred())
                PyErr_SetObject(PyExc_KeyError, n.status);
            return nullptr;
        }
        if (!PyLong_Check(status) || PyBool_Check(status))
            return raise(PyExc_TypeError, asgi::errors::status_not_int);
        long code = PyLong_AsLong(status);
        if (code < 100 || code > 999)
            return raise(PyExc_RuntimeError, asgi::errors::status_out_of_range);
        asgi::Command cmd{.kind = asgi::Command::Kind::start, .status = static_cast<int>(code)};
        std::optional<uint64_t> length;
        if (PyObject* headers = PyDict_GetItemWithError(message, n.headers)) {
            if (!parse_headers(s, headers, cmd, length))
                return nullptr;
        } else if (PyErr_Occurred()) {
            return nullptr;
        }
        s.response.on_start(static_cast<int>(code), length);
        s.held_start = std::move(cmd);
        s.start_held = true;
        s.bridge->schedule_start_flush(so->cycle);
        so->has_pending = true;
        Py_INCREF(self);
        return self;
    }

    // http.response.body
    Py_buffer view{};
    PyObject* body = PyDict_GetItemWithError(message, n.body);
    if (!body && PyErr_Occurred())
        return nullptr;
    if (body && !PyBytes_Check(body) && !PyByteArray_Check(body) && !PyMemoryView_Check(body))
        return raise(PyExc_TypeError, asgi::errors::body_not_bytes);
    if (body && PyObject_GetBuffer(body, &view, PyBUF_SIMPLE) < 0)
        return nullptr;
    std::string data = body ? std::string(static_cast<const char*>(view.buf),
                                          static_cast<std::size_t>(view.len))
                            : std::string();
    if (body)
        PyBuffer_Release(&view);
    PyObject* more_obj = PyDict_GetItemWithError(message, n.more_body);
    if (!more_obj && PyErr_Occurred())
        return nullptr;
    int more = more_obj ? PyObject_IsTrue(more_obj) : 0;
    if (more < 0)
        return nullptr;
    if (auto err = s.response.on_body(data.size(), more != 0))
        return raise(PyExc_RuntimeError, *err);

    std::size_t n_bytes = s.response.body_allowed() ? data.size() : 0;
    asgi::Command cmd;
    if (s.start_held) {
        cmd = std::move(s.held_start);
        s.start_held = false;
    }
    cmd.kind = asgi::Command::Kind::body;
    cmd.body = std::move(data);
    cmd.more = more != 0;
    bool must_wait = false;
    if (s.channel) {
        const auto& cfg = s.bridge->config();
        bool over = s.channel->add_outbound(n_bytes, cfg.send_high_water, cfg.send_low_water);
        must_wait = over && cmd.more;
        if (over && !cmd.more)
            s.channel->cancel_wait();  // the last message: nobody waits for the drain
        s.channel->submit(std::move(cmd));
    }
    if (!more)
        wake_receiver_with_disconnect(s);  // receive() now answers http.disconnect
    if (must_wait && !s.disconnected) {
        PyObject* fut = s.bridge->create_future();
        if (!fut)
            return nullptr;
        s.send_waiter = Ref::borrow(fut);
        return fut;
    }
    so->has_pending = true;
    Py_INCREF(self);
    return self;
}

void send_dealloc(PyObject* self) {
    auto* so = reinterpret_cast<SendObject*>(self);
    Py_XDECREF(reinterpret_cast<PyObject*>(so->cycle));
    Py_TYPE(self)->tp_free(self);
}

PyTypeObject cycle_type = {PyVarObject_HEAD_INIT(nullptr, 0)};
PyTypeObject send_type = {PyVarObject_HEAD_INIT(nullptr, 0)};

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
    s.send_waiter = Ref();
    s.bridge->on_cycle_finished(c);
}


void respond_500(CycleState& s) {
    asgi::Command cmd{.kind = asgi::Command::Kind::body, .status = 500};
    cmd.headers = {{"content-type", "text/plain; charset=utf-8"}, {"connection", "close"}};
    cmd.body = "Internal Server Error";
    cmd.more = false;
    if (s.channel)
        s.channel->submit(std::move(cmd));
}

// A WebSocket app is done: a handshake never answered gets 500, an open socket is
// closed (1000, or 1011 after an exception), a denial response cut short is aborted.
void settle_websocket(CycleState& s, bool failed) {
    if (s.disconnected || !s.channel)
        return;
    switch (s.ws.phase()) {
    case asgi::WebSocketState::Phase::connecting: {
        if (!failed)
            log::error("ASGI callable returned without sending handshake.");
        respond_500(s);  // WsSession writes it as the HTTP answer to the upgrade
        break;
    }
    case asgi::WebSocketState::Phase::denial:
        s.channel->submit(asgi::Command{.kind = asgi::Command::Kind::abort});
        break;
    case asgi::WebSocketState::Phase::open:
        s.channel->submit(asgi::Command{.kind = asgi::Command::Kind::ws_close,
                                        .status = failed ? 1011 : 1000});
        break;
    case asgi::WebSocketState::Phase::closed:
        break;
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

}  // namespace

void cycle_complete(CycleObject* c, PyObject* exc, bool cancelled) {
    CycleState& s = *c->s;
    if (s.finished)
        return;
    bool failed = exc != nullptr;
    if (cancelled) {
        if (s.cancel_armed)
            log::warning("Request task cancelled because {}: {} (id {})",
                         cancel_reason_text(s.cancel_reason), s.request_line,
                         s.channel ? s.channel->id() : 0);
        else if (!s.response.complete())
            log::warning("Request task cancelled: {} (id {})", s.request_line,
                         s.channel ? s.channel->id() : 0);
    } else if (exc && s.disconnected &&
               PyObject_IsInstance(exc, s.bridge->disconnected_type()) == 1) {
        // send() after the client left raised ClientDisconnected and the app let it
        // propagate: the normal end of a request nobody listens to any more.
        log::debug("Client gone, request ended: {}", s.request_line);
    } else if (exc) {
        s.bridge->log_exception(
            fmt::format("{} ({})", asgi::errors::exception_in_app, s.request_line), exc);
    }
    settle_response(s, failed);
    s.task = Ref();
    finish(c);
}

bool ready_types() {
    cycle_type.tp_name = "narwhal.Receive";
    cycle_type.tp_basicsize = sizeof(CycleObject);
    cycle_type.tp_flags = Py_TPFLAGS_DEFAULT;
    cycle_type.tp_call = cycle_call;
    cycle_type.tp_dealloc = cycle_dealloc;
    cycle_type.tp_as_async = &async_methods;
    cycle_type.tp_iter = await_self;
    cycle_type.tp_iternext = iternext;
    cycle_type.tp_methods = awaitable_methods;
    cycle_type.tp_doc = "ASGI receive(): awaitable that returns the next event.";
    send_type.tp_name = "narwhal.Send";
    send_type.tp_basicsize = sizeof(SendObject);
    send_type.tp_flags = Py_TPFLAGS_DEFAULT;
    send_type.tp_call = send_call;
    send_type.tp_dealloc = send_dealloc;
    send_type.tp_as_async = &async_methods;
    send_type.tp_iter = await_self;
    send_type.tp_iternext = iternext;
    send_type.tp_methods = awaitable_methods;
    send_type.tp_doc = "ASGI send(message): awaitable that completes once the message is queued.";
    if (PyType_Ready(&cycle_type) < 0 || PyType_Ready(&send_type) < 0)
        return false;
    // Look like `async def` to asyncio.iscoroutinefunction (and so to asgiref, which
    // warns when handed something that does not): asyncio's marker on 3.11, inspect's
    // on 3.12+.
    Ref coroutines = Ref::steal(PyImport_ImportModule("asyncio.coroutines"));
    Ref marker = coroutines ? Ref::steal(PyObject_GetAttrString(coroutines.get(), "_is_coroutine")) : Ref();
    PyErr_Clear();
    Ref inspect = Ref::steal(PyImport_ImportModule("inspect"));
    Ref mark312 = inspect ? Ref::steal(PyObject_GetAttrString(inspect.get(), "_is_coroutine_mark")) : Ref();
    PyErr_Clear();
    for (PyTypeObject* t : {&cycle_type, &send_type}) {
        if (marker)
            PyDict_SetItemString(t->tp_dict, "_is_coroutine", marker.get());
        if (mark312)
            PyDict_SetItemString(t->tp_dict, "_is_coroutine_marker", mark312.get());
        PyType_Modified(t);
    }
    return true;
}

CycleObject* new_cycle(Bridge* bridge, std::shared_ptr<asgi::Channel> channel) {
    auto* c = PyObject_New(CycleObject, &cycle_type);
    if (!c)
        return nullptr;
    c->s = new (std::nothrow) CycleState();
    if (!c->s) {
        Py_DECREF(c);
        PyErr_NoMemory();
        return nullptr;
    }
    c->s->bridge = bridge;
    c->s->channel = std::move(channel);
    return c;
}

PyObject* new_send(CycleObject* cycle) {
    auto* so = PyObject_New(SendObject, &send_type);
    if (!so)
        return nullptr;
    Py_INCREF(cycle);
    so->cycle = cycle;
    so->has_pending = false;
    return reinterpret_cast<PyObject*>(so);
}

void cycle_on_body(CycleObject* c, std::string&& body, bool more) {
    CycleState& s = *c->s;
    if (!body.empty())
        s.body_queue.push_back(std::move(body));
    if (!more)
        s.body_complete = true;
    if (s.receive_waiter && can_deliver_body(s)) {
        if (!future_pending(s.bridge->names(), s.receive_waiter.get())) {
            PyErr_Clear();
            s.receive_waiter = Ref();  // cancelled wait: keep the body for the next receive()
            return;
        }
        Ref msg = Ref::steal(request_message(s));
        if (msg)
            resolve(s.bridge->names(), s.receive_waiter, msg.get());
        else
            PyErr_WriteUnraisable(reinterpret_cast<PyObject*>(c));
    }
}

void cycle_on_disconnect(CycleObject* c) {
    CycleState& s = *c->s;
    s.disconnected = true;
    wake_receiver_with_disconnect(s);
    scope_on_disconnect(c);
    if (s.send_waiter) {
        Ref exc = Ref::steal(PyObject_CallOneArg(
            s.bridge->disconnected_type(),
            Ref::steal(PyUnicode_FromString(std::string(asgi::errors::client_disconnected).c_str())).get()));
        if (exc)
            fail_waiter(s.bridge->names(), s.send_waiter, exc.get());
        else
            PyErr_Clear();
    }
}

void cycle_on_ws_message(CycleObject* c, std::string&& data, bool text) {
    CycleState& s = *c->s;
    s.ws_messages.emplace_back(std::move(data), text);
    if (!s.receive_waiter)
        return;
    if (!future_pending(s.bridge->names(), s.receive_waiter.get())) {
        PyErr_Clear();
        s.receive_waiter = Ref();  // a cancelled wait: the message stays queued
        return;
    }
    Ref msg = Ref::steal(ws_next_message(s));
    if (msg)
        resolve(s.bridge->names(), s.receive_waiter, msg.get());
    else
        PyErr_WriteUnraisable(reinterpret_cast<PyObject*>(c));
}

void cycle_on_ws_closed(CycleObject* c, int code) {
    CycleState& s = *c->s;
    s.ws_close_code = code ? code : 1005;
    s.ws.on_closed();
    if (s.receive_waiter && s.ws_messages.empty()) {
        Ref msg = Ref::steal(ws_disconnect_message(s));
        if (msg)
            resolve(s.bridge->names(), s.receive_waiter, msg.get());
    }
    // From now on send() raises ClientDisconnected, a waiting send fails with it, and the
    // disconnect grace applies (the waiter is resolved already, so it sees no HTTP message).
    cycle_on_disconnect(c);
}

void cycle_on_drained(CycleObject* c) {
    resolve(c->s->bridge->names(), c->s->send_waiter, Py_None);
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

void cycle_fail(CycleObject* c, PyObject* exc) {
    CycleState& s = *c->s;
    s.bridge->log_exception(
        fmt::format("{} ({})", asgi::errors::exception_in_app, s.request_line), exc);
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
