// Translation: rules and their actions applied to a working copy of the key,
// producing datapath actions.
//
// Header changes are applied to the working key (`flow`) as actions run and
// written to the packet lazily: before each output, every field where `flow`
// differs from what the packet holds (`base`) becomes one kSetField, in the
// order Ethernet, VLAN, L3, ND, L4, as Open vSwitch commits them. Outputs
// therefore see the headers as they are at that point, and a field set and
// set back costs nothing. VLAN tags work the same way: push_vlan, pop_vlan
// and set_field to vlan_tci only change the working key's tag slots, and
// the commit turns the difference between the two tag stacks into pops and
// pushes (or, when only the outer tag's VID/PCP differ, rewrites them).
//
// Connection tracking as Open vSwitch 3.1 translates it
// (compose_conntrack_action, compose_recirculate_and_fork): `ct` commits the
// header changes so far, then emits a datapath kCt; with table=T a kRecirc
// follows, which forks the pipeline: the packet (or a copy, when more
// actions follow) goes through a new pass that starts in table T with the
// ct fields the tracker found, while this pass goes on with the ct fields
// read as cleared (untracked), as does `ct_clear`. A pass after a
// recirculation starts where its recirc_id says (pipeline.hpp).
//
// OpenFlow metadata, as in Open vSwitch, is a field of the pipeline only:
// 0 when a packet enters, written by write_metadata, matched by the rules,
// frozen with the in_port at a ct(table=T) and thawed for that pass. It is
// no key bit: what it holds at a lookup follows from the rules that
// matched before, whose key bits are in the wildcards already.
#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "flowpath/pipeline.hpp"

namespace flowpath {

namespace {

constexpr uint16_t kEthIpv4 = 0x0800;
constexpr uint16_t kEthIpv6 = 0x86dd;
constexpr uint16_t kEthArp = 0x0806;
constexpr uint8_t kIpTcp = 6, kIpUdp = 17, kIpSctp = 132, kIpIcmp = 1, kIpIcmpv6 = 58;
constexpr uint16_t kVlanVidMask = 0x0fff;
constexpr uint16_t kVlanPcpMask = 0xe000;

template <class T>
void mark(T& field) {
    std::memset(&field, 0xff, sizeof(field));
}

template <class T>
bool differs(const T& a, const T& b) {
    return std::memcmp(&a, &b, sizeof(T)) != 0;
}

bool tag_present(const VlanTag& tag) { return (ntohs(tag.tci) & kVlanPresent) != 0; }
bool has_tag(const FlowKey& key) { return tag_present(key.vlans[0]); }
/// Tags as Open vSwitch counts them: slots from the outer one up to the
/// first without the present bit (a tag behind an absent slot is not there).
int tag_count(const FlowKey& key) {
    if (!tag_present(key.vlans[0])) return 0;
    return tag_present(key.vlans[1]) ? 2 : 1;
}
bool same_tag(const VlanTag& a, const VlanTag& b) { return a.tpid == b.tpid && a.tci == b.tci; }
bool is_ipv4(const FlowKey& key) { return key.dl_type == htons(kEthIpv4); }
bool is_ipv6(const FlowKey& key) { return key.dl_type == htons(kEthIpv6); }
bool is_ip(const FlowKey& key) { return is_ipv4(key) || is_ipv6(key); }
/// ICMPv6 neighbor solicitation (135) or advertisement (136), code 0.
bool is_nd(const FlowKey& key, uint16_t type) {
    return is_ipv6(key) && key.nw_proto == kIpIcmpv6 && key.tp_src == htons(type) && key.tp_dst == 0;
}

/// One translation in progress.
struct Context {
    const RuleSet& rules;
    Translation& out;
    FlowKey flow;  ///< the key as the actions so far made it
    FlowKey base;  ///< the key as the packet's bytes hold it
    uint32_t packet_in_port;  ///< the port the packet came in on (the key's)
    uint64_t metadata = 0;    ///< OpenFlow metadata
    /// The ct fields are the tracker's (a pass after ct(table=T), before a
    /// ct or ct_clear in it): Open vSwitch's `conntracked`, which decides
    /// whether a PACKET_IN shows them.
    bool conntracked = false;
    const Rule* rule = nullptr;  ///< whose actions run (a controller action names it)
    unsigned depth = 0;
    unsigned lookups = 0;
    bool too_deep = false;
    bool missed = false;       ///< table 0 or a goto_table found no rule
    bool ttl_expired = false;

