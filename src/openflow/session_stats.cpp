// The multipart requests of a session: DESC, FLOW, AGGREGATE, TABLE,
// PORT_STATS, PORT_DESC and TABLE_FEATURES (read only).
#include "session.hpp"

namespace flowpath::of {

void Session::count_sent(size_t from) {
    // A multipart reply may be several messages.
    for (size_t at = from; at < out_.size(); at += peek_header(ByteView(out_).subspan(at))->length) {
        ++host_.counters.messages_out;
    }
}

void Session::handle_multipart(const Header& h, ByteView message) {
    Decoded<MultipartRequest> m = decode<MultipartRequest>(message);
    if (!m.ok()) return send_error(m.error(), h.xid, message);
    const MultipartRequest& request = m.value();
    const auto type = static_cast<MultipartType>(request.type);
    // Only table features may come in parts, and flowpath does not take
    // table-features changes.
    if (request.flags & kMultipartMore && type != MultipartType::kTableFeatures) {
        return send_error(err::kBadMultipart, h.xid, message);
    }
    const size_t before = out_.size();
    MultipartReplyWriter reply(type, h.xid, out_);
    switch (type) {
    case MultipartType::kDesc:
        if (!request.body.empty()) return send_error(err::kBadLen, h.xid, message);
        reply.add(host_.options.desc);
        break;
    case MultipartType::kFlow:
    case MultipartType::kAggregate:
        return flow_stats(h, message, request, type == MultipartType::kAggregate);
    case MultipartType::kTable: {
        if (!request.body.empty()) return send_error(err::kBadLen, h.xid, message);
        // Every table exists in OpenFlow terms, empty or not.
        std::vector<TableStats> tables(kMaxTable + 1);
        for (unsigned t = 0; t <= kMaxTable; ++t) tables[t].table_id = static_cast<uint8_t>(t);
        for (const TableStats& s : host_.backend.table_stats()) {
            if (s.table_id <= kMaxTable) tables[s.table_id] = s;
        }
        for (const TableStats& s : tables) reply.add(s);
        break;
    }
    case MultipartType::kPortStats: {
        Decoded<PortStatsRequest> r = decode_body<PortStatsRequest>(request.body);
        if (!r.ok()) return send_error(r.error(), h.xid, message);
        const uint32_t port = r.value().port_no;
        if (port != kPortAny && (port == 0 || port > port_count())) return send_error(err::kBadPort, h.xid, message);
        for (const PortStats& s : host_.backend.port_stats()) {
            if (port == kPortAny || s.port_no == port) reply.add(s);
        }
        break;
    }
    case MultipartType::kPortDesc:
        if (!request.body.empty()) return send_error(err::kBadLen, h.xid, message);
        for (const PortDesc& p : host_.backend.port_descs()) reply.add(p);
        break;
    case MultipartType::kTableFeatures: {
        // ovs-ofctl asks for them (table names) before every flow_mod.
        if (!request.body.empty()) return send_error(err::kTableFeaturesEperm, h.xid, message);
        for (unsigned t = 0; t <= kMaxTable; ++t) {
            TableFeatures f;
            f.table_id = static_cast<uint8_t>(t);
            f.max_entries = 1000000;
            f.metadata_match = f.metadata_write = ~uint64_t{0};  // all 64 bits, as Open vSwitch
            f.properties = table_feature_properties(f.table_id);
            reply.add(f);
        }
        break;
    }
    case MultipartType::kExperimenter:
        return send_error(err::kBadExperimenter, h.xid, message);
    default:
        // Queues, groups, meters: flowpath has none.
        return send_error(err::kBadMultipart, h.xid, message);
    }
    reply.finish();
    count_sent(before);
}

void Session::flow_stats(const Header& h, ByteView message, const MultipartRequest& request, bool aggregate) {
    Decoded<FlowStatsRequest> r = decode_body<FlowStatsRequest>(request.body);
    if (!r.ok()) return send_error(r.error(), h.xid, message);
    const FlowStatsRequest& q = r.value();
    if (q.table_id > kMaxTable && q.table_id != kTableAll) return send_error(err::kBadTableId, h.xid, message);
    std::vector<FlowEntry> entries;
    // flowpath has no groups: a request for rules that use one gets none.
    if (q.out_group == kGroupAny) {
        FlowSelector select;
        select.filter.match = q.match.match;
        if (q.table_id != kTableAll) select.filter.table = q.table_id;
        select.filter.cookie = q.cookie & q.cookie_mask;
        select.filter.cookie_mask = q.cookie_mask;
        select.out_port = q.out_port;
        host_.backend.dump_flows(select, entries);
    }
    const size_t before = out_.size();
    MultipartReplyWriter reply(aggregate ? MultipartType::kAggregate : MultipartType::kFlow, h.xid, out_);
    if (aggregate) {
        AggregateStats sum;
        for (const FlowEntry& e : entries) {
            sum.packet_count += e.packets;
            sum.byte_count += e.bytes;
            ++sum.flow_count;
        }
        reply.add(sum);
    } else {
        FlowStats s;
        for (FlowEntry& e : entries) {
            s.table_id = e.rule.table;
            s.duration_sec = e.duration_sec;
            s.duration_nsec = e.duration_nsec;
            s.priority = e.rule.priority;
            s.idle_timeout = e.rule.idle_timeout;
            s.hard_timeout = e.rule.hard_timeout;
            s.flags = e.flags;
            s.cookie = e.rule.cookie;
            s.packet_count = e.packets;
            s.byte_count = e.bytes;
            s.match.match = e.rule.match;
            s.instructions.actions = std::move(e.rule.actions);
            reply.add(s);
        }
    }
    reply.finish();
    count_sent(before);
}

}  // namespace flowpath::of
