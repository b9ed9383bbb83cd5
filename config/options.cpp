#include "config/options.hpp"

#include "config/error.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <limits>
#include <type_traits>

namespace narwhal::config {
namespace {

constexpr std::int64_t int64_max = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t int_max = std::numeric_limits<int>::max();

// Accessors, one instantiation per Settings field. The member pointer is a template
// argument so each row holds plain function pointers and the table stays constexpr.
template <auto Member> void set_string(Settings& s, const Value& v) {
    s.*Member = std::get<std::string>(v);
}
template <auto Member> Value get_string(const Settings& s) { return s.*Member; }

template <auto Member> void set_bool(Settings& s, const Value& v) { s.*Member = std::get<bool>(v); }
template <auto Member> Value get_bool(const Settings& s) { return s.*Member; }

// Integers and enums alike: the Value holds the number (for enums, the choice index).
template <auto Member> void set_number(Settings& s, const Value& v) {
    using T = std::remove_reference_t<decltype(s.*Member)>;
    s.*Member = static_cast<T>(std::get<std::int64_t>(v));
}
template <auto Member> Value get_number(const Settings& s) {
    return static_cast<std::int64_t>(s.*Member);
}

template <auto Member> void set_seconds(Settings& s, const Value& v) {
    s.*Member = std::get<double>(v);
}
template <auto Member> Value get_seconds(const Settings& s) { return s.*Member; }

void set_headers(Settings& s, const Value& v) { s.headers = std::get<HeaderList>(v); }
Value get_headers(const Settings& s) { return s.headers; }

struct Names {
    std::string_view key, flag, env;
};

constexpr Option row(Names n, Kind kind, std::string_view metavar, std::string_view help,
                     void (*set)(Settings&, const Value&), Value (*get)(const Settings&)) {
    Option o;
    o.key = n.key;
    o.flag = n.flag;
    o.env = n.env;
    o.kind = kind;
    o.metavar = metavar;
    o.help = help;
    o.set = set;
    o.get = get;
    return o;
}

template <auto Member>
constexpr Option text(Names n, std::string_view metavar, std::string_view help) {
    return row(n, Kind::string, metavar, help, set_string<Member>, get_string<Member>);
}

template <auto Member> constexpr Option flag(Names n, bool negatable, std::string_view help) {
    Option o = row(n, Kind::flag, "", help, set_bool<Member>, get_bool<Member>);
    o.negatable = negatable;
    return o;
}

// A switch that also takes a boolean, as uvicorn's `type=bool` options do: uvicorn's
// `--ws-per-message-deflate False` and narwhal's bare switch and --no- form all work.
template <auto Member> constexpr Option boolean_flag(Names n, std::string_view help) {
    Option o = flag<Member>(n, true, help);
    o.takes_boolean = true;
    return o;
}

template <auto Member>
constexpr Option integer(Names n, std::string_view metavar, std::int64_t min, std::int64_t max,
                         std::string_view help) {
    Option o = row(n, Kind::integer, metavar, help, set_number<Member>, get_number<Member>);
    o.min = min;
    o.max = max;
    return o;
}

template <auto Member>
constexpr Option integer_or_auto(Names n, std::string_view metavar, std::int64_t min,
                                 std::int64_t max, std::int64_t auto_number,
                                 std::string_view help) {
    Option o = integer<Member>(n, metavar, min, max, help);
    o.auto_word = "auto";
    o.auto_number = auto_number;
    return o;
}

template <auto Member> constexpr Option bytes(Names n, std::string_view help) {
    return integer<Member>(n, "BYTES", 1, int64_max, help);
}

template <auto Member> constexpr Option seconds(Names n, std::string_view help) {
    return row(n, Kind::seconds, "SECONDS", help, set_seconds<Member>, get_seconds<Member>);
}

// A time that 0 cannot stand for: a connect without a limit, a retry without a delay.
template <auto Member> constexpr Option positive_seconds(Names n, std::string_view help) {
    Option o = seconds<Member>(n, help);
    o.positive = true;
    return o;
}

template <auto Member>
constexpr Option choice(Names n, std::span<const std::string_view> choices, std::string_view help) {
    Option o = row(n, Kind::choice, "", help, set_number<Member>, get_number<Member>);
    o.choices = choices;
    return o;
}

template <auto Member> void set_list(Settings& s, const Value& v) {
    s.*Member = std::get<TextList>(v);
}
template <auto Member> Value get_list(const Settings& s) { return s.*Member; }

template <auto Member>
constexpr Option text_list(Names n, std::string_view metavar, std::string_view help) {
    return row(n, Kind::list, metavar, help, set_list<Member>, get_list<Member>);
}

constexpr Option header_list(Names n, std::string_view help) {
    return row(n, Kind::headers, "NAME:VALUE", help, set_headers, get_headers);
}

// Choice names in enum order: a name's index is the enumerator's value.
constexpr std::array<std::string_view, 3> interface_names{"auto", "asgi3", "asgi2"};
constexpr std::array<std::string_view, 3> lifespan_names{"auto", "on", "off"};
constexpr std::array<std::string_view, 3> loop_names{"auto", "asyncio", "uvloop"};
constexpr std::array<std::string_view, 6> log_level_names{"trace",   "debug", "info",
                                                          "warning", "error", "critical"};
constexpr std::array<std::string_view, 2> log_format_names{"text", "json"};
constexpr std::array<std::string_view, 3> slow_consumer_names{"wait", "close", "drop"};
constexpr std::array<std::string_view, 2> tls_version_names{"TLSv1.2", "TLSv1.3"};
constexpr std::array<std::string_view, 4> proxy_protocol_names{"off", "v1", "v2", "auto"};
// uvicorn's names and order (its --http and --ws choices), so its error lists match.
constexpr std::array<std::string_view, 3> http_impl_names{"auto", "h11", "httptools"};
constexpr std::array<std::string_view, 5> ws_impl_names{"auto", "none", "websockets",
                                                        "websockets-sansio", "wsproto"};

static_assert(static_cast<int>(Interface::asgi2) == 2);
static_assert(static_cast<int>(LifespanMode::off) == 2);
static_assert(static_cast<int>(LoopKind::uvloop) == 2);
static_assert(static_cast<int>(LogLevel::critical) == 5);
static_assert(static_cast<int>(LogFormat::json) == 1);
static_assert(static_cast<int>(Settings::SlowConsumer::close) == 1);
static_assert(static_cast<int>(Settings::TlsVersion::tls1_3) == 1);
static_assert(static_cast<int>(HttpImpl::httptools) == 2);
static_assert(static_cast<int>(Settings::ProxyProtocol::auto_) == 3);
static_assert(static_cast<int>(WsImpl::wsproto) == 4);

using S = Settings;

// Order here is the order of --help, --print-config and the docs table.
constexpr Option table[] = {
    // --- application
    text<&S::app>({"app", "", "NARWHAL_APP"}, "APP",
                  "The ASGI application as 'module:attribute', e.g. main:app."),
    text<&S::app_dir>({"app_dir", "--app-dir", "NARWHAL_APP_DIR"}, "PATH",
                      "Look for APP in this directory, by putting it first on sys.path."),
    flag<&S::factory>({"factory", "--factory", "NARWHAL_FACTORY"}, false,
                      "Treat APP as a zero-argument callable that returns the application."),
    choice<&S::interface>({"interface", "--interface", "NARWHAL_INTERFACE"}, interface_names,
                          "ASGI interface of the application; auto detects ASGI 3 or 2."),
    choice<&S::lifespan>({"lifespan", "--lifespan", "NARWHAL_LIFESPAN"}, lifespan_names,
                         "Lifespan protocol: auto runs it if the app supports it, on requires "
                         "it, off skips it."),
    choice<&S::loop>({"loop", "--loop", "NARWHAL_LOOP"}, loop_names,
                     "Event loop: auto uses uvloop when it is importable, else asyncio."),
    // uvicorn's implementation choices: accepted, and answered with a log line.
    choice<&S::http>({"http", "--http", "NARWHAL_HTTP"}, http_impl_names,
                     "Accepted for uvicorn command lines: narwhal always serves HTTP/1.1 with "
                     "its own implementation."),
    choice<&S::ws>({"ws", "--ws", "NARWHAL_WS"}, ws_impl_names,
                   "Accepted for uvicorn command lines: narwhal serves WebSocket with its own "
                   "implementation; none turns WebSocket off (upgrade requests reach the app "
                   "as plain HTTP requests, as in uvicorn)."),
    text<&S::root_path>({"root_path", "--root-path", "NARWHAL_ROOT_PATH"}, "TEXT",
                        "ASGI root_path, for an application mounted below a path prefix."),
    text<&S::env_file>({"env_file", "--env-file", "NARWHAL_ENV_FILE"}, "PATH",
                       "Load environment variables for the application from this dotenv file."),
    text<&S::venv>({"venv", "--venv", "NARWHAL_VENV"}, "PATH",
                   "Virtual environment to import the application from; empty uses "
                   "$VIRTUAL_ENV when it is set."),
    // --- listening
    text<&S::host>({"host", "--host", "NARWHAL_HOST"}, "HOST",
                   "Bind the TCP socket to this address."),
    integer<&S::port>({"port", "--port", "NARWHAL_PORT"}, "PORT", 0, 65535,
                      "Bind the TCP socket to this port; 0 picks a free one."),
    text<&S::uds>({"uds", "--uds", "NARWHAL_UDS"}, "PATH",
                  "Bind to this UNIX domain socket instead of TCP."),
    integer<&S::fd>({"fd", "--fd", "NARWHAL_FD"}, "FD", -1, int_max,
                    "Serve on this inherited, already bound socket; -1 for none. Takes "
                    "precedence over --uds, which takes precedence over --host/--port."),
    integer<&S::backlog>({"backlog", "--backlog", "NARWHAL_BACKLOG"}, "N", 1, int_max,
                         "Connections the kernel may queue before they are accepted."),
    integer_or_auto<&S::io_threads>(
        {"io_threads", "--io-threads", "NARWHAL_IO_THREADS"}, "N|auto", 0, 64, S::io_threads_auto,
        "Network I/O threads per worker process. 0: the interpreter's thread does the I/O "
        "between event-loop iterations; auto: 0 when the worker processes fill the usable "
        "CPUs (one interpreter each), else 1."),
    // --- worker processes
    integer_or_auto<&S::workers>(
        {"workers", "--workers", "NARWHAL_WORKERS"}, "N|auto", 0, 1024, S::workers_auto,
        "Worker processes under a master process that binds the listeners once and restarts "
        "workers that die; auto: one per usable CPU. 0: one process, no master. "
        "$WEB_CONCURRENCY, when set, replaces the default."),
    flag<&S::reuse_port>({"reuse_port", "--reuse-port", "NARWHAL_REUSE_PORT"}, true,
                         "With --workers: each worker binds its own SO_REUSEPORT socket "
                         "instead of sharing the master's (TCP only)."),
    integer<&S::interpreters>(
        {"interpreters", "--interpreters", "NARWHAL_INTERPRETERS"}, "M", 1, S::max_interpreters,
        "Own-GIL sub-interpreters per worker process (CPython 3.12 or later), each with its "
        "own thread and event loop; new connections go to the least busy one. 1: the main "
        "interpreter only."),
    // --- TLS
    text<&S::ssl_certfile>({"ssl_certfile", "--ssl-certfile", "NARWHAL_SSL_CERTFILE"}, "PATH",
                           "Serve HTTPS with this PEM certificate (chain); it may hold the key "
                           "too."),
    text<&S::ssl_keyfile>({"ssl_keyfile", "--ssl-keyfile", "NARWHAL_SSL_KEYFILE"}, "PATH",
                          "The PEM private key of --ssl-certfile."),
    text<&S::ssl_keyfile_password>(
        {"ssl_keyfile_password", "--ssl-keyfile-password", "NARWHAL_SSL_KEYFILE_PASSWORD"}, "TEXT",
        "The password of an encrypted --ssl-keyfile."),
    integer<&S::ssl_version>({"ssl_version", "--ssl-version", "NARWHAL_SSL_VERSION"}, "INT", 0,
                             int_max,
                             "uvicorn's ssl.PROTOCOL_* number: 17 (and 2) negotiate the best "
                             "version from --ssl-min-version up, 5 is TLS 1.2 only."),
    integer<&S::ssl_cert_reqs>({"ssl_cert_reqs", "--ssl-cert-reqs", "NARWHAL_SSL_CERT_REQS"},
                               "0|1|2", 0, 2,
                               "Client certificates: 0 none, 1 optional, 2 required (1 and 2 "
                               "need --ssl-ca-certs)."),
    text<&S::ssl_ca_certs>({"ssl_ca_certs", "--ssl-ca-certs", "NARWHAL_SSL_CA_CERTS"}, "PATH",
                           "PEM CA certificates that client certificates are verified against."),
    text<&S::ssl_ciphers>({"ssl_ciphers", "--ssl-ciphers", "NARWHAL_SSL_CIPHERS"}, "TEXT",
                          "OpenSSL cipher list for TLS 1.2; TLSv1 (uvicorn's default) means "
                          "narwhal's: ECDHE with AEAD only."),
    choice<&S::ssl_min_version>({"ssl_min_version", "--ssl-min-version", "NARWHAL_SSL_MIN_VERSION"},
                                tls_version_names, "The oldest TLS version accepted."),
    // --- proxies
    flag<&S::proxy_headers>({"proxy_headers", "--proxy-headers", "NARWHAL_PROXY_HEADERS"}, true,
                            "Take the client address and scheme from X-Forwarded-For, "
                            "X-Forwarded-Proto and Forwarded headers of --forwarded-allow-ips "
                            "peers."),
    text<&S::forwarded_allow_ips>(
        {"forwarded_allow_ips", "--forwarded-allow-ips", "NARWHAL_FORWARDED_ALLOW_IPS"}, "LIST",
        "Comma-separated IPs and CIDRs of trusted proxies, '*' for any peer, 'unix:' for "
        "Unix-socket peers. $FORWARDED_ALLOW_IPS, when set, replaces the default."),
    choice<&S::proxy_protocol>({"proxy_protocol", "--proxy-protocol", "NARWHAL_PROXY_PROTOCOL"},
                               proxy_protocol_names,
                               "Expect a PROXY protocol header (v1, v2, or either with auto) first "
                               "on every connection from a --forwarded-allow-ips peer; other "
                               "peers are refused."),
    // --- HTTP limits
    bytes<&S::limit_request_line>(
        {"limit_request_line", "--limit-request-line", "NARWHAL_LIMIT_REQUEST_LINE"},
        "Longest request line; a longer one is answered 414."),
    bytes<&S::limit_request_head>(
        {"limit_request_head", "--limit-request-head", "NARWHAL_LIMIT_REQUEST_HEAD"},
        "Largest request head (request line and all header fields); a larger one is "
        "answered 431."),
    bytes<&S::limit_request_field_size>({"limit_request_field_size", "--limit-request-field-size",
                                         "NARWHAL_LIMIT_REQUEST_FIELD_SIZE"},
                                        "Longest header field line; a longer one is answered 431."),
    integer<&S::limit_request_fields>(
        {"limit_request_fields", "--limit-request-fields", "NARWHAL_LIMIT_REQUEST_FIELDS"}, "N", 1,
        int64_max, "Most header fields in one request; more are answered 431."),
    bytes<&S::limit_request_body>(
        {"limit_request_body", "--limit-request-body", "NARWHAL_LIMIT_REQUEST_BODY"},
        "Largest request body; a larger one is answered 413."),
    bytes<&S::read_window>({"read_window", "--read-window", "NARWHAL_READ_WINDOW"},
                           "Unread request body held per request before the socket stops "
                           "being read."),
    bytes<&S::send_high_water>({"send_high_water", "--send-high-water", "NARWHAL_SEND_HIGH_WATER"},
                               "Buffered outbound bytes per connection above which `await "
                               "send()` waits."),
    bytes<&S::send_low_water>({"send_low_water", "--send-low-water", "NARWHAL_SEND_LOW_WATER"},
                              "Buffered outbound bytes a waiting `await send()` waits to drain "
                              "down to; at most --send-high-water."),
    // --- admission
    integer<&S::limit_concurrency>(
        {"limit_concurrency", "--limit-concurrency", "NARWHAL_LIMIT_CONCURRENCY"}, "N", 0, int_max,
        "HTTP requests in flight per interpreter; more wait in the queue. 0: no limit."),
    integer<&S::limit_queue>({"limit_queue", "--limit-queue", "NARWHAL_LIMIT_QUEUE"}, "N", 0,
                             int_max,
                             "Requests waiting for a slot beyond --limit-concurrency; more are "
                             "answered 503 at once."),
    integer<&S::limit_connections>(
        {"limit_connections", "--limit-connections", "NARWHAL_LIMIT_CONNECTIONS"}, "N", 1, int_max,
        "Open connections per worker; at the limit it stops accepting."),
    // --- timeouts
    seconds<&S::timeout_keep_alive>(
        {"timeout_keep_alive", "--timeout-keep-alive", "NARWHAL_TIMEOUT_KEEP_ALIVE"},
        "Close a keep-alive connection idle for this long."),
    seconds<&S::timeout_graceful_shutdown>({"timeout_graceful_shutdown",
                                            "--timeout-graceful-shutdown",
                                            "NARWHAL_TIMEOUT_GRACEFUL_SHUTDOWN"},
                                           "On shutdown, time left to running requests and the "
                                           "lifespan shutdown before they are cancelled."),
    seconds<&S::timeout_queue>({"timeout_queue", "--timeout-queue", "NARWHAL_TIMEOUT_QUEUE"},
                               "Longest wait for a slot under --limit-concurrency before 503."),
    seconds<&S::timeout_header>({"timeout_header", "--timeout-header", "NARWHAL_TIMEOUT_HEADER"},
                                "A request head must arrive within this of its first byte "
                                "(408 and close otherwise)."),
    seconds<&S::timeout_body>({"timeout_body", "--timeout-body", "NARWHAL_TIMEOUT_BODY"},
                              "Longest silence between parts of a request body being read."),
    seconds<&S::timeout_send>({"timeout_send", "--timeout-send", "NARWHAL_TIMEOUT_SEND"},
                              "Longest time a client takes no bytes of a file the server sends "
                              "(http.response.pathsend) before the connection closes."),
    seconds<&S::timeout_request>(
        {"timeout_request", "--timeout-request", "NARWHAL_TIMEOUT_REQUEST"},
        "Deadline per request: the task is cancelled, the client gets "
        "504 (or a closed connection). 0: none."),
    seconds<&S::timeout_disconnect_grace>(
        {"timeout_disconnect_grace", "--timeout-disconnect-grace",
         "NARWHAL_TIMEOUT_DISCONNECT_GRACE"},
        "After the client disconnected, time before the request's task is cancelled."),
    seconds<&S::timeout_cancel_grace>(
        {"timeout_cancel_grace", "--timeout-cancel-grace", "NARWHAL_TIMEOUT_CANCEL_GRACE"},
        "Between repeated cancellations of a task that ignores them (abandoned after 3)."),
    seconds<&S::timeout_orphan_tasks>(
        {"timeout_orphan_tasks", "--timeout-orphan-tasks", "NARWHAL_TIMEOUT_ORPHAN_TASKS"},
        "Report tasks a request spawned that are still pending this long after it ended."),
    // --- WebSocket
    bytes<&S::ws_max_size>({"ws_max_size", "--ws-max-size", "NARWHAL_WS_MAX_SIZE"},
                           "Largest WebSocket message; a larger one closes the socket with "
                           "1009."),
    integer<&S::ws_max_queue>({"ws_max_queue", "--ws-max-queue", "NARWHAL_WS_MAX_QUEUE"}, "N", 1,
                              int_max,
                              "WebSocket messages queued for the app before the socket stops "
                              "being read."),
    seconds<&S::ws_ping_interval>(
        {"ws_ping_interval", "--ws-ping-interval", "NARWHAL_WS_PING_INTERVAL"},
        "Ping an idle WebSocket peer this often. 0: no pings."),
    seconds<&S::ws_ping_timeout>(
        {"ws_ping_timeout", "--ws-ping-timeout", "NARWHAL_WS_PING_TIMEOUT"},
        "Close a WebSocket whose peer stays silent this long after a "
        "ping."),
    boolean_flag<&S::ws_per_message_deflate>(
        {"ws_per_message_deflate", "--ws-per-message-deflate", "NARWHAL_WS_PER_MESSAGE_DEFLATE"},
        "Offer permessage-deflate compression (RFC 7692)."),
    choice<&S::ws_slow_consumer>(
        {"ws_slow_consumer", "--ws-slow-consumer", "NARWHAL_WS_SLOW_CONSUMER"}, slow_consumer_names,
        "A WebSocket client that does not keep up: wait makes send() "
        "wait; close closes it with 1008 after --ws-send-timeout; drop skips the "
        "publications it has no room for."),
    seconds<&S::ws_send_timeout>(
        {"ws_send_timeout", "--ws-send-timeout", "NARWHAL_WS_SEND_TIMEOUT"},
        "With --ws-slow-consumer close: how long a socket's send buffer "
        "may stay full."),
    seconds<&S::timeout_ws_drain>(
        {"timeout_ws_drain", "--timeout-ws-drain", "NARWHAL_TIMEOUT_WS_DRAIN"},
        "On shutdown, time open WebSockets keep working before they "
        "are closed with 1001."),
    // --- publish/subscribe
    integer<&S::pubsub_max_queue>(
        {"pubsub_max_queue", "--pubsub-max-queue", "NARWHAL_PUBSUB_MAX_QUEUE"}, "N", 1, int_max,
        "Publications queued for one subscriber before --ws-slow-consumer applies to it."),
    text<&S::pubsub_redis>({"pubsub_redis", "--pubsub-redis", "NARWHAL_PUBSUB_REDIS"}, "URL",
                           "Carry publications between servers through this Redis "
                           "(redis://host:port/db or unix:///path)."),
    text<&S::pubsub_redis_prefix>(
        {"pubsub_redis_prefix", "--pubsub-redis-prefix", "NARWHAL_PUBSUB_REDIS_PREFIX"}, "TEXT",
        "The Redis channel of a topic is this prefix followed by the topic."),
    integer<&S::pubsub_redis_max_pending>({"pubsub_redis_max_pending", "--pubsub-redis-max-pending",
                                           "NARWHAL_PUBSUB_REDIS_MAX_PENDING"},
                                          "N", 1, int_max,
                                          "Publications sent to Redis and not yet answered; "
                                          "over it they are counted lost."),
    positive_seconds<&S::pubsub_redis_connect_timeout>(
        {"pubsub_redis_connect_timeout", "--pubsub-redis-connect-timeout",
         "NARWHAL_PUBSUB_REDIS_CONNECT_TIMEOUT"},
        "Give up a Redis connection attempt that has not answered within this time."),
    positive_seconds<&S::pubsub_redis_retry_max>(
        {"pubsub_redis_retry_max", "--pubsub-redis-retry-max", "NARWHAL_PUBSUB_REDIS_RETRY_MAX"},
        "The longest wait between attempts to reach Redis (the wait doubles from 0.1 s)."),
    seconds<&S::watchdog_threshold>(
        {"watchdog_threshold", "--watchdog-threshold", "NARWHAL_WATCHDOG_THRESHOLD"},
        "Report an event loop that has not turned for this long, with its stack. 0: off."),
    // --- worker processes
    seconds<&S::timeout_worker_healthcheck>(
        {"timeout_worker_healthcheck", "--timeout-worker-healthcheck",
         "NARWHAL_TIMEOUT_WORKER_HEALTHCHECK"},
        "With --workers: replace a worker one of whose event loops has not turned for this "
        "long (SIGTERM, then SIGKILL). 0: never. Also the --health-live-path threshold."),
    seconds<&S::timeout_worker_startup>(
        {"timeout_worker_startup", "--timeout-worker-startup", "NARWHAL_TIMEOUT_WORKER_STARTUP"},
        "With --workers: stop a worker that is not ready (app imported, lifespan startup done) "
        "this long after it was started, and treat it as failing to start. 0: wait forever."),
    integer<&S::limit_max_requests>(
        {"limit_max_requests", "--limit-max-requests", "NARWHAL_LIMIT_MAX_REQUESTS"}, "N", 0,
        int64_max,
        "Replace a worker after it has served this many requests, its successor started first; "
        "without --workers, shut the process down gracefully, as uvicorn does. 0: no limit."),
    integer<&S::limit_max_requests_jitter>(
        {"limit_max_requests_jitter", "--limit-max-requests-jitter",
         "NARWHAL_LIMIT_MAX_REQUESTS_JITTER"},
        "N", 0, int64_max,
        "Add a random 0-N to --limit-max-requests, drawn once per worker, so that workers are "
        "not replaced all at once."),
    // --- health paths and metrics
    text<&S::health_live_path>(
        {"health_live_path", "--health-live-path", "NARWHAL_HEALTH_LIVE_PATH"}, "PATH",
        "Answer GET/HEAD on this path natively: 200 while the event loops turn, else 503."),
    text<&S::health_ready_path>(
        {"health_ready_path", "--health-ready-path", "NARWHAL_HEALTH_READY_PATH"}, "PATH",
        "Answer GET/HEAD on this path natively: 200 when live, not draining and the "
        "admission queue is not full, else 503."),
    text<&S::metrics_bind>({"metrics_bind", "--metrics-bind", "NARWHAL_METRICS_BIND"}, "HOST:PORT",
                           "Serve Prometheus metrics at /metrics on this separate address."),
    seconds<&S::timeout_shutdown_delay>(
        {"timeout_shutdown_delay", "--timeout-shutdown-delay", "NARWHAL_TIMEOUT_SHUTDOWN_DELAY"},
        "After the first SIGTERM, keep serving this long with the ready path answering 503 "
        "before the listener closes. 0: close at once."),
    // --- development: --reload
    flag<&S::reload>({"reload", "--reload", "NARWHAL_RELOAD"}, false,
                     "Development: restart the workers (new before old) when a watched file "
                     "changes. A master with one worker unless --workers says more."),
    text_list<&S::reload_dirs>({"reload_dirs", "--reload-dir", "NARWHAL_RELOAD_DIRS"}, "PATH",
                               "With --reload: watch this directory tree (repeatable). "
                               "Default: the current directory and --app-dir."),
    text_list<&S::reload_includes>(
        {"reload_includes", "--reload-include", "NARWHAL_RELOAD_INCLUDES"}, "GLOB",
        "With --reload: also restart on files whose name matches this glob (repeatable; "
        "'*.py' always)."),
    text_list<&S::reload_excludes>(
        {"reload_excludes", "--reload-exclude", "NARWHAL_RELOAD_EXCLUDES"}, "GLOB",
        "With --reload: ignore files whose name matches this glob, or this directory "
        "(repeatable; also '.*', '.py[cod]', '.sw.*', '~*')."),
    seconds<&S::reload_delay>({"reload_delay", "--reload-delay", "NARWHAL_RELOAD_DELAY"},
                              "With --reload: restart this long after the last change of a "
                              "burst."),
    // --- bridge
    integer<&S::inbox_batch>({"inbox_batch", "--inbox-batch", "NARWHAL_INBOX_BATCH"}, "N", 1,
                             int64_max, "Events the interpreter takes from its inbox per wake-up."),
    integer<&S::inbox_capacity>({"inbox_capacity", "--inbox-capacity", "NARWHAL_INBOX_CAPACITY"},
                                "N", 1, int64_max,
                                "New requests queued for the interpreter; beyond this they are "
                                "answered 503."),
    // --- responses
    flag<&S::server_header>({"server_header", "--server-header", "NARWHAL_SERVER_HEADER"}, true,
                            "Send a 'server: narwhal' response header."),
    flag<&S::date_header>({"date_header", "--date-header", "NARWHAL_DATE_HEADER"}, true,
                          "Send a 'date' response header."),
    header_list({"headers", "--header", "NARWHAL_HEADERS"},
                "Add a response header to every response; repeatable. In the environment, "
                "one NAME:VALUE per line."),
    text<&S::request_id_header>(
        {"request_id_header", "--request-id-header", "NARWHAL_REQUEST_ID_HEADER"}, "NAME",
        "Request id header: kept from the request when sane, made otherwise; passed to the "
        "app, sent back, logged. Empty: no request ids."),
    // --- logging
    choice<&S::log_level>({"log_level", "--log-level", "NARWHAL_LOG_LEVEL"}, log_level_names,
                          "Least severe log level written."),
    choice<&S::log_format>({"log_format", "--log-format", "NARWHAL_LOG_FORMAT"}, log_format_names,
                           "Log line format: text for people, json for log shippers."),
    flag<&S::access_log>({"access_log", "--access-log", "NARWHAL_ACCESS_LOG"}, true,
                         "Log one line per request."),
    text<&S::log_config>({"log_config", "--log-config", "NARWHAL_LOG_CONFIG"}, "PATH",
                         "Configure Python's logging from this file, as uvicorn does: .json, "
                         ".yaml or .yml with dictConfig, anything else with fileConfig. "
                         "narwhal's records then go through it."),
    flag<&S::use_colors>({"use_colors", "--use-colors", "NARWHAL_USE_COLORS"}, true,
                         "Color the level names when stderr is a terminal."),
};

constexpr MetaOption meta_table[] = {
    {"--config", "FILE",
     "Read settings from this .toml or .json file (pyproject.toml: its [tool.narwhal] "
     "table). Default: $NARWHAL_CONFIG."},
    {"--print-config", "", "Print the effective settings as TOML and exit."},
    {"--version", "", "Print narwhal's version and exit."},
    {"--help", "", "Show this message and exit."},
};

constexpr std::string_view uvicorn_only[] = {
    "--h11-max-incomplete-event-size",
};

// Options uvicorn has with the same meaning, by key. A key is uvicorn's parameter name
// too, so click's auto_envvar_prefix gives UVICORN_<KEY>: these are read from the
// environment under that name as well (below NARWHAL_*).
constexpr std::string_view uvicorn_keys[] = {
    "app",
    "app_dir",
    "factory",
    "interface",
    "lifespan",
    "loop",
    "http",
    "ws",
    "root_path",
    "env_file",
    "host",
    "port",
    "uds",
    "fd",
    "backlog",
    "workers",
    "proxy_headers",
    "forwarded_allow_ips",
    "limit_concurrency",
    "timeout_keep_alive",
    "timeout_graceful_shutdown",
    "timeout_worker_healthcheck",
    "limit_max_requests",
    "limit_max_requests_jitter",
    "ws_max_size",
    "ws_max_queue",
    "ws_ping_interval",
    "ws_ping_timeout",
    "ws_per_message_deflate",
    "server_header",
    "date_header",
    "headers",
    "log_level",
    "access_log",
    "log_config",
    "use_colors",
    "ssl_keyfile",
    "ssl_certfile",
    "ssl_keyfile_password",
    "ssl_version",
    "ssl_cert_reqs",
    "ssl_ca_certs",
    "ssl_ciphers",
    "reload",
    "reload_dirs",
    "reload_includes",
    "reload_excludes",
    "reload_delay",
};

std::string upper(std::string_view text) {
    std::string out(text);
    for (char& c : out)
        if (c >= 'a' && c <= 'z')
            c = static_cast<char>(c - 32);
    return out;
}

template <typename Field> const Option* find(std::string_view wanted, Field field) {
    for (const Option& o : table)
        if (o.*field == wanted && !wanted.empty())
            return &o;
    return nullptr;
}

[[noreturn]] void invalid(const Option& o, std::string_view text, std::string_view label) {
    throw ConfigError(
        fmt::format("{}: invalid value {} (expected {})", label, quote(text), expected(o)));
}

bool is_tchar(char c) {
    // RFC 9110 token characters.
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

std::string_view trim(std::string_view s, std::string_view ws = " \t") {
    auto b = s.find_first_not_of(ws);
    if (b == std::string_view::npos)
        return {};
    return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

bool iequals(std::string_view a, std::string_view b) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                      [&](char x, char y) { return lower(x) == lower(y); });
}

// Edits (insert, delete, substitute, swap two neighbours) between a and b: the
// "optimal string alignment" distance, so a transposed pair of letters costs one.
std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
    for (std::size_t i = 0; i <= a.size(); ++i)
        d[i][0] = i;
    for (std::size_t j = 0; j <= b.size(); ++j)
        d[0][j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        for (std::size_t j = 1; j <= b.size(); ++j) {
            std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
        }
    }
    return d[a.size()][b.size()];
}

}  // namespace

