// The packet action executor: applies a datapath action list to the bytes
// of one packet, changing them exactly as Open vSwitch 3.1's userspace
// datapath changes them (docs/actions.md lists every rule and how it was
// established).
//
// Division of labour with the translator (the slow path that turns rules
// into a flat action list): the translator decides *whether* an action is
// emitted, as OVS's ofproto-dpif-xlate and its "commit" step do (a set that
// leaves the flow unchanged is not emitted, a TTL that would expire stops
// the list, ...); the executor decides *how* the bytes change, as OVS's
// odp-execute does, including its length checks and its quirks. A few
// xlate rules that depend only on the packet are enforced here too, so a
// cache entry shared by several packets stays right (see each function).
//
// DPDK-free: a packet is a PacketBuffer (contiguous bytes with room around
// them). Nothing here allocates, locks, throws or makes a system call; no
// byte outside [data - headroom, data + len + tailroom) is ever touched,
// and no byte at or past data + len is read.
#pragma once

#include <cstddef>
#include <cstdint>

#include "flowpath/action.hpp"
#include "flowpath/packet.hpp"

namespace flowpath {

/// A packet being edited: `len` contiguous bytes at `data`, with `headroom`
/// writable bytes before them and `tailroom` after, so that a VLAN push
/// needs no copy.
///
/// With an rte_mbuf (single segment) the worker wraps it as
///   {rte_pktmbuf_mtod(m, uint8_t*), rte_pktmbuf_data_len(m),
///    rte_pktmbuf_headroom(m), rte_pktmbuf_tailroom(m)}
/// and after push_vlan/pop_vlan (or execute_actions) writes it back:
///   m->data_off = pkt.data - (uint8_t*)m->buf_addr;
///   m->data_len = m->pkt_len = pkt.len;
/// A push normally moves `data` 4 bytes down (headroom - 4); only with less
/// than 4 bytes of headroom does it shift the payload up into the tailroom
/// instead (data unchanged). A pop moves `data` 4 bytes up. set_field and
/// dec_ttl never change data or len.
struct PacketBuffer {
    uint8_t* data;
    uint32_t len;
    uint32_t headroom;
    uint32_t tailroom;
};

/// Writes `value` (set_field_width(field) bytes, wire order, as in
/// Action::value) into header `field` of the packet whose headers `layout`
/// describes, with every incremental checksum update OVS makes. Returns
/// whether the field existed (the bytes may still be unchanged when the
/// value was already there). A field that the packet lacks, or that does
/// not fit in the frame, is left alone. kInPort is metadata: always false.
///
/// Per field (details and evidence in docs/actions.md):
///  - kEthSrc/kEthDst: the MAC, if its 6 bytes are in the frame.
///  - kVlanVid/kVlanPcp: the outer tag, if there is one (else no-op): VID
///    (value & 0xfff) or PCP is replaced, the other kept, DEI cleared, TPID
///    kept (OVS pops the tag and pushes a new one).
///  - kVlanTci (never emitted by the translator, which turns it into pops,
///    pushes and the two above): with the 0x1000 present bit in the value,
///    the outer tag's PCP and VID from the value, DEI cleared; else no-op.
///  - IPv4/IPv6 fields, kNwTos/kNwEcn/kNwTtl: only on a valid IP header
///    (kLayoutL3) and, for IPv4, a nonzero protocol (OVS commits no IP
///    change when nw_proto is 0). IPv4 header checksum updated. Address
///    changes also update the TCP (l4 >= 20 bytes) or UDP (l4 >= 8, checksum
///    nonzero; a result of 0 is written 0xffff) checksum, and for IPv6 the
///    ICMPv6 one (l4 >= 4), even on an IPv4 later fragment (OVS does);
///    for IPv6 not after a fragment header unless it is a first fragment
///    (offset 0, M set), and not at all behind a routing header with
///    segments left. kNwTos keeps ECN, kNwEcn keeps DSCP; on IPv6 both
///    edit the traffic class across bytes 0-1. kIpv6Label keeps version
///    and traffic class.
///  - TCP/UDP/SCTP ports: only when the transport header was parsed
///    (kLayoutL4: never on later fragments) and is long enough (TCP: a
///    valid data offset). TCP/UDP checksums updated (UDP 0 stays 0); the
///    SCTP CRC32c is changed by old CRC ^ new CRC over the SCTP packet, so
///    a wrong one stays exactly as wrong.
///  - kIcmpType/Code, kIcmpv6Type/Code: when >= 8 transport bytes are
///    present (also on later fragments); checksum updated.
///  - kNdTarget: >= 24 ICMPv6 bytes; checksum updated. kNdSll/kNdTll: the
///    first option of type SLL or TLL with length 1 is rewritten if it is
///    of the kind asked, with OVS's option walk (which may run into the
///    Ethernet padding), checksum updated.
///  - ARP fields (ethertype 0x0806 only): written if in the frame.
bool set_field(PacketBuffer& pkt, const PacketLayout& layout, SetField field, const uint8_t* value);

/// Pushes a new outer 802.1Q tag with TPID `tpid` (host order) and TCI 0
/// (VID 0, PCP 0, DEI 0; OVS does not copy an existing tag) after the MACs,
/// and shifts `layout` (vlan_count + 1, l3/l4 offsets + 4). Uses 4 bytes of
/// headroom, else of tailroom. Returns false, changing nothing, when there
/// is no room, the frame is shorter than 12 bytes, or it would exceed 65534
/// bytes (offsets must stay below kNoOffset).
bool push_vlan(PacketBuffer& pkt, PacketLayout& layout, uint16_t tpid);

/// Removes the outer VLAN tag if the layout has one (vlan_count > 0) and
/// shifts `layout` back. Returns whether a tag was removed.
bool pop_vlan(PacketBuffer& pkt, PacketLayout& layout);

/// Decrements the IPv4 TTL (with header checksum update) or the IPv6 hop
/// limit. The translator has decided that it does not expire; a TTL of 0 is
/// left alone, as are packets that set_field would not change (no valid IP
/// header, IPv4 protocol 0: OVS commits no TTL change for those). Returns
/// whether the TTL changed.
bool dec_ttl(PacketBuffer& pkt, const PacketLayout& layout);

/// Applies `actions[from..to)` in order to `pkt`, keeping `layout` current:
/// kOutput, kSetField, kDecTtl, kPushVlan and kPopVlan act; other types are
/// skipped (the translator resolves the rule-level ones; kCt, kCtClear and
/// kRecirc are run by the worker between ranges, with its tracker and its
/// next pass). At each kOutput calls
///     out(uint32_t port, const PacketBuffer& pkt, bool last)
/// with the bytes as they are at that point; `last` is true for the one at
/// index `taker` (see packet_taker), after which the range stops without
/// touching the packet again, so the callee may take the buffer itself. The
/// executor allocates nothing and never copies: the callee copies the
/// packet for every other output if it must keep it.
/// Returns false if a push found no room (nothing after it is done, the
/// outputs before it happened); true otherwise.
template <class Out>
bool execute_range(PacketBuffer& pkt, PacketLayout& layout, const Action* actions, size_t from, size_t to,
                   size_t taker, Out&& out) {
    for (size_t i = from; i < to; ++i) {
        const Action& action = actions[i];
        switch (action.type) {
        case ActionType::kOutput:
            out(action.port, static_cast<const PacketBuffer&>(pkt), i == taker);
            if (i == taker) return true;
            break;
        case ActionType::kSetField:
            set_field(pkt, layout, action.field, action.value);
            break;
        case ActionType::kDecTtl:
            dec_ttl(pkt, layout);
            break;
        case ActionType::kPushVlan:
            if (!push_vlan(pkt, layout, action.ethertype)) return false;
            break;
        case ActionType::kPopVlan:
            pop_vlan(pkt, layout);
            break;
        default:
            break;
        }
    }
    return true;
}

/// The index of the action that takes the packet itself when
/// `actions[0..n)` run: the last kOutput or kRecirc, unless a kCt or a
/// kController follows it (the tracker or the slow path reads the packet
/// afterwards, so that output gets a copy); n when none does (the packet is
/// dropped after the list, or a last kController takes it).
inline size_t packet_taker(const Action* actions, size_t n) {
    for (size_t i = n; i-- > 0;) {
        switch (actions[i].type) {
        case ActionType::kOutput:
        case ActionType::kRecirc:
            return i;
        case ActionType::kCt:
        case ActionType::kController:
            return n;
        default:
            break;
        }
    }
    return n;
}

/// Applies `actions[0..n)`, a list without connection tracking, as
/// execute_range does, the last kOutput taking the packet (`last` true);
/// nothing behind it is done (it could not be observed).
template <class Out>
bool execute_actions(PacketBuffer& pkt, PacketLayout& layout, const Action* actions, size_t n,
                     Out&& out) {
    size_t last_output = n;
    for (size_t i = n; i-- > 0;) {
        if (actions[i].type == ActionType::kOutput) {
            last_output = i;
            break;
        }
    }
    return execute_range(pkt, layout, actions, 0, last_output == n ? n : last_output + 1, last_output, out);
}

}  // namespace flowpath
