#include "asgi/errors.hpp"

#include "catch.hpp"

#include <string>

using narwhal::asgi::errors::server_error;

TEST_CASE("errors: one entry per status the server answers itself", "[errors]") {
    for (int status : {400, 405, 408, 413, 414, 426, 431, 501, 503, 504, 505}) {
        INFO(status);
        const auto& e = server_error(status);
        CHECK(e.status == status);
        CHECK_FALSE(e.summary.empty());
        CHECK_FALSE(e.body.empty());
    }
    // Only a malformed request is called one.
    CHECK(server_error(400).summary == "malformed request");
    for (int status : {408, 413, 414, 431, 501, 503, 504, 505}) {
        INFO(status);
        CHECK(std::string(server_error(status).summary).find("malformed") == std::string::npos);
    }
    CHECK(server_error(413).summary == "request body too large");
    CHECK(server_error(413).body == "Request body too large.");
    CHECK(server_error(431).summary == "request header fields too large");
}

TEST_CASE("errors: a status not in the table gets a generic entry", "[errors]") {
    CHECK(server_error(418).status == 0);
    CHECK(server_error(418).body == "Error.");
    CHECK(server_error(200).summary == "error");
}
