#include "server/metrics.hpp"

#include "server/metrics_exposition.hpp"

#include "catch.hpp"

#include <memory>
#include <string>

using narwhal::server::method_class;
using narwhal::server::MethodClass;
using narwhal::server::Metrics;
using narwhal::server::MetricsSample;
using narwhal::server::render_metrics;
using narwhal::server::status_class;

TEST_CASE("methods fall into their class; anything else is other") {
    CHECK(method_class("GET") == MethodClass::get);
    CHECK(method_class("HEAD") == MethodClass::head);
    CHECK(method_class("POST") == MethodClass::post);
    CHECK(method_class("PUT") == MethodClass::put);
    CHECK(method_class("DELETE") == MethodClass::delete_);
    CHECK(method_class("PATCH") == MethodClass::patch);
    CHECK(method_class("OPTIONS") == MethodClass::options);
    CHECK(method_class("get") == MethodClass::other);  // methods are case-sensitive
    CHECK(method_class("PROPFIND") == MethodClass::other);
    CHECK(method_class("") == MethodClass::other);
}

TEST_CASE("status classes clamp to 1xx..5xx") {
    CHECK(status_class(101) == 0);
    CHECK(status_class(200) == 1);
    CHECK(status_class(404) == 3);
    CHECK(status_class(599) == 4);
    CHECK(status_class(0) == 0);
    CHECK(status_class(999) == 4);
}

TEST_CASE("a request lands in its bucket; bounds are inclusive") {
    auto m = std::make_unique<Metrics>();
    m->observe_request(MethodClass::get, 200, 1'000'000, 0, 10, 20);      // exactly 1 ms
    m->observe_request(MethodClass::post, 503, 20'000'000'000, 0, 0, 0);  // above 10 s
    CHECK(m->requests[0][1].load() == 1);
    CHECK(m->requests[2][4].load() == 1);
    CHECK(m->duration.counts[1].load() == 1);  // le 0.001
    CHECK(m->duration.counts[narwhal::server::RequestHistogram::bounds].load() == 1);
    CHECK(m->queue_wait.counts[0].load() == 2);
    CHECK(m->request_body_bytes.load() == 10);
    CHECK(m->response_body_bytes.load() == 20);
    CHECK(m->duration.sum_ns.load() == 20'001'000'000);
}

TEST_CASE("retiring a block keeps its counters and histograms, not its gauges") {
    auto worker = std::make_unique<Metrics>();
    auto retired = std::make_unique<Metrics>();
    worker->observe_request(MethodClass::get, 200, 1000, 0, 0, 5);
    worker->ws_open.store(3);
    worker->ws_messages_in.store(7);
    worker->observe_lag(1, 2'000'000);
    worker->add_to(*retired, false);
    worker->add_to(*retired, false);
    CHECK(retired->requests[0][1].load() == 2);
    CHECK(retired->response_body_bytes.load() == 10);
    CHECK(retired->ws_messages_in.load() == 14);
    CHECK(retired->ws_open.load() == 0);
    CHECK(retired->loop_lag[1].counts[1].load() == 2);  // le 0.0025
    worker->reset();
    CHECK(worker->requests[0][1].load() == 0);
    CHECK(worker->ws_open.load() == 0);
    CHECK(worker->duration.sum_ns.load() == 0);
}

TEST_CASE("the exposition names every family once, with its labels") {
    auto m = std::make_unique<Metrics>();
    m->observe_request(MethodClass::delete_, 404, 1000, 0, 0, 0);
    MetricsSample sample;
    sample.metrics = m.get();
    sample.counters.shed = 2;
    sample.interpreters = 2;
    std::string text = render_metrics(sample);
    CHECK(text.find("narwhal_http_requests_total{method=\"DELETE\",status=\"4xx\"} 1\n") !=
          std::string::npos);
    CHECK(text.find("narwhal_http_shed_total 2\n") != std::string::npos);
    CHECK(text.find("narwhal_event_loop_lag_seconds_count{interpreter=\"1\"} 0\n") !=
          std::string::npos);
    CHECK(text.find("narwhal_http_request_duration_seconds_count 1\n") != std::string::npos);
    CHECK(text.find("# TYPE narwhal_http_requests_total counter\n") != std::string::npos);
    CHECK(text.find("narwhal_worker_restarts_total") == std::string::npos);  // master only
    sample.master = true;
    sample.restarts.healthcheck = 1;
    text = render_metrics(sample);
    CHECK(text.find("narwhal_worker_restarts_total{cause=\"healthcheck\"} 1\n") !=
          std::string::npos);
}
