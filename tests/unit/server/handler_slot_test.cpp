#include "server/handler_slot.hpp"

#include "catch.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <memory>

using narwhal::server::HandlerSlot;

TEST_CASE("handler slot: the same memory serves one allocation after another",
          "[server][handler_slot]") {
    HandlerSlot slot;
    void* a = slot.allocate(64);
    CHECK(slot.in_use());
    slot.deallocate(a);
    CHECK_FALSE(slot.in_use());
    void* b = slot.allocate(64);
    CHECK(b == a);
    slot.deallocate(b);
}

TEST_CASE("handler slot: a second allocation in flight, or a too large one, uses the heap",
          "[server][handler_slot]") {
    HandlerSlot slot;
    void* a = slot.allocate(64);
    void* b = slot.allocate(64);
    CHECK(b != a);
    slot.deallocate(b);
    CHECK(slot.in_use());  // freeing the heap block leaves the slot taken
    slot.deallocate(a);
    void* big = slot.allocate(4096);
    CHECK_FALSE(slot.in_use());
    slot.deallocate(big);
}

namespace {
struct Handler {
    HandlerSlot* slot;
    int* runs;
    bool* slot_was_free;
    using allocator_type = HandlerSlot::Allocator<void>;
    allocator_type get_allocator() const noexcept { return allocator_type(*slot); }
    // Asio frees the operation before the call, so the slot is free again here.
    void operator()() const {
        *slot_was_free = !slot->in_use();
        ++*runs;
    }
};
}  // namespace

TEST_CASE("handler slot: Asio places a posted handler's operation in the slot",
          "[server][handler_slot]") {
    HandlerSlot slot;
    boost::asio::io_context ioc;
    int runs = 0;
    bool slot_was_free = false;
    for (int i = 0; i < 3; ++i) {
        boost::asio::post(ioc, Handler{&slot, &runs, &slot_was_free});
        CHECK(slot.in_use());
        ioc.restart();
        ioc.run();
        CHECK(slot_was_free);
        CHECK_FALSE(slot.in_use());
    }
    CHECK(runs == 3);
}

TEST_CASE("handler slot: an operation never run is freed into the slot", "[server][handler_slot]") {
    HandlerSlot slot;
    {
        boost::asio::io_context ioc;
        int runs = 0;
        bool slot_was_free = false;
        boost::asio::post(ioc, Handler{&slot, &runs, &slot_was_free});
        CHECK(slot.in_use());
    }
    CHECK_FALSE(slot.in_use());
}
