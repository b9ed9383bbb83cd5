// The WebSocket access line, as the logger writes it to stderr (captured in a file).
#include "asgi/log.hpp"
#include "asgi/log_queue.hpp"

#include "catch.hpp"

#include <cstdio>
#include <regex>
#include <string>
#include <unistd.h>

namespace nlog = narwhal::log;

namespace {
// Points fd 2 at a temporary file while it lives; text() is what was written.
class StderrCapture {
public:
    StderrCapture() : file_(std::tmpfile()), saved_(::dup(2)) {
        REQUIRE(file_);
        REQUIRE(saved_ >= 0);
        REQUIRE(::dup2(::fileno(file_), 2) >= 0);
    }
    ~StderrCapture() {
        ::dup2(saved_, 2);
        ::close(saved_);
        std::fclose(file_);
    }
    std::string text() {
        std::string out;
        char buf[4096];
        std::rewind(file_);
        while (std::size_t n = std::fread(buf, 1, sizeof buf, file_))
            out.append(buf, n);
        return out;
    }

private:
    std::FILE* file_;
    int saved_;
};

// Restores the default logger configuration after a test changed it.
struct LogConfig {
    explicit LogConfig(bool json) { nlog::configure(nlog::Level::info, json, true); }
    ~LogConfig() { nlog::configure(nlog::Level::info, false, true); }
};

nlog::WebSocketAccess accepted() {
    return {.client = "127.0.0.1:54321",
            .target = "/chat?room=1",
            .status = 101,
            .close_code = 1000,
            .closed_by = "client",
            .seconds = 2.3154,
            .messages_in = 3,
            .bytes_in = 45,
            .messages_out = 4,
            .bytes_out = 60};
}
}  // namespace

TEST_CASE("log: WebSocket access line, text", "[log]") {
    LogConfig config(false);
    StderrCapture err;
    nlog::websocket_access(accepted());
    auto refused = accepted();
    refused.status = 403;
    refused.seconds = 0.0021;
    nlog::websocket_access(refused);
    // Each line: the local time to the millisecond, then uvicorn's level prefix.
    const std::regex expected(
        "\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\.\\d{3} "
        "INFO:     127\\.0\\.0\\.1:54321 - \"WebSocket /chat\\?room=1\" 1000 closed by client "
        "after 2\\.315 s, in: 3 messages 45 bytes, out: 4 messages 60 bytes\n"
        "\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\.\\d{3} "
        "INFO:     127\\.0\\.0\\.1:54321 - \"WebSocket /chat\\?room=1\" 403 refused after "
        "0\\.002 s\n");
    CHECK(std::regex_match(err.text(), expected));
}

TEST_CASE("log: WebSocket access line, json", "[log]") {
    LogConfig config(true);
    StderrCapture err;
    auto a = accepted();
    a.target = "/a\"b?x=1";  // escaped in the JSON members
    nlog::websocket_access(a);
    const std::string line = err.text();
    CHECK(line.rfind("{\"ts\": ", 0) == 0);
    CHECK(
        line.find("\"level\": \"info\", \"logger\": \"uvicorn.access\", \"event\": "
                  "\"websocket\", \"client\": "
                  "\"127.0.0.1:54321\", \"path\": \"/a\\\"b\", \"query_string\": \"x=1\", "
                  "\"status\": 101, \"close_code\": 1000, \"closed_by\": \"client\", "
                  "\"duration_s\": 2.315400, \"messages_in\": 3, \"bytes_in\": 45, "
                  "\"messages_out\": 4, \"bytes_out\": 60, \"request_id\": null, \"message\": ") !=
        std::string::npos);
    CHECK(line.back() == '\n');
    CHECK(line.find('\n') == line.size() - 1);  // one line

    StderrCapture again;
    auto refused = accepted();
    refused.status = 503;
    nlog::websocket_access(refused);
    const std::string r = again.text();
    CHECK(r.find("\"status\": 503, \"close_code\": null, \"closed_by\": null") !=
          std::string::npos);
    CHECK(r.find("503 refused after") != std::string::npos);
}

