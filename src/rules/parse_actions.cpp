// The action part of a rule: `actions=` up to the end of the line.
#include <arpa/inet.h>

#include <cstring>
#include <optional>
#include <string>
#include <utility>

#include "fields.hpp"
#include "parser.hpp"
#include "syntax.hpp"

namespace flowpath::rules {

namespace {

/// What set_field may write: the action field, what the rule's match must
/// have, and the largest value (numeric fields).
struct SetTarget {
    SetField field;
    Prereq prereq;
    uint64_t max;
};

std::optional<SetTarget> set_target(Fid id) {
    switch (id) {
    case Fid::kInPort: return SetTarget{SetField::kInPort, Prereq::kNone, 0};
    case Fid::kDlSrc: return SetTarget{SetField::kEthSrc, Prereq::kNone, 0};
    case Fid::kDlDst: return SetTarget{SetField::kEthDst, Prereq::kNone, 0};
    case Fid::kVlanVid: return SetTarget{SetField::kVlanVid, Prereq::kVlan, 0x1fff};
    case Fid::kVlanPcp: return SetTarget{SetField::kVlanPcp, Prereq::kVlan, 7};
    // The whole TCI, present bit included: may push or pop tags.
    case Fid::kVlanTci: return SetTarget{SetField::kVlanTci, Prereq::kNone, 0xffff};
    case Fid::kNwSrc: return SetTarget{SetField::kIpv4Src, Prereq::kIpv4, 0};
    case Fid::kNwDst: return SetTarget{SetField::kIpv4Dst, Prereq::kIpv4, 0};
    case Fid::kNwTos: return SetTarget{SetField::kNwTos, Prereq::kIpAny, 255};
    case Fid::kIpDscp: return SetTarget{SetField::kNwTos, Prereq::kIpAny, 63};
    case Fid::kNwEcn: return SetTarget{SetField::kNwEcn, Prereq::kIpAny, 3};
    case Fid::kNwTtl: return SetTarget{SetField::kNwTtl, Prereq::kIpAny, 255};
    // tp_src is Open vSwitch's other name for tcp_src.
    case Fid::kTpSrc: case Fid::kTcpSrc: return SetTarget{SetField::kTcpSrc, Prereq::kTcp, 0xffff};
    case Fid::kTpDst: case Fid::kTcpDst: return SetTarget{SetField::kTcpDst, Prereq::kTcp, 0xffff};
    case Fid::kUdpSrc: return SetTarget{SetField::kUdpSrc, Prereq::kUdp, 0xffff};
    case Fid::kUdpDst: return SetTarget{SetField::kUdpDst, Prereq::kUdp, 0xffff};
    case Fid::kSctpSrc: return SetTarget{SetField::kSctpSrc, Prereq::kSctp, 0xffff};
    case Fid::kSctpDst: return SetTarget{SetField::kSctpDst, Prereq::kSctp, 0xffff};
    case Fid::kIcmpType: return SetTarget{SetField::kIcmpType, Prereq::kIcmpv4, 255};
    case Fid::kIcmpCode: return SetTarget{SetField::kIcmpCode, Prereq::kIcmpv4, 255};
    case Fid::kIcmpv6Type: return SetTarget{SetField::kIcmpv6Type, Prereq::kIcmpv6, 255};
    case Fid::kIcmpv6Code: return SetTarget{SetField::kIcmpv6Code, Prereq::kIcmpv6, 255};
    case Fid::kArpOp: return SetTarget{SetField::kArpOp, Prereq::kArp, 255};
    case Fid::kArpSpa: return SetTarget{SetField::kArpSpa, Prereq::kArp, 0};
    case Fid::kArpTpa: return SetTarget{SetField::kArpTpa, Prereq::kArp, 0};
    case Fid::kArpSha: return SetTarget{SetField::kArpSha, Prereq::kArp, 0};
    case Fid::kArpTha: return SetTarget{SetField::kArpTha, Prereq::kArp, 0};
    case Fid::kIpv6Src: return SetTarget{SetField::kIpv6Src, Prereq::kIpv6, 0};
    case Fid::kIpv6Dst: return SetTarget{SetField::kIpv6Dst, Prereq::kIpv6, 0};
    case Fid::kIpv6Label: return SetTarget{SetField::kIpv6Label, Prereq::kIpv6, 0xfffff};
    case Fid::kNdTarget: return SetTarget{SetField::kNdTarget, Prereq::kNd, 0};
    case Fid::kNdSll: return SetTarget{SetField::kNdSll, Prereq::kNdSolicit, 0};
    case Fid::kNdTll: return SetTarget{SetField::kNdTll, Prereq::kNdAdvert, 0};
    default: return std::nullopt;
    }
}

void store_be(uint8_t* out, uint64_t value, unsigned bytes) {
    for (unsigned i = bytes; i-- > 0;) {
        out[i] = static_cast<uint8_t>(value);
        value >>= 8;
    }
}

class ActionParser {
public:
    ActionParser(std::string_view line, const Match& match, uint8_t table, const PortNames& ports)
        : line_(line), match_(match), table_(table), ports_(ports), tagged_{match_has_vlan(match), false} {}

