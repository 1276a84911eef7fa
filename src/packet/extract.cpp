// Fast-path flow extraction: the semantics of parse.cpp (the reference; the
// malformed-frame rules are documented there and in docs/packet.md), but the
// FlowKey is never built. Each 64-bit key word is assembled in a register
// from unaligned loads and pushed into the Miniflow in increasing word
// order. Which words are pushed depends only on the parse path (see
// extract_miniflow in packet.hpp), so the map may hold zero words.
#include <bit>
#include <cstddef>

#include "flowpath/packet.hpp"
#include "flowpath/simple_key.hpp"
#include "ipv6_ext.hpp"
#include "flowpath/wire.hpp"

namespace flowpath {

namespace {

using namespace wire;

// Words are assembled with shifts on little-endian loads: byte k of a word
// in memory is bits 8k..8k+7.
static_assert(std::endian::native == std::endian::little,
              "extract.cpp assembles key words assuming a little-endian host");

// The key words the extractor writes and the byte position of each field in
// its word, tied to the FlowKey layout so a layout change fails to compile.
constexpr unsigned kWordInPort = 0;
constexpr unsigned kWordMacs = 2;       // dl_dst, dl_src[0..1]
constexpr unsigned kWordDlType = 3;     // dl_src[2..5], dl_type
constexpr unsigned kWordVlans = 4;
constexpr unsigned kWordNwAddrs = 5;    // nw_src, nw_dst
constexpr unsigned kWordIpv6Src = 6;    // and 7
constexpr unsigned kWordIpv6Dst = 8;    // and 9
constexpr unsigned kWordNwScalars = 10; // ipv6_label, nw_proto, nw_tos, nw_ttl, nw_frag
constexpr unsigned kWordNdTarget = 11;  // and 12
constexpr unsigned kWordArpSha = 13;    // arp_sha, arp_tha[0..1]
constexpr unsigned kWordArpThaTail = 14;// arp_tha[2..5]
constexpr unsigned kWordTransport = 15; // tp_src, tp_dst, tcp_flags

constexpr unsigned byte_in_word(size_t offset) { return static_cast<unsigned>(offset % 8); }
static_assert(offsetof(FlowKey, in_port) == kWordInPort * 8);
static_assert(offsetof(FlowKey, dl_dst) == kWordMacs * 8);
static_assert(offsetof(FlowKey, dl_src) == kWordMacs * 8 + 6);
static_assert(offsetof(FlowKey, dl_type) == kWordDlType * 8 + 4);
static_assert(offsetof(FlowKey, vlans) == kWordVlans * 8);
static_assert(offsetof(FlowKey, nw_src) == kWordNwAddrs * 8 && offsetof(FlowKey, nw_dst) == kWordNwAddrs * 8 + 4);
static_assert(offsetof(FlowKey, ipv6_src) == kWordIpv6Src * 8);
static_assert(offsetof(FlowKey, ipv6_dst) == kWordIpv6Dst * 8);
static_assert(offsetof(FlowKey, ipv6_label) == kWordNwScalars * 8);
static_assert(offsetof(FlowKey, nw_frag) / 8 == kWordNwScalars);
static_assert(offsetof(FlowKey, nd_target) == kWordNdTarget * 8);
static_assert(offsetof(FlowKey, arp_sha) == kWordArpSha * 8);
static_assert(offsetof(FlowKey, arp_tha) == kWordArpSha * 8 + 6);
static_assert(offsetof(FlowKey, tp_src) == kWordTransport * 8);
static_assert(offsetof(FlowKey, tp_dst) == kWordTransport * 8 + 2);
static_assert(offsetof(FlowKey, tcp_flags) == kWordTransport * 8 + 4);

// Network-order constants as they read from a little-endian load.
constexpr uint32_t kRawIpv6LabelMask = 0xffff0f00;
constexpr uint16_t kRawTcpFlagsMask = 0xff0f;    // low 12 bits of the flags word

// The SimpleKey holds these words as extract() pushes them.
static_assert(kSimpleKeyWordIndex[0] == kWordInPort && kSimpleKeyWordIndex[1] == kWordMacs &&
              kSimpleKeyWordIndex[2] == kWordDlType && kSimpleKeyWordIndex[3] == kWordVlans &&
              kSimpleKeyWordIndex[4] == kWordNwAddrs && kSimpleKeyWordIndex[5] == kWordNwScalars);

inline uint64_t low48(const uint8_t* p) { return load32(p) | uint64_t{load16(p + 4)} << 32; }

/// Appends words to a Miniflow. Each call site pushes a constant word index
/// and every parse path a fixed sequence of them, so the stores do not
/// depend on each other and the map is a function of the path. (Dropping
/// zero words to get the canonical map cost 25% of the whole extraction.)
struct WordSink {
    uint64_t* words;
    uint64_t map = 0;
    unsigned count = 0;

