// One connection's protocol: negotiation, dispatch, flow_mod batches, roles,
// configuration and asynchronous messages. Multipart requests are in
// session_stats.cpp.
#include "session.hpp"

#include <algorithm>
#include <cstring>

#include "flowpath/log.hpp"
#include "flowpath/packet.hpp"

namespace flowpath::of {

namespace {

constexpr size_t kMaxErrorData = kMaxMessageLen - kHeaderLen - 4;  // what fits behind an error's header
constexpr uint16_t kDefaultMissSendLen = 128;
constexpr uint16_t kFragMask = 3;        // OFPC_FRAG_MASK; only OFPC_FRAG_NORMAL (0) is supported
constexpr size_t kMaxBatch = 4096;       // flow_mods handed to the backend at once at most

// The default asynchronous configuration (OpenFlow 1.3 section 6.1.1):
// master/equal get packet-ins for no-match and action, every port status
// and flow removal; slaves get port status only.
SetAsync default_async() {
    SetAsync a;
    a.packet_in_mask[0] = (1u << kReasonNoMatch) | (1u << kReasonAction);
    a.port_status_mask[0] = a.port_status_mask[1] = 0x7;
    a.flow_removed_mask[0] = 0xf;
    return a;
}

// OpenFlow's flow_mod in flowpath's terms; the error when it cannot be.
// The flow_mod's actions move into the request.
Decoded<FlowModRequest> to_request(FlowMod& m, uint32_t port_count) {
    if (m.command > kFlowDeleteStrict) return err::kBadCommand;
    if (m.flags & ~kFlowModFlagsAll) return err::kBadFlags;
    FlowModRequest r;
    r.command = static_cast<FlowModCommand>(m.command);
    r.flags = m.flags;
    const bool all_tables = m.table_id == kTableAll;
    if (!all_tables && m.table_id > kMaxTable) return err::kFlowModBadTable;
    if (r.command == FlowModCommand::kAdd) {
        if (all_tables) return err::kFlowModBadTable;
        r.rule.table = m.table_id;
        r.rule.priority = m.priority;
        r.rule.cookie = m.cookie;
        r.rule.idle_timeout = m.idle_timeout;
        r.rule.hard_timeout = m.hard_timeout;
        r.rule.match = m.match.match;
    }
    const bool deleting = r.command == FlowModCommand::kDelete || r.command == FlowModCommand::kDeleteStrict;
    if (!deleting) {
        // A modify of every table is checked as a rule of table 0.
        if (const std::optional<OfError> error = check_rule(m.match.match, all_tables ? 0 : m.table_id,
                                                            m.instructions.actions, port_count, ActionContext::kFlow)) {
            return *error;
        }
        r.rule.actions = std::move(m.instructions.actions);
    }
    if (r.command != FlowModCommand::kAdd) {
        r.select.filter.match = m.match.match;
        if (!all_tables) r.select.filter.table = m.table_id;
        r.select.strict = r.command == FlowModCommand::kModifyStrict || r.command == FlowModCommand::kDeleteStrict;
        if (r.select.strict) r.select.filter.priority = m.priority;
        r.select.filter.cookie = m.cookie & m.cookie_mask;
        r.select.filter.cookie_mask = m.cookie_mask;
        if (deleting) r.select.out_port = m.out_port;
    }
    return r;
}

// A PACKET_IN's match as Open vSwitch 3.1 fills it (flow_get_metadata):
// in_port, each of metadata, ct_state (with the packet's eth_type), ct_zone
// and ct_mark that is not zero, and the connection's tuple. The encoder
// writes them in its order, Open vSwitch's.
void packet_in_match(const PacketInEvent& event, OxmMatch& oxm) {
    Match& match = oxm.match;
    oxm.ct_tuple = event.ct_tuple;
    match.value.in_port = event.in_port;
    match.mask.in_port = 0xffffffff;
    if (event.metadata) {
        match.metadata = event.metadata;
        match.metadata_mask = ~uint64_t{0};
    }
    if (event.ct_state) {
        match.value.dl_type = event.dl_type;
        match.mask.dl_type = 0xffff;
        match.value.ct_state = event.ct_state;
        match.mask.ct_state = 0xff;
    }
    if (event.ct_zone) {
        match.value.ct_zone = event.ct_zone;
        match.mask.ct_zone = 0xffff;
    }
    if (event.ct_mark) {
        match.value.ct_mark = event.ct_mark;
        match.mask.ct_mark = 0xffffffff;
    }
}

}  // namespace

Session::Session(SessionHost& host, bool passive, std::string peer, Clock::time_point now)
    : host_(host), passive_(passive), peer_(std::move(peer)), last_rx_(now),
      // Service connections get no asynchronous messages until they ask.
      miss_send_len_(passive ? 0 : kDefaultMissSendLen), async_(default_async()) {
    send(Hello{}, next_xid_++);
}

void Session::sent(size_t bytes) {
    out_sent_ += bytes;
    if (out_sent_ == out_.size()) {
        out_.clear();
        out_sent_ = 0;
    } else if (out_sent_ > (1u << 16) && out_sent_ > out_.size() / 2) {
        out_.erase(out_.begin(), out_.begin() + static_cast<ptrdiff_t>(out_sent_));
        out_sent_ = 0;
    }
}

template <typename M>
void Session::send(const M& message, uint32_t xid) {
    encode(message, xid, out_);
    ++host_.counters.messages_out;
}

void Session::send_error(OfError error, uint32_t xid, ByteView request) {
    // The whole request, as Open vSwitch sends it (OpenFlow asks for at
    // least 64 bytes), as far as one message holds it.
    ErrorMsg m;
    m.error = error;
    m.data.assign(request.begin(),
                  request.begin() + static_cast<ptrdiff_t>(std::min(request.size(), kMaxErrorData)));
    send(m, xid);
    ++host_.counters.errors_sent;
    log(LogLevel::debug, "openflow ", peer_, ": ", error_name(error), " for xid ", xid);
}

uint32_t Session::port_count() {
    if (!port_count_) port_count_ = host_.backend.port_count();
    return *port_count_;
}

void Session::receive(ByteView bytes, Clock::time_point now) {
    if (!bytes.empty()) {
        last_rx_ = now;
        probe_sent_ = false;
    }
    in_.insert(in_.end(), bytes.begin(), bytes.end());
    size_t at = 0;
    while (!closing_ && in_.size() - at >= kHeaderLen) {
        const Header h = *peek_header(ByteView(in_).subspan(at));
        if (h.length < kHeaderLen) {
            // No way to find the next message: say why and hang up.
            send_error(err::kBadLen, h.xid, ByteView(in_).subspan(at, kHeaderLen));
            closing_ = true;
            break;
        }
        if (in_.size() - at < h.length) break;
        // Stop at a full output buffer: the rest waits for the peer to read.
        if (backpressured()) break;
        ++host_.counters.messages_in;
        handle(h, ByteView(in_).subspan(at, h.length));
        at += h.length;
    }
    flush_flow_mods();
    in_.erase(in_.begin(), in_.begin() + static_cast<ptrdiff_t>(at));
    port_count_.reset();
}

void Session::handle(const Header& h, ByteView message) {
    if (h.type == static_cast<uint8_t>(MsgType::kHello)) return handle_hello(h, message);
    if (!established_) {
        // Before HELLO only OpenFlow 1.3 itself is understood.
        if (h.version != kVersion) {
            send_error(err::kHelloIncompatible, h.xid, message);
            closing_ = true;
            return;
        }
    } else if (h.version != kVersion) {
        flush_flow_mods();
        return send_error(err::kBadVersion, h.xid, message);
    }
    if (h.type == static_cast<uint8_t>(MsgType::kFlowMod)) return handle_flow_mod(h, message);
    // Everything else happens after the flow_mods before it.
    flush_flow_mods();
    switch (static_cast<MsgType>(h.type)) {
    case MsgType::kPacketOut: return handle_packet_out(h, message);
    case MsgType::kMultipartRequest: return handle_multipart(h, message);
    case MsgType::kRoleRequest: return handle_role(h, message);
    case MsgType::kGetConfigRequest: case MsgType::kSetConfig: case MsgType::kGetAsyncRequest:
    case MsgType::kSetAsync:
        return handle_config(h, message);
    default: return handle_other(h, message);
    }
}

void Session::handle_hello(const Header& h, ByteView message) {
    Decoded<Hello> hello = decode<Hello>(message);
    if (!hello.ok() || !(hello.value().versions & (1u << kVersion))) {
        ErrorMsg m;
        m.error = err::kHelloIncompatible;
        const std::string text = "flowpath speaks OpenFlow 1.3 (version 0x04) only";
        m.data.assign(text.begin(), text.end());
        send(m, h.xid);
        ++host_.counters.errors_sent;
        log(LogLevel::info, "openflow ", peer_, ": no common version (peer's bitmap 0x",
            hello.ok() ? hello.value().versions : 0, "), closing");
        closing_ = true;
        return;
    }
    if (!established_) {
        established_ = true;
        ++host_.counters.connections;
        log(LogLevel::info, "openflow ", peer_, ": connected (OpenFlow 1.3)");
    }
}

void Session::handle_flow_mod(const Header& h, ByteView message) {
    ++host_.counters.flow_mods;
    PendingMod pending{h.xid, message, std::nullopt, false};
    if (role_ == kRoleSlave) {
        pending.error = err::kIsSlave;
    } else if (Decoded<FlowMod> m = decode<FlowMod>(message); !m.ok()) {
        pending.error = m.error();
    } else if (Decoded<FlowModRequest> r = to_request(m.value(), port_count()); !r.ok()) {
        pending.error = r.error();
    } else {
        const bool no_group_selects = m.value().out_group != kGroupAny &&
                                      (m.value().command == kFlowDelete || m.value().command == kFlowDeleteStrict);
        // flowpath has no groups: a delete restricted to one selects nothing.
        if (!no_group_selects) {
            mods_.push_back(std::move(r.value()));
            pending.to_backend = true;
        }
        if (m.value().buffer_id != kNoBuffer) pending.error = err::kBufferUnknown;  // applied all the same
    }
    pending_.push_back(std::move(pending));
    if (mods_.size() >= kMaxBatch) flush_flow_mods();
}

void Session::flush_flow_mods() {
    if (pending_.empty()) return;
    results_.assign(mods_.size(), std::nullopt);
    if (!mods_.empty()) host_.backend.apply_flow_mods(mods_, results_);
    size_t next = 0;
    for (const PendingMod& p : pending_) {
        std::optional<OfError> error = p.error;
        if (p.to_backend) {
            if (results_[next]) error = results_[next];
            ++next;
        }
        if (error) send_error(*error, p.xid, p.request);
    }
    pending_.clear();
    mods_.clear();
}

void Session::handle_packet_out(const Header& h, ByteView message) {
    if (role_ == kRoleSlave) return send_error(err::kIsSlave, h.xid, message);
    Decoded<PacketOut> p = decode<PacketOut>(message);
    if (!p.ok()) return send_error(p.error(), h.xid, message);
    const PacketOut& out = p.value();
    if (out.buffer_id != kNoBuffer) return send_error(err::kBufferUnknown, h.xid, message);
    const uint32_t ports = port_count();
    if (out.in_port != kPortController && (out.in_port == 0 || out.in_port > ports)) {
        return send_error(err::kBadPort, h.xid, message);
    }
    if (out.data.empty() || out.data.size() > 0xffff) return send_error(err::kBadPacket, h.xid, message);
    // The actions' prerequisites are checked against the packet itself.
    Match packet;
    PacketLayout layout;
    parse_flow_key(out.data.data(), static_cast<uint32_t>(out.data.size()),
                   out.in_port == kPortController ? 0 : out.in_port, packet.value, layout);
    std::memset(&packet.mask, 0xff, sizeof(packet.mask));
    packet.mask.in_port = 0;
    if (std::optional<OfError> error = check_rule(packet, 0, out.actions, ports, ActionContext::kPacketOut)) {
        return send_error(*error, h.xid, message);
    }
    if (std::optional<OfError> error = host_.backend.packet_out(out.data, out.in_port, out.actions)) {
        return send_error(*error, h.xid, message);
    }
}

void Session::handle_role(const Header& h, ByteView message) {
    Decoded<RoleRequest> r = decode<RoleRequest>(message);
    if (!r.ok()) return send_error(r.error(), h.xid, message);
    const uint32_t role = r.value().role;
    if (role > kRoleSlave) return send_error(err::kBadRole, h.xid, message);
    if (role == kRoleMaster || role == kRoleSlave) {
        const uint64_t generation = r.value().generation_id;
        // Generation ids compare as a wrapping sequence (OpenFlow 1.3 6.3.5).
        if (host_.generation_id && static_cast<int64_t>(generation - *host_.generation_id) < 0) {
            return send_error(err::kRoleStale, h.xid, message);
        }
        host_.generation_id = generation;
    }
    if (role != kRoleNoChange) {
        if (role == kRoleMaster) host_.demote_other_masters(*this);
        role_ = role;
    }
    RoleReply reply;
    reply.role = role_;
    reply.generation_id = host_.generation_id.value_or(0);
    send(reply, h.xid);
}

void Session::handle_config(const Header& h, ByteView message) {
    switch (static_cast<MsgType>(h.type)) {
    case MsgType::kGetConfigRequest: {
        if (!decode<GetConfigRequest>(message).ok()) return send_error(err::kBadLen, h.xid, message);
        GetConfigReply reply;
        reply.flags = config_flags_;
        reply.miss_send_len = miss_send_len_;
        return send(reply, h.xid);
    }
    case MsgType::kSetConfig: {
        Decoded<SetConfig> c = decode<SetConfig>(message);
        if (!c.ok()) return send_error(c.error(), h.xid, message);
        if (c.value().flags & kFragMask) return send_error(err::kConfigBadFlags, h.xid, message);
        config_flags_ = c.value().flags;
        miss_send_len_ = c.value().miss_send_len;
        return;
    }
    case MsgType::kGetAsyncRequest: {
        if (!decode<GetAsyncRequest>(message).ok()) return send_error(err::kBadLen, h.xid, message);
        GetAsyncReply reply;
        std::memcpy(reply.packet_in_mask, async_.packet_in_mask, sizeof(reply.packet_in_mask));
        std::memcpy(reply.port_status_mask, async_.port_status_mask, sizeof(reply.port_status_mask));
        std::memcpy(reply.flow_removed_mask, async_.flow_removed_mask, sizeof(reply.flow_removed_mask));
        return send(reply, h.xid);
    }
    default: {
        Decoded<SetAsync> a = decode<SetAsync>(message);
        if (!a.ok()) return send_error(a.error(), h.xid, message);
        async_ = a.value();
        return;
    }
    }
}

void Session::handle_other(const Header& h, ByteView message) {
    switch (static_cast<MsgType>(h.type)) {
    case MsgType::kEchoRequest: {
        Decoded<EchoRequest> e = decode<EchoRequest>(message);
        if (!e.ok()) return send_error(e.error(), h.xid, message);
        EchoReply reply;
        reply.data = std::move(e.value().data);
        return send(reply, h.xid);
    }
    case MsgType::kEchoReply:
        return;  // any message proves the peer alive
    case MsgType::kError:
        if (Decoded<ErrorMsg> e = decode<ErrorMsg>(message); e.ok()) {
            log(LogLevel::info, "openflow ", peer_, ": peer sent ", error_name(e.value().error));
        }
        return;
    case MsgType::kFeaturesRequest: {
        if (!decode<FeaturesRequest>(message).ok()) return send_error(err::kBadLen, h.xid, message);
        FeaturesReply reply;
        reply.datapath_id = host_.options.datapath_id;
        reply.n_buffers = 0;
        reply.n_tables = static_cast<uint8_t>(kMaxTable + 1);
        reply.capabilities = kCapFlowStats | kCapTableStats | kCapPortStats;
        return send(reply, h.xid);
    }
    case MsgType::kBarrierRequest:
        if (!decode<BarrierRequest>(message).ok()) return send_error(err::kBadLen, h.xid, message);
        return send(BarrierReply{}, h.xid);
    case MsgType::kTableMod: {
        if (role_ == kRoleSlave) return send_error(err::kIsSlave, h.xid, message);
        Decoded<TableMod> t = decode<TableMod>(message);
        if (!t.ok()) return send_error(t.error(), h.xid, message);
        // OpenFlow 1.3 deprecated the table configuration: nothing to change.
        if (t.value().table_id > kMaxTable && t.value().table_id != kTableAll) {
            return send_error(err::kTableModBadTable, h.xid, message);
        }
        return;
    }
    case MsgType::kQueueGetConfigRequest: {
        Decoded<QueueGetConfigRequest> q = decode<QueueGetConfigRequest>(message);
        if (!q.ok()) return send_error(q.error(), h.xid, message);
        const uint32_t port = q.value().port;
        if (port != kPortAny && (port == 0 || port > port_count())) {
            return send_error(err::kQueueBadPort, h.xid, message);
        }
        QueueGetConfigReply reply;
        reply.port = port;  // flowpath has no queues
        return send(reply, h.xid);
    }
    case MsgType::kExperimenter:
        return send_error(err::kBadExperimenter, h.xid, message);
    default:
        // Groups, meters, port_mod, what only switches send, unknown types.
        return send_error(err::kBadType, h.xid, message);
    }
}

// ---- Asynchronous messages ----------------------------------------------------

bool Session::async_room() {
    if (!established_ || closing_) return false;
    if (backpressured()) {
        ++host_.counters.events_dropped;
        return false;
    }
    return true;
}

void Session::send_packet_in(const PacketInEvent& event) {
    const unsigned slot = role_ == kRoleSlave ? 1 : 0;
    if (!(async_.packet_in_mask[slot] & (1u << event.reason))) return;
    const uint32_t max_len = event.max_len == kUseMissSendLen ? miss_send_len_ : event.max_len;
    // A service connection that never set a miss_send_len gets nothing.
    if (passive_ && miss_send_len_ == 0) return;
    if (!async_room()) return;
    PacketIn m;
    m.reason = event.reason;
    m.table_id = event.table_id;
    m.cookie = event.cookie;
    m.total_len = static_cast<uint16_t>(std::min<size_t>(event.packet.size(), 0xffff));
    packet_in_match(event, m.match);
    const size_t length = max_len == kMaxLenNoBuffer ? event.packet.size() : std::min<size_t>(event.packet.size(), max_len);
    // The message must fit in 64 KiB with its header and match.
    m.data.assign(event.packet.begin(), event.packet.begin() + static_cast<ptrdiff_t>(std::min<size_t>(length, 0xff00)));
    send(m, 0);
}

void Session::send_flow_removed(const FlowRemovedEvent& event) {
    const unsigned slot = role_ == kRoleSlave ? 1 : 0;
    if (!(async_.flow_removed_mask[slot] & (1u << event.reason))) return;
    if (passive_ && miss_send_len_ == 0) return;
    if (!async_room()) return;
    FlowRemoved m;
    m.cookie = event.rule.cookie;
    m.priority = event.rule.priority;
    m.reason = event.reason;
    m.table_id = event.rule.table;
    m.duration_sec = event.duration_sec;
    m.duration_nsec = event.duration_nsec;
    m.idle_timeout = event.rule.idle_timeout;
    m.hard_timeout = event.rule.hard_timeout;
    m.packet_count = event.packets;
    m.byte_count = event.bytes;
    m.match.match = event.rule.match;
    send(m, 0);
}

void Session::send_port_status(const PortStatusEvent& event) {
    const unsigned slot = role_ == kRoleSlave ? 1 : 0;
    if (!(async_.port_status_mask[slot] & (1u << event.reason))) return;
    if (passive_ && miss_send_len_ == 0) return;
    if (!async_room()) return;
    PortStatus m;
    m.reason = event.reason;
    m.port = event.port;
    send(m, 0);
}

// ---- The idle probe -------------------------------------------------------------

Clock::time_point Session::next_deadline() const {
    return last_rx_ + host_.options.probe_interval * (probe_sent_ ? 2 : 1);
}

void Session::tick(Clock::time_point now) {
    if (closing_) return;
    if (now >= last_rx_ + host_.options.probe_interval * 2 && probe_sent_) {
        log(LogLevel::info, "openflow ", peer_, ": no answer to the echo probe, closing");
        closing_ = true;
    } else if (now >= last_rx_ + host_.options.probe_interval && !probe_sent_) {
        send(EchoRequest{}, next_xid_++);
        probe_sent_ = true;
    }
}

}  // namespace flowpath::of
