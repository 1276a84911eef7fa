// Packet parsing: from the bytes of an Ethernet frame to its FlowKey.
//
// The semantics are those of Open vSwitch 3.1's flow extraction: the same
// fields, the same byte order conventions, and the same answer for every
// malformed or truncated frame (parse as far as the headers are valid, leave
// everything behind the damage zero). docs/packet.md lists each rule.
//
// Two implementations with one meaning:
//  - parse_flow_key: the reference, written for clarity, fills a FlowKey;
//  - extract_miniflow: the per-packet fast path, writes the Miniflow words
//    directly; miniflow_expand() of its result is exactly the reference key.
//    Its map is the set of words the frame's headers provide (a function of
//    the parse path), so it may hold zero words: compare such miniflows by
//    content (expand, or get() under a mask), not by map.
// Neither reads a byte at or beyond `len`, allocates, or throws.
#pragma once

#include <cstdint>

#include "flowpath/flow_key.hpp"
#include "flowpath/miniflow.hpp"

namespace flowpath {

/// An offset that does not exist (the header was not reached).
inline constexpr uint16_t kNoOffset = 0xFFFF;

/// Flags of a PacketLayout.
enum LayoutFlags : uint8_t {
    /// The IPv4/IPv6/ARP header passed the checks and the nw_* fields (or
    /// ARP fields) were extracted.
    kLayoutL3 = 0x01,
    /// The transport header (TCP, UDP, SCTP, ICMP, IGMP, ICMPv6) was long
    /// enough and its fields were extracted (never set on later fragments).
    kLayoutL4 = 0x02,
    /// The frame is an IPv6 neighbor solicitation/advertisement whose target
    /// and options were valid: nd_target, arp_sha, arp_tha came from it.
    kLayoutNd = 0x04,
};

/// Where the headers of one parsed frame are, so that actions can rewrite
/// them in place without parsing again. 8 bytes: one per packet of a burst.
/// Offsets count from the first byte of the frame; they are exact for frames
/// up to 65535 bytes (every single-segment mbuf).
struct PacketLayout {
    /// First byte after the ethertype (and after an LLC/SNAP header when one
    /// gave the ethertype). kNoOffset only for frames shorter than 14 bytes.
    uint16_t l3_offset = kNoOffset;
    /// First byte after the IPv4 header (with options) or after the IPv6
    /// extension headers; set whenever the IP header passed its checks, also
    /// for later fragments and truncated transport headers (as OVS does).
    uint16_t l4_offset = kNoOffset;
    /// Bytes after the IP datagram (Ethernet padding beyond the IPv4 total
    /// length or IPv6 payload length): L4 data ends at len - l2_pad.
    uint16_t l2_pad = 0;
    /// VLAN tags parsed (0..2); tag i sits at vlan_tag_offset(i).
    uint8_t vlan_count = 0;
    /// LayoutFlags.
    uint8_t flags = 0;

