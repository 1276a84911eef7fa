// A random generator of valid rules, as text, for tests.
//
// Every rule it writes satisfies the prerequisites flowpath enforces and, with
// `ovs_compatible` (the default), loads into Open vSwitch 3.1 unchanged. The
// syntax varies the way people write rules: shorthands or dl_type/nw_proto,
// aliases, decimal/hex/octal numbers, masks as /len or /mask, free field
// order, commas or spaces. Deterministic for a seed. Header-only: include it
// from any test (the classifier and pipeline tests reuse it).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "flowpath/rule.hpp"

namespace flowpath::rulegen {

struct RuleGenOptions {
    unsigned ports = 4;           ///< ports p0..p{ports-1}
    unsigned max_table = 3;       ///< tables 0..max_table
    bool ovs_compatible = true;   ///< only syntax Open vSwitch 3.1 accepts too
    unsigned max_fields = 6;      ///< optional match fields besides the protocol
    unsigned max_actions = 5;
};

class RuleGen {
public:
    explicit RuleGen(uint64_t seed, RuleGenOptions options = {}) : rng_(seed), opt_(options) {}

    /// The port table the rules refer to.
    PortNames ports() const {
        PortNames names;
        for (unsigned i = 0; i < opt_.ports; ++i) {
            std::string name = "p";  // not "p" + ...: GCC 12 warns wrongly (-Wrestrict) on that
            name += std::to_string(i);
            names.push_back(name);
        }
        return names;
    }

    /// One rule line.
    std::string rule() {
        Shape shape = random_shape();
        std::vector<std::string> items = match_items(shape);
        table_ = static_cast<unsigned>(pick(0, opt_.max_table));
        if (chance(3)) items.push_back("table=" + std::to_string(table_));  // decimal only, as ovs-ofctl
        if (chance(2)) items.push_back("priority=" + number(pick(0, 65535)));
        if (chance(5)) items.push_back("cookie=" + hex(pick(0, 1u << 30)));
        if (chance(6)) items.push_back("idle_timeout=" + number(pick(0, 65535)));
        if (chance(6)) items.push_back("hard_timeout=" + number(pick(0, 65535)));
        std::shuffle(items.begin(), items.end(), rng_);
        std::string text = join(items);
        if (!text.empty()) text += chance(2) ? "," : " ";
        return text + "actions=" + actions(shape);
    }

    /// A match for parse_match (may be empty).
    std::string match() {
        Shape shape = random_shape();
        std::vector<std::string> items = match_items(shape);
        std::shuffle(items.begin(), items.end(), rng_);
        return join(items);
    }

private:
    enum class Family { kAny, kEther, kIp, kIpv6, kArp };
    struct Shape {
        Family family = Family::kAny;
        int proto = -1;           // exact nw_proto, -1 = none
        bool later_frag = false;  // nw_frag=later: no transport fields/actions
        bool vlan = false;        // the match requires a VLAN
        bool ct_invalid = false;  // ct_state has +inv
        int icmp_type = -1;       // exact ICMP(v6) type
        bool icmp_code_zero = true;
        bool nd_fields = false;   // nd_target/nd_sll/nd_tll were written
    };

    uint64_t pick(uint64_t lo, uint64_t hi) { return std::uniform_int_distribution<uint64_t>(lo, hi)(rng_); }
    bool chance(unsigned one_in) { return pick(1, one_in) == 1; }
    template <typename T>
    T one_of(const std::vector<T>& choices) { return choices[pick(0, choices.size() - 1)]; }

