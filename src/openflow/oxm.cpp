// OXM matches: the field table, decoding an ofp_match into a Match over the
// FlowKey, and encoding one back in the order Open vSwitch writes it.
#include "oxm.hpp"

#include <arpa/inet.h>

#include <array>
#include <bitset>
#include <cstring>
#include <string_view>

#include "wire.hpp"

namespace flowpath::of::oxm {

namespace {

using rules::Fid;
using rules::FieldInfo;
using rules::Prereq;
using wire::load_be;
using wire::store_be;

constexpr uint16_t kMatchTypeOxm = 1;

constexpr Field basic(const char* name, uint8_t field, uint8_t length, Fid fid, Map map, Prereq prereq,
                      bool maskable, bool settable = false, SetField set = SetField::kInPort) {
    return Field{name, kBasic, field, length, 0, fid, map, prereq, maskable, settable, set};
}
constexpr Field nxm(const char* name, uint16_t oxm_class, uint8_t field, uint8_t length, Fid fid, Prereq prereq,
                    bool maskable, bool settable = false, SetField set = SetField::kInPort) {
    return Field{name, oxm_class, field, length, 0, fid, Map::kNumber, prereq, maskable, settable, set};
}

// The decode table. The order here is also the order of the set fields in
// the table-features properties.
constexpr Field kFields[] = {
    // set_field to in_port is Open vSwitch's 16-bit NXM field (first, so
    // that find_set picks it); the match is the OXM one.
    Field{"in_port", kNxm0, 0, 2, 0, Fid::kInPort, Map::kInPort, Prereq::kNone, false, true, SetField::kInPort},
    basic("in_port", 0, 4, Fid::kInPort, Map::kInPort, Prereq::kNone, false, true, SetField::kInPort),
    // OpenFlow 1.5's packet_type, which Open vSwitch adds for a match whose
    // Ethernet fields it could not write: only "Ethernet" (0) is accepted.
    basic("packet_type", 44, 4, Fid::kInPort, Map::kPacketType, Prereq::kNone, false),
    basic("metadata", 2, 8, Fid::kInPort, Map::kMetadata, Prereq::kNone, true),
    basic("eth_dst", 3, 6, Fid::kDlDst, Map::kBytes, Prereq::kNone, true, true, SetField::kEthDst),
    basic("eth_src", 4, 6, Fid::kDlSrc, Map::kBytes, Prereq::kNone, true, true, SetField::kEthSrc),
    basic("eth_type", 5, 2, Fid::kDlType, Map::kNumber, Prereq::kNone, false),
    basic("vlan_vid", 6, 2, Fid::kVlanVid, Map::kNumber, Prereq::kNone, true, true, SetField::kVlanVid),
    basic("vlan_pcp", 7, 1, Fid::kVlanPcp, Map::kNumber, Prereq::kVlan, false, true, SetField::kVlanPcp),
    basic("ip_dscp", 8, 1, Fid::kIpDscp, Map::kNumber, Prereq::kIpAny, false, true, SetField::kNwTos),
    basic("ip_ecn", 9, 1, Fid::kNwEcn, Map::kNumber, Prereq::kIpAny, false, true, SetField::kNwEcn),
    basic("ip_proto", 10, 1, Fid::kNwProto, Map::kNumber, Prereq::kIpAny, false),
    basic("ipv4_src", 11, 4, Fid::kNwSrc, Map::kBytes, Prereq::kIpv4, true, true, SetField::kIpv4Src),
    basic("ipv4_dst", 12, 4, Fid::kNwDst, Map::kBytes, Prereq::kIpv4, true, true, SetField::kIpv4Dst),
    basic("tcp_src", 13, 2, Fid::kTcpSrc, Map::kNumber, Prereq::kTcp, true, true, SetField::kTcpSrc),
    basic("tcp_dst", 14, 2, Fid::kTcpDst, Map::kNumber, Prereq::kTcp, true, true, SetField::kTcpDst),
    basic("udp_src", 15, 2, Fid::kUdpSrc, Map::kNumber, Prereq::kUdp, true, true, SetField::kUdpSrc),
    basic("udp_dst", 16, 2, Fid::kUdpDst, Map::kNumber, Prereq::kUdp, true, true, SetField::kUdpDst),
    basic("sctp_src", 17, 2, Fid::kSctpSrc, Map::kNumber, Prereq::kSctp, true, true, SetField::kSctpSrc),
    basic("sctp_dst", 18, 2, Fid::kSctpDst, Map::kNumber, Prereq::kSctp, true, true, SetField::kSctpDst),
    basic("icmpv4_type", 19, 1, Fid::kIcmpType, Map::kNumber, Prereq::kIcmpv4, false, true, SetField::kIcmpType),
    basic("icmpv4_code", 20, 1, Fid::kIcmpCode, Map::kNumber, Prereq::kIcmpv4, false, true, SetField::kIcmpCode),
    basic("arp_op", 21, 2, Fid::kArpOp, Map::kNumber, Prereq::kArp, false, true, SetField::kArpOp),
    basic("arp_spa", 22, 4, Fid::kArpSpa, Map::kBytes, Prereq::kArp, true, true, SetField::kArpSpa),
    basic("arp_tpa", 23, 4, Fid::kArpTpa, Map::kBytes, Prereq::kArp, true, true, SetField::kArpTpa),
    basic("arp_sha", 24, 6, Fid::kArpSha, Map::kBytes, Prereq::kArp, true, true, SetField::kArpSha),
    basic("arp_tha", 25, 6, Fid::kArpTha, Map::kBytes, Prereq::kArp, true, true, SetField::kArpTha),
    basic("ipv6_src", 26, 16, Fid::kIpv6Src, Map::kBytes, Prereq::kIpv6, true, true, SetField::kIpv6Src),
    basic("ipv6_dst", 27, 16, Fid::kIpv6Dst, Map::kBytes, Prereq::kIpv6, true, true, SetField::kIpv6Dst),
    basic("ipv6_flabel", 28, 4, Fid::kIpv6Label, Map::kNumber, Prereq::kIpv6, true, true, SetField::kIpv6Label),
    basic("icmpv6_type", 29, 1, Fid::kIcmpv6Type, Map::kNumber, Prereq::kIcmpv6, false, true,
          SetField::kIcmpv6Type),
    basic("icmpv6_code", 30, 1, Fid::kIcmpv6Code, Map::kNumber, Prereq::kIcmpv6, false, true,
          SetField::kIcmpv6Code),
    basic("ipv6_nd_target", 31, 16, Fid::kNdTarget, Map::kBytes, Prereq::kNd, true, true, SetField::kNdTarget),
    basic("ipv6_nd_sll", 32, 6, Fid::kNdSll, Map::kBytes, Prereq::kNdSolicit, true, true, SetField::kNdSll),
    basic("ipv6_nd_tll", 33, 6, Fid::kNdTll, Map::kBytes, Prereq::kNdAdvert, true, true, SetField::kNdTll),
    // Open vSwitch's NXM fields for what OpenFlow 1.3 has no OXM for.
    nxm("vlan_tci", kNxm0, 4, 2, Fid::kVlanTci, Prereq::kNone, true, true, SetField::kVlanTci),
    nxm("nw_tos", kNxm0, 5, 1, Fid::kNwTos, Prereq::kIpAny, false, true, SetField::kNwTos),
    nxm("nw_frag", kNxm1, 26, 1, Fid::kNwFrag, Prereq::kIpAny, true),
    nxm("nw_ttl", kNxm1, 29, 1, Fid::kNwTtl, Prereq::kIpAny, false, true, SetField::kNwTtl),
    nxm("tcp_flags", kNxm1, 34, 2, Fid::kTcpFlags, Prereq::kTcp, true),
    nxm("ct_state", kNxm1, 105, 4, Fid::kCtState, Prereq::kNone, true),
    nxm("ct_zone", kNxm1, 106, 2, Fid::kCtZone, Prereq::kNone, false),
    nxm("ct_mark", kNxm1, 107, 4, Fid::kCtMark, Prereq::kNone, true),
    // What Open vSwitch writes tcp_flags as in OpenFlow 1.3.
    Field{"tcp_flags", kExperimenterClass, 42, 2, kOnf, Fid::kTcpFlags, Map::kNumber, Prereq::kTcp, true, false,
          SetField::kInPort},
};
constexpr size_t kFieldCount = sizeof(kFields) / sizeof(kFields[0]);

size_t index_of(const Field& field) { return static_cast<size_t>(&field - kFields); }

// The table entry of a field, found when compiling (a name that is not in
// the table does not compile).
consteval size_t named(std::string_view name, uint16_t oxm_class = kBasic) {
    for (size_t i = 0; i < kFieldCount; ++i) {
        if (std::string_view(kFields[i].name) == name && kFields[i].oxm_class == oxm_class) return i;
    }
    throw "no such OXM field";
}

// The slot bits a numeric field reads and writes, without its implied bits
// (vlan_pcp's present bit).
uint64_t own_bits(const FieldInfo& info) { return info.covers & ~info.extra; }
uint64_t full_value_mask(const FieldInfo& info) { return (info.exact_mask & ~info.extra) >> info.shift; }

// The match's mask bits of `field`, to tell a duplicate.
bool already_matched(const OxmMatch& m, const Field& field) {
    if (field.map == Map::kPacketType) return false;
    if (field.map == Map::kMetadata) return m.match.metadata_mask != 0;
    const FieldInfo& info = rules::field_info(field.fid);
    if (field.map == Map::kNumber) return (rules::load_slot(m.match.mask, info) & own_bits(info)) != 0;
    const auto* mask = reinterpret_cast<const uint8_t*>(&m.match.mask) + info.offset;
    for (unsigned i = 0; i < info.width; ++i) {
        if (mask[i]) return true;
    }
    return false;
}

// Writes one decoded field into the match.
std::optional<OfError> apply(OxmMatch& m, const Field& field, const uint8_t* value, const uint8_t* mask) {
    if (field.map == Map::kPacketType) {
        if (load_be(value, 4) != 0) return err::kBadValue;
        return std::nullopt;
    }
    if (field.map == Map::kMetadata) {
        m.match.metadata_mask = mask ? load_be(mask, 8) : ~uint64_t{0};
        m.match.metadata = load_be(value, 8) & m.match.metadata_mask;
        return std::nullopt;
    }
    const FieldInfo& info = rules::field_info(field.fid);
    auto* key_value = reinterpret_cast<uint8_t*>(&m.match.value) + info.offset;
    auto* key_mask = reinterpret_cast<uint8_t*>(&m.match.mask) + info.offset;
    if (field.map == Map::kInPort) {
        const uint32_t port = static_cast<uint32_t>(load_be(value, field.length));
        if (port == 0 || port > kPortMax) return err::kBadValue;
        std::memcpy(key_value, &port, 4);
        std::memset(key_mask, 0xff, 4);
        return std::nullopt;
    }
    if (field.map == Map::kBytes) {
        for (unsigned i = 0; i < field.length; ++i) {
            key_value[i] = value[i];
            key_mask[i] = mask ? mask[i] : 0xff;
        }
        return std::nullopt;
    }
    const uint64_t v = load_be(value, field.length);
    const uint64_t max = info.max;
    if (v > max) return err::kBadValue;
    if (v & ~info.kept_bits) return err::kBadValue;  // nw_tos with ECN bits
    uint64_t slot_value = (v << info.shift) | info.extra;
    uint64_t slot_mask = info.exact_mask | info.extra;
    if (mask) slot_mask = ((load_be(mask, field.length) & max) << info.shift) & info.covers;
    // "Not a fragment" is 0 under the any-fragment bit (later implies any);
    // Open vSwitch writes it as 0 under both bits.
    if (field.fid == Fid::kNwFrag && slot_value == 0 && slot_mask == (kFragAny | kFragLater)) slot_mask = kFragAny;
    rules::merge_slot(m.match, info, info.covers, slot_value & slot_mask, slot_mask);
    return std::nullopt;
}

// ---- Encoding ---------------------------------------------------------------

class MatchWriter {
public:
    MatchWriter(const OxmMatch& m, Bytes& out) : m_(m), w_(out) {}

