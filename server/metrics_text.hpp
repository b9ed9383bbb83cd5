// The Prometheus text exposition format (version 0.0.4), written by hand: HELP and TYPE
// lines, samples with escaped label values, histograms as cumulative _bucket lines (the
// last with le="+Inf") plus _sum and _count. The format is a few rules; a library
// (prometheus-cpp) would bring its own registry, locks and HTTP server, none of which
// fits counters that live in shared memory and are summed over processes at scrape time.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace narwhal::server {

inline constexpr std::string_view metrics_content_type = "text/plain; version=0.0.4; charset=utf-8";

class MetricsText {
public:
    using Label = std::pair<std::string_view, std::string_view>;
    using Labels = std::initializer_list<Label>;

    // Starts a metric family: its HELP and TYPE lines. `type`: counter, gauge, histogram.
    void family(std::string_view name, std::string_view type, std::string_view help);
    void sample(std::string_view name, Labels labels, double value);
    void sample(std::string_view name, Labels labels, uint64_t value);
    void sample(std::string_view name, Labels labels, int64_t value);
    // A histogram's samples: `counts` per bucket, not cumulative, one more than `bounds`
    // (the last is above the largest bound); `sum` in the histogram's unit.
    void histogram(std::string_view name, Labels labels, std::span<const double> bounds,
                   std::span<const uint64_t> counts, double sum);

    const std::string& text() const { return out_; }
    std::string take() { return std::move(out_); }

private:
    void begin_sample(std::string_view name, Labels labels, std::string_view suffix = {},
                      const Label* extra = nullptr);
    std::string out_;
};

// A label value's escapes: backslash, double quote and line feed.
std::string escape_label_value(std::string_view value);
// A HELP text's escapes: backslash and line feed.
std::string escape_help(std::string_view text);
// A sample value: integers without a fraction, +Inf, -Inf and NaN by their names.
std::string format_value(double value);

}  // namespace narwhal::server