    ActionList parse(size_t begin, size_t end) {
        KeyValueScanner scanner(line_, begin, end);
        KeyValue item;
        std::optional<size_t> drop_at;
        // OpenFlow's instructions close the list, in OpenFlow's order and
        // once each, as ovs-ofctl requires: 0 the applied actions, then
        // 1 clear_actions, 2 write_metadata, 3 goto_table.
        int phase = 0;
        while (scanner.next(item)) {
            if (phase == 3) {
                fail(item.key_offset, "expected goto_table to be the last action, found " + shown(item.text(line_)));
            }
            if (equals_ignoring_case(item.key, "drop")) {
                no_value(item);
                drop_at = item.key_offset;
                continue;
            }
            const int item_phase = equals_ignoring_case(item.key, "clear_actions")    ? 1
                                   : equals_ignoring_case(item.key, "write_metadata") ? 2
                                   : equals_ignoring_case(item.key, "goto_table")     ? 3
                                                                                      : 0;
            if (phase > 0 && item_phase <= phase && item_phase != 3) {
                fail(item.key_offset, "expected clear_actions, write_metadata and goto_table after the other "
                                      "actions, in this order and once each (as OpenFlow's instructions), found " +
                                          shown(item.text(line_)));
            }
            phase = item_phase;
            parse_one(item);
        }
        if (drop_at && !actions_.empty()) {
            fail(*drop_at, "drop: expected to be the only action, found other actions with it");
        }
        return std::move(actions_);
    }

private:
    void add(const Action& action) { actions_.push_back(action); }

    // The part of an item after its key: ":1", "(1)".
    std::string_view argument(const KeyValue& item) const { return item.text(line_).substr(item.key.size()); }

    void no_value(const KeyValue& item) {
        if (item.delimiter != 0) {
            fail(item.value_offset - 1, std::string(item.key) + ": expected no argument, found " + shown(argument(item)));
        }
    }
    std::string_view value_of(const KeyValue& item, const char* form) {
        if (item.delimiter == 0 || item.delimiter == '(' || item.value.empty()) {
            fail(item.delimiter ? item.value_offset - 1 : item.key_offset + item.key.size(),
                 std::string(item.key) + ": expected " + form + ", found " + shown(argument(item)));
        }
        return item.value;
    }
    void need(Prereq prereq, const KeyValue& item, std::string_view what) {
        if (std::optional<std::string> missing = missing_prereq(match_, prereq)) {
            fail(item.key_offset, std::string(what) + " " + *missing);
        }
    }
    void need_vlan(const KeyValue& item, std::string_view what) {
        if (!tagged_[0]) {
            fail(item.key_offset, std::string(what) + " " + *missing_prereq(Match{}, Prereq::kVlan));
        }
    }
    // A pushed tag becomes the outer one. Open vSwitch keeps at most two
    // tags in a flow and refuses a push while the second slot holds one.
    void push_tag(const KeyValue& item, std::string_view what, uint16_t ethertype) {
        if (tagged_[1]) {
            fail(item.key_offset, std::string(what) + ": expected at most two VLAN tags, found a third (the "
                                                      "match and earlier actions already give two)");
        }
        tagged_[1] = tagged_[0];
        tagged_[0] = true;
        add(Action::push_vlan(ethertype));
    }
    // mod_vlan_vid / mod_vlan_pcp on a packet without a tag push one first,
    // as OpenFlow 1.3 encodes them.
    void push_vlan_if_needed(const KeyValue& item, std::string_view what) {
        if (!tagged_[0]) push_tag(item, what, 0x8100);
    }

