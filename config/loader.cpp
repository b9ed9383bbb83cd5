#include "config/loader.hpp"

#include "config/config_file.hpp"
#include "config/options.hpp"
#include "config/redis_url.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <map>
#include <optional>

#include <arpa/inet.h>
#include <netinet/in.h>

namespace narwhal::config {
namespace {

using Layer = std::vector<Assignment>;

const Option& app_option() {
    static const Option* app = find_by_key("app");
    return *app;
}

// Repeated --header (and --reload-dir, ...) entries add up within one source; any other
// repeat is a plain overwrite, so the last one wins when the layer is applied in order.
template <typename List> void append(Assignment& earlier, Assignment& a) {
    auto& list = std::get<List>(earlier.value);
    auto& more = std::get<List>(a.value);
    list.insert(list.end(), more.begin(), more.end());
}

void add(Layer& layer, Assignment a) {
    if (a.option->kind == Kind::headers || a.option->kind == Kind::list) {
        for (Assignment& earlier : layer) {
            if (earlier.option == a.option) {
                if (a.option->kind == Kind::headers)
                    append<HeaderList>(earlier, a);
                else
                    append<TextList>(earlier, a);
                return;
            }
        }
    }
    layer.push_back(std::move(a));
}

std::string hint(std::string_view wrong, const std::vector<std::string>& candidates) {
    std::string best = closest(wrong, candidates);
    return best.empty() ? "" : fmt::format(" (did you mean {}?)", best);
}

[[noreturn]] void no_such_option(std::string_view name) {
    std::vector<std::string> flags;
    for (const Option& o : options()) {
        if (o.flag.empty())
            continue;
        flags.emplace_back(o.flag);
        if (o.negatable)
            flags.push_back(fmt::format("--no-{}", o.flag.substr(2)));
    }
    for (const MetaOption& m : meta_options())
        flags.emplace_back(m.flag);
    throw ConfigError(fmt::format("no such option: {}{}", name, hint(name, flags)));
}

struct CommandLine {
    bool print_config = false;
    std::optional<std::string> config_path;
    Layer layer;
};

// --help and --version answer before anything else is parsed, so that they work even
// next to an option that would fail.
std::optional<Action> eager_action(int argc, const char* const* argv) {
    std::optional<Action> found;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (arg == "--")
            break;
        if (arg == "--help")
            return Action::help;
        if (arg == "--version")
            found = Action::version;
    }
    return found;
}

CommandLine parse_command_line(int argc, const char* const* argv) {
    CommandLine cl;
    bool positional_only = false;
    bool have_app = false;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (positional_only || arg.size() < 2 || arg[0] != '-') {
            if (have_app)
                throw ConfigError(fmt::format("got unexpected extra argument {}", quote(arg)));
            have_app = true;
            add(cl.layer, {&app_option(), std::string(arg), "APP"});
            continue;
        }
        if (arg == "--") {
            positional_only = true;
            continue;
        }
        if (!arg.starts_with("--"))
            no_such_option(arg);

        auto eq = arg.find('=');
        std::string_view name = arg.substr(0, eq);
        std::optional<std::string_view> inline_value;
        if (eq != std::string_view::npos)
            inline_value = arg.substr(eq + 1);
        auto value = [&]() -> std::string_view {
            if (inline_value)
                return *inline_value;
            // A following option is never taken as a value: `--root-path --port 80`
            // is a missing value, not a root path of "--port".
            if (i + 1 >= argc || std::string_view(argv[i + 1]).starts_with("--"))
                throw ConfigError(fmt::format("{}: option requires a value", name));
            return argv[++i];
        };
        auto no_value = [&] {
            if (inline_value)
                throw ConfigError(fmt::format("{}: option does not take a value", name));
        };

        if (name == "--config") {
            cl.config_path = std::string(value());
            if (cl.config_path->empty())
                throw ConfigError("--config: option requires a value");
        } else if (name == "--print-config") {
            no_value();
            cl.print_config = true;
        } else if (name == "--help" || name == "--version") {
            no_value();  // the bare forms returned early in eager_action
        } else if (const Option* o = find_by_flag(name); o || (o = find_by_uvicorn_alias(name))) {
            if (o->kind == Kind::flag && o->takes_boolean) {
                // A following boolean is the value (uvicorn's `--ws-per-message-deflate
                // False`); anything else is the next argument. No APP spells a boolean.
                std::optional<std::string_view> text = inline_value;
                if (!text && i + 1 < argc && parse_boolean(argv[i + 1]))
                    text = argv[++i];
                add(cl.layer,
                    {o, text ? parse_text(*o, *text, name) : Value{true}, std::string(name)});
            } else if (o->kind == Kind::flag) {
                no_value();
                add(cl.layer, {o, true, std::string(name)});
            } else {
                add(cl.layer, {o, parse_text(*o, value(), name), std::string(name)});
            }
        } else if (const Option* neg = name.starts_with("--no-")
                                           ? find_by_flag(fmt::format("--{}", name.substr(5)))
                                           : nullptr;
                   neg != nullptr && neg->negatable) {
            no_value();
            add(cl.layer, {neg, false, std::string(name)});
        } else {
            no_such_option(name);
        }
    }
    return cl;
}

