// Rules, match filters and rule files: the match part, the rule's own
// keywords (table, priority, ...), prerequisites, and the public API.
#include <arpa/inet.h>

#include <fstream>
#include <sstream>

#include "fields.hpp"
#include "flowpath/rule.hpp"
#include "parser.hpp"
#include "syntax.hpp"

namespace flowpath {

namespace rules {
namespace {

/// A protocol shorthand: dl_type, and nw_proto when nonzero.
struct Shorthand {
    const char* name;
    uint16_t dl_type;
    uint8_t nw_proto;
};
constexpr Shorthand kShorthands[] = {
    {"ip", kEthIp, 0},      {"ipv6", kEthIpv6, 0},   {"arp", kEthArp, 0},     {"rarp", kEthRarp, 0},
    {"icmp", kEthIp, 1},    {"tcp", kEthIp, 6},      {"udp", kEthIp, 17},     {"sctp", kEthIp, 132},
    {"icmp6", kEthIpv6, 58}, {"tcp6", kEthIpv6, 6}, {"udp6", kEthIpv6, 17}, {"sctp6", kEthIpv6, 132},
};

/// Keys that dump-flows output carries and a parser ignores, so that its
/// output can be fed back (as ovs-ofctl does).
constexpr const char* kIgnoredKeys[] = {"duration", "n_packets", "n_bytes", "idle_age", "hard_age"};

/// What a match part may hold besides match fields.
enum class Mode { kRule, kFilter };

/// The part of a rule before `actions=`.
struct MatchPart {
    Match match;
    uint8_t table = 0;
    bool has_table = false;
    uint16_t priority = kDefaultPriority;
    bool has_priority = false;
    uint64_t cookie = 0;
    uint64_t cookie_mask = 0;
    uint16_t idle_timeout = 0;
    uint16_t hard_timeout = 0;
    std::optional<size_t> actions_begin;  ///< offset just after `actions=`
};

/// If an `action=`/`actions=` keyword starts at `pos`, the offset after its '='.
std::optional<size_t> actions_keyword_at(std::string_view line, size_t pos) {
    for (std::string_view keyword : {"actions", "action"}) {
        if (line.substr(pos, keyword.size()) != keyword) continue;
        size_t i = pos + keyword.size();
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
        if (i < line.size() && line[i] == '=') return i + 1;
    }
    return std::nullopt;
}

/// Stores the VLAN fields (vlan_tci and the fields over it, combined as
/// written) as Open vSwitch does after ovs-ofctl sends them as OpenFlow 1.3
/// OXM: VLAN_VID carries the value's 0x1fff bits under the mask's 0x1fff
/// bits; VLAN_PCP follows only when that VID value is nonzero and the mask
/// has any priority bit, and then matches the whole priority (the value's
/// bits, unmasked ones as 0) and the present bit. So `vlan_tci=0x2000/0x2000`
/// matches everything and `vlan_tci=0x3000/0x3000` is `dl_vlan_pcp=1`.
/// Open vSwitch refuses a VLAN_PCP whose VID value lacks the present bit
/// (OFPBMC_BAD_PREREQ); so does this.
void normalize_vlan(Match& match, size_t last_vlan_offset, std::string_view last_vlan_name) {
    constexpr uint16_t kVidBits = kVlanPresent | 0x0fff;  // what VLAN_VID carries
    constexpr uint16_t kPcpBits = 0xe000;
    const uint16_t mask = ntohs(match.mask.vlans[0].tci);
    const uint16_t value = ntohs(match.value.vlans[0].tci) & mask;
    const uint16_t vid = value & kVidBits;
    uint16_t new_value = vid;
    uint16_t new_mask = mask & kVidBits;
    if (vid != 0 && (mask & kPcpBits)) {
        if (!(vid & kVlanPresent)) {
            fail(last_vlan_offset, std::string(last_vlan_name) + ": the VLAN fields give vlan_tci=" + hex(value, 4) +
                                       "/" + hex(mask, 4) + ", priority bits with VLAN ID bits but without the "
                                       "present bit 0x1000 in the value (Open vSwitch refuses this, "
                                       "OFPBMC_BAD_PREREQ)");
        }
        new_value |= value & kPcpBits;
        new_mask |= kPcpBits;
    }
    match.value.vlans[0].tci = htons(new_value);
    match.mask.vlans[0].tci = htons(new_mask);
}

MatchPart parse_match_part(std::string_view line, Mode mode, const PortNames& ports) {
    MatchPart part;
    struct Use {
        const FieldInfo* field;
        std::string_view name;  // as written (may be an alias)
        size_t offset;
    };
    std::vector<Use> uses;
    // Shorthands that set nw_proto: a later dl_type may take their IP away.
    struct ProtoUse {
        const Shorthand* shorthand;
        size_t offset;
    };
    std::vector<ProtoUse> shorthand_protos;
    size_t last_vlan_offset = 0;
    std::string_view last_vlan_name;

    size_t pos = 0;
    while (true) {
        while (pos < line.size() && is_separator(line[pos])) ++pos;
        if (pos >= line.size()) break;
        if (std::optional<size_t> begin = actions_keyword_at(line, pos)) {
            if (mode == Mode::kFilter) fail(pos, "expected a match without actions, found 'actions='");
            part.actions_begin = begin;
            break;
        }
        KeyValueScanner scanner(line, pos, line.size());
        KeyValue item;
        scanner.next(item);
        pos = scanner.position();
        const std::string_view key = item.key;
        if (key.empty()) {
            fail(item.key_offset, "expected a match field or actions=, found " + shown(line.substr(item.key_offset, 1)));
        }

        bool shorthand = false;
        for (const Shorthand& proto : kShorthands) {
            if (key != proto.name) continue;
            shorthand = true;
            if (item.delimiter != 0) {
                fail(item.key_offset + key.size(), std::string(key) + ": expected no value after a protocol name, found " +
                                                       shown(item.text(line).substr(key.size())));
            }
            const FieldInfo& dl_type = field_info(Fid::kDlType);
            store_slot(part.match.value, dl_type, proto.dl_type);
            store_slot(part.match.mask, dl_type, 0xffff);
            if (proto.nw_proto) {
                part.match.value.nw_proto = proto.nw_proto;
                part.match.mask.nw_proto = 0xff;
                shorthand_protos.push_back({&proto, item.key_offset});
            }
        }
        if (shorthand) continue;

        bool ignored = false;
        for (const char* ignore : kIgnoredKeys) ignored |= key == ignore;
        if (ignored) continue;

        const FieldInfo* field = find_field(key);
        // metadata is no FlowKey field (Match::metadata).
        const bool rule_keyword = key == "priority" || key == "table" || key == "cookie" ||
                                  key == "idle_timeout" || key == "hard_timeout" || key == "metadata";
        if (!field && !rule_keyword) {
            fail(item.key_offset, "expected a match field" +
                                      std::string(mode == Mode::kRule ? ", priority, table, cookie, idle_timeout, "
                                                                        "hard_timeout or actions="
                                                                      : ", table, priority or cookie") +
                                      ", found " + shown(key));
        }
        if (item.delimiter == 0 || item.delimiter == '(') {
            const size_t at = item.delimiter ? item.value_offset - 1 : item.key_offset + key.size();
            fail(at, std::string(key) + ": expected '=' and a value, found " +
                         (item.delimiter ? shown(line.substr(at, 1)) : std::string("nothing")));
        }
        const std::string_view value = item.value;
        const size_t at = item.value_offset;
        if (key == "priority") {
            part.priority = static_cast<uint16_t>(parse_number(value, at, 0xffff, "priority"));
            part.has_priority = true;
        } else if (key == "table") {
            part.table = parse_table(value, at, "table");
            part.has_table = true;
        } else if (key == "cookie") {
            const size_t slash = value.find('/');
            part.cookie = parse_number(value.substr(0, slash), at, UINT64_MAX, "cookie");
            part.cookie_mask = UINT64_MAX;
            if (slash != std::string_view::npos) {
                if (mode == Mode::kRule) {
                    fail(at + slash, "cookie: expected a cookie without a mask (masks are for del-flows), found " +
                                         shown(value.substr(slash)));
                }
                part.cookie_mask = parse_number(value.substr(slash + 1), at + slash + 1, UINT64_MAX, "cookie");
            }
        } else if (key == "metadata") {
            const size_t slash = value.find('/');
            uint64_t mask = UINT64_MAX;
            if (slash != std::string_view::npos) {
                mask = parse_number(value.substr(slash + 1), at + slash + 1, UINT64_MAX, "metadata");
            }
            part.match.metadata = parse_number(value.substr(0, slash), at, UINT64_MAX, "metadata") & mask;
            part.match.metadata_mask = mask;
        } else if (key == "idle_timeout" || key == "hard_timeout") {
            if (mode == Mode::kFilter) fail(item.key_offset, std::string(key) + ": expected a match field, found a rule setting");
            const uint16_t seconds = static_cast<uint16_t>(parse_number(value, at, 0xffff, key));
            (key == "idle_timeout" ? part.idle_timeout : part.hard_timeout) = seconds;
        } else {
            apply_field(part.match, *field, value, at, ports);
            uses.push_back({field, key, item.key_offset});
            const Fid id = field->id;
            if (id == Fid::kDlVlan || id == Fid::kDlVlanPcp || id == Fid::kVlanTci || id == Fid::kVlanVid ||
                id == Fid::kVlanPcp) {
                last_vlan_offset = item.key_offset;
                last_vlan_name = key;
            }
        }
    }
    finish_match(part.match);

    normalize_vlan(part.match, last_vlan_offset, last_vlan_name);
    for (const ProtoUse& use : shorthand_protos) {
        if (!match_is_ip_any(part.match)) {
            fail(use.offset, std::string(use.shorthand->name) + " sets nw_proto=" +
                                 std::to_string(use.shorthand->nw_proto) +
                                 ", which needs ip or ipv6, but a later field set another dl_type");
        }
    }
    for (const Use& use : uses) {
        if (std::optional<std::string> missing = missing_prereq(part.match, use.field->prereq)) {
            fail(use.offset, std::string(use.name) + " " + *missing);
        }
    }
    return part;
}

ParseError to_parse_error(const RuleError& error, const SourceLocation& where) {
    return ParseError{where.file, where.line == 0 ? 1 : where.line, static_cast<unsigned>(error.offset + 1),
                      error.message};
}

}  // namespace
}  // namespace rules

std::string ParseError::to_string() const {
    std::string out = file;
    if (line) {
        if (!out.empty()) out += ':';
        out += std::to_string(line);
        if (column) {
            out += ':';
            out += std::to_string(column);
        }
    }
    if (!out.empty()) out += ": ";
    out += message;
    return out;
}

Parsed<Rule> parse_rule(std::string_view text, const PortNames& ports, const SourceLocation& where) {
    using namespace rules;
    try {
        MatchPart part = parse_match_part(text, Mode::kRule, ports);
        if (!part.actions_begin) {
            fail(text.size(), "expected actions= after the match, found end of rule");
        }
        Rule rule;
        rule.table = part.table;
        rule.priority = part.priority;
        rule.cookie = part.cookie;
        rule.idle_timeout = part.idle_timeout;
        rule.hard_timeout = part.hard_timeout;
        rule.match = part.match;
        rule.actions = parse_actions(text, *part.actions_begin, text.size(), part.match, part.table, ports);
        rule.source = where;
        return rule;
    } catch (const RuleError& error) {
        return to_parse_error(error, where);
    }
}

Parsed<MatchFilter> parse_match(std::string_view text, const PortNames& ports) {
    using namespace rules;
    try {
        MatchPart part = parse_match_part(text, Mode::kFilter, ports);
        MatchFilter filter;
        filter.match = part.match;
        if (part.has_table) filter.table = part.table;
        if (part.has_priority) filter.priority = part.priority;
        filter.cookie = part.cookie;
        filter.cookie_mask = part.cookie_mask;
        return filter;
    } catch (const RuleError& error) {
        return to_parse_error(error, SourceLocation{});
    }
}

Parsed<std::vector<Rule>> parse_rules(std::string_view text, const PortNames& ports, const std::string& file) {
    std::vector<Rule> rules;
    unsigned line_number = 0;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t end = text.find('\n', pos);
        if (end == std::string_view::npos) end = text.size();
        std::string_view line = text.substr(pos, end - pos);
        pos = end + 1;
        ++line_number;
        // '#' starts a comment anywhere (no value of the syntax contains one).
        line = line.substr(0, line.find('#'));
        if (line.find_first_not_of(" \t\r\v\f") == std::string_view::npos) continue;
        Parsed<Rule> rule = parse_rule(line, ports, SourceLocation{file, line_number});
        if (!rule) return rule.error();
        rules.push_back(std::move(rule.value()));
    }
    return rules;
}

Parsed<std::vector<Rule>> parse_rule_file(const std::string& path, const PortNames& ports) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return ParseError{path, 0, 0, "cannot open the rule file"};
    std::ostringstream contents;
    contents << in.rdbuf();
    if (in.bad()) return ParseError{path, 0, 0, "cannot read the rule file"};
    return parse_rules(contents.str(), ports, path);
}

}  // namespace flowpath
