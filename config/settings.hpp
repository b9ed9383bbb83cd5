// The one tree of narwhal's settings. Every default lives here, with the reason
// for its value; the loaders (CLI, environment, config file) only overwrite
// fields, and docs/configuration.md lists the same keys.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace narwhal::config {

// A time setting (seconds, fractions allowed) as the duration timers take; below a
// millisecond counts as none.
inline std::chrono::milliseconds milliseconds_of(double seconds) {
    return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
}

enum class LifespanMode { auto_, on, off };
enum class LoopKind { auto_, asyncio, uvloop };
enum class Interface { auto_, asgi3, asgi2 };
enum class LogLevel { trace, debug, info, warning, error, critical };
enum class LogFormat { text, json };
// uvicorn's protocol implementation choices, accepted so that its command lines run
// unchanged; narwhal serves HTTP/1.1 and WebSocket itself whichever is named, and
// WsImpl::none turns WebSocket off as in uvicorn.
enum class HttpImpl { auto_, h11, httptools, zttp };
enum class WsImpl { auto_, none, websockets, websockets_sansio, wsproto };

struct Settings {
    // --- application -------------------------------------------------------
    std::string app;            // "module:attribute" (positional argument)
    std::string app_dir = ".";  // uvicorn's default: the current directory goes on sys.path
    bool factory = false;       // treat app as a zero-argument callable returning the app
    Interface interface = Interface::auto_;       // detect ASGI 2 vs 3 like uvicorn does
    LifespanMode lifespan = LifespanMode::auto_;  // tolerate apps without lifespan support
    LoopKind loop = LoopKind::auto_;  // uvloop when importable: the fastest loop available
    HttpImpl http = HttpImpl::auto_;  // uvicorn's default; the value only selects a log line
    // uvicorn's HTTP/2 (with --http zttp): narwhal serves HTTP/1.1 only, and says so. Off,
    // as in uvicorn.
    bool http2 = false;
    // Each request's task in a new, empty contextvars.Context (uvicorn's flag of the same
    // name): nothing set in the lifespan or at import leaks into requests. Off, as in
    // uvicorn: a task copies the context it is created in, as asyncio does.
    bool reset_contextvars = false;
    WsImpl ws = WsImpl::auto_;  // uvicorn's default; any value but none is narwhal's WebSocket
    std::string root_path;      // empty: the app is mounted at the root
    std::string env_file;       // empty: load no dotenv file
    std::string venv;           // empty: use $VIRTUAL_ENV when set

    // --- listening ---------------------------------------------------------
    std::string host = "127.0.0.1";  // loopback: never expose a server by accident
    uint16_t port = 8000;            // uvicorn's default
    std::string uds;                 // empty: listen on TCP
    int fd = -1;                     // -1: do not adopt an inherited socket
    int backlog = 2048;              // uvicorn's default; the kernel caps it at somaxconn
    // Network I/O threads per worker process. 0: none, the interpreter's thread runs the
    // network side between its event-loop iterations. io_threads_auto: 0 when the
    // processes already fill the usable CPUs with one interpreter each (a second thread
    // would find no free core and only add a thread switch per request), else 1 (it runs
    // beside the interpreter on a free core: one worker then uses two).
    static constexpr int io_threads_auto = -1;
    int io_threads = io_threads_auto;
    int resolved_io_threads(int cpus) const {
        if (io_threads != io_threads_auto)
            return io_threads;
        int processes = workers == 0 ? 1 : workers == workers_auto ? cpus : workers;
        return interpreters == 1 && processes >= cpus ? 0 : 1;
    }

    // --- worker processes ---------------------------------------------------
    // 0: one process, no master, exactly as without the option (uvicorn's one-process
    // default). N >= 1: a master that never starts Python binds the listeners once and
    // supervises N worker processes; workers_auto: one per CPU this process may run on.
    static constexpr int workers_auto = -1;
    int workers = 0;
    // false: the workers share the master's listening socket, one accept queue, so a busy
    // or stuck worker leaves new connections to the others (and --uds, --fd and port 0
    // work). true: each worker binds its own SO_REUSEPORT socket; the kernel spreads
    // connections evenly, but a stuck worker's queue keeps the connections hashed to it.
    bool reuse_port = false;
    // Own-GIL sub-interpreters per worker (CPython 3.12 or later), one thread and event
    // loop each, sharing the worker's I/O threads. 1: the main interpreter only, exactly
    // the one-interpreter path: every C extension works there, and processes (--workers)
    // give parallelism on every CPython; sub-interpreters are the opt-in for apps whose
    // extensions support them.
    int interpreters = 1;
    // The most a worker may run: the master's shared table keeps this many loop heartbeats
    // per worker, fixed before any worker exists.
    static constexpr int max_interpreters = 16;

