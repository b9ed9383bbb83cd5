#include "server/http/body_reader.hpp"

#include "catch.hpp"

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

using namespace std::string_literals;
using narwhal::server::http::BodyReader;
using Status = BodyReader::Status;

namespace {

constexpr std::size_t unlimited_credit = std::numeric_limits<std::size_t>::max();
constexpr uint64_t big_limit = 1 << 20;

bool terminal(Status s) {
    return s == Status::done || s == Status::bad_request || s == Status::too_large;
}

struct Run {
    Status status = Status::need_more;
    std::string out;
    std::string rest;  // bytes not consumed (pipelined data after the body)
};

// Drives `reader` the way the session does: bytes arrive in `pieces`, the unconsumed
// tail of the buffer is fed again with the next piece.
Run run_pieces(BodyReader& reader, const std::vector<std::string_view>& pieces,
               std::size_t credit = unlimited_credit) {
    Run r;
    std::size_t next = 0;
    while (next < pieces.size()) {
        r.rest.append(pieces[next++]);
        std::size_t used = 12345;
        r.status = reader.feed(r.rest, credit, r.out, used);
        REQUIRE(used <= r.rest.size());
        r.rest.erase(0, used);
        if (terminal(r.status))
            break;
    }
    // Whatever had not been fed yet is still in the connection's buffer.
    while (next < pieces.size())
        r.rest.append(pieces[next++]);
    return r;
}

Run run_whole(BodyReader& reader, std::string_view in, std::size_t credit = unlimited_credit) {
    return run_pieces(reader, {in}, credit);
}

Run run_bytes(BodyReader& reader, std::string_view in) {
    std::vector<std::string_view> pieces;
    for (std::size_t i = 0; i < in.size(); ++i)
        pieces.push_back(in.substr(i, 1));
    return run_pieces(reader, pieces);
}

Run chunked(std::string_view in, uint64_t limit = big_limit) {
    BodyReader r;
    r.reset_chunked(limit);
    return run_whole(r, in);
}

Run chunked_bytes(std::string_view in, uint64_t limit = big_limit) {
    BodyReader r;
    r.reset_chunked(limit);
    return run_bytes(r, in);
}

// Accepted whole, byte by byte, and split in two, always with the same body.
void require_valid_chunked(std::string_view in, std::string_view body) {
    INFO("input: " << std::string(in));
    Run whole = chunked(in);
    REQUIRE(whole.status == Status::done);
    REQUIRE(whole.out == body);
    REQUIRE(whole.rest.empty());

    Run bytes = chunked_bytes(in);
    REQUIRE(bytes.status == Status::done);
    REQUIRE(bytes.out == body);
    REQUIRE(bytes.rest.empty());

    // Every boundary for short inputs; a stride keeps the long ones fast.
    const std::size_t stride = in.size() > 512 ? 61 : 1;
    for (std::size_t k = 1; k < in.size(); k += stride) {
        INFO("split at " << k);
        BodyReader r;
        r.reset_chunked(big_limit);
        Run split = run_pieces(r, {in.substr(0, k), in.substr(k)});
        REQUIRE(split.status == Status::done);
        REQUIRE(split.out == body);
        REQUIRE(r.done());
    }
}

// Rejected whole and byte by byte.
void require_bad_chunked(std::string_view in) {
    INFO("input: " << std::string(in));
    BodyReader whole;
    whole.reset_chunked(big_limit);
    CHECK(run_whole(whole, in).status == Status::bad_request);
    CHECK_FALSE(whole.done());
    CHECK(std::string_view(whole.reason()) != "");
    CHECK(chunked_bytes(in).status == Status::bad_request);
}

std::string reason_of(std::string_view in) {
    BodyReader r;
    r.reset_chunked(big_limit);
    REQUIRE(run_whole(r, in).status == Status::bad_request);
    return r.reason();
}

}  // namespace

// --- no body -------------------------------------------------------------------

TEST_CASE("body_reader: reset_none is done at once and consumes nothing", "[body_reader]") {
    BodyReader r;
    r.reset_chunked(10);
    REQUIRE_FALSE(r.done());
    r.reset_none();
    CHECK(r.done());
    std::size_t credit = 100, used = 99;
    std::string out = "keep";
    CHECK(r.feed("GET / HTTP/1.1\r\n", credit, out, used) == Status::done);
    CHECK(used == 0);
    CHECK(out == "keep");
    CHECK(credit == 100);
}

