// Printing rules, matches and actions back in the rule file syntax.
//
// The order is fixed (close to what ovs-ofctl dump-flows shows), and every
// value is printed in a form the parser reads back to the same bits. A
// match the parser could not have produced (a megaflow mask, say) is still
// printed faithfully, with value/mask forms where a name cannot say it.
#include <arpa/inet.h>

#include <bit>
#include <cctype>
#include <cstring>
#include <string>
#include <vector>

#include "fields.hpp"
#include "flowpath/rule.hpp"
#include "syntax.hpp"

namespace flowpath {

namespace rules {
namespace {

std::string mac_text(const uint8_t* mac) {
    char buf[18];
    std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
    return buf;
}

std::string ipv4_text(const uint8_t* ip) {
    return std::to_string(ip[0]) + "." + std::to_string(ip[1]) + "." + std::to_string(ip[2]) + "." +
           std::to_string(ip[3]);
}

std::string ipv6_text(const uint8_t* ip) {
    char buf[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, ip, buf, sizeof buf);
    return buf;
}

bool all_ones(const uint8_t* bytes, unsigned n) {
    for (unsigned i = 0; i < n; ++i) {
        if (bytes[i] != 0xff) return false;
    }
    return true;
}

bool all_zero(const uint8_t* bytes, unsigned n) {
    for (unsigned i = 0; i < n; ++i) {
        if (bytes[i]) return false;
    }
    return true;
}

/// The prefix length of a CIDR mask, or -1.
int prefix_length(const uint8_t* mask, unsigned n) {
    int length = 0;
    unsigned i = 0;
    for (; i < n && mask[i] == 0xff; ++i) length += 8;
    if (i == n) return length;
    uint8_t byte = mask[i];
    while (byte & 0x80) {
        ++length;
        byte = static_cast<uint8_t>(byte << 1);
    }
    if (byte) return -1;
    for (++i; i < n; ++i) {
        if (mask[i]) return -1;
    }
    return length;
}

/// A 64-bit number as ovs-ofctl prints metadata: "0" for zero, else hex.
std::string ofctl_hex(uint64_t value) { return value ? hex(value) : "0"; }

/// `value` and, unless all ones, "/mask", as ovs-ofctl prints metadata
/// (appended piecewise: GCC 12 warns falsely on "..." + std::string here).
std::string ofctl_masked(uint64_t value, uint64_t mask) {
    std::string text = ofctl_hex(value);
    if (mask != UINT64_MAX) {
        text += '/';
        text += ofctl_hex(mask);
    }
    return text;
}

class MatchPrinter {
public:
    MatchPrinter(const Match& match, const PortNames& ports) : m_(match), ports_(ports) {}

