// Serialises a response head (status line and fields) into one string, so a whole
// single-body response leaves in one write. Beast's serializer needs a field
// container per response; this needs only the app's header list.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace narwhal::server::http {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct ResponseDefaults {
    bool server_header = true;
    bool date_header = true;
    HeaderList extra;  // --header defaults, sent before the app's headers
};

enum class Framing { none, content_length, chunked };

struct ResponseHeadSpec {
    int status = 200;
    int version = 11;
    const HeaderList* app_headers = nullptr;
    Framing framing = Framing::none;
    uint64_t content_length = 0;  // added when framing is content_length and the app gave none
    bool app_gave_length = false;
    bool close = false;  // add "connection: close"
};

void append_response_head(std::string& out, const ResponseHeadSpec& spec,
                          const ResponseDefaults& defaults);

// The Content-Length the app put in its own headers, when it is a valid number: then the
// head carries the app's field and none of ours (`app_gave_length`). Two Content-Length
// fields make a response that strict clients refuse.
std::optional<uint64_t> app_content_length(const HeaderList& headers);

// A complete response made by the server itself (errors such as 400, 503): always
// closes the connection.
std::string server_response(int status, std::string_view body, const ResponseDefaults& defaults,
                            std::string_view extra_header_lines = {});

// The IMF-fixdate for now, recomputed at most once per second per thread.
std::string_view http_date();

std::string_view reason_phrase(int status);

}  // namespace narwhal::server::http