bool is_token_char(char c) { return is_tchar(c); }

std::span<const Option> options() { return table; }
std::span<const MetaOption> meta_options() { return meta_table; }
std::span<const std::string_view> unsupported_uvicorn_flags() { return uvicorn_only; }

const Option* find_by_key(std::string_view key) { return find(key, &Option::key); }
const Option* find_by_flag(std::string_view flag) { return find(flag, &Option::flag); }
const Option* find_by_env(std::string_view name) { return find(name, &Option::env); }

std::string uvicorn_env(const Option& option) {
    for (std::string_view key : uvicorn_keys)
        if (key == option.key)
            return "UVICORN_" + upper(key);
    return {};
}

const Option* find_by_uvicorn_env(std::string_view name) {
    if (!name.starts_with("UVICORN_"))
        return nullptr;
    for (const Option& o : table)
        if (!o.key.empty() && name == uvicorn_env(o))
            return &o;
    return nullptr;
}

std::string uvicorn_env_of_flag(std::string_view flag) {
    if (!flag.starts_with("--") || flag.starts_with("--no-"))
        return {};
    std::string name = "UVICORN_" + upper(flag.substr(2));
    for (char& c : name)
        if (c == '-')
            c = '_';
    return name;
}

std::optional<bool> parse_boolean(std::string_view text) {
    // The spellings environment variables use for booleans in the wild.
    for (std::string_view yes : {"1", "true", "yes", "on"})
        if (iequals(text, yes))
            return true;
    for (std::string_view no : {"0", "false", "no", "off"})
        if (iequals(text, no))
            return false;
    return std::nullopt;
}

