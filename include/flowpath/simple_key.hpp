// The simple-match key (docs/cache.md, "Simple match"): the key words of
// an untagged IPv4 frame up to its L3 scalars, read straight from the bytes
// for the simple-match tier (cache.hpp's SimpleMatch), inline, without the
// miniflow. extract_miniflow's IPv4 branch uses the same header checks and
// scalars (one definition of each), and the packet tests check the two
// extractions against each other.
#pragma once

#include <cstddef>
#include <cstdint>

#include "flowpath/flow_key.hpp"
#include "flowpath/wire.hpp"

namespace flowpath {

/// The key words a SimpleKey holds, dense: in_port (word 0), the MACs and
/// dl_type (2, 3), the VLAN tag (4), the IPv4 addresses (5) and the L3
/// scalars (10). For the frames extract_simple takes, every other key word
/// but the transport word (15) is zero (no recirculation or ct fields on a
/// first pass, no IPv6, ND or ARP fields).
inline constexpr unsigned kSimpleKeyWords = 6;
/// Key word of each SimpleKey position.
inline constexpr unsigned kSimpleKeyWordIndex[kSimpleKeyWords] = {0, 2, 3, 4, 5, 10};

/// Those words of one frame's key.
struct SimpleKey {
    uint64_t words[kSimpleKeyWords];
};

namespace wire {

inline constexpr unsigned kShiftNwProto = 8 * (offsetof(FlowKey, nw_proto) % 8);
inline constexpr unsigned kShiftNwTos = 8 * (offsetof(FlowKey, nw_tos) % 8);
inline constexpr unsigned kShiftNwTtl = 8 * (offsetof(FlowKey, nw_ttl) % 8);
inline constexpr unsigned kShiftNwFrag = 8 * (offsetof(FlowKey, nw_frag) % 8);

/// The checks an IPv4 header must pass for its fields to be extracted
/// (else the frame is L2 only); `size` bytes from its start to the frame's
/// end.
inline bool ipv4_header_valid(const uint8_t* p, uint32_t size) {
    if (size < kIpv4HeaderLen) return false;
    const uint32_t header_len = (p[0] & 0x0fu) * 4;
    const uint32_t total_len = read_be16(p + 2);
    return header_len >= kIpv4HeaderLen && size >= header_len && total_len <= size && header_len <= total_len &&
           size - total_len <= 0xffff;
}

/// The key's L3 scalars word (nw_proto, nw_tos, nw_ttl, nw_frag) of a
/// valid IPv4 header.
inline uint64_t ipv4_scalars(const uint8_t* p) {
    const uint16_t frag_off = read_be16(p + 6);
    uint8_t nw_frag = 0;
    if (frag_off & (kIpv4MoreFragments | kIpv4FragOffsetMask)) {
        nw_frag = (frag_off & kIpv4FragOffsetMask) ? kFragAny | kFragLater : kFragAny;
    }
    return uint64_t{p[9]} << kShiftNwProto | uint64_t{p[1]} << kShiftNwTos | uint64_t{p[8]} << kShiftNwTtl |
           uint64_t{nw_frag} << kShiftNwFrag;
}

}  // namespace wire

/// For a contiguous (`len` bytes at `data`) IPv4 frame, untagged or with
/// one VLAN tag, whose header passes extract_miniflow's checks, received on
/// `in_port` (a first pass): fills `key` with exactly the words
/// extract_miniflow's key has there, and returns true. Any other frame
/// (two tags, another ethertype, a bad header): false; the caller extracts
/// the whole miniflow. No layout: a simple match only forwards.
inline bool extract_simple(const uint8_t* data, uint32_t len, uint32_t in_port, SimpleKey& key) {
    using namespace wire;
    if (len < kEthHeaderLen) return false;
    uint16_t type = load16(data + kMacPairLen);
    uint32_t l3 = kEthHeaderLen;
    uint64_t vlans = 0;
    if (is_vlan_raw(type)) {
        // One tag, followed by IPv4 (a second tag's inner type is no IPv4
        // either way: the full path takes it).
        if (len < kEthHeaderLen + kVlanTagLen) return false;
        vlans = load32(data + kMacPairLen) | kRawVlanPresent;
        type = load16(data + kMacPairLen + kVlanTagLen);
        l3 += kVlanTagLen;
    }
    if (type != kRawIpv4) return false;
    const uint8_t* ip = data + l3;
    if (!ipv4_header_valid(ip, len - l3)) return false;
    key.words[0] = in_port;
    key.words[1] = load64(data);
    key.words[2] = load32(data + 8) | uint64_t{to_be16(kEthTypeIpv4)} << 32;
    key.words[3] = vlans;
    key.words[4] = load64(ip + 12);
    key.words[5] = ipv4_scalars(ip);
    return true;
}

}  // namespace flowpath
