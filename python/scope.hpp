// Builds the ASGI HTTP and websocket scope dicts (spec 2.4) from a parsed request head.
//
// Every scope has the same keys in the same order, and some values never change for a
// server (type, root_path). So each is a copy of a template dict made once per
// interpreter: copying a dict of 14 entries is one block copy of its key table, where
// inserting 14 keys into a fresh dict grows it three times on the way.
#pragma once

#include "asgi/events.hpp"
#include "python/names.hpp"
#include "python/py_ref.hpp"

#include <Python.h>

#include <string>

namespace narwhal::python {

class ScopeBuilder {
public:
    // `root_path`: --root-path, the same for every request. false with a Python error set.
    bool init(const Names& names, const std::string& root_path);

    // New references, or nullptr with a Python error set. `state` is the lifespan state
    // dict (shallow-copied into the scope) or nullptr.
    PyObject* http(const asgi::RequestHead& head, const asgi::Peer& peer, PyObject* state) const;
    // The websocket scope: the HTTP one without `method`, with scheme ws/wss, the
    // requested subprotocols, and the denial-response extension.
    PyObject* websocket(const asgi::RequestHead& head, const asgi::Peer& peer,
                        PyObject* state) const;

private:
    // The entries both scopes share; false with an error set.
    bool fill_common(PyObject* d, const asgi::RequestHead& head, const asgi::Peer& peer,
                     PyObject* state) const;

    const Names* n_ = nullptr;
    std::string root_path_;
    Ref http_template_, websocket_template_, asgi_template_;
    // {"http.response.pathsend": {}}: the extensions every http scope offers, copied
    // per request (http_pathsend.hpp).
    Ref http_extensions_;
    Ref pubsub_key_;  // "narwhal.pubsub"
    // The `tls` extension's dict for a TLS connection, added to `extensions`; 0 or -1
    // with an error set.
    int add_tls(PyObject* extensions, const asgi::TlsInfo& tls) const;
    // The server certificate's PEM as a str, made once per loaded certificate.
    // Held, not only compared: a reload frees the old PEM, and a new one allocated at
    // the same address must not be taken for it.
    mutable std::shared_ptr<const std::string> server_cert_of_;
    mutable Ref server_cert_;
};

}  // namespace narwhal::python