Value parse_text(const Option& o, std::string_view text, std::string_view label) {
    switch (o.kind) {
    case Kind::string: return std::string(text);
    case Kind::flag:
        if (auto b = parse_boolean(text))
            return *b;
        invalid(o, text, label);
    case Kind::integer: {
        if (!o.auto_word.empty() && text == o.auto_word)
            return o.auto_number;
        std::int64_t n = 0;
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
        if (ec != std::errc() || end != text.data() + text.size() || text.empty())
            invalid(o, text, label);
        if (n < o.min || n > o.max)
            invalid(o, text, label);
        return n;
    }
    case Kind::seconds: {
        double d = 0;
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), d);
        if (ec != std::errc() || end != text.data() + text.size() || text.empty() ||
            !std::isfinite(d) || d < 0 || (o.positive && d == 0))
            invalid(o, text, label);
        return d;
    }
    case Kind::choice: return check_choice(o, text, label);
    case Kind::headers: {
        // One entry per line, so the environment can carry several in one variable.
        HeaderList list;
        std::size_t start = 0;
        while (start <= text.size()) {
            std::size_t end = std::min(text.find('\n', start), text.size());
            std::string_view line = trim(text.substr(start, end - start), " \t\r");
            if (!line.empty())
                list.push_back(parse_header(line, label));
            start = end + 1;
        }
        if (list.empty())
            invalid(o, text, label);
        return list;
    }
    case Kind::list: {
        // As headers: one entry per line, so the environment can carry several.
        TextList list;
        std::size_t start = 0;
        while (start <= text.size()) {
            std::size_t end = std::min(text.find('\n', start), text.size());
            std::string_view line = trim(text.substr(start, end - start), " \t\r");
            if (!line.empty())
                list.emplace_back(line);
            start = end + 1;
        }
        if (list.empty())
            invalid(o, text, label);
        return list;
    }
    }
    invalid(o, text, label);
}

