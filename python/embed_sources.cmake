# Turns the narwhal Python package into a C++ source so the binary is self-contained:
# the interpreter loads these modules from memory, whatever the install layout.
# Inputs: SOURCES (list of .py paths), ROOT (the python/ folder), OUTPUT.
set(body "// Generated from python/narwhal/*.py. Do not edit.\n#include \"python/embedded_sources.hpp\"\n\nnamespace narwhal::python {\n\nconst std::vector<EmbeddedModule>& embedded_modules() {\n    static const std::vector<EmbeddedModule> modules = {\n")
foreach(src IN LISTS SOURCES)
    file(RELATIVE_PATH rel "${ROOT}" "${src}")
    string(REGEX REPLACE "\\.py$" "" mod "${rel}")
    string(REPLACE "/" "." mod "${mod}")
    string(REGEX REPLACE "\\.__init__$" "" mod "${mod}")
    set(is_pkg "false")
    if(rel MATCHES "__init__\\.py$")
        set(is_pkg "true")
    endif()
    file(READ "${src}" text)
    string(APPEND body "        {\"${mod}\", \"${rel}\", ${is_pkg}, R\"NWPY(${text})NWPY\"},\n")
endforeach()
string(APPEND body "    };\n    return modules;\n}\n\n}  // namespace narwhal::python\n")
file(WRITE "${OUTPUT}.tmp" "${body}")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
