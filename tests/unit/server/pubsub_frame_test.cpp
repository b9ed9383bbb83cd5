#include "server/pubsub_frame.hpp"

#include "catch.hpp"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

using narwhal::asgi::Publication;
using narwhal::server::encode_pubsub_frame;
using narwhal::server::PubSubFrameError;
using narwhal::server::PubSubFrameReader;

namespace {

Publication make(std::string topic, std::string data, bool text) {
    return Publication{std::move(topic), std::move(data), text};
}

// Feeds `bytes` to the reader in pieces of `step` and collects what it cuts.
std::vector<Publication> read_all(PubSubFrameReader& reader, const std::string& bytes,
                                  std::size_t step) {
    std::vector<Publication> out;
    for (std::size_t at = 0; at < bytes.size(); at += step) {
        std::size_t n = std::min(step, bytes.size() - at);
        auto room = reader.prepare(n);
        REQUIRE(room.size() >= n);
        std::memcpy(room.data(), bytes.data() + at, n);
        reader.commit(n);
        while (auto p = reader.next())
            out.push_back(*p);
    }
    return out;
}

}  // namespace

TEST_CASE("pubsub frame: the header is the lengths, little-endian, then the flags",
          "[pubsub_frame]") {
    std::string frame = encode_pubsub_frame(make("ab", std::string(258, 'x'), false));
    REQUIRE(frame.size() == 9 + 2 + 258);
    const unsigned char expected[9] = {2, 0, 0, 0, 2, 1, 0, 0, 0};
    CHECK(std::memcmp(frame.data(), expected, 9) == 0);
    CHECK(frame.substr(9, 2) == "ab");
    CHECK(encode_pubsub_frame(make("t", "x", true))[8] == 1);
}

TEST_CASE("pubsub frame: publications come back whole, in order, however the bytes arrive",
          "[pubsub_frame]") {
    std::vector<Publication> sent{
        make("news", "hello", true), make("bin", std::string("\0\1\2", 3), false),
        make("", "", true), make("big", std::string(300000, 'b'), false), make("t", "", false)};
    std::string stream;
    for (const auto& p : sent)
        stream += encode_pubsub_frame(p);
    for (std::size_t step : {std::size_t{1}, std::size_t{7}, std::size_t{4096}, stream.size()}) {
        PubSubFrameReader reader;
        auto got = read_all(reader, stream, step);
        REQUIRE(got.size() == sent.size());
        for (std::size_t i = 0; i < sent.size(); ++i) {
            CHECK(got[i].topic == sent[i].topic);
            CHECK(got[i].data == sent[i].data);
            CHECK(got[i].text == sent[i].text);
        }
        CHECK(reader.buffered() == 0);
    }
}

TEST_CASE("pubsub frame: a partial frame waits for the rest", "[pubsub_frame]") {
    std::string frame = encode_pubsub_frame(make("topic", "data", true));
    PubSubFrameReader reader;
    auto got = read_all(reader, frame.substr(0, frame.size() - 1), 3);
    CHECK(got.empty());
    CHECK(reader.buffered() == frame.size() - 1);
    got = read_all(reader, frame.substr(frame.size() - 1), 1);
    REQUIRE(got.size() == 1);
    CHECK(got[0].data == "data");
}

TEST_CASE("pubsub frame: undefined flags are an error", "[pubsub_frame]") {
    std::string frame = encode_pubsub_frame(make("t", "d", true));
    frame[8] = static_cast<char>(0x81);
    PubSubFrameReader reader;
    CHECK_THROWS_AS(read_all(reader, frame, frame.size()), PubSubFrameError);
}
