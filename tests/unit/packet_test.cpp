// Tests of the flow-key parsers (src/packet): every FlowKey field, the
// malformed-frame rules of docs/packet.md, and the fast path (miniflow)
// against the reference on valid, truncated, bit-flipped and random frames.
// Every frame is parsed from a buffer that ends right before an unmapped
// page, so a read past `len` crashes the test.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <initializer_list>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "flowpath/packet.hpp"
#include "flowpath/simple_key.hpp"
#include "frame_gen.hpp"
#include "packet_builders.hpp"

namespace flowpath {
namespace {

using namespace test_frames;

// ------------------------------------------------------- parsing harness

/// Frames are copied to the end of a mapping followed by a PROT_NONE page.
class GuardedBuffer {
public:
    static constexpr size_t kCapacity = 128 * 1024;

    GuardedBuffer() {
        page_ = static_cast<size_t>(sysconf(_SC_PAGESIZE));
        base_ = static_cast<uint8_t*>(mmap(nullptr, kCapacity + page_, PROT_READ | PROT_WRITE,
                                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
        if (base_ == MAP_FAILED) std::abort();
        if (mprotect(base_ + kCapacity, page_, PROT_NONE) != 0) std::abort();
    }
    ~GuardedBuffer() { munmap(base_, kCapacity + page_); }

    const uint8_t* place(const std::vector<uint8_t>& frame) {
        if (frame.size() > kCapacity) std::abort();
        uint8_t* at = base_ + kCapacity - frame.size();
        if (!frame.empty()) std::memcpy(at, frame.data(), frame.size());
        return at;
    }

private:
    uint8_t* base_;
    size_t page_;
};

GuardedBuffer& guard() {
    static GuardedBuffer buffer;
    return buffer;
}

/// The FlowKey fields, for readable failure messages.
struct FieldInfo {
    const char* name;
    size_t offset;
    size_t size;
};
constexpr FieldInfo kFields[] = {
    {"in_port", offsetof(FlowKey, in_port), 4}, {"ct_mark", offsetof(FlowKey, ct_mark), 4},
    {"ct_zone", offsetof(FlowKey, ct_zone), 2}, {"ct_state", offsetof(FlowKey, ct_state), 1},
    {"recirc_id", offsetof(FlowKey, recirc_id), 4}, {"dl_dst", offsetof(FlowKey, dl_dst), 6},
    {"dl_src", offsetof(FlowKey, dl_src), 6}, {"dl_type", offsetof(FlowKey, dl_type), 2},
    {"vlan0", offsetof(FlowKey, vlans), 4}, {"vlan1", offsetof(FlowKey, vlans) + 4, 4},
    {"nw_src", offsetof(FlowKey, nw_src), 4}, {"nw_dst", offsetof(FlowKey, nw_dst), 4},
    {"ipv6_src", offsetof(FlowKey, ipv6_src), 16}, {"ipv6_dst", offsetof(FlowKey, ipv6_dst), 16},
    {"ipv6_label", offsetof(FlowKey, ipv6_label), 4}, {"nw_proto", offsetof(FlowKey, nw_proto), 1},
    {"nw_tos", offsetof(FlowKey, nw_tos), 1}, {"nw_ttl", offsetof(FlowKey, nw_ttl), 1},
    {"nw_frag", offsetof(FlowKey, nw_frag), 1}, {"nd_target", offsetof(FlowKey, nd_target), 16},
    {"arp_sha", offsetof(FlowKey, arp_sha), 6}, {"arp_tha", offsetof(FlowKey, arp_tha), 6},
    {"tp_src", offsetof(FlowKey, tp_src), 2}, {"tp_dst", offsetof(FlowKey, tp_dst), 2},
    {"tcp_flags", offsetof(FlowKey, tcp_flags), 2},
};

std::string hex(const uint8_t* p, size_t n) {
    std::ostringstream out;
    for (size_t i = 0; i < n; ++i) {
        static const char digits[] = "0123456789abcdef";
        out << digits[p[i] >> 4] << digits[p[i] & 15];
    }
    return out.str();
}

/// "field: got X want Y" for each field that differs (pads included).
std::string key_diff(const FlowKey& got, const FlowKey& want) {
    std::string out;
    const auto* g = reinterpret_cast<const uint8_t*>(&got);
    const auto* w = reinterpret_cast<const uint8_t*>(&want);
    size_t covered = 0;
    for (const FieldInfo& f : kFields) {
        covered += f.size;
        if (std::memcmp(g + f.offset, w + f.offset, f.size) != 0) {
            out += std::string(f.name) + ": got " + hex(g + f.offset, f.size) + " want " + hex(w + f.offset, f.size) + "\n";
        }
    }
    if (out.empty() && !(got == want)) out = "padding differs: got " + hex(g, sizeof got) + "\n";
    return out;
}

std::string frame_hex(const std::vector<uint8_t>& frame) { return hex(frame.data(), frame.size()); }

struct Parsed {
    FlowKey key;
    PacketLayout layout;
};

constexpr uint64_t bits(std::initializer_list<unsigned> words) {
    uint64_t m = 0;
    for (unsigned w : words) m |= uint64_t{1} << w;
    return m;
}

/// Checks the fast path's map against the words its parse path writes (the
/// contract in packet.hpp), derived independently from the reference key
/// and layout. Returns an empty string when it matches.
std::string check_map(uint64_t map, const FlowKey& key, const PacketLayout& layout) {
    const uint64_t canonical = miniflow_from_key(key).map;
    if ((map & canonical) != canonical) return "map misses a nonzero word";
    uint64_t want = bits({0});
    if (layout.l3_offset != kNoOffset) want |= bits({2, 3, 4});
    const bool l3 = layout.flags & kLayoutL3;
    if (key.dl_type == htons(0x0800) && l3) want |= bits({5, 10});
    if ((key.dl_type == htons(0x0806) || key.dl_type == htons(0x8035)) && l3) want |= bits({5, 10, 13, 14});
    if (key.dl_type == htons(0x86dd)) {
        // Malformed extension headers: the addresses were written, the rest not.
        if (l3 || (map & bits({6, 7, 8, 9}))) want |= bits({6, 7, 8, 9});
        if (l3) want |= bits({10});
    }
    if (layout.flags & kLayoutNd) want |= bits({11, 12, 13, 14});
    if (layout.flags & kLayoutL4) want |= bits({15});
    if (map != want) {
        std::ostringstream out;
        out << "map " << std::hex << map << " want " << want;
        return out.str();
    }
    return {};
}

/// Runs both parsers on `frame`, checks the fast path against the reference
/// (key, canonical map, layout), and returns the reference result.
Parsed parse(const std::vector<uint8_t>& frame, uint32_t in_port = 7) {
    const uint8_t* data = guard().place(frame);
    const auto len = static_cast<uint32_t>(frame.size());
    Parsed ref;
    std::memset(&ref.key, 0xa5, sizeof ref.key);  // parse_flow_key must zero it
    parse_flow_key(data, len, in_port, ref.key, ref.layout);

    Miniflow mf;
    std::memset(static_cast<void*>(&mf), 0x5a, sizeof mf);
    PacketLayout fast_layout;
    std::memset(static_cast<void*>(&fast_layout), 0x5a, sizeof fast_layout);
    extract_miniflow(data, len, in_port, mf, fast_layout);

    const FlowKey expanded = miniflow_expand(mf);
    EXPECT_TRUE(expanded == ref.key) << "fast path differs for frame " << frame_hex(frame) << "\n"
                                     << key_diff(expanded, ref.key);
    EXPECT_EQ(check_map(mf.map, ref.key, ref.layout), "") << "frame " << frame_hex(frame);
    EXPECT_EQ(std::memcmp(&fast_layout, &ref.layout, sizeof fast_layout), 0) << "layout, frame " << frame_hex(frame);
    return ref;
}
Parsed parse(const Bytes& frame, uint32_t in_port = 7) { return parse(frame.vec(), in_port); }

/// The key of an Ethernet frame with no VLAN, before any L3 field.
FlowKey eth_key(uint16_t dl_type, uint32_t in_port = 7) {
    FlowKey k{};
    k.in_port = in_port;
    std::memcpy(k.dl_dst, kDst.data(), 6);
    std::memcpy(k.dl_src, kSrc.data(), 6);
    k.dl_type = htons(dl_type);
    return k;
}

FlowKey ipv4_key(uint8_t proto, const Ipv4Opts& o = {}) {
    FlowKey k = eth_key(0x0800);
    k.nw_src = htonl(o.src);
    k.nw_dst = htonl(o.dst);
    k.nw_proto = proto;
    k.nw_tos = o.tos;
    k.nw_ttl = o.ttl;
    return k;
}

FlowKey ipv6_key(uint8_t proto, const Ipv6Opts& o = {}) {
    FlowKey k = eth_key(0x86dd);
    std::memcpy(k.ipv6_src, o.src.data(), 16);
    std::memcpy(k.ipv6_dst, o.dst.data(), 16);
    k.ipv6_label = htonl(o.label);
    k.nw_proto = proto;
    k.nw_tos = o.traffic_class;
    k.nw_ttl = o.hop_limit;
    return k;
}

#define EXPECT_KEY(got, want) EXPECT_TRUE((got) == (want)) << key_diff((got), (want))

// ------------------------------------------------------------- Ethernet

TEST(PacketEthernet, FieldsAndInPort) {
    const Parsed p = parse(eth(0x88cc).zeros(30), 42);
    EXPECT_KEY(p.key, eth_key(0x88cc, 42));
    EXPECT_EQ(p.layout.l3_offset, 14);
    EXPECT_EQ(p.layout.l4_offset, kNoOffset);
    EXPECT_EQ(p.layout.vlan_count, 0);
    EXPECT_EQ(p.layout.flags, 0);
}

TEST(PacketEthernet, ShorterThanHeaderHasOnlyMetadata) {
    const Bytes frame = eth(0x0800);
    for (size_t n = 0; n < 14; ++n) {
        const Parsed p = parse(frame.prefix(n), 3);
        FlowKey want{};
        want.in_port = 3;
        EXPECT_KEY(p.key, want);
        EXPECT_EQ(p.layout.l3_offset, kNoOffset);
    }
    // Exactly 14 bytes: Ethernet fields, nothing more.
    EXPECT_KEY(parse(frame, 3).key, eth_key(0x0800, 3));
}

TEST(PacketEthernet, Ieee8023WithoutSnapIsTypeNone) {
    // Length field, then a non-SNAP LLC header.
    const Parsed p = parse(eth(100).u8(0x42).u8(0x42).u8(0x03).zeros(40));
    EXPECT_KEY(p.key, eth_key(0x05ff));
    EXPECT_EQ(p.layout.l3_offset, 14);
    // Too short for an LLC/SNAP header.
    EXPECT_KEY(parse(eth(100).u8(0xaa).u8(0xaa).u8(0x03).zeros(4)).key, eth_key(0x05ff));
    // SNAP with a non-Ethernet OUI.
    EXPECT_KEY(parse(eth(100).u8(0xaa).u8(0xaa).u8(0x03).u8(0).u8(0).u8(1).u16(0x0800).zeros(30)).key,
               eth_key(0x05ff));
}

TEST(PacketEthernet, SnapCarriesTheEthertype) {
    const Bytes snap = Bytes{0xaa, 0xaa, 0x03, 0, 0, 0};
    const Parsed p = parse(eth(60).add(snap).u16(0x0800).add(ipv4(17, udp(1, 2))));
    FlowKey want = ipv4_key(17);
    want.tp_src = htons(1);
    want.tp_dst = htons(2);
    EXPECT_KEY(p.key, want);
    EXPECT_EQ(p.layout.l3_offset, 22);
    EXPECT_EQ(p.layout.l4_offset, 42);

    // A SNAP type below 0x600 is no ethertype, but the header was consumed.
    const Parsed low = parse(eth(60).add(snap).u16(0x0500).zeros(20));
    EXPECT_KEY(low.key, eth_key(0x05ff));
    EXPECT_EQ(low.layout.l3_offset, 22);
}

// ----------------------------------------------------------------- VLANs

TEST(PacketVlan, SingleTagSetsPresentAndDropsDei) {
    // PCP 5, DEI set, VID 0x123.
    const Parsed p = parse(eth_tagged({{0x8100, 0xb123}}, 0x0800).add(ipv4(17, udp(1, 2))));
    FlowKey want = ipv4_key(17);
    want.vlans[0] = {htons(0x8100), htons(0xb123)};
    want.tp_src = htons(1);
    want.tp_dst = htons(2);
    EXPECT_KEY(p.key, want);
    EXPECT_EQ(p.layout.vlan_count, 1);
    EXPECT_EQ(p.layout.ethertype_offset(), 16);
    EXPECT_EQ(p.layout.l3_offset, 18);

    // DEI clear: the present bit is added.
    EXPECT_EQ(parse(eth_tagged({{0x8100, 0xa123}}, 0x88cc)).key.vlans[0].tci, htons(0xb123));
    // VID 0, PCP 0: the tag is still present.
    EXPECT_EQ(parse(eth_tagged({{0x8100, 0x0000}}, 0x88cc)).key.vlans[0].tci, htons(kVlanPresent));
}

TEST(PacketVlan, QinqOuterFirst) {
    const Parsed p = parse(eth_tagged({{0x88a8, 0x0064}, {0x8100, 0xe00a}}, 0x86dd).add(ipv6(17, udp(5, 6))));
    FlowKey want = ipv6_key(17);
    want.vlans[0] = {htons(0x88a8), htons(0x1064)};
    want.vlans[1] = {htons(0x8100), htons(0xf00a)};
    want.tp_src = htons(5);
    want.tp_dst = htons(6);
    EXPECT_KEY(p.key, want);
    EXPECT_EQ(p.layout.vlan_count, 2);
    EXPECT_EQ(PacketLayout::vlan_tag_offset(1), 16);
    EXPECT_EQ(p.layout.l3_offset, 22);
}

TEST(PacketVlan, ThirdTagIsPayload) {
    const Parsed p = parse(eth_tagged({{0x8100, 1}, {0x8100, 2}, {0x8100, 3}}, 0x0800).add(ipv4(17, udp(1, 2))));
    FlowKey want = eth_key(0x8100);
    want.vlans[0] = {htons(0x8100), htons(0x1001)};
    want.vlans[1] = {htons(0x8100), htons(0x1002)};
    EXPECT_KEY(p.key, want);
    EXPECT_EQ(p.layout.l3_offset, 22);  // right after the third tag's TPID
}

TEST(PacketVlan, TruncatedTagIsNotParsed) {
    // A tag needs its 4 bytes plus the following ethertype.
    const Bytes frame = eth_tagged({{0x8100, 0x0005}}, 0x0800);  // 18 bytes
    for (size_t n = 14; n < 18; ++n) {
        const Parsed p = parse(frame.prefix(n));
        EXPECT_KEY(p.key, eth_key(0x8100));
        EXPECT_EQ(p.layout.vlan_count, 0);
        EXPECT_EQ(p.layout.l3_offset, 14);
    }
    FlowKey want = eth_key(0x0800);
    want.vlans[0] = {htons(0x8100), htons(0x1005)};
    EXPECT_KEY(parse(frame).key, want);
}

TEST(PacketVlan, LimitOfOneLeavesInnerTagAsType) {
    set_vlan_limit(1);
    EXPECT_EQ(vlan_limit(), 1u);
    const Parsed p = parse(eth_tagged({{0x88a8, 1}, {0x8100, 2}}, 0x0800).add(ipv4(17, udp(1, 2))));
    set_vlan_limit(0);
    EXPECT_EQ(vlan_limit(), 2u);
    FlowKey want = eth_key(0x8100);
    want.vlans[0] = {htons(0x88a8), htons(0x1001)};
    EXPECT_KEY(p.key, want);
    EXPECT_EQ(p.layout.l3_offset, 18);
}

// ------------------------------------------------------------------ ARP

TEST(PacketArp, EthernetIpv4Arp) {
    const Parsed p = parse(eth(0x0806).add(arp(2)).zeros(18));
    FlowKey want = eth_key(0x0806);
    want.nw_proto = 2;
    want.nw_src = htonl(0xc0a80001);
    want.nw_dst = htonl(0xc0a80002);
    std::memcpy(want.arp_sha, kMacA.data(), 6);
    std::memcpy(want.arp_tha, kMacB.data(), 6);
    EXPECT_KEY(p.key, want);
    EXPECT_EQ(p.layout.flags, kLayoutL3);
    EXPECT_EQ(p.layout.l4_offset, kNoOffset);

    // RARP is parsed the same way.
    FlowKey rarp = want;
    rarp.dl_type = htons(0x8035);
    rarp.nw_proto = 3;
    EXPECT_KEY(parse(eth(0x8035).add(arp(3))).key, rarp);

    // Opcodes above 255 do not fit nw_proto: it reads 0, the rest stays.
    FlowKey big = want;
    big.nw_proto = 0;
    EXPECT_KEY(parse(eth(0x0806).add(arp(0x0102))).key, big);
}

TEST(PacketArp, OnlyEthernetIpv4ArpIsParsed) {
    EXPECT_KEY(parse(eth(0x0806).add(arp(1, 6))).key, eth_key(0x0806));
    EXPECT_KEY(parse(eth(0x0806).add(arp(1, 1, 0x86dd))).key, eth_key(0x0806));
    EXPECT_KEY(parse(eth(0x0806).add(arp(1, 1, 0x0800, 8))).key, eth_key(0x0806));
    EXPECT_KEY(parse(eth(0x0806).add(arp(1, 1, 0x0800, 6, 16))).key, eth_key(0x0806));
    // 27 of the 28 bytes.
    EXPECT_KEY(parse(eth(0x0806).add(arp(1)).prefix(14 + 27)).key, eth_key(0x0806));
}

// ----------------------------------------------------------------- IPv4

TEST(PacketIpv4, TcpFields) {
    Ipv4Opts o;
    o.tos = 0xb9;
    o.ttl = 3;
    o.src = 0x01020304;
    o.dst = 0x05060708;
    // All 12 flag bits plus the data offset nibble: only the low 12 bits count.
    const Parsed p = parse(eth(0x0800).add(ipv4(6, tcp(1234, 80, 0xfff), o)), 9);
    FlowKey want = ipv4_key(6, o);
    want.in_port = 9;
    want.tp_src = htons(1234);
    want.tp_dst = htons(80);
    want.tcp_flags = htons(0x0fff);
    EXPECT_KEY(p.key, want);
    EXPECT_EQ(p.layout.l3_offset, 14);
    EXPECT_EQ(p.layout.l4_offset, 34);
    EXPECT_EQ(p.layout.l2_pad, 0);
    EXPECT_EQ(p.layout.flags, kLayoutL3 | kLayoutL4);

    EXPECT_EQ(parse(eth(0x0800).add(ipv4(6, tcp(1, 2, 0x012)))).key.tcp_flags, htons(0x012));
}

TEST(PacketIpv4, OptionsMoveTheTransportHeader) {
    Ipv4Opts o;
    o.options = Bytes().u8(7).u8(11).u8(4).zeros(8).u8(0);  // record route, 12 bytes
    const Parsed p = parse(eth(0x0800).add(ipv4(17, udp(53, 5353), o)));
    FlowKey want = ipv4_key(17, o);
    want.tp_src = htons(53);
    want.tp_dst = htons(5353);
    EXPECT_KEY(p.key, want);
    EXPECT_EQ(p.layout.l4_offset, 14 + 32);
}

TEST(PacketIpv4, Fragments) {
    Ipv4Opts first;
    first.frag_off = 0x2000;  // MF, offset 0
    FlowKey want = ipv4_key(17, first);
    want.nw_frag = kFragAny;
    want.tp_src = htons(1);
    want.tp_dst = htons(2);
    EXPECT_KEY(parse(eth(0x0800).add(ipv4(17, udp(1, 2), first))).key, want);

    for (const uint16_t frag_off : {0x0001, 0x2001, 0x1fff}) {
        Ipv4Opts later;
        later.frag_off = frag_off;
        FlowKey later_want = ipv4_key(17, later);
        later_want.nw_frag = kFragAny | kFragLater;
        const Parsed p = parse(eth(0x0800).add(ipv4(17, udp(1, 2), later)));
        EXPECT_KEY(p.key, later_want);  // no ports on later fragments
        EXPECT_EQ(p.layout.l4_offset, 34);
        EXPECT_EQ(p.layout.flags, kLayoutL3);
    }

    Ipv4Opts dont_fragment;
    dont_fragment.frag_off = 0x4000;
    EXPECT_EQ(parse(eth(0x0800).add(ipv4(17, udp(1, 2), dont_fragment))).key.nw_frag, 0);
}

TEST(PacketIpv4, MalformedHeadersHideL3) {
    const FlowKey none = eth_key(0x0800);
    Ipv4Opts o;
    o.ihl = 4;  // shorter than the fixed header
    EXPECT_KEY(parse(eth(0x0800).add(ipv4(17, udp(1, 2), o))).key, none);
    o = {};
    o.ihl = 15;  // 60 bytes, but only 28 present
    EXPECT_KEY(parse(eth(0x0800).add(ipv4(17, udp(1, 2), o))).key, none);
    o = {};
    o.tot_len = 19;  // less than the header
    EXPECT_KEY(parse(eth(0x0800).add(ipv4(17, udp(1, 2), o))).key, none);
    o = {};
    o.tot_len = 29;  // one more than present
    EXPECT_KEY(parse(eth(0x0800).add(ipv4(17, udp(1, 2), o))).key, none);
    // 19 bytes of header.
    EXPECT_KEY(parse(eth(0x0800).add(ipv4(17, Bytes()).prefix(19))).key, none);
    const Parsed p = parse(eth(0x0800).add(ipv4(17, Bytes()).prefix(19)));
    EXPECT_EQ(p.layout.l3_offset, 14);
    EXPECT_EQ(p.layout.l4_offset, kNoOffset);
    EXPECT_EQ(p.layout.flags, 0);
}

TEST(PacketIpv4, VersionNibbleIsNotChecked) {
    Bytes frame = eth(0x0800).add(ipv4(17, udp(1, 2)));
    frame[14] = 0x65;
    FlowKey want = ipv4_key(17);
    want.tp_src = htons(1);
    want.tp_dst = htons(2);
    EXPECT_KEY(parse(frame).key, want);
}

TEST(PacketIpv4, TotalLengthTrimsPadding) {
    // tot_len covers the IP header and 4 UDP bytes; 30 bytes of padding follow.
    Ipv4Opts o;
    o.tot_len = 24;
    const Parsed p = parse(eth(0x0800).add(ipv4(17, udp(1, 2), o)).zeros(26));
    EXPECT_KEY(p.key, ipv4_key(17, o));
    EXPECT_EQ(p.layout.l2_pad, 30);
    EXPECT_EQ(p.layout.flags, kLayoutL3);

    // Minimum-size frame padding after a complete datagram is ignored.
    const Parsed padded = parse(eth(0x0800).add(ipv4(17, udp(1, 2))).zeros(18));
    EXPECT_EQ(padded.key.tp_dst, htons(2));
    EXPECT_EQ(padded.layout.l2_pad, 18);
}

TEST(PacketIpv4, PaddingMustFit16Bits) {
    // OVS keeps the Ethernet padding length in 16 bits: 65535 bytes of
    // padding are fine, one more hides the IP header.
    FlowKey want = ipv4_key(17);
    want.tp_src = htons(1);
    want.tp_dst = htons(2);
    const Parsed ok = parse(eth(0x0800).add(ipv4(17, udp(1, 2))).zeros(65535));
    EXPECT_KEY(ok.key, want);
    EXPECT_EQ(ok.layout.l2_pad, 65535);
    EXPECT_KEY(parse(eth(0x0800).add(ipv4(17, udp(1, 2))).zeros(65536)).key, eth_key(0x0800));

    FlowKey want6 = ipv6_key(17);
    want6.tp_src = htons(1);
    want6.tp_dst = htons(2);
    EXPECT_KEY(parse(eth(0x86dd).add(ipv6(17, udp(1, 2))).zeros(65535)).key, want6);
    EXPECT_KEY(parse(eth(0x86dd).add(ipv6(17, udp(1, 2))).zeros(65536)).key, eth_key(0x86dd));
}

TEST(PacketIpv4, ShortTransportHeaders) {
    const auto transport_of = [](uint8_t proto, const Bytes& l4) { return parse(eth(0x0800).add(ipv4(proto, l4))).key; };
    // TCP: 19 bytes, data offset below 5, data offset beyond the datagram.
    EXPECT_KEY(transport_of(6, tcp(1, 2, 2).prefix(19)), ipv4_key(6));
    EXPECT_KEY(transport_of(6, tcp(1, 2, 2, 4)), ipv4_key(6));
    EXPECT_KEY(transport_of(6, tcp(1, 2, 2, 6).prefix(23)), ipv4_key(6));
    FlowKey with_options = ipv4_key(6);
    with_options.tp_src = htons(1);
    with_options.tp_dst = htons(2);
    with_options.tcp_flags = htons(2);
    EXPECT_KEY(transport_of(6, tcp(1, 2, 2, 6)), with_options);
    // UDP 7 of 8, SCTP 11 of 12, ICMP 7 of 8, IGMP 7 of 8.
    EXPECT_KEY(transport_of(17, udp(1, 2).prefix(7)), ipv4_key(17));
    EXPECT_KEY(transport_of(132, sctp(1, 2).prefix(11)), ipv4_key(132));
    EXPECT_KEY(transport_of(1, icmp(8, 0).prefix(7)), ipv4_key(1));
    EXPECT_KEY(transport_of(2, icmp(0x11, 0).prefix(7)), ipv4_key(2));
}

TEST(PacketIpv4, SctpIcmpIgmp) {
    FlowKey sctp_want = ipv4_key(132);
    sctp_want.tp_src = htons(3868);
    sctp_want.tp_dst = htons(2905);
    EXPECT_KEY(parse(eth(0x0800).add(ipv4(132, sctp(3868, 2905)))).key, sctp_want);

    // ICMP type and code are stored as htons(value).
    FlowKey icmp_want = ipv4_key(1);
    icmp_want.tp_src = htons(3);
    icmp_want.tp_dst = htons(13);
    const Parsed p = parse(eth(0x0800).add(ipv4(1, icmp(3, 13))));
    EXPECT_KEY(p.key, icmp_want);
    const auto* tp = reinterpret_cast<const uint8_t*>(&p.key.tp_src);
    EXPECT_EQ(tp[0], 0);
    EXPECT_EQ(tp[1], 3);
    EXPECT_EQ(tp[3], 13);

    FlowKey igmp_want = ipv4_key(2);
    igmp_want.tp_src = htons(0x16);
    igmp_want.tp_dst = htons(0x05);
    EXPECT_KEY(parse(eth(0x0800).add(ipv4(2, icmp(0x16, 0x05)))).key, igmp_want);

    // Other protocols: no transport fields.
    const Parsed gre = parse(eth(0x0800).add(ipv4(47, Bytes().zeros(20))));
    EXPECT_KEY(gre.key, ipv4_key(47));
    EXPECT_EQ(gre.layout.flags, kLayoutL3);
}

// ----------------------------------------------------------------- IPv6

TEST(PacketIpv6, HeaderFields) {
    Ipv6Opts o;
    o.traffic_class = 0xe5;
    o.label = 0xabcde;
    o.hop_limit = 2;
    const Parsed p = parse(eth(0x86dd).add(ipv6(6, tcp(443, 50000, 0x018), o)));
    FlowKey want = ipv6_key(6, o);
    want.tp_src = htons(443);
    want.tp_dst = htons(50000);
    want.tcp_flags = htons(0x018);
    EXPECT_KEY(p.key, want);
    EXPECT_EQ(p.layout.l4_offset, 54);
    EXPECT_EQ(p.layout.flags, kLayoutL3 | kLayoutL4);
}

TEST(PacketIpv6, ExtensionHeaderChain) {
    const Bytes chain = ext6(43, 0) + ext6(60, 1) + ext6(51, 0) + ah6(17, 4) + udp(7, 8);
    const Parsed p = parse(eth(0x86dd).add(ipv6(0, chain)));
    FlowKey want = ipv6_key(17);
    want.tp_src = htons(7);
    want.tp_dst = htons(8);
    EXPECT_KEY(p.key, want);
    EXPECT_EQ(p.layout.l4_offset, 14 + 40 + 8 + 16 + 8 + 24);
}

TEST(PacketIpv6, Fragments) {
    // First fragment (offset 0, M): a fragment, transport parsed.
    FlowKey first = ipv6_key(17);
    first.nw_frag = kFragAny;
    first.tp_src = htons(1);
    first.tp_dst = htons(2);
    EXPECT_KEY(parse(eth(0x86dd).add(ipv6(44, frag6(17, 0x0001) + udp(1, 2)))).key, first);

    // Atomic fragment (offset 0, no M): not a fragment.
    FlowKey atomic = first;
    atomic.nw_frag = 0;
    EXPECT_KEY(parse(eth(0x86dd).add(ipv6(44, frag6(17, 0x0000) + udp(1, 2)))).key, atomic);

    // Later fragment: nw_proto is the fragment header (44), no transport.
    FlowKey later = ipv6_key(44);
    later.nw_frag = kFragAny | kFragLater;
    const Parsed p = parse(eth(0x86dd).add(ipv6(0, ext6(44, 0) + frag6(17, 0x0008) + udp(1, 2))));
    EXPECT_KEY(p.key, later);
    EXPECT_EQ(p.layout.l4_offset, 14 + 40 + 8 + 8);
    EXPECT_EQ(p.layout.flags, kLayoutL3);
}

TEST(PacketIpv6, MalformedExtensionHeadersKeepOnlyAddresses) {
    FlowKey addresses_only = eth_key(0x86dd);
    std::memcpy(addresses_only.ipv6_src, kIp6A.data(), 16);
    std::memcpy(addresses_only.ipv6_dst, kIp6B.data(), 16);
    Ipv6Opts o;
    o.label = 0x12345;
    o.traffic_class = 0x20;
    // Extension header longer than the payload.
    EXPECT_KEY(parse(eth(0x86dd).add(ipv6(0, ext6(17, 2).prefix(16), o))).key, addresses_only);
    // Fewer than 8 bytes for the next extension header.
    EXPECT_KEY(parse(eth(0x86dd).add(ipv6(60, Bytes().zeros(7), o))).key, addresses_only);
    EXPECT_KEY(parse(eth(0x86dd).add(ipv6(44, frag6(17, 8).prefix(7), o))).key, addresses_only);
    const Parsed p = parse(eth(0x86dd).add(ipv6(51, ah6(6, 3).prefix(12), o)));
    EXPECT_KEY(p.key, addresses_only);
    EXPECT_EQ(p.layout.l4_offset, kNoOffset);
    EXPECT_EQ(p.layout.flags, 0);
}

TEST(PacketIpv6, PayloadLength) {
    // Longer than present: no L3 fields at all.
    Ipv6Opts o;
    o.payload_len = 9;
    EXPECT_KEY(parse(eth(0x86dd).add(ipv6(17, udp(1, 2), o))).key, eth_key(0x86dd));
    EXPECT_KEY(parse(eth(0x86dd).add(ipv6(17, Bytes()).prefix(39))).key, eth_key(0x86dd));
    // Shorter than present: the rest is padding, UDP needs 8 bytes inside.
    o.payload_len = 6;
    const Parsed p = parse(eth(0x86dd).add(ipv6(17, udp(1, 2), o)));
    EXPECT_KEY(p.key, ipv6_key(17));
    EXPECT_EQ(p.layout.l2_pad, 2);
    // Zero (a jumbogram): nothing after the fixed header.
    o.payload_len = 0;
    EXPECT_KEY(parse(eth(0x86dd).add(ipv6(17, udp(1, 2), o))).key, ipv6_key(17));
}

TEST(PacketIpv6, IcmpAndForeignTransports) {
    FlowKey echo = ipv6_key(58);
    echo.tp_src = htons(128);
    EXPECT_KEY(parse(eth(0x86dd).add(ipv6(58, icmp(128, 0)))).key, echo);
    // ICMP (proto 1) inside IPv6 is still read as ICMP, as OVS does.
    FlowKey icmp4 = ipv6_key(1);
    icmp4.tp_src = htons(8);
    EXPECT_KEY(parse(eth(0x86dd).add(ipv6(1, icmp(8, 0)))).key, icmp4);
    EXPECT_KEY(parse(eth(0x86dd).add(ipv6(58, icmp(128, 0).prefix(7)))).key, ipv6_key(58));
}

// ------------------------------------------------------- neighbor discovery

FlowKey nd_key(uint8_t type, bool target, const Mac& sll, const Mac& tll) {
    FlowKey k = ipv6_key(58);
    k.tp_src = htons(type);
    if (target) std::memcpy(k.nd_target, kTarget.data(), 16);
    std::memcpy(k.arp_sha, sll.data(), 6);
    std::memcpy(k.arp_tha, tll.data(), 6);
    return k;
}

Parsed parse_nd(uint8_t type, const Bytes& options, uint8_t code = 0) {
    return parse(eth(0x86dd).add(ipv6(58, nd(type, options, code))));
}

constexpr Mac kZeroMac = {};

TEST(PacketNd, SolicitationAndAdvertisement) {
    const Parsed ns = parse_nd(135, lla_opt(1, kMacA));
    EXPECT_KEY(ns.key, nd_key(135, true, kMacA, kZeroMac));
    EXPECT_EQ(ns.layout.flags, kLayoutL3 | kLayoutL4 | kLayoutNd);
    EXPECT_KEY(parse_nd(136, lla_opt(2, kMacB)).key, nd_key(136, true, kZeroMac, kMacB));
    // Both options, with an unknown option between them and 4 trailing bytes.
    EXPECT_KEY(parse_nd(136, lla_opt(1, kMacA) + Bytes().u8(5).u8(1).zeros(6) + lla_opt(2, kMacB) + Bytes().zeros(4)).key,
               nd_key(136, true, kMacA, kMacB));
    // No options.
    EXPECT_KEY(parse_nd(135, Bytes()).key, nd_key(135, true, kZeroMac, kZeroMac));
}

TEST(PacketNd, OptionRules) {
    // Link-layer options longer than 8 bytes are skipped, not taken.
    EXPECT_KEY(parse_nd(135, Bytes().u8(1).u8(2).arr(kMacA).zeros(8)).key, nd_key(135, true, kZeroMac, kZeroMac));
    // Length 0 or past the end stops the walk and keeps what was found.
    EXPECT_KEY(parse_nd(135, lla_opt(1, kMacA) + Bytes().u8(3).u8(0).zeros(6) + lla_opt(2, kMacB)).key,
               nd_key(135, true, kMacA, kZeroMac));
    EXPECT_KEY(parse_nd(136, lla_opt(2, kMacB) + Bytes().u8(1).u8(9).arr(kMacA)).key,
               nd_key(136, true, kZeroMac, kMacB));
    // A duplicate link-layer option invalidates target and addresses.
    const Parsed dup = parse_nd(135, lla_opt(1, kMacA) + lla_opt(2, kMacB) + lla_opt(1, kMacB));
    EXPECT_KEY(dup.key, nd_key(135, false, kZeroMac, kZeroMac));
    EXPECT_EQ(dup.layout.flags, kLayoutL3 | kLayoutL4);
    EXPECT_KEY(parse_nd(136, lla_opt(2, kMacA) + lla_opt(2, kMacB)).key, nd_key(136, false, kZeroMac, kZeroMac));
    // ... unless the first one carried the zero address.
    EXPECT_KEY(parse_nd(135, lla_opt(1, kZeroMac) + lla_opt(1, kMacB)).key, nd_key(135, true, kMacB, kZeroMac));
}

TEST(PacketNd, NotNeighborDiscovery) {
    // Code 1: plain ICMPv6, no ND fields.
    FlowKey code1 = ipv6_key(58);
    code1.tp_src = htons(135);
    code1.tp_dst = htons(1);
    EXPECT_KEY(parse_nd(135, lla_opt(1, kMacA), 1).key, code1);
    // Router advertisement (134) carries options but is not NS/NA.
    FlowKey ra = ipv6_key(58);
    ra.tp_src = htons(134);
    EXPECT_KEY(parse_nd(134, lla_opt(1, kMacA)).key, ra);
    // Truncated target: type/code only.
    const Bytes frame = eth(0x86dd).add(ipv6(58, nd(135, Bytes()).prefix(8 + 15)));
    EXPECT_KEY(parse(frame).key, nd_key(135, false, kZeroMac, kZeroMac));
}

// ------------------------------------------------ truncation and fuzzing

std::vector<Bytes> sample_frames() {
    Ipv4Opts opts;
    opts.options = Bytes().u8(1).u8(1).u8(1).u8(0);
    Ipv4Opts later_fragment;
    later_fragment.frag_off = 0x2003;
    return {
        eth(0x0800).add(ipv4(6, tcp(1, 2, 0x12, 7), opts)),
        eth_tagged({{0x88a8, 7}, {0x8100, 8}}, 0x0800).add(ipv4(17, udp(1, 2))),
        eth(0x86dd).add(ipv6(0, ext6(44, 1) + frag6(6, 1) + tcp(5, 6, 0x10))),
        eth(0x86dd).add(ipv6(58, nd(136, lla_opt(1, kMacA) + lla_opt(2, kMacB)))),
        eth(0x0806).add(arp(1)),
        eth(60).u8(0xaa).u8(0xaa).u8(3).u8(0).u8(0).u8(0).u16(0x86dd).add(ipv6(132, sctp(1, 2))),
        eth(0x0800).add(ipv4(1, icmp(8, 0))),
        eth(0x86dd).add(ipv6(0, ext6(51, 0) + ah6(60, 2) + ext6(58, 0) + nd(135, lla_opt(1, kMacA)))),
        eth(0x0800).add(ipv4(17, udp(1, 2) + udp(3, 4), later_fragment)),
        eth_tagged({{0x8100, 0xffff}}, 0x0806).add(arp(2)),
        eth(40).u8(0x42).u8(0x42).u8(3).zeros(40),
    };
}

TEST(PacketTruncation, EveryPrefixParsesAsFarAsValid) {
    for (const Bytes& frame : sample_frames()) {
        const FlowKey full = parse(frame).key;
        for (size_t n = 0; n <= frame.size(); ++n) {
            const Parsed p = parse(frame.prefix(n));
            // Nothing is invented: every nonzero byte of a truncated key is
            // the same as in the full frame's key, except for dl_type of a
            // VLAN tag that no longer fits.
            const auto* got = reinterpret_cast<const uint8_t*>(&p.key);
            const auto* want = reinterpret_cast<const uint8_t*>(&full);
            for (size_t i = 0; i < sizeof(FlowKey); ++i) {
                const bool dl_type_byte = i == offsetof(FlowKey, dl_type) || i == offsetof(FlowKey, dl_type) + 1;
                if (got[i] != 0 && !dl_type_byte) {
                    ASSERT_EQ(got[i], want[i]) << "byte " << i << " prefix " << n << " of " << frame_hex(frame.vec());
                }
            }
            // The IP datagram length never fits a truncated frame.
            if (n < frame.size() && n >= 14 && p.key.dl_type != htons(0x0806)) {
                EXPECT_EQ(p.key.nw_ttl, 0) << "prefix " << n;
            }
        }
    }
}

// Header byte values that steer the parsers: lengths, protocol numbers,
// ethertype halves, ND types.
constexpr std::array<uint8_t, 20> kInteresting = {0, 1, 2, 4, 5, 6, 8, 0x11, 0x2b, 0x2c, 0x33, 0x3a,
                                                  0x3c, 0x45, 0x81, 0x84, 0x86, 0x87, 0xdd, 0xff};

// One of the sample frames, mutated: bit flips, an interesting header
// byte, a truncation with a random tail, or random bytes after the MACs.
std::vector<uint8_t> mutated_frame(std::mt19937& rng, const std::vector<Bytes>& samples) {
    const auto uniform = [&rng](uint32_t bound) { return static_cast<uint32_t>(rng() % bound); };
    std::vector<uint8_t> frame = samples[uniform(static_cast<uint32_t>(samples.size()))].vec();
    switch (uniform(4)) {
    case 0:  // bit flips in the headers
        for (uint32_t k = 1 + uniform(3); k > 0; --k) {
            frame[uniform(std::min<uint32_t>(90, frame.size()))] ^= static_cast<uint8_t>(1u << uniform(8));
        }
        break;
    case 1:  // a header byte set to an interesting value
        frame[uniform(std::min<uint32_t>(90, frame.size()))] =
            kInteresting[uniform(static_cast<uint32_t>(kInteresting.size()))];
        break;
    case 2:  // truncated, then a random tail
        frame.resize(uniform(static_cast<uint32_t>(frame.size()) + 1));
        for (uint32_t k = uniform(24); k > 0; --k) frame.push_back(static_cast<uint8_t>(rng()));
        break;
    default:  // fully random after the MACs
        frame.resize(12);
        for (uint32_t k = uniform(100); k > 0; --k) frame.push_back(static_cast<uint8_t>(rng()));
        if (uniform(2)) {
            const uint16_t types[] = {0x0800, 0x86dd, 0x0806, 0x8100, 0x88a8, 0x8035, 0x0040};
            const uint16_t type = types[uniform(7)];
            if (frame.size() >= 14) {
                frame[12] = static_cast<uint8_t>(type >> 8);
                frame[13] = static_cast<uint8_t>(type);
            }
        }
        break;
    }
    return frame;
}

TEST(PacketFuzz, ReferenceAndFastPathAgreeOnMutatedFrames) {
    std::mt19937 rng(12345);
    const std::vector<Bytes> samples = sample_frames();
    for (int iteration = 0; iteration < 300000; ++iteration) {
        const std::vector<uint8_t> frame = mutated_frame(rng, samples);
        if (iteration % 1000 == 0) set_vlan_limit(1 + rng() % 2);
        parse(frame, rng());
        if (::testing::Test::HasFailure()) break;
    }
    set_vlan_limit(2);
}

// The simple-match extraction against the miniflow's: whenever it takes a
// frame, its words are the key's, and the key's other words but the
// transport word are zero (what SimpleMatch assumes of them).
TEST(PacketSimple, SimpleKeyIsTheMiniflowsWordsOnMutatedFrames) {
    std::mt19937 rng(777);
    const std::vector<Bytes> samples = sample_frames();
    test_frames::FrameGen gen(778);  // VLAN-tagged IPv4 among its frames
    unsigned taken = 0, tagged = 0;
    for (int iteration = 0; iteration < 200000; ++iteration) {
        const std::vector<uint8_t> frame = iteration % 2 ? mutated_frame(rng, samples) : gen.frame(8).vec();
        const uint32_t in_port = 1 + rng() % 4;
        SimpleKey simple;
        if (!extract_simple(frame.data(), static_cast<uint32_t>(frame.size()), in_port, simple)) continue;
        ++taken;
        Miniflow mf;
        PacketLayout layout;
        extract_miniflow(frame.data(), static_cast<uint32_t>(frame.size()), in_port, mf, layout);
        const FlowKey key = miniflow_expand(mf);
        ASSERT_LE(layout.vlan_count, 1) << frame_hex(frame);
        tagged += layout.vlan_count;
        ASSERT_NE(layout.flags & kLayoutL3, 0) << frame_hex(frame);
        uint64_t covered = uint64_t{1} << (kFlowWords - 1);
        for (unsigned p = 0; p < kSimpleKeyWords; ++p) {
            const unsigned word = kSimpleKeyWordIndex[p];
            covered |= uint64_t{1} << word;
            ASSERT_EQ(simple.words[p], flow_words(key)[word]) << "word " << word << " of " << frame_hex(frame);
        }
        for (unsigned w = 0; w < kFlowWords; ++w) {
            if (!(covered & (uint64_t{1} << w))) ASSERT_EQ(flow_words(key)[w], 0u) << "word " << w << " of " << frame_hex(frame);
        }
    }
    // Mutations keep many frames plain IPv4: the comparison ran.
    EXPECT_GT(taken, 20000u);
    EXPECT_GT(tagged, 1000u);
}

TEST(PacketSimple, OnlyIpv4WithAtMostOneTagAndAValidHeader) {
    SimpleKey key;
    const auto takes = [&key](const Bytes& frame) {
        return extract_simple(frame.vec().data(), static_cast<uint32_t>(frame.size()), 1, key);
    };
    for (const Bytes& frame : sample_frames()) {
        Miniflow mf;
        PacketLayout layout;
        extract_miniflow(frame.vec().data(), static_cast<uint32_t>(frame.size()), 1, mf, layout);
        const FlowKey full = miniflow_expand(mf);
        const bool plain_ipv4 = layout.vlan_count <= 1 && full.dl_type == htons(0x0800) && (layout.flags & kLayoutL3);
        EXPECT_EQ(takes(frame), plain_ipv4) << frame_hex(frame.vec());
    }
}

TEST(PacketBurst, MatchesPerPacketExtraction) {
    const std::vector<Bytes> samples = sample_frames();
    std::vector<PacketView> views;
    for (const Bytes& frame : samples) views.push_back({frame.vec().data(), static_cast<uint32_t>(frame.size())});
    std::vector<Miniflow> flows(views.size());
    std::vector<PacketLayout> layouts(views.size());
    extract_burst(static_cast<unsigned>(views.size()), [&](unsigned i) { return views[i]; }, 4, flows.data(),
                  layouts.data());
    for (size_t i = 0; i < views.size(); ++i) {
        FlowKey key;
        PacketLayout layout;
        parse_flow_key(views[i].data, views[i].len, 4, key, layout);
        EXPECT_KEY(miniflow_expand(flows[i]), key);
        EXPECT_EQ(check_map(flows[i].map, key, layout), "");
        EXPECT_EQ(std::memcmp(&layouts[i], &layout, sizeof layout), 0);
    }
}

TEST(PacketMiniflow, MapFollowsTheParsePath) {
    const auto map_of = [](const Bytes& frame, uint32_t in_port = 1) {
        Miniflow mf;
        PacketLayout layout;
        extract_miniflow(frame.vec().data(), static_cast<uint32_t>(frame.size()), in_port, mf, layout);
        parse(frame, in_port);  // and the content matches the reference
        return mf.map;
    };
    // Untagged IPv4/TCP: the VLAN word is in the map although zero.
    EXPECT_EQ(map_of(eth(0x0800).add(ipv4(6, tcp(1, 2, 2)))), bits({0, 2, 3, 4, 5, 10, 15}));
    // in_port 0 and all-zero addresses: same map, zero words included.
    Ipv4Opts zero;
    zero.src = 0;
    zero.dst = 0;
    EXPECT_EQ(map_of(Bytes().zeros(12).u16(0x0800).add(ipv4(6, tcp(1, 2, 2), zero)), 0), bits({0, 2, 3, 4, 5, 10, 15}));
    EXPECT_EQ(map_of(eth(0x0800).prefix(10)), bits({0}));
    EXPECT_EQ(map_of(eth(0x0800).add(ipv4(6, Bytes()).prefix(10))), bits({0, 2, 3, 4}));
    EXPECT_EQ(map_of(eth(0x0806).add(arp(1))), bits({0, 2, 3, 4, 5, 10, 13, 14}));
    EXPECT_EQ(map_of(eth(0x86dd).add(ipv6(58, nd(135, lla_opt(1, kMacA))))),
              bits({0, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}));
    EXPECT_EQ(map_of(eth(0x86dd).add(ipv6(60, Bytes().zeros(4)))), bits({0, 2, 3, 4, 6, 7, 8, 9}));
    // ICMP echo reply: type 0, code 0, a zero transport word that is kept.
    EXPECT_EQ(map_of(eth(0x0800).add(ipv4(1, icmp(0, 0)))), bits({0, 2, 3, 4, 5, 10, 15}));
}

}  // namespace
}  // namespace flowpath
