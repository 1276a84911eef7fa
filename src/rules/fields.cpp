// The match field table and field value parsing; see fields.hpp.
#include "fields.hpp"

#include <arpa/inet.h>

#include <array>
#include <cstring>

#include "syntax.hpp"

namespace flowpath::rules {

namespace {

constexpr uint16_t kTciOffset = offsetof(FlowKey, vlans) + offsetof(VlanTag, tci);

#define FP_SLOT(member) static_cast<uint16_t>(offsetof(FlowKey, member)), \
                        static_cast<uint8_t>(sizeof(FlowKey::member))

// A whole-slot numeric field: value 0..max, covering exactly `max`.
constexpr FieldInfo num(Fid id, const char* name, Prereq prereq, uint16_t offset, uint8_t width,
                        bool net, bool maskable, uint64_t max) {
    return FieldInfo{id, name, Kind::kNum, prereq, offset, width, net, maskable,
                     max, 0, max, max, 0, max};
}
// A field of another kind; only offset and width matter.
constexpr FieldInfo other(Fid id, const char* name, Kind kind, Prereq prereq, uint16_t offset,
                          uint8_t width, bool maskable) {
    return FieldInfo{id, name, kind, prereq, offset, width, true, maskable, 0, 0, 0, 0, 0, 0};
}
// vlan PCP: 3 bits at 13, and always the present bit.
constexpr FieldInfo pcp(Fid id, const char* name) {
    return FieldInfo{id, name, Kind::kNum, Prereq::kNone, kTciOffset, 2, true, false,
                     7, 13, 0xf000, 0xe000, kVlanPresent, 7};
}
// ICMP type/code: a byte kept in a 16-bit transport slot, as OVS does.
constexpr FieldInfo icmp(Fid id, const char* name, Prereq prereq, uint16_t offset, uint8_t /*width*/) {
    return FieldInfo{id, name, Kind::kNum, prereq, offset, 2, true, false,
                     255, 0, 0xffff, 0xffff, 0, 255};
}

constexpr std::array<FieldInfo, static_cast<size_t>(Fid::kCount)> kFields = {{
    other(Fid::kInPort, "in_port", Kind::kPort, Prereq::kNone, FP_SLOT(in_port), false),
    other(Fid::kDlSrc, "dl_src", Kind::kMac, Prereq::kNone, FP_SLOT(dl_src), true),
    other(Fid::kDlDst, "dl_dst", Kind::kMac, Prereq::kNone, FP_SLOT(dl_dst), true),
    num(Fid::kDlType, "dl_type", Prereq::kNone, FP_SLOT(dl_type), true, false, 0xffff),
    FieldInfo{Fid::kDlVlan, "dl_vlan", Kind::kDlVlan, Prereq::kNone, kTciOffset, 2, true, false,
              0xffff, 0, 0x1fff, 0x1fff, 0, 0xffff},
    pcp(Fid::kDlVlanPcp, "dl_vlan_pcp"),
    num(Fid::kVlanTci, "vlan_tci", Prereq::kNone, kTciOffset, 2, true, true, 0xffff),
    num(Fid::kVlanVid, "vlan_vid", Prereq::kNone, kTciOffset, 2, true, true, 0x1fff),
    pcp(Fid::kVlanPcp, "vlan_pcp"),
    other(Fid::kNwSrc, "nw_src", Kind::kIpv4, Prereq::kIpv4OrArp, FP_SLOT(nw_src), true),
    other(Fid::kNwDst, "nw_dst", Kind::kIpv4, Prereq::kIpv4OrArp, FP_SLOT(nw_dst), true),
    num(Fid::kNwProto, "nw_proto", Prereq::kIpAnyOrArp, FP_SLOT(nw_proto), true, false, 255),
    // nw_tos is the DSCP part of the TOS byte; OVS drops the ECN bits of the
    // value silently.
    FieldInfo{Fid::kNwTos, "nw_tos", Kind::kNum, Prereq::kIpAny, FP_SLOT(nw_tos), true, false,
              255, 0, 0xfc, 0xfc, 0, 0xfc},
    FieldInfo{Fid::kIpDscp, "ip_dscp", Kind::kNum, Prereq::kIpAny, FP_SLOT(nw_tos), true, false,
              63, 2, 0xfc, 0xfc, 0, 63},
    num(Fid::kNwEcn, "nw_ecn", Prereq::kIpAny, FP_SLOT(nw_tos), true, false, 3),
    num(Fid::kNwTtl, "nw_ttl", Prereq::kIpAny, FP_SLOT(nw_ttl), true, false, 255),
    FieldInfo{Fid::kNwFrag, "nw_frag", Kind::kFrag, Prereq::kIpAny, FP_SLOT(nw_frag), true, false,
              3, 0, 3, 3, 0, 3},
    num(Fid::kTpSrc, "tp_src", Prereq::kL4, FP_SLOT(tp_src), true, true, 0xffff),
    num(Fid::kTpDst, "tp_dst", Prereq::kL4, FP_SLOT(tp_dst), true, true, 0xffff),
    num(Fid::kTcpSrc, "tcp_src", Prereq::kTcp, FP_SLOT(tp_src), true, true, 0xffff),
    num(Fid::kTcpDst, "tcp_dst", Prereq::kTcp, FP_SLOT(tp_dst), true, true, 0xffff),
    num(Fid::kUdpSrc, "udp_src", Prereq::kUdp, FP_SLOT(tp_src), true, true, 0xffff),
    num(Fid::kUdpDst, "udp_dst", Prereq::kUdp, FP_SLOT(tp_dst), true, true, 0xffff),
    num(Fid::kSctpSrc, "sctp_src", Prereq::kSctp, FP_SLOT(tp_src), true, true, 0xffff),
    num(Fid::kSctpDst, "sctp_dst", Prereq::kSctp, FP_SLOT(tp_dst), true, true, 0xffff),
    FieldInfo{Fid::kTcpFlags, "tcp_flags", Kind::kTcpFlags, Prereq::kTcp, FP_SLOT(tcp_flags), true,
              true, 0xfff, 0, 0xfff, 0xfff, 0, 0xfff},
    icmp(Fid::kIcmpType, "icmp_type", Prereq::kIcmpAny, FP_SLOT(tp_src)),
    icmp(Fid::kIcmpCode, "icmp_code", Prereq::kIcmpAny, FP_SLOT(tp_dst)),
    icmp(Fid::kIcmpv6Type, "icmpv6_type", Prereq::kIcmpv6, FP_SLOT(tp_src)),
    icmp(Fid::kIcmpv6Code, "icmpv6_code", Prereq::kIcmpv6, FP_SLOT(tp_dst)),
    num(Fid::kArpOp, "arp_op", Prereq::kArp, FP_SLOT(nw_proto), true, false, 255),
    other(Fid::kArpSpa, "arp_spa", Kind::kIpv4, Prereq::kArp, FP_SLOT(nw_src), true),
    other(Fid::kArpTpa, "arp_tpa", Kind::kIpv4, Prereq::kArp, FP_SLOT(nw_dst), true),
    other(Fid::kArpSha, "arp_sha", Kind::kMac, Prereq::kArp, FP_SLOT(arp_sha), true),
    other(Fid::kArpTha, "arp_tha", Kind::kMac, Prereq::kArp, FP_SLOT(arp_tha), true),
    other(Fid::kIpv6Src, "ipv6_src", Kind::kIpv6, Prereq::kIpv6, FP_SLOT(ipv6_src), true),
    other(Fid::kIpv6Dst, "ipv6_dst", Kind::kIpv6, Prereq::kIpv6, FP_SLOT(ipv6_dst), true),
    num(Fid::kIpv6Label, "ipv6_label", Prereq::kIpv6, FP_SLOT(ipv6_label), true, true, 0xfffff),
    other(Fid::kNdTarget, "nd_target", Kind::kIpv6, Prereq::kNd, FP_SLOT(nd_target), true),
    other(Fid::kNdSll, "nd_sll", Kind::kMac, Prereq::kNdSolicit, FP_SLOT(arp_sha), true),
    other(Fid::kNdTll, "nd_tll", Kind::kMac, Prereq::kNdAdvert, FP_SLOT(arp_tha), true),
    FieldInfo{Fid::kCtState, "ct_state", Kind::kCtState, Prereq::kNone, FP_SLOT(ct_state), false,
              true, 0xff, 0, 0xff, 0xff, 0, 0xff},
    num(Fid::kCtZone, "ct_zone", Prereq::kNone, FP_SLOT(ct_zone), false, false, 0xffff),
    num(Fid::kCtMark, "ct_mark", Prereq::kNone, FP_SLOT(ct_mark), false, true, 0xffffffff),
}};
#undef FP_SLOT

constexpr bool table_in_order() {
    for (size_t i = 0; i < kFields.size(); ++i) {
        if (static_cast<size_t>(kFields[i].id) != i) return false;
    }
    return true;
}
static_assert(table_in_order(), "kFields must be indexed by Fid");

struct Alias {
    const char* name;
    Fid id;
};
// Other names ovs-ofctl accepts for the same fields (ipv4_src/ipv4_dst are
// the OXM names interface.md promises; Open vSwitch 3.1 itself rejects them).
constexpr Alias kAliases[] = {
    {"eth_src", Fid::kDlSrc},   {"eth_dst", Fid::kDlDst},    {"eth_type", Fid::kDlType},
    {"ip_src", Fid::kNwSrc},    {"ip_dst", Fid::kNwDst},     {"ipv4_src", Fid::kNwSrc},
    {"ipv4_dst", Fid::kNwDst},  {"ip_proto", Fid::kNwProto}, {"ip_ecn", Fid::kNwEcn},
    {"ip_frag", Fid::kNwFrag},
};

uint64_t all_ones(unsigned bytes) { return bytes >= 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * bytes)) - 1; }