struct Environment {
    std::optional<std::string> config_path;
    // WEB_CONCURRENCY and FORWARDED_ALLOW_IPS: uvicorn's defaults for --workers and
    // --forwarded-allow-ips, lowest of all.
    Layer web_concurrency;
    Layer uvicorn;  // UVICORN_*: a uvicorn deployment's settings, below NARWHAL_*
    Layer layer;    // NARWHAL_*
};

// UVICORN_* as uvicorn reads it (click's auto_envvar_prefix): the variables of options
// narwhal shares are honoured; others are not uvicorn's and stay unread.
void parse_uvicorn_variable(Environment& env, const std::string& name, std::string_view text) {
    const Option* o = find_by_uvicorn_env(name);
    if (!o || text.empty())
        return;  // not uvicorn's; or unset, as for NARWHAL_*
    // click splits a repeatable option's variable on whitespace; ours takes one entry per
    // line.
    std::string value(text);
    if (o->kind == Kind::headers || o->kind == Kind::list)
        for (char& c : value)
            if (c == ' ' || c == '\t')
                c = '\n';
    add(env.uvicorn, {o, parse_text(*o, value, name), name});
}

Environment parse_environment(const std::vector<std::string>& environ,
                              std::vector<std::string>& warnings) {
    Environment env;
    std::vector<std::string> names;
    for (const Option& o : options())
        names.emplace_back(o.env);
    names.emplace_back("NARWHAL_CONFIG");
    for (const std::string& entry : environ) {
        auto eq = entry.find('=');
        if (eq == std::string::npos)
            continue;
        std::string name = entry.substr(0, eq);
        std::string_view text = std::string_view(entry).substr(eq + 1);
        if (name.starts_with("UVICORN_")) {
            parse_uvicorn_variable(env, name, text);
            continue;
        }
        if (name == "WEB_CONCURRENCY") {
            // uvicorn's default for --workers (Heroku-style platforms set it): below even
            // the config file, as it is a default.
            if (!text.empty()) {
                const Option& workers = *find_by_key("workers");
                add(env.web_concurrency, {&workers, parse_text(workers, text, name), name});
            }
            continue;
        }
        if (name == "FORWARDED_ALLOW_IPS") {
            // uvicorn's default for --forwarded-allow-ips, read the same way.
            if (!text.empty()) {
                const Option& ips = *find_by_key("forwarded_allow_ips");
                add(env.web_concurrency, {&ips, parse_text(ips, text, name), name});
            }
            continue;
        }
        if (!name.starts_with("NARWHAL_"))
            continue;
        if (name == "NARWHAL_CONFIG") {
            if (!text.empty())
                env.config_path = std::string(text);
        } else if (const Option* o = find_by_env(name)) {
            // Empty means unset, as in uvicorn (click): `NARWHAL_PORT=${PORT}` in a compose
            // file with PORT undefined should fall through to the next layer down.
            if (!text.empty())
                add(env.layer, {o, parse_text(*o, text, name), name});
        } else {
            warnings.push_back(
                fmt::format("{}: not a narwhal setting, ignored{}", name, hint(name, names)));
        }
    }
    return env;
}