Value check_integer(const Option& o, std::int64_t number, std::string_view label) {
    if (number < o.min || number > o.max)
        throw ConfigError(
            fmt::format("{}: invalid value {} (expected {})", label, number, expected(o)));
    return number;
}

Value check_seconds(const Option& o, double seconds, std::string_view label) {
    if (!std::isfinite(seconds) || seconds < 0)
        throw ConfigError(
            fmt::format("{}: invalid value {} (expected {})", label, seconds, expected(o)));
    return seconds;
}

Value check_choice(const Option& o, std::string_view name, std::string_view label) {
    for (std::size_t i = 0; i < o.choices.size(); ++i)
        if (o.choices[i] == name)
            return static_cast<std::int64_t>(i);
    throw ConfigError(fmt::format("{}: invalid choice {} (choose from {})", label, quote(name),
                                  fmt::join(o.choices, ", ")));
}

std::pair<std::string, std::string> parse_header(std::string_view text, std::string_view label) {
    auto colon = text.find(':');
    if (colon == std::string_view::npos || colon == 0)
        throw ConfigError(
            fmt::format("{}: invalid header {} (expected NAME:VALUE)", label, quote(text)));
    std::string_view name = text.substr(0, colon);
    std::string_view value = trim(text.substr(colon + 1));
    if (!std::all_of(name.begin(), name.end(), is_tchar))
        throw ConfigError(
            fmt::format("{}: invalid header name {} (expected an HTTP token)", label, quote(name)));
    // CR and LF would let a header value split the response (header injection).
    for (unsigned char c : value)
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            throw ConfigError(fmt::format(
                "{}: invalid value for header {} (control characters such as CR and LF are not "
                "allowed)",
                label, quote(name)));
    return {std::string(name), std::string(value)};
}

