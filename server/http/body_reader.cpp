#include "server/http/body_reader.hpp"

#include "asgi/http_syntax.hpp"

#include <algorithm>

namespace narwhal::server::http {

namespace {
// A chunk-size line with extensions, or one trailer line: far above anything real,
// small enough that a client cannot make us scan without bound.
constexpr std::size_t max_line = 4096;
constexpr std::size_t max_trailers = 16384;

using asgi::syntax::hex_value;
using asgi::syntax::is_field_value_char;
using asgi::syntax::is_tchar;

bool ws(char c) { return c == ' ' || c == '\t'; }

bool qdtext(unsigned char c) {
    return c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5b) ||
           (c >= 0x5d && c <= 0x7e) || c >= 0x80;
}
}  // namespace

// chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )
bool BodyReader::ext_step(char ch) {
    auto c = static_cast<unsigned char>(ch);
    switch (ext_) {
    case Ext::after_size:
    case Ext::after_name:
    case Ext::after_value:
        if (ws(ch))
            return true;
        if (ch == ';') {
            ext_ = Ext::name_start;
            return true;
        }
        if (ch == '=' && ext_ == Ext::after_name) {
            ext_ = Ext::value_start;
            return true;
        }
        return false;
    case Ext::name_start:
        if (ws(ch))
            return true;
        if (!is_tchar(c))
            return false;
        ext_ = Ext::name;
        return true;
    case Ext::name:
        if (is_tchar(c))
            return true;
        ext_ = Ext::after_name;
        return ext_step(ch);
    case Ext::value_start:
        if (ws(ch))
            return true;
        if (ch == '"') {
            ext_ = Ext::quoted;
            return true;
        }
        if (!is_tchar(c))
            return false;
        ext_ = Ext::value;
        return true;
    case Ext::value:
        if (is_tchar(c))
            return true;
        ext_ = Ext::after_value;
        return ext_step(ch);
    case Ext::quoted:
        if (ch == '"') {
            ext_ = Ext::after_value;
            return true;
        }
        if (ch == '\\') {
            ext_ = Ext::escape;
            return true;
        }
        return qdtext(c);
    case Ext::escape:
        // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
        ext_ = Ext::quoted;
        return c == '\t' || c == ' ' || (c >= 0x21 && c != 0x7f);
    }
    return false;
}

void BodyReader::reset_length(uint64_t length, uint64_t limit) {
    *this = BodyReader();
    remaining_ = length;
    limit_ = limit;
    done_ = length == 0;
}

void BodyReader::reset_chunked(uint64_t limit) {
    *this = BodyReader();
    chunked_ = true;
    limit_ = limit;
}

BodyReader::Status BodyReader::feed(std::string_view in, std::size_t& credit, std::string& out,
                                    std::size_t& consumed) {
    consumed = 0;
    if (done_)
        return Status::done;
    if (!chunked_) {
        std::size_t n =
            static_cast<std::size_t>(std::min<uint64_t>({remaining_, in.size(), credit}));
        out.append(in.data(), n);
        credit -= n;
        remaining_ -= n;
        consumed = n;
        if (remaining_ == 0) {
            done_ = true;
            return Status::done;
        }
        return credit == 0 ? Status::paused : Status::need_more;
    }

    std::size_t i = 0;
    while (i < in.size()) {
        char c = in[i];
        switch (state_) {
        case State::size: {
            int d = hex_value(c);
            if (d >= 0) {
                if (++size_digits_ > 15)
                    return fail("chunk size too large");
                remaining_ = remaining_ * 16 + static_cast<uint64_t>(d);
                ++i;
                break;
            }
            if (size_digits_ == 0)
                return fail("invalid chunk size");
            state_ = State::size_ext;
            ext_ = Ext::after_size;
            line_bytes_ = static_cast<std::size_t>(size_digits_);
            break;  // re-examine c as part of the extension / line end
        }
        case State::size_ext:
            if (++line_bytes_ > max_line)
                return fail("chunk line too long");
            if (c == '\r' && ext_ != Ext::quoted && ext_ != Ext::escape) {
                // The line may end after the size, a name or a value, never mid-way.
                if (ext_ == Ext::name_start || ext_ == Ext::value_start)
                    return fail("invalid chunk extension");
                state_ = State::size_lf;
                ++i;
                break;
            }
            if (!ext_step(c))
                return fail("invalid chunk extension");
            ++i;
            break;
        case State::size_lf:
            if (c != '\n')
                return fail("bare CR in chunk line");
            ++i;
            size_digits_ = 0;
            if (remaining_ == 0) {
                state_ = State::trailer;
                line_bytes_ = 0;
                trailer_line_empty_ = true;
            } else {
                total_ += remaining_;
                if (total_ > limit_)
                    return Status::too_large;
                state_ = State::data;
            }
            break;
        case State::data: {
            if (credit == 0) {
                consumed = i;
                return Status::paused;
            }
            std::size_t n =
                static_cast<std::size_t>(std::min<uint64_t>({remaining_, in.size() - i, credit}));
            out.append(in.data() + i, n);
            credit -= n;
            remaining_ -= n;
            i += n;
            if (remaining_ == 0)
                state_ = State::data_cr;
            break;
        }
        case State::data_cr:
            if (c != '\r')
                return fail("chunk data longer than its size");
            state_ = State::data_lf;
            ++i;
            break;
        case State::data_lf:
            if (c != '\n')
                return fail("bare CR after chunk data");
            state_ = State::size;
            remaining_ = 0;
            ++i;
            break;
        case State::trailer: {
            // field-line = field-name ":" OWS field-value OWS, as in the head.
            if (++trailer_bytes_ > max_trailers || ++line_bytes_ > max_line)
                return fail("trailers too large");
            auto u = static_cast<unsigned char>(c);
            if (c == '\r') {
                if (!trailer_line_empty_ && !trailer_in_value_)
                    return fail("invalid trailer");
                state_ = State::trailer_lf;
            } else if (trailer_in_value_) {
                if (!is_field_value_char(u))
                    return fail("invalid trailer");
            } else if (c == ':' && !trailer_line_empty_) {
                trailer_in_value_ = true;
            } else if (is_tchar(u)) {
                trailer_line_empty_ = false;
            } else {
                return fail("invalid trailer");
            }
            ++i;
            break;
        }
        case State::trailer_lf:
            if (c != '\n')
                return fail("bare CR in trailer");
            ++i;
            if (trailer_line_empty_) {
                state_ = State::done;
                done_ = true;
                consumed = i;
                return Status::done;
            }
            state_ = State::trailer;
            trailer_line_empty_ = true;
            trailer_in_value_ = false;
            line_bytes_ = 0;
            break;
        case State::done: consumed = i; return Status::done;
        }
    }
    consumed = i;
    return Status::need_more;
}

}  // namespace narwhal::server::http