// --- Content-Length ------------------------------------------------------------

TEST_CASE("body_reader: Content-Length exact body", "[body_reader][content_length]") {
    BodyReader r;
    r.reset_length(5, big_limit);
    CHECK_FALSE(r.done());
    std::size_t credit = 100, used = 0;
    std::string out;
    CHECK(r.feed("hello", credit, out, used) == Status::done);
    CHECK(out == "hello");
    CHECK(used == 5);
    CHECK(credit == 95);
    CHECK(r.done());
    // Nothing more is read once done.
    CHECK(r.feed("more", credit, out, used) == Status::done);
    CHECK(used == 0);
    CHECK(out == "hello");
}

TEST_CASE("body_reader: Content-Length leaves pipelined bytes", "[body_reader][content_length]") {
    BodyReader r;
    r.reset_length(5, big_limit);
    std::size_t credit = 100, used = 0;
    std::string out;
    CHECK(r.feed("helloGET / HTTP/1.1\r\n\r\n", credit, out, used) == Status::done);
    CHECK(used == 5);
    CHECK(out == "hello");
}

TEST_CASE("body_reader: Content-Length 0 is done at once", "[body_reader][content_length]") {
    BodyReader r;
    r.reset_length(0, big_limit);
    CHECK(r.done());
    std::size_t credit = 10, used = 7;
    std::string out;
    CHECK(r.feed("abc", credit, out, used) == Status::done);
    CHECK(used == 0);
    CHECK(out.empty());
}

TEST_CASE("body_reader: Content-Length split at every byte boundary",
          "[body_reader][content_length]") {
    const std::string body = "The quick brown fox\r\n0\r\n\r\n jumps";
    const std::string in = body + "NEXT";
    for (std::size_t k = 0; k <= in.size(); ++k) {
        INFO("split at " << k);
        BodyReader r;
        r.reset_length(body.size(), big_limit);
        Run run =
            run_pieces(r, {std::string_view(in).substr(0, k), std::string_view(in).substr(k)});
        REQUIRE(run.status == Status::done);
        REQUIRE(run.out == body);
        REQUIRE(run.rest == "NEXT");
    }
    BodyReader r;
    r.reset_length(body.size(), big_limit);
    Run bytes = run_bytes(r, in);
    CHECK(bytes.status == Status::done);
    CHECK(bytes.out == body);
}

TEST_CASE("body_reader: Content-Length partial input needs more", "[body_reader][content_length]") {
    BodyReader r;
    r.reset_length(10, big_limit);
    std::size_t credit = 100, used = 0;
    std::string out;
    CHECK(r.feed("abc", credit, out, used) == Status::need_more);
    CHECK(used == 3);
    CHECK(r.feed("", credit, out, used) == Status::need_more);
    CHECK(used == 0);
    CHECK(r.feed("defghijklm", credit, out, used) == Status::done);
    CHECK(used == 7);
    CHECK(out == "abcdefghij");
}

TEST_CASE("body_reader: Content-Length credit pauses and resumes",
          "[body_reader][content_length]") {
    BodyReader r;
    r.reset_length(10, big_limit);
    const std::string in = "0123456789";
    std::string out;
    std::size_t used = 0;

    std::size_t credit = 0;
    CHECK(r.feed(in, credit, out, used) == Status::paused);
    CHECK(used == 0);
    CHECK(out.empty());

    credit = 4;
    CHECK(r.feed(in, credit, out, used) == Status::paused);
    CHECK(used == 4);
    CHECK(credit == 0);
    CHECK(out == "0123");

    credit = 3;
    CHECK(r.feed(std::string_view(in).substr(4), credit, out, used) == Status::paused);
    CHECK(used == 3);
    CHECK(out == "0123456");

    credit = 100;
    CHECK(r.feed(std::string_view(in).substr(7), credit, out, used) == Status::done);
    CHECK(used == 3);
    CHECK(credit == 97);
    CHECK(out == in);
}

// --- chunked: valid ------------------------------------------------------------