struct FragForm {
    const char* name;
    uint8_t value;
    uint8_t mask;
};
constexpr FragForm kFragForms[] = {
    {"no", 0, kFragAny},
    {"yes", kFragAny, kFragAny},
    {"first", kFragAny, kFragAny | kFragLater},
    {"later", kFragAny | kFragLater, kFragAny | kFragLater},
    {"not_later", 0, kFragLater},
};

// Parses +a-b, a|b or number[/mask] for tcp_flags and ct_state.
void parse_flags(const FieldInfo& field, std::string_view text, size_t offset,
                 const char* const* names, unsigned bit_count, uint64_t& value, uint64_t& mask) {
    const uint64_t all = field.max;
    auto flag_bit = [&](std::string_view name, size_t at) -> uint64_t {
        for (unsigned bit = 0; bit < bit_count; ++bit) {
            if (names[bit] && name == names[bit]) return uint64_t{1} << bit;
        }
        // "[200]": a bit without a name, in hex, as ovs-ofctl prints one.
        if (name.size() > 2 && name.front() == '[' && name.back() == ']') {
            const std::optional<uint64_t> bit = parse_uint("0x" + std::string(name.substr(1, name.size() - 2)));
            if (bit && *bit && (*bit & (*bit - 1)) == 0 && *bit <= all) return *bit;
        }
        std::string known;
        for (unsigned bit = 0; bit < bit_count; ++bit) {
            if (names[bit]) known += std::string(known.empty() ? "" : " ") + names[bit];
        }
        fail(at, std::string(field.name) + ": expected a flag (" + known + "), found " + shown(name));
    };
    value = 0;
    mask = 0;
    if (!text.empty() && (text[0] == '+' || text[0] == '-')) {
        size_t i = 0;
        while (i < text.size()) {
            const char sign = text[i];
            if (sign != '+' && sign != '-') {
                fail(offset + i, std::string(field.name) + ": expected '+' or '-' before a flag, found " +
                                     shown(text.substr(i, 1)));
            }
            size_t end = i + 1;
            while (end < text.size() && text[end] != '+' && text[end] != '-') ++end;
            const uint64_t bit = flag_bit(text.substr(i + 1, end - i - 1), offset + i + 1);
            if (mask & bit) {
                fail(offset + i + 1, std::string(field.name) + ": flag " +
                                         shown(text.substr(i + 1, end - i - 1)) + " given twice");
            }
            mask |= bit;
            if (sign == '+') value |= bit;
            i = end;
        }
        return;
    }
    const size_t slash = text.find('/');
    const std::string_view value_text = text.substr(0, slash);
    if (parse_uint(value_text)) {
        value = parse_number(value_text, offset, all, field.name);
        mask = all;
        if (slash != std::string_view::npos) {
            mask = parse_number(text.substr(slash + 1), offset + slash + 1, all, field.name,
                                number_range(all) + " as the mask");
        }
        return;
    }
    if (slash != std::string_view::npos) {
        fail(offset + slash, std::string(field.name) + ": expected +flag/-flag without a mask, found '/'");
    }
    // flag|flag: exactly these flags set, all others clear.
    size_t i = 0;
    while (true) {
        size_t end = text.find('|', i);
        if (end == std::string_view::npos) end = text.size();
        const uint64_t bit = flag_bit(text.substr(i, end - i), offset + i);
        value |= bit;
        if (end == text.size()) break;
        i = end + 1;
    }
    mask = all;
}

