// The IPv6 extension-header walk, as Open vSwitch 3.1 walks the chain, for
// the fast flow extraction (extract.cpp) and the action executor
// (src/actions/execute.cpp, which finds the transport header an address
// change must update). Header-only so that the extraction's copy inlines.
//
// The reference parser (parse.cpp, parse_ipv6_ext_headers) keeps its own
// walk, written out: it is the definition the fast path is tested against
// (tests/unit/packet_test.cpp compares the two on valid, truncated and
// mutated frames), and sharing this code would leave nothing to compare.
#pragma once

#include <cstdint>

#include "flowpath/flow_key.hpp"
#include "flowpath/wire.hpp"

namespace flowpath::wire {

/// How a walk of the extension headers ended.
enum class Ipv6ExtEnd : uint8_t {
    kTransport,      ///< at the first header that is no extension header
    kLaterFragment,  ///< past a fragment header with a nonzero offset; proto stays 44
    kStopped,        ///< `visit` refused the header at `p`
    kTruncated,      ///< a header did not fit: the chain is malformed
};

/// Walks the extension headers at `p` (`size` bytes to the end of the
/// datagram), `proto` being the type of the first. Each header needs 8
/// bytes present before it is read and then its full length (8 * (len + 1);
/// AH: 4 * (len + 2); fragment: 8). A fragment header whose offset/flags
/// word is nonzero sets kFragAny in `frag` (an atomic fragment, word zero,
/// does not); a nonzero offset adds kFragLater and ends the walk past it.
/// `visit(proto, header)` sees every header once its first 8 bytes are
/// known present, before it is taken, and returns false to stop there. On
/// return `p`/`size` are past the headers taken and `proto` is the type of
/// the header at `p`.
template <typename Visit>
inline Ipv6ExtEnd walk_ipv6_ext_headers(const uint8_t*& p, uint32_t& size, uint8_t& proto, uint8_t& frag,
                                        Visit&& visit) {
    while (is_ipv6_ext_header(proto)) {
        if (size < 8) return Ipv6ExtEnd::kTruncated;
        if (!visit(proto, p)) return Ipv6ExtEnd::kStopped;
        uint32_t ext_len;
        if (proto == kProtoFragment) {
            ext_len = 8;
            const uint16_t offset_flags = read_be16(p + 2);
            if (offset_flags) {
                frag = kFragAny;
                if (offset_flags & kIpv6FragOffsetMask) {
                    frag = kFragAny | kFragLater;
                    p += ext_len;
                    size -= ext_len;
                    return Ipv6ExtEnd::kLaterFragment;
                }
            }
        } else {
            ext_len = proto == kProtoAh ? (p[1] + 2u) * 4 : (p[1] + 1u) * 8;
            if (size < ext_len) return Ipv6ExtEnd::kTruncated;
        }
        proto = p[0];
        p += ext_len;
        size -= ext_len;
    }
    return Ipv6ExtEnd::kTransport;
}

/// The walk without a visitor.
inline Ipv6ExtEnd walk_ipv6_ext_headers(const uint8_t*& p, uint32_t& size, uint8_t& proto, uint8_t& frag) {
    return walk_ipv6_ext_headers(p, size, proto, frag, [](uint8_t, const uint8_t*) { return true; });
}

}  // namespace flowpath::wire
