// Helpers shared by the config tests: argv from a list, scratch files, and comparing
// two Settings through the option table (Settings itself has no operator==).
#pragma once

#include "config/loader.hpp"
#include "config/options.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>
#include <vector>

namespace narwhal::config::test {

inline Loaded load_args(std::initializer_list<const char*> args,
                        const std::vector<std::string>& environ = {}) {
    std::vector<const char*> argv{"narwhal"};
    argv.insert(argv.end(), args.begin(), args.end());
    return load(static_cast<int>(argv.size()), argv.data(), environ);
}

// A fresh directory under the system temp dir, removed with everything in it.
class ScratchDir {
public:
    ScratchDir() {
        std::string pattern = (std::filesystem::temp_directory_path() / "narwhal-cfg-XXXXXX");
        path_ = ::mkdtemp(pattern.data());
    }
    ~ScratchDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    ScratchDir(const ScratchDir&) = delete;
    ScratchDir& operator=(const ScratchDir&) = delete;

    std::string write(const std::string& name, const std::string& text) const {
        std::filesystem::path p = path_ / name;
        std::filesystem::create_directories(p.parent_path());
        std::ofstream(p, std::ios::binary) << text;
        return p.string();
    }
    std::string path(const std::string& name) const { return (path_ / name).string(); }

private:
    std::filesystem::path path_;
};

inline bool same_settings(const Settings& a, const Settings& b) {
    for (const Option& o : options())
        if (o.get(a) != o.get(b))
            return false;
    return true;
}

}  // namespace narwhal::config::test
