// Tests of the packet action executor (src/actions):
//  - test vectors recorded from Open vSwitch 3.1 (actions_ovs_vectors.inc:
//    input frame, the flowpath action list, the frames OVS sent);
//  - every SetField on every protocol that has it: the re-parsed key shows
//    exactly the change, and every checksum is still right (recomputed in
//    full here, independently of the executor);
//  - a wrong checksum stays exactly as wrong; UDP checksum 0 stays 0;
//  - VLAN push/pop/modify with layout updates, dec_ttl, several outputs;
//  - truncated frames and random bytes: buffers are exactly as large as the
//    packet, so ASan (or a crash) catches any access outside them.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "flowpath/actions.hpp"
#include "flowpath/packet.hpp"
#include "packet_builders.hpp"

namespace flowpath {
namespace {

using namespace test_frames;
using F = SetField;
using Frame = std::vector<uint8_t>;

// ------------------------------------------------------------- helpers

Frame from_hex(const char* hex) {
    Frame out;
    for (size_t i = 0; hex[i] && hex[i + 1]; i += 2) out.push_back(static_cast<uint8_t>(std::stoi(std::string(hex + i, 2), nullptr, 16)));
    return out;
}

std::string to_hex(const Frame& frame) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (uint8_t b : frame) {
        out += digits[b >> 4];
        out += digits[b & 15];
    }
    return out;
}

Action S(SetField field, std::initializer_list<uint8_t> bytes) {
    const std::vector<uint8_t> value(bytes);
    EXPECT_EQ(value.size(), set_field_width(field));
    return Action::set(field, value.data());
}
Action O(uint32_t port) { return Action::output(port); }
Action D() { return Action::of(ActionType::kDecTtl); }
Action PU(uint16_t tpid) { return Action::push_vlan(tpid); }
Action PO() { return Action::of(ActionType::kPopVlan); }

/// A packet in a heap block of exactly headroom + len + tailroom bytes, so
/// ASan flags any access outside the room the executor was given.
class TestPacket {
public:
    TestPacket(const Frame& frame, uint32_t headroom = 8, uint32_t tailroom = 0)
        : block_(new uint8_t[headroom + frame.size() + tailroom]) {
        std::memset(block_.get(), 0xee, headroom + frame.size() + tailroom);
        if (!frame.empty()) std::memcpy(block_.get() + headroom, frame.data(), frame.size());
        pkt = {block_.get() + headroom, static_cast<uint32_t>(frame.size()), headroom, tailroom};
        FlowKey key;
        parse_flow_key(pkt.data, pkt.len, 1, key, layout);
    }
    Frame bytes() const { return Frame(pkt.data, pkt.data + pkt.len); }