    // output:PORT or a bare port; the OpenFlow reserved names too.
    void output_to(std::string_view text, size_t offset, std::string_view what) {
        if (equals_ignoring_case(text, "in_port")) return add(Action::of(ActionType::kInPort));
        if (equals_ignoring_case(text, "flood")) return add(Action::of(ActionType::kFlood));
        if (equals_ignoring_case(text, "all")) return add(Action::of(ActionType::kAll));
        if (equals_ignoring_case(text, "controller")) return add(Action::controller(kControllerAll));
        for (const char* reserved : {"local", "normal", "table", "none", "any"}) {
            if (equals_ignoring_case(text, reserved)) {
                fail(offset, std::string(what) + ": expected a port, in_port, flood, all or controller, found " + shown(text) +
                                 " (not supported by flowpath)");
            }
        }
        add(Action::output(resolve_port(text, offset, ports_, what)));
    }

    void parse_one(const KeyValue& item) {
        const std::string_view key = item.key;
        auto is = [&](const char* name) { return equals_ignoring_case(key, name); };
        if (key.empty()) {
            fail(item.key_offset, "expected an action, found " + shown(line_.substr(item.key_offset, 1)));
        }
        if (is("output")) {
            return output_to(value_of(item, "':' and a port"), item.value_offset, "output");
        }
        if (is("in_port") || is("flood") || is("all")) {
            no_value(item);
            return output_to(key, item.key_offset, "output");
        }
        if (is("mod_dl_src") || is("mod_dl_dst")) {
            uint8_t mac[6];
            const std::string_view text = value_of(item, "':' and a MAC address");
            if (!parse_mac(text, mac)) {
                fail(item.value_offset, std::string(key) + ": expected a MAC address xx:xx:xx:xx:xx:xx, found " + shown(text));
            }
            return add(Action::set(is("mod_dl_src") ? SetField::kEthSrc : SetField::kEthDst, mac));
        }
        if (is("mod_nw_src") || is("mod_nw_dst")) {
            uint8_t ip[4];
            const std::string_view text = value_of(item, "':' and an IPv4 address");
            if (!parse_ipv4(text, ip)) {
                fail(item.value_offset, std::string(key) + ": expected an IPv4 address a.b.c.d, found " + shown(text));
            }
            need(Prereq::kIpv4, item, key);
            return add(Action::set(is("mod_nw_src") ? SetField::kIpv4Src : SetField::kIpv4Dst, ip));
        }
        if (is("mod_nw_tos")) {
            const std::string_view text = value_of(item, "':' and a TOS value");
            const uint64_t tos = parse_number(text, item.value_offset, 255, "mod_nw_tos",
                                              "a TOS value 0-255 with the ECN bits clear (a multiple of 4)");
            if (tos & 3) {
                fail(item.value_offset,
                     "mod_nw_tos: expected a TOS value with the ECN bits clear (a multiple of 4), found " + shown(text));
            }
            need(Prereq::kIpAny, item, key);
            const uint8_t byte = static_cast<uint8_t>(tos);
            return add(Action::set(SetField::kNwTos, &byte));
        }
        if (is("mod_nw_ecn") || is("mod_nw_ttl")) {
            const bool ecn = is("mod_nw_ecn");
            const uint8_t byte = static_cast<uint8_t>(
                parse_number(value_of(item, "':' and a number"), item.value_offset, ecn ? 3 : 255, key));
            need(Prereq::kIpAny, item, key);
            return add(Action::set(ecn ? SetField::kNwEcn : SetField::kNwTtl, &byte));
        }
        if (is("mod_tp_src") || is("mod_tp_dst")) {
            const bool src = is("mod_tp_src");
            uint8_t port[2];
            store_be(port, parse_number(value_of(item, "':' and a port number"), item.value_offset, 0xffff, key), 2);
            need(Prereq::kL4, item, key);
            SetField field = src ? SetField::kTcpSrc : SetField::kTcpDst;
            if (match_nw_proto(match_, 17)) field = src ? SetField::kUdpSrc : SetField::kUdpDst;
            if (match_nw_proto(match_, 132)) field = src ? SetField::kSctpSrc : SetField::kSctpDst;
            return add(Action::set(field, port));
        }
        if (is("mod_vlan_vid")) {
            const uint64_t vid = parse_number(value_of(item, "':' and a VLAN ID"), item.value_offset, 4095,
                                              "mod_vlan_vid", "a VLAN ID 0-4095");
            uint8_t value[2];
            store_be(value, kVlanPresent | vid, 2);
            push_vlan_if_needed(item, "mod_vlan_vid (pushing a tag)");
            return add(Action::set(SetField::kVlanVid, value));
        }
        if (is("mod_vlan_pcp")) {
            const uint8_t pcp = static_cast<uint8_t>(parse_number(value_of(item, "':' and a priority"),
                                                                  item.value_offset, 7, "mod_vlan_pcp"));
            push_vlan_if_needed(item, "mod_vlan_pcp (pushing a tag)");
            return add(Action::set(SetField::kVlanPcp, &pcp));
        }
        if (is("dec_ttl")) {
            no_value(item);
            need(Prereq::kIpAny, item, "dec_ttl");
            return add(Action::of(ActionType::kDecTtl));
        }
        if (is("push_vlan")) {
            const std::string_view text = value_of(item, "':' and an ethertype");
            const std::optional<uint64_t> type = parse_uint(text);
            if (!type || (*type != 0x8100 && *type != 0x88a8)) {
                fail(item.value_offset, "push_vlan: expected ethertype 0x8100 or 0x88a8, found " + shown(text));
            }
            return push_tag(item, "push_vlan", static_cast<uint16_t>(*type));
        }
        if (is("strip_vlan") || is("pop_vlan")) {
            no_value(item);
            need_vlan(item, key);
            tagged_[0] = tagged_[1];
            tagged_[1] = false;
            return add(Action::of(ActionType::kPopVlan));
        }
        if (is("controller")) return parse_controller(item);
        if (is("set_field")) return parse_set_field(item);
        if (is("load")) return parse_load(item);
        if (is("resubmit")) return parse_resubmit(item);
        if (is("goto_table")) {
            const uint8_t table = parse_table(value_of(item, "':' and a table"), item.value_offset, "goto_table");
            if (table <= table_) {
                fail(item.value_offset, "goto_table: expected a table after this rule's table " +
                                            std::to_string(table_) + ", found " + shown(item.value));
            }
            return add(Action::goto_table(table));
        }
        if (is("clear_actions")) {
            no_value(item);
            return add(Action::of(ActionType::kClearActions));
        }
        if (is("write_metadata")) {
            const std::string_view text = value_of(item, "':' and VALUE[/MASK]");
            const size_t slash = text.find('/');
            uint64_t mask = UINT64_MAX;
            if (slash != std::string_view::npos) {
                mask = parse_number(text.substr(slash + 1), item.value_offset + slash + 1, UINT64_MAX, "write_metadata");
            }
            return add(Action::write_metadata(
                parse_number(text.substr(0, slash), item.value_offset, UINT64_MAX, "write_metadata"), mask));
        }
        if (is("ct")) return parse_ct(item);
        if (is("ct_clear")) {
            no_value(item);
            return add(Action::of(ActionType::kCtClear));
        }
        if (item.delimiter == 0) return output_to(key, item.key_offset, "action");
        fail(item.key_offset, "expected an action (output, in_port, flood, all, controller, drop, mod_*, set_field, "
                              "dec_ttl, push_vlan, strip_vlan, resubmit, ct, ct_clear, load, clear_actions, write_metadata, "
                              "goto_table), found " +
                                  shown(key));
    }

