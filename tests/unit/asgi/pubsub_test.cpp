#include "asgi/pubsub.hpp"

#include "catch.hpp"

using narwhal::asgi::check_pubsub_message;
using narwhal::asgi::WebSocketState;

TEST_CASE("pubsub messages: publish anywhere, subscribe on an open socket only") {
    CHECK_FALSE(check_pubsub_message("narwhal.pubsub.publish", nullptr));
    CHECK(check_pubsub_message("narwhal.pubsub.subscribe", nullptr));
    CHECK(check_pubsub_message("narwhal.pubsub.unsubscribe", nullptr));
    CHECK(check_pubsub_message("narwhal.pubsub.shout", nullptr)->find("Unknown") == 0);

    WebSocketState ws;
    CHECK(check_pubsub_message("narwhal.pubsub.subscribe", &ws));  // before accept
    CHECK(check_pubsub_message("narwhal.pubsub.unsubscribe", &ws));
    CHECK(check_pubsub_message("narwhal.pubsub.publish", &ws)->find("needs 'websocket.accept'") !=
          std::string::npos);
    REQUIRE_FALSE(ws.on_send("websocket.accept"));
    CHECK_FALSE(check_pubsub_message("narwhal.pubsub.publish", &ws));
    CHECK_FALSE(check_pubsub_message("narwhal.pubsub.subscribe", &ws));
    CHECK_FALSE(check_pubsub_message("narwhal.pubsub.unsubscribe", &ws));
    REQUIRE_FALSE(ws.on_send("websocket.close"));
    // Closed: subscribing is an error, leaving is a no-op, publishing still works.
    CHECK(check_pubsub_message("narwhal.pubsub.subscribe", &ws)->find("open WebSocket") !=
          std::string::npos);
    CHECK_FALSE(check_pubsub_message("narwhal.pubsub.unsubscribe", &ws));
    CHECK_FALSE(check_pubsub_message("narwhal.pubsub.publish", &ws));

    WebSocketState refused;
    REQUIRE_FALSE(refused.on_send("websocket.close"));  // closed before accept: 403
    CHECK(check_pubsub_message("narwhal.pubsub.unsubscribe", &refused));
    CHECK(check_pubsub_message("narwhal.pubsub.publish", &refused));
}
