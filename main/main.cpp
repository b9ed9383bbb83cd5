// narwhal: an ASGI application server. Reads the configuration, then runs a worker, or
// with --workers a master process that supervises several.
#include "asgi/log.hpp"
#include "config/loader.hpp"
#include "main/worker.hpp"
#include "server/supervisor.hpp"
#include "server/systemd.hpp"
#include "server/tls_context.hpp"

#include <Python.h>
#include <fmt/format.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <unistd.h>

extern char** environ;

namespace {

// The process's log output, from the settings (at start, and in the master on SIGHUP).
void configure_logging(const narwhal::config::Settings& s) {
    using namespace narwhal;
    // uvicorn's rule: colored level names only on a terminal.
    log::configure(static_cast<log::Level>(static_cast<int>(s.log_level)),
                   s.log_format == config::LogFormat::json, s.access_log,
                   s.use_colors && ::isatty(2) == 1);
}

}  // namespace

int main(int argc, char** argv) {
    using namespace narwhal;
    // As CPython's own start-up does, before any thread exists: a write to a closed pipe
    // or socket is an EPIPE error (BrokenPipeError in the app), not the death of every
    // connection of the process; an over-large file write is EFBIG. The network code's
    // sends pass MSG_NOSIGNAL; only sendfile(2) (server/file_body.hpp) cannot, and relies
    // on this.
    std::signal(SIGPIPE, SIG_IGN);
    std::signal(SIGXFSZ, SIG_IGN);
    std::vector<std::string> env;
    for (char** e = environ; e && *e; ++e)
        env.emplace_back(*e);

    config::Loaded loaded;
    try {
        loaded = config::load(argc, argv, env);
        switch (loaded.action) {
        case config::Action::help: fmt::print("{}", config::help_text()); return 0;
        case config::Action::version:
            fmt::print("narwhal {} with CPython {}\n", NARWHAL_VERSION, PY_VERSION);
            return 0;
        case config::Action::print_config:
            fmt::print("{}", config::render_toml(loaded.settings));
            return 0;
        case config::Action::run: break;
        }
        if (!loaded.settings.env_file.empty())
            for (const auto& [key, value] : config::read_env_file(loaded.settings.env_file))
                ::setenv(key.c_str(), value.c_str(), 0);  // like load_dotenv: never override
    } catch (const config::ConfigError& e) {
        fmt::print(stderr, "narwhal: error: {}\n", e.what());
        return 2;
    }
    // systemd: the sockets of socket activation stand in for the configured listeners;
    // notifications and the watchdog are read from the environment once, here.
    server::systemd::init();
    server::systemd::Activation activation = server::systemd::take_passed_sockets(loaded.settings);
    activation.apply(loaded.settings);
    const auto& s = loaded.settings;
    configure_logging(s);
    for (const auto& w : activation.warnings)
        log::warning("{}", w);
    // Through the logger, so that --log-format json output stays one object per line.
    for (const auto& w : loaded.warnings)
        log::warning("{}", w);
    for (const auto& note : loaded.notes)
        log::info("{}", note);
    std::fflush(stdout);
    if (s.workers == 0 && !s.reload)
        return run_worker(s, argc, argv);  // one process, as without --workers
    // --reload: the master below, with one worker unless --workers says more.
    if (int refused = refuse_interpreters(s))
        return refused;  // before anything is bound or forked
    if (s.tls()) {
        // The master never serves TLS, but a certificate the workers cannot use would
        // only stop them one by one: checked here, before anything is bound or forked.
        try {
            server::load_tls(s);
        } catch (const server::TlsError& e) {
            log::error("{}", e.what());
            return 2;
        }
    }
    // A master that never starts Python; each forked worker runs the same serve path on
    // the socket the master bound.
    // SIGHUP: the same command line and the environment as it was at start (before the
    // env file's variables were added), so every source keeps its precedence.
    auto reread = [argc, argv, &env, &activation]() {
        config::Loaded again = config::load(argc, argv, env);
        activation.apply(again.settings);
        configure_logging(again.settings);
        for (const auto& w : again.warnings)
            log::warning("{}", w);
        return again.settings;
    };
    return server::run_supervisor(
        s,
        [argc, argv](const config::Settings& worker, server::WorkerSlot& slot,
                     const std::function<void()>& ready) {
            server::systemd::forget_in_child();  // the master speaks for the service
            return run_worker(worker, argc, argv, ready, &slot);
        },
        reread);
}