    void parse_set_field(const KeyValue& item) {
        const std::string_view text = value_of(item, "':' and VALUE->FIELD");
        const size_t arrow = text.find("->");
        if (arrow == std::string_view::npos) {
            fail(item.value_offset, "set_field: expected VALUE->FIELD, found " + shown(text));
        }
        const std::string_view value = text.substr(0, arrow);
        const std::string_view name = text.substr(arrow + 2);
        const size_t value_offset = item.value_offset;
        const size_t name_offset = item.value_offset + arrow + 2;
        if (equals_ignoring_case(name, "metadata")) return set_metadata(value, value_offset);
        const FieldInfo* info = find_field(name);
        if (!info) fail(name_offset, "set_field: expected a field name, found " + shown(name));
        if (info->id == Fid::kCtMark) {
            fail(name_offset, "set_field: ct_mark can only be set inside ct(commit,exec(...))");
        }
        const std::optional<SetTarget> target = set_target(info->id);
        if (!target) {
            const bool vlan = info->id == Fid::kDlVlan || info->id == Fid::kDlVlanPcp;
            fail(name_offset, "set_field: " + std::string(name) +
                                  (vlan ? " cannot be set (set vlan_vid, vlan_pcp or vlan_tci instead)"
                                        : " is read-only"));
        }
        if (value.empty()) fail(value_offset, "set_field: expected a value before '->', found nothing");
        if (value.find('/') != std::string_view::npos) {
            fail(value_offset + value.find('/'),
                 "set_field: expected a value without a mask, found " + shown(value.substr(value.find('/'))));
        }
        if (target->prereq == Prereq::kVlan) {
            need_vlan(item, "set_field to " + std::string(name));
        } else {
            need(target->prereq, item, "set_field to " + std::string(name));
        }

        Action action = Action::of(ActionType::kSetField);
        action.field = target->field;
        const unsigned width = set_field_width(target->field);
        auto bad_value = [&](const std::string& expected) {
            fail(value_offset, "set_field: " + std::string(name) + ": expected " + expected + ", found " + shown(value));
        };
        if (target->field == SetField::kInPort) {
            action.port = resolve_port(value, value_offset, ports_, "set_field: in_port");
        } else if (info->kind == Kind::kMac) {
            if (!parse_mac(value, action.value)) bad_value("a MAC address xx:xx:xx:xx:xx:xx");
        } else if (info->kind == Kind::kIpv4) {
            if (!parse_ipv4(value, action.value)) bad_value("an IPv4 address a.b.c.d");
        } else if (info->kind == Kind::kIpv6) {
            if (!parse_ipv6(value, action.value)) bad_value("an IPv6 address");
        } else {
            const uint64_t number = parse_number(value, value_offset, target->max, "set_field: " + std::string(name));
            uint64_t stored = number;
            if (info->id == Fid::kVlanVid && !(number & kVlanPresent)) {
                bad_value("0x1000-0x1fff (0x1000 | VID: OpenFlow 1.3 sets the present bit)");
            }
            if (info->id == Fid::kNwTos && (number & 3)) bad_value("a multiple of 4 (the ECN bits clear)");
            if (info->id == Fid::kIpDscp) stored = number << 2;
            // Open vSwitch's check: the tag is there after this exactly
            // when the value has the present bit.
            if (info->id == Fid::kVlanTci) tagged_[0] = (number & kVlanPresent) != 0;
            store_be(action.value, stored, width);
        }
        add(action);
    }

