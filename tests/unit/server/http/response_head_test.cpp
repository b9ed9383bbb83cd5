#include "server/http/response_head.hpp"

#include "catch.hpp"

#include <ctime>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

using namespace std::string_literals;
using narwhal::server::http::append_response_head;
using narwhal::server::http::error_response;
using narwhal::server::http::Framing;
using narwhal::server::http::HeaderList;
using narwhal::server::http::http_date;
using narwhal::server::http::reason_phrase;
using narwhal::server::http::ResponseDefaults;
using narwhal::server::http::ResponseHeadSpec;
using narwhal::server::http::server_response;

namespace {

const std::regex imf_fixdate(
    R"((Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT)");

ResponseDefaults bare() {
    ResponseDefaults d;
    d.server_header = false;
    d.date_header = false;
    return d;
}

std::string head_of(const ResponseHeadSpec& spec, const ResponseDefaults& defaults) {
    std::string out;
    append_response_head(out, spec, defaults);
    return out;
}

// The head split into lines (without CRLF); the final empty line is checked and dropped.
std::vector<std::string> lines_of(const std::string& head) {
    REQUIRE(head.size() >= 4);
    REQUIRE(head.substr(head.size() - 4) == "\r\n\r\n");
    std::vector<std::string> lines;
    std::size_t pos = 0;
    while (pos < head.size() - 2) {
        auto end = head.find("\r\n", pos);
        REQUIRE(end != std::string::npos);
        lines.push_back(head.substr(pos, end - pos));
        pos = end + 2;
    }
    return lines;
}

// Replaces a date line's value so whole heads can be compared.
std::vector<std::string> normalise_date(std::vector<std::string> lines) {
    for (auto& line : lines)
        if (line.rfind("date: ", 0) == 0) {
            CHECK(std::regex_match(line.substr(6), imf_fixdate));
            line = "date: <date>";
        }
    return lines;
}

}  // namespace

TEST_CASE("response_head: status line and minimal head", "[response_head]") {
    ResponseHeadSpec spec;
    CHECK(head_of(spec, bare()) == "HTTP/1.1 200 OK\r\n\r\n");

    spec.status = 404;
    CHECK(head_of(spec, bare()) == "HTTP/1.1 404 Not Found\r\n\r\n");
}

TEST_CASE("response_head: appends to what is already in the buffer", "[response_head]") {
    std::string out = "previous response bytes";
    ResponseHeadSpec spec;
    append_response_head(out, spec, bare());
    CHECK(out == "previous response bytesHTTP/1.1 200 OK\r\n\r\n");
}

