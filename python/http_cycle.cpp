#include "python/http_cycle.hpp"

#include "asgi/errors.hpp"
#include "python/http_pathsend.hpp"
#include "python/loop_services.hpp"
#include "python/response_headers.hpp"

#include <cstring>

namespace narwhal::python {

namespace {

PyObject* disconnect_message(const Names& n) {
    PyObject* d = PyDict_New();
    if (d && PyDict_SetItem(d, n.type, n.http_disconnect) < 0)
        Py_CLEAR(d);
    return d;
}

// Builds the next http.request message from the queued body and grants the connection
// credit for what was consumed.
PyObject* request_message(CycleState& s) {
    const Names& n = s.services->names();
    std::size_t consumed = 0;
    Ref body;
    if (s.body_queue.size() == 1) {
        auto& chunk = s.body_queue.front();
        consumed = chunk.size();
        body = Ref::steal(
            PyBytes_FromStringAndSize(chunk.data(), static_cast<Py_ssize_t>(chunk.size())));
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
    if (PyDict_SetItem(d, n.type, n.http_request) < 0 ||
        PyDict_SetItem(d, n.body, body.get()) < 0 ||
        PyDict_SetItem(d, n.more_body, more ? Py_True : Py_False) < 0) {
        Py_DECREF(d);
        return nullptr;
    }
    return d;
}

bool can_deliver_body(const CycleState& s) {
    return !s.final_delivered && (!s.body_queue.empty() || s.body_complete);
}

}  // namespace

void wake_receiver_with_disconnect(CycleState& s) {
    if (!s.receive_waiter)
        return;
    Ref msg = Ref::steal(disconnect_message(s.services->names()));
    if (msg)
        resolve(s.services->names(), s.receive_waiter, msg.get());
}

PyObject* http_receive(CycleObject* c) {
    auto* self = reinterpret_cast<PyObject*>(c);
    CycleState& s = *c->s;
    LoopServices& services = *s.services;
    if (s.disconnected || s.response.complete())
        return ready(self, disconnect_message(services.names()), services);
    if (can_deliver_body(s))
        return ready(self, request_message(s), services);
    if (s.receive_waiter)
        return raise(PyExc_RuntimeError, "receive() is already being awaited");
    if (s.expect_continue && !s.credit_requested && !s.final_delivered && s.channel) {
        // The first receive() is what sends "100 Continue" and opens the body.
        s.credit_requested = true;
        s.channel->submit(asgi::Command{.kind = asgi::Command::Kind::credit,
                                        .credit = services.config().read_window});
    }
    PyObject* fut = services.create_future();
    if (!fut)
        return nullptr;
    s.receive_waiter = Ref::borrow(fut);
    return fut;
}

PyObject* http_send(SendObject* so, PyObject* message, std::string_view type) {
    auto* self = reinterpret_cast<PyObject*>(so);
    CycleState& s = *so->cycle->s;
    LoopServices& services = *s.services;
    const Names& n = services.names();
    if (auto err = s.response.check_order(type))
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
        PyObject* headers = PyDict_GetItemWithError(message, n.headers);
        if ((!headers && PyErr_Occurred()) || !take_response_headers(headers, cmd))
            return nullptr;
        s.response.on_start(static_cast<int>(code), cmd.facts.content_length);
        s.held_start = std::move(cmd);
        s.start_held = true;
        services.schedule_start_flush(so->cycle);
        return ready_none(self);
    }

    if (type == asgi::pathsend_type)
        return http_pathsend(so, message);

    // http.response.body
    Py_buffer view{};
    PyObject* body = PyDict_GetItemWithError(message, n.body);
    if (!body && PyErr_Occurred())
        return nullptr;
    if (body && !PyBytes_Check(body) && !PyByteArray_Check(body) && !PyMemoryView_Check(body))
        return raise(PyExc_TypeError, asgi::errors::body_not_bytes);
    if (body && PyObject_GetBuffer(body, &view, PyBUF_SIMPLE) < 0)
        return nullptr;
    std::string data =
        body ? std::string(static_cast<const char*>(view.buf), static_cast<std::size_t>(view.len))
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
    // The last message never waits for the drain: nobody sends after it.
    PyObject* awaited = cycle_send(so, std::move(cmd), n_bytes, more != 0);
    if (!more)
        wake_receiver_with_disconnect(s);  // receive() now answers http.disconnect
    return awaited;
}

void cycle_on_body(CycleObject* c, std::string&& body, bool more) {
    CycleState& s = *c->s;
    if (!body.empty())
        s.body_queue.push_back(std::move(body));
    if (!more)
        s.body_complete = true;
    if (s.receive_waiter && can_deliver_body(s)) {
        const Names& n = s.services->names();
        if (!future_pending(n, s.receive_waiter.get())) {
            PyErr_Clear();
            s.receive_waiter = Ref();  // cancelled wait: keep the body for the next receive()
            return;
        }
        Ref msg = Ref::steal(request_message(s));
        if (msg)
            resolve(n, s.receive_waiter, msg.get());
        else
            PyErr_WriteUnraisable(reinterpret_cast<PyObject*>(c));
    }
}

}  // namespace narwhal::python