    static std::string hex(uint64_t v) {
        char buf[24];
        std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
        return buf;
    }
    /// A number in decimal, hex or (rarely) octal, as ovs-ofctl reads them.
    std::string number(uint64_t v) {
        const unsigned form = static_cast<unsigned>(pick(0, 9));
        if (form < 6) return std::to_string(v);
        if (form < 9 || v == 0) return hex(v);
        char buf[32];
        std::snprintf(buf, sizeof buf, "0%llo", static_cast<unsigned long long>(v));
        return buf;
    }
    std::string port() {
        const unsigned p = static_cast<unsigned>(pick(1, opt_.ports));
        return chance(2) ? "p" + std::to_string(p - 1) : std::to_string(p);
    }
    std::string mac() {
        char buf[18];
        std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", unsigned(pick(0, 255)) & 0xfe,
                      unsigned(pick(0, 255)), unsigned(pick(0, 255)), unsigned(pick(0, 255)),
                      unsigned(pick(0, 255)), unsigned(pick(0, 255)));
        return buf;
    }
    std::string mac_masked() {
        if (!chance(3)) return mac();
        // An all-zero MAC mask is valid, but Open vSwitch then keeps the rule
        // apart from the same rule without the field (flowpath merges them),
        // which would upset the dump comparison.
        std::vector<std::string> masks = {"ff:ff:ff:00:00:00", "01:00:00:00:00:00", "ff:ff:ff:ff:ff:f0",
                                          "ff:ff:ff:ff:ff:ff"};
        if (!opt_.ovs_compatible) masks.push_back("00:00:00:00:00:00");
        return mac() + "/" + one_of(masks);
    }
    std::string ipv4() {
        return std::to_string(pick(0, 255)) + "." + std::to_string(pick(0, 255)) + "." +
               std::to_string(pick(0, 255)) + "." + std::to_string(pick(0, 255));
    }
    std::string ipv4_masked() {
        switch (pick(0, 3)) {
        case 0: return ipv4() + "/" + std::to_string(pick(0, 32));
        case 1: return ipv4() + "/" + one_of<std::string>({"255.255.255.0", "255.0.255.0", "0.0.0.255"});
        default: return ipv4();
        }
    }
    std::string ipv6() {
        switch (pick(0, 3)) {
        case 0: return "2001:db8::" + hex(pick(1, 0xffff)).substr(2);
        case 1: return "fe80::" + hex(pick(1, 0xffff)).substr(2) + ":" + hex(pick(0, 0xffff)).substr(2);
        case 2: return "::1";
        default: return "2001:db8:" + hex(pick(0, 0xffff)).substr(2) + "::" + hex(pick(0, 0xffff)).substr(2);
        }
    }
    std::string ipv6_masked() {
        switch (pick(0, 3)) {
        case 0: return ipv6() + "/" + std::to_string(pick(0, 128));
        case 1: return ipv6() + "/ffff:ffff::";
        default: return ipv6();
        }
    }
    std::string num_masked(uint64_t max) {
        const uint64_t value = pick(0, max);
        if (chance(3)) return hex(value) + "/" + hex(pick(0, max));
        return number(value);
    }

    Shape random_shape() {
        Shape s;
        switch (pick(0, 12)) {
        case 0: s.family = Family::kAny; break;
        case 1: s.family = Family::kEther; break;
        case 2: s.family = Family::kIp; break;
        case 3: s.family = Family::kIpv6; break;
        case 4: s.family = Family::kArp; break;
        case 5: case 6: s.family = Family::kIp; s.proto = 6; break;
        case 7: s.family = Family::kIp; s.proto = 17; break;
        case 8: s.family = Family::kIp; s.proto = 132; break;
        case 9: s.family = Family::kIp; s.proto = 1; break;
        case 10: s.family = Family::kIpv6; s.proto = one_of<int>({6, 17, 132}); break;
        case 11: s.family = Family::kIpv6; s.proto = 58; break;
        default: s.family = Family::kIp; s.proto = one_of<int>({47, 50, 89}); break;
        }
        return s;
    }