    Context(const RuleSet& r, Translation& o, const FlowKey& key)
        : rules(r), out(o), flow(key), base(key), packet_in_port(key.in_port) {}

    void emit(const Action& action) { out.actions.push_back(action); }

    void emit_set(SetField field, const void* value) { emit(Action::set(field, value)); }

    /// Makes the packet's outer tag, whose TCI is `have`, carry `want`'s
    /// VID and PCP (and DEI 0, as a pushed tag has).
    void rewrite_outer_tci(uint16_t want, uint16_t have) {
        if ((want & kVlanVidMask) != (have & kVlanVidMask)) {
            const uint16_t vid = htons(kVlanPresent | (want & kVlanVidMask));
            emit_set(SetField::kVlanVid, &vid);
        }
        if ((want & kVlanPcpMask) != (have & kVlanPcpMask)) {
            const uint8_t pcp = static_cast<uint8_t>(want >> 13);
            emit_set(SetField::kVlanPcp, &pcp);
        }
    }

    /// Brings the packet's tag stack up to `flow`'s as Open vSwitch does:
    /// the tags equal from the innermost outwards stay, the packet's others
    /// are popped and the flow's others pushed. When that is one tag each
    /// with the same TPID, its VID/PCP are rewritten in place instead: the
    /// same bytes (Open vSwitch's new tag has DEI 0, the rewrite clears it).
    void commit_vlans() {
        int have = tag_count(base), want = tag_count(flow);
        while (have > 0 && want > 0 && same_tag(base.vlans[have - 1], flow.vlans[want - 1])) {
            --have;
            --want;
        }
        if (have == 1 && want == 1 && base.vlans[0].tpid == flow.vlans[0].tpid) {
            rewrite_outer_tci(ntohs(flow.vlans[0].tci), ntohs(base.vlans[0].tci));
        } else {
            for (int i = 0; i < have; ++i) emit(Action::of(ActionType::kPopVlan));
            for (int i = want; i-- > 0;) {
                emit(Action::push_vlan(ntohs(flow.vlans[i].tpid)));
                rewrite_outer_tci(ntohs(flow.vlans[i].tci), kVlanPresent);  // pushed: VID 0, PCP 0
            }
        }
        std::memcpy(base.vlans, flow.vlans, sizeof(base.vlans));
    }

    // Each commit marks what its result depends on only when it has a change
    // to write: with none pending it writes nothing whatever the packet holds
    // (the fields a change could come from are marked where the change was
    // made), so a plain output leaves nw_proto, ICMP type and code wild.

    /// Whether `flow` differs from `base` in an IP header field of base's
    /// family (a pending IP commit).
    bool ip_change_pending() const {
        bool pending = (flow.nw_tos != base.nw_tos) || (flow.nw_ttl != base.nw_ttl);
        if (is_ipv4(base)) {
            pending |= flow.nw_src != base.nw_src || flow.nw_dst != base.nw_dst;
        } else if (is_ipv6(base)) {
            pending |= differs(flow.ipv6_src, base.ipv6_src) || differs(flow.ipv6_dst, base.ipv6_dst) ||
                       flow.ipv6_label != base.ipv6_label;
        } else {
            return false;
        }
        return pending;
    }

