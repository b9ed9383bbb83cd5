// One request as the application sees it: the native `receive` callable (narwhal.Receive,
// which carries the request's C++ state) and `send` (narwhal.Send). This is the cycle's
// core: its state, the two types, their lifetime, and how a request ends (finish,
// complete, settle, fail, abandon). What receive/send do per protocol lives in
// http_cycle.* and ws_cycle.*; their await protocol in awaitable.*.
#pragma once

#include "asgi/channel.hpp"
#include "asgi/response_state.hpp"
#include "asgi/ws_state.hpp"
#include "python/awaitable.hpp"
#include "python/cancel_scope.hpp"
#include "python/loop_services.hpp"
#include "python/native_module.hpp"
#include "python/py_ref.hpp"

#include <Python.h>

#include <deque>
#include <memory>
#include <string>
#include <vector>

namespace narwhal::python {

// A send() waiting under backpressure (CycleState::parked_sends).
struct ParkedSend {
    Ref waiter;             // the future the sender awaits
    asgi::Command message;  // held until the connection accepts it (all but the first)
    std::size_t bytes = 0;  // what it counts against the water marks
    bool may_wait = false;  // false: its sender never waits for a drain (see cycle_send)
};

// The C++ state of a request, owned by its `receive` object.
struct CycleState {
    LoopServices* services = nullptr;  // nullptr once the services are gone (after serving)
    std::shared_ptr<asgi::Channel> channel;
    asgi::ResponseState response;
    std::deque<std::string> body_queue;
    bool body_complete = false;    // the last body chunk has arrived from the connection
    bool final_delivered = false;  // receive() has returned more_body=False
    bool disconnected = false;
    bool expect_continue = false;
    bool credit_requested = false;
    bool finished = false;  // the task is done and the channel detached
    // A start message held back so it leaves with the first body in one command.
    bool start_held = false;
    asgi::Command held_start;
    Ref receive_waiter;  // future awaited by receive(), if any
    // send() calls waiting for the connection to drain, in call order (several tasks may
    // send on one connection). The first one's message is out and it waits for the
    // `drained` event; the others' messages wait here, so the connection gets them in
    // call order and never holds more than one message over the high-water mark.
    // Allocated by the first wait: a request that never waits pays one null pointer.
    std::unique_ptr<std::vector<ParkedSend>> parked_sends;
    bool sends_parked() const { return parked_sends && !parked_sends->empty(); }
    Ref task;
    // "GET /path HTTP/1.1" for logs, followed by the request's --request-id-header value
    // (one allocation for both: this is made for every request).
    std::string request_text;
    std::size_t line_size = 0;
    std::string_view request_line() const {
        return std::string_view(request_text).substr(0, line_size);
    }
    std::string_view request_id() const { return std::string_view(request_text).substr(line_size); }
    // How reports name the request: "id 17, request id abc".
    std::string label() const;
    // Cancel scope (cancel_scope.hpp).
    bool cancel_armed = false;
    int cancel_attempts = 0;
    CancelReason cancel_reason = CancelReason::disconnect;
    bool spawned_tasks = false;  // the app created tasks during this request
    // WebSocket scope only.
    bool websocket = false;
    asgi::WebSocketState ws;
    std::deque<std::pair<std::string, bool>> ws_messages;  // (data, is_text)
    bool ws_connect_delivered = false;
    int ws_close_code = 0;  // the close code once the socket closed
    // Intrusive list of running cycles (LoopServices::track, for shutdown).
    struct CycleObject* prev = nullptr;
    struct CycleObject* next = nullptr;
    // Intrusive list of every cycle (LoopServices::adopt).
    struct CycleObject* all_prev = nullptr;
    struct CycleObject* all_next = nullptr;
};

// narwhal.Receive. GC-tracked: the cycle holds its task and futures, which (through the
// task's step and the app's frames) hold the cycle.
struct CycleObject {
    AwaitableObject base;  // `pending`: the message a fast-path await returns
    CycleState* s;
};

// narwhal.Send. Its fast-path await completes with None.
struct SendObject {
    AwaitableObject base;
    CycleObject* cycle;  // strong reference
};

// What a call into a cycle raises once its services are gone (CycleState::services).
inline PyObject* stopped() { return raise(PyExc_RuntimeError, "the server has stopped serving"); }

// Creates narwhal.Receive and narwhal.Send for `module` into `st`. -1 with an error set.
int add_cycle_types(PyObject* module, NativeState& st);
// New references, or nullptr with an error set.
CycleObject* new_cycle(LoopServices& services, std::shared_ptr<asgi::Channel> channel);
PyObject* new_send(CycleObject* cycle);

// --- send() and backpressure ---------------------------------------------------------
// Inline: every response passes here, and the unparked path must stay as cheap as a
// direct submit.

// Hands `message` to the connection and counts `bytes` against the water marks. true:
// the sender must wait for the `drained` event.
inline bool submit_counted(CycleState& s, asgi::Command&& message, std::size_t bytes,
                           bool may_wait) {
    if (!s.channel)
        return false;
    bool over = false;
    if (bytes || may_wait) {
        const LoopConfig& cfg = s.services->config();
        over = s.channel->add_outbound(bytes, cfg.send_high_water, cfg.send_low_water);
        if (over && !may_wait)
            s.channel->cancel_wait();  // nobody waits for the drain
    }
    s.channel->submit(std::move(message));
    return over && may_wait;
}

// Queue a sender in CycleState::parked_sends: behind the parked ones with its message
// held, or as the first one, whose message is out. Its future, or nullptr with an error set.
PyObject* park_send_behind(CycleState& s, asgi::Command&& message, std::size_t bytes,
                           bool may_wait);
PyObject* park_send_first(CycleState& s);

// Hands a checked send() message to the connection in call order and returns what the
// sender awaits: `so` itself (done) or a future that completes once the message is
// accepted under the water marks. `bytes` count against the marks; `may_wait` is false
// for a message whose sender never waits for the drain: the last one of a response
// (waiting would only delay the app) or one that carries no data.
inline PyObject* cycle_send(SendObject* so, asgi::Command&& message, std::size_t bytes,
                            bool may_wait) {
    CycleState& s = *so->cycle->s;
    if (s.sends_parked())  // behind the parked senders, so the order holds
        return park_send_behind(s, std::move(message), bytes, may_wait);
    if (submit_counted(s, std::move(message), bytes, may_wait) && !s.disconnected)
        return park_send_first(s);  // its message is out; it waits for the drain
    return ready_none(reinterpret_cast<PyObject*>(so));
}

// Dispatcher -> cycle events for both protocols (GIL held). The protocol-specific ones
// are in http_cycle.hpp and ws_cycle.hpp.
void cycle_on_disconnect(CycleObject* c);
void cycle_on_drained(CycleObject* c);
void cycle_flush_start(CycleObject* c);
// The app finished: returned (exc null), raised `exc`, or was cancelled. Answers the
// client if the app did not (500, or a closed connection) and ends the cycle.
void cycle_complete(CycleObject* c, PyObject* exc, bool cancelled);
// Respond 500 (or abort if too late) and finish the cycle, for an app that failed
// before it produced a task.
void cycle_fail(CycleObject* c, PyObject* exc);
// Gives up on a request whose task ignores cancellation: the connection is closed and
// the cycle finished without waiting for the task.
void cycle_abandon(CycleObject* c);

}  // namespace narwhal::python