void parse_address_mask(const FieldInfo& field, std::string_view text, size_t offset, uint8_t* mask,
                        unsigned bytes) {
    const bool ipv6 = field.kind == Kind::kIpv6;
    const bool address_form = ipv6 ? text.find(':') != std::string_view::npos
                                   : text.find('.') != std::string_view::npos;
    if (address_form) {
        const bool ok = ipv6 ? parse_ipv6(text, mask) : parse_ipv4(text, mask);
        if (!ok) {
            fail(offset, std::string(field.name) + ": expected " + (ipv6 ? "an IPv6 mask" : "an IPv4 mask") +
                             " or prefix length, found " + shown(text));
        }
        return;
    }
    const uint64_t length = parse_number(text, offset, bytes * 8, field.name,
                                         "a prefix length 0-" + std::to_string(bytes * 8));
    std::memset(mask, 0, bytes);
    for (unsigned bit = 0; bit < length; ++bit) mask[bit / 8] |= static_cast<uint8_t>(0x80 >> (bit % 8));
}

}  // namespace

const char* const kTcpFlagNames[12] = {"fin", "syn", "rst", "psh", "ack", "urg",
                                       "ece", "cwr", "ns",  nullptr, nullptr, nullptr};
const char* const kCtStateNames[8] = {"new", "est", "rel", "rpl", "inv", "trk", "snat", "dnat"};