    void protocol_items(Shape& s, std::vector<std::string>& items) {
        const bool v6 = s.family == Family::kIpv6;
        const std::string suffix = v6 ? "6" : "";
        std::string base = v6 ? "ipv6" : "ip";
        switch (s.family) {
        case Family::kAny: return;
        case Family::kEther: items.push_back("dl_type=" + one_of<std::string>({"0x88cc", "0x88f7", "0x9000"})); return;
        case Family::kArp:
            items.push_back(chance(4) ? "rarp" : chance(3) ? "dl_type=0x0806" : "arp");
            return;
        default: break;
        }
        if (s.proto < 0) {
            items.push_back(chance(4) ? (v6 ? "dl_type=0x86dd" : "dl_type=0x0800") : base);
            return;
        }
        std::string shorthand;
        switch (s.proto) {
        case 6: shorthand = "tcp" + suffix; break;
        case 17: shorthand = "udp" + suffix; break;
        case 132: shorthand = "sctp" + suffix; break;
        case 1: shorthand = "icmp"; break;
        case 58: shorthand = "icmp6"; break;
        default: break;
        }
        if (!shorthand.empty() && !chance(4)) {
            items.push_back(shorthand);
        } else {
            items.push_back(chance(3) ? (v6 ? "dl_type=0x86dd" : "dl_type=0x0800") : base);
            items.push_back(std::string(chance(2) ? "nw_proto=" : "ip_proto=") + number(static_cast<uint64_t>(s.proto)));
        }
    }

    std::vector<std::string> match_items(Shape& s) {
        std::vector<std::string> items;
        protocol_items(s, items);
        const bool ip_any = s.family == Family::kIp || s.family == Family::kIpv6;
        const bool l4 = ip_any && (s.proto == 6 || s.proto == 17 || s.proto == 132);
        const bool icmp = ip_any && (s.proto == 1 || s.proto == 58);

        // Each candidate is a small generator; pick a few of them.
        std::vector<int> kinds = {0, 1, 2, 3, 4, 5, 6};
        if (ip_any) kinds.insert(kinds.end(), {10, 11, 12, 13});
        if (s.family == Family::kIp) kinds.insert(kinds.end(), {20, 21});
        if (s.family == Family::kIpv6) kinds.insert(kinds.end(), {30, 31, 32});
        if (s.family == Family::kArp) kinds.insert(kinds.end(), {40, 41, 42, 43, 44});
        if (l4) kinds.insert(kinds.end(), {50, 51, 50, 51});
        if (l4 && s.proto == 6) kinds.push_back(52);
        if (icmp) kinds.insert(kinds.end(), {60, 61});
        std::shuffle(kinds.begin(), kinds.end(), rng_);
        kinds.resize(std::min<size_t>(kinds.size(), pick(0, opt_.max_fields)));
        // Fragments first: they decide whether transport fields may follow.
        std::sort(kinds.begin(), kinds.end(), [](int a, int b) { return (a == 13) > (b == 13); });

        const char* l4_names[] = {"tp", s.proto == 6 ? "tcp" : s.proto == 17 ? "udp" : "sctp"};
        for (int kind : kinds) {
            switch (kind) {
            case 0: items.push_back("in_port=" + port()); break;
            case 1: items.push_back(std::string(chance(2) ? "dl_src=" : "eth_src=") + mac_masked()); break;
            case 2: items.push_back(std::string(chance(2) ? "dl_dst=" : "eth_dst=") + mac_masked()); break;
            case 3: vlan_items(s, items); break;
            case 4: ct_state_item(s, items); break;
            case 6: items.push_back("metadata=" + num_masked(UINT64_MAX)); break;
            case 5:
                if (chance(2)) items.push_back("ct_zone=" + number(pick(0, 65535)));
                else items.push_back("ct_mark=" + num_masked(0xffffffff));
                break;
            case 10:
                if (chance(2)) items.push_back("nw_tos=" + number(pick(0, 63) * 4));
                else items.push_back("ip_dscp=" + number(pick(0, 63)));
                break;
            case 11: items.push_back(std::string(chance(2) ? "nw_ecn=" : "ip_ecn=") + number(pick(0, 3))); break;
            case 12: items.push_back("nw_ttl=" + number(pick(0, 255))); break;
            case 13: {
                const std::string frag = one_of<std::string>({"no", "yes", "first", "later", "not_later"});
                if (frag == "later") {
                    if (l4) break;  // keep the transport fields possible
                    s.later_frag = true;
                }
                items.push_back("nw_frag=" + frag);
                break;
            }
            case 20: items.push_back(std::string(chance(2) ? "nw_src=" : "ip_src=") + ipv4_masked()); break;
            case 21: items.push_back(std::string(chance(2) ? "nw_dst=" : "ip_dst=") + ipv4_masked()); break;
            case 30: items.push_back("ipv6_src=" + ipv6_masked()); break;
            case 31: items.push_back("ipv6_dst=" + ipv6_masked()); break;
            case 32: items.push_back("ipv6_label=" + num_masked(0xfffff)); break;
            case 40: items.push_back(std::string(chance(2) ? "arp_spa=" : "nw_src=") + ipv4_masked()); break;
            case 41: items.push_back(std::string(chance(2) ? "arp_tpa=" : "nw_dst=") + ipv4_masked()); break;
            case 42: items.push_back(std::string(chance(2) ? "arp_op=" : "nw_proto=") + number(pick(0, 255))); break;
            case 43: items.push_back("arp_sha=" + mac_masked()); break;
            case 44: items.push_back("arp_tha=" + mac_masked()); break;
            case 50: items.push_back(std::string(l4_names[pick(0, 1)]) + "_src=" + num_masked(0xffff)); break;
            case 51: items.push_back(std::string(l4_names[pick(0, 1)]) + "_dst=" + num_masked(0xffff)); break;
            case 52: tcp_flags_item(items); break;
            case 60: icmp_items(s, items); break;
            case 61: {
                // After nd_target/nd_sll/nd_tll only code 0 keeps them valid.
                const uint64_t code = s.nd_fields ? 0 : pick(0, 255);
                items.push_back(std::string(s.proto == 58 ? "icmpv6_code=" : "icmp_code=") + number(code));
                s.icmp_code_zero = code == 0;
                break;
            }
            default: break;
            }
        }
        return items;
    }

