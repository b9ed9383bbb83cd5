#include "python/http_pathsend.hpp"

#include "asgi/errors.hpp"
#include "asgi/unique_fd.hpp"
#include "python/http_cycle.hpp"
#include "python/loop_services.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <string_view>

namespace narwhal::python {

namespace {

// Opens `path` (the app's str) for reading. An empty UniqueFd with the Python error set
// on failure.
asgi::UniqueFd open_file(PyObject* path, struct stat& st) {
    PyObject* encoded = nullptr;  // the file system encoding, as open() would use
    if (!PyUnicode_FSConverter(path, &encoded))
        return {};
    Ref bytes = Ref::steal(encoded);
    std::string_view p(PyBytes_AS_STRING(encoded),
                       static_cast<std::size_t>(PyBytes_GET_SIZE(encoded)));
    if (p.empty() || p.front() != '/') {
        raise(PyExc_ValueError, asgi::errors::pathsend_not_absolute(p));
        return {};
    }
    // O_NONBLOCK: a FIFO at the path must not block the loop in open(); it has no
    // effect on reading a regular file, which is all that is accepted.
    asgi::UniqueFd fd(
        ::open(PyBytes_AS_STRING(encoded), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
    if (!fd || ::fstat(fd.get(), &st) < 0) {
        PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, path);
        return {};
    }
    if (!S_ISREG(st.st_mode)) {
        raise(PyExc_RuntimeError, asgi::errors::pathsend_not_regular_file(p));
        return {};
    }
    return fd;
}

}  // namespace

PyObject* http_pathsend(SendObject* so, PyObject* message) {
    auto* self = reinterpret_cast<PyObject*>(so);
    CycleState& s = *so->cycle->s;
    const Names& n = s.services->names();
    PyObject* path = PyDict_GetItemWithError(message, n.path);
    if (!path) {
        if (!PyErr_Occurred())
            PyErr_SetObject(PyExc_KeyError, n.path);
        return nullptr;
    }
    if (!PyUnicode_Check(path))
        return raise(PyExc_TypeError, asgi::errors::pathsend_path_not_str);
    struct stat st{};
    asgi::UniqueFd file = open_file(path, st);
    if (!file)
        return nullptr;
    const auto size = static_cast<uint64_t>(st.st_size);
    if (auto err = s.response.on_pathsend(size))
        return raise(PyExc_RuntimeError, *err);

    asgi::Command cmd;
    if (s.start_held) {
        cmd = std::move(s.held_start);
        s.start_held = false;
    }
    cmd.kind = asgi::Command::Kind::file;
    cmd.file_size = size;
    if (s.response.body_allowed())
        cmd.file = std::move(file);  // HEAD, 204, 304: the head alone, with the size
    if (s.channel)
        s.channel->submit(std::move(cmd));
    // The file's bytes never pass through the send water marks: the response is
    // complete for the app now, and the connection paces the file by the socket.
    wake_receiver_with_disconnect(s);  // receive() now answers http.disconnect
    return ready_none(self);
}

}  // namespace narwhal::python
