// Starting the embedded interpreter the server owns.
#pragma once

namespace narwhal::python {

// Initialises CPython for embedding: no Python signal handlers (the C++ side owns
// SIGINT/SIGTERM), sys.argv = the server's argv, then loads the embedded narwhal
// package. Throws std::runtime_error on failure.
void start_interpreter(int argc, const char* const* argv);
void stop_interpreter();

}  // namespace narwhal::python
