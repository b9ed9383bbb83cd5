// Reason phrases for HTTP status codes: the one table behind every status line narwhal
// writes, the app's and its own. Beast's obsolete_reason() stops at RFC 7231 and
// misses codes apps do send (103, 421, 425, 451, ...), so the table is ours and
// follows the IANA HTTP Status Code Registry.
#pragma once

#include <string_view>

namespace narwhal::asgi {

// The registered phrase for `status` ("Too Early" for 425), or an empty view when
// the code is not registered (299, 499, 999): the caller decides what an unregistered
// code's status line says.
std::string_view status_reason(int status) noexcept;

}  // namespace narwhal::asgi
