#include "asgi/errors.hpp"
#include "asgi/response_state.hpp"

#include "catch.hpp"

#include <cstdint>
#include <optional>
#include <string>

using narwhal::asgi::ResponseState;
using narwhal::asgi::status_has_body;
namespace errors = narwhal::asgi::errors;

namespace {

constexpr const char* start = "http.response.start";
constexpr const char* body = "http.response.body";

// uvicorn's exact wording (uvicorn/protocols/http/*_impl.py).
const std::string start_expected_got_body =
    "Expected ASGI message 'http.response.start', but got 'http.response.body'.";
const std::string body_expected_got_start =
    "Expected ASGI message 'http.response.body', but got 'http.response.start'.";
const std::string body_after_complete =
    "Unexpected ASGI message 'http.response.body' sent, after response already completed.";
const std::string start_after_complete =
    "Unexpected ASGI message 'http.response.start' sent, after response already completed.";

}  // namespace

TEST_CASE("errors: ordering messages use uvicorn's wording", "[asgi][errors]") {
    CHECK(errors::expected_message(start, body) == start_expected_got_body);
    CHECK(errors::expected_message(body, start) == body_expected_got_start);
    CHECK(errors::unexpected_after_complete(body) == body_after_complete);
    CHECK(errors::expected_message(start, "websocket.send") ==
          "Expected ASGI message 'http.response.start', but got 'websocket.send'.");
    CHECK(errors::content_longer == "Response content longer than Content-Length");
    CHECK(errors::content_shorter == "Response content shorter than Content-Length");
}

TEST_CASE("response_state: a fresh state expects http.response.start", "[asgi][response_state]") {
    ResponseState rs;
    CHECK(rs.phase() == ResponseState::Phase::start);
    CHECK_FALSE(rs.started());
    CHECK_FALSE(rs.complete());
    CHECK(rs.body_bytes() == 0);
    CHECK_FALSE(rs.check_order(start).has_value());

    auto err = rs.check_order(body);
    REQUIRE(err.has_value());
    CHECK(*err == start_expected_got_body);

    err = rs.check_order("http.response.trailers");
    REQUIRE(err.has_value());
    CHECK(*err == "Expected ASGI message 'http.response.start', but got 'http.response.trailers'.");
    // check_order is a pure query: the phase does not move.
    CHECK(rs.phase() == ResponseState::Phase::start);
}

TEST_CASE("response_state: start -> body... -> done", "[asgi][response_state]") {
    ResponseState rs;
    rs.on_start(200, std::nullopt);
    CHECK(rs.phase() == ResponseState::Phase::body);
    CHECK(rs.started());
    CHECK_FALSE(rs.complete());
    CHECK(rs.status() == 200);
    CHECK(rs.body_allowed());
    CHECK_FALSE(rs.content_length().has_value());

    // A second start is out of order.
    auto err = rs.check_order(start);
    REQUIRE(err.has_value());
    CHECK(*err == body_expected_got_start);

    CHECK_FALSE(rs.check_order(body).has_value());
    CHECK_FALSE(rs.on_body(3, true).has_value());
    CHECK(rs.phase() == ResponseState::Phase::body);
    CHECK_FALSE(rs.check_order(body).has_value());
    CHECK_FALSE(rs.on_body(0, true).has_value());
    CHECK_FALSE(rs.on_body(4, false).has_value());
    CHECK(rs.phase() == ResponseState::Phase::done);
    CHECK(rs.complete());
    CHECK(rs.body_bytes() == 7);

    err = rs.check_order(body);
    REQUIRE(err.has_value());
    CHECK(*err == body_after_complete);
    err = rs.check_order(start);
    REQUIRE(err.has_value());
    CHECK(*err == start_after_complete);
}

TEST_CASE("response_state: a single final empty body completes", "[asgi][response_state]") {
    ResponseState rs;
    rs.on_start(200, std::nullopt);
    CHECK_FALSE(rs.on_body(0, false).has_value());
    CHECK(rs.complete());
    CHECK(rs.body_bytes() == 0);
}

