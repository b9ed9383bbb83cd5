#include "server/pubsub_frame.hpp"

#include <boost/endian/conversion.hpp>

#include <cstring>
#include <memory>

namespace narwhal::server {

namespace {

void put_u32(char* out, uint32_t v) {
    boost::endian::store_little_u32(reinterpret_cast<unsigned char*>(out), v);
}

uint32_t get_u32(const char* in) {
    return boost::endian::load_little_u32(reinterpret_cast<const unsigned char*>(in));
}

}  // namespace

bool encode_pubsub_header(const asgi::Publication& p, char (&out)[pubsub_frame_header]) {
    if (p.topic.size() > pubsub_frame_max_part || p.data.size() > pubsub_frame_max_part)
        return false;
    put_u32(out, static_cast<uint32_t>(p.topic.size()));
    put_u32(out + 4, static_cast<uint32_t>(p.data.size()));
    out[8] = static_cast<char>(p.text ? pubsub_frame_text : 0);
    return true;
}

std::string encode_pubsub_frame(const asgi::Publication& p) {
    char head[pubsub_frame_header];
    if (!encode_pubsub_header(p, head))
        return {};
    std::string out;
    out.resize(pubsub_frame_header + p.topic.size() + p.data.size());
    std::memcpy(out.data(), head, pubsub_frame_header);
    std::memcpy(out.data() + pubsub_frame_header, p.topic.data(), p.topic.size());
    std::memcpy(out.data() + pubsub_frame_header + p.topic.size(), p.data.data(), p.data.size());
    return out;
}

std::span<char> PubSubFrameReader::prepare(std::size_t n) {
    if (begin_ == end_) {
        begin_ = end_ = 0;
    } else if (begin_ > 0 && buf_.size() - end_ < n) {
        // Move the unread tail to the front before growing: the buffer stays as large as
        // the largest frame, not the whole stream.
        std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
        end_ -= begin_;
        begin_ = 0;
    }
    if (buf_.size() - end_ < n)
        buf_.resize(end_ + n);
    return {buf_.data() + end_, buf_.size() - end_};
}

asgi::PublicationPtr PubSubFrameReader::next() {
    std::size_t have = end_ - begin_;
    if (have < pubsub_frame_header)
        return nullptr;
    const char* head = buf_.data() + begin_;
    uint8_t flags = static_cast<uint8_t>(head[8]);
    if ((flags & ~pubsub_frame_text) != 0)
        throw PubSubFrameError("a worker bus frame with unknown flags");
    std::size_t topic = get_u32(head);
    std::size_t data = get_u32(head + 4);
    if (have - pubsub_frame_header < topic + data)
        return nullptr;
    auto p = std::make_shared<asgi::Publication>();
    const char* body = head + pubsub_frame_header;
    p->topic.assign(body, topic);
    p->data.assign(body + topic, data);
    p->text = (flags & pubsub_frame_text) != 0;
    begin_ += pubsub_frame_header + topic + data;
    return p;
}

}  // namespace narwhal::server