    void commit_ip() {
        if (!ip_change_pending()) return;
        // Open vSwitch commits no IP header change for a packet whose
        // nw_proto is 0 (it takes that as "no L3 header"): the result
        // depends on nw_proto. (Open vSwitch itself leaves it wild there;
        // its megaflows are then wrong, see tests/diff/README.md.)
        mark(out.wildcards.nw_proto);
        if (flow.nw_proto == 0) return;
        if (is_ipv4(base)) {
            if (flow.nw_src != base.nw_src) emit_set(SetField::kIpv4Src, &flow.nw_src);
            if (flow.nw_dst != base.nw_dst) emit_set(SetField::kIpv4Dst, &flow.nw_dst);
            base.nw_src = flow.nw_src;
            base.nw_dst = flow.nw_dst;
        } else if (is_ipv6(base)) {
            if (differs(flow.ipv6_src, base.ipv6_src)) emit_set(SetField::kIpv6Src, flow.ipv6_src);
            if (differs(flow.ipv6_dst, base.ipv6_dst)) emit_set(SetField::kIpv6Dst, flow.ipv6_dst);
            if (flow.ipv6_label != base.ipv6_label) emit_set(SetField::kIpv6Label, &flow.ipv6_label);
            std::memcpy(base.ipv6_src, flow.ipv6_src, 16);
            std::memcpy(base.ipv6_dst, flow.ipv6_dst, 16);
            base.ipv6_label = flow.ipv6_label;
        }
        if ((flow.nw_tos & 0xfc) != (base.nw_tos & 0xfc)) {
            const uint8_t dscp = flow.nw_tos & 0xfc;
            emit_set(SetField::kNwTos, &dscp);
        }
        if ((flow.nw_tos & 0x03) != (base.nw_tos & 0x03)) {
            const uint8_t ecn = flow.nw_tos & 0x03;
            emit_set(SetField::kNwEcn, &ecn);
        }
        if (flow.nw_ttl != base.nw_ttl) emit_set(SetField::kNwTtl, &flow.nw_ttl);
        base.nw_tos = flow.nw_tos;
        base.nw_ttl = flow.nw_ttl;
    }

    void commit_arp() {
        // Open vSwitch commits ARP changes with the IP ones, under the same
        // "nw_proto (here the opcode's low byte) is not 0" rule.
        if (base.dl_type != htons(kEthArp)) return;
        if (flow.nw_proto == base.nw_proto && flow.nw_src == base.nw_src && flow.nw_dst == base.nw_dst &&
            !differs(flow.arp_sha, base.arp_sha) && !differs(flow.arp_tha, base.arp_tha)) {
            return;  // nothing to write
        }
        mark(out.wildcards.nw_proto);
        if (flow.nw_proto == 0) return;
        if (flow.nw_proto != base.nw_proto) {
            const uint16_t op = htons(flow.nw_proto);
            emit_set(SetField::kArpOp, &op);
        }
        if (flow.nw_src != base.nw_src) emit_set(SetField::kArpSpa, &flow.nw_src);
        if (flow.nw_dst != base.nw_dst) emit_set(SetField::kArpTpa, &flow.nw_dst);
        if (differs(flow.arp_sha, base.arp_sha)) emit_set(SetField::kArpSha, flow.arp_sha);
        if (differs(flow.arp_tha, base.arp_tha)) emit_set(SetField::kArpTha, flow.arp_tha);
        base.nw_proto = flow.nw_proto;
        base.nw_src = flow.nw_src;
        base.nw_dst = flow.nw_dst;
        std::memcpy(base.arp_sha, flow.arp_sha, 6);
        std::memcpy(base.arp_tha, flow.arp_tha, 6);
    }

    void commit_nd() {
        // The packet as it is must be ND (ICMPv6 NS/NA, code 0); whether
        // the actions could change the ND fields was judged by set_field.
        // Nothing to write means nothing to depend on: marking the ports
        // for every packet would make every megaflow exact on them.
        if (!differs(flow.nd_target, base.nd_target) && !differs(flow.arp_sha, base.arp_sha) &&
            !differs(flow.arp_tha, base.arp_tha)) {
            return;
        }
        mark(out.wildcards.nw_proto);
        mark(out.wildcards.tp_src);
        mark(out.wildcards.tp_dst);
        if (!is_nd(base, 135) && !is_nd(base, 136)) return;
        if (differs(flow.nd_target, base.nd_target)) emit_set(SetField::kNdTarget, flow.nd_target);
        if (differs(flow.arp_sha, base.arp_sha)) emit_set(SetField::kNdSll, flow.arp_sha);
        if (differs(flow.arp_tha, base.arp_tha)) emit_set(SetField::kNdTll, flow.arp_tha);
        std::memcpy(base.nd_target, flow.nd_target, 16);
        std::memcpy(base.arp_sha, flow.arp_sha, 6);
        std::memcpy(base.arp_tha, flow.arp_tha, 6);
    }

