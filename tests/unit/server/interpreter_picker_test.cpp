#include "server/interpreter_picker.hpp"

#include "asgi/admission.hpp"
#include "asgi/inbox.hpp"
#include "server/server_context.hpp"

#include "catch.hpp"

#include <array>
#include <memory>
#include <vector>

using narwhal::server::InterpreterPicker;
using narwhal::server::least_loaded;
using narwhal::server::ServerContext;

namespace {
struct Holder final : narwhal::asgi::AdmissionWaiter {
    void admitted() override {}
};
}  // namespace

TEST_CASE("least_loaded: the smallest load wins wherever the turn is", "[interpreter_picker]") {
    std::array<std::size_t, 3> loads{4, 1, 3};
    for (std::size_t start = 0; start < 6; ++start)
        CHECK(least_loaded(loads, start) == 1);
}

TEST_CASE("least_loaded: among equal loads, the first at or after the turn",
          "[interpreter_picker]") {
    std::array<std::size_t, 4> loads{2, 0, 5, 0};
    CHECK(least_loaded(loads, 0) == 1);
    CHECK(least_loaded(loads, 1) == 1);
    CHECK(least_loaded(loads, 2) == 3);
    CHECK(least_loaded(loads, 3) == 3);
    CHECK(least_loaded(loads, 4) == 1);  // wraps
}

TEST_CASE("picker: idle interpreters take new connections in turn", "[interpreter_picker]") {
    InterpreterPicker picker;
    std::array<std::size_t, 3> idle{0, 0, 0};
    std::vector<std::size_t> picks;
    for (int i = 0; i < 6; ++i)
        picks.push_back(picker.pick(idle));
    CHECK(picks == std::vector<std::size_t>{0, 1, 2, 0, 1, 2});
}

TEST_CASE("picker: a busy interpreter is passed over until the others are as busy",
          "[interpreter_picker]") {
    InterpreterPicker picker;
    std::array<std::size_t, 2> loads{0, 0};
    CHECK(picker.pick(loads) == 0);
    loads = {1, 0};  // interpreter 0 is stuck on its request
    CHECK(picker.pick(loads) == 1);
    CHECK(picker.pick(loads) == 1);
    loads = {1, 1};
    CHECK(picker.pick(loads) == 0);  // equal again: in turn, after 1
}

TEST_CASE("assign_lane: one interpreter always, several by their admissions' load",
          "[interpreter_picker]") {
    narwhal::asgi::Inbox inbox0(8), inbox1(8);
    narwhal::asgi::Admission admission0(0, 0), admission1(0, 0);
    ServerContext one;
    one.lanes = {{&inbox0, &admission0}};
    for (int i = 0; i < 3; ++i)
        CHECK(one.assign_lane().inbox == &inbox0);

    ServerContext two;
    two.lanes = {{&inbox0, &admission0}, {&inbox1, &admission1}};
    CHECK(two.assign_lane().inbox == &inbox0);
    CHECK(two.assign_lane().inbox == &inbox1);
    // A request in flight on interpreter 0: new connections go to 1 until 1 is as busy.
    auto holder = std::make_shared<Holder>();
    REQUIRE(admission0.acquire(holder) == narwhal::asgi::Admission::Result::admitted);
    CHECK(two.assign_lane().inbox == &inbox1);
    CHECK(two.assign_lane().inbox == &inbox1);
    CHECK(two.assign_lane().admission == &admission1);
    admission0.release();
}
