// --env-file: the dotenv dialect of python-dotenv, which uvicorn uses, so a .env that
// works under uvicorn means the same here: `export ` prefixes, # comments, single and
// double quotes (multi-line, with escapes), and ${VAR} / ${VAR:-default} expansion.
// Where python-dotenv warns about a line it cannot parse and skips it, we stop with an
// error naming the line: a variable silently missing is worse than a refusal to start.
#include "config/loader.hpp"

#include "config/options.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

namespace narwhal::config {
namespace {

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\f' || c == '\v'; }
bool is_space(char c) { return is_blank(c) || c == '\n' || c == '\r'; }

class Reader {
public:
    Reader(std::string_view text, const std::string& path) : text_(text), path_(path) {
        if (text_.starts_with("\xEF\xBB\xBF"))
            text_.remove_prefix(3);
    }

    bool done() const { return pos_ >= text_.size(); }
    char peek(std::size_t ahead = 0) const {
        return pos_ + ahead < text_.size() ? text_[pos_ + ahead] : '\0';
    }
    bool at(std::string_view s) const { return text_.substr(pos_).starts_with(s); }
    int line() const { return line_; }

    void advance() {
        char c = text_[pos_++];
        // \r\n counts once: the \n of a pair is not a new line of its own.
        if (c == '\n' ? pos_ < 2 || text_[pos_ - 2] != '\r' : c == '\r')
            ++line_;
    }
    std::size_t skip_while(bool (*pred)(char)) {
        std::size_t n = 0;
        for (; !done() && pred(peek()); ++n)
            advance();
        return n;
    }

    // A quoted run; `quote` is ' or ". A backslash before the quote keeps it open.
    std::string quoted(char quote) {
        int start_line = line_;
        advance();  // opening quote
        std::string raw;
        while (!done() && peek() != quote) {
            if (peek() == '\\' && pos_ + 1 < text_.size() && text_[pos_ + 1] == quote) {
                raw += '\\';
                advance();
            }
            raw += peek();
            advance();
        }
        if (done())
            fail(start_line,
                 fmt::format("unterminated {} quote", quote == '"' ? "double" : "single"));
        advance();  // closing quote
        return raw;
    }

    std::string rest_of_line() {
        std::string out;
        while (!done() && peek() != '\n' && peek() != '\r') {
            out += peek();
            advance();
        }
        return out;
    }

