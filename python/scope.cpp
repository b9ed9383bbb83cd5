#include "python/scope.hpp"

#include "asgi/pubsub.hpp"
#include "asgi/response_state.hpp"
#include "asgi/target.hpp"
#include "python/py_ref.hpp"

namespace narwhal::python {

namespace {
PyObject* bytes(std::string_view s) {
    return PyBytes_FromStringAndSize(s.data(), static_cast<Py_ssize_t>(s.size()));
}

bool set(PyObject* d, PyObject* key, PyObject* value_stolen) {
    if (!value_stolen)
        return false;
    int rc = PyDict_SetItem(d, key, value_stolen);
    Py_DECREF(value_stolen);
    return rc == 0;
}

PyObject* address(std::string_view host, int port) {
    if (host.empty())
        Py_RETURN_NONE;
    PyObject* h =
        PyUnicode_DecodeUTF8(host.data(), static_cast<Py_ssize_t>(host.size()), "replace");
    if (!h)
        return nullptr;
    PyObject* p;
    if (port < 0) {
        Py_INCREF(Py_None);
        p = Py_None;  // Unix socket: [path, None]
    } else {
        p = PyLong_FromLong(port);
    }
    if (!p) {
        Py_DECREF(h);
        return nullptr;
    }
    PyObject* t = PyTuple_New(2);
    if (!t) {
        Py_DECREF(h);
        Py_DECREF(p);
        return nullptr;
    }
    PyTuple_SET_ITEM(t, 0, h);
    PyTuple_SET_ITEM(t, 1, p);
    return t;
}

PyObject* headers_list(const Names& n, const asgi::RequestHead& head) {
    const auto& fields = head.fields();
    PyObject* list = PyList_New(static_cast<Py_ssize_t>(fields.size()));
    if (!list)
        return nullptr;
    for (std::size_t i = 0; i < fields.size(); ++i) {
        auto name_view = head.view(fields[i].name);
        PyObject* name = n.header_name(name_view);
        if (name)
            Py_INCREF(name);
        else
            name = bytes(name_view);
        PyObject* value = bytes(head.view(fields[i].value));
        PyObject* pair = (name && value) ? PyTuple_New(2) : nullptr;
        if (!pair) {
            Py_XDECREF(name);
            Py_XDECREF(value);
            Py_DECREF(list);
            return nullptr;
        }
        PyTuple_SET_ITEM(pair, 0, name);
        PyTuple_SET_ITEM(pair, 1, value);
        PyList_SET_ITEM(list, static_cast<Py_ssize_t>(i), pair);
    }
    return list;
}
}  // namespace

bool ScopeBuilder::init(const Names& n, const std::string& root_path) {
    n_ = &n;
    root_path_ = root_path;
    Ref root = Ref::steal(PyUnicode_DecodeUTF8(
        root_path.data(), static_cast<Py_ssize_t>(root_path.size()), "replace"));
    asgi_template_ = Ref::steal(PyDict_New());
    http_template_ = Ref::steal(PyDict_New());
    websocket_template_ = Ref::steal(PyDict_New());
    http_extensions_ = Ref::steal(PyDict_New());
    Ref pathsend_key = Ref::steal(PyUnicode_InternFromString(asgi::pathsend_type.data()));
    Ref pathsend = Ref::steal(PyDict_New());
    pubsub_key_ =
        Ref::steal(PyUnicode_InternFromString(std::string(asgi::pubsub_extension).c_str()));
    Ref pubsub = Ref::steal(PyDict_New());
    if (!root || !http_extensions_ || !pathsend_key || !pathsend || !pubsub_key_ || !pubsub ||
        PyDict_SetItem(http_extensions_.get(), pathsend_key.get(), pathsend.get()) < 0 ||
        PyDict_SetItem(http_extensions_.get(), pubsub_key_.get(), pubsub.get()) < 0 ||
        !asgi_template_ || !http_template_ || !websocket_template_ ||
        PyDict_SetItem(asgi_template_.get(), n.version, n.v3_0) < 0 ||
        PyDict_SetItem(asgi_template_.get(), n.spec_version, n.spec_2_4) < 0)
        return false;
    // Key order is the order of the spec's tables; None marks a per-request value.
    PyObject* http_keys[] = {n.type,         n.asgi,    n.http_version, n.server,    n.client,
                             n.scheme,       n.method,  n.root_path,    n.path,      n.raw_path,
                             n.query_string, n.headers, n.state,        n.extensions};
    PyObject* ws_keys[] = {n.type,    n.asgi,         n.http_version, n.server,    n.client,
                           n.scheme,  n.root_path,    n.path,         n.raw_path,  n.query_string,
                           n.headers, n.subprotocols, n.state,        n.extensions};
    for (PyObject* k : http_keys)
        if (PyDict_SetItem(http_template_.get(), k, Py_None) < 0)
            return false;
    for (PyObject* k : ws_keys)
        if (PyDict_SetItem(websocket_template_.get(), k, Py_None) < 0)
            return false;
    return PyDict_SetItem(http_template_.get(), n.type, n.http) == 0 &&
           PyDict_SetItem(http_template_.get(), n.root_path, root.get()) == 0 &&
           PyDict_SetItem(websocket_template_.get(), n.type, n.websocket) == 0 &&
           PyDict_SetItem(websocket_template_.get(), n.root_path, root.get()) == 0;
}

bool ScopeBuilder::fill_common(PyObject* d, const asgi::RequestHead& head, const asgi::Peer& peer,
                               PyObject* state) const {
    const Names& n = *n_;
    auto parts = asgi::split_target(head.target_view());
    // path is the request's path percent-decoded (undecodable bytes as U+FFFD), and like
    // raw_path it starts with root_path: the ASGI spec's form, which uvicorn >= 0.26
    // produces and current Starlette, FastAPI, Django and Quart route and build URLs on.
    std::string decoded = root_path_;
    if (asgi::needs_decoding(parts.raw_path))
        decoded += asgi::percent_decode(parts.raw_path);
    else
        decoded += parts.raw_path;
    std::string raw_storage;
    std::string_view raw = parts.raw_path;
    if (!root_path_.empty()) {
        raw_storage = root_path_;
        raw_storage += parts.raw_path;
        raw = raw_storage;
    }
    return set(d, n.asgi, PyDict_Copy(asgi_template_.get())) &&
           PyDict_SetItem(d, n.http_version, head.version == 10 ? n.v1_0 : n.v1_1) == 0 &&
           set(d, n.server, address(peer.server_host, peer.server_port)) &&
           set(d, n.client, address(peer.client_host, peer.client_port)) &&
           set(d, n.path,
               PyUnicode_DecodeUTF8(decoded.data(), static_cast<Py_ssize_t>(decoded.size()),
                                    "replace")) &&
           set(d, n.raw_path, bytes(raw)) && set(d, n.query_string, bytes(parts.query_string)) &&
           set(d, n.headers, headers_list(n, head)) &&
           set(d, n.state, state ? PyDict_Copy(state) : PyDict_New());
}

int ScopeBuilder::add_tls(PyObject* extensions, const asgi::TlsInfo& tls) const {
    if (server_cert_of_ != tls.server_cert) {
        const std::string& pem = *tls.server_cert;
        server_cert_ = Ref::steal(
            PyUnicode_DecodeASCII(pem.data(), static_cast<Py_ssize_t>(pem.size()), "replace"));
        if (!server_cert_)
            return -1;
        server_cert_of_ = tls.server_cert;
    }
    Ref d = Ref::steal(PyDict_New());
    Ref chain = Ref::steal(PyList_New(0));
    if (!d || !chain)
        return -1;
    for (const std::string& pem : tls.client_cert_chain) {
        Ref s = Ref::steal(
            PyUnicode_DecodeASCII(pem.data(), static_cast<Py_ssize_t>(pem.size()), "replace"));
        if (!s || PyList_Append(chain.get(), s.get()) < 0)
            return -1;
    }
    Ref name = tls.client_cert_chain.empty()
                   ? Ref::borrow(Py_None)
                   : Ref::steal(PyUnicode_DecodeUTF8(
                         tls.client_cert_name.data(),
                         static_cast<Py_ssize_t>(tls.client_cert_name.size()), "replace"));
    Ref version = Ref::steal(PyLong_FromLong(tls.tls_version));
    Ref cipher = Ref::steal(PyLong_FromLong(tls.cipher_suite));
    // A certificate that fails verification fails the handshake, so none reaches here.
    if (!name || !version || !cipher ||
        PyDict_SetItemString(d.get(), "server_cert", server_cert_.get()) < 0 ||
        PyDict_SetItemString(d.get(), "client_cert_chain", chain.get()) < 0 ||
        PyDict_SetItemString(d.get(), "client_cert_name", name.get()) < 0 ||
        PyDict_SetItemString(d.get(), "client_cert_error", Py_None) < 0 ||
        PyDict_SetItemString(d.get(), "tls_version", version.get()) < 0 ||
        PyDict_SetItemString(d.get(), "cipher_suite", cipher.get()) < 0)
        return -1;
    return PyDict_SetItemString(extensions, "tls", d.get());
}

PyObject* ScopeBuilder::http(const asgi::RequestHead& head, const asgi::Peer& peer,
                             PyObject* state) const {
    const Names& n = *n_;
    Ref scope = Ref::steal(PyDict_Copy(http_template_.get()));
    if (!scope)
        return nullptr;
    PyObject* d = scope.get();
    PyObject* method = n.method_name(head.method_view());
    if (method)
        Py_INCREF(method);
    else
        method = PyUnicode_DecodeLatin1(
            head.method_view().data(), static_cast<Py_ssize_t>(head.method_view().size()), nullptr);
    // A copy per request: an app or middleware may add to its scope's extensions. The
    // extension's own empty dict is shared (the spec reserves it; nothing writes to it).
    if (!fill_common(d, head, peer, state) ||
        PyDict_SetItem(d, n.scheme, peer.secure ? n.scheme_https : n.scheme_http) < 0 ||
        !set(d, n.method, method) || !set(d, n.extensions, PyDict_Copy(http_extensions_.get())))
        return nullptr;
    if (peer.tls_info && add_tls(PyDict_GetItem(d, n.extensions), *peer.tls_info) < 0)
        return nullptr;
    return scope.release();
}

PyObject* ScopeBuilder::websocket(const asgi::RequestHead& head, const asgi::Peer& peer,
                                  PyObject* state) const {
    const Names& n = *n_;
    Ref scope = Ref::steal(PyDict_Copy(websocket_template_.get()));
    if (!scope || !fill_common(scope.get(), head, peer, state))
        return nullptr;
    PyObject* d = scope.get();
    Ref subprotocols = Ref::steal(PyList_New(0));
    if (!subprotocols)
        return nullptr;
    for (const auto& f : head.fields()) {
        if (head.view(f.name) != "sec-websocket-protocol")
            continue;
        std::string_view list = head.view(f.value);
        while (!list.empty()) {
            auto comma = list.find(',');
            auto item = list.substr(0, comma);
            while (!item.empty() && (item.front() == ' ' || item.front() == '\t'))
                item.remove_prefix(1);
            while (!item.empty() && (item.back() == ' ' || item.back() == '\t'))
                item.remove_suffix(1);
            if (!item.empty()) {
                Ref s = Ref::steal(PyUnicode_DecodeLatin1(
                    item.data(), static_cast<Py_ssize_t>(item.size()), nullptr));
                if (!s || PyList_Append(subprotocols.get(), s.get()) < 0)
                    return nullptr;
            }
            list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
        }
    }
    // {"websocket.http.response": {}}: the denial-response extension; narwhal.pubsub.
    Ref ext = Ref::steal(PyDict_New());
    Ref denial = Ref::steal(PyDict_New());
    Ref pubsub = Ref::steal(PyDict_New());
    if (!ext || !denial || !pubsub ||
        PyDict_SetItem(ext.get(), n.websocket_http_response, denial.get()) < 0 ||
        PyDict_SetItem(ext.get(), pubsub_key_.get(), pubsub.get()) < 0 ||
        PyDict_SetItem(d, n.scheme, peer.secure ? n.scheme_wss : n.scheme_ws) < 0 ||
        PyDict_SetItem(d, n.subprotocols, subprotocols.get()) < 0 ||
        PyDict_SetItem(d, n.extensions, ext.get()) < 0 ||
        (peer.tls_info && add_tls(ext.get(), *peer.tls_info) < 0))
        return nullptr;
    return scope.release();
}

}  // namespace narwhal::python