    // The masked bytes of a kBytes or kInPort field (nothing when unmasked).
    void put_bytes(const Field& field) {
        const FieldInfo& info = rules::field_info(field.fid);
        const auto* value = reinterpret_cast<const uint8_t*>(&m_.match.value) + info.offset;
        const auto* mask = reinterpret_cast<const uint8_t*>(&m_.match.mask) + info.offset;
        bool any = false, full = true;
        for (unsigned i = 0; i < field.length; ++i) {
            any |= mask[i] != 0;
            full &= mask[i] == 0xff;
        }
        if (!any) return;
        w_.u32(header(field, !full));
        if (field.map == Map::kInPort) {
            uint32_t port;
            std::memcpy(&port, value, 4);
            w_.u32(port);
            return;
        }
        w_.bytes(value, field.length);
        if (!full) w_.bytes(mask, field.length);
    }
    // A numeric field from its slot bits (nothing when unmasked).
    void put_number(const Field& field) {
        const FieldInfo& info = rules::field_info(field.fid);
        uint64_t mask = (rules::load_slot(m_.match.mask, info) & own_bits(info)) >> info.shift;
        if (!mask) return;
        const uint64_t value = (rules::load_slot(m_.match.value, info) & own_bits(info)) >> info.shift;
        if (field.fid == Fid::kNwFrag && value == 0 && mask == kFragAny) mask = kFragAny | kFragLater;  // see apply()
        // ct_state is 8 bits of a 32-bit NXM field: Open vSwitch writes
        // even an exact match with its mask (0xff).
        const bool exact = mask == full_value_mask(info) && field.fid != Fid::kCtState;
        put_value(field, value, exact ? std::nullopt : std::optional<uint64_t>(mask));
    }
    void put_value(const Field& field, uint64_t value, std::optional<uint64_t> mask) {
        w_.u32(header(field, mask.has_value()));
        if (field.oxm_class == kExperimenterClass) w_.u32(field.experimenter);
        uint8_t bytes[8];
        store_be(bytes, value, field.length);
        w_.bytes(bytes, field.length);
        if (mask) {
            store_be(bytes, *mask, field.length);
            w_.bytes(bytes, field.length);
        }
    }
    void put(const Field& field) {
        if (field.map == Map::kNumber) {
            put_number(field);
        } else {
            put_bytes(field);
        }
    }

