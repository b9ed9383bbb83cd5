// The options table: every setting's config key, flag and environment variable, kind,
// range and help text, and the lookups by each name. Values: config/option_values.cpp.
#include "config/options.hpp"

#include "config/option_rows.hpp"

#include <array>
#include <string>

namespace narwhal::config {
namespace {

using namespace rows;

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
constexpr std::array<std::string_view, 4> http_impl_names{"auto", "h11", "httptools", "zttp"};
constexpr std::array<std::string_view, 5> ws_impl_names{"auto", "none", "websockets",
                                                        "websockets-sansio", "wsproto"};

static_assert(static_cast<int>(Interface::asgi2) == 2);
static_assert(static_cast<int>(LifespanMode::off) == 2);
static_assert(static_cast<int>(LoopKind::uvloop) == 2);
static_assert(static_cast<int>(LogLevel::critical) == 5);
static_assert(static_cast<int>(LogFormat::json) == 1);
static_assert(static_cast<int>(Settings::SlowConsumer::close) == 1);
static_assert(static_cast<int>(Settings::TlsVersion::tls1_3) == 1);
static_assert(static_cast<int>(HttpImpl::zttp) == 3);
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
    flag<&S::reset_contextvars>(
        {"reset_contextvars", "--reset-contextvars", "NARWHAL_RESET_CONTEXTVARS"}, false,
        "Run each request's task in a new, empty contextvars.Context: context variables "
        "set at import or by instrumentation outside any request are not seen by requests."),
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
    flag<&S::http2>({"http2", "--http2", "NARWHAL_HTTP2"}, false,
                    "Accepted for uvicorn command lines: narwhal serves HTTP/1.1 only (TLS "
                    "clients negotiate it with ALPN), and logs a warning."),
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
        "answered 431. uvicorn's --h11-max-incomplete-event-size sets it too."),
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

// uvicorn flags that are one of narwhal's settings under another name.
struct UvicornAlias {
    std::string_view flag, key;
};
constexpr UvicornAlias uvicorn_aliases[] = {
    // h11 buffers at most this much of an event it has not completely received; for a
    // request that is its head (a body arrives as Data events of any size).
    {h11_max_incomplete_event_size, "limit_request_head"},
};

// Options uvicorn has with the same meaning, by key. A key is uvicorn's parameter name
// too, so click's auto_envvar_prefix gives UVICORN_<KEY>: these are read from the
// environment under that name as well (below NARWHAL_*).
constexpr std::string_view uvicorn_keys[] = {
    "app",
    "app_dir",
    "factory",
    "reset_contextvars",
    "http2",
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

}  // namespace

std::span<const Option> options() { return table; }
std::span<const MetaOption> meta_options() { return meta_table; }

const Option* find_by_key(std::string_view key) { return find(key, &Option::key); }
const Option* find_by_flag(std::string_view flag) { return find(flag, &Option::flag); }
const Option* find_by_env(std::string_view name) { return find(name, &Option::env); }

std::string uvicorn_env(const Option& option) {
    for (std::string_view key : uvicorn_keys)
        if (key == option.key)
            return "UVICORN_" + upper(key);
    return {};
}

const Option* find_by_uvicorn_alias(std::string_view flag) {
    for (const UvicornAlias& a : uvicorn_aliases)
        if (a.flag == flag)
            return find_by_key(a.key);
    return nullptr;
}

const Option* find_by_uvicorn_env(std::string_view name) {
    if (!name.starts_with("UVICORN_"))
        return nullptr;
    for (const Option& o : table)
        if (!o.key.empty() && name == uvicorn_env(o))
            return &o;
    for (const UvicornAlias& a : uvicorn_aliases)
        if (name == uvicorn_env_of_flag(a.flag))
            return find_by_key(a.key);
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

}  // namespace narwhal::config