TEST_CASE("body_reader: chunked valid bodies, whole and byte by byte", "[body_reader][chunked]") {
    require_valid_chunked("0\r\n\r\n", "");
    require_valid_chunked("5\r\nhello\r\n0\r\n\r\n", "hello");
    require_valid_chunked("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world");
    require_valid_chunked("A\r\n0123456789\r\n0\r\n\r\n", "0123456789");
    require_valid_chunked("a\r\n0123456789\r\n1\r\n!\r\n0\r\n\r\n", "0123456789!");
    require_valid_chunked("000005\r\nhello\r\n0000\r\n\r\n", "hello");
    // 15 hex digits are allowed (with leading zeros).
    require_valid_chunked("000000000000003\r\nabc\r\n0\r\n\r\n", "abc");
    // Data may contain CR, LF and anything else.
    require_valid_chunked("4\r\n\r\n\r\n\r\n0\r\n\r\n", "\r\n\r\n");
    require_valid_chunked("3\r\n\0\xff\n\r\n0\r\n\r\n"s, "\0\xff\n"s);
    const std::string big(300, 'x');
    require_valid_chunked("12c\r\n" + big + "\r\n0\r\n\r\n", big);
}

TEST_CASE("body_reader: chunk extensions", "[body_reader][chunked]") {
    require_valid_chunked("5;a\r\nhello\r\n0\r\n\r\n", "hello");
    require_valid_chunked("5;a=b\r\nhello\r\n0\r\n\r\n", "hello");
    require_valid_chunked("5;a=\"q\"\r\nhello\r\n0\r\n\r\n", "hello");
    require_valid_chunked("5;a=\"x\\\"y\"\r\nhello\r\n0\r\n\r\n", "hello");
    require_valid_chunked("5;a=\"\"\r\nhello\r\n0\r\n\r\n", "hello");
    require_valid_chunked("5;a=\"sp ace;=\\\\ \t\x80\xff\"\r\nhello\r\n0\r\n\r\n", "hello");
    require_valid_chunked("5;a=b;c;d=\"e\"\r\nhello\r\n0\r\n\r\n", "hello");
    require_valid_chunked("5;!#$%&'*+-.^_`|~09azAZ=!#$%&'*+-.^_`|~\r\nhello\r\n0\r\n\r\n", "hello");
    // BWS around ';' and '='.
    require_valid_chunked("5 ;a\r\nhello\r\n0\r\n\r\n", "hello");
    require_valid_chunked("5\t; \ta \t= \tb \t\r\nhello\r\n0\r\n\r\n", "hello");
    require_valid_chunked("5 ; a = \"q\" ; b\r\nhello\r\n0\r\n\r\n", "hello");
    // On the last chunk too.
    require_valid_chunked("5\r\nhello\r\n0;final=yes\r\n\r\n", "hello");
}

TEST_CASE("body_reader: chunked trailers", "[body_reader][chunked]") {
    require_valid_chunked("5\r\nhello\r\n0\r\nX-Trailer: value\r\n\r\n", "hello");
    require_valid_chunked("0\r\nA:b\r\nC: d e\t f\r\nEmpty:\r\n\r\n", "");
    require_valid_chunked("0\r\nX: caf\xc3\xa9 \x80\xff\r\n\r\n", "");
    require_valid_chunked("0\r\nX: a:b:c\r\n\r\n", "");
}

TEST_CASE("body_reader: chunked done and consumed with pipelined bytes", "[body_reader][chunked]") {
    for (std::string_view body :
         {"5\r\nhello\r\n0\r\n\r\n", "0\r\n\r\n", "5\r\nhello\r\n0\r\nT: v\r\n\r\n",
          "3;x=y\r\nabc\r\n0;z\r\n\r\n"}) {
        INFO("body: " << std::string(body));
        const std::string next = "GET /next HTTP/1.1\r\nHost: x\r\n\r\n";
        const std::string in = std::string(body) + next;
        BodyReader r;
        r.reset_chunked(big_limit);
        std::size_t credit = unlimited_credit, used = 0;
        std::string out;
        CHECK(r.feed(in, credit, out, used) == Status::done);
        CHECK(used == body.size());
        CHECK(r.done());
        // Further feeds consume nothing.
        CHECK(r.feed(next, credit, out, used) == Status::done);
        CHECK(used == 0);

        // Byte by byte: done exactly at the body's last byte, the next request is left.
        BodyReader b;
        b.reset_chunked(big_limit);
        Run run = run_bytes(b, in);
        CHECK(run.status == Status::done);
        CHECK(run.out == out);
        CHECK(run.rest == next);
    }
}

