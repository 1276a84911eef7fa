// The single-action primitives of the packet action executor. Each rule
// below reproduces what Open vSwitch 3.1's userspace datapath does to the
// bytes; docs/actions.md gives the evidence (OVS runs) for each.
//
// Convention: every pointer into the packet is derived from a length check
// against pkt.len (or the transport length, which ends before the Ethernet
// padding), so no byte at or beyond pkt.data + pkt.len is touched.
#include <algorithm>
#include <cstring>

#include "../packet/ipv6_ext.hpp"
#include "checksum.hpp"
#include "flowpath/actions.hpp"

namespace flowpath {
namespace {

using namespace actions_detail;

constexpr uint16_t kEthTypeIpv4 = 0x0800;
constexpr uint16_t kEthTypeArp = 0x0806;
constexpr uint16_t kEthTypeIpv6 = 0x86dd;

constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kProtoUdp = 17;
constexpr uint8_t kProtoRouting = 43;
constexpr uint8_t kProtoFragment = 44;
constexpr uint8_t kProtoIcmpv6 = 58;
constexpr uint8_t kProtoSctp = 132;

constexpr uint32_t kMacPairLen = 12;
constexpr uint32_t kVlanTagLen = 4;
constexpr uint32_t kTciOffset = 14;          // TCI of the outer tag
constexpr uint32_t kIpv4HeaderLen = 20;
constexpr uint32_t kIpv6HeaderLen = 40;
constexpr uint32_t kTcpHeaderLen = 20;
constexpr uint32_t kUdpHeaderLen = 8;
constexpr uint32_t kSctpHeaderLen = 12;
constexpr uint32_t kIcmpHeaderLen = 8;       // what OVS needs before a type/code set
constexpr uint32_t kIcmpv6ChecksumEnd = 4;   // type, code, checksum
constexpr uint32_t kNdMessageLen = 24;       // ICMPv6 header, flags, target
constexpr uint32_t kNdOptUnit = 8;
constexpr uint8_t kNdOptSourceLinkAddr = 1;
constexpr uint8_t kNdOptTargetLinkAddr = 2;
constexpr uint32_t kMaxFrameAfterPush = 0xfffe;  // offsets stay below kNoOffset

// IPv4 header offsets.
constexpr uint32_t kIpv4Tos = 1;
constexpr uint32_t kIpv4Ttl = 8;
constexpr uint32_t kIpv4Proto = 9;
constexpr uint32_t kIpv4Checksum = 10;
constexpr uint32_t kIpv4Src = 12;
constexpr uint32_t kIpv4Dst = 16;
// IPv6 header offsets.
constexpr uint32_t kIpv6HopLimit = 7;
constexpr uint32_t kIpv6Src = 8;
constexpr uint32_t kIpv6Dst = 24;
// Transport checksum offsets.
constexpr uint32_t kTcpChecksum = 16;
constexpr uint32_t kUdpChecksum = 6;
constexpr uint32_t kSctpChecksum = 8;
constexpr uint32_t kIcmpChecksum = 2;  // ICMP and ICMPv6
constexpr uint32_t kNdTarget = 8;

/// The ethertype that introduced the L3 header (the one right before
/// l3_offset: after the VLAN tags, or the LLC/SNAP type), 0 if none.
uint16_t l3_ethertype(const PacketBuffer& pkt, const PacketLayout& layout) {
    if (layout.l3_offset == kNoOffset || layout.l3_offset < 2 || layout.l3_offset > pkt.len) return 0;
    return load_be16(pkt.data + layout.l3_offset - 2);
}

/// The IPv4 header, or null when OVS would not change it: the header did
/// not pass the parser's checks, or its protocol is 0 (OVS commits no IP
/// field change when the flow's nw_proto is 0).
uint8_t* ipv4_header(PacketBuffer& pkt, const PacketLayout& layout) {
    if (!(layout.flags & kLayoutL3) || l3_ethertype(pkt, layout) != kEthTypeIpv4) return nullptr;
    if (uint32_t{layout.l3_offset} + kIpv4HeaderLen > pkt.len) return nullptr;
    uint8_t* ip = pkt.data + layout.l3_offset;
    return ip[kIpv4Proto] != 0 ? ip : nullptr;
}

/// The IPv6 header, or null unless it passed the parser's checks (payload
/// length and extension headers; otherwise OVS's nw_proto is 0).
uint8_t* ipv6_header(PacketBuffer& pkt, const PacketLayout& layout) {
    if (!(layout.flags & kLayoutL3) || l3_ethertype(pkt, layout) != kEthTypeIpv6) return nullptr;
    if (uint32_t{layout.l3_offset} + kIpv6HeaderLen > pkt.len) return nullptr;
    return pkt.data + layout.l3_offset;
}

/// The transport bytes: from l4_offset to the end of the IP datagram (the
/// Ethernet padding excluded), as OVS's dp_packet_l4_size. Size 0 if none.
struct Transport {
    uint8_t* p;
    uint32_t size;
};

Transport transport(PacketBuffer& pkt, const PacketLayout& layout) {
    if (layout.l4_offset == kNoOffset || layout.l2_pad > pkt.len) return {nullptr, 0};
    const uint32_t end = pkt.len - layout.l2_pad;
    if (layout.l4_offset >= end) return {nullptr, 0};
    return {pkt.data + layout.l4_offset, end - layout.l4_offset};
}

void update_checksum(uint8_t* field, const uint8_t* old_bytes, const uint8_t* new_bytes, size_t count) {
    ChecksumUpdate update(load_be16(field));
    update.bytes(old_bytes, new_bytes, count);
    store_be16(field, update.result());
}

void update_checksum_word(uint8_t* field, uint16_t old_word, uint16_t new_word) {
    ChecksumUpdate update(load_be16(field));
    update.word(old_word, new_word);
    store_be16(field, update.result());
}

/// UDP: a checksum of 0 means "none" and stays 0; a computed 0 is sent as
/// 0xffff (RFC 768).
void update_udp_checksum(uint8_t* field, const uint8_t* old_bytes, const uint8_t* new_bytes, size_t count) {
    const uint16_t old_checksum = load_be16(field);
    if (old_checksum == 0) return;
    ChecksumUpdate update(old_checksum);
    update.bytes(old_bytes, new_bytes, count);
    const uint16_t result = update.result();
    store_be16(field, result != 0 ? result : 0xffff);
}

/// The transport checksum covers a pseudo-header with the IP addresses: an
/// address change updates it. As OVS, only the length of the transport
/// bytes is checked, not whether they are a transport header (an IPv4
/// later fragment gets its payload bytes "updated" too).
void update_pseudo_header(Transport l4, uint8_t proto, bool ipv6, const uint8_t* old_addr,
                          const uint8_t* new_addr, size_t addr_len) {
    if (proto == kProtoTcp && l4.size >= kTcpHeaderLen) {
        update_checksum(l4.p + kTcpChecksum, old_addr, new_addr, addr_len);
    } else if (proto == kProtoUdp && l4.size >= kUdpHeaderLen) {
        update_udp_checksum(l4.p + kUdpChecksum, old_addr, new_addr, addr_len);
    } else if (ipv6 && proto == kProtoIcmpv6 && l4.size >= kIcmpv6ChecksumEnd) {
        update_checksum(l4.p + kIcmpChecksum, old_addr, new_addr, addr_len);
    }
}

// ------------------------------------------------------------------ IPv4

bool set_ipv4_address(PacketBuffer& pkt, const PacketLayout& layout, uint32_t offset, const uint8_t* value) {
    uint8_t* ip = ipv4_header(pkt, layout);
    if (ip == nullptr) return false;
    uint8_t* addr = ip + offset;
    if (std::memcmp(addr, value, 4) == 0) return true;
    update_pseudo_header(transport(pkt, layout), ip[kIpv4Proto], false, addr, value, 4);
    update_checksum(ip + kIpv4Checksum, addr, value, 4);
    std::memcpy(addr, value, 4);
    return true;
}

/// TOS is the low byte of the header's first 16-bit word.
void set_ipv4_tos(uint8_t* ip, uint8_t tos) {
    if (ip[kIpv4Tos] == tos) return;
    update_checksum_word(ip + kIpv4Checksum, static_cast<uint16_t>(ip[0] << 8 | ip[kIpv4Tos]),
                         static_cast<uint16_t>(ip[0] << 8 | tos));
    ip[kIpv4Tos] = tos;
}

/// TTL is the high byte of the word it shares with the protocol.
void set_ipv4_ttl(uint8_t* ip, uint8_t ttl) {
    if (ip[kIpv4Ttl] == ttl) return;
    update_checksum_word(ip + kIpv4Checksum, static_cast<uint16_t>(ip[kIpv4Ttl] << 8 | ip[kIpv4Proto]),
                         static_cast<uint16_t>(ttl << 8 | ip[kIpv4Proto]));
    ip[kIpv4Ttl] = ttl;
}

// ------------------------------------------------------------------ IPv6

/// Which transport checksum an IPv6 address change updates, found as OVS
/// finds it: by walking the extension headers between the IPv6 header and
/// l4_offset (the walk of the fast parser: src/packet/ipv6_ext.hpp). The
/// walk stops at a routing header with segments left (the protocol then
/// reads 43, so nothing is updated), and a fragment header allows updates
/// only for a first fragment (offset 0, M set: neither an atomic nor a
/// later fragment).
struct Ipv6Transport {
    uint8_t proto;
    bool routing_pending;  // a routing header with segments left
    bool fragment_ok;
};

Ipv6Transport ipv6_transport(const PacketBuffer& pkt, const PacketLayout& layout) {
    const uint8_t* ip = pkt.data + layout.l3_offset;
    Ipv6Transport result{ip[6], false, true};
    const uint32_t start = uint32_t{layout.l3_offset} + kIpv6HeaderLen;
    if (layout.l4_offset == kNoOffset || layout.l4_offset > pkt.len || layout.l4_offset < start) return result;
    const uint8_t* p = pkt.data + start;
    uint32_t size = layout.l4_offset - start;
    uint8_t frag = 0;
    wire::walk_ipv6_ext_headers(p, size, result.proto, frag, [&](uint8_t proto, const uint8_t* ext) {
        if (proto == kProtoRouting && ext[3] != 0) {
            result.routing_pending = true;
            return false;
        }
        if (proto == kProtoFragment) {
            const uint16_t offset_flags = load_be16(ext + 2);
            result.fragment_ok = (offset_flags & 0xfff8) == 0 && (offset_flags & 1) != 0;
        }
        return true;
    });
    return result;
}

bool set_ipv6_address(PacketBuffer& pkt, const PacketLayout& layout, uint32_t offset, const uint8_t* value) {
    uint8_t* ip = ipv6_header(pkt, layout);
    if (ip == nullptr) return false;
    uint8_t* addr = ip + offset;
    if (std::memcmp(addr, value, 16) == 0) return true;
    const Ipv6Transport next = ipv6_transport(pkt, layout);
    const bool is_dst = offset == kIpv6Dst;
    if (next.fragment_ok && !(is_dst && next.routing_pending)) {
        update_pseudo_header(transport(pkt, layout), next.proto, true, addr, value, 16);
    }
    std::memcpy(addr, value, 16);
    return true;
}

/// The traffic class straddles bytes 0 and 1 (after the version nibble).
uint8_t ipv6_traffic_class(const uint8_t* ip) { return static_cast<uint8_t>((ip[0] & 0x0f) << 4 | ip[1] >> 4); }

void set_ipv6_traffic_class(uint8_t* ip, uint8_t tclass) {
    ip[0] = static_cast<uint8_t>((ip[0] & 0xf0) | tclass >> 4);
    ip[1] = static_cast<uint8_t>((tclass & 0x0f) << 4 | (ip[1] & 0x0f));
}

// ------------------------------------------------------- IP-version-agnostic

enum class TosPart { kDscp, kEcn };

bool set_tos(PacketBuffer& pkt, const PacketLayout& layout, TosPart part, uint8_t value) {
    const auto merge = [&](uint8_t old_tos) {
        return part == TosPart::kDscp ? static_cast<uint8_t>((value & 0xfc) | (old_tos & 0x03))
                                      : static_cast<uint8_t>((old_tos & 0xfc) | (value & 0x03));
    };
    if (uint8_t* ip = ipv4_header(pkt, layout)) {
        set_ipv4_tos(ip, merge(ip[kIpv4Tos]));
        return true;
    }
    if (uint8_t* ip = ipv6_header(pkt, layout)) {
        set_ipv6_traffic_class(ip, merge(ipv6_traffic_class(ip)));
        return true;
    }
    return false;
}

bool set_ttl(PacketBuffer& pkt, const PacketLayout& layout, uint8_t ttl) {
    if (uint8_t* ip = ipv4_header(pkt, layout)) {
        set_ipv4_ttl(ip, ttl);
        return true;
    }
    if (uint8_t* ip = ipv6_header(pkt, layout)) {
        ip[kIpv6HopLimit] = ttl;
        return true;
    }
    return false;
}

bool set_ipv6_label(PacketBuffer& pkt, const PacketLayout& layout, const uint8_t* value) {
    uint8_t* ip = ipv6_header(pkt, layout);
    if (ip == nullptr) return false;
    // value: 4 bytes, network order, the label in the low 20 bits.
    ip[1] = static_cast<uint8_t>((ip[1] & 0xf0) | (value[1] & 0x0f));
    ip[2] = value[2];
    ip[3] = value[3];
    return true;
}

// ------------------------------------------------------------- transport

/// A new source (offset 0) or destination (offset 2) port. OVS emits port
/// sets only for packets whose transport header it parsed (never for later
/// fragments) and its datapath checks the header length again.
bool set_port(PacketBuffer& pkt, const PacketLayout& layout, uint8_t proto, uint32_t offset,
              const uint8_t* value) {
    if (!(layout.flags & kLayoutL4)) return false;
    const Transport l4 = transport(pkt, layout);
    const uint32_t min_len = proto == kProtoTcp ? kTcpHeaderLen : proto == kProtoUdp ? kUdpHeaderLen : kSctpHeaderLen;
    if (l4.size < min_len) return false;
    uint8_t* port = l4.p + offset;
    if (std::memcmp(port, value, 2) == 0) return true;
    switch (proto) {
    case kProtoTcp: {
        const uint32_t header_len = (l4.p[12] >> 4) * 4u;
        if (header_len < kTcpHeaderLen || header_len > l4.size) return false;
        update_checksum(l4.p + kTcpChecksum, port, value, 2);
        break;
    }
    case kProtoUdp:
        update_udp_checksum(l4.p + kUdpChecksum, port, value, 2);
        break;
    case kProtoSctp: {
        // CRC32c is linear: CRC(old) ^ CRC(new) over equal lengths is the
        // CRC register (from 0) of old ^ new, which is zero but for the port.
        // OVS keeps old field ^ CRC(old) ^ CRC(new), so a wrong CRC stays
        // as wrong; the field holds the CRC little-endian.
        const uint8_t diff[2] = {static_cast<uint8_t>(port[0] ^ value[0]), static_cast<uint8_t>(port[1] ^ value[1])};
        uint32_t crc = crc32c_update(0, diff, 2);
        crc = crc32c_zeros(crc, l4.size - offset - 2);
        for (unsigned i = 0; i < 4; ++i) l4.p[kSctpChecksum + i] ^= static_cast<uint8_t>(crc >> (8 * i));
        break;
    }
    default:
        return false;
    }
    std::memcpy(port, value, 2);
    return true;
}

/// ICMP and ICMPv6 type (index 0) or code (index 1); OVS's datapath wants
/// 8 transport bytes and applies it even to a later fragment.
bool set_icmp(PacketBuffer& pkt, const PacketLayout& layout, bool ipv6, unsigned index, uint8_t value) {
    if ((ipv6 ? ipv6_header(pkt, layout) : ipv4_header(pkt, layout)) == nullptr) return false;
    const Transport l4 = transport(pkt, layout);
    if (l4.size < kIcmpHeaderLen) return false;
    const uint16_t old_word = load_be16(l4.p);
    uint8_t type_code[2] = {l4.p[0], l4.p[1]};
    type_code[index] = value;
    const uint16_t new_word = load_be16(type_code);
    if (old_word == new_word) return true;
    update_checksum_word(l4.p + kIcmpChecksum, old_word, new_word);
    l4.p[index] = value;
    return true;
}

bool set_nd_target(PacketBuffer& pkt, const PacketLayout& layout, const uint8_t* value) {
    if (ipv6_header(pkt, layout) == nullptr) return false;
    const Transport l4 = transport(pkt, layout);
    if (l4.size < kNdMessageLen) return false;
    uint8_t* target = l4.p + kNdTarget;
    if (std::memcmp(target, value, 16) != 0) {
        update_checksum(l4.p + kIcmpChecksum, target, value, 16);
        std::memcpy(target, value, 16);
    }
    return true;
}

/// The ND link-layer address options, walked as OVS 3.1 walks them: the
/// first option of type SLL or TLL with length 1 ends the walk (it is
/// rewritten only if it is of the wanted type); after skipping another
/// option, OVS takes the *next* option's length off the bytes remaining, so
/// the walk can run past the ICMPv6 message into the Ethernet padding. It
/// never runs past the frame here (OVS would read beyond it).
bool set_nd_link_address(PacketBuffer& pkt, const PacketLayout& layout, uint8_t wanted_type,
                         const uint8_t* value) {
    if (ipv6_header(pkt, layout) == nullptr) return false;
    const Transport l4 = transport(pkt, layout);
    if (l4.size < kNdMessageLen) return false;
    int64_t remaining = int64_t{l4.size} - kNdMessageLen;
    size_t opt = static_cast<size_t>(l4.p - pkt.data) + kNdMessageLen;
    while (remaining >= kNdOptUnit) {
        if (opt + kNdOptUnit > pkt.len) return false;
        const uint8_t type = pkt.data[opt];
        const uint8_t units = pkt.data[opt + 1];
        if (units == 0) return false;
        if (units == 1 && (type == kNdOptSourceLinkAddr || type == kNdOptTargetLinkAddr)) {
            if (type != wanted_type) return false;
            uint8_t* mac = pkt.data + opt + 2;
            if (std::memcmp(mac, value, 6) != 0) {
                update_checksum(l4.p + kIcmpChecksum, mac, value, 6);
                std::memcpy(mac, value, 6);
            }
            return true;
        }
        opt += size_t{units} * kNdOptUnit;
        if (opt + 2 > pkt.len) return false;
        remaining -= int64_t{pkt.data[opt + 1]} * kNdOptUnit;
    }
    return false;
}

// ------------------------------------------------------------ L2 and ARP

/// Writes the part of a field that lies inside the frame (OVS writes the
/// whole header struct; bytes past the frame end are not sent).
bool write_clipped(PacketBuffer& pkt, uint32_t offset, const uint8_t* value, uint32_t width) {
    if (offset >= pkt.len) return false;
    std::memcpy(pkt.data + offset, value, std::min(width, pkt.len - offset));
    return true;
}

bool set_arp(PacketBuffer& pkt, const PacketLayout& layout, uint32_t offset, const uint8_t* value,
             uint32_t width) {
    if (l3_ethertype(pkt, layout) != kEthTypeArp) return false;
    return write_clipped(pkt, uint32_t{layout.l3_offset} + offset, value, width);
}

/// OVS changes a tag's VID or PCP by popping it and pushing a new one with
/// the same TPID: the DEI bit is lost.
bool set_vlan_tci(PacketBuffer& pkt, const PacketLayout& layout, uint16_t keep_mask, uint16_t new_bits) {
    if (layout.vlan_count == 0 || pkt.len < kTciOffset + 2) return false;
    uint8_t* tci = pkt.data + kTciOffset;
    store_be16(tci, static_cast<uint16_t>((load_be16(tci) & keep_mask) | new_bits));
    return true;
}

void shift_layout(PacketLayout& layout, int delta) {
    if (layout.l3_offset != kNoOffset) layout.l3_offset = static_cast<uint16_t>(layout.l3_offset + delta);
    if (layout.l4_offset != kNoOffset) layout.l4_offset = static_cast<uint16_t>(layout.l4_offset + delta);
}

}  // namespace

bool set_field(PacketBuffer& pkt, const PacketLayout& layout, SetField field, const uint8_t* value) {
    switch (field) {
    case SetField::kInPort: return false;
    case SetField::kEthDst: return write_clipped(pkt, 0, value, 6);
    case SetField::kEthSrc: return write_clipped(pkt, 6, value, 6);
    case SetField::kVlanVid:
        return set_vlan_tci(pkt, layout, 0xe000, static_cast<uint16_t>(load_be16(value) & 0x0fff));
    case SetField::kVlanPcp:
        return set_vlan_tci(pkt, layout, 0x0fff, static_cast<uint16_t>((value[0] & 7) << 13));
    case SetField::kVlanTci:
        // The translator resolves pushes and pops; here only a present tag
        // can be rewritten in place (PCP and VID, DEI cleared).
        if (!(load_be16(value) & 0x1000)) return false;
        return set_vlan_tci(pkt, layout, 0, static_cast<uint16_t>(load_be16(value) & 0xefff));
    case SetField::kIpv4Src: return set_ipv4_address(pkt, layout, kIpv4Src, value);
    case SetField::kIpv4Dst: return set_ipv4_address(pkt, layout, kIpv4Dst, value);
    case SetField::kIpv6Src: return set_ipv6_address(pkt, layout, kIpv6Src, value);
    case SetField::kIpv6Dst: return set_ipv6_address(pkt, layout, kIpv6Dst, value);
    case SetField::kIpv6Label: return set_ipv6_label(pkt, layout, value);
    case SetField::kNwTos: return set_tos(pkt, layout, TosPart::kDscp, value[0]);
    case SetField::kNwEcn: return set_tos(pkt, layout, TosPart::kEcn, value[0]);
    case SetField::kNwTtl: return set_ttl(pkt, layout, value[0]);
    case SetField::kTcpSrc: return set_port(pkt, layout, kProtoTcp, 0, value);
    case SetField::kTcpDst: return set_port(pkt, layout, kProtoTcp, 2, value);
    case SetField::kUdpSrc: return set_port(pkt, layout, kProtoUdp, 0, value);
    case SetField::kUdpDst: return set_port(pkt, layout, kProtoUdp, 2, value);
    case SetField::kSctpSrc: return set_port(pkt, layout, kProtoSctp, 0, value);
    case SetField::kSctpDst: return set_port(pkt, layout, kProtoSctp, 2, value);
    case SetField::kIcmpType: return set_icmp(pkt, layout, false, 0, value[0]);
    case SetField::kIcmpCode: return set_icmp(pkt, layout, false, 1, value[0]);
    case SetField::kIcmpv6Type: return set_icmp(pkt, layout, true, 0, value[0]);
    case SetField::kIcmpv6Code: return set_icmp(pkt, layout, true, 1, value[0]);
    case SetField::kArpOp: return set_arp(pkt, layout, 6, value, 2);
    case SetField::kArpSha: return set_arp(pkt, layout, 8, value, 6);
    case SetField::kArpSpa: return set_arp(pkt, layout, 14, value, 4);
    case SetField::kArpTha: return set_arp(pkt, layout, 18, value, 6);
    case SetField::kArpTpa: return set_arp(pkt, layout, 24, value, 4);
    case SetField::kNdTarget: return set_nd_target(pkt, layout, value);
    case SetField::kNdSll: return set_nd_link_address(pkt, layout, kNdOptSourceLinkAddr, value);
    case SetField::kNdTll: return set_nd_link_address(pkt, layout, kNdOptTargetLinkAddr, value);
    }
    return false;
}

bool push_vlan(PacketBuffer& pkt, PacketLayout& layout, uint16_t tpid) {
    if (pkt.len < kMacPairLen || pkt.len + kVlanTagLen > kMaxFrameAfterPush) return false;
    if (pkt.headroom >= kVlanTagLen) {
        // Move the MACs down: 12 bytes instead of the whole frame.
        std::memmove(pkt.data - kVlanTagLen, pkt.data, kMacPairLen);
        pkt.data -= kVlanTagLen;
        pkt.headroom -= kVlanTagLen;
    } else if (pkt.tailroom >= kVlanTagLen) {
        std::memmove(pkt.data + kMacPairLen + kVlanTagLen, pkt.data + kMacPairLen, pkt.len - kMacPairLen);
        pkt.tailroom -= kVlanTagLen;
    } else {
        return false;
    }
    pkt.len += kVlanTagLen;
    store_be16(pkt.data + kMacPairLen, tpid);
    store_be16(pkt.data + kTciOffset, 0);
    if (layout.vlan_count < 0xff) ++layout.vlan_count;
    shift_layout(layout, static_cast<int>(kVlanTagLen));
    return true;
}

bool pop_vlan(PacketBuffer& pkt, PacketLayout& layout) {
    if (layout.vlan_count == 0 || pkt.len < kMacPairLen + kVlanTagLen) return false;
    std::memmove(pkt.data + kVlanTagLen, pkt.data, kMacPairLen);
    pkt.data += kVlanTagLen;
    pkt.len -= kVlanTagLen;
    pkt.headroom += kVlanTagLen;
    --layout.vlan_count;
    shift_layout(layout, -static_cast<int>(kVlanTagLen));
    return true;
}

bool dec_ttl(PacketBuffer& pkt, const PacketLayout& layout) {
    if (uint8_t* ip = ipv4_header(pkt, layout)) {
        if (ip[kIpv4Ttl] == 0) return false;
        set_ipv4_ttl(ip, static_cast<uint8_t>(ip[kIpv4Ttl] - 1));
        return true;
    }
    if (uint8_t* ip = ipv6_header(pkt, layout)) {
        if (ip[kIpv6HopLimit] == 0) return false;
        --ip[kIpv6HopLimit];
        return true;
    }
    return false;
}

}  // namespace flowpath
