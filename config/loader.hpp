// Filling Settings from the command line, the environment and a config file, and the
// texts that describe them (--help, --print-config). Every problem is a ConfigError
// whose message names the setting and the source it came from; main prints
// "narwhal: error: <message>" and exits with status 2.
#pragma once

#include "config/error.hpp"
#include "config/settings.hpp"

#include <string>
#include <utility>
#include <vector>

namespace narwhal::config {

enum class Action { run, help, version, print_config };

struct Loaded {
    Action action = Action::run;
    Settings settings;
    // Not fatal, for main to print as "narwhal: warning: ...": unknown NARWHAL_*
    // variables (images often set NARWHAL_VERSION-style variables of their own) and
    // settings that another one overrides (--port with --uds).
    std::vector<std::string> warnings;
    // For main to log once at info: which UVICORN_* variables were honoured, and what
    // uvicorn's --http/--ws choices mean here.
    std::vector<std::string> notes;
};

// Layers, later wins: defaults < WEB_CONCURRENCY (uvicorn's default for --workers) < config file
// (--config PATH or $NARWHAL_CONFIG) < uvicorn's UVICORN_* environment < NARWHAL_* environment <
// CLI. `environ` holds "KEY=VALUE" strings, passed in so that tests never touch the process
// environment. --help and --version win over everything else on the command line and skip loading;
// --print-config loads and validates all layers but does not require APP.
Loaded load(int argc, const char* const* argv, const std::vector<std::string>& environ);

std::string help_text();  // usage, then every option with its default and help
// What --print-config prints: valid TOML that load() reads back to the same Settings.
std::string render_toml(const Settings& settings);

// A dotenv file as python-dotenv (uvicorn's --env-file) reads it: KEY=VALUE lines,
// comments, quotes, `export ` prefixes and ${VAR} expansion. In file order; a repeated
// key keeps its first position and its last value. Like load_dotenv, the caller should
// set only variables the process environment does not already have. Throws ConfigError
// when the file cannot be read or a line cannot be parsed.
std::vector<std::pair<std::string, std::string>> read_env_file(const std::string& path);

}  // namespace narwhal::config
