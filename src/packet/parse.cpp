// Reference flow-key parser: plain code, one header after the other, filling
// a FlowKey. It is the definition the fast path (extract.cpp) is tested
// against, and each malformed-frame rule below names the Open vSwitch 3.1
// behaviour it reproduces (docs/packet.md has the list).
//
// Convention: `p` points at the current header and `size` is how many bytes
// remain from `p` to the end of the current protocol unit (the frame, then
// the IP datagram once its length is known). Every read is preceded by a
// check against `size`.
#include <algorithm>
#include <cstring>

#include "flowpath/packet.hpp"
#include "flowpath/wire.hpp"

namespace flowpath {

namespace wire {
std::atomic<unsigned> g_vlan_limit{kMaxVlanTags};
}  // namespace wire

void set_vlan_limit(unsigned limit) {
    wire::g_vlan_limit.store(limit == 0 ? kMaxVlanTags : std::min(limit, kMaxVlanTags),
                             std::memory_order_relaxed);
}

unsigned vlan_limit() { return wire::g_vlan_limit.load(std::memory_order_relaxed); }

namespace {

using namespace wire;

/// A cursor over the bytes still to parse.
struct Cursor {
    const uint8_t* p;
    uint32_t size;

    void skip(uint32_t n) {
        p += n;
        size -= n;
    }
};

/// The ethertype after the VLAN tags: an 802.3 length (< 0x600) becomes
/// 0x05ff unless an LLC/SNAP header with the Ethernet OUI (00:00:00) follows
/// and carries a real ethertype; OVS skips that 8-byte header in every SNAP
/// case, even when the SNAP type is itself < 0x600.
uint16_t parse_ethertype(Cursor& cur) {
    const uint16_t type = read_be16(cur.p);
    cur.skip(2);
    if (type >= kEthTypeMin) return type;
    if (cur.size < kLlcSnapLen) return kDlTypeNone;
    const uint8_t* llc = cur.p;
    const bool snap = llc[0] == 0xaa && llc[1] == 0xaa && llc[2] == 0x03 && llc[3] == 0 &&
                      llc[4] == 0 && llc[5] == 0;
    if (!snap) return kDlTypeNone;
    const uint16_t snap_type = read_be16(llc + 6);
    cur.skip(kLlcSnapLen);
    return snap_type >= kEthTypeMin ? snap_type : kDlTypeNone;
}

/// ARP/RARP: only Ethernet/IPv4 ARP (htype 1, ptype 0x0800, hlen 6, plen 4,
/// all 28 bytes present) yields fields; anything else leaves them zero.
void parse_arp(Cursor cur, FlowKey& key, PacketLayout& layout) {
    if (cur.size < kArpEthIpv4Len) return;
    const uint8_t* arp = cur.p;
    if (read_be16(arp) != 1 || read_be16(arp + 2) != kEthTypeIpv4 || arp[4] != 6 || arp[5] != 4) {
        return;
    }
    const uint16_t opcode = read_be16(arp + 6);
    // OVS keeps only opcodes that fit the 8-bit nw_proto; larger ones read
    // as opcode 0 (the addresses are still extracted).
    if (opcode <= 0xff) key.nw_proto = static_cast<uint8_t>(opcode);
    std::memcpy(key.arp_sha, arp + 8, 6);
    std::memcpy(&key.nw_src, arp + 14, 4);
    std::memcpy(key.arp_tha, arp + 18, 6);
    std::memcpy(&key.nw_dst, arp + 24, 4);
    layout.flags |= kLayoutL3;
}

/// IPv4 header checks, as OVS: at least 20 bytes, 20 <= ihl*4 <= bytes
/// present, ihl*4 <= total length <= bytes present, and the Ethernet padding
/// after the datagram fits 16 bits. Failing any of them leaves all nw_* and
/// tp_* fields zero (dl_type stays 0x0800). The version nibble and the
/// checksum are not checked. On success the cursor covers the payload only
/// (total length minus header), so trailing padding is never parsed.
bool parse_ipv4(Cursor& cur, FlowKey& key, PacketLayout& layout) {
    if (cur.size < kIpv4HeaderLen) return false;
    const uint8_t* ip = cur.p;
    const uint32_t header_len = (ip[0] & 0x0fu) * 4;
    if (header_len < kIpv4HeaderLen || cur.size < header_len) return false;
    const uint32_t total_len = read_be16(ip + 2);
    if (total_len > cur.size || header_len > total_len || cur.size - total_len > 0xffff) return false;

    layout.l2_pad = static_cast<uint16_t>(cur.size - total_len);
    std::memcpy(&key.nw_src, ip + 12, 4);
    std::memcpy(&key.nw_dst, ip + 16, 4);
    key.nw_tos = ip[1];
    key.nw_ttl = ip[8];
    key.nw_proto = ip[9];
    // Any of MF or the offset makes a fragment; the DF bit does not.
    const uint16_t frag = read_be16(ip + 6);
    if (frag & (kIpv4MoreFragments | kIpv4FragOffsetMask)) {
        key.nw_frag = kFragAny;
        if (frag & kIpv4FragOffsetMask) key.nw_frag |= kFragLater;
    }
    cur.size = total_len;
    cur.skip(header_len);
    return true;
}

/// IPv6 extension headers (hop-by-hop, routing, destination options, AH,
/// fragment), as OVS walks them: each needs 8 bytes present before it is
/// read, and its full length (8 * (len + 1), AH: 4 * (len + 2), fragment:
/// 8) must be present too, else the whole chain fails. A fragment header
/// whose offset/flags word is nonzero marks the packet a fragment (an
/// "atomic" fragment, word zero, does not); a nonzero offset makes it a
/// later fragment: nw_proto becomes 44 and parsing stops there.
bool parse_ipv6_ext_headers(Cursor& cur, uint8_t& proto, uint8_t& frag) {
    while (is_ipv6_ext_header(proto)) {
        if (cur.size < 8) return false;
        const uint8_t* ext = cur.p;
        uint32_t ext_len;
        if (proto == kProtoFragment) {
            ext_len = 8;
            const uint16_t offset_flags = read_be16(ext + 2);
            if (offset_flags != 0) {
                frag = kFragAny;
                if (offset_flags & kIpv6FragOffsetMask) {
                    frag |= kFragLater;
                    cur.skip(ext_len);
                    proto = kProtoFragment;
                    return true;
                }
            }
        } else if (proto == kProtoAh) {
            ext_len = (ext[1] + 2u) * 4;
        } else {
            ext_len = (ext[1] + 1u) * 8;
        }
        if (cur.size < ext_len) return false;
        proto = ext[0];
        cur.skip(ext_len);
    }
    return true;
}

/// IPv6, as OVS: the 40-byte header and the whole payload length must be
/// present (padding beyond it must fit 16 bits), else no nw_* fields at all.
/// When the extension-header chain is malformed OVS has already stored the
/// addresses but nothing else: ipv6_label, nw_proto, nw_tos, nw_ttl and
/// nw_frag stay zero.
bool parse_ipv6(Cursor& cur, FlowKey& key, PacketLayout& layout) {
    if (cur.size < kIpv6HeaderLen) return false;
    const uint8_t* ip = cur.p;
    const uint32_t payload_len = read_be16(ip + 4);
    if (payload_len + kIpv6HeaderLen > cur.size) return false;
    if (cur.size - (payload_len + kIpv6HeaderLen) > 0xffff) return false;

    layout.l2_pad = static_cast<uint16_t>(cur.size - (payload_len + kIpv6HeaderLen));
    std::memcpy(key.ipv6_src, ip + 8, 16);
    std::memcpy(key.ipv6_dst, ip + 24, 16);
    cur.skip(kIpv6HeaderLen);
    cur.size = payload_len;

    const uint32_t version_class_label = read_be32(ip);
    uint8_t proto = ip[6];
    uint8_t frag = 0;
    if (!parse_ipv6_ext_headers(cur, proto, frag)) return false;

    key.ipv6_label = to_be32(version_class_label & kIpv6LabelMask);
    key.nw_tos = static_cast<uint8_t>(version_class_label >> 20);
    key.nw_ttl = ip[7];
    key.nw_proto = proto;
    key.nw_frag = frag;
    return true;
}

/// ICMPv6 neighbor solicitation/advertisement (code 0 only): the 16-byte
/// target, then 8-byte-unit options. As OVS 3.1 (checked with ovs-ofctl
/// parse-pcap): a frame too short for the target yields none (and no
/// options); an option of length 0 or longer than what remains ends the
/// option walk, keeping the target and the addresses found so far; a second
/// source (or target) link-layer option after one with a nonzero address
/// invalidates the target and both addresses, which all read zero. Only
/// link-layer options of exactly 8 bytes are taken; fewer than 8 trailing
/// bytes are ignored. Returns whether the ND fields came out valid.
bool parse_nd(Cursor cur, FlowKey& key) {
    if (cur.size < kNdTargetLen) return false;
    const uint8_t* target = cur.p;
    cur.skip(kNdTargetLen);

    uint8_t sll[6] = {};
    uint8_t tll[6] = {};
    const auto is_zero = [](const uint8_t* mac) {
        return std::all_of(mac, mac + 6, [](uint8_t b) { return b == 0; });
    };
    while (cur.size >= kNdOptUnit) {
        const uint8_t type = cur.p[0];
        const uint32_t opt_len = cur.p[1] * kNdOptUnit;
        if (opt_len == 0 || opt_len > cur.size) break;
        if (opt_len == kNdOptUnit && type == kNdOptSourceLinkAddr) {
            if (!is_zero(sll)) return false;
            std::memcpy(sll, cur.p + 2, 6);
        } else if (opt_len == kNdOptUnit && type == kNdOptTargetLinkAddr) {
            if (!is_zero(tll)) return false;
            std::memcpy(tll, cur.p + 2, 6);
        }
        cur.skip(opt_len);
    }
    std::memcpy(key.nd_target, target, 16);
    std::memcpy(key.arp_sha, sll, 6);
    std::memcpy(key.arp_tha, tll, 6);
    return true;
}

/// Transport fields. As OVS, the choice follows nw_proto alone, whatever
/// the IP version (ICMP over IPv6 or ICMPv6 over IPv4 are parsed as such),
/// and a header shorter than the protocol's minimum yields no fields.
void parse_transport(Cursor cur, FlowKey& key, PacketLayout& layout) {
    const uint8_t* l4 = cur.p;
    switch (key.nw_proto) {
    case kProtoTcp: {
        if (cur.size < kTcpHeaderLen) return;
        // The data offset must cover the fixed header and be present whole.
        const uint32_t header_len = (l4[12] >> 4) * 4u;
        if (header_len < kTcpHeaderLen || cur.size < header_len) return;
        std::memcpy(&key.tp_src, l4, 2);
        std::memcpy(&key.tp_dst, l4 + 2, 2);
        key.tcp_flags = to_be16(read_be16(l4 + 12) & kTcpFlagsMask);
        break;
    }
    case kProtoUdp:
        if (cur.size < kUdpHeaderLen) return;
        std::memcpy(&key.tp_src, l4, 2);
        std::memcpy(&key.tp_dst, l4 + 2, 2);
        break;
    case kProtoSctp:
        if (cur.size < kSctpHeaderLen) return;
        std::memcpy(&key.tp_src, l4, 2);
        std::memcpy(&key.tp_dst, l4 + 2, 2);
        break;
    case kProtoIcmp:
    case kProtoIgmp:
        // OVS stores the type and code as 16-bit values: htons(type).
        if (cur.size < (key.nw_proto == kProtoIcmp ? kIcmpHeaderLen : kIgmpHeaderLen)) return;
        key.tp_src = to_be16(l4[0]);
        key.tp_dst = to_be16(l4[1]);
        break;
    case kProtoIcmpv6:
        if (cur.size < kIcmpv6HeaderLen) return;
        key.tp_src = to_be16(l4[0]);
        key.tp_dst = to_be16(l4[1]);
        if (l4[1] == 0 && (l4[0] == kNdNeighborSolicit || l4[0] == kNdNeighborAdvert)) {
            cur.skip(kIcmpv6HeaderLen);
            if (parse_nd(cur, key)) layout.flags |= kLayoutNd;
        }
        break;
    default:
        return;
    }
    layout.flags |= kLayoutL4;
}

}  // namespace

void parse_flow_key(const uint8_t* data, uint32_t len, uint32_t in_port, FlowKey& key,
                    PacketLayout& layout) {
    key = FlowKey{};
    layout = PacketLayout{};
    key.in_port = in_port;
    // OVS needs a whole Ethernet header; a shorter frame has only metadata.
    if (len < kEthHeaderLen) return;

    std::memcpy(key.dl_dst, data, 6);
    std::memcpy(key.dl_src, data + 6, 6);
    Cursor cur{data + kMacPairLen, len - kMacPairLen};

    // A tag is taken only when its 4 bytes and the next ethertype are all
    // present; otherwise its TPID is the frame's dl_type.
    const unsigned max_tags = vlan_limit();
    unsigned tags = 0;
    while (tags < max_tags && is_vlan_tpid(read_be16(cur.p)) && cur.size >= kVlanTagLen + 2) {
        VlanTag& tag = key.vlans[tags];
        std::memcpy(&tag.tpid, cur.p, 2);
        // The wire's DEI bit and OpenFlow's "present" bit share 0x1000.
        tag.tci = to_be16(read_be16(cur.p + 2) | kVlanPresent);
        cur.skip(kVlanTagLen);
        ++tags;
    }
    layout.vlan_count = static_cast<uint8_t>(tags);

    const uint16_t dl_type = parse_ethertype(cur);
    key.dl_type = to_be16(dl_type);
    layout.l3_offset = static_cast<uint16_t>(cur.p - data);

    if (dl_type == kEthTypeIpv4) {
        if (!parse_ipv4(cur, key, layout)) return;
    } else if (dl_type == kEthTypeIpv6) {
        if (!parse_ipv6(cur, key, layout)) return;
    } else {
        if (dl_type == kEthTypeArp || dl_type == kEthTypeRarp) parse_arp(cur, key, layout);
        return;
    }
    layout.flags |= kLayoutL3;
    layout.l4_offset = static_cast<uint16_t>(cur.p - data);
    // Later fragments carry no transport header.
    if (key.nw_frag & kFragLater) return;
    parse_transport(cur, key, layout);
}

}  // namespace flowpath