    void vlan_items(Shape& s, std::vector<std::string>& items) {
        switch (pick(0, 7)) {
        case 0: items.push_back("dl_vlan=" + number(pick(0, 4095))); s.vlan = true; break;
        case 1: items.push_back("dl_vlan_pcp=" + number(pick(0, 7))); s.vlan = true; break;
        case 2:
            items.push_back("dl_vlan=" + number(pick(0, 4095)));
            items.push_back("dl_vlan_pcp=" + number(pick(0, 7)));
            s.vlan = true;
            break;
        case 3: items.push_back("dl_vlan=0xffff"); break;
        case 4: items.push_back("vlan_tci=0x1000/0x1000"); s.vlan = true; break;
        case 5: items.push_back("vlan_tci=" + hex(0x1000 | pick(0, 0xfff)) + "/0x1fff"); s.vlan = true; break;
        case 6: {
            // Any value/mask Open vSwitch takes: it refuses priority bits
            // with VLAN ID bits but no present bit (OFPBMC_BAD_PREREQ).
            uint64_t value, mask;
            do {
                mask = chance(2) ? pick(0, 0xffff) : one_of<uint64_t>({0x1000, 0x1fff, 0xf000, 0xe000, 0x3000, 0x7000});
                value = pick(0, 0xffff);
            } while ((value & mask & 0x1fff) && (mask & 0xe000) && !(value & mask & 0x1000));
            items.push_back("vlan_tci=" + hex(value) + "/" + hex(mask));
            s.vlan = (value & mask & 0x1000) != 0;
            break;
        }
        default: items.push_back("vlan_tci=0x0000"); break;
        }
    }

    void ct_state_item(Shape& s, std::vector<std::string>& items) {
        static const char* names[] = {"new", "est", "rel", "rpl", "inv", "trk"};
        std::string text;
        for (unsigned bit = 0; bit < 6; ++bit) {
            if (!chance(3)) continue;
            const bool plus = chance(2);
            text += std::string(plus ? "+" : "-") + names[bit];
            if (plus && bit == 4) s.ct_invalid = true;
        }
        if (text.empty()) text = "+trk";
        items.push_back("ct_state=" + text);
    }

