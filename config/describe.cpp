// The texts generated from the option table: --help and --print-config.
#include "config/loader.hpp"

#include "config/options.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

namespace narwhal::config {
namespace {

constexpr std::size_t width = 100;
constexpr std::size_t help_column = 34;

// Appends `words` joined by spaces and wrapped to `width`, each line after the first
// indented to `indent`; `column` is where the cursor stands when it starts.
void wrap(std::string& out, const std::vector<std::string>& words, std::size_t indent,
          std::size_t column) {
    bool first = true;
    for (const std::string& word : words) {
        if (!first && column + 1 + word.size() > width) {
            out += '\n';
            out.append(indent, ' ');
            column = indent;
        } else if (!first) {
            out += ' ';
            ++column;
        }
        out += word;
        column += word.size();
        first = false;
    }
    out += '\n';
}

std::vector<std::string> split(std::string_view text) {
    std::vector<std::string> words;
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t end = std::min(text.find(' ', pos), text.size());
        if (end > pos)
            words.emplace_back(text.substr(pos, end - pos));
        pos = end + 1;
    }
    return words;
}

void entry(std::string& out, std::string_view left, std::vector<std::string> words) {
    out += "  ";
    out += left;
    std::size_t column = 2 + left.size();
    if (column + 2 > help_column) {
        out += '\n';
        column = 0;
    }
    out.append(help_column - column, ' ');
    wrap(out, words, help_column, help_column);
}

std::string left_column(const Option& o) {
    switch (o.kind) {
    case Kind::flag:
        if (o.takes_boolean)
            return fmt::format("{} [BOOLEAN] / --no-{}", o.flag, o.flag.substr(2));
        return o.negatable ? fmt::format("{} / --no-{}", o.flag, o.flag.substr(2))
                           : std::string(o.flag);
    case Kind::choice: return fmt::format("{} [{}]", o.flag, fmt::join(o.choices, "|"));
    default: return fmt::format("{} {}", o.flag, o.metavar);
    }
}

std::string toml_string(std::string_view s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            if (c < 0x20 || c == 0x7f)
                out += fmt::format("\\u{:04X}", c);
            else
                out += static_cast<char>(c);
        }
    }
    return out + "\"";
}

std::string toml_value(const Option& o, const Value& v) {
    switch (o.kind) {
    case Kind::string: return toml_string(std::get<std::string>(v));
    case Kind::choice: return toml_string(format_value(o, v));
    case Kind::integer: {
        // An auto word is a TOML string; numbers stay numbers.
        std::string text = format_value(o, v);
        return !o.auto_word.empty() && text == o.auto_word ? toml_string(text) : text;
    }
    case Kind::seconds: {
        // Shortest text that reads back to the same double, made a TOML float.
        std::string text = fmt::format("{}", std::get<double>(v));
        if (text.find_first_of(".e") == std::string::npos)
            text += ".0";
        return text;
    }
    case Kind::headers: {
        std::vector<std::string> items;
        for (const auto& [name, value] : std::get<HeaderList>(v))
            items.push_back(toml_string(fmt::format("{}:{}", name, value)));
        return fmt::format("[{}]", fmt::join(items, ", "));
    }
    case Kind::list: {
        std::vector<std::string> items;
        for (const std::string& item : std::get<TextList>(v))
            items.push_back(toml_string(item));
        return fmt::format("[{}]", fmt::join(items, ", "));
    }
    default: return format_value(o, v);
    }
}

}  // namespace

std::string help_text() {
    std::string out =
        "Usage: narwhal [OPTIONS] APP\n"
        "\n"
        "  Serve the ASGI application APP, given as 'module:attribute' (e.g. main:app).\n"
        "\n";
    out += "  ";
    wrap(out,
         split("Settings are taken from, later winning: built-in defaults ($WEB_CONCURRENCY for "
               "--workers), a config file (--config "
               "or $NARWHAL_CONFIG), uvicorn's UVICORN_* environment variables for the options it "
               "shares, NARWHAL_* environment variables, then these options. An "
               "option --some-name is the key some_name in a config file and the variable "
               "NARWHAL_SOME_NAME in the environment."),
         2, 2);
    out += "\nOptions:\n";
    Settings defaults;
    for (const Option& o : options()) {
        if (o.flag.empty())
            continue;  // APP is in the usage line
        std::vector<std::string> words = split(o.help);
        std::string shown = format_value(o, o.get(defaults));
        if (!shown.empty())
            words.push_back(fmt::format("[default: {}]", shown));  // kept on one line
        entry(out, left_column(o), std::move(words));
    }
    out += "\nOther options:\n";
    for (const MetaOption& m : meta_options())
        entry(out,
              m.metavar.empty() ? std::string(m.flag) : fmt::format("{} {}", m.flag, m.metavar),
              split(m.help));
    return out;
}

std::string render_toml(const Settings& settings) {
    std::string out = "# narwhal's effective settings; narwhal --config FILE reads this back.\n";
    for (const Option& o : options())
        out += fmt::format("{} = {}\n", o.key, toml_value(o, o.get(settings)));
    return out;
}

}  // namespace narwhal::config
