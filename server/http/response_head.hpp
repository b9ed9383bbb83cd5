// Serialises a response head (status line and fields) into one string, so a whole
// single-body response leaves in one write. Beast's serializer needs a field
// container per response; this needs only the app's header list.
#pragma once

#include "asgi/events.hpp"
#include "server/http/response_framing.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace narwhal::server::http {

using asgi::HeaderList;

struct ResponseDefaults {
    bool server_header = true;
    bool date_header = true;
    HeaderList extra;  // --header defaults, sent before the app's headers
    // --request-id-header, lowercased; empty: none. The request's id goes back on its
    // response under this name, unless the app sent that header itself.
    std::string request_id_header;
};

struct ResponseHeadSpec {
    int status = 200;
    int version = 11;
    const HeaderList* app_headers = nullptr;
    Framing framing = Framing::none;
    uint64_t content_length = 0;  // added when framing is content_length and the app gave none
    bool app_gave_length = false;
    // The app sent its own connection header (HeaderFacts::connection): it stands, and
    // the server adds none (the session has already honoured a "close" in it).
    bool app_connection = false;
    bool close = false;           // add "connection: close"
    std::string_view request_id;  // sent as defaults.request_id_header; empty: none
};

void append_response_head(std::string& out, const ResponseHeadSpec& spec,
                          const ResponseDefaults& defaults);

// A complete response made by the server itself (errors such as 400, 503): always
// closes the connection.
std::string server_response(int status, std::string_view body, const ResponseDefaults& defaults,
                            std::string_view extra_header_lines = {});

// The server's own answer when it refuses a request (400, 408, 413, 503, ...): a short
// text body naming the problem, "retry-after: 1" on 503 (load was shed: try again) and
// "sec-websocket-version: 13" on 426. Closes the connection, like server_response.
// `detail`, when given, is the body instead of the status's own text.
std::string error_response(int status, const ResponseDefaults& defaults,
                           const char* detail = nullptr, std::string_view request_id = {});

// The IMF-fixdate for now, recomputed at most once per second per thread.
std::string_view http_date();

std::string_view reason_phrase(int status);

}  // namespace narwhal::server::http