TEST_CASE("log: a forwarded logger's records go to the queue, not to stderr", "[log]") {
    LogConfig config(false);
    nlog::queue().take();
    StderrCapture err;
    nlog::set_forwarded(nlog::logger_bit(nlog::Logger::access));
    nlog::access({.client = "127.0.0.1:5", .method = "GET", .target = "/x?y=1", .status = 204});
    nlog::write(nlog::Level::info, "not forwarded");
    nlog::set_forwarded(0);
    auto batch = nlog::queue().take();
    REQUIRE(batch.size() == 1);
    CHECK(batch[0].logger == nlog::Logger::access);
    CHECK(batch[0].message == "127.0.0.1:5 - \"GET /x?y=1 HTTP/1.1\" 204");
    // uvicorn's record.args for access filters
    CHECK(batch[0].client == "127.0.0.1:5");
    CHECK(batch[0].method == "GET");
    CHECK(batch[0].target == "/x?y=1");
    CHECK(batch[0].http_version == "1.1");
    CHECK(batch[0].status == 204);
    const std::string text = err.text();
    CHECK(text.find("not forwarded") != std::string::npos);
    CHECK(text.find("GET /x") == std::string::npos);
}

TEST_CASE("log: colored level names, and none in json", "[log]") {
    StderrCapture err;
    nlog::configure(nlog::Level::info, false, true, true);
    nlog::write(nlog::Level::warning, "careful");
    nlog::configure(nlog::Level::info, true, true, true);  // json: never colored
    nlog::write(nlog::Level::warning, "careful");
    nlog::configure(nlog::Level::info, false, true);
    const std::string text = err.text();
    CHECK(text.find("\x1b[33mWARNING\x1b[0m:  careful\n") != std::string::npos);
    auto second = text.substr(text.find('\n') + 1);
    CHECK(second.find('\x1b') == std::string::npos);
    CHECK(second.find("\"logger\": \"uvicorn.error\"") != std::string::npos);
}

TEST_CASE("log: HTTP access line, text is uvicorn's whatever else is known", "[log]") {
    LogConfig config(false);
    StderrCapture err;
    nlog::access({.client = "127.0.0.1:5",
                  .method = "GET",
                  .target = "/x?y=1",
                  .http_version = 10,
                  .status = 404,
                  .bytes_out = 9,
                  .duration_s = 0.5,
                  .request_id = "abc",
                  .user_agent = "curl/8"});
    const std::regex expected(
        "\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\.\\d{3} "
        "INFO:     127\\.0\\.0\\.1:5 - \"GET /x\\?y=1 HTTP/1\\.0\" 404 Not Found\n");
    CHECK(std::regex_match(err.text(), expected));
}

TEST_CASE("log: HTTP access line, json members", "[log]") {
    LogConfig config(true);
    StderrCapture err;
    nlog::access({.client = "10.0.0.7:0",
                  .method = "POST",
                  .target = "/a%20b?q=\"1\"",
                  .status = 201,
                  .bytes_out = 1234,
                  .duration_s = 0.25,
                  .queue_s = 0.05,
                  .app_s = 0.2,
                  .request_id = "req-1",
                  .user_agent = "httpx/0.28 \"x\"",
                  .worker = 4242,
                  .interpreter = 1});
    const std::string line = err.text();
    CHECK(line.find(
              "\"logger\": \"uvicorn.access\", \"event\": \"http\", \"client\": "
              "\"10.0.0.7:0\", \"method\": \"POST\", \"path\": \"/a%20b\", "
              "\"query_string\": \"q=\\\"1\\\"\", \"http_version\": \"1.1\", \"status\": 201, "
              "\"bytes_out\": 1234, \"duration_s\": 0.250000, \"queue_s\": 0.050000, "
              "\"app_s\": 0.200000, \"request_id\": \"req-1\", \"user_agent\": "
              "\"httpx/0.28 \\\"x\\\"\", \"worker\": 4242, \"interpreter\": 1, \"message\": ") !=
          std::string::npos);
    CHECK(line.find('\n') == line.size() - 1);

    StderrCapture again;
    nlog::access({.client = "unix", .method = "-", .target = "-", .status = 400});
    CHECK(again.text().find("\"request_id\": null, \"user_agent\": null") != std::string::npos);
}
