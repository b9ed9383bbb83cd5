// What every connection of a worker shares: limits and response defaults derived once
// from the settings, the interpreter's inbox, and the worker-wide draining flag.
#pragma once

#include "asgi/inbox.hpp"
#include "server/http/head_scanner.hpp"
#include "server/http/response_head.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>

namespace narwhal::server {

struct SessionLimits {
    http::HeadLimits head;
    uint64_t body_limit = 0;
    std::size_t read_window = 0;
    std::size_t send_high_water = 0;
    std::size_t send_low_water = 0;
    std::chrono::milliseconds keep_alive{5000};
};

struct ServerContext {
    SessionLimits limits;
    http::ResponseDefaults defaults;
    asgi::Inbox* inbox = nullptr;
    std::atomic<bool> draining{false};
    std::atomic<uint64_t> next_request_id{0};
};

}  // namespace narwhal::server