    [[noreturn]] void fail(int line, std::string_view what) const {
        throw ConfigError(fmt::format("{}:{}: {}", path_, line, what));
    }

private:
    std::string_view text_;
    const std::string& path_;
    std::size_t pos_ = 0;
    int line_ = 1;
};

// python-dotenv decodes only these escapes: \\ and \' in single quotes, and also
// \" \a \b \f \n \r \t \v in double quotes. Any other backslash stays as written.
std::string unescape(std::string_view raw, bool double_quoted) {
    std::string out;
    for (std::size_t i = 0; i < raw.size(); ++i) {
        char c = raw[i];
        if (c == '\\' && i + 1 < raw.size()) {
            char n = raw[i + 1];
            std::string_view single = "\\'";
            std::string_view dbl = "\\'\"abfnrtv";
            if ((double_quoted ? dbl : single).find(n) != std::string_view::npos) {
                static constexpr std::string_view from = "\\'\"abfnrtv";
                static constexpr std::string_view to = "\\'\"\a\b\f\n\r\t\v";
                out += to[from.find(n)];
                ++i;
                continue;
            }
        }
        out += c;
    }
    return out;
}

std::string unquoted_value(std::string line, bool after_blank) {
    // "KEY=  # note" is empty, but "KEY=#x" is "#x": a comment needs blank before it.
    if (after_blank && line.starts_with('#'))
        return {};
    for (std::size_t i = 1; i < line.size(); ++i) {
        if (line[i] == '#' && is_blank(line[i - 1])) {
            line.resize(i);
            break;
        }
    }
    while (!line.empty() && is_space(line.back()))
        line.pop_back();
    return line;
}

using Vars = std::vector<std::pair<std::string, std::string>>;

// ${NAME} and ${NAME:-default}. As python-dotenv does by default, the process
// environment wins over values defined earlier in the same file.
std::string expand(std::string_view value, const Vars& earlier) {
    std::string out;
    std::size_t pos = 0;
    while (true) {
        std::size_t open = value.find("${", pos);
        std::size_t close = open == std::string_view::npos ? open : value.find('}', open + 2);
        if (close == std::string_view::npos) {
            out += value.substr(pos);
            return out;
        }
        out += value.substr(pos, open - pos);
        std::string_view inner = value.substr(open + 2, close - open - 2);
        std::string_view name = inner;
        std::optional<std::string_view> fallback;
        if (auto colon = inner.find(':'); colon != std::string_view::npos) {
            if (!inner.substr(colon).starts_with(":-")) {
                // Not a variable reference in python-dotenv's grammar: keep it as text.
                out += value.substr(open, 2);
                pos = open + 2;
                continue;
            }
            name = inner.substr(0, colon);
            fallback = inner.substr(colon + 2);
        }
        std::string key(name);
        if (const char* env = std::getenv(key.c_str())) {
            out += env;
        } else {
            auto it = std::find_if(earlier.begin(), earlier.end(),
                                   [&](const auto& kv) { return kv.first == key; });
            if (it != earlier.end())
                out += it->second;
            else if (fallback)
                out += *fallback;
        }
        pos = close + 1;
    }
}

void set(Vars& vars, std::string key, std::string value) {
    for (auto& [k, v] : vars)
        if (k == key) {
            v = std::move(value);
            return;
        }
    vars.emplace_back(std::move(key), std::move(value));
}

}  // namespace

std::vector<std::pair<std::string, std::string>> read_env_file(const std::string& path) {
    auto unreadable = [&](int err) {
        return ConfigError(
            fmt::format("cannot read env file {}: {}", quote(path), std::strerror(err)));
    };
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec))
        throw unreadable(EISDIR);
    errno = 0;
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw unreadable(errno != 0 ? errno : ENOENT);
    std::ostringstream buffer;
    buffer << in.rdbuf();
    std::string text = std::move(buffer).str();

    Reader r(text, path);
    Vars vars;
    while (true) {
        r.skip_while(is_space);
        if (r.done())
            break;
        int line = r.line();
        if (r.at("export") && is_blank(r.peek(6))) {
            for (int i = 0; i < 6; ++i)
                r.advance();
            r.skip_while(is_blank);
        }
        std::optional<std::string> key;
        if (r.peek() == '#') {
            // A comment line: nothing to bind.
        } else if (r.peek() == '\'') {
            key = r.quoted('\'');
            if (key->empty())
                r.fail(line, "empty variable name");
        } else {
            std::string k;
            while (!r.done() && r.peek() != '=' && r.peek() != '#' && !is_space(r.peek())) {
                k += r.peek();
                r.advance();
            }
            if (k.empty())
                r.fail(line, "expected a variable name");
            key = std::move(k);
        }
        r.skip_while(is_blank);
        std::optional<std::string> value;
        if (key && r.peek() == '=') {
            r.advance();
            bool after_blank = r.skip_while(is_blank) > 0;
            char q = r.peek();
            if (q == '\'' || q == '"')
                value = unescape(r.quoted(q), q == '"');
            else
                value = unquoted_value(r.rest_of_line(), after_blank);
        }
        r.skip_while(is_blank);
        if (r.peek() == '#')
            r.rest_of_line();
        if (!r.done() && r.peek() != '\n' && r.peek() != '\r')
            r.fail(r.line(), fmt::format("unexpected text {} after {}", quote(r.rest_of_line()),
                                         key.value_or("")));
        // A name without '=' binds nothing, as in python-dotenv.
        if (key && value)
            set(vars, *key, expand(*value, vars));
    }
    return vars;
}

}  // namespace narwhal::config
