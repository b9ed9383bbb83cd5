#include "asgi/status_reasons.hpp"

#include "catch.hpp"

#include <string_view>

using narwhal::asgi::status_reason;

TEST_CASE("status_reason: codes Beast's table lacks or names differently", "[status_reasons]") {
    CHECK(status_reason(103) == "Early Hints");
    CHECK(status_reason(308) == "Permanent Redirect");
    CHECK(status_reason(413) == "Content Too Large");
    CHECK(status_reason(418) == "I'm a teapot");
    CHECK(status_reason(421) == "Misdirected Request");
    CHECK(status_reason(422) == "Unprocessable Content");
    CHECK(status_reason(425) == "Too Early");
    CHECK(status_reason(451) == "Unavailable For Legal Reasons");
    CHECK(status_reason(511) == "Network Authentication Required");
}

TEST_CASE("status_reason: unregistered and out-of-range codes are empty", "[status_reasons]") {
    for (int status : {0, 99, 104, 299, 419, 499, 509, 599, 600, 999, -1})
        CHECK(status_reason(status).empty());
}

TEST_CASE("status_reason: every phrase can stand in a status line", "[status_reasons]") {
    // RFC 9112: reason-phrase = 1*( HTAB / SP / VCHAR / obs-text ).
    int registered = 0;
    for (int status = 100; status <= 599; ++status) {
        std::string_view reason = status_reason(status);
        if (reason.empty())
            continue;
        ++registered;
        INFO("status " << status);
        for (unsigned char c : reason)
            CHECK((c == ' ' || c == '\t' || (c > 0x20 && c < 0x7f)));
    }
    CHECK(registered == 63);
}
