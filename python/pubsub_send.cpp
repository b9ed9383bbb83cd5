#include "python/pubsub_send.hpp"

#include "asgi/errors.hpp"
#include "asgi/pubsub.hpp"
#include "python/loop_services.hpp"

#include <memory>
#include <string>

namespace narwhal::python {

namespace {

// `message[key]` as UTF-8, or false with an error set. Absent and None count as absent.
bool utf8_member(PyObject* message, const char* key, std::string& out, bool& present) {
    PyObject* v = PyDict_GetItemString(message, key);  // borrowed
    present = v && v != Py_None;
    if (!present)
        return true;
    if (!PyUnicode_Check(v))
        return false;
    Py_ssize_t len;
    const char* p = PyUnicode_AsUTF8AndSize(v, &len);
    if (!p)
        return false;
    out.assign(p, static_cast<std::size_t>(len));
    return true;
}

PyObject* type_error(std::string_view what) {
    PyErr_SetString(PyExc_TypeError, std::string(what).c_str());
    return nullptr;
}

}  // namespace

PyObject* pubsub_send(SendObject* so, PyObject* message, std::string_view type) {
    CycleState& s = *so->cycle->s;
    if (auto err = asgi::check_pubsub_message(type, s.websocket ? &s.ws : nullptr))
        return raise(PyExc_RuntimeError, *err);
    const bool publish = type == asgi::pubsub_publish;
    // A socket that is gone cannot subscribe: the same error as websocket.send then.
    if (s.disconnected && type == asgi::pubsub_subscribe)
        return raise(s.services->disconnected_type(), asgi::errors::client_disconnected);
    std::string topic;
    bool has_topic = false;
    if (!utf8_member(message, "topic", topic, has_topic) || !has_topic || topic.empty()) {
        if (PyErr_Occurred() && !PyErr_ExceptionMatches(PyExc_UnicodeError))
            return nullptr;
        PyErr_Clear();
        return type_error(asgi::errors::pubsub_topic_not_str);
    }
    asgi::Command cmd;
    if (!publish) {
        cmd.kind = type == asgi::pubsub_subscribe ? asgi::Command::Kind::ws_subscribe
                                                  : asgi::Command::Kind::ws_unsubscribe;
        cmd.body = std::move(topic);
        return cycle_send(so, std::move(cmd), 0, false);
    }
    PyObject* text = PyDict_GetItemString(message, "text");
    PyObject* bytes = PyDict_GetItemString(message, "bytes");
    text = text == Py_None ? nullptr : text;
    bytes = bytes == Py_None ? nullptr : bytes;
    if ((text == nullptr) == (bytes == nullptr) || (text && !PyUnicode_Check(text)) ||
        (bytes && !PyBytes_Check(bytes)))
        return type_error(asgi::errors::pubsub_publish_payload);
    auto p = std::make_shared<asgi::Publication>();
    p->topic = std::move(topic);
    if (text) {
        Py_ssize_t len;
        const char* data = PyUnicode_AsUTF8AndSize(text, &len);
        if (!data)
            return nullptr;
        p->data.assign(data, static_cast<std::size_t>(len));
        p->text = true;
    } else {
        p->data.assign(PyBytes_AS_STRING(bytes), static_cast<std::size_t>(PyBytes_GET_SIZE(bytes)));
        p->text = false;
    }
    cmd.kind = asgi::Command::Kind::publish;
    cmd.publication = std::move(p);
    return cycle_send(so, std::move(cmd), 0, false);
}

}  // namespace narwhal::python