// Where each setting's final value came from, for messages about combinations.
class Sources {
public:
    void set(std::string_view key, std::string source) { sources_[key] = std::move(source); }
    std::string of(std::string_view key) const {
        auto it = sources_.find(key);
        return it == sources_.end() ? "default" : it->second;
    }
    bool is_default(std::string_view key) const { return !sources_.contains(key); }

private:
    std::map<std::string_view, std::string> sources_;
};

// One --forwarded-allow-ips entry: an IPv4 or IPv6 address, a CIDR network of either
// (host bits may be set, as Python's strict=False would not allow but proxies' configs
// often have), "*" or "unix:". The address syntax is inet_pton's, the same the network
// layer's matcher (boost::asio::ip) accepts.
bool valid_allow_entry(std::string_view entry) {
    if (entry == "*" || entry == "unix:")
        return true;
    std::string_view addr = entry;
    std::string_view prefix;
    if (auto slash = entry.find('/'); slash != std::string_view::npos) {
        addr = entry.substr(0, slash);
        prefix = entry.substr(slash + 1);
    }
    std::string text(addr);
    unsigned char buf[sizeof(in6_addr)];
    int max_prefix = 0;
    if (::inet_pton(AF_INET, text.c_str(), buf) == 1)
        max_prefix = 32;
    else if (::inet_pton(AF_INET6, text.c_str(), buf) == 1)
        max_prefix = 128;
    else
        return false;
    if (entry.find('/') == std::string_view::npos)
        return true;
    int bits = -1;
    auto [end, ec] = std::from_chars(prefix.data(), prefix.data() + prefix.size(), bits);
    return ec == std::errc() && end == prefix.data() + prefix.size() && !prefix.empty() &&
           bits >= 0 && bits <= max_prefix;
}

// h11 bounds only the whole head: under uvicorn, --h11-max-incomplete-event-size 65536
// lets a single 40 KB cookie through. Given under that name, the bound also lifts the
// request-line and field-size limits to it, unless they were set themselves.
void apply_h11_bound(Settings& s, const Sources& from) {
    constexpr std::string_view h11 = h11_max_incomplete_event_size;
    const std::string source = from.of("limit_request_head");
    if (source != h11 && source != uvicorn_env_of_flag(h11))
        return;
    if (from.is_default("limit_request_line"))
        s.limit_request_line = std::max(s.limit_request_line, s.limit_request_head);
    if (from.is_default("limit_request_field_size"))
        s.limit_request_field_size = std::max(s.limit_request_field_size, s.limit_request_head);
}

