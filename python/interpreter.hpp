// Starting the embedded interpreter the server owns.
#pragma once

namespace narwhal::python {

// Initialises CPython for embedding: the `_narwhal` module built in, no Python signal
// handlers (the C++ side owns SIGINT/SIGTERM), sys.argv = the server's argv, then loads
// the embedded narwhal package. Throws std::runtime_error (or pybind11's
// error_already_set) on failure.
void start_interpreter(int argc, const char* const* argv);
void stop_interpreter();

// Executes the embedded narwhal package into the current interpreter's sys.modules.
// false with a Python error set. (C API only: it runs in any interpreter.)
bool load_embedded_package();

}  // namespace narwhal::python
