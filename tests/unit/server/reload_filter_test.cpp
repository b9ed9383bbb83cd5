#include "server/reload_filter.hpp"

#include "catch.hpp"

#include <cstdlib>
#include <filesystem>
#include <string>

using narwhal::server::glob_matches_tail;
using narwhal::server::ReloadFilter;

TEST_CASE("a reload glob matches the path's last components", "[server][reload]") {
    CHECK(glob_matches_tail("/src/app.py", "*.py"));
    CHECK(glob_matches_tail("/src/pkg/app.py", "pkg/*.py"));
    CHECK_FALSE(glob_matches_tail("/src/other/app.py", "pkg/*.py"));
    // '*' never crosses a '/': the name alone is tested.
    CHECK_FALSE(glob_matches_tail("/src/app.pyc", "*.py"));
    CHECK_FALSE(glob_matches_tail("/src/app.py", "src*"));
    CHECK(glob_matches_tail("/src/.hidden", ".*"));
    CHECK(glob_matches_tail("/src/.app.py.swp", ".*"));
    CHECK(glob_matches_tail("/src/~backup.py", "~*"));
    CHECK(glob_matches_tail("/src/.pyc", ".py[cod]"));
    CHECK_FALSE(glob_matches_tail("/src/app.py", "a/b/c/d/app.py"));
    CHECK_FALSE(glob_matches_tail("/src/app.py", ""));
}

TEST_CASE("reload filter: uvicorn's defaults", "[server][reload]") {
    ReloadFilter filter({}, {});
    CHECK(filter.includes() == std::vector<std::string>{"*.py"});
    CHECK(filter.excludes() == std::vector<std::string>{".*", ".py[cod]", ".sw.*", "~*"});
    CHECK(filter.matches("/src/app.py"));
    CHECK(filter.matches("/src/pkg/deep/models.py"));
    CHECK_FALSE(filter.matches("/src/notes.txt"));
    CHECK_FALSE(filter.matches("/src/app.pyc"));
    CHECK_FALSE(filter.matches("/src/index.html"));
    // Editors' and hidden files: excluded although they end in .py.
    CHECK_FALSE(filter.matches("/src/.#app.py"));
    CHECK_FALSE(filter.matches("/src/~app.py"));
}

TEST_CASE("reload filter: includes and excludes added, defaults overridden", "[server][reload]") {
    ReloadFilter html({"*.html"}, {});
    CHECK(html.matches("/src/templates/index.html"));
    CHECK(html.matches("/src/app.py"));
    CHECK_FALSE(html.matches("/src/.index.html"));

    // Excluding the default include drops it; including a default exclude drops that.
    ReloadFilter no_py({"*.txt", ".*"}, {"*.py"});
    CHECK(no_py.includes() == std::vector<std::string>{"*.txt", ".*"});
    CHECK_FALSE(no_py.matches("/src/app.py"));
    CHECK(no_py.matches("/src/notes.txt"));
    CHECK(no_py.matches("/src/.env"));

    // Both included and excluded: excluded.
    ReloadFilter both({"*.cfg"}, {"*.cfg"});
    CHECK_FALSE(both.matches("/src/a.cfg"));

    ReloadFilter tests({}, {"test_*.py"});
    CHECK_FALSE(tests.matches("/src/test_app.py"));
    CHECK(tests.matches("/src/app.py"));

    // A file named literally wins over the excludes.
    ReloadFilter literal({".env"}, {});
    CHECK(literal.matches("/src/.env"));
}

TEST_CASE("reload filter: an exclude naming a directory excludes its tree", "[server][reload]") {
    std::string pattern = (std::filesystem::temp_directory_path() / "narwhal-reload-XXXXXX");
    std::filesystem::path root = ::mkdtemp(pattern.data());
    std::filesystem::create_directories(root / "venv" / "lib");
    ReloadFilter filter({}, {(root / "venv").string()});
    CHECK(filter.excluded_dir(root / "venv"));
    CHECK(filter.excluded_dir(root / "venv" / "lib"));
    CHECK_FALSE(filter.excluded_dir(root));
    CHECK_FALSE(filter.excluded_dir(root / "venv2"));
    CHECK_FALSE(filter.matches(root / "venv" / "lib" / "site.py"));
    CHECK(filter.matches(root / "app.py"));
    std::filesystem::remove_all(root);
}