    std::string print() {
        print_ct();
        const bool dl_exact = m_.mask.dl_type == 0xffff;
        const uint16_t dl_type = ntohs(m_.value.dl_type);
        const bool proto_exact = m_.mask.nw_proto == 0xff;
        const uint8_t proto = m_.value.nw_proto;
        ip_ = dl_exact && dl_type == kEthIp;
        ipv6_ = dl_exact && dl_type == kEthIpv6;
        arp_ = dl_exact && (dl_type == kEthArp || dl_type == kEthRarp);
        icmp_ = proto_exact && ((ip_ && proto == 1) || (ipv6_ && proto == 58));
        bool proto_printed = false;
        if (ip_ || ipv6_) {
            const char* name = ip_ ? "ip" : "ipv6";
            if (proto_exact) {
                proto_printed = true;
                switch (proto) {
                case 1: name = ip_ ? "icmp" : name; proto_printed = ip_; break;
                case 58: name = ipv6_ ? "icmp6" : name; proto_printed = ipv6_; break;
                case 6: name = ip_ ? "tcp" : "tcp6"; break;
                case 17: name = ip_ ? "udp" : "udp6"; break;
                case 132: name = ip_ ? "sctp" : "sctp6"; break;
                default: proto_printed = false;
                }
            }
            add(name);
        } else if (arp_) {
            add(dl_type == kEthArp ? "arp" : "rarp");
        }

        print_metadata();
        print_field(Fid::kInPort);
        print_vlan();
        print_field(Fid::kDlSrc);
        print_field(Fid::kDlDst);
        if (m_.mask.dl_type && !(ip_ || ipv6_ || arp_)) print_field(Fid::kDlType);

        print_field(arp_ ? Fid::kArpSpa : Fid::kNwSrc);
        print_field(arp_ ? Fid::kArpTpa : Fid::kNwDst);
        print_field(Fid::kIpv6Src);
        print_field(Fid::kIpv6Dst);
        print_field(Fid::kIpv6Label);
        if (!proto_printed) print_field(arp_ ? Fid::kArpOp : Fid::kNwProto);
        if (arp_) {
            print_field(Fid::kArpSha);
            print_field(Fid::kArpTha);
        }
        print_tos();
        print_field(Fid::kNwTtl);
        print_field(Fid::kNwFrag);
        if (icmp_) {
            print_field(ip_ ? Fid::kIcmpType : Fid::kIcmpv6Type);
            print_field(ip_ ? Fid::kIcmpCode : Fid::kIcmpv6Code);
        } else {
            print_field(Fid::kTpSrc);
            print_field(Fid::kTpDst);
        }
        print_field(Fid::kTcpFlags);
        print_field(Fid::kNdTarget);
        if (!arp_) {
            print_field(icmp_ && ipv6_ ? Fid::kNdSll : Fid::kArpSha);
            print_field(icmp_ && ipv6_ ? Fid::kNdTll : Fid::kArpTha);
        }
        if (m_.mask.recirc_id) add("recirc_id=" + hex(m_.value.recirc_id) + "/" + hex(m_.mask.recirc_id));

        std::string out;
        for (const std::string& part : parts_) out += (out.empty() ? "" : ",") + part;
        return out;
    }

private:
    void add(std::string part) { parts_.push_back(std::move(part)); }

    void print_metadata() {
        if (!m_.metadata_mask) return;
        std::string text = "metadata=";
        text += ofctl_masked(m_.metadata, m_.metadata_mask);
        add(std::move(text));
    }

    void print_ct() {
        print_field(Fid::kCtState);
        print_field(Fid::kCtZone);
        print_field(Fid::kCtMark);
    }

    void print_vlan() {
        const uint16_t value = ntohs(m_.value.vlans[0].tci);
        const uint16_t mask = ntohs(m_.mask.vlans[0].tci);
        if (!mask) return;
        const bool present = value & kVlanPresent;
        if (present && (mask == 0x1fff || mask == 0xffff)) add("dl_vlan=" + std::to_string(value & 0xfff));
        if (present && (mask == 0xf000 || mask == 0xffff)) add("dl_vlan_pcp=" + std::to_string(value >> 13));
        if (present && (mask == 0x1fff || mask == 0xf000 || mask == 0xffff)) return;
        std::string text = "vlan_tci=";
        text += hex(value, 4);
        if (mask != 0xffff) {
            text += '/';
            text += hex(mask, 4);
        }
        add(text);
    }

    void print_tos() {
        const uint8_t value = m_.value.nw_tos;
        const uint8_t mask = m_.mask.nw_tos;
        if ((mask & 0xfc) == 0xfc) add("nw_tos=" + std::to_string(value & 0xfc));
        if ((mask & 0x03) == 0x03) add("nw_ecn=" + std::to_string(value & 0x03));
        if (mask && mask != 0xff && mask != 0xfc && mask != 0x03) {
            add("nw_tos=" + hex(value) + "/" + hex(mask));  // not a rule's match
        }
    }

