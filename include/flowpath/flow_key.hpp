// The full flow key: every field a rule can match, laid out in 64-bit words.
//
// This layout is shared by the packet parser (which fills it), the rule
// language (which builds match values and masks over it), the rule classifier
// and the megaflow cache (which hash and compare it word by word). Changing a
// field's place changes all of them at once, which is the point: one layout.
//
// Byte order: packet fields are stored as they appear on the wire (network
// byte order), so extraction is a plain copy and a mask is the same bytes as
// the packet. Metadata that never appears on the wire (in_port, ct_*) is in
// host byte order.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace flowpath {

/// ct_state bits, the same values Open vSwitch uses.
enum CtStateBits : uint8_t {
    kCtNew = 0x01,
    kCtEstablished = 0x02,
    kCtRelated = 0x04,
    kCtReply = 0x08,
    kCtInvalid = 0x10,
    kCtTracked = 0x20,
};

/// nw_frag bits: kFragAny is set on every fragment, kFragLater on all but
/// the first.
enum NwFragBits : uint8_t {
    kFragAny = 0x01,
    kFragLater = 0x02,
};

/// The 802.1Q "present" bit kept in a VlanTag's tci (network order), as in
/// OpenFlow: a tag whose tci has it clear is absent. The wire's DEI bit is
/// not kept.
inline constexpr uint16_t kVlanPresent = 0x1000;

/// One VLAN tag as stored in the key; tpid and tci in network byte order.
struct VlanTag {
    uint16_t tpid;
    uint16_t tci;
};

/// The full flow key. Every member sits at a fixed offset inside a fixed
/// 64-bit word; kFlowWords words in all. Unused bytes are zero.
struct alignas(8) FlowKey {
    // word 0-1: metadata (host byte order)
    uint32_t in_port;    ///< OpenFlow port number, 1-based
    uint32_t ct_mark;
    uint16_t ct_zone;
    uint8_t ct_state;    ///< CtStateBits
    uint8_t pad0;
    uint32_t recirc_id;  ///< pipeline pass after a ct(table=T); 0 = first pass

    // word 2-4: Ethernet and VLANs
    uint8_t dl_dst[6];
    uint8_t dl_src[6];
    uint16_t dl_type;    ///< innermost ethertype (after VLAN tags)
    uint16_t pad1;
    VlanTag vlans[2];    ///< vlans[0] is the outer tag

    // word 5-10: IPv4 / IPv6 / ARP addresses and L3 scalars
    uint32_t nw_src;     ///< IPv4 source, or ARP spa
    uint32_t nw_dst;     ///< IPv4 destination, or ARP tpa
    uint8_t ipv6_src[16];
    uint8_t ipv6_dst[16];
    uint32_t ipv6_label; ///< low 20 bits, network order
    uint8_t nw_proto;    ///< IP protocol, or the low byte of the ARP opcode
    uint8_t nw_tos;      ///< DSCP << 2 | ECN
    uint8_t nw_ttl;      ///< IPv4 TTL or IPv6 hop limit
    uint8_t nw_frag;     ///< NwFragBits

    // word 11-14: ND and ARP hardware addresses
    uint8_t nd_target[16];
    uint8_t arp_sha[6];  ///< ARP sha, or ND source link-layer address option
    uint8_t arp_tha[6];  ///< ARP tha, or ND target link-layer address option
    uint32_t pad2;

    // word 15: transport
    uint16_t tp_src;     ///< TCP/UDP/SCTP source port; ICMP(v6) type in the low byte
    uint16_t tp_dst;     ///< ... destination port; ICMP(v6) code in the low byte
    uint16_t tcp_flags;  ///< low 12 bits of the TCP flags word
    uint16_t pad3;
};

inline constexpr size_t kFlowWords = sizeof(FlowKey) / sizeof(uint64_t);
static_assert(sizeof(FlowKey) == 16 * sizeof(uint64_t), "FlowKey is 16 words");
static_assert(offsetof(FlowKey, dl_dst) == 2 * 8);
static_assert(offsetof(FlowKey, nw_src) == 5 * 8);
static_assert(offsetof(FlowKey, ipv6_label) == 10 * 8);
static_assert(offsetof(FlowKey, nd_target) == 11 * 8);
static_assert(offsetof(FlowKey, tp_src) == 15 * 8);

/// The index of the 64-bit word that holds the byte at `offset`.
constexpr unsigned flow_word_of(size_t offset) { return static_cast<unsigned>(offset / 8); }

/// The key viewed as words (for hashing, masking and comparing).
inline const uint64_t* flow_words(const FlowKey& key) {
    return reinterpret_cast<const uint64_t*>(&key);
}
inline uint64_t* flow_words(FlowKey& key) { return reinterpret_cast<uint64_t*>(&key); }

inline bool operator==(const FlowKey& a, const FlowKey& b) {
    return std::memcmp(&a, &b, sizeof(FlowKey)) == 0;
}

/// A wildcard mask over a FlowKey: a set bit means "this bit is examined".
/// It has exactly the FlowKey layout.
using FlowMask = FlowKey;

}  // namespace flowpath
