// A PACKET_OUT's actions run on its packet's bytes, as the executor runs a
// datapath action list: what every backend does with a packet-out before it
// hands the results to its own ports.
#include <cstring>
#include <vector>

#include "flowpath/actions.hpp"
#include "flowpath/openflow.hpp"
#include "flowpath/packet.hpp"

namespace flowpath {

namespace {
constexpr size_t kRoom = 64;  // head- and tailroom of the working packet
}

PacketInEvent packet_out_packet_in(std::span<const uint8_t> bytes, uint32_t in_port, uint64_t metadata,
                                   uint32_t max_len) {
    PacketInEvent in;
    in.reason = of::kReasonAction;
    in.table_id = 0;  // as Open vSwitch 3.1: a packet-out translates from table 0
    in.cookie = ~uint64_t{0};
    in.in_port = in_port;
    in.metadata = metadata;
    in.max_len = max_len;
    in.packet.assign(bytes.begin(), bytes.end());
    return in;
}

std::optional<of::OfError> run_packet_out(std::span<const uint8_t> packet, uint32_t in_port,
                                          const ActionList& actions, uint32_t port_count, PacketOutSink& sink) {
    std::vector<uint8_t> buffer(kRoom + packet.size() + kRoom);
    std::memcpy(buffer.data() + kRoom, packet.data(), packet.size());
    PacketBuffer pkt{buffer.data() + kRoom, static_cast<uint32_t>(packet.size()), kRoom, kRoom};
    // OpenFlow metadata: 0 as the packet enters, as for a received one
    // (Open vSwitch's packet-out), then what set_field to it makes it.
    uint64_t metadata = 0;
    FlowKey key;
    PacketLayout layout;
    parse_flow_key(pkt.data, pkt.len, in_port, key, layout);
    const auto bytes = [&] { return std::span<const uint8_t>(pkt.data, pkt.len); };
    const auto output = [&](uint32_t port) {
        if (port >= 1 && port <= port_count && port != in_port) sink.send(port, bytes());
    };
    for (const Action& a : actions) {
        switch (a.type) {
        case ActionType::kOutput:
            if (a.port == of::kPortTable) {
                sink.table(bytes(), PacketOutEntry{in_port, 0, metadata, in_port});
            } else {
                output(a.port);
            }
            break;
        case ActionType::kInPort:
            if (in_port >= 1 && in_port <= port_count) sink.send(in_port, bytes());
            break;
        case ActionType::kFlood:
        case ActionType::kAll:
            for (uint32_t port = 1; port <= port_count; ++port) output(port);
            break;
        case ActionType::kController:
            sink.controller(bytes(), in_port, metadata, a.port);
            break;
        case ActionType::kSetMetadata: {
            const MetadataWrite write = write_metadata_of(a);
            metadata = (metadata & ~write.mask) | (write.value & write.mask);
            break;
        }
        case ActionType::kResubmit:
            // The rules from that table, as OUTPUT:TABLE from table 0 (a
            // packet-out's own table, the one resubmit(P) means); a port is
            // the first lookup's only, as in Open vSwitch.
            sink.table(bytes(), PacketOutEntry{in_port, a.table == kResubmitSameTable ? uint8_t{0} : a.table, metadata,
                                               a.port == kResubmitSamePort ? in_port : a.port});
            break;
        case ActionType::kSetField:
            if (a.field == SetField::kInPort) {
                in_port = a.port;
            } else {
                set_field(pkt, layout, a.field, a.value);
            }
            break;
        case ActionType::kDecTtl:
            if (key.nw_ttl <= 1) return std::nullopt;  // expired: nothing after it happens
            dec_ttl(pkt, layout);
            break;
        case ActionType::kPushVlan:
            if (!push_vlan(pkt, layout, a.ethertype)) return of::err::kBadActionArgument;
            break;
        case ActionType::kPopVlan:
            pop_vlan(pkt, layout);
            break;
        default:
            // ct: the tracker is the workers' (a packet-out's packet meets
            // it only through the rules).
            return of::err::kBadActionType;
        }
        parse_flow_key(pkt.data, pkt.len, in_port, key, layout);
    }
    return std::nullopt;
}

std::optional<uint32_t> packet_out_recirc_id(const RuleSet& rules, const PacketOutEntry& entry) {
    if (entry.table == 0 && entry.metadata == 0 && entry.lookup_in_port == entry.in_port) return 0;
    const uint32_t id = rules.freeze(entry.table, entry.in_port, entry.in_port, entry.metadata, entry.lookup_in_port);
    if (id == 0) return std::nullopt;
    return id;
}

}  // namespace flowpath