TEST_CASE("response_head: always HTTP/1.1, also to HTTP/1.0 clients", "[response_head]") {
    ResponseHeadSpec spec;
    spec.version = 10;
    spec.close = true;
    CHECK(head_of(spec, bare()).rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
}

TEST_CASE("response_head: server, date, extra defaults and app headers in order",
          "[response_head]") {
    ResponseDefaults defaults;
    defaults.extra = {{"x-default-a", "1"}, {"x-default-b", "2"}};
    HeaderList app = {{"content-type", "text/html"}, {"x-app", "Mixed Case"}};
    ResponseHeadSpec spec;
    spec.status = 201;
    spec.app_headers = &app;
    spec.framing = Framing::content_length;
    spec.content_length = 12;

    auto lines = normalise_date(lines_of(head_of(spec, defaults)));
    const std::vector<std::string> expected = {
        "HTTP/1.1 201 Created", "server: narwhal",    "date: <date>",
        "x-default-a: 1",       "x-default-b: 2",     "content-type: text/html",
        "x-app: Mixed Case",    "content-length: 12",
    };
    CHECK(lines == expected);
}

TEST_CASE("response_head: server and date toggles", "[response_head]") {
    ResponseHeadSpec spec;
    ResponseDefaults d;

    d.server_header = true;
    d.date_header = false;
    CHECK(lines_of(head_of(spec, d)) ==
          std::vector<std::string>{"HTTP/1.1 200 OK", "server: narwhal"});

    d.server_header = false;
    d.date_header = true;
    auto lines = lines_of(head_of(spec, d));
    REQUIRE(lines.size() == 2);
    CHECK(lines[1].rfind("date: ", 0) == 0);
    CHECK(std::regex_match(lines[1].substr(6), imf_fixdate));

    d.date_header = false;
    d.extra = {{"x-only", "yes"}};
    CHECK(lines_of(head_of(spec, d)) == std::vector<std::string>{"HTTP/1.1 200 OK", "x-only: yes"});
}

TEST_CASE("response_head: framing", "[response_head]") {
    HeaderList app = {{"content-type", "text/plain"}};
    ResponseHeadSpec spec;
    spec.app_headers = &app;

    SECTION("content_length adds content-length after the app's headers") {
        spec.framing = Framing::content_length;
        spec.content_length = 0;
        CHECK(head_of(spec, bare()) ==
              "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 0\r\n\r\n");
        spec.content_length = 18446744073709551615ull;
        CHECK(head_of(spec, bare()).find("content-length: 18446744073709551615\r\n") !=
              std::string::npos);
    }
    SECTION("app_gave_length suppresses the added content-length") {
        HeaderList with_length = {{"content-length", "5"}};
        spec.app_headers = &with_length;
        spec.framing = Framing::content_length;
        spec.content_length = 99;
        spec.app_gave_length = true;
        CHECK(head_of(spec, bare()) == "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n");
    }
    SECTION("chunked adds transfer-encoding") {
        spec.framing = Framing::chunked;
        spec.content_length = 99;  // ignored
        CHECK(head_of(spec, bare()) ==
              "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n");
    }
    SECTION("none adds neither") {
        spec.status = 204;
        spec.framing = Framing::none;
        spec.content_length = 99;
        CHECK(head_of(spec, bare()) ==
              "HTTP/1.1 204 No Content\r\ncontent-type: text/plain\r\n\r\n");
    }
}

TEST_CASE("response_head: connection handling", "[response_head]") {
    ResponseHeadSpec spec;
    spec.framing = Framing::content_length;
    spec.content_length = 3;

    SECTION("HTTP/1.1 keep-alive adds nothing") {
        CHECK(head_of(spec, bare()) == "HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\n");
    }
    SECTION("close adds connection: close last") {
        spec.close = true;
        CHECK(head_of(spec, bare()) ==
              "HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\n");
    }
    SECTION("HTTP/1.0 kept alive says so") {
        spec.version = 10;
        CHECK(head_of(spec, bare()) ==
              "HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: keep-alive\r\n\r\n");
    }
    SECTION("HTTP/1.0 closing says close, not keep-alive") {
        spec.version = 10;
        spec.close = true;
        const std::string head = head_of(spec, bare());
        CHECK(head.find("connection: close\r\n") != std::string::npos);
        CHECK(head.find("keep-alive") == std::string::npos);
    }
    SECTION("the app's own connection header stands: nothing is added") {
        HeaderList app = {{"connection", "close"}};
        spec.app_headers = &app;
        spec.app_connection = true;
        spec.close = true;
        CHECK(head_of(spec, bare()) ==
              "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 3\r\n\r\n");
        spec.close = false;
        spec.version = 10;
        CHECK(head_of(spec, bare()) ==
              "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 3\r\n\r\n");
    }
    SECTION("the list is not scanned: app_connection alone decides") {
        // Whether the app sent a connection header is decided where the headers enter
        // (asgi::ResponseHeaders), not here.
        HeaderList app = {{"connection", "keep-alive"}};
        spec.app_headers = &app;
        spec.close = true;
        CHECK(head_of(spec, bare()) == "HTTP/1.1 200 OK\r\nconnection: keep-alive\r\n"
                                       "content-length: 3\r\nconnection: close\r\n\r\n");
    }
}

TEST_CASE("response_head: error_response", "[response_head]") {
    SECTION("a text body naming the problem, and the connection closes") {
        const std::string out = error_response(400, bare());
        CHECK(out == "HTTP/1.1 400 Bad Request\r\n"
                     "content-type: text/plain; charset=utf-8\r\n"
                     "content-length: 30\r\n"
                     "connection: close\r\n"
                     "\r\n"
                     "Invalid HTTP request received.");
    }
    SECTION("503 says when to retry") {
        const std::string out = error_response(503, bare());
        CHECK(out.find("retry-after: 1\r\n") != std::string::npos);
        CHECK(out.substr(out.size() - 20) == "Service unavailable.");
    }
    SECTION("426 names the WebSocket version spoken") {
        CHECK(error_response(426, bare()).find("sec-websocket-version: 13\r\n") !=
              std::string::npos);
    }
    SECTION("every status the server refuses with has its own text") {
        for (int status : {400, 405, 408, 413, 414, 426, 431, 501, 503, 504, 505}) {
            INFO("status " << status);
            const std::string out = error_response(status, bare());
            CHECK(out.rfind("HTTP/1.1 " + std::to_string(status) + " ", 0) == 0);
            CHECK(out.find("Error.") == std::string::npos);
            CHECK((out.find("retry-after") != std::string::npos) == (status == 503));
        }
        CHECK(error_response(418, bare()).find("\r\n\r\nError.") != std::string::npos);
    }
}

TEST_CASE("response_head: reason_phrase", "[response_head]") {
    CHECK(reason_phrase(100) == "Continue");
    CHECK(reason_phrase(200) == "OK");
    CHECK(reason_phrase(204) == "No Content");
    CHECK(reason_phrase(304) == "Not Modified");
    CHECK(reason_phrase(400) == "Bad Request");
    CHECK(reason_phrase(413) == "Content Too Large");
    CHECK(reason_phrase(431) == "Request Header Fields Too Large");
    CHECK(reason_phrase(500) == "Internal Server Error");
    CHECK(reason_phrase(501) == "Not Implemented");
    CHECK(reason_phrase(503) == "Service Unavailable");
    CHECK(reason_phrase(505) == "HTTP Version Not Supported");
    CHECK(reason_phrase(418) == "I'm a teapot");
    CHECK(reason_phrase(425) == "Too Early");
    ResponseHeadSpec spec;
    spec.status = 451;
    CHECK(head_of(spec, bare()) == "HTTP/1.1 451 Unavailable For Legal Reasons\r\n\r\n");
}

// Codes outside the IANA registry (nginx's 499, 599, ...) get a plain word so the
// status line keeps its shape.
TEST_CASE("response_head: reason_phrase of unregistered codes is 'Unknown'", "[response_head]") {
    CHECK(reason_phrase(299) == "Unknown");
    CHECK(reason_phrase(499) == "Unknown");
    CHECK(reason_phrase(999) == "Unknown");
    ResponseHeadSpec spec;
    spec.status = 299;
    CHECK(head_of(spec, bare()) == "HTTP/1.1 299 Unknown\r\n\r\n");
}

TEST_CASE("response_head: reason phrases of unregistered codes are valid in a status line",
          "[response_head]") {
    // Whatever the text, it must be a legal reason-phrase: HTAB / SP / VCHAR / obs-text.
    for (int status : {103, 299, 418, 425, 999}) {
        INFO("status " << status);
        auto reason = reason_phrase(status);
        CHECK_FALSE(reason.empty());
        for (char c : reason) {
            auto u = static_cast<unsigned char>(c);
            CHECK((u == '\t' || (u >= 0x20 && u != 0x7f)));
        }
    }
}

TEST_CASE("response_head: http_date is an IMF-fixdate close to now", "[response_head]") {
    const std::string date(http_date());
    REQUIRE(std::regex_match(date, imf_fixdate));

    std::tm tm{};
    REQUIRE(::strptime(date.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm) != nullptr);
    const std::time_t parsed = ::timegm(&tm);
    const std::time_t now = std::time(nullptr);
    CHECK(parsed <= now);
    CHECK(now - parsed <= 2);
    // The cached value is served again within the same second (or a fresh one).
    CHECK(std::regex_match(std::string(http_date()), imf_fixdate));
}

TEST_CASE("response_head: server_response", "[response_head]") {
    SECTION("complete response with defaults") {
        ResponseDefaults defaults;
        defaults.extra = {{"x-default", "d"}};
        const std::string body = "Invalid HTTP request received.";
        const std::string out = server_response(400, body, defaults);
        const auto split = out.find("\r\n\r\n");
        REQUIRE(split != std::string::npos);
        CHECK(out.substr(split + 4) == body);
        auto lines = normalise_date(lines_of(out.substr(0, split + 4)));
        const std::vector<std::string> expected = {
            "HTTP/1.1 400 Bad Request",
            "server: narwhal",
            "date: <date>",
            "x-default: d",
            "content-type: text/plain; charset=utf-8",
            "content-length: " + std::to_string(body.size()),
            "connection: close",
        };
        CHECK(lines == expected);
    }
    SECTION("extra header lines go before connection: close") {
        const std::string out =
            server_response(503, "Service unavailable.", bare(), "retry-after: 1\r\nx-y: z\r\n");
        CHECK(out == "HTTP/1.1 503 Service Unavailable\r\n"
                     "content-type: text/plain; charset=utf-8\r\n"
                     "content-length: 20\r\n"
                     "retry-after: 1\r\n"
                     "x-y: z\r\n"
                     "connection: close\r\n"
                     "\r\n"
                     "Service unavailable.");
    }
    SECTION("empty body") {
        const std::string out = server_response(413, "", bare());
        CHECK(out == "HTTP/1.1 413 Content Too Large\r\n"
                     "content-type: text/plain; charset=utf-8\r\n"
                     "content-length: 0\r\n"
                     "connection: close\r\n"
                     "\r\n");
    }
    SECTION("content-length counts bytes, not characters") {
        const std::string body = "caf\xc3\xa9"s;  // 5 bytes
        const std::string out = server_response(400, body, bare());
        CHECK(out.find("content-length: 5\r\n") != std::string::npos);
    }
}
