#include "server/pubsub_redis_envelope.hpp"

#include "catch.hpp"

using namespace narwhal;
using namespace narwhal::server::redis_envelope;
using Kind = Decoded::Kind;

TEST_CASE("an envelope carries the data, its type and its origin", "[server][pubsub_redis]") {
    for (bool text : {true, false}) {
        asgi::Publication p{"news", std::string("hello\0world", 11), text};
        std::string wire = encode(p, 0x0102030405060708ull);
        REQUIRE(wire.size() == header_size + p.data.size());
        CHECK(wire[0] == '\0');  // what tells a foreign message from ours
        Decoded d = decode(wire);
        CHECK(d.kind == Kind::envelope);
        CHECK(d.text == text);
        CHECK(d.origin == 0x0102030405060708ull);
        CHECK(d.data == p.data);
    }
    // The byte order is fixed, so servers on any host agree on an origin.
    std::string wire = encode({"t", "", true}, 0x0102030405060708ull);
    CHECK(wire.substr(6, 8) == std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
    CHECK(decode(wire).data.empty());
}

TEST_CASE("a message without the envelope is text when it is UTF-8", "[server][pubsub_redis]") {
    Decoded d = decode("hello");
    CHECK(d.kind == Kind::plain);
    CHECK(d.text);
    CHECK(d.data == "hello");
    d = decode("caf\xc3\xa9");
    CHECK(d.text);
    d = decode(std::string_view("\xff\x00\x01", 3));
    CHECK(d.kind == Kind::plain);
    CHECK_FALSE(d.text);
    CHECK(d.data.size() == 3);
    d = decode("");
    CHECK(d.kind == Kind::plain);
    CHECK(d.text);
    // A NUL first but not our magic: someone else's binary message.
    d = decode(std::string_view("\0NWX....", 8));
    CHECK(d.kind == Kind::plain);
}

TEST_CASE("our magic with an unknown version or a cut header is not delivered",
          "[server][pubsub_redis]") {
    std::string wire = encode({"t", "data", true}, 7);
    std::string future = wire;
    future[4] = 2;
    CHECK(decode(future).kind == Kind::unknown);
    CHECK(decode(wire.substr(0, header_size - 1)).kind == Kind::unknown);
    // Reserved flag bits are ignored.
    std::string flagged = wire;
    flagged[5] = static_cast<char>(0x81);
    CHECK(decode(flagged).kind == Kind::envelope);
    CHECK(decode(flagged).text);
}

TEST_CASE("strict UTF-8", "[server][pubsub_redis]") {
    CHECK(valid_utf8(""));
    CHECK(valid_utf8("ascii"));
    CHECK(valid_utf8("\xe2\x82\xac"));            // U+20AC
    CHECK(valid_utf8("\xf0\x9f\x90\xb3"));        // U+1F433
    CHECK(valid_utf8("\xf4\x8f\xbf\xbf"));        // U+10FFFF
    CHECK_FALSE(valid_utf8("\xc0\xaf"));          // overlong '/'
    CHECK_FALSE(valid_utf8("\xe0\x80\xaf"));      // overlong
    CHECK_FALSE(valid_utf8("\xed\xa0\x80"));      // a surrogate
    CHECK_FALSE(valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
    CHECK_FALSE(valid_utf8("\xe2\x82"));          // cut short
    CHECK_FALSE(valid_utf8("\x80"));              // a continuation first
    CHECK_FALSE(valid_utf8("\xf8\x88\x80\x80\x80"));
}

TEST_CASE("origins are drawn at random", "[server][pubsub_redis]") {
    // Two draws equal by chance: 1 in 2^64.
    CHECK(random_origin() != random_origin());
}
