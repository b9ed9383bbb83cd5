#include "server/metrics_text.hpp"

#include "catch.hpp"

#include <cmath>
#include <cstdint>
#include <limits>

using narwhal::server::escape_help;
using narwhal::server::escape_label_value;
using narwhal::server::format_value;
using narwhal::server::MetricsText;

TEST_CASE("label values escape backslash, double quote and line feed") {
    CHECK(escape_label_value("plain") == "plain");
    CHECK(escape_label_value("a\\b") == "a\\\\b");
    CHECK(escape_label_value("say \"hi\"") == "say \\\"hi\\\"");
    CHECK(escape_label_value("two\nlines") == "two\\nlines");
}

TEST_CASE("help text escapes backslash and line feed, not quotes") {
    CHECK(escape_help("a \"b\" c\\d\ne") == "a \"b\" c\\\\d\\ne");
}

TEST_CASE("values: integers without a fraction, infinities and NaN by name") {
    CHECK(format_value(1.0) == "1");
    CHECK(format_value(0.005) == "0.005");
    CHECK(format_value(std::numeric_limits<double>::infinity()) == "+Inf");
    CHECK(format_value(-std::numeric_limits<double>::infinity()) == "-Inf");
    CHECK(format_value(std::nan("")) == "NaN");
}

TEST_CASE("a family has HELP and TYPE lines before its samples") {
    MetricsText out;
    out.family("narwhal_x_total", "counter", "Things\ncounted.");
    out.sample("narwhal_x_total", {}, uint64_t{3});
    out.sample("narwhal_x_total", {{"method", "GET"}, {"path", "a\"b"}}, uint64_t{4});
    CHECK(out.text() == "# HELP narwhal_x_total Things\\ncounted.\n"
                        "# TYPE narwhal_x_total counter\n"
                        "narwhal_x_total 3\n"
                        "narwhal_x_total{method=\"GET\",path=\"a\\\"b\"} 4\n");
}

TEST_CASE("a histogram's buckets are cumulative and end with le=\"+Inf\", then _sum and _count") {
    MetricsText out;
    const double bounds[] = {0.1, 1};
    const uint64_t counts[] = {2, 3, 1};  // per bucket: <= 0.1, <= 1, above
    out.histogram("h_seconds", {{"interpreter", "0"}}, bounds, counts, 4.5);
    CHECK(out.text() == "h_seconds_bucket{interpreter=\"0\",le=\"0.1\"} 2\n"
                        "h_seconds_bucket{interpreter=\"0\",le=\"1\"} 5\n"
                        "h_seconds_bucket{interpreter=\"0\",le=\"+Inf\"} 6\n"
                        "h_seconds_sum{interpreter=\"0\"} 4.5\n"
                        "h_seconds_count{interpreter=\"0\"} 6\n");
}

TEST_CASE("a histogram without labels has only le on its buckets") {
    MetricsText out;
    const double bounds[] = {0.5};
    const uint64_t counts[] = {0, 0};
    out.histogram("h", {}, bounds, counts, 0);
    CHECK(out.text() == "h_bucket{le=\"0.5\"} 0\nh_bucket{le=\"+Inf\"} 0\nh_sum 0\nh_count 0\n");
}
