// One HTTP request as the application sees it: the native `receive` and `send`
// callables. Both await themselves when the answer is already known (no future, no
// allocation); only a real wait parks an asyncio future that the bridge resolves.
#pragma once

#include "asgi/channel.hpp"
#include "asgi/response_state.hpp"
#include "asgi/ws_state.hpp"
#include "python/cancel_scope.hpp"
#include "python/py_ref.hpp"

#include <Python.h>

#include <deque>
#include <memory>
#include <string>

namespace narwhal::python {

class Bridge;

// The C++ state of a request, embedded in the `receive` object.
struct CycleState {
    Bridge* bridge = nullptr;
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
    bool start_flush_scheduled = false;
    asgi::Command held_start;
    Ref receive_waiter;  // future awaited by receive(), if any
    Ref send_waiter;     // future awaited by send() under backpressure, if any
    Ref task;
    Ref pending;  // receive(): the message its fast-path await returns
    std::string request_line;  // "GET /path HTTP/1.1" for logs
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
    // Intrusive list of running cycles (for shutdown).
    struct CycleObject* prev = nullptr;
    struct CycleObject* next = nullptr;
};

struct CycleObject {
    PyObject_HEAD
    CycleState* s;
};

struct SendObject {
    PyObject_HEAD
    CycleObject* cycle;  // strong reference
    bool has_pending;    // a fast-path await is due (its value is None)
};

// Type objects; ready_types() must run once after the interpreter starts.
bool ready_types();
CycleObject* new_cycle(Bridge* bridge, std::shared_ptr<asgi::Channel> channel);
PyObject* new_send(CycleObject* cycle);

// Bridge -> cycle events (GIL held).
void cycle_on_body(CycleObject* c, std::string&& body, bool more);
void cycle_on_disconnect(CycleObject* c);
void cycle_on_drained(CycleObject* c);
void cycle_flush_start(CycleObject* c);
void cycle_on_ws_message(CycleObject* c, std::string&& data, bool text);
void cycle_on_ws_closed(CycleObject* c, int code);
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
