// libFuzzer target for the packet action executor (src/actions).
//
// Input layout: byte 0 is metadata (bits 0-2: number of actions, bits 3-4:
// headroom 0/2/4/8, bit 5: 4 bytes of tailroom, bit 7: VLAN limit 1), then
// two bytes per action (kind, value seed), then the frame. The packet is
// copied into a heap block of exactly headroom + frame + tailroom bytes, so
// ASan reports any access outside the room the executor was given.
//
// Two runs per input:
//  1. every action as given, whatever the packet holds: memory safety, and
//     the length changes only by 4 per successful push or pop;
//  2. only the actions a translator could emit for this packet (their
//     prerequisites hold, as in OpenFlow): every checksum that was right
//     must still be right (recomputed in full here), except where Open
//     vSwitch itself breaks it and the executor must too (docs/actions.md):
//     fragments, IPv6 fragment or routing-with-segments-left headers, ND
//     messages followed by Ethernet padding.
#include <arpa/inet.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "flowpath/actions.hpp"
#include "flowpath/packet.hpp"

namespace {

using namespace flowpath;

constexpr unsigned kSetFieldKinds = static_cast<unsigned>(SetField::kNdTll) + 1;
enum : unsigned { kKindDecTtl = kSetFieldKinds, kKindPush8100, kKindPush88a8, kKindPop, kKindOutput, kKinds };

Action make_action(uint8_t kind_byte, uint8_t seed) {
    const unsigned kind = kind_byte % kKinds;
    if (kind < kSetFieldKinds) {
        uint8_t value[16];
        for (unsigned i = 0; i < 16; ++i) value[i] = static_cast<uint8_t>(seed + 37 * i);
        return Action::set(static_cast<SetField>(kind), value);
    }
    switch (kind) {
    case kKindDecTtl: return Action::of(ActionType::kDecTtl);
    case kKindPush8100: return Action::push_vlan(0x8100);
    case kKindPush88a8: return Action::push_vlan(0x88a8);
    case kKindPop: return Action::of(ActionType::kPopVlan);
    default: return Action::output(seed);
    }
}

/// Whether a translator could emit `a` for a packet with this key (the
/// OpenFlow prerequisites of the field hold).
bool applicable(const Action& a, const FlowKey& key, const PacketLayout& layout) {
    const bool v4 = key.dl_type == htons(0x0800) && (layout.flags & kLayoutL3);
    const bool v6 = key.dl_type == htons(0x86dd) && (layout.flags & kLayoutL3);
    const bool l4 = layout.flags & kLayoutL4;
    if (a.type == ActionType::kDecTtl) return v4 || v6;
    if (a.type != ActionType::kSetField) return true;
    switch (a.field) {
    case SetField::kIpv4Src: case SetField::kIpv4Dst: return v4;
    case SetField::kIpv6Src: case SetField::kIpv6Dst: case SetField::kIpv6Label: return v6;
    case SetField::kNwTos: case SetField::kNwEcn: case SetField::kNwTtl: return v4 || v6;
    case SetField::kTcpSrc: case SetField::kTcpDst: return (v4 || v6) && l4 && key.nw_proto == 6;
    case SetField::kUdpSrc: case SetField::kUdpDst: return (v4 || v6) && l4 && key.nw_proto == 17;
    case SetField::kSctpSrc: case SetField::kSctpDst: return (v4 || v6) && l4 && key.nw_proto == 132;
    case SetField::kIcmpType: case SetField::kIcmpCode: return v4 && key.nw_proto == 1;
    case SetField::kIcmpv6Type: case SetField::kIcmpv6Code: return v6 && key.nw_proto == 58;
    case SetField::kNdTarget: case SetField::kNdSll: case SetField::kNdTll:
        return v6 && key.nw_proto == 58 && key.tp_dst == 0 && (key.tp_src == htons(135) || key.tp_src == htons(136));
    case SetField::kArpOp: case SetField::kArpSpa: case SetField::kArpTpa: case SetField::kArpSha:
    case SetField::kArpTha: return key.dl_type == htons(0x0806);
    default: return true;
    }
}

uint32_t sum16(const uint8_t* p, size_t n, uint32_t sum = 0) {
    for (size_t i = 0; i + 1 < n; i += 2) sum += uint32_t{p[i]} << 8 | p[i + 1];
    if (n & 1) sum += uint32_t{p[n - 1]} << 8;
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return sum;
}

uint32_t crc32c(const uint8_t* p, size_t n, size_t skip_at) {
    uint32_t crc = 0xffffffff;
    for (size_t i = 0; i < n; ++i) {
        crc ^= (i >= skip_at && i < skip_at + 4) ? 0 : p[i];
        for (int b = 0; b < 8; ++b) crc = (crc >> 1) ^ ((crc & 1) ? 0x82f63b78 : 0);
    }
    return ~crc;
}

/// Bit i set: checksum i of the frame verifies (0: IPv4 header, 1: transport).
/// Only the checksums OVS keeps right are looked at.
unsigned correct_checksums(const uint8_t* frame, uint32_t len) {
    FlowKey key;
    PacketLayout layout;
    parse_flow_key(frame, len, 1, key, layout);
    if (!(layout.flags & kLayoutL3) || layout.l4_offset == kNoOffset) return 0;
    const uint8_t* l3 = frame + layout.l3_offset;
    const bool v4 = key.dl_type == htons(0x0800);
    unsigned ok = 0;
    if (v4 && sum16(l3, layout.l4_offset - layout.l3_offset) == 0xffff) ok |= 1;
    if (key.nw_frag || !(layout.flags & kLayoutL4)) return ok;
    if (!v4) {
        // OVS updates no transport checksum behind a fragment header (even
        // an atomic one) or a routing header with segments left.
        for (uint32_t pos = layout.l3_offset + 40u, proto = l3[6]; pos < layout.l4_offset;) {
            const uint8_t* ext = frame + pos;
            if (proto == 44 || (proto == 43 && ext[3] != 0)) return ok;
            pos += proto == 51 ? (ext[1] + 2u) * 4 : (ext[1] + 1u) * 8;
            proto = ext[0];
        }
    }
    const uint8_t* l4 = frame + layout.l4_offset;
    const uint32_t l4_len = len - layout.l2_pad - layout.l4_offset;
    uint32_t pseudo = v4 ? sum16(l3 + 12, 8) : sum16(l3 + 8, 32);
    pseudo += key.nw_proto + (l4_len >> 16) + (l4_len & 0xffff);
    bool transport_ok = false;
    switch (key.nw_proto) {
    case 6: transport_ok = sum16(l4, l4_len, pseudo) == 0xffff; break;
    case 17: transport_ok = (l4[6] | l4[7]) != 0 && sum16(l4, l4_len, pseudo) == 0xffff; break;
    case 1: transport_ok = v4 && sum16(l4, l4_len) == 0xffff; break;
    // OVS's ND option walk may run into the Ethernet padding.
    case 58: transport_ok = !v4 && layout.l2_pad == 0 && sum16(l4, l4_len, pseudo) == 0xffff; break;
    case 132:
        transport_ok = (l4[8] | l4[9] << 8 | l4[10] << 16 | uint32_t{l4[11]} << 24) == crc32c(l4, l4_len, 8);
        break;
    }
    return ok | (transport_ok ? 2u : 0u);
}

struct Room {
    std::unique_ptr<uint8_t[]> block;
    PacketBuffer pkt;
};

Room make_room(const uint8_t* frame, uint32_t len, uint32_t headroom, uint32_t tailroom) {
    Room room{std::unique_ptr<uint8_t[]>(new uint8_t[headroom + len + tailroom]), {}};
    if (len) std::memcpy(room.block.get() + headroom, frame, len);
    room.pkt = {room.block.get() + headroom, len, headroom, tailroom};
    return room;
}

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "fuzz_actions: %s\n", what);
    std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    const uint8_t meta = data[0];
    const size_t count = meta & 7;
    if (size < 1 + 2 * count) return 0;
    const uint32_t headroom = (meta >> 3 & 3) == 3 ? 8 : (meta >> 3 & 3) * 2;
    const uint32_t tailroom = (meta & 0x20) ? 4 : 0;
    set_vlan_limit((meta & 0x80) ? 1 : 2);
    std::vector<Action> program;
    for (size_t i = 0; i < count; ++i) program.push_back(make_action(data[1 + 2 * i], data[2 + 2 * i]));
    const uint8_t* frame = data + 1 + 2 * count;
    const auto len = static_cast<uint32_t>(size - 1 - 2 * count);

    FlowKey key;
    PacketLayout original;
    parse_flow_key(frame, len, 1, key, original);

    // 1. Everything as given: memory safety and length bookkeeping.
    {
        Room room = make_room(frame, len, headroom, tailroom);
        PacketLayout layout = original;
        int64_t expected_len = len;
        for (const Action& a : program) {
            if (a.type == ActionType::kPushVlan) {
                if (push_vlan(room.pkt, layout, a.ethertype)) expected_len += 4;
            } else if (a.type == ActionType::kPopVlan) {
                if (pop_vlan(room.pkt, layout)) expected_len -= 4;
            } else if (a.type == ActionType::kSetField) {
                set_field(room.pkt, layout, a.field, a.value);
            } else if (a.type == ActionType::kDecTtl) {
                dec_ttl(room.pkt, layout);
            }
            if (room.pkt.len != expected_len) fail("length out of step with pushes and pops");
            if (room.pkt.data < room.block.get() || room.pkt.data + room.pkt.len + room.pkt.tailroom !=
                                                        room.block.get() + headroom + len + tailroom) {
                fail("buffer bookkeeping broken");
            }
        }
    }

    // 2. Only what a translator could emit: correct checksums stay correct.
    std::vector<Action> allowed;
    for (const Action& a : program) {
        if (applicable(a, key, original)) allowed.push_back(a);
    }
    allowed.push_back(Action::output(1));  // look at the final bytes too
    const unsigned before = correct_checksums(frame, len);
    Room room = make_room(frame, len, 16, 0);
    PacketLayout layout = original;
    execute_actions(room.pkt, layout, allowed.data(), allowed.size(),
                    [&](uint32_t, const PacketBuffer& pkt, bool) {
                        const unsigned after = correct_checksums(pkt.data, pkt.len);
                        // A popped outer tag can expose an inner one that a VLAN
                        // limit of 1 then hides: only compare like with like.
                        PacketLayout now;
                        FlowKey now_key;
                        parse_flow_key(pkt.data, pkt.len, 1, now_key, now);
                        if (now.l3_offset != layout.l3_offset || now.l4_offset != layout.l4_offset) return;
                        if ((before & after) != before) fail("a correct checksum became wrong");
                    });
    set_vlan_limit(2);
    return 0;
}