    void tcp_flags_item(std::vector<std::string>& items) {
        static const char* names[] = {"fin", "syn", "rst", "psh", "ack", "urg", "ece", "cwr", "ns"};
        if (chance(3)) {
            items.push_back("tcp_flags=" + hex(pick(0, 0xfff)) + "/" + hex(pick(1, 0xfff)));
            return;
        }
        std::string text;
        for (unsigned bit = 0; bit < 9; ++bit) {
            if (chance(3)) text += std::string(chance(2) ? "+" : "-") + names[bit];
        }
        if (text.empty()) text = "+syn";
        items.push_back("tcp_flags=" + text);
    }

    void icmp_items(Shape& s, std::vector<std::string>& items) {
        const bool v6 = s.proto == 58;
        s.icmp_type = v6 && chance(2) ? static_cast<int>(pick(135, 136)) : static_cast<int>(pick(0, 255));
        items.push_back(std::string(v6 && chance(3) ? "icmpv6_type=" : "icmp_type=") +
                        number(static_cast<uint64_t>(s.icmp_type)));
        if (v6 && (s.icmp_type == 135 || s.icmp_type == 136) && s.icmp_code_zero) {
            if (chance(2)) items.push_back("nd_target=" + ipv6_masked());
            if (chance(2)) items.push_back(std::string(s.icmp_type == 135 ? "nd_sll=" : "nd_tll=") + mac_masked());
            s.nd_fields = true;
        }
    }