    void print_field(Fid id) {
        const FieldInfo& field = field_info(id);
        const auto* value = reinterpret_cast<const uint8_t*>(&m_.value) + field.offset;
        const auto* mask = reinterpret_cast<const uint8_t*>(&m_.mask) + field.offset;
        if (all_zero(mask, field.width)) return;
        const std::string name = std::string(field.name) + "=";
        switch (field.kind) {
        case Kind::kPort: {
            uint32_t port;
            std::memcpy(&port, value, 4);
            if (all_ones(mask, 4)) return add(name + format_port(port, ports_));
            uint32_t port_mask;
            std::memcpy(&port_mask, mask, 4);
            return add(name + hex(port) + "/" + hex(port_mask));
        }
        case Kind::kMac:
            return add(name + mac_text(value) + (all_ones(mask, 6) ? "" : "/" + mac_text(mask)));
        case Kind::kIpv4:
        case Kind::kIpv6: {
            const unsigned n = field.width;
            std::string text = name + (n == 4 ? ipv4_text(value) : ipv6_text(value));
            const int length = prefix_length(mask, n);
            if (length == static_cast<int>(8 * n)) return add(text);
            if (length >= 0) return add(text + "/" + std::to_string(length));
            return add(text + "/" + (n == 4 ? ipv4_text(mask) : ipv6_text(mask)));
        }
        case Kind::kTcpFlags:
        case Kind::kCtState: {
            const uint64_t v = load_slot(m_.value, field);
            const uint64_t mk = load_slot(m_.mask, field);
            const char* const* names = field.kind == Kind::kTcpFlags ? kTcpFlagNames : kCtStateNames;
            const unsigned bits = field.kind == Kind::kTcpFlags ? 12 : 8;
            if (mk > field.max) return add(name + hex(v) + "/" + hex(mk));
            std::string text = name;
            for (unsigned bit = 0; bit < bits; ++bit) {
                if (!(mk >> bit & 1)) continue;
                text += v >> bit & 1 ? "+" : "-";
                char unnamed[16];
                std::snprintf(unnamed, sizeof unnamed, "[%x]", 1u << bit);
                text += names[bit] ? names[bit] : unnamed;
            }
            return add(text);
        }
        case Kind::kFrag: {
            const uint8_t v = *value;
            const uint8_t mk = *mask;
            const char* form = nullptr;
            if (mk == kFragAny) form = v ? "yes" : "no";
            if (mk == (kFragAny | kFragLater) && v == kFragAny) form = "first";
            if (mk == (kFragAny | kFragLater) && v == (kFragAny | kFragLater)) form = "later";
            if (mk == kFragLater && v == 0) form = "not_later";
            if (form) return add(name + form);
            return add(name + hex(v) + "/" + hex(mk));  // not a rule's match
        }
        default:
            break;
        }
        // Numbers: decimal when exact, hex value/mask otherwise.
        const uint64_t v = load_slot(m_.value, field);
        const uint64_t mk = load_slot(m_.mask, field);
        const bool hex_value = id == Fid::kDlType || id == Fid::kCtMark || id == Fid::kIpv6Label ||
                               id == Fid::kVlanTci;
        const int digits = id == Fid::kDlType ? 4 : id == Fid::kIpv6Label ? 5 : 1;
        if (mk == field.exact_mask) {
            return add(name + (hex_value ? hex(v, digits) : std::to_string(v)));
        }
        add(name + hex(v, digits) + "/" + hex(mk, digits));
    }

