// The match fields of the rule language: names, where each lives in the
// FlowKey, how its value is written, and what it needs. Internal to
// src/rules; the parser and the printer share this one table.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "flowpath/rule.hpp"

namespace flowpath::rules {

/// Every field name the parser knows (aliases map onto these).
enum class Fid : uint8_t {
    kInPort, kDlSrc, kDlDst, kDlType, kDlVlan, kDlVlanPcp, kVlanTci, kVlanVid, kVlanPcp,
    kNwSrc, kNwDst, kNwProto, kNwTos, kIpDscp, kNwEcn, kNwTtl, kNwFrag,
    kTpSrc, kTpDst, kTcpSrc, kTcpDst, kUdpSrc, kUdpDst, kSctpSrc, kSctpDst, kTcpFlags,
    kIcmpType, kIcmpCode, kIcmpv6Type, kIcmpv6Code,
    kArpOp, kArpSpa, kArpTpa, kArpSha, kArpTha,
    kIpv6Src, kIpv6Dst, kIpv6Label, kNdTarget, kNdSll, kNdTll,
    kCtState, kCtZone, kCtMark,
    kCount
};

/// How a field's value is written.
enum class Kind : uint8_t {
    kPort,      ///< port name or number
    kMac,       ///< MAC[/MAC]
    kIpv4,      ///< a.b.c.d[/len|/a.b.c.d]
    kIpv6,      ///< IPv6[/len|/IPv6]
    kNum,       ///< number[/mask], a bit field of a slot
    kDlVlan,    ///< 0-4095, or 0xffff for "no VLAN"
    kFrag,      ///< no, yes, first, later, not_later
    kTcpFlags,  ///< +syn-ack, syn|ack or number[/mask]
    kCtState,   ///< +trk-new, trk|est or number[/mask]
};

/// What a field needs elsewhere in the match.
enum class Prereq : uint8_t {
    kNone, kIpv4OrArp, kIpAnyOrArp, kIpAny, kIpv4, kIpv6, kArp,
    kL4, kTcp, kUdp, kSctp, kIcmpAny, kIcmpv4, kIcmpv6, kNd, kNdSolicit, kNdAdvert, kVlan,
};

/// One field. Numeric fields are a bit field of a "slot" (the FlowKey member
/// at `offset`, `width` bytes, read as a host-order integer): a value v
/// becomes slot bits (v << shift) | extra under mask exact_mask | extra (or
/// the given mask << shift), replacing the slot bits `covers`.
struct FieldInfo {
    Fid id;
    const char* name;  ///< canonical name, as printed
    Kind kind;
    Prereq prereq;
    uint16_t offset;
    uint8_t width;
    bool network_order;
    bool maskable;
    uint64_t max;         ///< largest value (and mask)
    uint8_t shift;
    uint64_t covers;
    uint64_t exact_mask;
    uint64_t extra;
    uint64_t kept_bits;   ///< value bits kept; others dropped silently (nw_tos)
};

const FieldInfo& field_info(Fid id);
/// The field called `name` (or an alias), or null.
const FieldInfo* find_field(std::string_view name);

/// The slot of a field as a host-order integer.
uint64_t load_slot(const FlowKey& key, const FieldInfo& field);
void store_slot(FlowKey& key, const FieldInfo& field, uint64_t slot);

/// Replaces the bits `covers` of the field's slot in the match's value and
/// mask by those of `value` and `mask` (slot bits, already shifted).
void merge_slot(Match& match, const FieldInfo& field, uint64_t covers, uint64_t value, uint64_t mask);

/// Parses `text` (at line offset `offset`) as a value of `field` (with a
/// mask when `allow_mask` and the field takes one) and writes it into the
/// match, replacing what earlier fields put in the same bits. Throws
/// RuleError. The match value is not pre-masked yet (see finish_match).
void apply_field(Match& match, const FieldInfo& field, std::string_view text, size_t offset,
                 const PortNames& ports, bool allow_mask = true);

/// Clears value bits outside the mask.
void finish_match(Match& match);

/// Why `prereq` does not hold in the (finished) match, as a phrase to put
/// after the field name ("needs tcp, udp or sctp in the match"); nullopt
/// when it holds.
std::optional<std::string> missing_prereq(const Match& match, Prereq prereq);

/// A port from its NAME or number; throws "<what>: unknown port ..." .
uint32_t resolve_port(std::string_view text, size_t offset, const PortNames& ports,
                      std::string_view what);

/// Flag names of tcp_flags (bit i = name i; null for unnamed bits) and
/// ct_state.
extern const char* const kTcpFlagNames[12];
extern const char* const kCtStateNames[8];

/// Match helpers on a finished match.
bool match_dl_type(const Match& match, uint16_t ethertype);
bool match_nw_proto(const Match& match, uint8_t proto);
bool match_is_ip_any(const Match& match);
bool match_has_vlan(const Match& match);

/// Ethertypes the shorthands use.
inline constexpr uint16_t kEthIp = 0x0800;
inline constexpr uint16_t kEthIpv6 = 0x86dd;
inline constexpr uint16_t kEthArp = 0x0806;
inline constexpr uint16_t kEthRarp = 0x8035;

}  // namespace flowpath::rules
