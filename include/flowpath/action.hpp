// Actions: what a rule does to a packet, in order.
//
// An ActionList is a flat vector of small fixed-size Action structs, so an
// executor walks it with one switch per action and no pointer chasing. The
// rule parser (rule.hpp) already resolved everything that depends on the
// rule's match: `mod_vlan_vid` in a rule that does not match a VLAN is stored
// as kPushVlan followed by kSetField (as OpenFlow 1.3 encodes it), `mod_tp_src`
// names the transport protocol the match fixes, `ip_dscp` is stored as the
// TOS byte, and so on. Values are in wire byte order, ready to copy into the
// packet.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

namespace flowpath {

/// What one action does.
enum class ActionType : uint8_t {
    kOutput,     ///< send a copy to `port` (skipped when it is the input port)
    kInPort,     ///< send a copy back out of the input port
    kFlood,      ///< send a copy to every port but the input port
    kAll,        ///< same ports as kFlood (OpenFlow ALL; no STP here)
    kSetField,   ///< write `value` into header field `field`
    kDecTtl,     ///< decrement IPv4 TTL / IPv6 hop limit; at 0 or 1 stop here
    kPushVlan,   ///< push an outer tag with TPID `ethertype`, VID 0, PCP 0
    kPopVlan,    ///< remove the outer tag
    kResubmit,   ///< run table `table` with in_port `port`, then continue
    kGotoTable,  ///< continue in table `table` (always the last action)
    kCt,         ///< send through connection tracking (see ct_* members)
    kCtClear,    ///< forget the connection tracking state of the packet
    /// send a copy to the OpenFlow controllers as a PACKET_IN of at most
    /// `port` bytes (kControllerAll: the whole packet). Late, so that the
    /// numbers of the others stay put.
    kController,
    /// Datapath only (the translator emits it after a kCt with kCtRecirc):
    /// the packet, or a copy of it when more actions follow, goes through
    /// the pipeline again as a new pass with recirculation id `port`.
    kRecirc,
    /// Rule only, OpenFlow's clear_actions instruction: flowpath keeps no
    /// action set, so it does nothing; kept so that dump-flows prints it.
    /// After the applied actions, before kWriteMetadata and kGotoTable.
    kClearActions,
    /// Rule only, OpenFlow's write_metadata instruction: the pipeline's
    /// metadata becomes (metadata & ~mask) | (value & mask), with value and
    /// mask (host order) from write_metadata_of(). Before a kGotoTable, after
    /// everything else.
    kWriteMetadata,
    /// Rule only, `set_field:V[/M]->metadata` among the applied actions: the
    /// metadata becomes (metadata & ~mask) | (value & mask) there (a later
    /// resubmit sees it), value and mask as write_metadata_of() gives them.
    /// The mask is all ones or one run of ones (ovs-ofctl splits any other
    /// into one load per run); bit kMetadataLoad of ct_flags: written as
    /// `load:V->OXM_OF_METADATA[...]` (NXAST_REG_LOAD), as Open vSwitch
    /// prints it back whatever the mask, else as set_field.
    kSetMetadata,
};

/// The header field a kSetField action writes. The value layout (bytes of
/// Action::value, wire order, starting at byte 0) is given for each.
enum class SetField : uint8_t {
    kInPort,      ///< the packet's in_port metadata: Action::port (value unused)
    kEthSrc,      ///< 6 bytes
    kEthDst,      ///< 6 bytes
    kVlanVid,     ///< 2 bytes, network order: 0x1000 | VID (OpenFlow 1.3)
    kVlanPcp,     ///< 1 byte, 0-7
    kIpv4Src,     ///< 4 bytes
    kIpv4Dst,     ///< 4 bytes
    kIpv6Src,     ///< 16 bytes
    kIpv6Dst,     ///< 16 bytes
    kIpv6Label,   ///< 4 bytes, network order, low 20 bits
    kNwTos,       ///< 1 byte: DSCP << 2; the packet's ECN bits are kept
    kNwEcn,       ///< 1 byte: ECN 0-3; the packet's DSCP is kept
    kNwTtl,       ///< 1 byte: IPv4 TTL or IPv6 hop limit
    kTcpSrc,      ///< 2 bytes, network order (and likewise the five below)
    kTcpDst,
    kUdpSrc,
    kUdpDst,
    kSctpSrc,
    kSctpDst,
    kIcmpType,    ///< 1 byte (ICMPv4)
    kIcmpCode,    ///< 1 byte (ICMPv4)
    kIcmpv6Type,  ///< 1 byte
    kIcmpv6Code,  ///< 1 byte
    kArpOp,       ///< 2 bytes, network order
    kArpSpa,      ///< 4 bytes
    kArpTpa,      ///< 4 bytes
    kArpSha,      ///< 6 bytes
    kArpTha,      ///< 6 bytes
    kNdTarget,    ///< 16 bytes
    kNdSll,       ///< 6 bytes (ND source link-layer address option)
    kNdTll,       ///< 6 bytes (ND target link-layer address option)
    /// 2 bytes, network order: the whole outer TCI as `set_field:V->vlan_tci`
    /// gives it, Open vSwitch style (0x1000 is the present bit, not DEI).
    /// Only rule actions hold it: the translator turns it into pops, pushes
    /// and kVlanVid/kVlanPcp (a value without 0x1000 removes the tags, one
    /// with it on an untagged packet pushes one). Last, so that the numbers
    /// of the others stay put.
    kVlanTci,
};

/// Bytes of Action::value a SetField uses.
constexpr unsigned set_field_width(SetField field) {
    switch (field) {
    case SetField::kInPort: return 0;
    case SetField::kEthSrc: case SetField::kEthDst: case SetField::kArpSha:
    case SetField::kArpTha: case SetField::kNdSll: case SetField::kNdTll: return 6;
    case SetField::kIpv6Src: case SetField::kIpv6Dst: case SetField::kNdTarget: return 16;
    case SetField::kIpv4Src: case SetField::kIpv4Dst: case SetField::kArpSpa:
    case SetField::kArpTpa: case SetField::kIpv6Label: return 4;
    case SetField::kVlanVid: case SetField::kVlanTci: case SetField::kTcpSrc: case SetField::kTcpDst:
    case SetField::kUdpSrc: case SetField::kUdpDst: case SetField::kSctpSrc:
    case SetField::kSctpDst: case SetField::kArpOp: return 2;
    default: return 1;
    }
}

/// Flags of a kCt action. In a rule's actions kCtRecirc asks for the pass in
/// `table`; the translator turns it into a datapath kCt without it followed
/// by a kRecirc, so a datapath kCt only runs the tracker.
enum CtFlags : uint8_t {
    kCtCommit = 0x01,   ///< commit the connection
    kCtRecirc = 0x02,   ///< continue in Action::table with the ct_* fields set
    kCtSetMark = 0x04,  ///< on commit, mark = (mark & ~ct_mark_mask) | ct_mark
};

/// kSetMetadata's ct_flags bit: written and printed as NXAST_REG_LOAD.
inline constexpr uint8_t kMetadataLoad = 0x01;

/// kResubmit's `table` when the rule said none: the table of the rule itself.
inline constexpr uint8_t kResubmitSameTable = 0xff;
/// kResubmit's `port` when the rule said none: the packet's in_port.
inline constexpr uint32_t kResubmitSamePort = 0;

/// kController's `port` for "send the whole packet" (OFPCML_NO_BUFFER).
inline constexpr uint32_t kControllerAll = 0xffff;

/// One action. 36 bytes, trivially copyable; members a type does not use
/// are zero, so two Actions compare equal exactly when they do the same.
struct Action {
    ActionType type = ActionType::kOutput;
    SetField field = SetField::kInPort;  ///< kSetField
    uint8_t table = 0;       ///< kResubmit, kGotoTable; kCt with kCtRecirc
    uint8_t ct_flags = 0;    ///< kCt: CtFlags
    uint16_t ct_zone = 0;    ///< kCt (host order)
    uint16_t ethertype = 0;  ///< kPushVlan: 0x8100 or 0x88a8 (host order)
    uint32_t port = 0;       ///< kOutput; kResubmit; kSetField of kInPort (1-based); kController: max_len;
                             ///< kRecirc: the recirculation id
    uint32_t ct_mark = 0;    ///< kCt with kCtSetMark (host order, pre-masked)
    uint32_t ct_mark_mask = 0;
    uint8_t value[16] = {};  ///< kSetField: the new value, see SetField