    // controller, controller:MAX_LEN or controller(max_len=N), as ovs-ofctl
    // takes them (the whole packet when no length is given).
    void parse_controller(const KeyValue& item) {
        uint64_t max_len = kControllerAll;
        if (item.delimiter == ':' || item.delimiter == '=') {
            max_len = parse_number(value_of(item, "a length"), item.value_offset, 0xffff, "controller");
        } else if (item.delimiter == '(') {
            KeyValueScanner args(line_, item.value_offset, item.value_offset + item.value.size());
            KeyValue arg;
            while (args.next(arg)) {
                if (arg.key != "max_len") {
                    fail(arg.key_offset, "controller: expected max_len=N, found " + shown(arg.key) +
                                             " (not supported by flowpath)");
                }
                max_len = parse_number(value_of(arg, "'=' and a length"), arg.value_offset, 0xffff,
                                       "controller: max_len");
            }
        }
        add(Action::controller(static_cast<uint16_t>(max_len)));
    }

    void parse_resubmit(const KeyValue& item) {
        if (item.delimiter == ':' || item.delimiter == '=') {
            const std::string_view port = value_of(item, "a port");
            return add(Action::resubmit(resolve_port(port, item.value_offset, ports_, "resubmit"), kResubmitSameTable));
        }
        if (item.delimiter != '(') fail(item.key_offset + item.key.size(), "resubmit: expected '(,TABLE)', found nothing");
        const std::string_view args = item.value;
        const size_t comma = args.find(',');
        const std::string_view port = args.substr(0, comma);
        const std::string_view table = comma == std::string_view::npos ? std::string_view{} : args.substr(comma + 1);
        if (table.find(',') != std::string_view::npos) {
            fail(item.value_offset + comma + 1 + table.find(','), "resubmit: expected (PORT,TABLE), found " + shown(args));
        }
        if (port.empty() && table.empty()) {
            fail(item.value_offset, "resubmit: expected a port or a table, e.g. resubmit(,1), found " + shown(args));
        }
        const uint32_t port_number =
            port.empty() ? kResubmitSamePort : resolve_port(port, item.value_offset, ports_, "resubmit");
        const uint8_t table_number =
            table.empty() ? kResubmitSameTable : parse_table(table, item.value_offset + comma + 1, "resubmit");
        add(Action::resubmit(port_number, table_number));
    }