    // --- TLS (uvicorn's --ssl-* flags) -------------------------------------
    // TLS is on when a certificate file is given; the key may be in it too.
    std::string ssl_certfile;
    std::string ssl_keyfile;
    std::string ssl_keyfile_password;
    // uvicorn's ssl.PROTOCOL_* number: 17 is its default, PROTOCOL_TLS_SERVER (negotiate
    // the best both sides have, from ssl_min_version up); 2 the same; 5 TLS 1.2 only.
    // TLS 1.0 and 1.1 (3, 4) are refused: deprecated (RFC 8996).
    int ssl_version = 17;
    // Client certificates: 0 none (uvicorn's default), 1 optional, 2 required. 1 and 2 need
    // ssl_ca_certs; a certificate that fails verification fails the handshake either way.
    int ssl_cert_reqs = 0;
    std::string ssl_ca_certs;
    // An OpenSSL cipher list for TLS 1.2 (1.3 suites are all AEAD and stay OpenSSL's).
    // uvicorn's default "TLSv1" would allow CBC and RSA key exchange; narwhal reads it as
    // "the default": ECDHE with AEAD only (forward secrecy, no padding oracles).
    std::string ssl_ciphers = "TLSv1";
    // TLS 1.0 and 1.1 are deprecated (RFC 8996); 1.3 only for clients that all have it.
    enum class TlsVersion { tls1_2, tls1_3 };
    TlsVersion ssl_min_version = TlsVersion::tls1_2;
    bool tls() const { return !ssl_certfile.empty(); }

    // --- proxies -----------------------------------------------------------
    // Behind a load balancer: honour X-Forwarded-For/-Proto and Forwarded (RFC 7239)
    // from trusted peers, as uvicorn does by default; harmless from anyone else.
    bool proxy_headers = true;
    // Peers whose proxy headers (and PROXY protocol header) are believed: IPs and CIDRs,
    // comma-separated, "*" for any peer, "unix:" for Unix-socket peers. uvicorn's
    // default: the loopback addresses, where a local proxy runs.
    std::string forwarded_allow_ips = "127.0.0.1,::1";
    // PROXY protocol (HAProxy's) header expected first on every connection. Off: it
    // would be read as garbage from a peer that sends none.
    enum class ProxyProtocol { off, v1, v2, auto_ };
    ProxyProtocol proxy_protocol = ProxyProtocol::off;

    // --- HTTP limits -------------------------------------------------------
    // The request line: longer than any sane URL, short enough to bound a slow client.
    std::size_t limit_request_line = 8190;
    // The whole head: room for cookie-heavy browsers, bounded for slowloris floods.
    std::size_t limit_request_head = 32768;
    // One header field line: matches the request-line bound (gunicorn's choice too).
    std::size_t limit_request_field_size = 8190;
    // Header count: real clients send < 40; caps per-request scope work.
    std::size_t limit_request_fields = 100;
    // Bodies stream through a bounded window, so this protects apps that buffer whole
    // bodies, not the server's memory.
    uint64_t limit_request_body = 1ull << 30;
    // Unread request body held per request before the socket stops being read. 1 MiB:
    // measured on a 50 MiB upload (docs/benchmarks.md), 64 KiB (uvicorn's high-water
    // mark) costs 2-3x the server CPU and a long tail of slow uploads; 1 MiB removes both,
    // and 4 MiB buys little more for 4x the memory a slow app can make a connection hold.
    std::size_t read_window = 1024 * 1024;
    // Outbound bytes per connection above which `await send()` waits, and the level it
    // waits for: the kernel-like 64 KiB / 16 KiB pair asyncio transports use.
    std::size_t send_high_water = 64 * 1024;
    std::size_t send_low_water = 16 * 1024;

    // --- admission -----------------------------------------------------------
    // HTTP requests in flight per interpreter: far above what one healthy loop keeps busy,
    // low enough that a stalled app cannot pile up unbounded work. 0: no limit.
    int limit_concurrency = 2048;
    // Requests waiting for a slot beyond the limit: as many again; more wait nowhere
    // (immediate 503).
    int limit_queue = 2048;
    // Open connections per worker: room for a 10k-socket gateway, below the usual
    // 64k-descriptor hard limit. At the limit the worker stops accepting.
    int limit_connections = 16384;