    /// Offset of VLAN tag `index` (its TPID); the tags follow the MACs.
    static constexpr uint16_t vlan_tag_offset(unsigned index) {
        return static_cast<uint16_t>(12 + 4 * index);
    }
    /// Offset of the ethertype (or 802.3 length) after the VLAN tags.
    uint16_t ethertype_offset() const { return static_cast<uint16_t>(12 + 4 * vlan_count); }
};
static_assert(sizeof(PacketLayout) == 8);

/// The most VLAN tags a key can hold.
inline constexpr unsigned kMaxVlanTags = 2;

/// How many VLAN tags to parse, as Open vSwitch's other_config:vlan-limit
/// (0 means as many as supported, i.e. 2; values above 2 also mean 2). Tags
/// beyond the limit are payload: the frame's dl_type is then the TPID of the
/// first unparsed tag. The default is 2. NOTE: ovs-vswitchd's own default
/// is 1; a comparison with a default-configured OVS needs
/// set_vlan_limit(1) here or vlan-limit=2 there. Set it before workers start.
void set_vlan_limit(unsigned limit);
/// The current VLAN tag limit (1 or 2).
unsigned vlan_limit();

/// Reference parser: zeroes `key`, then fills every FlowKey field that the
/// frame carries (in_port from the argument; ct_* and recirc_id stay zero).
void parse_flow_key(const uint8_t* data, uint32_t len, uint32_t in_port, FlowKey& key,
                    PacketLayout& layout);

/// Fast path: the same key as parse_flow_key, written straight into `mf`
/// (words in increasing order), with the same `layout`:
/// miniflow_expand(mf) == the reference key, always.
///
/// The map is not canonical (not only nonzero words): it holds every word
/// the parse path writes, zero or not, and so always includes every nonzero
/// word. Frames that take the same path get the same map:
///   - word 0 (in_port) always;
///   - words 2, 3, 4 (MACs, dl_type, VLANs) for frames of 14 bytes or more;
///   - IPv4 that passes its checks: 5 and 10; IPv6: 6-9, plus 10 unless the
///     extension headers are malformed; Ethernet/IPv4 ARP: 5, 10, 13, 14;
///   - 15 when the transport header was parsed (kLayoutL4), and 11-14 before
///     it for a valid neighbor solicitation/advertisement (kLayoutNd).
/// For example an untagged IPv4/TCP frame has map {0,2,3,4,5,10,15} with a
/// zero word 4. (Dropping zero words cost a quarter of the extraction time.)
void extract_miniflow(const uint8_t* data, uint32_t len, uint32_t in_port, Miniflow& mf,
                      PacketLayout& layout);

/// Bytes past the start of the L3 header, and past the start of the
/// transport header, that a chained frame's first segment must hold (or
/// the frame must end before): every header byte the extraction, the
/// actions (set_field, dec_ttl) and the layout describe lies within them,
/// but for neighbor discovery's options, which need the whole frame.
inline constexpr uint32_t kChainedHeaderWindow = 64;

/// A frame of `len` bytes of which only the first `avail` are contiguous at
/// `data` (the first segment of an mbuf chain): the same key and layout as
/// extract_miniflow on the whole frame, reading only those bytes, when the
/// headers lie in them: the L2 headers, kChainedHeaderWindow bytes past the
/// L3 and the transport header's starts (or the frame's end), the IPv6
/// extension headers, and a neighbor discovery message whole. Otherwise
/// returns false with a key of in_port alone and an empty layout: the frame
/// must be joined (made contiguous) or dropped. With avail >= len it is
/// extract_miniflow.
bool extract_miniflow_chained(const uint8_t* data, uint32_t avail, uint32_t len, uint32_t in_port, Miniflow& mf,
                              PacketLayout& layout);

/// One frame as the burst helper sees it.
struct PacketView {
    const uint8_t* data;
    uint32_t len;
};

/// How many packets ahead extract_burst prefetches.
inline constexpr unsigned kPrefetchAhead = 3;

/// Extracts `count` frames received on `in_port`: flows[i] and layouts[i]
/// for `view_of(i)` (a callable returning a PacketView, e.g. reading an
/// rte_mbuf), prefetching the headers of the packets a few places ahead.
template <typename ViewOf>
inline void extract_burst(unsigned count, ViewOf&& view_of, uint32_t in_port, Miniflow* flows,
                          PacketLayout* layouts) {
    // Up to two cache lines: IPv6 + TCP already ends past byte 64. The
    // second only when the frame reaches it: a short frame's next line is
    // buffer nobody reads, and its fetch took a line fill buffer from the
    // caches' prefetches (issue 10, tss workload: ~2 ns per packet).
    const auto prefetch = [](const PacketView& view) {
        __builtin_prefetch(view.data);
        if ((reinterpret_cast<uintptr_t>(view.data) & 63) + view.len > 64) __builtin_prefetch(view.data + 64);
    };
    for (unsigned i = 0; i < count && i < kPrefetchAhead; ++i) prefetch(view_of(i));
    for (unsigned i = 0; i < count; ++i) {
        if (i + kPrefetchAhead < count) prefetch(view_of(i + kPrefetchAhead));
        const PacketView view = view_of(i);
        extract_miniflow(view.data, view.len, in_port, flows[i], layouts[i]);
    }
}

}  // namespace flowpath