    void parse_ct(const KeyValue& item) {
        Action ct = Action::of(ActionType::kCt);
        bool has_exec = false;
        if (item.delimiter == ':' || item.delimiter == '=') {
            fail(item.value_offset - 1, "ct: expected '(' and arguments, found " + shown(item.value));
        }
        if (item.delimiter == '(') {
            KeyValueScanner args(line_, item.value_offset, item.value_offset + item.value.size());
            KeyValue arg;
            while (args.next(arg)) {
                if (arg.key == "commit") {
                    no_value(arg);
                    ct.ct_flags |= kCtCommit;
                } else if (arg.key == "zone") {
                    ct.ct_zone = static_cast<uint16_t>(
                        parse_number(value_of(arg, "'=' and a zone"), arg.value_offset, 0xffff, "ct: zone"));
                } else if (arg.key == "table") {
                    ct.table = parse_table(value_of(arg, "'=' and a table"), arg.value_offset, "ct: table");
                    ct.ct_flags |= kCtRecirc;
                } else if (arg.key == "exec") {
                    if (arg.delimiter != '(') {
                        fail(arg.key_offset + arg.key.size(), "ct: exec: expected '(' and set_field:VALUE->ct_mark");
                    }
                    has_exec = true;
                    parse_ct_exec(arg, ct);
                } else {
                    fail(arg.key_offset, "ct: expected commit, zone=N, table=N or exec(...), found " + shown(arg.key) +
                                             (arg.key == "nat" || arg.key == "force" || arg.key == "alg"
                                                  ? " (not supported by flowpath)"
                                                  : ""));
                }
            }
        }
        need(Prereq::kIpAny, item, "ct");
        if (has_exec && !(ct.ct_flags & kCtCommit)) {
            fail(item.key_offset, "ct: exec(...) needs commit");
        }
        if ((ct.ct_flags & kCtCommit) && (match_.value.ct_state & kCtInvalid)) {
            fail(item.key_offset, "ct: commit cannot apply to packets matched as invalid (ct_state=+inv)");
        }
        if (ct.ct_mark_mask) ct.ct_flags |= kCtSetMark;
        add(ct);
    }

    // set_field:V[/M]->metadata as ovs-ofctl encodes it for OpenFlow 1.3:
    // all 64 bits a set_field, else one NXAST_REG_LOAD per run of ones in
    // the mask (a mask of 0: nothing).
    void set_metadata(std::string_view text, size_t offset) {
        const size_t slash = text.find('/');
        const uint64_t value = parse_number(text.substr(0, slash), offset, UINT64_MAX, "set_field: metadata");
        uint64_t mask = UINT64_MAX;
        if (slash != std::string_view::npos) {
            mask = parse_number(text.substr(slash + 1), offset + slash + 1, UINT64_MAX, "set_field: metadata",
                                "a 64-bit number as the mask");
        }
        if (mask == UINT64_MAX) {
            add(Action::set_metadata(value, mask, false));
            return;
        }
        while (mask) {
            const uint64_t low_bit = mask & -mask;
            const uint64_t run = mask & ~(mask + low_bit);  // the lowest run of ones
            add(Action::set_metadata(value, run, true));
            mask &= ~run;
        }
    }

    // load:V->OXM_OF_METADATA[], [n] or [a..b], as dump-flows prints a
    // masked set_field to metadata (the only field flowpath loads).
    void parse_load(const KeyValue& item) {
        const std::string_view text = value_of(item, "':' and VALUE->OXM_OF_METADATA[...]");
        const size_t arrow = text.find("->");
        if (arrow == std::string_view::npos) {
            fail(item.value_offset, "load: expected VALUE->OXM_OF_METADATA[...], found " + shown(text));
        }
        const auto [low, bits] =
            subfield_bits(text.substr(arrow + 2), item.value_offset + arrow + 2, "OXM_OF_METADATA", 64, "load");
        const uint64_t ones = low_ones(bits);
        const uint64_t value = parse_number(text.substr(0, arrow), item.value_offset, ones, "load");
        add(Action::set_metadata(value << low, ones << low, true));
    }

