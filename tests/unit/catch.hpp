// Catch2 2 (Debian 12) and Catch2 3 (Debian 13) behind one include. Tests write the
// Catch2 3 spellings; for Catch2 2 the few that differ are provided here.
#pragma once

#if __has_include(<catch2/catch_all.hpp>)
#include <catch2/catch_all.hpp>
#else
#include <catch2/catch.hpp>

namespace Catch::Matchers {
// Catch2 3 renamed the substring matcher; its old name now means "range contains".
inline auto ContainsSubstring(const std::string& text,
                              CaseSensitive::Choice cs = CaseSensitive::Yes) {
    return Contains(text, cs);
}
}  // namespace Catch::Matchers
#endif
