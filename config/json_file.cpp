// The only translation unit that includes simdjson: it is a heavy header.
#include "config/config_file.hpp"

#include "config/error.hpp"

#include <fmt/format.h>
#include <simdjson.h>

namespace narwhal::config::detail {
namespace {

FileValue from_element(simdjson::dom::element element) {
    using simdjson::dom::element_type;
    switch (element.type()) {
    case element_type::STRING:
        return {std::string(element.get_string().value_unsafe()), "a string"};
    case element_type::INT64: return {element.get_int64().value_unsafe(), "an integer"};
    case element_type::UINT64:
        // Beyond int64_t: larger than any setting accepts.
        return {std::monostate{}, "an integer beyond 64 bits"};
    case element_type::DOUBLE: return {element.get_double().value_unsafe(), "a float"};
    case element_type::BOOL: return {element.get_bool().value_unsafe(), "a boolean"};
    case element_type::ARRAY: {
        std::vector<std::string> items;
        // Named: a range-for over the temporary result would outlive it.
        simdjson::dom::array array = element.get_array().value_unsafe();
        for (simdjson::dom::element item : array) {
            if (item.type() != element_type::STRING)
                return {std::monostate{}, "a list with non-string items"};
            items.emplace_back(item.get_string().value_unsafe());
        }
        return {std::move(items), "a list"};
    }
    case element_type::OBJECT: return {std::monostate{}, "an object"};
    case element_type::NULL_VALUE: return {std::monostate{}, "null"};
    }
    return {std::monostate{}, "an unknown JSON value"};
}

}  // namespace

std::vector<FileEntry> parse_json(const std::string& text, const std::string& path) {
    simdjson::dom::parser parser;
    simdjson::padded_string padded(text);
    simdjson::dom::element root;
    if (auto error = parser.parse(padded).get(root))
        throw ConfigError(
            fmt::format("{}: invalid JSON: {}", path, simdjson::error_message(error)));
    simdjson::dom::object object;
    if (root.get(object))
        throw ConfigError(
            fmt::format("{}: expected a JSON object of settings at the top level", path));
    std::vector<FileEntry> out;
    for (auto field : object)
        out.push_back({std::string(field.key), from_element(field.value)});
    return out;
}

}  // namespace narwhal::config::detail
