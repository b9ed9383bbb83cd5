#include "server/metrics_text.hpp"

#include <fmt/format.h>

#include <cmath>

namespace narwhal::server {

std::string escape_label_value(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        switch (c) {
        case '\\': out += "\\\\"; break;
        case '"': out += "\\\""; break;
        case '\n': out += "\\n"; break;
        default: out += c;
        }
    }
    return out;
}

std::string escape_help(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        switch (c) {
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        default: out += c;
        }
    }
    return out;
}

std::string format_value(double value) {
    if (std::isnan(value))
        return "NaN";
    if (std::isinf(value))
        return value > 0 ? "+Inf" : "-Inf";
    // Shortest round-trip form: 0.005 stays 0.005, 1 is "1".
    return fmt::format("{}", value);
}

void MetricsText::family(std::string_view name, std::string_view type, std::string_view help) {
    fmt::format_to(std::back_inserter(out_), "# HELP {} {}\n# TYPE {} {}\n", name,
                   escape_help(help), name, type);
}

void MetricsText::begin_sample(std::string_view name, Labels labels, std::string_view suffix,
                               const Label* extra) {
    out_ += name;
    out_ += suffix;
    if (labels.size() == 0 && !extra) {
        out_ += ' ';
        return;
    }
    out_ += '{';
    bool first = true;
    auto put = [&](const Label& l) {
        if (!first)
            out_ += ',';
        first = false;
        out_ += l.first;
        out_ += "=\"";
        out_ += escape_label_value(l.second);
        out_ += '"';
    };
    for (const Label& l : labels)
        put(l);
    if (extra)
        put(*extra);
    out_ += "} ";
}

void MetricsText::sample(std::string_view name, Labels labels, double value) {
    begin_sample(name, labels);
    out_ += format_value(value);
    out_ += '\n';
}

void MetricsText::sample(std::string_view name, Labels labels, uint64_t value) {
    begin_sample(name, labels);
    fmt::format_to(std::back_inserter(out_), "{}\n", value);
}

void MetricsText::sample(std::string_view name, Labels labels, int64_t value) {
    begin_sample(name, labels);
    fmt::format_to(std::back_inserter(out_), "{}\n", value);
}

void MetricsText::histogram(std::string_view name, Labels labels, std::span<const double> bounds,
                            std::span<const uint64_t> counts, double sum) {
    uint64_t cumulative = 0;
    for (std::size_t i = 0; i <= bounds.size() && i < counts.size(); ++i) {
        cumulative += counts[i];
        std::string le = i < bounds.size() ? format_value(bounds[i]) : "+Inf";
        Label extra{"le", le};
        begin_sample(name, labels, "_bucket", &extra);
        fmt::format_to(std::back_inserter(out_), "{}\n", cumulative);
    }
    begin_sample(name, labels, "_sum");
    out_ += format_value(sum);
    out_ += '\n';
    begin_sample(name, labels, "_count");
    fmt::format_to(std::back_inserter(out_), "{}\n", cumulative);
}

}  // namespace narwhal::server
