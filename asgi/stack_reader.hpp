// How the watchdog (server/) gets the Python stack of a blocked loop thread without
// knowing Python: it asks a StackReader, which the interpreter side (python/) implements.
// Declared here, in the plain C++ bridge core that both layers include, so that neither
// has to include the other.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace narwhal::asgi {

// One frame of a Python stack, as plain strings: nothing here refers to Python objects.
struct StackFrame {
    std::string file;
    int line = 0;
    std::string function;
    std::string text;  // the source line, if known
};

class StackReader {
public:
    virtual ~StackReader() = default;
    // Reads the stack of Python thread `ident` (oldest frame first) and calls `done` with
    // it, from another thread, as soon as the stack can be read: the blocked loop may hold
    // the GIL, so the caller must not wait for the answer beyond its own deadline.
    virtual void request(unsigned long ident,
                         std::function<void(std::vector<StackFrame>)> done) = 0;
};

}  // namespace narwhal::asgi