const FieldInfo& field_info(Fid id) { return kFields[static_cast<size_t>(id)]; }

const FieldInfo* find_field(std::string_view name) {
    for (const FieldInfo& field : kFields) {
        if (name == field.name) return &field;
    }
    for (const Alias& alias : kAliases) {
        if (name == alias.name) return &field_info(alias.id);
    }
    return nullptr;
}

uint64_t load_slot(const FlowKey& key, const FieldInfo& field) {
    const auto* bytes = reinterpret_cast<const uint8_t*>(&key) + field.offset;
    uint64_t slot = 0;
    if (field.network_order) {
        for (unsigned i = 0; i < field.width; ++i) slot = (slot << 8) | bytes[i];
    } else {
        std::memcpy(&slot, bytes, field.width);  // little-endian host
    }
    return slot;
}

void store_slot(FlowKey& key, const FieldInfo& field, uint64_t slot) {
    auto* bytes = reinterpret_cast<uint8_t*>(&key) + field.offset;
    if (field.network_order) {
        for (unsigned i = field.width; i-- > 0;) {
            bytes[i] = static_cast<uint8_t>(slot);
            slot >>= 8;
        }
    } else {
        std::memcpy(bytes, &slot, field.width);
    }
}

uint32_t resolve_port(std::string_view text, size_t offset, const PortNames& ports, std::string_view what) {
    for (size_t i = 0; i < ports.size(); ++i) {
        if (ports[i] == text) return static_cast<uint32_t>(i + 1);
    }
    // Decimal only (leading zeros too), as ovs-ofctl reads port numbers.
    if (const std::optional<uint64_t> number = parse_decimal(text); number && *number >= 1 && *number <= ports.size()) {
        return static_cast<uint32_t>(*number);
    }
    std::string expected;
    if (ports.empty()) {
        expected = "a port, but no ports are declared";
    } else {
        expected = "a port name (";
        for (size_t i = 0; i < ports.size() && i < 8; ++i) expected += (i ? ", " : "") + ports[i];
        if (ports.size() > 8) expected += ", ...";
        expected += ") or number 1-" + std::to_string(ports.size());
    }
    fail(offset, std::string(what) + ": expected " + expected + ", found " + shown(text));
}