    void commit_transport() {
        // As Open vSwitch: no transport change without an L3 protocol. (The
        // executor skips packets whose transport header was not parsed.)
        if (!is_ip(base)) return;
        const bool src = flow.tp_src != base.tp_src, dst = flow.tp_dst != base.tp_dst;
        if (!src && !dst) return;  // nothing to write
        mark(out.wildcards.nw_proto);
        if (flow.nw_proto == 0) return;
        const uint8_t* src_byte = reinterpret_cast<const uint8_t*>(&flow.tp_src) + 1;
        const uint8_t* dst_byte = reinterpret_cast<const uint8_t*>(&flow.tp_dst) + 1;
        switch (base.nw_proto) {
            case kIpTcp:
                if (src) emit_set(SetField::kTcpSrc, &flow.tp_src);
                if (dst) emit_set(SetField::kTcpDst, &flow.tp_dst);
                break;
            case kIpUdp:
                if (src) emit_set(SetField::kUdpSrc, &flow.tp_src);
                if (dst) emit_set(SetField::kUdpDst, &flow.tp_dst);
                break;
            case kIpSctp:
                if (src) emit_set(SetField::kSctpSrc, &flow.tp_src);
                if (dst) emit_set(SetField::kSctpDst, &flow.tp_dst);
                break;
            case kIpIcmp:
                // Open vSwitch rewrites ICMP type and code together, so the
                // code written may be the packet's own.
                if (!is_ipv4(base)) return;
                mark(out.wildcards.tp_dst);
                mark(out.wildcards.tp_src);
                emit_set(SetField::kIcmpType, src_byte);
                emit_set(SetField::kIcmpCode, dst_byte);
                break;
            case kIpIcmpv6:
                if (!is_ipv6(base)) return;
                mark(out.wildcards.tp_dst);
                mark(out.wildcards.tp_src);
                emit_set(SetField::kIcmpv6Type, src_byte);
                emit_set(SetField::kIcmpv6Code, dst_byte);
                break;
            default:
                return;
        }
        base.tp_src = flow.tp_src;
        base.tp_dst = flow.tp_dst;
    }

    /// Brings the packet's headers up to date with `flow`.
    void commit() {
        if (differs(flow.dl_src, base.dl_src)) emit_set(SetField::kEthSrc, flow.dl_src);
        if (differs(flow.dl_dst, base.dl_dst)) emit_set(SetField::kEthDst, flow.dl_dst);
        std::memcpy(base.dl_src, flow.dl_src, 6);
        std::memcpy(base.dl_dst, flow.dl_dst, 6);
        commit_vlans();
        commit_ip();
        commit_arp();
        commit_nd();
        commit_transport();
    }

    void output(uint32_t port) {
        commit();
        emit(Action::output(port));
    }

    // The tag actions change only the working key's two slots, exactly as
    // Open vSwitch changes its flow; commit_vlans() does the packet. What
    // they lead to depends on both slots of the packet, hence the marks.

    /// A new outer tag, VID 0 and PCP 0. With two tags in the key a third
    /// pushes the innermost out of it, and so (at the commit) off the packet.
    void push_vlan(uint16_t ethertype) {
        mark(out.wildcards.vlans);
        flow.vlans[1] = flow.vlans[0];
        flow.vlans[0] = VlanTag{htons(ethertype), htons(kVlanPresent)};
    }

    /// Removes the outer tag. As Open vSwitch: only counted tags move, so
    /// with one tag the second slot keeps whatever it holds.
    void pop_vlan() {
        mark(out.wildcards.vlans);
        const int tags = tag_count(flow);
        if (tags == 2) flow.vlans[0] = flow.vlans[1];
        if (tags > 0) flow.vlans[tags - 1] = VlanTag{0, 0};
    }

    /// Whether the working flow is ND of ICMPv6 type `type`, the bits it
    /// looked at joining the wildcards.
    bool nd_prerequisites(uint16_t type) {
        mark(out.wildcards.nw_proto);
        mark(out.wildcards.tp_src);
        mark(out.wildcards.tp_dst);
        return is_nd(flow, type);
    }

    /// The ct fields as an untracked packet has them: what the rest of a
    /// pass sees after a ct or a ct_clear.
    void clear_conntrack() {
        conntracked = false;
        flow.ct_state = 0;
        flow.ct_zone = 0;
        flow.ct_mark = 0;
    }

