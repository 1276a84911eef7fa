// Actions and instructions: OpenFlow 1.3's and the Nicira extensions that
// ovs-ofctl writes for flowpath's actions (resubmit, ct, ct_clear), to and
// from flowpath's ActionList; and the consistency check of a flow entry.
#include <arpa/inet.h>

#include <cstring>

#include "oxm.hpp"
#include "wire.hpp"

namespace flowpath::of {

namespace {

using rules::Prereq;

// ofp_action_type.
constexpr uint16_t kActOutput = 0, kActCopyTtlOut = 11, kActCopyTtlIn = 12, kActSetMplsTtl = 15,
                   kActDecMplsTtl = 16, kActPushVlan = 17, kActPopVlan = 18, kActPushMpls = 19,
                   kActPopMpls = 20, kActSetQueue = 21, kActGroup = 22, kActSetNwTtl = 23, kActDecNwTtl = 24,
                   kActSetField = 25, kActPushPbb = 26, kActPopPbb = 27, kActExperimenter = 0xffff;
// ofp_instruction_type.
constexpr uint16_t kInstGotoTable = 1, kInstWriteMetadata = 2, kInstWriteActions = 3, kInstApplyActions = 4,
                   kInstClearActions = 5, kInstMeter = 6, kInstExperimenter = 0xffff;
// Nicira extension actions.
constexpr uint32_t kNicira = 0x00002320;
constexpr uint16_t kNxResubmit = 1, kNxRegLoad = 7, kNxResubmitTable = 14, kNxRegLoad2 = 33, kNxCt = 35,
                   kNxCtClear = 43;
constexpr uint16_t kNxCtCommit = 1;
constexpr uint8_t kNxCtRecircNone = 0xff;
constexpr uint16_t kOfp10InPort = 0xfff8;  // OFPP_IN_PORT in a 16-bit port field
constexpr uint32_t kNxmCtMark = 0x0001d604;        // NXM_NX_CT_MARK, 4 bytes
constexpr uint32_t kNxmCtMarkMasked = 0x0001d708;  // ... with a mask
constexpr uint32_t kOxmMetadata = 0x80000408;      // OXM_OF_METADATA, 8 bytes

// NXAST_REG_LOAD's body after its subtype: `bits` bits from bit `ofs` of
// `dst` get `value`.
struct RegLoad {
    unsigned ofs, bits;
    uint32_t dst;
    uint64_t value;

