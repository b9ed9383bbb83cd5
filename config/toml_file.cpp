// The only translation unit that includes toml++: it is a heavy header.
#include "config/config_file.hpp"

#include "config/error.hpp"

#include <fmt/format.h>
#include <toml++/toml.h>

namespace narwhal::config::detail {
namespace {

FileValue from_node(const toml::node& node) {
    switch (node.type()) {
    case toml::node_type::string: return {node.as_string()->get(), "a string"};
    case toml::node_type::integer: return {node.as_integer()->get(), "an integer"};
    case toml::node_type::floating_point: return {node.as_floating_point()->get(), "a float"};
    case toml::node_type::boolean: return {node.as_boolean()->get(), "a boolean"};
    case toml::node_type::array: {
        std::vector<std::string> items;
        for (const toml::node& item : *node.as_array()) {
            if (!item.is_string())
                return {std::monostate{}, "a list with non-string items"};
            items.push_back(item.as_string()->get());
        }
        return {std::move(items), "a list"};
    }
    case toml::node_type::table: return {std::monostate{}, "a table"};
    default: return {std::monostate{}, "a date or time"};
    }
}

}  // namespace

std::vector<FileEntry> parse_toml(const std::string& text, const std::string& path,
                                  bool pyproject) {
    toml::table root;
    try {
        root = toml::parse(text, path);
    } catch (const toml::parse_error& e) {
        throw ConfigError(fmt::format("{}:{}:{}: invalid TOML: {}", path, e.source().begin.line,
                                      e.source().begin.column, e.description()));
    }
    const toml::table* table = &root;
    if (pyproject) {
        // A pyproject.toml belongs to many tools; narwhal reads only its own table.
        table = root["tool"]["narwhal"].as_table();
        if (table == nullptr)
            throw ConfigError(fmt::format("{}: no [tool.narwhal] table", path));
    }
    std::vector<FileEntry> out;
    for (const auto& [key, node] : *table)
        out.push_back({std::string(key.str()), from_node(node)});
    return out;
}

}  // namespace narwhal::config::detail