void apply_field(Match& match, const FieldInfo& field, std::string_view text, size_t offset,
                 const PortNames& ports, bool allow_mask) {
    if (text.empty()) fail(offset, std::string(field.name) + ": expected a value, found nothing");
    const size_t slash = text.find('/');
    const std::string_view value_text = text.substr(0, slash);
    const bool has_mask = slash != std::string_view::npos;
    const std::string_view mask_text = has_mask ? text.substr(slash + 1) : std::string_view{};
    const size_t mask_offset = offset + slash + 1;
    if (has_mask && (!field.maskable || !allow_mask)) {
        fail(offset + slash, std::string(field.name) + ": expected a value without a mask, found " +
                                 shown(text.substr(slash)));
    }
    auto* value_bytes = reinterpret_cast<uint8_t*>(&match.value) + field.offset;
    auto* mask_bytes = reinterpret_cast<uint8_t*>(&match.mask) + field.offset;

    switch (field.kind) {
    case Kind::kPort: {
        const uint32_t port = resolve_port(text, offset, ports, field.name);
        std::memcpy(value_bytes, &port, 4);
        std::memset(mask_bytes, 0xff, 4);
        return;
    }
    case Kind::kMac: {
        uint8_t value[6], mask[6];
        if (!parse_mac(value_text, value)) {
            fail(offset, std::string(field.name) + ": expected a MAC address xx:xx:xx:xx:xx:xx, found " +
                             shown(value_text));
        }
        std::memset(mask, 0xff, 6);
        if (has_mask && !parse_mac(mask_text, mask)) {
            fail(mask_offset, std::string(field.name) + ": expected a MAC mask xx:xx:xx:xx:xx:xx, found " +
                                  shown(mask_text));
        }
        std::memcpy(value_bytes, value, 6);
        std::memcpy(mask_bytes, mask, 6);
        return;
    }
    case Kind::kIpv4:
    case Kind::kIpv6: {
        const unsigned bytes = field.kind == Kind::kIpv4 ? 4 : 16;
        uint8_t value[16], mask[16];
        const bool ok = bytes == 4 ? parse_ipv4(value_text, value) : parse_ipv6(value_text, value);
        if (!ok) {
            fail(offset, std::string(field.name) + ": expected " +
                             (bytes == 4 ? "an IPv4 address a.b.c.d" : "an IPv6 address") + ", found " +
                             shown(value_text));
        }
        std::memset(mask, 0xff, bytes);
        if (has_mask) parse_address_mask(field, mask_text, mask_offset, mask, bytes);
        std::memcpy(value_bytes, value, bytes);
        std::memcpy(mask_bytes, mask, bytes);
        return;
    }
    default:
        break;
    }

    // Bit fields of a slot.
    uint64_t covers = field.covers;
    uint64_t new_value = 0;
    uint64_t new_mask = 0;
    switch (field.kind) {
    case Kind::kNum: {
        const uint64_t value = parse_number(value_text, offset, field.max, field.name);
        new_value = ((value & field.kept_bits) << field.shift) | field.extra;
        new_mask = field.exact_mask | field.extra;
        if (has_mask) {
            const uint64_t mask = parse_number(mask_text, mask_offset, field.max, field.name,
                                               number_range(field.max) + " as the mask");
            new_mask = (mask << field.shift) & field.covers;
        }
        break;
    }
    case Kind::kDlVlan: {
        const std::optional<uint64_t> vid = parse_uint(text);
        if (!vid || (*vid > 0xfff && *vid != 0xffff)) {
            fail(offset, "dl_vlan: expected a VLAN ID 0-4095 (or 0xffff for no VLAN), found " + shown(text));
        }
        // 0xffff ("no VLAN") claims the whole TCI, as Open vSwitch does.
        new_value = *vid == 0xffff ? 0 : (kVlanPresent | *vid);
        new_mask = *vid == 0xffff ? 0xffff : 0x1fff;
        covers = new_mask;
        break;
    }
    case Kind::kFrag: {
        bool found = false;
        for (const FragForm& form : kFragForms) {
            if (text == form.name) {
                new_value = form.value;
                new_mask = form.mask;
                found = true;
            }
        }
        if (!found) {
            fail(offset, "nw_frag: expected no, yes, first, later or not_later, found " + shown(text));
        }
        break;
    }
    case Kind::kTcpFlags:
        parse_flags(field, text, offset, kTcpFlagNames, 12, new_value, new_mask);
        break;
    case Kind::kCtState:
        parse_flags(field, text, offset, kCtStateNames, 8, new_value, new_mask);
        break;
    default:
        break;
    }
    merge_slot(match, field, covers, new_value, new_mask);
}

void merge_slot(Match& match, const FieldInfo& field, uint64_t covers, uint64_t value, uint64_t mask) {
    uint64_t slot_value = load_slot(match.value, field);
    uint64_t slot_mask = load_slot(match.mask, field);
    slot_value = (slot_value & ~covers) | (value & covers);
    slot_mask = (slot_mask & ~covers) | (mask & covers);
    store_slot(match.value, field, slot_value & all_ones(field.width));
    store_slot(match.mask, field, slot_mask & all_ones(field.width));
}

void finish_match(Match& match) {
    auto* value = reinterpret_cast<uint8_t*>(&match.value);  // bytes: no aliasing trouble
    const auto* mask = reinterpret_cast<const uint8_t*>(&match.mask);
    for (size_t i = 0; i < sizeof(FlowKey); ++i) value[i] &= mask[i];
}