    bool operator==(const Action&) const = default;

    static Action of(ActionType type) {
        Action a;
        a.type = type;
        return a;
    }
    static Action output(uint32_t port) {
        Action a = of(ActionType::kOutput);
        a.port = port;
        return a;
    }
    static Action goto_table(uint8_t table) {
        Action a = of(ActionType::kGotoTable);
        a.table = table;
        return a;
    }
    static Action resubmit(uint32_t port, uint8_t table) {
        Action a = of(ActionType::kResubmit);
        a.port = port;
        a.table = table;
        return a;
    }
    static Action controller(uint16_t max_len) {
        Action a = of(ActionType::kController);
        a.port = max_len;
        return a;
    }
    static Action recirc(uint32_t recirc_id) {
        Action a = of(ActionType::kRecirc);
        a.port = recirc_id;
        return a;
    }
    static Action push_vlan(uint16_t ethertype) {
        Action a = of(ActionType::kPushVlan);
        a.ethertype = ethertype;
        return a;
    }
    /// A kWriteMetadata; the value is kept as written (dump-flows shows it
    /// so), applied under the mask.
    static Action write_metadata(uint64_t value, uint64_t mask) {
        Action a = of(ActionType::kWriteMetadata);
        std::memcpy(a.value, &value, 8);
        std::memcpy(a.value + 8, &mask, 8);
        return a;
    }
    /// A kSetMetadata (see kMetadataLoad).
    static Action set_metadata(uint64_t value, uint64_t mask, bool as_load) {
        Action a = write_metadata(value & mask, mask);
        a.type = ActionType::kSetMetadata;
        a.ct_flags = as_load ? kMetadataLoad : 0;
        return a;
    }
    /// A kSetField with `set_field_width(field)` bytes from `bytes`.
    static Action set(SetField field, const void* bytes) {
        Action a = of(ActionType::kSetField);
        a.field = field;
        std::memcpy(a.value, bytes, set_field_width(field));
        return a;
    }
};
static_assert(sizeof(Action) == 36);

/// The value and mask of a kWriteMetadata.
struct MetadataWrite {
    uint64_t value = 0;
    uint64_t mask = 0;
    bool operator==(const MetadataWrite&) const = default;
};
inline MetadataWrite write_metadata_of(const Action& a) {
    MetadataWrite w;
    std::memcpy(&w.value, a.value, 8);
    std::memcpy(&w.mask, a.value + 8, 8);
    return w;
}

/// Whether a rule action is one of OpenFlow's instructions besides
/// apply_actions (they close a rule's list, in this order: kClearActions,
/// kWriteMetadata, kGotoTable).
constexpr bool is_instruction(ActionType type) {
    return type == ActionType::kClearActions || type == ActionType::kWriteMetadata ||
           type == ActionType::kGotoTable;
}

/// The actions of a rule, applied in order. Empty means drop.
using ActionList = std::vector<Action>;

}  // namespace flowpath