std::string expected(const Option& o) {
    switch (o.kind) {
    case Kind::string: return "a string";
    case Kind::flag: return "a boolean: true/false, 1/0, yes/no or on/off";
    case Kind::integer: {
        std::string_view unit = o.metavar == "BYTES" ? " (bytes)" : "";
        if (!o.auto_word.empty())
            return fmt::format("an integer {}-{} or {}", o.min, o.max, o.auto_word);
        if (o.max == int64_max || o.max == int_max) {
            if (o.min == 1)
                return fmt::format("a positive integer{}", unit);
            if (o.min == 0)
                return fmt::format("a non-negative integer{}", unit);
            return fmt::format("an integer >= {}", o.min);
        }
        return fmt::format("an integer {}-{}", o.min, o.max);
    }
    case Kind::seconds:
        return o.positive ? "a positive number of seconds" : "a non-negative number of seconds";
    case Kind::choice: return fmt::format("one of {}", fmt::join(o.choices, ", "));
    case Kind::headers: return "NAME:VALUE";
    case Kind::list: return fmt::format("{} entries", o.metavar);
    }
    return "a value";
}

std::string format_value(const Option& o, const Value& v) {
    switch (o.kind) {
    case Kind::string: return std::get<std::string>(v);
    case Kind::flag: return std::get<bool>(v) ? "true" : "false";
    case Kind::integer: {
        auto n = std::get<std::int64_t>(v);
        return !o.auto_word.empty() && n == o.auto_number ? std::string(o.auto_word)
                                                          : fmt::format("{}", n);
    }
    case Kind::seconds: return fmt::format("{}", std::get<double>(v));
    case Kind::choice: {
        auto i = std::get<std::int64_t>(v);
        return i >= 0 && static_cast<std::size_t>(i) < o.choices.size() ? std::string(o.choices[i])
                                                                        : fmt::format("{}", i);
    }
    case Kind::headers: {
        std::string out;
        for (const auto& [name, value] : std::get<HeaderList>(v))
            out += fmt::format("{}{}:{}", out.empty() ? "" : ", ", name, value);
        return out;
    }
    case Kind::list: return fmt::format("{}", fmt::join(std::get<TextList>(v), ", "));
    }
    return {};
}

std::string quote(std::string_view text) {
    std::string out = "'";
    for (unsigned char c : text) {
        if (c == '\n')
            out += "\\n";
        else if (c == '\r')
            out += "\\r";
        else if (c == '\t')
            out += "\\t";
        else if (c < 0x20 || c == 0x7f)
            out += fmt::format("\\x{:02x}", c);
        else
            out += static_cast<char>(c);
    }
    return out + "'";
}

std::string closest(std::string_view wrong, std::span<const std::string> candidates) {
    // At most a third of the word (and at least one edit): typos, not unrelated names.
    std::size_t best = std::max<std::size_t>(1, wrong.size() / 3) + 1;
    std::string found;
    for (const std::string& c : candidates) {
        std::size_t d = edit_distance(wrong, c);
        if (d < best) {
            best = d;
            found = c;
        }
    }
    return found;
}

}  // namespace narwhal::config