    PacketBuffer pkt;
    PacketLayout layout;

private:
    std::unique_ptr<uint8_t[]> block_;
};

/// Runs `actions`; returns the frames sent, per port, in order.
std::map<uint32_t, std::vector<Frame>> run(TestPacket& packet, const std::vector<Action>& actions,
                                           bool* ok = nullptr) {
    std::map<uint32_t, std::vector<Frame>> sent;
    const bool result = execute_actions(packet.pkt, packet.layout, actions.data(), actions.size(),
                                        [&](uint32_t port, const PacketBuffer& pkt, bool) {
                                            sent[port].emplace_back(pkt.data, pkt.data + pkt.len);
                                        });
    if (ok) *ok = result;
    return sent;
}

FlowKey parse(const Frame& frame, PacketLayout* layout_out = nullptr) {
    FlowKey key;
    PacketLayout layout;
    parse_flow_key(frame.data(), static_cast<uint32_t>(frame.size()), 1, key, layout);
    if (layout_out) *layout_out = layout;
    return key;
}

// ------------------------------------- independent checksum computation

uint32_t sum16(const uint8_t* p, size_t n, uint32_t sum = 0) {
    for (size_t i = 0; i + 1 < n; i += 2) sum += uint32_t{p[i]} << 8 | p[i + 1];
    if (n & 1) sum += uint32_t{p[n - 1]} << 8;
    return sum;
}
uint16_t fold(uint32_t sum) {
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<uint16_t>(sum);
}
uint32_t crc32c_bitwise(const uint8_t* p, size_t n) {
    uint32_t crc = 0xffffffff;
    for (size_t i = 0; i < n; ++i) {
        crc ^= p[i];
        for (int b = 0; b < 8; ++b) crc = (crc >> 1) ^ ((crc & 1) ? 0x82f63b78 : 0);
    }
    return ~crc;
}

/// One checksum of a frame: where it is and how far off it is. For Internet
/// checksums `error` is the folded sum over everything it covers, the field
/// included: 0xffff (or 0) when right, and an incremental update keeps any
/// other value. For SCTP it is field ^ CRC32c.
struct Checksum {
    std::string what;
    uint32_t error;
    bool zero_udp;
};

uint32_t normalized(uint16_t folded) { return folded == 0 ? 0xffff : folded; }

/// Every checksum the frame carries that can be verified: the IPv4 header,
/// and the transport checksum of an unfragmented datagram whose header is
/// complete (none behind an IPv6 routing header with segments left, whose
/// pseudo-header uses another address).
std::vector<Checksum> checksums(const Frame& frame) {
    PacketLayout layout;
    const FlowKey key = parse(frame, &layout);
    std::vector<Checksum> out;
    if (!(layout.flags & kLayoutL3) || layout.l4_offset == kNoOffset) return out;
    const uint8_t* l3 = frame.data() + layout.l3_offset;
    const bool v4 = key.dl_type == htons(0x0800);
    if (v4) out.push_back({"ipv4", normalized(fold(sum16(l3, layout.l4_offset - layout.l3_offset))), false});
    if (key.nw_frag || !(layout.flags & kLayoutL4)) return out;
    const uint8_t* l4 = frame.data() + layout.l4_offset;
    const uint32_t l4_len = static_cast<uint32_t>(frame.size() - layout.l2_pad - layout.l4_offset);
    uint32_t pseudo = v4 ? sum16(l3 + 12, 8) : sum16(l3 + 8, 32);
    pseudo += key.nw_proto + (l4_len >> 16) + (l4_len & 0xffff);
    if (!v4) {  // an IPv6 routing header with segments left changes the pseudo-header
        for (uint32_t pos = layout.l3_offset + 40, proto = l3[6]; pos < layout.l4_offset;) {
            const uint8_t* ext = frame.data() + pos;
            if (proto == 43 && ext[3] != 0) return out;
            pos += proto == 51 ? (ext[1] + 2u) * 4 : (ext[1] + 1u) * 8;
            proto = ext[0];
        }
    }
    switch (key.nw_proto) {
    case 6: out.push_back({"tcp", normalized(fold(sum16(l4, l4_len, pseudo))), false}); break;
    case 17: out.push_back({"udp", normalized(fold(sum16(l4, l4_len, pseudo))), l4[6] == 0 && l4[7] == 0}); break;
    case 1: if (v4) out.push_back({"icmp", normalized(fold(sum16(l4, l4_len))), false}); break;
    case 58: if (!v4) out.push_back({"icmpv6", normalized(fold(sum16(l4, l4_len, pseudo))), false}); break;
    case 132: {
        Frame copy(l4, l4 + l4_len);
        std::memset(copy.data() + 8, 0, 4);
        const uint32_t field = l4[8] | l4[9] << 8 | l4[10] << 16 | uint32_t{l4[11]} << 24;
        out.push_back({"sctp", field ^ crc32c_bitwise(copy.data(), copy.size()), false});
        break;
    }
    }
    return out;
}

/// Fills in every checksum that checksums() can see, correctly.
Frame with_checksums(Frame frame) {
    PacketLayout layout;
    const FlowKey key = parse(frame, &layout);
    if (!(layout.flags & kLayoutL3) || layout.l4_offset == kNoOffset) return frame;
    const auto put = [&](size_t at, uint16_t value) {
        frame[at] = static_cast<uint8_t>(value >> 8);
        frame[at + 1] = static_cast<uint8_t>(value);
    };
    if (key.dl_type == htons(0x0800)) {
        put(layout.l3_offset + 10, 0);
        const uint32_t error = checksums(frame)[0].error;
        put(layout.l3_offset + 10, static_cast<uint16_t>(~error));
    }
    const size_t l4 = layout.l4_offset;
    const std::map<uint8_t, size_t> at = {{6, 16}, {17, 6}, {1, 2}, {58, 2}};
    if (at.count(key.nw_proto) && (layout.flags & kLayoutL4)) {
        put(l4 + at.at(key.nw_proto), 0);
        for (const Checksum& c : checksums(frame)) {
            if (c.what == "ipv4" || c.what == "sctp") continue;
            const uint16_t value = static_cast<uint16_t>(~c.error);
            put(l4 + at.at(key.nw_proto), key.nw_proto == 17 && value == 0 ? 0xffff : value);
        }
    }
    if (key.nw_proto == 132 && (layout.flags & kLayoutL4)) {
        std::memset(frame.data() + l4 + 8, 0, 4);
        const uint32_t crc = crc32c_bitwise(frame.data() + l4, frame.size() - layout.l2_pad - l4);
        for (int i = 0; i < 4; ++i) frame[l4 + 8 + i] = static_cast<uint8_t>(crc >> (8 * i));
    }
    return frame;
}

bool all_correct(const Frame& frame) {
    for (const Checksum& c : checksums(frame)) {
        if (c.zero_udp) continue;
        if (c.what == "sctp" ? c.error != 0 : c.error != 0xffff) return false;
    }
    return true;
}

// ------------------------------------------------ OVS test vectors

struct OvsVector {
    const char* name;
    const char* rule;  // what OVS ran (ovs-ofctl -O OpenFlow13 add-flows)
    const char* input;
    std::vector<Action> actions;
    std::vector<std::pair<uint32_t, const char*>> outputs;
};

const std::vector<OvsVector>& ovs_vectors() {
    static const std::vector<OvsVector> vectors = {
#include "actions_ovs_vectors.inc"
    };
    return vectors;
}

class OvsVectorTest : public ::testing::TestWithParam<unsigned> {
protected:
    void SetUp() override { set_vlan_limit(GetParam()); }
    void TearDown() override { set_vlan_limit(2); }
};

TEST_P(OvsVectorTest, MatchesOpenVSwitch) {
    for (const OvsVector& v : ovs_vectors()) {
        SCOPED_TRACE(std::string(v.name) + " [" + v.rule + "]");
        TestPacket packet(from_hex(v.input));
        const auto sent = run(packet, v.actions);
        std::map<uint32_t, std::vector<Frame>> want;
        for (const auto& [port, hex] : v.outputs) want[port].push_back(from_hex(hex));
        ASSERT_EQ(sent.size(), want.size());
        for (const auto& [port, frames] : want) {
            ASSERT_EQ(sent.count(port), 1u) << "port " << port;
            ASSERT_EQ(sent.at(port).size(), frames.size());
            for (size_t i = 0; i < frames.size(); ++i) EXPECT_EQ(to_hex(sent.at(port)[i]), to_hex(frames[i]));
        }
    }
}

// OVS ran with its default vlan-limit of 1; the bytes must not depend on it.
INSTANTIATE_TEST_SUITE_P(VlanLimit, OvsVectorTest, ::testing::Values(1u, 2u));

// ---------------------------------------- every field, every protocol

Bytes udp_data(uint16_t sport, uint16_t dport, const Bytes& payload) {
    return Bytes().u16(sport).u16(dport).u16(static_cast<uint16_t>(8 + payload.size())).u16(0).add(payload);
}
const Bytes kPayload = Bytes{'p', 'a', 'y', 'l', 'o', 'a', 'd', '!', 0x13};

/// Test frames with correct checksums, one per protocol and encapsulation.
std::vector<std::pair<std::string, Frame>> sample_frames() {
    Ipv4Opts o4;
    o4.tos = 0xa7;
    Ipv6Opts o6;
    o6.traffic_class = 0x5b;
    o6.label = 0x9abcd;
    Ipv4Opts with_options;
    with_options.options = Bytes{1, 1, 1, 0};
    const std::vector<std::pair<std::string, Bytes>> frames = {
        {"ipv4 tcp", eth(0x0800) + ipv4(6, tcp(1000, 80, 0x18) + kPayload, o4)},
        {"ipv4 tcp options", eth(0x0800) + ipv4(6, tcp(1, 2, 0x02, 7) + kPayload, with_options)},
        {"ipv4 udp", eth(0x0800) + ipv4(17, udp_data(53, 5353, kPayload), o4)},
        {"ipv4 udp padded", eth(0x0800) + ipv4(17, udp_data(1, 2, Bytes{1}), o4) + Bytes().zeros(17)},
        {"ipv4 sctp", eth(0x0800) + ipv4(132, sctp(7, 9) + kPayload)},
        {"ipv4 icmp", eth(0x0800) + ipv4(1, icmp(8, 0) + kPayload)},
        {"ipv6 tcp", eth(0x86dd) + ipv6(6, tcp(443, 5000, 0x10) + kPayload, o6)},
        {"ipv6 udp", eth(0x86dd) + ipv6(17, udp_data(1, 2, kPayload), o6)},
        {"ipv6 sctp", eth(0x86dd) + ipv6(132, sctp(5, 6) + kPayload)},
        {"ipv6 icmpv6", eth(0x86dd) + ipv6(58, icmp(128, 0) + kPayload)},
        {"ipv6 ext tcp", eth(0x86dd) + ipv6(0, ext6(60, 1) + ext6(51, 0) + ah6(6, 1) + tcp(3, 4, 0x11), o6)},
        {"ipv6 first fragment udp", eth(0x86dd) + ipv6(44, frag6(17, 0x0001) + udp_data(9, 10, kPayload))},
        {"ipv6 routing sl=0 udp", eth(0x86dd) + ipv6(43, Bytes{17, 0, 0, 0, 0, 0, 0, 0} + udp_data(7, 8, kPayload))},
        {"nd ns sll", eth(0x86dd) + ipv6(58, nd(135, lla_opt(1, kMacA)))},
        {"nd na tll", eth(0x86dd) + ipv6(58, nd(136, lla_opt(2, kMacB)))},
        {"arp", eth(0x0806) + arp(1)},
        {"vlan ipv4 udp", eth_tagged({{0x8100, 0x3005}}, 0x0800) + ipv4(17, udp_data(11, 12, kPayload))},
        {"qinq ipv6 tcp", eth_tagged({{0x88a8, 0x0007}, {0x8100, 0xe008}}, 0x86dd) + ipv6(6, tcp(1, 2, 2))},
        {"snap ipv4 tcp", Bytes().arr(kDst).arr(kSrc).u16(60).add(Bytes{0xaa, 0xaa, 3, 0, 0, 0}).u16(0x0800) +
                              ipv4(6, tcp(5, 6, 0x10))},
    };
    std::vector<std::pair<std::string, Frame>> out;
    for (const auto& [name, bytes] : frames) out.emplace_back(name, with_checksums(bytes.vec()));
    return out;
}

/// The fields a translator may set on a frame with this key (their
/// prerequisites hold).
std::vector<SetField> applicable(const FlowKey& key, const PacketLayout& layout) {
    std::vector<SetField> out = {F::kEthSrc, F::kEthDst};
    if (layout.vlan_count) out.insert(out.end(), {F::kVlanVid, F::kVlanPcp});
    const bool v4 = key.dl_type == htons(0x0800), v6 = key.dl_type == htons(0x86dd);
    if (key.dl_type == htons(0x0806)) out.insert(out.end(), {F::kArpOp, F::kArpSpa, F::kArpTpa, F::kArpSha, F::kArpTha});
    if (!v4 && !v6) return out;
    out.insert(out.end(), {F::kNwTos, F::kNwEcn, F::kNwTtl});
    if (v4) out.insert(out.end(), {F::kIpv4Src, F::kIpv4Dst});
    if (v6) out.insert(out.end(), {F::kIpv6Src, F::kIpv6Dst, F::kIpv6Label});
    if (!(layout.flags & kLayoutL4)) return out;
    if (key.nw_proto == 6) out.insert(out.end(), {F::kTcpSrc, F::kTcpDst});
    if (key.nw_proto == 17) out.insert(out.end(), {F::kUdpSrc, F::kUdpDst});
    if (key.nw_proto == 132) out.insert(out.end(), {F::kSctpSrc, F::kSctpDst});
    if (key.nw_proto == 1 && v4) out.insert(out.end(), {F::kIcmpType, F::kIcmpCode});
    // (type and code of an ND message are left alone: the frame would stop being ND)
    if (key.nw_proto == 58 && v6 && !(layout.flags & kLayoutNd)) out.insert(out.end(), {F::kIcmpv6Type, F::kIcmpv6Code});
    if (layout.flags & kLayoutNd) {
        out.push_back(F::kNdTarget);
        out.push_back(ntohs(key.tp_src) == 135 ? F::kNdSll : F::kNdTll);
    }
    return out;
}

/// A value for `field` that differs from the sample frames' ones.
Action new_value(SetField field, uint8_t seed) {
    uint8_t value[16];
    for (unsigned i = 0; i < 16; ++i) value[i] = static_cast<uint8_t>(0x31 + 7 * i + seed);
    if (field == F::kVlanVid) value[0] = static_cast<uint8_t>(0x10 | (value[0] & 0x0f));
    if (field == F::kVlanPcp) value[0] &= 7;
    if (field == F::kNwEcn) value[0] = static_cast<uint8_t>(1 + (seed & 1));  // samples have ECN 0 or 3
    if (field == F::kNwTos) value[0] &= 0xfc;
    if (field == F::kIpv6Label) {
        value[0] = 0;
        value[1] &= 0x0f;
    }
    if (field == F::kArpOp) value[0] = 0;
    return Action::set(field, value);
}

/// What the re-parsed key must look like after `action` on a frame whose key was `key`.
FlowKey expected_key(FlowKey key, const Action& action) {
    const uint8_t* v = action.value;
    uint16_t be16;
    std::memcpy(&be16, v, 2);
    switch (action.field) {
    case F::kEthSrc: std::memcpy(key.dl_src, v, 6); break;
    case F::kEthDst: std::memcpy(key.dl_dst, v, 6); break;
    case F::kVlanVid: key.vlans[0].tci = htons((ntohs(key.vlans[0].tci) & 0xe000) | 0x1000 | (ntohs(be16) & 0x0fff)); break;
    case F::kVlanPcp: key.vlans[0].tci = htons((ntohs(key.vlans[0].tci) & 0x0fff) | 0x1000 | (v[0] & 7) << 13); break;
    case F::kVlanTci: if (ntohs(be16) & 0x1000) key.vlans[0].tci = be16; break;
    case F::kIpv4Src: case F::kArpSpa: std::memcpy(&key.nw_src, v, 4); break;
    case F::kIpv4Dst: case F::kArpTpa: std::memcpy(&key.nw_dst, v, 4); break;
    case F::kIpv6Src: std::memcpy(key.ipv6_src, v, 16); break;
    case F::kIpv6Dst: std::memcpy(key.ipv6_dst, v, 16); break;
    case F::kIpv6Label: std::memcpy(&key.ipv6_label, v, 4); break;
    case F::kNwTos: key.nw_tos = static_cast<uint8_t>((v[0] & 0xfc) | (key.nw_tos & 3)); break;
    case F::kNwEcn: key.nw_tos = static_cast<uint8_t>((key.nw_tos & 0xfc) | (v[0] & 3)); break;
    case F::kNwTtl: key.nw_ttl = v[0]; break;
    case F::kTcpSrc: case F::kUdpSrc: case F::kSctpSrc: key.tp_src = be16; break;
    case F::kTcpDst: case F::kUdpDst: case F::kSctpDst: key.tp_dst = be16; break;
    case F::kIcmpType: case F::kIcmpv6Type: key.tp_src = htons(v[0]); break;
    case F::kIcmpCode: case F::kIcmpv6Code: key.tp_dst = htons(v[0]); break;
    case F::kArpOp: key.nw_proto = v[1]; break;
    case F::kArpSha: case F::kNdSll: std::memcpy(key.arp_sha, v, 6); break;
    case F::kArpTha: case F::kNdTll: std::memcpy(key.arp_tha, v, 6); break;
    case F::kNdTarget: std::memcpy(key.nd_target, v, 16); break;
    case F::kInPort: break;
    }
    return key;
}

TEST(SetFieldTest, EveryFieldOnEveryProtocolKeepsChecksumsRight) {
    unsigned checked = 0;
    for (const auto& [name, frame] : sample_frames()) {
        PacketLayout layout;
        const FlowKey key = parse(frame, &layout);
        ASSERT_TRUE(all_correct(frame)) << name;
        for (SetField field : applicable(key, layout)) {
            for (uint8_t seed : {0, 1}) {
                const Action action = new_value(field, seed);
                SCOPED_TRACE(name + " field " + std::to_string(static_cast<int>(field)));
                TestPacket packet(frame);
                EXPECT_TRUE(set_field(packet.pkt, packet.layout, field, action.value));
                const Frame out = packet.bytes();
                EXPECT_NE(to_hex(out), to_hex(frame));
                EXPECT_TRUE(expected_key(key, action) == parse(out)) << to_hex(out);
                EXPECT_TRUE(all_correct(out)) << to_hex(out);
                ++checked;
            }
        }
    }
    EXPECT_GT(checked, 250u);
}

TEST(SetFieldTest, WrongChecksumsStayExactlyAsWrong) {
    for (const auto& [name, frame] : sample_frames()) {
        PacketLayout layout;
        const FlowKey key = parse(frame, &layout);
        // Spoil each checksum field (IPv4 header at l3 + 10, transport at its place).
        std::vector<size_t> fields;
        if (key.dl_type == htons(0x0800)) fields.push_back(layout.l3_offset + 10u);
        const std::map<uint8_t, size_t> at = {{6, 16}, {17, 6}, {1, 2}, {58, 2}, {132, 8}};
        if ((layout.flags & kLayoutL4) && at.count(key.nw_proto)) fields.push_back(layout.l4_offset + at.at(key.nw_proto));
        for (size_t field_at : fields) {
            Frame bad = frame;
            bad[field_at] ^= 0x5a;
            bad[field_at + 1] += 0x33;
            const std::vector<Checksum> before = checksums(bad);
            for (SetField field : applicable(key, layout)) {
                SCOPED_TRACE(name + " field " + std::to_string(static_cast<int>(field)));
                TestPacket packet(bad);
                set_field(packet.pkt, packet.layout, field, new_value(field, 3).value);
                const std::vector<Checksum> after = checksums(packet.bytes());
                ASSERT_EQ(before.size(), after.size());
                for (size_t i = 0; i < before.size(); ++i) EXPECT_EQ(before[i].error, after[i].error) << before[i].what;
            }
        }
    }
}

TEST(SetFieldTest, AbsentFieldsAreLeftAlone) {
    Ipv4Opts later_fragment;
    later_fragment.frag_off = 0x0010;
    const std::vector<std::pair<Frame, std::vector<SetField>>> cases = {
        {(eth(0x0800) + ipv4(17, udp_data(1, 2, kPayload))).vec(),
         {F::kIpv6Src, F::kIpv6Label, F::kVlanVid, F::kVlanPcp, F::kArpOp, F::kArpSpa, F::kNdTarget, F::kIcmpv6Type, F::kInPort}},
        {(eth(0x86dd) + ipv6(6, tcp(1, 2, 2))).vec(), {F::kIpv4Src, F::kIpv4Dst, F::kIcmpType, F::kArpTha, F::kNdSll}},
        {(eth(0x0806) + arp(1)).vec(), {F::kIpv4Src, F::kNwTos, F::kNwTtl, F::kTcpSrc, F::kIcmpCode}},
        // a later fragment has no transport header to change
        {(eth(0x0800) + ipv4(6, tcp(1, 2, 2), later_fragment)).vec(), {F::kTcpSrc, F::kTcpDst}},
        // IPv4 protocol 0: OVS commits no IP change
        {(eth(0x0800) + ipv4(0, kPayload)).vec(), {F::kIpv4Src, F::kIpv4Dst, F::kNwTos, F::kNwEcn, F::kNwTtl}},
        {(eth(0x8035) + arp(1)).vec(), {F::kArpOp, F::kArpSpa}},
        {(eth(0x86dd) + ipv6(58, nd(135, Bytes()))).vec(), {F::kNdSll, F::kNdTll}},
    };
    for (const auto& [frame, fields] : cases) {
        for (SetField field : fields) {
            TestPacket packet(frame);
            EXPECT_FALSE(set_field(packet.pkt, packet.layout, field, new_value(field, 0).value)) << static_cast<int>(field);
            EXPECT_EQ(to_hex(packet.bytes()), to_hex(frame));
        }
    }
}

TEST(SetFieldTest, UdpChecksumZeroStaysZero) {
    for (const Frame& frame : {(eth(0x0800) + ipv4(17, udp_data(1, 2, kPayload))).vec(),
                               (eth(0x86dd) + ipv6(17, udp_data(1, 2, kPayload))).vec()}) {
        for (SetField field : {F::kIpv4Src, F::kIpv4Dst, F::kIpv6Src, F::kIpv6Dst, F::kUdpSrc, F::kUdpDst}) {
            TestPacket packet(frame);
            const bool changed = set_field(packet.pkt, packet.layout, field, new_value(field, 0).value);
            const Frame out = packet.bytes();
            const size_t l4 = packet.layout.l4_offset;
            if (changed) {
                EXPECT_NE(to_hex(out), to_hex(frame));
            }
            EXPECT_EQ(out[l4 + 6], 0);
            EXPECT_EQ(out[l4 + 7], 0);
        }
    }
}

TEST(SetFieldTest, UdpChecksumComputedAsZeroIsSentAsFfff) {
    // Find a source port that makes the updated checksum 0 (it must become 0xffff).
    const Frame frame = with_checksums((eth(0x0800) + ipv4(17, udp_data(1, 2, kPayload))).vec());
    const size_t l4 = 34;
    const uint16_t hc = static_cast<uint16_t>(frame[l4 + 6] << 8 | frame[l4 + 7]);
    const uint16_t port = static_cast<uint16_t>(0xffff - fold(uint32_t{static_cast<uint16_t>(~hc)} + 0xfffe));
    TestPacket packet(frame);
    ASSERT_TRUE(set_field(packet.pkt, packet.layout, F::kUdpSrc, S(F::kUdpSrc, {uint8_t(port >> 8), uint8_t(port)}).value));
    const Frame out = packet.bytes();
    EXPECT_EQ(out[l4 + 6], 0xff);
    EXPECT_EQ(out[l4 + 7], 0xff);
    EXPECT_TRUE(all_correct(out));
}

TEST(SetFieldTest, SameValueChangesNothing) {
    for (const auto& [name, frame] : sample_frames()) {
        PacketLayout layout;
        const FlowKey key = parse(frame, &layout);
        for (SetField field : applicable(key, layout)) {
            if (field == F::kVlanVid || field == F::kVlanPcp) continue;  // may clear DEI: tested below
            // Setting a value the field already holds (the second time) changes nothing.
            const Action action = new_value(field, 0);
            TestPacket probe(frame);
            set_field(probe.pkt, probe.layout, field, action.value);
            set_field(probe.pkt, probe.layout, field, action.value);
            TestPacket once(frame);
            set_field(once.pkt, once.layout, field, action.value);
            EXPECT_EQ(to_hex(probe.bytes()), to_hex(once.bytes())) << name << " " << static_cast<int>(field);
        }
    }
}

// ----------------------------------------------------------- VLAN

TEST(VlanTest, PushPopKeepLayoutInStep) {
    const Frame frame = with_checksums((eth(0x0800) + ipv4(6, tcp(1, 2, 2) + kPayload)).vec());
    TestPacket packet(frame, 8);
    ASSERT_TRUE(push_vlan(packet.pkt, packet.layout, 0x88a8));
    PacketLayout reparsed;
    parse(packet.bytes(), &reparsed);
    EXPECT_EQ(std::memcmp(&reparsed, &packet.layout, sizeof reparsed), 0);
    EXPECT_EQ(packet.pkt.headroom, 4u);
    EXPECT_EQ(to_hex(packet.bytes()).substr(24, 8), "88a80000");
    ASSERT_TRUE(push_vlan(packet.pkt, packet.layout, 0x8100));
    parse(packet.bytes(), &reparsed);
    EXPECT_EQ(std::memcmp(&reparsed, &packet.layout, sizeof reparsed), 0);
    EXPECT_EQ(packet.layout.vlan_count, 2);
    // No headroom left, no tailroom: the push fails and changes nothing.
    const Frame before = packet.bytes();
    EXPECT_FALSE(push_vlan(packet.pkt, packet.layout, 0x8100));
    EXPECT_EQ(to_hex(packet.bytes()), to_hex(before));
    // Fields land at the shifted offsets.
    ASSERT_TRUE(set_field(packet.pkt, packet.layout, F::kTcpDst, S(F::kTcpDst, {0x12, 0x34}).value));
    EXPECT_EQ(parse(packet.bytes()).tp_dst, htons(0x1234));
    EXPECT_TRUE(all_correct(packet.bytes()));
    ASSERT_TRUE(pop_vlan(packet.pkt, packet.layout));
    ASSERT_TRUE(pop_vlan(packet.pkt, packet.layout));
    EXPECT_FALSE(pop_vlan(packet.pkt, packet.layout));
    parse(packet.bytes(), &reparsed);
    EXPECT_EQ(std::memcmp(&reparsed, &packet.layout, sizeof reparsed), 0);
    Frame want = frame;
    want[36] = 0x12, want[37] = 0x34;
    EXPECT_EQ(to_hex(packet.bytes()), to_hex(with_checksums(want)));
    EXPECT_EQ(packet.pkt.headroom, 8u);
}

TEST(VlanTest, PushUsesTailroomWithoutHeadroom) {
    const Frame frame = (eth(0x0806) + arp(2)).vec();
    TestPacket packet(frame, 2, 5);
    uint8_t* data = packet.pkt.data;
    ASSERT_TRUE(push_vlan(packet.pkt, packet.layout, 0x8100));
    EXPECT_EQ(packet.pkt.data, data);
    EXPECT_EQ(packet.pkt.tailroom, 1u);
    Frame want = frame;
    want.insert(want.begin() + 12, {0x81, 0x00, 0x00, 0x00});
    EXPECT_EQ(to_hex(packet.bytes()), to_hex(want));
    EXPECT_EQ(packet.layout.l3_offset, 18);
}

TEST(VlanTest, ModifyOuterTagOnly) {
    const Frame frame = (eth_tagged({{0x88a8, 0xb123}, {0x8100, 0x3456}}, 0x0800) + ipv4(17, udp_data(1, 2, {}))).vec();
    TestPacket packet(frame);
    ASSERT_TRUE(set_field(packet.pkt, packet.layout, F::kVlanVid, S(F::kVlanVid, {0x1f, 0xed}).value));
    EXPECT_EQ(to_hex(packet.bytes()).substr(24, 16), "88a8afed81003456");  // DEI cleared, PCP 5 kept
    ASSERT_TRUE(set_field(packet.pkt, packet.layout, F::kVlanPcp, S(F::kVlanPcp, {2}).value));
    EXPECT_EQ(to_hex(packet.bytes()).substr(24, 16), "88a84fed81003456");
    TestPacket untagged((eth(0x0800) + ipv4(17, udp_data(1, 2, {}))).vec());
    EXPECT_FALSE(set_field(untagged.pkt, untagged.layout, F::kVlanVid, S(F::kVlanVid, {0x10, 5}).value));
    EXPECT_FALSE(pop_vlan(untagged.pkt, untagged.layout));
}

TEST(VlanTest, WholeTciRewritesAPresentOuterTagOnly) {
    const Frame frame = (eth_tagged({{0x88a8, 0xb123}, {0x8100, 0x3456}}, 0x0800) + ipv4(17, udp_data(1, 2, {}))).vec();
    TestPacket packet(frame);
    ASSERT_TRUE(set_field(packet.pkt, packet.layout, F::kVlanTci, S(F::kVlanTci, {0x7f, 0xed}).value));
    EXPECT_EQ(to_hex(packet.bytes()).substr(24, 16), "88a86fed81003456");  // the present bit is not DEI
    // Without the present bit, or without a tag, nothing happens here (the
    // translator emits pops and pushes instead).
    EXPECT_FALSE(set_field(packet.pkt, packet.layout, F::kVlanTci, S(F::kVlanTci, {0x00, 0x05}).value));
    EXPECT_EQ(to_hex(packet.bytes()).substr(24, 16), "88a86fed81003456");
    TestPacket untagged((eth(0x0800) + ipv4(17, udp_data(1, 2, {}))).vec());
    EXPECT_FALSE(set_field(untagged.pkt, untagged.layout, F::kVlanTci, S(F::kVlanTci, {0x10, 5}).value));
    EXPECT_EQ(to_hex(untagged.bytes()), to_hex((eth(0x0800) + ipv4(17, udp_data(1, 2, {}))).vec()));
}

// -------------------------------------------------------- dec_ttl

TEST(DecTtlTest, Ipv4AndIpv6) {
    for (uint8_t ttl : {64, 1, 0, 255}) {
        Ipv4Opts o4;
        o4.ttl = ttl;
        Ipv6Opts o6;
        o6.hop_limit = ttl;
        for (const Frame& frame : {with_checksums((eth(0x0800) + ipv4(6, tcp(1, 2, 2), o4)).vec()),
                                   with_checksums((eth(0x86dd) + ipv6(17, udp_data(1, 2, kPayload), o6)).vec())}) {
            TestPacket packet(frame);
            EXPECT_EQ(dec_ttl(packet.pkt, packet.layout), ttl != 0);
            EXPECT_EQ(parse(packet.bytes()).nw_ttl, ttl == 0 ? 0 : ttl - 1);
            EXPECT_TRUE(all_correct(packet.bytes()));
        }
    }
    TestPacket arp_packet((eth(0x0806) + arp(1)).vec());
    EXPECT_FALSE(dec_ttl(arp_packet.pkt, arp_packet.layout));
}

// -------------------------------------------------------- outputs

TEST(ExecuteTest, EachOutputSeesTheBytesAtItsPoint) {
    const Frame frame = with_checksums((eth(0x0800) + ipv4(17, udp_data(1, 2, kPayload))).vec());
    TestPacket packet(frame);
    std::vector<std::tuple<uint32_t, Frame, bool>> seen;
    const std::vector<Action> actions = {O(1), S(F::kIpv4Src, {9, 9, 9, 9}), O(2), PU(0x8100), D(), O(3), PO(),
                                         S(F::kEthSrc, {1, 1, 1, 1, 1, 1})};
    ASSERT_TRUE(execute_actions(packet.pkt, packet.layout, actions.data(), actions.size(),
                                [&](uint32_t port, const PacketBuffer& pkt, bool last) {
                                    seen.emplace_back(port, Frame(pkt.data, pkt.data + pkt.len), last);
                                }));
    ASSERT_EQ(seen.size(), 3u);
    EXPECT_EQ(to_hex(std::get<1>(seen[0])), to_hex(frame));
    TestPacket expect2(frame);
    set_field(expect2.pkt, expect2.layout, F::kIpv4Src, S(F::kIpv4Src, {9, 9, 9, 9}).value);
    EXPECT_EQ(to_hex(std::get<1>(seen[1])), to_hex(expect2.bytes()));
    push_vlan(expect2.pkt, expect2.layout, 0x8100);
    dec_ttl(expect2.pkt, expect2.layout);
    EXPECT_EQ(to_hex(std::get<1>(seen[2])), to_hex(expect2.bytes()));
    EXPECT_FALSE(std::get<2>(seen[0]));
    EXPECT_FALSE(std::get<2>(seen[1]));
    EXPECT_TRUE(std::get<2>(seen[2]));
    // Nothing after the last output is applied: the tag is still there.
    EXPECT_EQ(to_hex(packet.bytes()), to_hex(expect2.bytes()));
}

TEST(ExecuteTest, PushWithoutRoomStopsTheList) {
    TestPacket packet((eth(0x0800) + ipv4(17, udp_data(1, 2, {}))).vec(), 0, 0);
    bool ok = true;
    const auto sent = run(packet, {O(1), PU(0x8100), O(2)}, &ok);
    EXPECT_FALSE(ok);
    EXPECT_EQ(sent.size(), 1u);
    EXPECT_EQ(sent.count(1), 1u);
}

// -------------------------------------------------- memory safety

/// Every action on every prefix of every sample frame (and on bit-flipped
/// copies): buffers are exactly as big as the room given, so ASan reports
/// any stray access.
TEST(MemorySafetyTest, TruncatedAndDamagedFrames) {
    std::vector<Action> all;
    for (int f = static_cast<int>(F::kInPort); f <= static_cast<int>(F::kNdTll); ++f) all.push_back(new_value(static_cast<F>(f), 5));
    all.insert(all.end(), {D(), PU(0x8100), PO()});
    std::mt19937 rng(7);
    for (unsigned limit : {1u, 2u}) {
        set_vlan_limit(limit);
        for (const auto& [name, frame] : sample_frames()) {
            for (size_t len = 0; len <= frame.size(); ++len) {
                Frame cut(frame.begin(), frame.begin() + len);
                for (int round = 0; round < 3; ++round) {
                    if (round > 0 && !cut.empty()) cut[rng() % cut.size()] ^= static_cast<uint8_t>(1 << (rng() % 8));
                    for (const Action& action : all) {
                        TestPacket packet(cut, 4, 0);
                        run(packet, {action, O(1)});
                        if (action.type == ActionType::kSetField || action.type == ActionType::kDecTtl) {
                            EXPECT_EQ(packet.pkt.len, cut.size());
                        }
                    }
                }
            }
        }
    }
    set_vlan_limit(2);
}

TEST(MemorySafetyTest, RandomFramesAndActionLists) {
    std::mt19937 rng(11);
    const auto samples = sample_frames();
    for (int i = 0; i < 3000; ++i) {
        Frame frame = samples[rng() % samples.size()].second;
        frame.resize(rng() % (frame.size() + 8));
        for (uint8_t& b : frame) if (rng() % 16 == 0) b = static_cast<uint8_t>(rng());
        std::vector<Action> actions;
        for (int n = static_cast<int>(rng() % 6); n >= 0; --n) {
            const unsigned pick = rng() % 40;
            if (pick < 31) actions.push_back(new_value(static_cast<F>(pick), static_cast<uint8_t>(rng())));
            else if (pick < 34) actions.push_back(D());
            else if (pick < 36) actions.push_back(PU(rng() % 2 ? 0x8100 : 0x88a8));
            else if (pick < 38) actions.push_back(PO());
            else actions.push_back(O(pick));
        }
        TestPacket packet(frame, rng() % 10, rng() % 10);
        run(packet, actions);
    }
}

}  // namespace
}  // namespace flowpath
