// One description of each message layout for both directions: a layout is
// a function template over an IO (In decodes, Out encodes) that names the
// fields in wire order, so that the encoder and the decoder of a message
// cannot disagree. Internal to src/openflow.
#pragma once

#include <optional>
#include <string>

#include "flowpath/openflow_codec.hpp"
#include "wire.hpp"

namespace flowpath::of::layout {

/// Decoding: reads each field from the message body. The first error
/// sticks; later reads yield zeros.
struct In {
    explicit In(ByteView body, Header h = {}) : r(body), header(h) {}

    wire::Reader r;
    Header header;

    static constexpr bool kDecoding = true;
    bool ok() const { return r.ok(); }
    void fail(OfError error) { r.fail(error); }

    void u8(uint8_t& v) { v = r.u8(); }
    void u16(uint16_t& v) { v = r.u16(); }
    void u32(uint32_t& v) { v = r.u32(); }
    void u64(uint64_t& v) { v = r.u64(); }
    void pad(size_t n) { r.skip(n); }
    void bytes(uint8_t* p, size_t n) { r.copy(p, n); }
    void text(std::string& s, size_t n) { s = r.text(n); }
    void rest(Bytes& b) {
        const ByteView v = r.rest();
        b.assign(v.begin(), v.end());
    }
    void match(OxmMatch& m) {
        if (!ok()) return;
        const ByteView tail = r.rest();
        size_t consumed = 0;
        Decoded<OxmMatch> decoded = decode_match(tail, consumed);
        if (!decoded.ok()) return fail(decoded.error());
        m = std::move(decoded.value());
        // Hand back what follows the match.
        r = wire::Reader(tail.subspan(consumed));
    }
    void instructions(Instructions& i) {
        if (!ok()) return;
        Decoded<Instructions> decoded = decode_instructions(r.rest());
        if (!decoded.ok()) return fail(decoded.error());
        i = std::move(decoded.value());
    }
    /// PACKET_OUT's actions_len, 6 pad bytes, then that many bytes of actions.
    void prefixed_actions(ActionList& actions, ActionContext context) {
        const uint16_t length = r.u16();
        r.skip(6);
        const ByteView list = r.take(length);
        if (!ok()) return;
        Decoded<ActionList> decoded = decode_actions(list, context);
        if (!decoded.ok()) return fail(decoded.error());
        actions = std::move(decoded.value());
    }
};

/// Encoding: appends each field.
struct Out {
    explicit Out(Bytes& bytes) : out(bytes), w(bytes) {}

    Bytes& out;
    wire::Writer w;

    static constexpr bool kDecoding = false;
    bool ok() const { return true; }
    void fail(OfError) {}

    void u8(const uint8_t& v) { w.u8(v); }
    void u16(const uint16_t& v) { w.u16(v); }
    void u32(const uint32_t& v) { w.u32(v); }
    void u64(const uint64_t& v) { w.u64(v); }
    void pad(size_t n) { w.zeros(n); }
    void bytes(const uint8_t* p, size_t n) { w.bytes(p, n); }
    void text(const std::string& s, size_t n) { w.text(s, n); }
    void rest(const Bytes& b) { w.bytes(ByteView(b)); }
    void match(const OxmMatch& m) { encode_match(m, out); }
    void instructions(const Instructions& i) { encode_instructions(i, out); }
    void prefixed_actions(const ActionList& actions, ActionContext) {
        const size_t at = w.size();
        w.u16(0);
        w.zeros(6);
        encode_actions(actions, out);
        w.patch16(at, static_cast<uint16_t>(w.size() - at - 8));
    }
};

/// ofp_port, shared by PORT_STATUS and the PORT_DESC reply.
template <typename IO, typename P>
void port_desc(IO& io, P& p) {
    io.u32(p.port_no);
    io.pad(4);
    io.bytes(p.hw_addr, 6);
    io.pad(2);
    io.text(p.name, 16);
    io.u32(p.config);
    io.u32(p.state);
    io.u32(p.curr);
    io.u32(p.advertised);
    io.u32(p.supported);
    io.u32(p.peer);
    io.u32(p.curr_speed);
    io.u32(p.max_speed);
}

}  // namespace flowpath::of::layout
