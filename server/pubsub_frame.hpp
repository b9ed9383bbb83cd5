// The worker bus's wire format (server/pubsub_bus.hpp): one publication per frame over a
// Unix stream socket between two workers of the same server, so a publication of any size
// arrives whole and one sender's publications arrive in the order it sent them.
//
//   u32 topic length | u32 data length | u8 flags | topic bytes | data bytes
//
// Lengths are little-endian (both ends run the same binary on the same machine, but an
// explicit order keeps the format the same for anyone who reads it). flags bit 0: text
// (else bytes); the other bits are 0. The frame says nothing else: who sent it is the
// connection it came on.
#pragma once

#include "asgi/pubsub.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace narwhal::server {

inline constexpr std::size_t pubsub_frame_header = 9;
// Lengths are 32-bit: a publication over 4 GiB - 1 cannot be framed (forward counts it
// lost). The limit also bounds what a corrupt length can make the reader buffer.
inline constexpr std::size_t pubsub_frame_max_part = UINT32_MAX;
inline constexpr uint8_t pubsub_frame_text = 0x01;

// The header of `p`'s frame (its topic and data follow it, written from the publication
// itself: a large message is not copied to be sent). False when its topic or data does
// not fit a 32-bit length.
bool encode_pubsub_header(const asgi::Publication& p, char (&out)[pubsub_frame_header]);
// The whole frame, in one string; empty when the header cannot be made.
std::string encode_pubsub_frame(const asgi::Publication& p);

// A stream that is not the format (a flags bit that is not defined): the connection
// cannot be resynchronised and is closed.
class PubSubFrameError : public std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Cuts the byte stream of one connection into publications. Read into prepare()'s span,
// commit() what arrived, then take next() until it returns null. The buffer grows to
// the largest frame seen and is compacted as frames are taken.
class PubSubFrameReader {
public:
    // Room for at least `n` more bytes after those not taken yet.
    std::span<char> prepare(std::size_t n);
    void commit(std::size_t n) { end_ += n; }
    // The next whole publication, or null when its bytes have not all arrived. Throws
    // PubSubFrameError for bytes that are not a frame.
    asgi::PublicationPtr next();
    // Bytes received and not yet part of a publication taken.
    std::size_t buffered() const { return end_ - begin_; }

private:
    std::vector<char> buf_;
    std::size_t begin_ = 0;  // first byte not taken
    std::size_t end_ = 0;    // one past the last byte received
};

}  // namespace narwhal::server
