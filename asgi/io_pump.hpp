// The network side's events, for an interpreter thread that runs them itself
// (--io-threads 0): its event loop watches `fd` and, when it is readable, calls
// `pump(target)`, which runs what is ready without waiting.
#pragma once

namespace narwhal::asgi {

struct IoPump {
    int fd = -1;  // -1: none, the network side has threads of its own
    void (*pump)(void* target) = nullptr;
    void* target = nullptr;
};

}  // namespace narwhal::asgi