    // VLAN_VID/VLAN_PCP as Open vSwitch writes them when they say exactly
    // what the match holds; the whole TCI under a mask (NXM) when not.
    void put_vlan() {
        const uint16_t v = ntohs(m_.match.value.vlans[0].tci);
        const uint16_t mask = ntohs(m_.match.mask.vlans[0].tci);
        if (!mask) return;
        const uint16_t pcp_mask = mask & 0xe000;
        const bool tagged = (mask & kVlanPresent) && (v & kVlanPresent);
        if (pcp_mask != 0 && (pcp_mask != 0xe000 || !tagged)) {
            put_value(kFields[named("vlan_tci", kNxm0)], v, mask == 0xffff ? std::nullopt : std::optional<uint64_t>(mask));
            return;
        }
        const uint16_t vid_mask = mask & 0x1fff;
        if (vid_mask) {
            put_value(kFields[named("vlan_vid")], v & 0x1fff,
                      vid_mask == 0x1fff ? std::nullopt : std::optional<uint64_t>(vid_mask));
        }
        if (pcp_mask) put_value(kFields[named("vlan_pcp")], v >> 13, std::nullopt);
    }

    void put_ip() {
        const Match& match = m_.match;
        if (rules::match_dl_type(match, rules::kEthIp)) {
            put(kFields[named("ipv4_src")]);
            put(kFields[named("ipv4_dst")]);
        } else {
            put(kFields[named("ipv6_src")]);
            put(kFields[named("ipv6_dst")]);
        }
        put(kFields[named("nw_frag", kNxm1)]);
        // DSCP and ECN are separate OXMs; a nw_tos mask is all of one or the
        // other in every match the codec or the rule parser builds.
        if (match.mask.nw_tos & 0xfc) put_value(kFields[named("ip_dscp")], match.value.nw_tos >> 2, std::nullopt);
        if (match.mask.nw_tos & 0x03) put_value(kFields[named("ip_ecn")], match.value.nw_tos & 0x03, std::nullopt);
        put(kFields[named("nw_ttl", kNxm1)]);
        put(kFields[named("ipv6_flabel")]);
        if (!match.mask.nw_proto) return;
        put(kFields[named("ip_proto")]);
        switch (match.value.nw_proto) {
        case 6:
            put(kFields[named("tcp_src")]);
            put(kFields[named("tcp_dst")]);
            put_number(kFields[named("tcp_flags", kExperimenterClass)]);  // the ONF form, as Open vSwitch
            break;
        case 17:
            put(kFields[named("udp_src")]);
            put(kFields[named("udp_dst")]);
            break;
        case 132:
            put(kFields[named("sctp_src")]);
            put(kFields[named("sctp_dst")]);
            break;
        case 1:
            if (rules::match_dl_type(match, rules::kEthIp)) {
                put(kFields[named("icmpv4_type")]);
                put(kFields[named("icmpv4_code")]);
            }
            break;
        case 58:
            if (rules::match_dl_type(match, rules::kEthIpv6)) {
                put(kFields[named("icmpv6_type")]);
                put(kFields[named("icmpv6_code")]);
                const uint16_t type = ntohs(match.value.tp_src);
                if ((type == 135 || type == 136) && match.mask.tp_src) {
                    put(kFields[named("ipv6_nd_target")]);
                    put(type == 135 ? kFields[named("ipv6_nd_sll")] : kFields[named("ipv6_nd_tll")]);
                }
            }
            break;
        }
    }