void validate(const Settings& s, const Sources& from, Action action,
              std::vector<std::string>& warnings) {
    if (s.app.empty()) {
        if (action == Action::run)
            throw ConfigError("missing argument APP ('module:attribute')");
    } else {
        // The same rule as uvicorn's import_from_string: both sides of the colon present.
        auto colon = s.app.find(':');
        if (colon == 0 || colon == std::string::npos || colon + 1 == s.app.size())
            throw ConfigError(fmt::format("{}: invalid value {} (expected 'module:attribute')",
                                          from.of("app"), quote(s.app)));
    }
    if (s.send_low_water > s.send_high_water)
        throw ConfigError(fmt::format(
            "send_low_water ({}, from {}) must not exceed send_high_water ({}, from {})",
            s.send_low_water, from.of("send_low_water"), s.send_high_water,
            from.of("send_high_water")));

    // Like uvicorn, an inherited fd wins over --uds, which wins over --host/--port;
    // an explicit setting that loses is worth a word, not a refusal.
    if (s.fd >= 0 || !s.uds.empty()) {
        std::string_view winner = s.fd >= 0 ? "fd" : "uds";
        std::vector<std::string_view> losers = {"host", "port"};
        if (winner == "fd" && !s.uds.empty())
            losers.push_back("uds");
        for (std::string_view loser : losers)
            if (!from.is_default(loser))
                warnings.push_back(fmt::format("{}: ignored, {} takes precedence (from {})",
                                               from.of(loser), winner, from.of(winner)));
    } else if (s.host.empty()) {
        throw ConfigError(
            fmt::format("{}: invalid value '' (expected a host name or address)", from.of("host")));
    }

    // The request id header is sent on every response: it must be a field name.
    if (!std::all_of(s.request_id_header.begin(), s.request_id_header.end(), is_token_char))
        throw ConfigError(
            fmt::format("{}: invalid value {} (expected a header name, or '' for none)",
                        from.of("request_id_header"), quote(s.request_id_header)));

    // SO_REUSEPORT is a TCP port's option: say so rather than silently doing nothing.
    if (s.reuse_port && (s.workers == 0 || s.fd >= 0 || !s.uds.empty()))
        warnings.push_back(fmt::format("{}: ignored, it applies to TCP listeners under --workers",
                                       from.of("reuse_port")));

    // A typo in the trusted-proxy list would silently trust nobody (or the wrong peers).
    {
        std::string_view list = s.forwarded_allow_ips;
        while (true) {
            auto comma = list.find(',');
            std::string_view entry = list.substr(0, comma);
            auto b = entry.find_first_not_of(" \t");
            entry = b == std::string_view::npos
                        ? std::string_view{}
                        : entry.substr(b, entry.find_last_not_of(" \t") - b + 1);
            // An empty entry (an empty list: trust no one) adds nothing.
            if (!entry.empty() && !valid_allow_entry(entry))
                throw ConfigError(fmt::format(
                    "{}: invalid value {} in {} (expected IP addresses or CIDR networks, "
                    "comma-separated, '*' or 'unix:')",
                    from.of("forwarded_allow_ips"), quote(entry), quote(s.forwarded_allow_ips)));
            if (comma == std::string_view::npos)
                break;
            list.remove_prefix(comma + 1);
        }
    }
    // Health paths are matched against a request target's path: one that cannot be one
    // would never match, silently.
    for (std::string_view key : {"health_live_path", "health_ready_path"}) {
        const std::string& path =
            key == "health_live_path" ? s.health_live_path : s.health_ready_path;
        if (!path.empty() && path.front() != '/')
            throw ConfigError(
                fmt::format("{}: invalid value {} (expected a path starting with '/')",
                            from.of(key), quote(path)));
    }
    if (!s.metrics_bind.empty()) {
        auto colon = s.metrics_bind.rfind(':');
        if (colon == std::string::npos || colon + 1 == s.metrics_bind.size())
            throw ConfigError(fmt::format("{}: invalid value {} (expected HOST:PORT)",
                                          from.of("metrics_bind"), quote(s.metrics_bind)));
    }

    // The relay would only find a bad URL once the workers run, retrying for ever.
    if (!s.pubsub_redis.empty()) {
        std::string error;
        if (!parse_redis_url(s.pubsub_redis, error))
            throw ConfigError(fmt::format("{}: invalid value {} ({})", from.of("pubsub_redis"),
                                          quote(s.pubsub_redis), error));
    }

    // TLS settings that cannot work together: stopped here, before anything is bound.
    if (!s.ssl_keyfile.empty() && s.ssl_certfile.empty())
        throw ConfigError(fmt::format("{} needs {}", from.of("ssl_keyfile"), "--ssl-certfile"));
    if (s.ssl_cert_reqs > 0 && s.ssl_ca_certs.empty())
        throw ConfigError(fmt::format("--ssl-cert-reqs {} needs --ssl-ca-certs (the CA "
                                      "certificates client certificates are verified against)",
                                      s.ssl_cert_reqs));
    if (s.ssl_cert_reqs > 0 && s.ssl_certfile.empty())
        warnings.push_back(
            fmt::format("{}: ignored without --ssl-certfile", from.of("ssl_cert_reqs")));

    // Read the env file now: a typo in its path should stop start-up here, with exit
    // status 2, rather than after the workers have started.
    if (!s.env_file.empty()) {
        try {
            read_env_file(s.env_file);
        } catch (const ConfigError& e) {
            throw ConfigError(fmt::format("{}: {}", from.of("env_file"), e.what()));
        }
    }
    // The same for a --log-config that is not there; what is in it, Python judges.
    std::error_code ec;
    if (!s.log_config.empty() && !std::filesystem::is_regular_file(s.log_config, ec))
        throw ConfigError(
            fmt::format("{}: no such file {}", from.of("log_config"), quote(s.log_config)));
}

