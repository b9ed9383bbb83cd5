#include "python/ws_cycle.hpp"

#include "asgi/errors.hpp"
#include "python/loop_services.hpp"
#include "python/response_headers.hpp"

namespace narwhal::python {

namespace {

// {"type": type}
PyObject* simple_message(const Names& n, PyObject* type) {
    PyObject* d = PyDict_New();
    if (d && PyDict_SetItem(d, n.type, type) < 0)
        Py_CLEAR(d);
    return d;
}

PyObject* disconnect_message(const CycleState& s) {
    const Names& n = s.services->names();
    Ref d = Ref::steal(simple_message(n, n.websocket_disconnect));
    Ref code = Ref::steal(PyLong_FromLong(s.ws_close_code));
    if (!d || !code || PyDict_SetItem(d.get(), n.code, code.get()) < 0)
        return nullptr;
    return d.release();
}

// The next queued message; tells the connection it may read one more.
PyObject* next_message(CycleState& s) {
    const Names& n = s.services->names();
    auto [data, text] = std::move(s.ws_messages.front());
    s.ws_messages.pop_front();
    if (s.channel)
        s.channel->submit(asgi::Command{.kind = asgi::Command::Kind::ws_credit, .credit = 1});
    Ref d = Ref::steal(simple_message(n, n.websocket_receive));
    if (!d)
        return nullptr;
    Ref value = text ? Ref::steal(PyUnicode_DecodeUTF8(
                           data.data(), static_cast<Py_ssize_t>(data.size()), "replace"))
                     : Ref::steal(PyBytes_FromStringAndSize(data.data(),
                                                            static_cast<Py_ssize_t>(data.size())));
    if (!value || PyDict_SetItem(d.get(), text ? n.text : n.bytes, value.get()) < 0)
        return nullptr;
    return d.release();
}

// Optional member `key` of `message`: borrowed, nullptr when absent or None. Lookup
// errors count as absent.
PyObject* member(PyObject* message, PyObject* key) {
    PyObject* v = PyDict_GetItem(message, key);
    return v == Py_None ? nullptr : v;
}

}  // namespace

PyObject* ws_receive(CycleObject* c) {
    auto* self = reinterpret_cast<PyObject*>(c);
    CycleState& s = *c->s;
    LoopServices& services = *s.services;
    if (!s.ws_connect_delivered) {
        s.ws_connect_delivered = true;
        const Names& n = services.names();
        return ready(self, simple_message(n, n.websocket_connect), services);
    }
    if (!s.ws_messages.empty())
        return ready(self, next_message(s), services);
    if (s.ws_close_code)
        return ready(self, disconnect_message(s), services);
    if (s.receive_waiter)
        return raise(PyExc_RuntimeError, "receive() is already being awaited");
    PyObject* fut = services.create_future();
    if (!fut)
        return nullptr;
    s.receive_waiter = Ref::borrow(fut);
    return fut;
}

PyObject* ws_send(SendObject* so, PyObject* message, std::string_view type) {
    CycleState& s = *so->cycle->s;
    LoopServices& services = *s.services;
    const Names& n = services.names();
    bool more = false;
    if (type == "websocket.http.response.body") {
        PyObject* m = member(message, n.more_body);
        more = m && PyObject_IsTrue(m) == 1;
    }
    if (auto err = s.ws.on_send(type, more))
        return raise(PyExc_RuntimeError, *err);
    asgi::Command cmd;
    std::size_t wait_bytes = 0;
    if (type == "websocket.accept") {
        cmd.kind = asgi::Command::Kind::ws_accept;
        if (PyObject* sub = member(message, n.subprotocol)) {
            if (!PyUnicode_Check(sub))
                return raise(PyExc_TypeError, "ASGI 'subprotocol' must be a str or None.");
            cmd.body = PyUnicode_AsUTF8(sub);
        }
        if (!take_response_headers(member(message, n.headers), cmd))
            return nullptr;
    } else if (type == "websocket.send") {
        cmd.kind = asgi::Command::Kind::ws_send;
        PyObject* bytes = member(message, n.bytes);
        PyObject* text = member(message, n.text);
        if ((bytes == nullptr) == (text == nullptr))
            return raise(PyExc_TypeError,
                         "ASGI 'websocket.send' needs exactly one of 'bytes' and 'text'.");
        if (text) {
            if (!PyUnicode_Check(text))
                return raise(PyExc_TypeError, "ASGI 'text' must be a str.");
            Py_ssize_t len;
            const char* p = PyUnicode_AsUTF8AndSize(text, &len);
            if (!p)
                return nullptr;
            cmd.body.assign(p, static_cast<std::size_t>(len));
            cmd.text = true;
        } else {
            if (!PyBytes_Check(bytes))
                return raise(PyExc_TypeError, "ASGI 'bytes' must be bytes.");
            cmd.body.assign(PyBytes_AS_STRING(bytes),
                            static_cast<std::size_t>(PyBytes_GET_SIZE(bytes)));
        }
        wait_bytes = cmd.body.size();
    } else if (type == "websocket.close") {
        cmd.kind = asgi::Command::Kind::ws_close;
        cmd.status = 1000;
        if (PyObject* code = member(message, n.code)) {
            if (!PyLong_Check(code))
                return raise(PyExc_TypeError, "ASGI 'code' must be an int.");
            cmd.status = static_cast<int>(PyLong_AsLong(code));
        }
        if (PyObject* reason = member(message, n.reason)) {
            if (!PyUnicode_Check(reason))
                return raise(PyExc_TypeError, "ASGI 'reason' must be a str.");
            cmd.body = PyUnicode_AsUTF8(reason);
        }
    } else if (type == "websocket.http.response.start") {
        cmd.kind = asgi::Command::Kind::start;
        PyObject* status = member(message, n.status);
        if (!status || !PyLong_Check(status))
            return raise(PyExc_TypeError, asgi::errors::status_not_int);
        cmd.status = static_cast<int>(PyLong_AsLong(status));
        if (!take_response_headers(member(message, n.headers), cmd))
            return nullptr;
    } else {  // websocket.http.response.body
        cmd.kind = asgi::Command::Kind::body;
        if (PyObject* body = member(message, n.body)) {
            if (!PyBytes_Check(body))
                return raise(PyExc_TypeError, asgi::errors::body_not_bytes);
            cmd.body.assign(PyBytes_AS_STRING(body),
                            static_cast<std::size_t>(PyBytes_GET_SIZE(body)));
        }
        cmd.more = more;
    }
    // Only data messages count against the water marks and wait for the drain.
    return cycle_send(so, std::move(cmd), wait_bytes, wait_bytes != 0);
}

void cycle_on_ws_message(CycleObject* c, std::string&& data, bool text) {
    CycleState& s = *c->s;
    s.ws_messages.emplace_back(std::move(data), text);
    if (!s.receive_waiter)
        return;
    const Names& n = s.services->names();
    if (!future_pending(n, s.receive_waiter.get())) {
        PyErr_Clear();
        s.receive_waiter = Ref();  // a cancelled wait: the message stays queued
        return;
    }
    Ref msg = Ref::steal(next_message(s));
    if (msg)
        resolve(n, s.receive_waiter, msg.get());
    else
        PyErr_WriteUnraisable(reinterpret_cast<PyObject*>(c));
}

void cycle_on_ws_closed(CycleObject* c, int code) {
    CycleState& s = *c->s;
    s.ws_close_code = code ? code : 1005;
    s.ws.on_closed();
    if (s.receive_waiter && s.ws_messages.empty()) {
        Ref msg = Ref::steal(disconnect_message(s));
        if (msg)
            resolve(s.services->names(), s.receive_waiter, msg.get());
    }
    // From now on send() raises ClientDisconnected, a waiting send fails with it, and the
    // disconnect grace applies (the waiter is resolved already, so it sees no HTTP message).
    cycle_on_disconnect(c);
}

}  // namespace narwhal::python
