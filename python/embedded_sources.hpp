// The narwhal Python package, compiled into the binary (see embed_sources.cmake).
#pragma once

#include <string_view>
#include <vector>

namespace narwhal::python {

struct EmbeddedModule {
    std::string_view name;      // "narwhal._runtime"
    std::string_view filename;  // "narwhal/_runtime.py", shown in tracebacks
    bool package;
    std::string_view source;
};

const std::vector<EmbeddedModule>& embedded_modules();

}  // namespace narwhal::python
