// Starting the embedded interpreter the server owns.
#pragma once

#include <stdexcept>
#include <string>

namespace narwhal::python {

// The virtualenv named by --venv / $VIRTUAL_ENV cannot be used with the Python this
// binary embeds. what() is one line naming both Pythons.
struct VenvError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Initialises CPython for embedding the way `python` itself starts: sys.executable is
// the venv's bin/python when `venv` is not empty (so pyvenv.cfg decides sys.prefix and
// whether the system's site-packages are visible), else the installation's own python;
// SIGPIPE/SIGXFSZ stay ignored (main sets that up) but no Python handler is installed
// for SIGINT: the C++ side owns SIGINT/SIGTERM. sys.argv = the server's argv. Then
// loads the embedded narwhal package. Throws VenvError for an unusable venv,
// std::runtime_error (or pybind11's error_already_set) for other failures.
void start_interpreter(int argc, const char* const* argv, const std::string& venv);
void stop_interpreter();

// Executes the embedded narwhal package into the current interpreter's sys.modules.
// false with a Python error set. (C API only: it runs in any interpreter.)
bool load_embedded_package();

}  // namespace narwhal::python
