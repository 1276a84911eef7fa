// Wire-format constants and unaligned loads shared by the packet parsers
// (src/packet) and the simple-match extraction (simple_key.hpp).
#pragma once

#include <atomic>
#include <bit>
#include <cstdint>
#include <cstring>

namespace flowpath::wire {

// Ethernet.
inline constexpr uint32_t kEthHeaderLen = 14;
inline constexpr uint32_t kMacPairLen = 12;       // dst + src
inline constexpr uint16_t kEthTypeMin = 0x0600;   // smaller values are 802.3 lengths
inline constexpr uint16_t kDlTypeNone = 0x05ff;   // OVS's dl_type for "no ethertype"
inline constexpr uint16_t kEthTypeIpv4 = 0x0800;
inline constexpr uint16_t kEthTypeArp = 0x0806;
inline constexpr uint16_t kEthTypeRarp = 0x8035;
inline constexpr uint16_t kEthTypeIpv6 = 0x86dd;
inline constexpr uint16_t kEthTypeVlan = 0x8100;
inline constexpr uint16_t kEthTypeQinq = 0x88a8;
inline constexpr uint32_t kVlanTagLen = 4;
inline constexpr uint32_t kLlcSnapLen = 8;        // LLC (3) + SNAP OUI (3) + type (2)

// ARP for Ethernet/IPv4 only.
inline constexpr uint32_t kArpEthIpv4Len = 28;

// IP.
inline constexpr uint32_t kIpv4HeaderLen = 20;
inline constexpr uint32_t kIpv6HeaderLen = 40;
inline constexpr uint16_t kIpv4MoreFragments = 0x2000;
inline constexpr uint16_t kIpv4FragOffsetMask = 0x1fff;
inline constexpr uint16_t kIpv6FragOffsetMask = 0xfff8;
inline constexpr uint32_t kIpv6LabelMask = 0x000fffff;

// IP protocol numbers.
inline constexpr uint8_t kProtoHopOpts = 0;
inline constexpr uint8_t kProtoIcmp = 1;
inline constexpr uint8_t kProtoIgmp = 2;
inline constexpr uint8_t kProtoTcp = 6;
inline constexpr uint8_t kProtoUdp = 17;
inline constexpr uint8_t kProtoRouting = 43;
inline constexpr uint8_t kProtoFragment = 44;
inline constexpr uint8_t kProtoAh = 51;
inline constexpr uint8_t kProtoIcmpv6 = 58;
inline constexpr uint8_t kProtoDstOpts = 60;
inline constexpr uint8_t kProtoSctp = 132;

// Transport header sizes OVS requires before reading a header's fields.
inline constexpr uint32_t kTcpHeaderLen = 20;
inline constexpr uint32_t kUdpHeaderLen = 8;
inline constexpr uint32_t kSctpHeaderLen = 12;
inline constexpr uint32_t kIcmpHeaderLen = 8;
inline constexpr uint32_t kIgmpHeaderLen = 8;
inline constexpr uint32_t kIcmpv6HeaderLen = 8;   // type, code, checksum, 4 data bytes
inline constexpr uint16_t kTcpFlagsMask = 0x0fff;

// Neighbor discovery.
inline constexpr uint8_t kNdNeighborSolicit = 135;
inline constexpr uint8_t kNdNeighborAdvert = 136;
inline constexpr uint8_t kNdOptSourceLinkAddr = 1;
inline constexpr uint8_t kNdOptTargetLinkAddr = 2;
inline constexpr uint32_t kNdTargetLen = 16;
inline constexpr uint32_t kNdOptUnit = 8;         // option length is in units of 8 bytes

inline bool is_vlan_tpid(uint16_t type) { return type == kEthTypeVlan || type == kEthTypeQinq; }

inline bool is_ipv6_ext_header(uint8_t proto) {
    return proto == kProtoHopOpts || proto == kProtoRouting || proto == kProtoDstOpts ||
           proto == kProtoAh || proto == kProtoFragment;
}

/// The big-endian 16-bit value at `p`, in host order.
inline uint16_t read_be16(const uint8_t* p) {
    return static_cast<uint16_t>(p[0] << 8 | p[1]);
}
/// The big-endian 32-bit value at `p`, in host order.
inline uint32_t read_be32(const uint8_t* p) {
    return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}

/// `host` in network byte order (as stored in a FlowKey). A byte swap, not
/// a byte-array round trip: that one compiles to byte stores plus a wider
/// load, a store-forwarding stall on the per-packet path.
inline uint16_t to_be16(uint16_t host) {
    if constexpr (std::endian::native == std::endian::little) return __builtin_bswap16(host);
    return host;
}
inline uint32_t to_be32(uint32_t host) {
    if constexpr (std::endian::native == std::endian::little) return __builtin_bswap32(host);
    return host;
}

/// Unaligned loads in memory order (no byte swapping).
inline uint16_t load16(const uint8_t* p) {
    uint16_t v;
    std::memcpy(&v, p, 2);
    return v;
}
inline uint32_t load32(const uint8_t* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}
inline uint64_t load64(const uint8_t* p) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
}

/// Network-order values as a little-endian load16/load32 reads them (the
/// fast extractions compare and build key words without byte swaps).
static_assert(std::endian::native == std::endian::little, "the raw constants assume a little-endian host");
inline constexpr uint16_t kRawIpv4 = 0x0008;             // 0x0800
inline constexpr uint16_t kRawVlan = 0x0081;             // 0x8100
inline constexpr uint16_t kRawQinq = 0xa888;             // 0x88a8
inline constexpr uint32_t kRawVlanPresent = 0x00100000;  // tci |= 0x1000 (byte 2 of the tag), as the key keeps a tag

inline bool is_vlan_raw(uint16_t raw) { return raw == kRawVlan || raw == kRawQinq; }

/// The VLAN limit both parsers read (set_vlan_limit); relaxed loads are
/// plain loads on every target we build for.
extern std::atomic<unsigned> g_vlan_limit;

}  // namespace flowpath::wire