TEST_CASE("body_reader: chunked credit pauses inside chunk data", "[body_reader][chunked]") {
    const std::string in = "5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\nNEXT";
    BodyReader r;
    r.reset_chunked(big_limit);
    std::string out;
    std::string pending = in;
    std::size_t used = 0;

    std::size_t credit = 2;
    CHECK(r.feed(pending, credit, out, used) == Status::paused);
    CHECK(out == "he");
    CHECK(used == 5);  // "5\r\n" and "he"
    CHECK(credit == 0);
    pending.erase(0, used);

    // No credit: nothing moves.
    CHECK(r.feed(pending, credit, out, used) == Status::paused);
    CHECK(used == 0);
    CHECK(out == "he");

    credit = 4;  // "llo", then "a" from the next chunk
    CHECK(r.feed(pending, credit, out, used) == Status::paused);
    CHECK(out == "helloa");
    CHECK(credit == 0);
    pending.erase(0, used);
    CHECK(pending == "bc\r\n0\r\n\r\nNEXT");

    credit = 2;  // exactly the rest of the data: the terminator needs no credit
    CHECK(r.feed(pending, credit, out, used) == Status::done);
    CHECK(out == "helloabc");
    CHECK(credit == 0);
    pending.erase(0, used);
    CHECK(pending == "NEXT");
}

TEST_CASE("body_reader: chunked with no credit still reads the chunk header",
          "[body_reader][chunked]") {
    BodyReader r;
    r.reset_chunked(big_limit);
    std::size_t credit = 0, used = 0;
    std::string out;
    CHECK(r.feed("5\r\nhello\r\n0\r\n\r\n", credit, out, used) == Status::paused);
    CHECK(used == 3);
    CHECK(out.empty());
    // An empty body needs no credit at all.
    BodyReader e;
    e.reset_chunked(big_limit);
    CHECK(e.feed("0\r\n\r\n", credit, out, used) == Status::done);
    CHECK(used == 5);
}

// --- chunked: rejected -----------------------------------------------------------

TEST_CASE("body_reader: chunk size line errors", "[body_reader][chunked]") {
    require_bad_chunked("\r\n");                         // empty size line
    require_bad_chunked("\r\n5\r\nhello\r\n0\r\n\r\n");  // empty line before the size
    require_bad_chunked(";a\r\n0\r\n\r\n");              // extension without a size
    require_bad_chunked("g\r\n");                        // non-hex
    require_bad_chunked("5g\r\nhello\r\n0\r\n\r\n");
    require_bad_chunked("0x5\r\nhello\r\n0\r\n\r\n");
    require_bad_chunked("-5\r\nhello\r\n0\r\n\r\n");
    require_bad_chunked("+5\r\nhello\r\n0\r\n\r\n");
    require_bad_chunked(" 5\r\nhello\r\n0\r\n\r\n");
    require_bad_chunked("5\nhello\r\n0\r\n\r\n");      // bare LF
    require_bad_chunked("5\rhello\r\n0\r\n\r\n");      // bare CR
    require_bad_chunked("5\r\r\nhello\r\n0\r\n\r\n");  // CR CR LF
    require_bad_chunked("5;a\nhello\r\n0\r\n\r\n");    // bare LF after an extension
    // 16 or more hex digits, even when leading zeros keep the value small.
    require_bad_chunked("1000000000000000\r\n");
    require_bad_chunked("0000000000000005\r\nhello\r\n0\r\n\r\n");
    require_bad_chunked("ffffffffffffffffffff\r\n");
    CHECK(reason_of("0000000000000005\r\n") == "chunk size too large");
    CHECK(reason_of("g\r\n") == "invalid chunk size");
    CHECK(reason_of("5\rx") == "bare CR in chunk line");
}