bool match_dl_type(const Match& match, uint16_t ethertype) {
    return match.mask.dl_type == 0xffff && match.value.dl_type == htons(ethertype);
}

bool match_nw_proto(const Match& match, uint8_t proto) {
    return match.mask.nw_proto == 0xff && match.value.nw_proto == proto;
}

bool match_is_ip_any(const Match& match) {
    return match_dl_type(match, kEthIp) || match_dl_type(match, kEthIpv6);
}

bool match_has_vlan(const Match& match) { return (match.value.vlans[0].tci & htons(kVlanPresent)) != 0; }

std::optional<std::string> missing_prereq(const Match& match, Prereq prereq) {
    const bool ip = match_dl_type(match, kEthIp);
    const bool ipv6 = match_dl_type(match, kEthIpv6);
    const bool arp = match_dl_type(match, kEthArp) || match_dl_type(match, kEthRarp);
    const bool later = (match.value.nw_frag & kFragLater) != 0;
    auto transport = [&](bool proto_ok, const char* needed) -> std::optional<std::string> {
        if (!(ip || ipv6) || !proto_ok) return "needs " + std::string(needed);
        if (later) return std::string("cannot match later fragments (nw_frag=later): they have no transport header");
        return std::nullopt;
    };
    auto nd_type = [&](bool solicit, bool advert, const char* needed) -> std::optional<std::string> {
        const uint16_t type = ntohs(match.value.tp_src);
        const bool ok = ipv6 && match_nw_proto(match, 58) && match.value.tp_dst == 0 &&
                        ((solicit && type == 135) || (advert && type == 136));
        if (ok) return std::nullopt;
        return "needs " + std::string(needed);
    };
    switch (prereq) {
    case Prereq::kNone:
        return std::nullopt;
    case Prereq::kIpv4OrArp:
        if (ip || arp) return std::nullopt;
        return "needs ip or arp in the match (e.g. 'ip,nw_src=10.0.0.0/8')";
    case Prereq::kIpAnyOrArp:
        if (ip || ipv6 || arp) return std::nullopt;
        return "needs ip, ipv6 or arp in the match";
    case Prereq::kIpAny:
        if (ip || ipv6) return std::nullopt;
        return "needs ip or ipv6 in the match";
    case Prereq::kIpv4:
        if (ip) return std::nullopt;
        return "needs ip in the match";
    case Prereq::kIpv6:
        if (ipv6) return std::nullopt;
        return "needs ipv6 in the match";
    case Prereq::kArp:
        if (arp) return std::nullopt;
        return "needs arp (or rarp) in the match";
    case Prereq::kL4:
        return transport(match_nw_proto(match, 6) || match_nw_proto(match, 17) || match_nw_proto(match, 132),
                         "tcp, udp or sctp in the match (tcp6, udp6, sctp6 for IPv6)");
    case Prereq::kTcp:
        return transport(match_nw_proto(match, 6), "tcp or tcp6 in the match");
    case Prereq::kUdp:
        return transport(match_nw_proto(match, 17), "udp or udp6 in the match");
    case Prereq::kSctp:
        return transport(match_nw_proto(match, 132), "sctp or sctp6 in the match");
    case Prereq::kIcmpAny:
        if ((ip && match_nw_proto(match, 1)) || (ipv6 && match_nw_proto(match, 58))) return std::nullopt;
        return "needs icmp (or icmp6) in the match";
    case Prereq::kIcmpv4:
        if (ip && match_nw_proto(match, 1)) return std::nullopt;
        return "needs icmp in the match";
    case Prereq::kIcmpv6:
        if (ipv6 && match_nw_proto(match, 58)) return std::nullopt;
        return "needs icmp6 in the match";
    case Prereq::kNd:
        return nd_type(true, true, "icmp6 with icmpv6_type=135 or 136 (and icmpv6_code=0) in the match");
    case Prereq::kNdSolicit:
        return nd_type(true, false, "icmp6 with icmpv6_type=135 (and icmpv6_code=0) in the match");
    case Prereq::kNdAdvert:
        return nd_type(false, true, "icmp6 with icmpv6_type=136 (and icmpv6_code=0) in the match");
    case Prereq::kVlan:
        if (match_has_vlan(match)) return std::nullopt;
        return "needs a VLAN tag (e.g. dl_vlan=N or vlan_tci=0x1000/0x1000 in the match, or push_vlan first)";
    }
    return std::nullopt;
}

}  // namespace flowpath::rules