    const Match& m_;
    const PortNames& ports_;
    bool ip_ = false, ipv6_ = false, arp_ = false, icmp_ = false;
    std::vector<std::string> parts_;
};

const char* set_field_name(SetField field) {
    switch (field) {
    case SetField::kInPort: return "in_port";
    case SetField::kEthSrc: return "eth_src";
    case SetField::kEthDst: return "eth_dst";
    case SetField::kVlanVid: return "vlan_vid";
    case SetField::kVlanPcp: return "vlan_pcp";
    case SetField::kIpv4Src: return "ip_src";
    case SetField::kIpv4Dst: return "ip_dst";
    case SetField::kIpv6Src: return "ipv6_src";
    case SetField::kIpv6Dst: return "ipv6_dst";
    case SetField::kIpv6Label: return "ipv6_label";
    case SetField::kNwTos: return "nw_tos";
    case SetField::kNwEcn: return "nw_ecn";
    case SetField::kNwTtl: return "nw_ttl";
    case SetField::kTcpSrc: return "tcp_src";
    case SetField::kTcpDst: return "tcp_dst";
    case SetField::kUdpSrc: return "udp_src";
    case SetField::kUdpDst: return "udp_dst";
    case SetField::kSctpSrc: return "sctp_src";
    case SetField::kSctpDst: return "sctp_dst";
    case SetField::kIcmpType: return "icmp_type";
    case SetField::kIcmpCode: return "icmp_code";
    case SetField::kIcmpv6Type: return "icmpv6_type";
    case SetField::kIcmpv6Code: return "icmpv6_code";
    case SetField::kArpOp: return "arp_op";
    case SetField::kArpSpa: return "arp_spa";
    case SetField::kArpTpa: return "arp_tpa";
    case SetField::kArpSha: return "arp_sha";
    case SetField::kArpTha: return "arp_tha";
    case SetField::kNdTarget: return "nd_target";
    case SetField::kNdSll: return "nd_sll";
    case SetField::kNdTll: return "nd_tll";
    case SetField::kVlanTci: return "vlan_tci";
    }
    return "?";
}

std::string set_field_value(const Action& action) {
    const uint8_t* v = action.value;
    switch (action.field) {
    case SetField::kInPort: return std::to_string(action.port);  // ovs-ofctl takes no name here
    case SetField::kEthSrc: case SetField::kEthDst: case SetField::kArpSha: case SetField::kArpTha:
    case SetField::kNdSll: case SetField::kNdTll:
        return mac_text(v);
    case SetField::kIpv4Src: case SetField::kIpv4Dst: case SetField::kArpSpa: case SetField::kArpTpa:
        return ipv4_text(v);
    case SetField::kIpv6Src: case SetField::kIpv6Dst: case SetField::kNdTarget:
        return ipv6_text(v);
    case SetField::kIpv6Label:
        return hex(uint64_t{v[0]} << 24 | uint64_t{v[1]} << 16 | uint64_t{v[2]} << 8 | v[3]);
    case SetField::kVlanTci:
        return hex(uint64_t{v[0]} << 8 | v[1], 4);  // as the vlan_tci match prints
    default:
        break;
    }
    uint64_t number = 0;
    for (unsigned i = 0; i < set_field_width(action.field); ++i) number = number << 8 | v[i];
    return std::to_string(number);
}

}  // namespace
}  // namespace rules

std::string format_port(uint32_t port, const PortNames& ports) {
    if (port >= 1 && port <= ports.size()) {
        const std::string& name = ports[port - 1];
        bool safe = !name.empty();
        for (char c : name) {
            safe &= std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
        }
        for (const char* reserved : {"in_port", "flood", "all", "drop", "local", "normal", "controller", "table",
                                     "none", "any"}) {
            safe &= !rules::equals_ignoring_case(name, reserved);
        }
        // The parser looks names up first, so the first port of this name wins.
        for (size_t i = 0; i + 1 < port && safe; ++i) safe &= ports[i] != name;
        if (safe) return name;
    }
    return std::to_string(port);
}

std::string format_match(const Match& match, const PortNames& ports) {
    return rules::MatchPrinter(match, ports).print();
}

std::string format_actions(const ActionList& actions, const PortNames& ports) {
    using rules::hex;
    if (actions.empty()) return "drop";
    std::string out;
    for (const Action& action : actions) {
        if (!out.empty()) out += ",";
        switch (action.type) {
        case ActionType::kOutput: out += "output:" + format_port(action.port, ports); break;
        case ActionType::kInPort: out += "in_port"; break;
        case ActionType::kFlood: out += "flood"; break;
        case ActionType::kAll: out += "all"; break;
        case ActionType::kSetField:
            out += "set_field:" + rules::set_field_value(action) + "->" + rules::set_field_name(action.field);
            break;
        case ActionType::kDecTtl: out += "dec_ttl"; break;
        case ActionType::kPushVlan: out += "push_vlan:" + hex(action.ethertype, 4); break;
        case ActionType::kPopVlan: out += "strip_vlan"; break;
        case ActionType::kResubmit:
            if (action.table == kResubmitSameTable) {
                out += "resubmit:" + std::to_string(action.port);
            } else {
                out += "resubmit(" + (action.port == kResubmitSamePort ? "" : std::to_string(action.port)) + "," +
                       std::to_string(action.table) + ")";
            }
            break;
        case ActionType::kGotoTable: out += "goto_table:" + std::to_string(action.table); break;
        case ActionType::kClearActions: out += "clear_actions"; break;
        case ActionType::kWriteMetadata: {
            const MetadataWrite write = write_metadata_of(action);
            out += "write_metadata:";
            out += rules::ofctl_masked(write.value, write.mask);
            break;
        }
        case ActionType::kSetMetadata: {
            // As Open vSwitch prints each encoding back: a load names the
            // bits of its run, a set_field the whole value.
            const MetadataWrite write = write_metadata_of(action);
            if (!(action.ct_flags & kMetadataLoad)) {
                out += "set_field:" + rules::ofctl_hex(write.value) + "->metadata";
                break;
            }
            const unsigned low = write.mask ? static_cast<unsigned>(std::countr_zero(write.mask)) : 0;
            const unsigned high = 63 - static_cast<unsigned>(std::countl_zero(write.mask));
            out += "load:" + rules::ofctl_hex(write.value >> low) + "->OXM_OF_METADATA[";
            if (write.mask != UINT64_MAX) {
                out += std::to_string(low);
                if (high != low) out += ".." + std::to_string(high);
            }
            out += "]";
            break;
        }
        case ActionType::kCt: {
            std::string args;
            auto arg = [&](const std::string& text) { args += (args.empty() ? "" : ",") + text; };
            if (action.ct_flags & kCtCommit) arg("commit");
            if (action.ct_zone) arg("zone=" + std::to_string(action.ct_zone));
            if (action.ct_flags & kCtRecirc) arg("table=" + std::to_string(action.table));
            if (action.ct_flags & kCtSetMark) {
                arg("exec(set_field:" + hex(action.ct_mark) +
                    (action.ct_mark_mask == 0xffffffff ? "" : "/" + hex(action.ct_mark_mask)) + "->ct_mark)");
            }
            out += "ct(" + args + ")";
            break;
        }
        case ActionType::kCtClear: out += "ct_clear"; break;
        case ActionType::kController: out += "CONTROLLER:" + std::to_string(action.port); break;
        // Datapath only (dump-cache), printed as Open vSwitch prints it.
        case ActionType::kRecirc: out += "recirc(" + hex(action.port) + ")"; break;
        }
    }
    return out;
}

std::string format_rule(const Rule& rule, const PortNames& ports) {
    std::string out;
    if (rule.cookie) out += "cookie=" + rules::hex(rule.cookie) + ", ";
    if (rule.table) out += "table=" + std::to_string(rule.table) + ", ";
    if (rule.idle_timeout) out += "idle_timeout=" + std::to_string(rule.idle_timeout) + ", ";
    if (rule.hard_timeout) out += "hard_timeout=" + std::to_string(rule.hard_timeout) + ", ";
    std::string match = format_match(rule.match, ports);
    if (rule.priority != kDefaultPriority) {
        match = "priority=" + std::to_string(rule.priority) + (match.empty() ? "" : ",") + match;
    }
    if (!match.empty()) out += match + " ";
    return out + "actions=" + format_actions(rule.actions, ports);
}

}  // namespace flowpath
