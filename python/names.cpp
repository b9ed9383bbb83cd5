#include "python/names.hpp"

#include <string>

namespace narwhal::python {

namespace {
constexpr std::string_view common_headers[] = {
    "host",
    "user-agent",
    "accept",
    "accept-encoding",
    "accept-language",
    "connection",
    "content-type",
    "content-length",
    "cookie",
    "authorization",
    "cache-control",
    "origin",
    "referer",
    "upgrade-insecure-requests",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-request-id",
    "if-none-match",
    "if-modified-since",
    "pragma",
    "sec-fetch-mode",
    "sec-fetch-site",
    "sec-fetch-dest",
    "sec-ch-ua",
    "sec-ch-ua-mobile",
    "sec-ch-ua-platform",
    "transfer-encoding",
    "expect",
    "upgrade",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-extensions",
    "sec-websocket-protocol",
    "dnt",
    "te",
    "x-real-ip",
};
constexpr std::string_view common_methods[] = {"GET",     "POST",  "PUT",   "DELETE", "HEAD",
                                               "OPTIONS", "PATCH", "TRACE", "CONNECT"};
}  // namespace

PyObject* Names::own(PyObject* o) {
    if (o)
        owned_.push_back(o);
    return o;
}

Names::Names() {
    type = intern("type");
    asgi = intern("asgi");
    http_version = intern("http_version");
    server = intern("server");
    client = intern("client");
    scheme = intern("scheme");
    method = intern("method");
    root_path = intern("root_path");
    path = intern("path");
    raw_path = intern("raw_path");
    query_string = intern("query_string");
    headers = intern("headers");
    state = intern("state");
    extensions = intern("extensions");
    version = intern("version");
    spec_version = intern("spec_version");
    body = intern("body");
    more_body = intern("more_body");
    status = intern("status");
    text = intern("text");
    bytes = intern("bytes");
    code = intern("code");
    reason = intern("reason");
    subprotocol = intern("subprotocol");
    subprotocols = intern("subprotocols");
    http = intern("http");
    http_request = intern("http.request");
    http_disconnect = intern("http.disconnect");
    response_start = intern("http.response.start");
    response_body = intern("http.response.body");
    v3_0 = intern("3.0");
    spec_2_4 = intern("2.4");
    v1_1 = intern("1.1");
    v1_0 = intern("1.0");
    scheme_http = intern("http");
    scheme_https = intern("https");
    empty_bytes = own(PyBytes_FromStringAndSize("", 0));
    websocket = intern("websocket");
    scheme_ws = intern("ws");
    scheme_wss = intern("wss");
    websocket_http_response = intern("websocket.http.response");
    websocket_connect = intern("websocket.connect");
    websocket_receive = intern("websocket.receive");
    websocket_disconnect = intern("websocket.disconnect");
    set_result = intern("set_result");
    set_exception = intern("set_exception");
    done = intern("done");
    cancel = intern("cancel");
    add_done_callback = intern("add_done_callback");
    cancelled = intern("cancelled");
    exception = intern("exception");
    for (auto h : common_headers)
        header_names_[h] =
            own(PyBytes_FromStringAndSize(h.data(), static_cast<Py_ssize_t>(h.size())));
    for (auto m : common_methods)
        methods_[m] = intern(std::string(m).c_str());
}

Names::~Names() {
    // Released with the module's state, while its interpreter still exists.
    for (PyObject* o : owned_)
        Py_DECREF(o);
}

PyObject* Names::header_name(std::string_view lowered) const {
    auto it = header_names_.find(lowered);
    return it == header_names_.end() ? nullptr : it->second;
}

PyObject* Names::method_name(std::string_view m) const {
    auto it = methods_.find(m);
    return it == methods_.end() ? nullptr : it->second;
}

}  // namespace narwhal::python