    // --- timeouts (seconds) -------------------------------------------------
    double timeout_keep_alive = 5.0;  // uvicorn's default idle time between requests
    // Kubernetes kills at 30 s; 25 s leaves room for lifespan shutdown.
    double timeout_graceful_shutdown = 25.0;
    // A queued request older than this gets 503: a second is long enough to ride out a
    // burst, short enough for the client to retry elsewhere.
    double timeout_queue = 1.0;
    // The whole request head must arrive within this of its first byte (slowloris);
    // real clients send it in one packet.
    double timeout_header = 10.0;
    // Longest silence between two pieces of a request body the app is waiting for.
    double timeout_body = 30.0;
    // Longest time a client may take no bytes while the server sends it a file
    // (http.response.pathsend): the same patience as for a body it sends us.
    double timeout_send = 30.0;
    // Deadline for a whole request (504 before the response started). 0: none, as in
    // uvicorn; a deadline is a policy of the application.
    double timeout_request = 0.0;
    // After the client disconnected, time the app gets to notice before its task is
    // cancelled: enough to finish a short database call.
    double timeout_disconnect_grace = 2.0;
    // Between repeated cancellations of a task that ignores them; after three the
    // request is abandoned and reported.
    double timeout_cancel_grace = 1.0;
    // Tasks an app spawned during a request and still pending this long after the
    // request ended are reported (a leak, or work that should be a background job).
    double timeout_orphan_tasks = 5.0;

    // --- WebSocket ------------------------------------------------------------
    std::size_t ws_max_size = 16 * 1024 * 1024;  // uvicorn's default largest message
    int ws_max_queue = 32;           // uvicorn's: messages queued for the app before reading stops
    double ws_ping_interval = 20.0;  // uvicorn's: ping an idle peer this often
    double ws_ping_timeout = 20.0;   // uvicorn's: close when the peer stays silent this long
    bool ws_per_message_deflate = true;  // uvicorn's default; negotiated per RFC 7692
    // A socket whose client does not keep up: `wait` makes `await send()` wait (bounded
    // memory, the app slows down); `close` closes it with 1008 once its send buffer has
    // stayed full for ws_send_timeout, so one slow client cannot hold a broadcaster back.
    // `drop` (publications only: an app's own send() waits as with `wait`) skips what a
    // subscriber has no room for and counts it. Publications cannot wait for one
    // subscriber, so under `wait` and `close` a subscriber whose publication queue is
    // full is closed with 1008 at once (docs/websocket-gateway.md).
    enum class SlowConsumer { wait, close, drop };
    SlowConsumer ws_slow_consumer = SlowConsumer::wait;  // uvicorn's behaviour: wait
    double ws_send_timeout = 10.0;  // a client that cannot take 64 KiB in 10 s is gone
    // On shutdown, open sockets keep working this long before they get 1001: in-flight
    // messages finish, well inside the graceful timeout.
    double timeout_ws_drain = 5.0;

    // --- publish/subscribe (the narwhal.pubsub extension) --------------------------
    // Publications queued for one subscriber before --ws-slow-consumer applies to it: a
    // burst of 1,024 broadcasts is absorbed by a client that stalls for a moment (a GC
    // pause, a lost packet). Their bytes are shared with every other subscriber, so a
    // queued publication costs one small entry per socket, not a copy of the message.
    int pubsub_max_queue = 1024;
    // Redis to carry publications between servers: redis://[:password@]host[:port][/db]
    // or unix:///path; empty: this server's workers only.
    std::string pubsub_redis;
    // Each topic is the Redis channel prefix + topic, so several apps can share one Redis.
    std::string pubsub_redis_prefix = "narwhal:";
    // Publications sent to Redis whose reply has not come back yet; over it they are
    // counted lost rather than queued. 10,000 absorbs a stall of Redis (a snapshot's fork,
    // a slow disk under appendfsync) of a second or more at thousands of broadcasts a
    // second, while the memory held in the connection's output buffer stays bounded
    // (10,000 x the message size), and a publication that old would arrive too late anyway.
    int pubsub_redis_max_pending = 10000;
    // Until both connections have answered their PING: a host that drops packets would
    // otherwise hold a connect for the kernel's SYN retries (about two minutes). 5 s is far
    // above a healthy connect and AUTH round trip, even to another region.
    double pubsub_redis_connect_timeout = 5.0;
    // The wait between attempts doubles from 0.1 s (a restarting Redis, or a failover, is
    // back within a few hundred ms) up to this: a Redis down for long costs each worker
    // one attempt per few seconds, not a tight loop.
    double pubsub_redis_retry_max = 5.0;

