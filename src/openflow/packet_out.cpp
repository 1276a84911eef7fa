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

PacketInEvent packet_out_packet_in(std::span<const uint8_t> bytes, uint32_t in_port, uint32_t max_len) {
    PacketInEvent in;
    in.reason = of::kReasonAction;
    in.table_id = of::kTableAll;  // no table sent it
    in.cookie = ~uint64_t{0};
    in.in_port = in_port;
    in.max_len = max_len;
    in.packet.assign(bytes.begin(), bytes.end());
    return in;
}

std::optional<of::OfError> run_packet_out(std::span<const uint8_t> packet, uint32_t in_port,
                                          const ActionList& actions, uint32_t port_count, PacketOutSink& sink) {
    std::vector<uint8_t> buffer(kRoom + packet.size() + kRoom);
    std::memcpy(buffer.data() + kRoom, packet.data(), packet.size());
    PacketBuffer pkt{buffer.data() + kRoom, static_cast<uint32_t>(packet.size()), kRoom, kRoom};
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
                sink.table(bytes(), in_port);
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
            sink.controller(bytes(), in_port, a.port);
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
            // resubmit, ct: a packet-out runs rules only from table 0 (OUTPUT:TABLE).
            return of::err::kBadActionType;
        }
        parse_flow_key(pkt.data, pkt.len, in_port, key, layout);
    }
    return std::nullopt;
}

}  // namespace flowpath