    // A PACKET_IN's connection tuple, NXM fields no rule matches (not in
    // the decode table): Open vSwitch's numbers and order.
    void put_ct_tuple() {
        const CtTuple& t = m_.ct_tuple;
        if (!t.nw_proto) return;
        const auto put_raw = [&](uint8_t field, const void* value, uint8_t length) {
            w_.u32(uint32_t{kNxm1} << 16 | uint32_t{field} << 9 | length);
            w_.bytes(value, length);
        };
        const uint8_t length = t.ipv6 ? 16 : 4;
        put_raw(t.ipv6 ? kNxmCtIpv6Src : kNxmCtNwSrc, t.src, length);
        put_raw(t.ipv6 ? kNxmCtIpv6Dst : kNxmCtNwDst, t.dst, length);
        put_raw(kNxmCtNwProto, &t.nw_proto, 1);
        put_raw(kNxmCtTpSrc, &t.src_port, 2);
        put_raw(kNxmCtTpDst, &t.dst_port, 2);
    }

    void run() {
        const Match& match = m_.match;
        put(kFields[named("in_port")]);
        put(kFields[named("eth_src")]);
        put(kFields[named("eth_dst")]);
        put(kFields[named("eth_type")]);
        put_vlan();
        if (rules::match_is_ip_any(match)) {
            put_ip();
        } else if (rules::match_dl_type(match, rules::kEthArp) || rules::match_dl_type(match, rules::kEthRarp)) {
            if (match.mask.nw_proto) put_value(kFields[named("arp_op")], match.value.nw_proto, std::nullopt);
            put(kFields[named("arp_spa")]);
            put(kFields[named("arp_tpa")]);
            put(kFields[named("arp_sha")]);
            put(kFields[named("arp_tha")]);
        }
        put(kFields[named("ct_state", kNxm1)]);
        put(kFields[named("ct_zone", kNxm1)]);
        put(kFields[named("ct_mark", kNxm1)]);
        put_ct_tuple();
        if (m_.match.metadata_mask) {
            const Field& field = kFields[named("metadata")];
            const bool masked = m_.match.metadata_mask != ~uint64_t{0};
            w_.u32(header(field, masked));
            w_.u64(m_.match.metadata);
            if (masked) w_.u64(m_.match.metadata_mask);
        }
    }

private:
    const OxmMatch& m_;
    wire::Writer w_;
};

}  // namespace

std::span<const Field> fields() { return kFields; }

const Field* find(uint16_t oxm_class, uint8_t field, uint32_t experimenter) {
    for (const Field& f : kFields) {
        if (f.oxm_class == oxm_class && f.field == field &&
            (oxm_class != kExperimenterClass || f.experimenter == experimenter)) {
            return &f;
        }
    }
    return nullptr;
}

const Field* find_set(SetField target) {
    if (target == SetField::kNwTtl) return nullptr;  // OFPAT_SET_NW_TTL, as Open vSwitch writes mod_nw_ttl
    for (const Field& f : kFields) {
        if (f.settable && f.set == target) return &f;
    }
    return nullptr;
}

uint32_t header(const Field& field, bool masked) {
    const unsigned payload = field.length * (masked ? 2u : 1u) + (field.oxm_class == kExperimenterClass ? 4u : 0u);
    return (uint32_t{field.oxm_class} << 16) | (uint32_t{field.field} << 9) | (masked ? 0x100u : 0u) | payload;
}

Decoded<Action> decode_set_field(ByteView bytes) {
    wire::Reader reader(bytes, err::kBadSetLen);
    const uint32_t head = reader.u32();
    const uint16_t oxm_class = static_cast<uint16_t>(head >> 16);
    const uint8_t field_id = static_cast<uint8_t>((head >> 9) & 0x7f);
    ByteView payload = reader.take(head & 0xff);
    if (!reader.ok()) return err::kBadSetLen;
    // What is left is the action's padding to 8 bytes.
    if (reader.remaining() >= 8) return err::kBadSetLen;
    if (head & 0x100) return err::kBadSetArgument;  // OpenFlow 1.3 sets whole fields
    uint32_t experimenter = 0;
    if (oxm_class == kExperimenterClass) {
        if (payload.size() < 4) return err::kBadSetLen;
        experimenter = static_cast<uint32_t>(load_be(payload.data(), 4));
        payload = payload.subspan(4);
    }
    const Field* field = find(oxm_class, field_id, experimenter);
    if (field && field->map == Map::kMetadata) {  // a pipeline field, not a header
        if (payload.size() != 8) return err::kBadSetLen;
        return Action::set_metadata(load_be(payload.data(), 8), ~uint64_t{0}, false);
    }
    if (!field || !field->settable) return err::kBadSetType;
    if (payload.size() != field->length) return err::kBadSetLen;
    const uint64_t v = field->length <= 8 ? load_be(payload.data(), std::min<size_t>(field->length, 8)) : 0;
    Action action = Action::of(ActionType::kSetField);
    action.field = field->set;
    switch (field->set) {
    case SetField::kInPort:
        if (v == 0 || v > kPortMax) return err::kBadSetArgument;
        action.port = static_cast<uint32_t>(v);
        return action;
    case SetField::kVlanVid:
        if (v > 0x1fff || !(v & kVlanPresent)) return err::kBadSetArgument;
        break;
    case SetField::kVlanPcp: if (v > 7) return err::kBadSetArgument; break;
    case SetField::kNwEcn: if (v > 3) return err::kBadSetArgument; break;
    case SetField::kNwTos:
        if (field->fid == Fid::kNwTos) {  // Open vSwitch's nw_tos: the TOS byte, ECN bits clear
            if (v & 3) return err::kBadSetArgument;
            break;
        }
        if (v > 63) return err::kBadSetArgument;
        action.value[0] = static_cast<uint8_t>(v << 2);  // ip_dscp: the TOS byte keeps DSCP << 2
        return action;
    case SetField::kIpv6Label: if (v > 0xfffff) return err::kBadSetArgument; break;
    case SetField::kArpOp: if (v > 255) return err::kBadSetArgument; break;  // the key keeps one byte
    default: break;
    }
    std::memcpy(action.value, payload.data(), field->length);
    return action;
}

void encode_set_field(const Action& action, Bytes& out) {
    const Field* field = find_set(action.field);
    // Open vSwitch's 16-bit in_port holds ports below 0xff00 only.
    if (action.field == SetField::kInPort && action.port >= 0xff00) field = find(kBasic, 0, 0);
    if (!field) __builtin_trap();  // kNwTtl is OFPAT_SET_NW_TTL, written by the caller
    wire::Writer w(out);
    w.u32(header(*field, false));
    if (action.field == SetField::kInPort) {
        uint8_t port[4];
        store_be(port, action.port, field->length);
        w.bytes(port, field->length);
    } else if (action.field == SetField::kNwTos) {
        w.u8(static_cast<uint8_t>(action.value[0] >> 2));
    } else {
        w.bytes(action.value, field->length);
    }
}

}  // namespace flowpath::of::oxm