    // exec(...) of ct: set_field:V[/M]->ct_mark, or load:V->NXM_NX_CT_MARK[a..b]
    // as ovs-ofctl prints a masked one.
    void parse_ct_exec(const KeyValue& exec, Action& ct) {
        KeyValueScanner inner(line_, exec.value_offset, exec.value_offset + exec.value.size());
        KeyValue item;
        while (inner.next(item)) {
            const bool set = equals_ignoring_case(item.key, "set_field");
            const bool load = equals_ignoring_case(item.key, "load");
            const std::string_view text = (set || load) && item.delimiter == ':' ? item.value : std::string_view{};
            const size_t arrow = text.find("->");
            if (arrow == std::string_view::npos) {
                fail(item.key_offset, "ct: exec: expected set_field:VALUE[/MASK]->ct_mark, found " +
                                          shown(item.text(line_)));
            }
            const std::string_view target = text.substr(arrow + 2);
            const size_t target_offset = item.value_offset + arrow + 2;
            const std::string_view value_text = text.substr(0, arrow);
            uint64_t value = 0;
            uint64_t mask = 0xffffffff;
            if (set) {
                if (target != "ct_mark") {
                    fail(target_offset, "ct: exec: expected ct_mark (the only field flowpath sets there), found " +
                                            shown(target));
                }
                const size_t slash = value_text.find('/');
                value = parse_number(value_text.substr(0, slash), item.value_offset, 0xffffffff, "ct: exec: ct_mark");
                if (slash != std::string_view::npos) {
                    mask = parse_number(value_text.substr(slash + 1), item.value_offset + slash + 1, 0xffffffff,
                                        "ct: exec: ct_mark", "a number 0-0xffffffff as the mask");
                }
            } else {
                const auto [low, bits] = subfield_bits(target, target_offset, "NXM_NX_CT_MARK", 32, "ct: exec: load");
                value = parse_number(value_text, item.value_offset, low_ones(bits), "ct: exec: load");
                mask = low_ones(bits) << low;
                value <<= low;
            }
            ct.ct_mark = static_cast<uint32_t>((ct.ct_mark & ~mask) | (value & mask));
            ct.ct_mark_mask |= static_cast<uint32_t>(mask);
        }
    }

    // FIELD[], [n] or [a..b] of a `width`-bit field: the lowest bit and the
    // bit count.
    // The mask of a subfield of `bits` bits (1-64) from bit 0.
    static uint64_t low_ones(unsigned bits) { return bits == 64 ? UINT64_MAX : (uint64_t{1} << bits) - 1; }

    std::pair<unsigned, unsigned> subfield_bits(std::string_view target, size_t offset, std::string_view field,
                                                unsigned width, const std::string& what) {
        auto bad = [&]() {
            fail(offset, what + ": expected " + std::string(field) + "[], [BIT] or [FIRST..LAST], found " +
                             shown(target));
        };
        if (target.size() < field.size() + 2 || target.substr(0, field.size()) != field ||
            target[field.size()] != '[' || target.back() != ']') {
            bad();
        }
        const std::string_view range = target.substr(field.size() + 1, target.size() - field.size() - 2);
        if (range.empty()) return {0, width};
        const size_t dots = range.find("..");
        const std::optional<uint64_t> first = parse_uint(range.substr(0, dots));
        const std::optional<uint64_t> last =
            dots == std::string_view::npos ? first : parse_uint(range.substr(dots + 2));
        if (!first || !last || *first > *last || *last >= width) bad();
        return {static_cast<unsigned>(*first), static_cast<unsigned>(*last - *first + 1)};
    }

    std::string_view line_;
    const Match& match_;
    uint8_t table_;
    const PortNames& ports_;
    /// Whether the outer ([0]) and the second tag slot hold a tag at this
    /// point of the list (the match's outer tag, then pushes, pops and
    /// set_field to vlan_tci), as ovs-ofctl tracks them: after
    /// `set_field:0->vlan_tci` on two tags only the second slot holds one.
    bool tagged_[2];
    ActionList actions_;
};

}  // namespace

ActionList parse_actions(std::string_view line, size_t begin, size_t end, const Match& match, uint8_t table,
                         const PortNames& ports) {
    return ActionParser(line, match, table, ports).parse(begin, end);
}

}  // namespace flowpath::rules