TEST_CASE("body_reader: chunk extension errors", "[body_reader][chunked]") {
    require_bad_chunked("5;\r\nhello\r\n0\r\n\r\n");    // empty name
    require_bad_chunked("5; \r\nhello\r\n0\r\n\r\n");   // empty name after BWS
    require_bad_chunked("5;=b\r\nhello\r\n0\r\n\r\n");  // no name
    require_bad_chunked("5;a=\r\nhello\r\n0\r\n\r\n");  // empty value
    require_bad_chunked("5;a==b\r\nhello\r\n0\r\n\r\n");
    require_bad_chunked("5;a b\r\nhello\r\n0\r\n\r\n");  // two tokens
    require_bad_chunked("5;a=b c\r\nhello\r\n0\r\n\r\n");
    require_bad_chunked("5;a=\"q\"x\r\nhello\r\n0\r\n\r\n");  // token after quoted value
    require_bad_chunked("5;a;\r\nhello\r\n0\r\n\r\n");
    require_bad_chunked("5;a(b)\r\nhello\r\n0\r\n\r\n");   // non-tchar in name
    require_bad_chunked("5;a=b@c\r\nhello\r\n0\r\n\r\n");  // non-tchar in value
    require_bad_chunked("5x\r\nhello\r\n0\r\n\r\n");
    require_bad_chunked("5;a=\"x\r\n");  // unterminated quote
    require_bad_chunked("5;a=\"x\r\nhello\r\n0\r\n\r\n");
    require_bad_chunked("5;a=\"x\ry\"\r\nhello\r\n0\r\n\r\n");     // CR in quote
    require_bad_chunked("5;a=\"x\ny\"\r\nhello\r\n0\r\n\r\n");     // LF in quote
    require_bad_chunked("5;a=\"x\\\r\"\r\nhello\r\n0\r\n\r\n");    // escaped CR
    require_bad_chunked("5;a=\"x\x7f\"\r\nhello\r\n0\r\n\r\n");    // DEL in quote
    require_bad_chunked("5;a=\"x\x01\"\r\nhello\r\n0\r\n\r\n");    // CTL in quote
    require_bad_chunked("5;a=\"x\\\x7f\"\r\nhello\r\n0\r\n\r\n");  // escaped DEL
    require_bad_chunked("5;a\0\r\nhello\r\n0\r\n\r\n"s);           // NUL
    CHECK(reason_of("5;\r\n") == "invalid chunk extension");
}

TEST_CASE("body_reader: chunk data framing errors", "[body_reader][chunked]") {
    require_bad_chunked("5\r\nhelloX\r\n0\r\n\r\n");  // missing CRLF after data
    require_bad_chunked("5\r\nhello0\r\n\r\n");       // missing CRLF, next size follows
    require_bad_chunked("3\r\nhello\r\n0\r\n\r\n");   // data longer than the size
    require_bad_chunked("5\r\nhello\n0\r\n\r\n");     // LF only after data
    require_bad_chunked("5\r\nhello\r0\r\n\r\n");     // CR only after data
    require_bad_chunked("5\r\nhello\r\r\n0\r\n\r\n");
    CHECK(reason_of("3\r\nhello\r\n") == "chunk data longer than its size");
}

TEST_CASE("body_reader: chunk line length is bounded", "[body_reader][chunked]") {
    const std::string ok_ext = "5;a=" + std::string(3990, 'x') + "\r\nhello\r\n0\r\n\r\n";
    require_valid_chunked(ok_ext, "hello");

    const std::string long_ext = "5;a=" + std::string(5000, 'x') + "\r\nhello\r\n0\r\n\r\n";
    require_bad_chunked(long_ext);
    CHECK(reason_of(long_ext) == "chunk line too long");

    // The bound is per line: many moderately long lines are fine.
    std::string many;
    for (int i = 0; i < 4; ++i)
        many += "1;e=" + std::string(3000, 'y') + "\r\nz\r\n";
    many += "0\r\n\r\n";
    require_valid_chunked(many, "zzzz");

    // Also when the long line never ends (no CRLF to wait for).
    BodyReader r;
    r.reset_chunked(big_limit);
    std::string endless = "5;" + std::string(10000, 'a');
    CHECK(run_whole(r, endless).status == Status::bad_request);
}