    /// `ct(...)`: the packet as the actions so far made it goes through the
    /// tracker; with table=T, a recirculation to T forks the pipeline here.
    void conntrack(const Action& a) {
        commit();
        Action tracker = a;
        tracker.ct_flags &= static_cast<uint8_t>(~kCtRecirc);
        tracker.table = 0;
        emit(tracker);
        if (a.ct_flags & kCtRecirc) {
            const uint32_t id = rules.freeze(a.table, flow.in_port, packet_in_port, metadata, flow.in_port);
            if (id == 0) {  // no frozen state left (kMaxFrozenStates): cannot continue the pipeline
                too_deep = true;
                return;
            }
            emit(Action::recirc(id));
        }
        clear_conntrack();
    }

    /// `controller`: the packet as the actions so far made it goes to the
    /// slow path, which sends it to the controllers as a PACKET_IN naming
    /// this rule (Open vSwitch commits the header changes first too).
    void controller(const Action& a, uint8_t table) {
        commit();
        ControllerState state;
        state.cookie = rule->cookie;
        state.metadata = metadata;
        state.in_port = flow.in_port;
        state.table_miss = rule->priority == 0 && rule->match.is_catchall();
        state.conntracked = conntracked;
        emit(datapath_controller(static_cast<uint16_t>(a.port), table, state));
    }