namespace flowpath::of {

Decoded<OxmMatch> decode_match(ByteView bytes, size_t& consumed) {
    using namespace oxm;
    wire::Reader reader(bytes, err::kBadMatchLen);
    const uint16_t type = reader.u16();
    const uint16_t length = reader.u16();
    if (!reader.ok()) return err::kBadMatchLen;
    if (type != kMatchTypeOxm) return err::kBadMatchType;
    const size_t padded = (size_t{length} + 7) / 8 * 8;
    if (length < 4 || padded > bytes.size()) return err::kBadMatchLen;
    consumed = padded;

    OxmMatch result;
    wire::Reader fields_reader(bytes.subspan(4, length - 4u), err::kBadMatchLen);
    std::bitset<kFieldCount> seen;
    bool vid_present = false;
    while (fields_reader.remaining() > 0) {
        const uint32_t head = fields_reader.u32();
        const uint16_t oxm_class = static_cast<uint16_t>(head >> 16);
        const uint8_t field_id = static_cast<uint8_t>((head >> 9) & 0x7f);
        const bool masked = (head & 0x100) != 0;
        ByteView payload = fields_reader.take(head & 0xff);
        if (!fields_reader.ok()) return err::kBadMatchLen;
        uint32_t experimenter = 0;
        if (oxm_class == kExperimenterClass) {
            if (payload.size() < 4) return err::kBadMatchLen;
            experimenter = static_cast<uint32_t>(load_be(payload.data(), 4));
            payload = payload.subspan(4);
        }
        const Field* field = find(oxm_class, field_id, experimenter);
        if (!field) return err::kBadField;
        if (payload.size() != field->length * (masked ? 2u : 1u)) return err::kBadMatchLen;
        if (masked && !field->maskable) return err::kBadMask;
        if (seen[index_of(*field)] || already_matched(result, *field)) return err::kDupField;
        seen[index_of(*field)] = true;
        const uint8_t* value = payload.data();
        const uint8_t* mask = masked ? payload.data() + field->length : nullptr;
        if (mask) {
            for (unsigned i = 0; i < field->length; ++i) {
                if (value[i] & ~mask[i]) return err::kBadWildcards;
            }
        }
        if (const std::optional<OfError> error = apply(result, *field, value, mask)) return *error;
        if (field->fid == Fid::kVlanVid && field->map == Map::kNumber) {
            const uint64_t m = mask ? load_be(mask, 2) : 0x1fff;
            vid_present = (m & kVlanPresent) && (load_be(value, 2) & kVlanPresent);
        }
    }
    // Prerequisites once every field is in: Open vSwitch does not insist on
    // OpenFlow's "prerequisites first" order either.
    for (size_t i = 0; i < kFieldCount; ++i) {
        if (!seen[i]) continue;
        const Field& field = kFields[i];
        if (field.prereq == Prereq::kVlan) {
            if (!vid_present) return err::kBadPrereq;
        } else if (rules::missing_prereq(result.match, field.prereq)) {
            return err::kBadPrereq;
        }
    }
    rules::finish_match(result.match);
    return result;
}

void encode_match(const OxmMatch& match, Bytes& out) {
    using namespace oxm;
    wire::Writer w(out);
    const size_t start = w.size();
    w.u16(kMatchTypeOxm);
    w.u16(0);
    MatchWriter(match, out).run();
    w.patch16(start + 2, static_cast<uint16_t>(w.size() - start));
    w.pad_from(start);
}

}  // namespace flowpath::of