    std::string actions(const Shape& s) {
        if (chance(12)) return chance(2) ? "drop" : "";
        const bool ip_any = s.family == Family::kIp || s.family == Family::kIpv6;
        const bool l4 = ip_any && !s.later_frag && (s.proto == 6 || s.proto == 17 || s.proto == 132);
        // Which of the two tag slots hold a tag, as ovs-ofctl tracks them.
        bool tag0 = s.vlan, tag1 = false;
        std::vector<std::string> out;
        const unsigned count = static_cast<unsigned>(pick(1, opt_.max_actions));
        for (unsigned i = 0; i < count; ++i) {
            switch (pick(0, 18)) {
            case 0: case 1: out.push_back("output:" + port()); break;
            case 2: out.push_back(one_of<std::string>({"in_port", "flood", "all", "IN_PORT", "FLOOD"})); break;
            case 3:
                out.push_back(chance(2) ? "mod_dl_src:" + mac() : "set_field:" + mac() + "->" +
                                                                     one_of<std::string>({"eth_dst", "dl_src"}));
                break;
            case 4:
                if (s.family == Family::kIp) {
                    const std::string name = opt_.ovs_compatible ? one_of<std::string>({"ip_src", "nw_dst", "ip_dst"})
                                                                 : one_of<std::string>({"ipv4_src", "ipv4_dst"});
                    out.push_back(chance(2) ? "mod_nw_dst:" + ipv4() : "set_field:" + ipv4() + "->" + name);
                }
                break;
            case 5:
                if (ip_any) {
                    out.push_back(one_of<std::string>({"dec_ttl", "mod_nw_tos:" + number(pick(0, 63) * 4),
                                                       "mod_nw_ecn:" + number(pick(0, 3)),
                                                       "mod_nw_ttl:" + number(pick(0, 255)),
                                                       "set_field:" + number(pick(0, 63)) + "->ip_dscp",
                                                       "set_field:" + number(pick(0, 255)) + "->nw_ttl"}));
                }
                break;
            case 6:
                if (l4) {
                    const char* name = s.proto == 6 ? "tcp" : s.proto == 17 ? "udp" : "sctp";
                    out.push_back(chance(2) ? "mod_tp_src:" + number(pick(0, 65535))
                                            : "set_field:" + number(pick(0, 65535)) + "->" + name + "_dst");
                }
                break;
            case 7:
            case 8:
                if (tag0 || !tag1) {  // else the push it needs would be a third tag
                    out.push_back(chance(2) ? "mod_vlan_vid:" + number(pick(0, 4095))
                                            : "mod_vlan_pcp:" + number(pick(0, 7)));
                    tag0 = true;
                }
                break;
            case 9:
                if (!tag1) {
                    out.push_back(chance(2) ? "push_vlan:0x8100" : "push_vlan:0x88a8");
                    tag1 = tag0;
                    tag0 = true;
                }
                break;
            case 10:
                if (tag0) {
                    out.push_back(chance(2) ? "strip_vlan" : "pop_vlan");
                    tag0 = tag1;
                    tag1 = false;
                }
                break;
            case 17: {
                const uint64_t tci = one_of<uint64_t>({0, 0x1000 | pick(0, 0xfff) | pick(0, 7) << 13, pick(0, 0xffff)});
                out.push_back("set_field:" + number(tci) + "->vlan_tci");
                tag0 = (tci & 0x1000) != 0;
                break;
            }
            case 11:
                if (tag0) {
                    out.push_back(chance(2) ? "set_field:" + number(0x1000 | pick(0, 4095)) + "->vlan_vid"
                                            : "set_field:" + number(pick(0, 7)) + "->vlan_pcp");
                }
                break;
            case 12: {
                const std::string table = std::to_string(pick(0, opt_.max_table));
                out.push_back(one_of<std::string>({"resubmit(," + table + ")",
                                                   "resubmit:" + std::to_string(pick(1, opt_.ports)),
                                                   "resubmit(" + std::to_string(pick(1, opt_.ports)) + "," + table + ")"}));
                break;
            }
            case 13: if (ip_any) out.push_back(ct_action(s)); break;
            case 14: out.push_back("ct_clear"); break;
            case 15:
                if (s.family == Family::kIpv6) out.push_back("set_field:" + ipv6() + "->ipv6_src");
                if (s.family == Family::kArp) out.push_back("set_field:" + ipv4() + "->arp_tpa");
                break;
            case 16:
                if (ip_any && (s.proto == 1 || s.proto == 58)) {
                    out.push_back("set_field:" + number(pick(0, 255)) + (s.proto == 1 ? "->icmp_type" : "->icmpv6_code"));
                }
                break;
            default: out.push_back(port()); break;
            }
        }
        // OpenFlow's other instructions: after the applied actions, before goto_table.
        if (chance(12)) out.push_back("clear_actions");
        if (chance(6)) out.push_back("write_metadata:" + num_masked(UINT64_MAX));
        if (chance(5) && table_ < opt_.max_table) out.push_back("goto_table:" + std::to_string(pick(table_ + 1, opt_.max_table)));
        if (out.empty()) out.push_back("output:" + port());
        std::string text;
        for (const std::string& action : out) text += (text.empty() ? "" : chance(8) ? " " : ",") + action;
        return text;
    }

    std::string ct_action(const Shape& s) {
        std::vector<std::string> args;
        const bool commit = !s.ct_invalid && chance(2);
        if (commit) args.push_back("commit");
        if (chance(2)) args.push_back("zone=" + number(pick(0, 65535)));
        if (chance(2)) args.push_back("table=" + std::to_string(pick(0, opt_.max_table)));
        if (commit && chance(2)) args.push_back("exec(set_field:" + hex(pick(0, 0xffffffff)) + "->ct_mark)");
        std::shuffle(args.begin(), args.end(), rng_);
        if (args.empty() && chance(2)) return "ct";
        std::string text;
        for (const std::string& arg : args) text += (text.empty() ? "" : ",") + arg;
        return "ct(" + text + ")";
    }

    std::string join(const std::vector<std::string>& items) {
        std::string text;
        for (const std::string& item : items) text += (text.empty() ? "" : one_of<std::string>({",", ", ", " "})) + item;
        return text;
    }

    std::mt19937_64 rng_;
    RuleGenOptions opt_;
    unsigned table_ = 0;
};

}  // namespace flowpath::rulegen