    void push(unsigned index, uint64_t word) {
        words[count++] = word;
        map |= uint64_t{1} << index;
    }
};

/// Neighbor discovery target and link-layer options (parse.cpp parse_nd).
/// On success pushes words 11-14. Always inlined: called by reference, its
/// WordSink would otherwise live in memory through the whole extraction.
[[gnu::always_inline]] inline bool push_nd(WordSink& out, const uint8_t* p, uint32_t size) {
    if (size < kNdTargetLen) return false;
    const uint8_t* target = p;
    p += kNdTargetLen;
    size -= kNdTargetLen;
    uint64_t sll = 0;  // low 48 bits: the MAC in memory order
    uint64_t tll = 0;
    while (size >= kNdOptUnit) {
        const uint32_t opt_len = p[1] * kNdOptUnit;
        if (opt_len == 0 || opt_len > size) break;
        if (opt_len == kNdOptUnit) {
            if (p[0] == kNdOptSourceLinkAddr) {
                if (sll) return false;
                sll = low48(p + 2);
            } else if (p[0] == kNdOptTargetLinkAddr) {
                if (tll) return false;
                tll = low48(p + 2);
            }
        }
        p += opt_len;
        size -= opt_len;
    }
    out.push(kWordNdTarget, load64(target));
    out.push(kWordNdTarget + 1, load64(target + 8));
    out.push(kWordArpSha, sll | tll << 48);
    out.push(kWordArpThaTail, tll >> 16);
    return true;
}

// Ethernet, two VLAN tags, the ethertype and an LLC/SNAP header: the most
// bytes the L2 parse reads.
constexpr uint32_t kMaxL2Header = kMacPairLen + 2 * kVlanTagLen + 2 + kLlcSnapLen;
static_assert(kChainedHeaderWindow >= kIpv6HeaderLen && kChainedHeaderWindow >= kArpEthIpv4Len &&
              kChainedHeaderWindow >= kNdTargetLen + kIcmpv6HeaderLen + kTcpHeaderLen);

// Whether the readable bytes (`avail`) reach offset `end`, or the frame's
// end if that comes first; always, for a contiguous frame.
template <bool kChained>
inline bool reaches(uint32_t end, uint32_t len, uint32_t avail) {
    if constexpr (kChained) return (end < len ? end : len) <= avail;
    return true;
}

// The extraction. kChained: only the first `avail` of the frame's `len`
// bytes may be read (avail < len, avail >= kMaxL2Header); every read is
// checked against them, and a frame whose headers (or the bytes an action
// may touch: kChainedHeaderWindow) run past them makes it return false.
// Otherwise avail == len and the checks compile away: the fast path is the
// contiguous one.
template <bool kChained>
[[gnu::always_inline]] inline bool extract(const uint8_t* data, uint32_t avail, uint32_t len, uint32_t in_port, Miniflow& mf,
                    PacketLayout& layout) {
    WordSink out{mf.words};
    PacketLayout lay{};
    out.push(kWordInPort, in_port);
    if (len < kEthHeaderLen) {
        mf.map = out.map;
        layout = lay;
        return true;
    }

    // Ethernet and VLAN tags.
    const uint8_t* p = data + kMacPairLen;
    uint32_t size = len - kMacPairLen;
    uint16_t type_raw = load16(p);
    uint64_t vlan_word = 0;
    const unsigned max_tags = g_vlan_limit.load(std::memory_order_relaxed);
    if (is_vlan_raw(type_raw) && size >= kVlanTagLen + 2) {
        vlan_word = load32(p) | kRawVlanPresent;
        p += kVlanTagLen;
        size -= kVlanTagLen;
        lay.vlan_count = 1;
        type_raw = load16(p);
        if (max_tags > 1 && is_vlan_raw(type_raw) && size >= kVlanTagLen + 2) {
            vlan_word |= uint64_t{load32(p) | kRawVlanPresent} << 32;
            p += kVlanTagLen;
            size -= kVlanTagLen;
            lay.vlan_count = 2;
            type_raw = load16(p);
        }
    }
    p += 2;
    size -= 2;
    uint16_t dl_type = __builtin_bswap16(type_raw);
    if (dl_type < kEthTypeMin) [[unlikely]] {
        // 802.3 length: LLC/SNAP with the Ethernet OUI may carry the type.
        dl_type = kDlTypeNone;
        if (size >= kLlcSnapLen && (load64(p) & 0x0000ffffffffffffull) == 0x000000000003aaaaull) {
            const uint16_t snap_type = read_be16(p + 6);
            if (snap_type >= kEthTypeMin) dl_type = snap_type;
            p += kLlcSnapLen;
            size -= kLlcSnapLen;
        }
    }
    out.push(kWordMacs, load64(data));
    out.push(kWordDlType, load32(data + 8) | uint64_t{to_be16(dl_type)} << 32);
    out.push(kWordVlans, vlan_word);
    lay.l3_offset = static_cast<uint16_t>(p - data);

    // Network layer: each branch leaves p/size on the IP payload and builds
    // the nw scalars word, or finishes the frame.
    uint8_t nw_proto;
    uint8_t nw_frag = 0;
    uint64_t scalars;
    if (!reaches<kChained>(lay.l3_offset + kChainedHeaderWindow, len, avail)) goto incomplete;
    if (dl_type == kEthTypeIpv4) [[likely]] {
        if (!ipv4_header_valid(p, size)) goto done;
        const uint32_t header_len = (p[0] & 0x0fu) * 4;
        const uint32_t total_len = read_be16(p + 2);
        lay.l2_pad = static_cast<uint16_t>(size - total_len);
        out.push(kWordNwAddrs, load64(p + 12));
        scalars = ipv4_scalars(p);
        nw_proto = p[9];
        nw_frag = static_cast<uint8_t>(scalars >> kShiftNwFrag);
        p += header_len;
        size = total_len - header_len;
    } else if (dl_type == kEthTypeIpv6) {
        if (size < kIpv6HeaderLen) goto done;
        const uint32_t payload_len = read_be16(p + 4);
        if (payload_len + kIpv6HeaderLen > size || size - (payload_len + kIpv6HeaderLen) > 0xffff) {
            goto done;
        }
        lay.l2_pad = static_cast<uint16_t>(size - (payload_len + kIpv6HeaderLen));
        const uint8_t* ip = p;
        out.push(kWordIpv6Src, load64(ip + 8));
        out.push(kWordIpv6Src + 1, load64(ip + 16));
        out.push(kWordIpv6Dst, load64(ip + 24));
        out.push(kWordIpv6Dst + 1, load64(ip + 32));
        p += kIpv6HeaderLen;
        size = payload_len;
        nw_proto = ip[6];
        Ipv6ExtEnd end;
        if constexpr (kChained) {
            // Each extension header's first 8 bytes are read before it is taken.
            bool complete = true;
            end = walk_ipv6_ext_headers(p, size, nw_proto, nw_frag, [&](uint8_t, const uint8_t* header) {
                complete = static_cast<uint32_t>(header - data) + 8 <= avail;
                return complete;
            });
            if (!complete) goto incomplete;
        } else {
            end = walk_ipv6_ext_headers(p, size, nw_proto, nw_frag);
        }
        if (end == Ipv6ExtEnd::kTruncated) goto done;
        const uint8_t traffic_class = static_cast<uint8_t>((ip[0] << 4) | (ip[1] >> 4));
        scalars = (load32(ip) & kRawIpv6LabelMask) | uint64_t{nw_proto} << kShiftNwProto |
                  uint64_t{traffic_class} << kShiftNwTos | uint64_t{ip[7]} << kShiftNwTtl |
                  uint64_t{nw_frag} << kShiftNwFrag;
    } else {
        if ((dl_type == kEthTypeArp || dl_type == kEthTypeRarp) && size >= kArpEthIpv4Len &&
            load32(p) == 0x00080100u /* htype 1, ptype 0x0800 */ && load16(p + 4) == 0x0406 /* 6, 4 */) {
            const uint16_t opcode = read_be16(p + 6);
            out.push(kWordNwAddrs, load32(p + 14) | uint64_t{load32(p + 24)} << 32);
            out.push(kWordNwScalars, opcode <= 0xff ? uint64_t{opcode} << kShiftNwProto : 0);
            out.push(kWordArpSha, low48(p + 8) | uint64_t{load16(p + 18)} << 48);
            out.push(kWordArpThaTail, load32(p + 20));
            lay.flags = kLayoutL3;
        }
        goto done;
    }

    out.push(kWordNwScalars, scalars);
    lay.flags = kLayoutL3;
    lay.l4_offset = static_cast<uint16_t>(p - data);
    if (!reaches<kChained>(lay.l4_offset + kChainedHeaderWindow, len, avail)) goto incomplete;
    // Neighbor discovery: the parser and set_field walk its options to the
    // frame's end.
    if (kChained && nw_proto == kProtoIcmpv6 && size >= 1 &&
        (p[0] == kNdNeighborSolicit || p[0] == kNdNeighborAdvert) && !reaches<kChained>(len, len, avail)) {
        goto incomplete;
    }
    if (nw_frag & kFragLater) goto done;

    // Transport layer.
    switch (nw_proto) {
    case kProtoTcp:
        if (size >= kTcpHeaderLen) {
            const uint32_t header_len = (p[12] >> 4) * 4u;
            if (header_len >= kTcpHeaderLen && size >= header_len) {
                out.push(kWordTransport,
                         load32(p) | uint64_t{static_cast<uint16_t>(load16(p + 12) & kRawTcpFlagsMask)} << 32);
                lay.flags |= kLayoutL4;
            }
        }
        break;
    case kProtoUdp:
    case kProtoSctp:
        if (size >= (nw_proto == kProtoUdp ? kUdpHeaderLen : kSctpHeaderLen)) {
            out.push(kWordTransport, load32(p));
            lay.flags |= kLayoutL4;
        }
        break;
    case kProtoIcmp:
    case kProtoIgmp:
    case kProtoIcmpv6:
        // ICMP, IGMP and ICMPv6 all need 8 bytes; type and code are stored
        // as htons(value), i.e. in the second byte of tp_src / tp_dst.
        if (size >= kIcmpHeaderLen) {
            if (nw_proto == kProtoIcmpv6 && p[1] == 0 && (p[0] == kNdNeighborSolicit || p[0] == kNdNeighborAdvert)) {
                if (push_nd(out, p + kIcmpv6HeaderLen, size - kIcmpv6HeaderLen)) lay.flags |= kLayoutNd;
            }
            out.push(kWordTransport, uint64_t{p[0]} << 8 | uint64_t{p[1]} << 24);
            lay.flags |= kLayoutL4;
        }
        break;
    default:
        break;
    }

done:
    mf.map = out.map;
    layout = lay;
    return true;

incomplete:
    // Nothing half-parsed leaves: the caller joins or drops the frame.
    mf.map = uint64_t{1} << kWordInPort;
    mf.words[0] = in_port;
    layout = PacketLayout{};
    return false;
}

}  // namespace

void extract_miniflow(const uint8_t* data, uint32_t len, uint32_t in_port, Miniflow& mf, PacketLayout& layout) {
    extract<false>(data, len, len, in_port, mf, layout);
}

bool extract_miniflow_chained(const uint8_t* data, uint32_t avail, uint32_t len, uint32_t in_port, Miniflow& mf,
                              PacketLayout& layout) {
    if (avail >= len) {
        extract<false>(data, len, len, in_port, mf, layout);
        return true;
    }
    if (avail < kMaxL2Header) {
        mf.map = uint64_t{1} << kWordInPort;
        mf.words[0] = in_port;
        layout = PacketLayout{};
        return false;
    }
    return extract<true>(data, avail, len, in_port, mf, layout);
}

}  // namespace flowpath