    // --- watchdog -------------------------------------------------------------
    // A loop that has not turned for this long is reported with its stack: 100 ms is
    // far beyond any healthy turn and short enough to catch a blocking call. 0: off.
    double watchdog_threshold = 0.1;

    // --- worker processes (acted on by the master under --workers) -------------
    // A loop of a ready worker that has not turned for this long gets the worker replaced
    // (SIGTERM, SIGKILL one more period later): uvicorn's default, 50x the watchdog's
    // report threshold, so a slow request is reported long before its worker is killed.
    // 0: never.
    double timeout_worker_healthcheck = 5.0;
    // A worker that has not reported ready this long after its fork (app import plus
    // lifespan startup) is stopped like a hung one and counts as failing to start: longer
    // than any sane import and startup, models loaded included; short enough that a stuck
    // deploy is noticed within a minute rather than holding a roll forever. 0: no bound.
    double timeout_worker_startup = 60.0;
    // Requests a worker serves before it is replaced (without --workers: before the process
    // shuts down, as uvicorn's). 0: no limit (uvicorn's None): a leak-free app never needs
    // recycling.
    uint64_t limit_max_requests = 0;
    // Up to this many more per worker, drawn once per worker, so workers started together
    // are not recycled together. 0: uvicorn's and gunicorn's default, the exact limit.
    uint64_t limit_max_requests_jitter = 0;

    // --- health paths and metrics (answered by C++, never by the app) ----------
    // Paths answered on the normal listeners without entering Python: live (the loops
    // turn within timeout_worker_healthcheck) and ready (live, not draining, admission not
    // full). Empty: off, as in uvicorn, so no path of an app is taken over unasked.
    std::string health_live_path;
    std::string health_ready_path;
    // HOST:PORT of a separate listener serving Prometheus text at /metrics (under
    // --workers the master serves it for all workers). Empty: off; a separate port keeps
    // the metrics off the public listener.
    std::string metrics_bind;
    // After the first SIGTERM, keep accepting and serving this long with the ready path
    // answering 503, so a balancer's probes see the worker leave before its listener
    // closes. 0: uvicorn's behaviour (close the listener at once); a balancer that drains
    // on its own (Kubernetes endpoints, HAProxy's agent) needs no delay.
    double timeout_shutdown_delay = 0.0;

    // --- development: --reload (the master restarts its workers on a source change) ---
    // Off: production runs never watch files. On: a master (as under --workers, with one
    // worker unless --workers says more) watches reload_dirs with inotify and replaces its
    // workers, new before old, when a file matching the globs changes.
    bool reload = false;
    // Directories watched, recursively. Empty: the current directory and --app-dir.
    std::vector<std::string> reload_dirs;
    // File-name globs added to uvicorn's '*.py', and added to uvicorn's excluded
    // '.*', '.py[cod]', '.sw.*', '~*' (an exclude naming a directory skips that tree).
    std::vector<std::string> reload_includes;
    std::vector<std::string> reload_excludes;
    // uvicorn's: a burst of saves (an editor's write-then-rename, a checkout) becomes one
    // restart that starts this long after the last change of the burst.
    double reload_delay = 0.25;

    // --- bridge ------------------------------------------------------------
    // Events taken per drain of the inbox under one GIL hold: large enough to amortise
    // the wake-up, small enough that running tasks are not starved.
    std::size_t inbox_batch = 64;
    // New requests queued for the interpreter before the I/O threads answer 503.
    std::size_t inbox_capacity = 4096;

    // --- responses -----------------------------------------------------------
    bool server_header = true;  // uvicorn sends "server: uvicorn"; we send "server: narwhal"
    bool date_header = true;    // RFC 9110 requires Date from servers with a clock
    std::vector<std::pair<std::string, std::string>> headers;  // --header name:value defaults
    // The request id's header (asgi/request_id.hpp): kept from the request when sane,
    // made otherwise, and sent back. X-Request-ID is what nginx ($request_id), Heroku's
    // router and most tracing middleware use; empty: no request ids.
    std::string request_id_header = "X-Request-ID";

    // --- logging ------------------------------------------------------------
    LogLevel log_level = LogLevel::info;     // uvicorn's default
    LogFormat log_format = LogFormat::text;  // humans first; json for log shippers
    bool access_log = true;                  // uvicorn's default
    // Empty: uvicorn's default logging setup, with narwhal's records on their C++ path.
    std::string log_config;
    // Colored level names when stderr is a terminal (uvicorn's rule); false: never.
    bool use_colors = true;
};

}  // namespace narwhal::config