    void set_field(const Action& action);
    void run_actions(const ActionList& actions, uint8_t table);
    bool run_table(uint8_t table, uint32_t lookup_in_port);
    bool run_table(uint8_t table) { return run_table(table, flow.in_port); }
};

// Writes a set_field into the working key. The field joins the wildcards:
// whether the commit emits a change depends on the packet's own value.
void Context::set_field(const Action& a) {
    const uint8_t* v = a.value;
    auto write = [&](auto& field) {
        std::memcpy(&field, v, sizeof(field));
        const size_t offset = reinterpret_cast<const uint8_t*>(&field) - reinterpret_cast<const uint8_t*>(&flow);
        std::memset(reinterpret_cast<uint8_t*>(&out.wildcards) + offset, 0xff, sizeof(field));
    };
    switch (a.field) {
        case SetField::kInPort: flow.in_port = a.port; break;
        case SetField::kEthSrc: write(flow.dl_src); break;
        case SetField::kEthDst: write(flow.dl_dst); break;
        case SetField::kVlanTci:
            // The outer slot takes the whole value, present bit included
            // (without it the slot, and any tag behind it, no longer count:
            // the commit pops them); a slot without TPID gets 0x8100.
            mark(out.wildcards.vlans);
            std::memcpy(&flow.vlans[0].tci, v, 2);
            if (flow.vlans[0].tpid == 0 && flow.vlans[0].tci != 0) flow.vlans[0].tpid = htons(0x8100);
            break;
        case SetField::kVlanVid: {
            // As Open vSwitch: VID and present bit go in even where the
            // slot holds no tag (a resubmitted rule may have stripped it;
            // then the commit pushes one, PCP from the slot), TPID 0x8100
            // for a slot without one.
            mark(out.wildcards.vlans[0].tci);
            if (!has_tag(flow)) {
                mark(out.wildcards.vlans);
                if (flow.vlans[0].tpid == 0) flow.vlans[0].tpid = htons(0x8100);
            }
            const uint16_t tci = ntohs(flow.vlans[0].tci);
            const uint16_t vid = static_cast<uint16_t>(((v[0] << 8) | v[1]) & kVlanVidMask);
            flow.vlans[0].tci = htons(static_cast<uint16_t>((tci & kVlanPcpMask) | kVlanPresent | vid));
            break;
        }
        case SetField::kVlanPcp: {
            // Only on a tag (Open vSwitch checks VLAN_PCP's prerequisite
            // when it runs the action).
            mark(out.wildcards.vlans[0].tci);
            if (!has_tag(flow)) break;
            const uint16_t tci = ntohs(flow.vlans[0].tci);
            flow.vlans[0].tci = htons(static_cast<uint16_t>((tci & ~kVlanPcpMask) | ((v[0] & 7) << 13)));
            break;
        }
        case SetField::kIpv4Src: case SetField::kArpSpa: write(flow.nw_src); break;
        case SetField::kIpv4Dst: case SetField::kArpTpa: write(flow.nw_dst); break;
        case SetField::kIpv6Src: write(flow.ipv6_src); break;
        case SetField::kIpv6Dst: write(flow.ipv6_dst); break;
        case SetField::kIpv6Label: write(flow.ipv6_label); break;
        case SetField::kNwTos:
            mark(out.wildcards.nw_tos);
            flow.nw_tos = static_cast<uint8_t>((v[0] & 0xfc) | (flow.nw_tos & 0x03));
            break;
        case SetField::kNwEcn:
            mark(out.wildcards.nw_tos);
            flow.nw_tos = static_cast<uint8_t>((flow.nw_tos & 0xfc) | (v[0] & 0x03));
            break;
        case SetField::kNwTtl: write(flow.nw_ttl); break;
        case SetField::kTcpSrc: case SetField::kUdpSrc: case SetField::kSctpSrc: write(flow.tp_src); break;
        case SetField::kTcpDst: case SetField::kUdpDst: case SetField::kSctpDst: write(flow.tp_dst); break;
        case SetField::kIcmpType: case SetField::kIcmpv6Type:
            mark(out.wildcards.tp_src);
            flow.tp_src = htons(v[0]);
            break;
        case SetField::kIcmpCode: case SetField::kIcmpv6Code:
            mark(out.wildcards.tp_dst);
            flow.tp_dst = htons(v[0]);
            break;
        case SetField::kArpOp:
            mark(out.wildcards.nw_proto);
            flow.nw_proto = v[1];  // the key keeps the opcode's low byte
            break;
        case SetField::kArpSha: write(flow.arp_sha); break;
        case SetField::kArpTha: write(flow.arp_tha); break;
        // As Open vSwitch, a set_field whose prerequisites the flow no longer
        // meets (an earlier action changed the ICMPv6 type or code) is
        // ignored.
        case SetField::kNdSll:
            if (nd_prerequisites(135)) write(flow.arp_sha);
            break;
        case SetField::kNdTll:
            if (nd_prerequisites(136)) write(flow.arp_tha);
            break;
        case SetField::kNdTarget:
            if (nd_prerequisites(135) || nd_prerequisites(136)) write(flow.nd_target);
            break;
    }
}

void Context::run_actions(const ActionList& actions, uint8_t table) {
    for (const Action& a : actions) {
        if (too_deep) return;
        switch (a.type) {
            case ActionType::kOutput:
                if (a.port != flow.in_port) output(a.port);
                break;
            case ActionType::kInPort:
                // Not a port for a packet-out's packet run from the
                // controller (in_port CONTROLLER, OUTPUT:TABLE).
                if (flow.in_port >= 1 && flow.in_port <= rules.ports().size()) output(flow.in_port);
                break;
            case ActionType::kFlood:
            case ActionType::kAll:
                for (uint32_t port = 1; port <= rules.ports().size(); ++port) {
                    if (port != flow.in_port) output(port);
                }
                break;
            case ActionType::kSetField:
                set_field(a);
                break;
            case ActionType::kDecTtl:
                if (!is_ip(flow)) break;
                mark(out.wildcards.nw_ttl);
                if (flow.nw_ttl <= 1) {
                    // Stops this rule's actions; a resubmitting rule goes on.
                    ttl_expired = true;
                    return;
                }
                --flow.nw_ttl;
                break;
            case ActionType::kPushVlan:
                push_vlan(a.ethertype);
                break;
            case ActionType::kPopVlan:
                pop_vlan();
                break;
            case ActionType::kResubmit: {
                if (depth >= kMaxResubmitDepth) {
                    too_deep = true;
                    return;
                }
                // As Open vSwitch (rule_dpif_lookup_from_table): the port
                // given is the in_port of the lookup only; the actions of
                // the rule found see the packet's.
                ++depth;
                run_table(a.table == kResubmitSameTable ? table : a.table,
                          a.port == kResubmitSamePort ? flow.in_port : a.port);
                --depth;
                break;
            }
            case ActionType::kGotoTable:
                if (!run_table(a.table)) missed = true;
                return;  // goto_table ends the list
            case ActionType::kCt:
                conntrack(a);
                break;
            case ActionType::kCtClear:
                clear_conntrack();
                emit(a);
                break;
            case ActionType::kRecirc:
                break;  // datapath only: no rule holds it
            case ActionType::kClearActions:
                break;  // no action set to clear
            case ActionType::kWriteMetadata:
            case ActionType::kSetMetadata: {
                const MetadataWrite write = write_metadata_of(a);
                metadata = (metadata & ~write.mask) | (write.value & write.mask);
                break;
            }
            case ActionType::kController:
                controller(a, table);
                break;
        }
    }
}

bool Context::run_table(uint8_t table, uint32_t lookup_in_port) {
    if (++lookups > kMaxTableLookups) {
        too_deep = true;
        return false;
    }
    // As Open vSwitch's normal fragment handling: every fragment, the first
    // included, is classified as if its transport ports were 0 (translate()
    // marks nw_frag for every IP packet).
    const ClassifierRule* hit;
    if ((flow.nw_frag & kFragAny) || lookup_in_port != flow.in_port) {
        FlowKey looked_up = flow;
        looked_up.in_port = lookup_in_port;
        if (flow.nw_frag & kFragAny) looked_up.tp_src = looked_up.tp_dst = 0;
        hit = rules.lookup(table, looked_up, metadata, out.wildcards);
    } else {
        hit = rules.lookup(table, flow, metadata, out.wildcards);
    }
    if (!hit) {
        if (out.missed_count < kMaxMissedLookups) out.missed[out.missed_count++] = table;
        return false;
    }
    RuleEntry& entry = RuleSet::entry_of(*hit);
    if (out.matched_count < kMaxMatchedRules) out.matched[out.matched_count++] = &entry;
    const Rule* outer = std::exchange(rule, &entry.rule);
    run_actions(entry.rule.actions, table);
    rule = outer;
    return true;
}

}  // namespace

void Translation::clear() {
    actions.clear();
    wildcards = FlowMask{};
    drop = TranslateDrop::none;
    matched_count = 0;
    missed_count = 0;
}

unsigned Translation::outputs() const {
    unsigned n = 0;
    for (const Action& a : actions) n += a.type == ActionType::kOutput;
    return n;
}

namespace {
// Actions whose effect outlives the pass: everything behind the last of
// them reaches no one.
bool lasting(const Action& a) {
    return a.type == ActionType::kOutput || a.type == ActionType::kCt || a.type == ActionType::kRecirc ||
           a.type == ActionType::kController;
}
// Actions that take the packet somewhere.
bool takes_packet(const Action& a) { return a.type == ActionType::kOutput || a.type == ActionType::kRecirc; }
}  // namespace

void translate(const RuleSet& rules, const FlowKey& key, Translation& out) {
    out.clear();
    // Every result depends on in_port (outputs to it are skipped), on the
    // ethertype (which headers exist) and on recirc_id (the pass: where it
    // starts); an IP packet's on whether it is a fragment (fragments are
    // classified with ports 0), whatever the rules look at: a megaflow of an
    // unfragmented packet must not answer a first fragment of the same
    // 5-tuple (Open vSwitch marks nw_frag likewise).
    mark(out.wildcards.in_port);
    mark(out.wildcards.dl_type);
    mark(out.wildcards.recirc_id);
    if (is_ip(key)) mark(out.wildcards.nw_frag);
    Context context(rules, out, key);
    uint8_t table = 0;
    uint32_t lookup_in_port = key.in_port;
    if (key.recirc_id) {
        const RecircState state = rules.thaw(key.recirc_id, key.in_port);
        table = state.table;
        lookup_in_port = state.lookup_in_port;
        context.flow.in_port = state.in_port;
        context.metadata = state.metadata;
        // A ct(table=T) recirculates. So may a packet-out's packet start
        // (a resubmit, metadata: packet_out_recirc_id), but with no ct
        // fields, which a PACKET_IN then shows none of either way.
        context.conntracked = true;
    }
    if (!context.run_table(table, lookup_in_port)) context.missed = true;
    while (!out.actions.empty() && !lasting(out.actions.back())) out.actions.pop_back();
    if (context.too_deep) {
        out.actions.clear();
        out.drop = TranslateDrop::too_deep;
    } else if (std::none_of(out.actions.begin(), out.actions.end(), takes_packet)) {
        // The actions left (if any) end with a ct: it still runs (a commit,
        // a mark), then the packet is dropped for this reason.
        out.drop = context.missed        ? TranslateDrop::no_match
                   : context.ttl_expired ? TranslateDrop::ttl_expired
                                         : TranslateDrop::no_output;
    }
}

}  // namespace flowpath