TEST_CASE("body_reader: invalid trailers", "[body_reader][chunked]") {
    require_bad_chunked("0\r\nbad trailer\r\n\r\n");  // no colon
    require_bad_chunked("0\r\nNoColon\r\n\r\n");
    require_bad_chunked("0\r\nX: a\r\n folded\r\n\r\n");  // obs-fold
    require_bad_chunked("0\r\nX: a\r\n\tfolded\r\n\r\n");
    require_bad_chunked("0\r\n X: a\r\n\r\n");       // leading space
    require_bad_chunked("0\r\n: v\r\n\r\n");         // empty name
    require_bad_chunked("0\r\nX : v\r\n\r\n");       // space before the colon
    require_bad_chunked("0\r\nX(y): v\r\n\r\n");     // non-tchar in the name
    require_bad_chunked("0\r\nX: a\nY: b\r\n\r\n");  // bare LF in a value
    require_bad_chunked("0\r\nX: a\rY: b\r\n\r\n");  // bare CR in a value
    require_bad_chunked("0\r\nX: a\x01\r\n\r\n");    // CTL in a value
    require_bad_chunked("0\r\nX: a\x7f\r\n\r\n");    // DEL in a value
    require_bad_chunked("0\r\nX: a\0\r\n\r\n"s);     // NUL in a value
    require_bad_chunked("0\r\n\n");                  // bare LF ends the trailers
    require_bad_chunked("0\r\n\r\r");                // CR not followed by LF
    CHECK(reason_of("0\r\nbad trailer\r\n\r\n") == "invalid trailer");
}

TEST_CASE("body_reader: trailer section is bounded", "[body_reader][chunked]") {
    std::string in = "0\r\n";
    for (int i = 0; i < 40; ++i)
        in += "X-" + std::to_string(i) + ": " + std::string(500, 'v') + "\r\n";
    in += "\r\n";
    BodyReader r;
    r.reset_chunked(big_limit);
    CHECK(run_whole(r, in).status == Status::bad_request);
    CHECK(std::string_view(r.reason()) == "trailers too large");
}

// One trailer line is bounded like a chunk-size line (4096 bytes), not only by the
// 16 KiB total.
TEST_CASE("body_reader: a trailer line over 4096 bytes is rejected", "[body_reader][chunked]") {
    const std::string in = "0\r\nX: " + std::string(5000, 'v') + "\r\n\r\n";
    BodyReader r;
    r.reset_chunked(big_limit);
    CHECK(run_whole(r, in).status == Status::bad_request);
}

// --- chunked: limit ------------------------------------------------------------

TEST_CASE("body_reader: chunked body over the limit", "[body_reader][chunked]") {
    SECTION("exactly the limit is accepted") {
        Run run = chunked("5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", 10);
        CHECK(run.status == Status::done);
        CHECK(run.out == "helloworld");
    }
    SECTION("detected at the chunk header, before its data is delivered") {
        Run run = chunked("5\r\nhello\r\n6\r\nworld!\r\n0\r\n\r\n", 10);
        CHECK(run.status == Status::too_large);
        CHECK(run.out == "hello");
    }
    SECTION("detected without the data having arrived") {
        BodyReader r;
        r.reset_chunked(1000);
        std::size_t credit = unlimited_credit, used = 0;
        std::string out;
        CHECK(r.feed("fffffffffffffff\r\n", credit, out, used) == Status::too_large);
        CHECK(out.empty());
        CHECK_FALSE(r.done());
    }
    SECTION("byte by byte too") {
        Run run = chunked_bytes("5\r\nhello\r\n6\r\nworld!\r\n0\r\n\r\n", 10);
        CHECK(run.status == Status::too_large);
        CHECK(run.out == "hello");
    }
    SECTION("a zero limit refuses any data") {
        CHECK(chunked("1\r\nx\r\n0\r\n\r\n", 0).status == Status::too_large);
        CHECK(chunked("0\r\n\r\n", 0).status == Status::done);
    }
}

TEST_CASE("body_reader: reset starts over after an error", "[body_reader]") {
    BodyReader r;
    r.reset_chunked(big_limit);
    REQUIRE(run_whole(r, "zz\r\n").status == Status::bad_request);
    r.reset_chunked(big_limit);
    Run run = run_whole(r, "2\r\nok\r\n0\r\n\r\n");
    CHECK(run.status == Status::done);
    CHECK(run.out == "ok");
    r.reset_length(3, big_limit);
    CHECK_FALSE(r.done());
    Run run2 = run_whole(r, "abc");
    CHECK(run2.status == Status::done);
    CHECK(run2.out == "abc");
}
