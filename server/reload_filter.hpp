// --reload's choice of which changed files restart the workers: uvicorn's rules, so a
// project's --reload-include / --reload-exclude mean the same under both servers.
//
// A path matches when an include glob matches it and no exclude does (and it is not
// under an excluded directory); a path that ends with an include pattern literally
// ('app.py') matches even when an exclude would drop it. A glob is matched against the
// path's last components, one glob component per path component (fnmatch each: '*'
// never crosses a '/'), so '*.py' tests the file name and 'templates/*.html' the file
// and its directory.
//
// Defaults: includes '*.py' and excludes '.*', '.py[cod]', '.sw.*', '~*'. A default
// include the user excludes is dropped, and so is a default exclude the user includes
// ('--reload-include .env' watches that file in spite of '.*'). An exclude naming an
// existing directory excludes its tree instead of a file name.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace narwhal::server {

class ReloadFilter {
public:
    ReloadFilter(const std::vector<std::string>& includes,
                 const std::vector<std::string>& excludes);

    bool matches(const std::filesystem::path& path) const;
    // A directory the watcher need not descend into.
    bool excluded_dir(const std::filesystem::path& dir) const;

    const std::vector<std::string>& includes() const { return includes_; }
    const std::vector<std::string>& excludes() const { return excludes_; }

private:
    std::vector<std::string> includes_;
    std::vector<std::string> excludes_;
    std::vector<std::filesystem::path> exclude_dirs_;  // absolute, normalised
};

// True when `glob` matches the last components of `path` (see above).
bool glob_matches_tail(const std::filesystem::path& path, const std::string& glob);

}  // namespace narwhal::server