TEST_CASE("response_state: Content-Length accounting", "[asgi][response_state]") {
    ResponseState rs;
    rs.on_start(200, uint64_t{10});
    REQUIRE(rs.content_length() == std::optional<uint64_t>(10));

    SECTION("exact length over several bodies is accepted") {
        CHECK_FALSE(rs.on_body(3, true).has_value());
        CHECK_FALSE(rs.on_body(3, true).has_value());
        CHECK_FALSE(rs.on_body(4, false).has_value());
        CHECK(rs.complete());
        CHECK(rs.body_bytes() == 10);
    }
    SECTION("exceeding across several bodies is 'longer', and changes nothing") {
        CHECK_FALSE(rs.on_body(6, true).has_value());
        auto err = rs.on_body(5, true);
        REQUIRE(err.has_value());
        CHECK(*err == "Response content longer than Content-Length");
        CHECK(rs.body_bytes() == 6);
        CHECK(rs.phase() == ResponseState::Phase::body);
        // The rejected bytes were not counted: the exact rest still fits.
        CHECK_FALSE(rs.on_body(4, false).has_value());
        CHECK(rs.complete());
        CHECK(rs.body_bytes() == 10);
    }
    SECTION("exceeding on the final body is 'longer', not 'shorter'") {
        CHECK_FALSE(rs.on_body(9, true).has_value());
        auto err = rs.on_body(2, false);
        REQUIRE(err.has_value());
        CHECK(*err == "Response content longer than Content-Length");
        CHECK_FALSE(rs.complete());
        CHECK(rs.body_bytes() == 9);
    }
    SECTION("a final body short of the length is 'shorter', and changes nothing") {
        CHECK_FALSE(rs.on_body(4, true).has_value());
        auto err = rs.on_body(5, false);
        REQUIRE(err.has_value());
        CHECK(*err == "Response content shorter than Content-Length");
        CHECK(rs.phase() == ResponseState::Phase::body);
        CHECK_FALSE(rs.complete());
        CHECK(rs.body_bytes() == 4);
        CHECK_FALSE(rs.check_order(body).has_value());
    }
    SECTION("short intermediate bodies are fine while more is coming") {
        for (int i = 0; i < 9; ++i)
            CHECK_FALSE(rs.on_body(1, true).has_value());
        CHECK(rs.body_bytes() == 9);
        CHECK_FALSE(rs.on_body(1, false).has_value());
        CHECK(rs.complete());
    }
    SECTION("a final empty body before the length is reached is 'shorter'") {
        auto err = rs.on_body(0, false);
        REQUIRE(err.has_value());
        CHECK(*err == errors::content_shorter);
        CHECK_FALSE(rs.complete());
    }
}

TEST_CASE("response_state: Content-Length 0", "[asgi][response_state]") {
    ResponseState rs;
    rs.on_start(200, uint64_t{0});
    auto err = rs.on_body(1, false);
    REQUIRE(err.has_value());
    CHECK(*err == errors::content_longer);
    CHECK_FALSE(rs.on_body(0, false).has_value());
    CHECK(rs.complete());
}

TEST_CASE("response_state: no Content-Length means no length checks", "[asgi][response_state]") {
    ResponseState rs;
    rs.on_start(200, std::nullopt);
    CHECK_FALSE(rs.on_body(1'000'000, true).has_value());
    CHECK_FALSE(rs.on_body(1, false).has_value());
    CHECK(rs.body_bytes() == 1'000'001);
}

TEST_CASE("response_state: HEAD responses skip body accounting", "[asgi][response_state]") {
    ResponseState rs(/*head_request=*/true);
    rs.on_start(200, uint64_t{100});
    CHECK_FALSE(rs.body_allowed());
    CHECK(rs.content_length() == std::optional<uint64_t>(100));

    SECTION("a body longer than the declared length is not an error") {
        CHECK_FALSE(rs.on_body(500, true).has_value());
        CHECK_FALSE(rs.on_body(500, false).has_value());
        CHECK(rs.complete());
        CHECK(rs.body_bytes() == 0);
    }
    SECTION("an empty final body is not 'shorter'") {
        CHECK_FALSE(rs.on_body(0, false).has_value());
        CHECK(rs.complete());
    }
    SECTION("order is still enforced") {
        CHECK_FALSE(rs.on_body(0, false).has_value());
        auto err = rs.check_order(body);
        REQUIRE(err.has_value());
        CHECK(*err == body_after_complete);
    }
}

