#include "server/reload_filter.hpp"

#include <algorithm>
#include <fnmatch.h>
#include <system_error>

namespace narwhal::server {

namespace {

const std::vector<std::string> default_includes{"*.py"};
const std::vector<std::string> default_excludes{".*", ".py[cod]", ".sw.*", "~*"};

bool contains(const std::vector<std::string>& list, const std::string& item) {
    return std::find(list.begin(), list.end(), item) != list.end();
}

void add_unique(std::vector<std::string>& list, const std::string& item) {
    if (!item.empty() && !contains(list, item))
        list.push_back(item);
}

// Components of a path or glob, empty ones (a doubled or trailing '/') dropped.
std::vector<std::string> components(const std::filesystem::path& p) {
    std::vector<std::string> out;
    for (const auto& part : p)
        if (!part.empty() && part != "/")
            out.push_back(part.string());
    return out;
}

}  // namespace

bool glob_matches_tail(const std::filesystem::path& path, const std::string& glob) {
    std::vector<std::string> names = components(path);
    std::vector<std::string> parts = components(glob);
    if (parts.empty() || parts.size() > names.size())
        return false;
    auto name = names.end() - static_cast<std::ptrdiff_t>(parts.size());
    for (const std::string& part : parts)
        if (::fnmatch(part.c_str(), (name++)->c_str(), 0) != 0)
            return false;
    return true;
}

ReloadFilter::ReloadFilter(const std::vector<std::string>& includes,
                           const std::vector<std::string>& excludes) {
    for (const std::string& glob : default_includes)
        if (!contains(excludes, glob))
            add_unique(includes_, glob);
    for (const std::string& glob : includes)
        if (!contains(excludes, glob))  // both included and excluded: excluded
            add_unique(includes_, glob);
    for (const std::string& glob : default_excludes)
        if (!contains(includes, glob))
            add_unique(excludes_, glob);
    for (const std::string& glob : excludes) {
        std::error_code ec;
        if (std::filesystem::is_directory(glob, ec))
            exclude_dirs_.push_back(std::filesystem::absolute(glob, ec).lexically_normal());
        else
            add_unique(excludes_, glob);
    }
}

bool ReloadFilter::excluded_dir(const std::filesystem::path& dir) const {
    std::filesystem::path normal = dir.lexically_normal();
    for (const auto& excluded : exclude_dirs_) {
        auto rel = normal.lexically_relative(excluded);
        if (!rel.empty() && *rel.begin() != "..")
            return true;
    }
    return false;
}

bool ReloadFilter::matches(const std::filesystem::path& path) const {
    const std::string text = path.string();
    for (const std::string& include : includes_) {
        if (!glob_matches_tail(path, include))
            continue;
        if (text.ends_with(include))
            return true;  // named literally: the user wants exactly this file
        if (excluded_dir(path.parent_path()))
            return false;
        return std::none_of(excludes_.begin(), excludes_.end(), [&](const std::string& exclude) {
            return glob_matches_tail(path, exclude);
        });
    }
    return false;
}

}  // namespace narwhal::server
