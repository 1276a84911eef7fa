// Packets as rte_mbuf chains. A frame longer than a buffer (--mbuf-size)
// arrives as a chain of segments; it is forwarded as it is, never made
// contiguous, as long as its headers lie in the first segment: the parser
// and the actions read and write only there (a header rewrite or a VLAN
// push or pop touches the first segment alone), and copies for several
// outputs are whole copies of the chain (rte_pktmbuf_copy). A frame whose
// headers run past the first segment (an IPv6 extension chain longer than
// a buffer, say) is joined when the first segment's tailroom holds the
// rest, else dropped as split_headers: joining it would need a buffer
// larger than the pool's. A single-segment packet costs what it did: one
// test of nb_segs on a cache line already read.
#pragma once

#include <rte_mbuf.h>

#include <cstdint>

#include "flowpath/actions.hpp"
#include "flowpath/packet.hpp"

namespace flowpath {

/// The bytes the actions edit: the first segment, with the whole frame's
/// length (a chain's header fields all lie in the first segment, see
/// extract_packet). A chain grows only into its headroom (a VLAN push):
/// its first segment's tailroom is not the frame's end, so none is given.
inline PacketBuffer packet_buffer(rte_mbuf* m) {
    return {rte_pktmbuf_mtod(m, uint8_t*), rte_pktmbuf_pkt_len(m), rte_pktmbuf_headroom(m),
            m->nb_segs == 1 ? static_cast<uint32_t>(rte_pktmbuf_tailroom(m)) : 0u};
}

/// Writes back what a VLAN push or pop changed: the frame's start, and its
/// length (4 bytes more or fewer, all of them in the first segment).
inline void sync_packet(rte_mbuf* m, const PacketBuffer& bytes) {
    m->data_off = static_cast<uint16_t>(bytes.data - static_cast<uint8_t*>(m->buf_addr));
    m->data_len = static_cast<uint16_t>(m->data_len + bytes.len - m->pkt_len);
    m->pkt_len = bytes.len;
}

/// The key and layout of a chain's frame, read from its first segment
/// (extract_miniflow_chained). A frame whose headers are not all there is
/// joined when the first segment's tailroom holds the rest
/// (rte_pktmbuf_linearize) and extracted whole. False when it cannot be:
/// the caller drops it (split_headers); `flow`/`layout` are then in_port
/// alone and empty.
inline bool extract_chained(rte_mbuf* m, uint32_t in_port, Miniflow& flow, PacketLayout& layout) {
    if (extract_miniflow_chained(rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m),
                                 rte_pktmbuf_pkt_len(m), in_port, flow, layout)) {
        return true;
    }
    if (rte_pktmbuf_linearize(m) != 0) return false;
    extract_miniflow(rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m), in_port, flow, layout);
    return true;
}

/// The whole frame in contiguous bytes, for a reader of every byte (the
/// connection tracker verifies transport checksums): a single segment's own
/// bytes, or a chain copied into `scratch` (pkt_len bytes of room).
inline const uint8_t* contiguous_frame(const rte_mbuf* m, uint8_t* scratch) {
    return static_cast<const uint8_t*>(rte_pktmbuf_read(m, 0, rte_pktmbuf_pkt_len(m), scratch));
}

}  // namespace flowpath