TEST_CASE("response_state: 204/304/1xx responses skip body accounting", "[asgi][response_state]") {
    for (int status : {100, 101, 199, 204, 304}) {
        INFO("status " << status);
        ResponseState rs;
        rs.on_start(status, uint64_t{5});
        CHECK(rs.status() == status);
        CHECK_FALSE(rs.body_allowed());
        CHECK_FALSE(rs.on_body(0, true).has_value());
        CHECK(rs.phase() == ResponseState::Phase::body);
        CHECK_FALSE(rs.on_body(0, false).has_value());
        CHECK(rs.complete());
        CHECK(rs.body_bytes() == 0);
    }
    // Statuses with a body are accounted as usual.
    for (int status : {200, 203, 205, 206, 301, 303, 305, 404, 500}) {
        INFO("status " << status);
        ResponseState rs;
        rs.on_start(status, uint64_t{5});
        CHECK(rs.body_allowed());
        auto err = rs.on_body(0, false);
        REQUIRE(err.has_value());
        CHECK(*err == errors::content_shorter);
    }
}

TEST_CASE("response_state: status_has_body", "[asgi][response_state]") {
    STATIC_REQUIRE_FALSE(status_has_body(100));
    STATIC_REQUIRE_FALSE(status_has_body(204));
    STATIC_REQUIRE(status_has_body(200));
    for (int s = 100; s < 200; ++s)
        CHECK_FALSE(status_has_body(s));
    CHECK_FALSE(status_has_body(204));
    CHECK_FALSE(status_has_body(304));
    for (int s : {200, 201, 202, 203, 205, 206, 299, 300, 301, 302, 303, 305, 307, 308, 400, 404,
                  500, 599, 999})
        CHECK(status_has_body(s));
}

TEST_CASE("response_state: pathsend replaces the body and completes the response",
          "[asgi][response_state]") {
    using narwhal::asgi::pathsend_type;
    ResponseState rs;
    CHECK(rs.check_order(pathsend_type) ==
          "Expected ASGI message 'http.response.start', but got 'http.response.pathsend'.");
    rs.on_start(200, std::nullopt);
    CHECK_FALSE(rs.check_order(pathsend_type).has_value());
    CHECK_FALSE(rs.on_pathsend(1 << 20).has_value());
    CHECK(rs.complete());
    CHECK(rs.body_bytes() == 1 << 20);
    CHECK(rs.check_order(body) == body_after_complete);
}

TEST_CASE("response_state: pathsend after a body message is an ordering error",
          "[asgi][response_state]") {
    using narwhal::asgi::pathsend_type;
    ResponseState rs;
    rs.on_start(200, std::nullopt);
    REQUIRE_FALSE(rs.on_body(0, true).has_value());
    CHECK(rs.check_order(pathsend_type) ==
          "Expected ASGI message 'http.response.body', but got 'http.response.pathsend'.");
}

TEST_CASE("response_state: pathsend checks the file against Content-Length",
          "[asgi][response_state]") {
    ResponseState longer;
    longer.on_start(200, uint64_t{10});
    CHECK(longer.on_pathsend(11) == std::string(errors::content_longer));
    CHECK_FALSE(longer.complete());  // an error leaves the state as it was
    ResponseState shorter;
    shorter.on_start(200, uint64_t{10});
    CHECK(shorter.on_pathsend(9) == std::string(errors::content_shorter));
    ResponseState exact;
    exact.on_start(200, uint64_t{10});
    CHECK_FALSE(exact.on_pathsend(10).has_value());
    CHECK(exact.complete());
    // HEAD sends no body: the length is not checked (as for body messages).
    ResponseState head(true);
    head.on_start(200, uint64_t{10});
    CHECK_FALSE(head.on_pathsend(3).has_value());
    CHECK(head.complete());
}