// The log lines that make uvicorn compatibility visible: each UVICORN_* variable read,
// and what --http/--ws (which pick one of uvicorn's implementations) and --http2 mean here.
void describe_uvicorn_compat(const Settings& s, const Sources& from, const Layer& uvicorn,
                             const Layer& web_concurrency, std::vector<std::string>& notes,
                             std::vector<std::string>& warnings) {
    for (const Assignment& a : web_concurrency) {
        std::string winner = from.of(a.option->key);
        const Option& o = *a.option;
        if (winner == a.source)
            notes.push_back(
                fmt::format("{}={}: honoured as {}", a.source, format_value(o, a.value), o.flag));
        else
            notes.push_back(fmt::format("{}: ignored, {} takes precedence", a.source, winner));
    }
    for (const Assignment& a : uvicorn) {
        std::string winner = from.of(a.option->key);
        if (winner == a.source)
            notes.push_back(fmt::format("{}: honoured as {}", a.source,
                                        a.option->flag.empty() ? "APP" : a.option->flag));
        else
            notes.push_back(fmt::format("{}: ignored, {} takes precedence", a.source, winner));
    }
    auto choice_name = [](std::string_view key, const Settings& settings) {
        const Option& o = *find_by_key(key);
        return format_value(o, o.get(settings));
    };
    if (!from.is_default("http"))
        notes.push_back(fmt::format("{} {}: served by narwhal's own HTTP/1.1 implementation",
                                    from.of("http"), choice_name("http", s)));
    if (s.http2)
        warnings.push_back(fmt::format(
            "{}: narwhal serves HTTP/1.1 only; TLS clients negotiate it with ALPN (browsers "
            "and HTTP/2 libraries fall back), clients that assume HTTP/2 without asking fail",
            from.of("http2")));
    if (s.ws == WsImpl::none)
        notes.push_back(fmt::format("{} none: WebSocket is off; upgrade requests are served as "
                                    "plain HTTP requests, as uvicorn does",
                                    from.of("ws")));
    else if (!from.is_default("ws"))
        notes.push_back(fmt::format("{} {}: served by narwhal's own WebSocket implementation",
                                    from.of("ws"), choice_name("ws", s)));
}

}  // namespace

Loaded load(int argc, const char* const* argv, const std::vector<std::string>& environ) {
    Loaded out;
    if (auto eager = eager_action(argc, argv)) {
        out.action = *eager;
        return out;
    }
    CommandLine cli = parse_command_line(argc, argv);
    out.action = cli.print_config ? Action::print_config : Action::run;
    Environment env = parse_environment(environ, out.warnings);

    Layer file;
    if (cli.config_path)
        file = read_config_file(*cli.config_path, "--config");
    else if (env.config_path)
        file = read_config_file(*env.config_path, "NARWHAL_CONFIG");

    Sources sources;
    for (const Layer* layer : {&env.web_concurrency, &file, &env.uvicorn, &env.layer, &cli.layer}) {
        for (const Assignment& a : *layer) {
            a.option->set(out.settings, a.value);
            sources.set(a.option->key, a.source);
        }
    }
    apply_h11_bound(out.settings, sources);
    validate(out.settings, sources, out.action, out.warnings);
    describe_uvicorn_compat(out.settings, sources, env.uvicorn, env.web_concurrency, out.notes,
                            out.warnings);
    return out;
}

}  // namespace narwhal::config