    bool value_fits() const { return bits == 64 || !(value >> bits); }
    uint64_t mask() const { return (bits == 64 ? ~uint64_t{0} : (uint64_t{1} << bits) - 1) << ofs; }
};

RegLoad read_reg_load(wire::Reader& body) {
    const uint16_t ofs_nbits = body.u16();
    const uint32_t dst = body.u32();
    const uint64_t value = body.u64();
    return RegLoad{static_cast<unsigned>(ofs_nbits >> 6), static_cast<unsigned>(ofs_nbits & 63) + 1u, dst, value};
}

// A ct(exec(...)) load of the mark: (value, mask) merged into the action.
void merge_mark(Action& ct, uint32_t value, uint32_t mask) {
    ct.ct_mark = (ct.ct_mark & ~mask) | (value & mask);
    ct.ct_mark_mask |= mask;
    ct.ct_flags |= kCtSetMark;
}

// The nested actions of NXAST_CT: only loads of ct_mark.
std::optional<OfError> decode_ct_exec(ByteView bytes, Action& ct) {
    wire::Reader r(bytes, err::kBadActionLen);
    while (r.remaining() > 0) {
        const uint16_t type = r.u16();
        const uint16_t len = r.u16();
        if (!r.ok() || len < 8 || len % 8 || len - 4u > r.remaining()) return err::kBadActionLen;
        wire::Reader body(r.take(len - 4u), err::kBadActionLen);
        if (type == kActSetField) {
            const ByteView oxm = body.rest();
            if (oxm.size() < 8 || wire::load_be(oxm.data(), 4) != kNxmCtMark) return err::kBadActionArgument;
            merge_mark(ct, static_cast<uint32_t>(wire::load_be(oxm.data() + 4, 4)), 0xffffffff);
            continue;
        }
        if (type != kActExperimenter || body.u32() != kNicira) return err::kBadActionArgument;
        const uint16_t subtype = body.u16();
        if (subtype == kNxRegLoad) {
            const RegLoad load = read_reg_load(body);
            if (!body.ok() || load.dst != kNxmCtMark || load.ofs + load.bits > 32 || !load.value_fits()) {
                return err::kBadActionArgument;
            }
            merge_mark(ct, static_cast<uint32_t>(load.value << load.ofs), static_cast<uint32_t>(load.mask()));
        } else if (subtype == kNxRegLoad2) {
            // A masked OXM: header, value, mask.
            const uint32_t head = body.u32();
            const uint32_t value = body.u32();
            const uint32_t mask = body.u32();
            if (!body.ok() || head != kNxmCtMarkMasked) return err::kBadActionArgument;
            if (value & ~mask) return err::kBadActionArgument;
            merge_mark(ct, value, mask);
        } else {
            return err::kBadActionArgument;  // nat and the rest are not supported
        }
    }
    return std::nullopt;
}

Decoded<Action> decode_nicira(wire::Reader& body, uint16_t len) {
    const uint16_t subtype = body.u16();
    if (!body.ok()) return err::kBadActionLen;
    switch (subtype) {
    case kNxResubmit:
    case kNxResubmitTable: {
        if (len != 16) return err::kBadActionLen;
        const uint16_t in_port = body.u16();
        const uint8_t table = body.u8();
        // 16-bit port numbers: 0xff00 and above are reserved, IN_PORT the only one meant here.
        if (in_port >= 0xff00 && in_port != kOfp10InPort) return err::kBadActionArgument;
        const uint32_t port = in_port == kOfp10InPort ? kResubmitSamePort : in_port;
        if (subtype == kNxResubmit) return Action::resubmit(port, kResubmitSameTable);
        if (table != kResubmitSameTable && table > kMaxTable) return err::kBadActionArgument;
        return Action::resubmit(port, table);
    }
    case kNxCtClear:
        if (len != 16) return err::kBadActionLen;
        return Action::of(ActionType::kCtClear);
    case kNxRegLoad: {
        // Only to metadata (ovs-ofctl's masked set_field:V/M->metadata).
        if (len != 24) return err::kBadActionLen;
        const RegLoad load = read_reg_load(body);
        if (load.dst != kOxmMetadata) return err::kBadActionExpType;
        if (load.ofs + load.bits > 64 || !load.value_fits()) return err::kBadActionArgument;
        return Action::set_metadata(load.value << load.ofs, load.mask(), true);
    }
    case kNxCt: {
        if (len < 24) return err::kBadActionLen;
        Action ct = Action::of(ActionType::kCt);
        const uint16_t flags = body.u16();
        const uint32_t zone_src = body.u32();
        const uint16_t zone = body.u16();
        const uint8_t table = body.u8();
        body.skip(3);
        const uint16_t alg = body.u16();
        if (flags & ~kNxCtCommit || zone_src != 0 || alg != 0) return err::kBadActionArgument;
        if (flags & kNxCtCommit) ct.ct_flags |= kCtCommit;
        ct.ct_zone = zone;
        if (table != kNxCtRecircNone) {
            if (table > kMaxTable) return err::kBadActionArgument;
            ct.ct_flags |= kCtRecirc;
            ct.table = table;
        }
        if (const std::optional<OfError> error = decode_ct_exec(body.rest(), ct)) return *error;
        if ((ct.ct_flags & kCtSetMark) && !(ct.ct_flags & kCtCommit)) return err::kBadActionArgument;
        return ct;
    }
    default:
        return err::kBadActionExpType;
    }
}

Decoded<Action> decode_one(uint16_t type, uint16_t len, wire::Reader& body, ActionContext context) {
    switch (type) {
    case kActOutput: {
        if (len != 16) return err::kBadActionLen;
        const uint32_t port = body.u32();
        const uint16_t max_len = body.u16();
        switch (port) {
        case kPortInPort: return Action::of(ActionType::kInPort);
        case kPortFlood: return Action::of(ActionType::kFlood);
        case kPortAll: return Action::of(ActionType::kAll);
        case kPortController: return Action::controller(max_len);
        case kPortTable:
            if (context != ActionContext::kPacketOut) return err::kBadOutPort;
            return Action::output(kPortTable);
        default:
            // NORMAL, LOCAL, ANY and 0 do not exist in flowpath.
            if (port == 0 || port > kPortMax) return err::kBadOutPort;
            return Action::output(port);
        }
    }
    case kActPushVlan: {
        if (len != 8) return err::kBadActionLen;
        const uint16_t ethertype = body.u16();
        if (ethertype != 0x8100 && ethertype != 0x88a8) return err::kBadActionArgument;
        return Action::push_vlan(ethertype);
    }
    case kActPopVlan:
        if (len != 8) return err::kBadActionLen;
        return Action::of(ActionType::kPopVlan);
    case kActDecNwTtl:
        if (len != 8) return err::kBadActionLen;
        return Action::of(ActionType::kDecTtl);
    case kActSetNwTtl: {
        if (len != 8) return err::kBadActionLen;
        const uint8_t ttl = body.u8();
        return Action::set(SetField::kNwTtl, &ttl);
    }
    case kActSetField:
        return oxm::decode_set_field(body.rest());
    case kActGroup:
        return err::kBadOutGroup;  // flowpath has no groups
    case kActExperimenter: {
        if (len < 16) return err::kBadActionLen;
        if (body.u32() != kNicira) return err::kBadActionExperimenter;
        return decode_nicira(body, len);
    }
    case kActCopyTtlOut: case kActCopyTtlIn: case kActSetMplsTtl: case kActDecMplsTtl: case kActPushMpls:
    case kActPopMpls: case kActSetQueue: case kActPushPbb: case kActPopPbb:
    default:
        return err::kBadActionType;
    }
}

void encode_nicira_header(wire::Writer& w, uint16_t len, uint16_t subtype) {
    w.u16(kActExperimenter);
    w.u16(len);
    w.u32(kNicira);
    w.u16(subtype);
}

// NXAST_REG_LOAD of `value`'s bits under `mask` (one run of ones) into `dst`.
void encode_reg_load(wire::Writer& w, uint32_t dst, uint64_t mask, uint64_t value) {
    const unsigned low = mask ? static_cast<unsigned>(__builtin_ctzll(mask)) : 0;
    const unsigned bits = static_cast<unsigned>(__builtin_popcountll(mask));
    encode_nicira_header(w, 24, kNxRegLoad);
    w.u16(static_cast<uint16_t>(low << 6 | (bits - 1)));
    w.u32(dst);
    w.u64((value & mask) >> low);
}

void encode_ct(wire::Writer& w, const Action& a) {
    const size_t start = w.size();
    encode_nicira_header(w, 0, kNxCt);
    w.u16((a.ct_flags & kCtCommit) ? kNxCtCommit : 0);
    w.u32(0);  // zone_src: an immediate zone
    w.u16(a.ct_zone);
    w.u8((a.ct_flags & kCtRecirc) ? a.table : kNxCtRecircNone);
    w.zeros(3);
    w.u16(0);  // alg
    if (a.ct_flags & kCtSetMark) {
        const uint32_t mask = a.ct_mark_mask;
        const unsigned low = mask ? static_cast<unsigned>(__builtin_ctz(mask)) : 0;
        const uint64_t run = mask >> low;
        if (mask == 0xffffffff) {
            w.u16(kActSetField);
            w.u16(16);
            w.u32(kNxmCtMark);
            w.u32(a.ct_mark);
            w.zeros(4);
        } else if ((run & (run + 1)) == 0) {  // one run of ones: NXAST_REG_LOAD, as Open vSwitch
            encode_reg_load(w, kNxmCtMark, mask, a.ct_mark);
        } else {
            encode_nicira_header(w, 24, kNxRegLoad2);
            w.u32(kNxmCtMarkMasked);
            w.u32(a.ct_mark);
            w.u32(mask);
            w.zeros(2);
        }
    }
    w.patch16(start + 2, static_cast<uint16_t>(w.size() - start));
}

}  // namespace

Decoded<ActionList> decode_actions(ByteView bytes, ActionContext context) {
    ActionList actions;
    wire::Reader r(bytes, err::kBadActionLen);
    while (r.remaining() > 0) {
        const uint16_t type = r.u16();
        const uint16_t len = r.u16();
        if (!r.ok() || len < 8 || len % 8 != 0 || len - 4u > r.remaining()) return err::kBadActionLen;
        wire::Reader body(r.take(len - 4u), err::kBadActionLen);
        Decoded<Action> action = decode_one(type, len, body, context);
        if (!action.ok()) return action.error();
        if (!body.ok()) return err::kBadActionLen;
        actions.push_back(action.value());
    }
    return actions;
}

void encode_actions(const ActionList& actions, Bytes& out) {
    wire::Writer w(out);
    auto output = [&](uint32_t port, uint16_t max_len) {
        w.u16(kActOutput);
        w.u16(16);
        w.u32(port);
        w.u16(max_len);
        w.zeros(6);
    };
    for (const Action& a : actions) {
        switch (a.type) {
        case ActionType::kOutput: output(a.port, 0); break;
        case ActionType::kInPort: output(kPortInPort, 0); break;
        case ActionType::kFlood: output(kPortFlood, 0); break;
        case ActionType::kAll: output(kPortAll, 0); break;
        case ActionType::kController: output(kPortController, static_cast<uint16_t>(a.port)); break;
        case ActionType::kSetField:
            if (a.field == SetField::kNwTtl) {
                w.u16(kActSetNwTtl);
                w.u16(8);
                w.u8(a.value[0]);
                w.zeros(3);
            } else {
                const size_t start = w.size();
                w.u16(kActSetField);
                w.u16(0);
                oxm::encode_set_field(a, out);
                w.pad_from(start);
                w.patch16(start + 2, static_cast<uint16_t>(w.size() - start));
            }
            break;
        case ActionType::kDecTtl:
            w.u16(kActDecNwTtl);
            w.u16(8);
            w.zeros(4);
            break;
        case ActionType::kPushVlan:
            w.u16(kActPushVlan);
            w.u16(8);
            w.u16(a.ethertype);
            w.zeros(2);
            break;
        case ActionType::kPopVlan:
            w.u16(kActPopVlan);
            w.u16(8);
            w.zeros(4);
            break;
        case ActionType::kResubmit: {
            const bool same_table = a.table == kResubmitSameTable;
            encode_nicira_header(w, 16, same_table ? kNxResubmit : kNxResubmitTable);
            w.u16(a.port == kResubmitSamePort ? kOfp10InPort : static_cast<uint16_t>(a.port));
            w.u8(a.table);
            w.zeros(3);
            break;
        }
        case ActionType::kSetMetadata: {
            const MetadataWrite write = write_metadata_of(a);
            if (a.ct_flags & kMetadataLoad) {
                encode_reg_load(w, kOxmMetadata, write.mask, write.value);
            } else {
                w.u16(kActSetField);
                w.u16(16);
                w.u32(kOxmMetadata);
                w.u64(write.value);
            }
            break;
        }
        case ActionType::kCt: encode_ct(w, a); break;
        case ActionType::kCtClear:
            encode_nicira_header(w, 16, kNxCtClear);
            w.zeros(6);
            break;
        case ActionType::kGotoTable:
        case ActionType::kClearActions:
        case ActionType::kWriteMetadata:
            break;  // instructions, written by encode_instructions
        case ActionType::kRecirc:
            break;  // datapath only: no rule holds one
        }
    }
}

Decoded<Instructions> decode_instructions(ByteView bytes) {
    Instructions result;
    std::optional<uint8_t> goto_table;
    std::optional<MetadataWrite> write_metadata;
    bool clear_actions = false;
    bool seen[7] = {};
    wire::Reader r(bytes, err::kBadInstLen);
    while (r.remaining() > 0) {
        const uint16_t type = r.u16();
        const uint16_t len = r.u16();
        if (!r.ok() || len < 8 || len % 8 != 0 || len - 4u > r.remaining()) return err::kBadInstLen;
        wire::Reader body(r.take(len - 4u), err::kBadInstLen);
        if (type >= 1 && type <= 6) {
            if (seen[type]) return err::kUnsupInstruction;  // each at most once
            seen[type] = true;
        }
        switch (type) {
        case kInstGotoTable:
            if (len != 8) return err::kBadInstLen;
            goto_table = body.u8();
            if (*goto_table > kMaxTable) return err::kBadGotoTable;
            break;
        case kInstWriteMetadata: {
            if (len != 24) return err::kBadInstLen;
            body.skip(4);
            MetadataWrite write;
            write.value = body.u64();
            write.mask = body.u64();
            write_metadata = write;
            break;
        }
        case kInstApplyActions: {
            body.skip(4);
            Decoded<ActionList> actions = decode_actions(body.rest(), ActionContext::kFlow);
            if (!actions.ok()) return actions.error();
            result.actions = std::move(actions.value());
            break;
        }
        case kInstClearActions:
            if (len != 8) return err::kBadInstLen;
            clear_actions = true;
            break;
        case kInstWriteActions:
        case kInstMeter:
            return err::kUnsupInstruction;
        case kInstExperimenter:
            return err::kBadInstExperimenter;
        default:
            return err::kUnknownInstruction;
        }
        if (!body.ok()) return err::kBadInstLen;
    }
    // OpenFlow's instruction order, whatever order they came in.
    if (clear_actions) result.actions.push_back(Action::of(ActionType::kClearActions));
    if (write_metadata) result.actions.push_back(Action::write_metadata(write_metadata->value, write_metadata->mask));
    if (goto_table) result.actions.push_back(Action::goto_table(*goto_table));
    return result;
}

void encode_instructions(const Instructions& instructions, Bytes& out) {
    wire::Writer w(out);
    const ActionList& actions = instructions.actions;
    // The applied actions are those before the instructions at the end.
    size_t applied = actions.size();
    while (applied > 0 && is_instruction(actions[applied - 1].type)) --applied;
    if (applied > 0) {
        const size_t start = w.size();
        w.u16(kInstApplyActions);
        w.u16(0);
        w.zeros(4);
        encode_actions(ActionList(actions.begin(), actions.begin() + static_cast<ptrdiff_t>(applied)), out);
        w.patch16(start + 2, static_cast<uint16_t>(w.size() - start));
    }
    for (size_t i = applied; i < actions.size(); ++i) {
        const Action& a = actions[i];
        switch (a.type) {
        case ActionType::kClearActions:
            w.u16(kInstClearActions);
            w.u16(8);
            w.zeros(4);
            break;
        case ActionType::kWriteMetadata: {
            const MetadataWrite write = write_metadata_of(a);
            w.u16(kInstWriteMetadata);
            w.u16(24);
            w.zeros(4);
            w.u64(write.value);
            w.u64(write.mask);
            break;
        }
        default:  // kGotoTable
            w.u16(kInstGotoTable);
            w.u16(8);
            w.u8(a.table);
            w.zeros(3);
            break;
        }
    }
}

std::optional<OfError> check_rule(const Match& match, uint8_t table, const ActionList& actions,
                                  uint32_t port_count, ActionContext context) {
    auto port_ok = [&](uint32_t port) { return port >= 1 && port <= port_count; };
    if (match.mask.in_port && !port_ok(match.value.in_port)) return err::kBadValue;
    // The tags in the outer and second slot at this point of the list, as
    // the rule parser tracks them.
    bool tagged[2] = {rules::match_has_vlan(match), false};
    auto need = [&](Prereq prereq) { return !rules::missing_prereq(match, prereq); };
    for (size_t i = 0; i < actions.size(); ++i) {
        const Action& a = actions[i];
        switch (a.type) {
        case ActionType::kOutput:
            if (!port_ok(a.port) && !(context == ActionContext::kPacketOut && a.port == kPortTable)) {
                return err::kBadOutPort;
            }
            break;
        case ActionType::kSetField: {
            if (a.field == SetField::kVlanVid || a.field == SetField::kVlanPcp) {
                if (!tagged[0]) return err::kMatchInconsistent;
            } else if (a.field == SetField::kVlanTci) {
                uint16_t tci;
                std::memcpy(&tci, a.value, 2);
                tagged[0] = (ntohs(tci) & kVlanPresent) != 0;
            } else if (a.field == SetField::kInPort) {
                if (!port_ok(a.port)) return err::kBadSetArgument;
            } else if (a.field == SetField::kNwTtl) {
                if (!need(Prereq::kIpAny)) return err::kMatchInconsistent;
            } else if (const oxm::Field* field = oxm::find_set(a.field); !field || !need(field->prereq)) {
                return err::kMatchInconsistent;
            }
            break;
        }
        case ActionType::kDecTtl:
            if (!need(Prereq::kIpAny)) return err::kMatchInconsistent;
            break;
        case ActionType::kPushVlan:
            if (tagged[1]) return err::kBadActionArgument;  // at most two tags, as the rule parser
            tagged[1] = tagged[0];
            tagged[0] = true;
            break;
        case ActionType::kPopVlan:
            if (!tagged[0]) return err::kMatchInconsistent;
            tagged[0] = tagged[1];
            tagged[1] = false;
            break;
        case ActionType::kResubmit:
            if (a.port != kResubmitSamePort && !port_ok(a.port)) return err::kBadActionArgument;
            break;
        case ActionType::kGotoTable:
            if (context != ActionContext::kFlow || i + 1 != actions.size() || a.table <= table) {
                return err::kBadGotoTable;
            }
            break;
        case ActionType::kCt:
            if (!need(Prereq::kIpAny)) return err::kMatchInconsistent;
            if ((a.ct_flags & kCtCommit) && (match.value.ct_state & kCtInvalid)) return err::kBadActionArgument;
            break;
        case ActionType::kInPort: case ActionType::kFlood: case ActionType::kAll: case ActionType::kController:
        case ActionType::kCtClear:
            break;
        case ActionType::kClearActions:
        case ActionType::kWriteMetadata:
            if (context != ActionContext::kFlow) return err::kBadActionType;  // never decoded in a PACKET_OUT
            break;
        case ActionType::kSetMetadata:
            break;  // a packet-out's next OUTPUT:TABLE or resubmit carries it (run_packet_out)
        case ActionType::kRecirc:
            return err::kBadActionType;  // datapath only: never decoded
        }
    }
    return std::nullopt;
}

}  // namespace flowpath::of
