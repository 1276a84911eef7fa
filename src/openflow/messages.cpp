// The messages: one layout per message (layout.hpp), the generic encoder and
// decoder over it, and the names of types and errors.
#include <algorithm>
#include <cstring>
#include <type_traits>

#include "flowpath/error.hpp"
#include "layout.hpp"

namespace flowpath::of {

namespace {

constexpr uint16_t kHelloElemVersionBitmap = 1;

// ---- Layouts, in wire order ----------------------------------------------

template <typename IO>
void fields(IO& io, Hello& m) {
    if constexpr (IO::kDecoding) {
        // Without a bitmap: the header's version and every one below it.
        const uint8_t v = io.header.version;
        m.versions = v >= 31 ? 0xffffffffu : (2u << v) - 1;
        while (io.ok() && io.r.remaining() > 0) {
            const uint16_t type = io.r.u16();
            const uint16_t length = io.r.u16();
            if (!io.ok() || length < 4) return io.fail(err::kBadLen);
            wire::Reader element(io.r.take(length - 4u));
            if (!io.ok()) return;
            // Padding to 8 bytes follows each element (the last may omit it).
            io.r.skip(std::min<size_t>((8 - length % 8) % 8, io.r.remaining()));
            if (type == kHelloElemVersionBitmap) {
                if (element.remaining() < 4) return io.fail(err::kBadLen);
                m.versions = element.u32();
            }
        }
    } else {
        io.u16(kHelloElemVersionBitmap);
        io.u16(uint16_t{8});
        io.u32(m.versions);
    }
}

template <typename IO>
void fields(IO& io, ErrorMsg& m) {
    io.u16(m.error.type);
    io.u16(m.error.code);
    io.rest(m.data);
}

template <typename IO, typename M>
    requires std::is_same_v<M, EchoRequest> || std::is_same_v<M, EchoReply>
void fields(IO& io, M& m) {
    io.rest(m.data);
}

template <typename IO, MsgType T>
void fields(IO&, Empty<T>&) {}

template <typename IO>
void fields(IO& io, FeaturesReply& m) {
    io.u64(m.datapath_id);
    io.u32(m.n_buffers);
    io.u8(m.n_tables);
    io.u8(m.auxiliary_id);
    io.pad(2);
    io.u32(m.capabilities);
    io.pad(4);  // reserved
}

template <typename IO, MsgType T>
void fields(IO& io, SwitchConfig<T>& m) {
    io.u16(m.flags);
    io.u16(m.miss_send_len);
}

template <typename IO, MsgType T>
void fields(IO& io, AsyncConfig<T>& m) {
    for (uint32_t& mask : m.packet_in_mask) io.u32(mask);
    for (uint32_t& mask : m.port_status_mask) io.u32(mask);
    for (uint32_t& mask : m.flow_removed_mask) io.u32(mask);
}

template <typename IO, MsgType T>
void fields(IO& io, RoleMessage<T>& m) {
    io.u32(m.role);
    io.pad(4);
    io.u64(m.generation_id);
}

template <typename IO>
void fields(IO& io, FlowMod& m) {
    io.u64(m.cookie);
    io.u64(m.cookie_mask);
    io.u8(m.table_id);
    io.u8(m.command);
    io.u16(m.idle_timeout);
    io.u16(m.hard_timeout);
    io.u16(m.priority);
    io.u32(m.buffer_id);
    io.u32(m.out_port);
    io.u32(m.out_group);
    io.u16(m.flags);
    io.pad(2);
    io.match(m.match);
    io.instructions(m.instructions);
}

template <typename IO>
void fields(IO& io, PacketIn& m) {
    io.u32(m.buffer_id);
    io.u16(m.total_len);
    io.u8(m.reason);
    io.u8(m.table_id);
    io.u64(m.cookie);
    io.match(m.match);
    io.pad(2);
    io.rest(m.data);
}

template <typename IO>
void fields(IO& io, FlowRemoved& m) {
    io.u64(m.cookie);
    io.u16(m.priority);
    io.u8(m.reason);
    io.u8(m.table_id);
    io.u32(m.duration_sec);
    io.u32(m.duration_nsec);
    io.u16(m.idle_timeout);
    io.u16(m.hard_timeout);
    io.u64(m.packet_count);
    io.u64(m.byte_count);
    io.match(m.match);
}

template <typename IO>
void fields(IO& io, PortStatus& m) {
    io.u8(m.reason);
    io.pad(7);
    layout::port_desc(io, m.port);
}

template <typename IO>
void fields(IO& io, PacketOut& m) {
    io.u32(m.buffer_id);
    io.u32(m.in_port);
    io.prefixed_actions(m.actions, ActionContext::kPacketOut);
    io.rest(m.data);
}

template <typename IO>
void fields(IO& io, TableMod& m) {
    io.u8(m.table_id);
    io.pad(3);
    io.u32(m.config);
}

template <typename IO, typename M>
    requires std::is_same_v<M, QueueGetConfigRequest> || std::is_same_v<M, QueueGetConfigReply>
void fields(IO& io, M& m) {
    io.u32(m.port);
    io.pad(4);
}

template <typename IO, MsgType T>
void fields(IO& io, Multipart<T>& m) {
    io.u16(m.type);
    io.u16(m.flags);
    io.pad(4);
    io.rest(m.body);
}

}  // namespace

// ---- The generic encoder and decoder ---------------------------------------

std::optional<Header> peek_header(ByteView bytes) {
    if (bytes.size() < kHeaderLen) return std::nullopt;
    wire::Reader r(bytes);
    Header h;
    h.version = r.u8();
    h.type = r.u8();
    h.length = r.u16();
    h.xid = r.u32();
    return h;
}

template <typename M>
void encode(const M& message, uint32_t xid, Bytes& out) {
    const size_t start = out.size();
    layout::Out io(out);
    io.w.u8(kVersion);
    io.w.u8(static_cast<uint8_t>(M::kType));
    io.w.u16(0);
    io.w.u32(xid);
    fields(io, const_cast<M&>(message));  // Out only reads
    const size_t length = out.size() - start;
    if (length > kMaxMessageLen) {
        out.resize(start);
        throw Error(std::string("OpenFlow ") + msg_type_name(static_cast<uint8_t>(M::kType)) + " of " +
                    std::to_string(length) + " bytes is longer than a message can be");
    }
    io.w.patch16(start + 2, static_cast<uint16_t>(length));
}

template <typename M>
Decoded<M> decode(ByteView bytes) {
    const std::optional<Header> header = peek_header(bytes);
    if (!header || header->length != bytes.size()) return err::kBadLen;
    if (header->type != static_cast<uint8_t>(M::kType)) return err::kBadType;
    if (M::kType != MsgType::kHello && header->version != kVersion) return err::kBadVersion;
    layout::In io(bytes.subspan(kHeaderLen), *header);
    M message;
    fields(io, message);
    if (!io.ok()) return *io.r.error();
    if (io.r.remaining() != 0) return err::kBadLen;
    return message;
}

#define FP_OPENFLOW_MESSAGE(M)                                    \
    template void encode<M>(const M&, uint32_t, Bytes&);          \
    template Decoded<M> decode<M>(ByteView);
FP_OPENFLOW_MESSAGE(Hello)
FP_OPENFLOW_MESSAGE(ErrorMsg)
FP_OPENFLOW_MESSAGE(EchoRequest)
FP_OPENFLOW_MESSAGE(EchoReply)
FP_OPENFLOW_MESSAGE(FeaturesRequest)
FP_OPENFLOW_MESSAGE(FeaturesReply)
FP_OPENFLOW_MESSAGE(GetConfigRequest)
FP_OPENFLOW_MESSAGE(GetConfigReply)
FP_OPENFLOW_MESSAGE(SetConfig)
FP_OPENFLOW_MESSAGE(PacketIn)
FP_OPENFLOW_MESSAGE(FlowRemoved)
FP_OPENFLOW_MESSAGE(PortStatus)
FP_OPENFLOW_MESSAGE(PacketOut)
FP_OPENFLOW_MESSAGE(FlowMod)
FP_OPENFLOW_MESSAGE(TableMod)
FP_OPENFLOW_MESSAGE(MultipartRequest)
FP_OPENFLOW_MESSAGE(MultipartReply)
FP_OPENFLOW_MESSAGE(BarrierRequest)
FP_OPENFLOW_MESSAGE(BarrierReply)
FP_OPENFLOW_MESSAGE(QueueGetConfigRequest)
FP_OPENFLOW_MESSAGE(QueueGetConfigReply)
FP_OPENFLOW_MESSAGE(RoleRequest)
FP_OPENFLOW_MESSAGE(RoleReply)
FP_OPENFLOW_MESSAGE(GetAsyncRequest)
FP_OPENFLOW_MESSAGE(GetAsyncReply)
FP_OPENFLOW_MESSAGE(SetAsync)
#undef FP_OPENFLOW_MESSAGE

// ---- Names -------------------------------------------------------------------

const char* msg_type_name(uint8_t type) {
    static constexpr const char* kNames[kMsgTypeCount] = {
        "HELLO", "ERROR", "ECHO_REQUEST", "ECHO_REPLY", "EXPERIMENTER", "FEATURES_REQUEST", "FEATURES_REPLY",
        "GET_CONFIG_REQUEST", "GET_CONFIG_REPLY", "SET_CONFIG", "PACKET_IN", "FLOW_REMOVED", "PORT_STATUS",
        "PACKET_OUT", "FLOW_MOD", "GROUP_MOD", "PORT_MOD", "TABLE_MOD", "MULTIPART_REQUEST", "MULTIPART_REPLY",
        "BARRIER_REQUEST", "BARRIER_REPLY", "QUEUE_GET_CONFIG_REQUEST", "QUEUE_GET_CONFIG_REPLY",
        "ROLE_REQUEST", "ROLE_REPLY", "GET_ASYNC_REQUEST", "GET_ASYNC_REPLY", "SET_ASYNC", "METER_MOD"};
    return type < kMsgTypeCount ? kNames[type] : "UNKNOWN";
}

std::string error_name(OfError error) {
    struct Name {
        OfError error;
        const char* name;
    };
    static constexpr Name kNames[] = {
        {err::kHelloIncompatible, "OFPHFC_INCOMPATIBLE"}, {err::kBadVersion, "OFPBRC_BAD_VERSION"},
        {err::kBadType, "OFPBRC_BAD_TYPE"}, {err::kBadMultipart, "OFPBRC_BAD_MULTIPART"},
        {err::kBadExperimenter, "OFPBRC_BAD_EXPERIMENTER"}, {err::kRequestEperm, "OFPBRC_EPERM"},
        {err::kBadLen, "OFPBRC_BAD_LEN"}, {err::kBufferUnknown, "OFPBRC_BUFFER_UNKNOWN"},
        {err::kBadTableId, "OFPBRC_BAD_TABLE_ID"}, {err::kIsSlave, "OFPBRC_IS_SLAVE"},
        {err::kBadPort, "OFPBRC_BAD_PORT"}, {err::kBadPacket, "OFPBRC_BAD_PACKET"},
        {err::kBadActionType, "OFPBAC_BAD_TYPE"}, {err::kBadActionLen, "OFPBAC_BAD_LEN"},
        {err::kBadActionExperimenter, "OFPBAC_BAD_EXPERIMENTER"}, {err::kBadActionExpType, "OFPBAC_BAD_EXP_TYPE"},
        {err::kBadOutPort, "OFPBAC_BAD_OUT_PORT"}, {err::kBadActionArgument, "OFPBAC_BAD_ARGUMENT"},
        {err::kBadOutGroup, "OFPBAC_BAD_OUT_GROUP"}, {err::kMatchInconsistent, "OFPBAC_MATCH_INCONSISTENT"},
        {err::kUnsupportedOrder, "OFPBAC_UNSUPPORTED_ORDER"}, {err::kBadSetType, "OFPBAC_BAD_SET_TYPE"},
        {err::kBadSetLen, "OFPBAC_BAD_SET_LEN"}, {err::kBadSetArgument, "OFPBAC_BAD_SET_ARGUMENT"},
        {err::kUnknownInstruction, "OFPBIC_UNKNOWN_INST"}, {err::kUnsupInstruction, "OFPBIC_UNSUP_INST"},
        {err::kBadGotoTable, "OFPBIC_BAD_TABLE_ID"}, {err::kUnsupMetadata, "OFPBIC_UNSUP_METADATA"},
        {err::kBadInstExperimenter, "OFPBIC_BAD_EXPERIMENTER"}, {err::kBadInstLen, "OFPBIC_BAD_LEN"},
        {err::kBadMatchType, "OFPBMC_BAD_TYPE"}, {err::kBadMatchLen, "OFPBMC_BAD_LEN"},
        {err::kBadWildcards, "OFPBMC_BAD_WILDCARDS"}, {err::kBadField, "OFPBMC_BAD_FIELD"},
        {err::kBadValue, "OFPBMC_BAD_VALUE"}, {err::kBadMask, "OFPBMC_BAD_MASK"},
        {err::kBadPrereq, "OFPBMC_BAD_PREREQ"}, {err::kDupField, "OFPBMC_DUP_FIELD"},
        {err::kFlowModUnknown, "OFPFMFC_UNKNOWN"}, {err::kTableFull, "OFPFMFC_TABLE_FULL"},
        {err::kFlowModBadTable, "OFPFMFC_BAD_TABLE_ID"}, {err::kOverlap, "OFPFMFC_OVERLAP"},
        {err::kFlowModEperm, "OFPFMFC_EPERM"}, {err::kBadCommand, "OFPFMFC_BAD_COMMAND"},
        {err::kBadFlags, "OFPFMFC_BAD_FLAGS"}, {err::kTableModBadTable, "OFPTMFC_BAD_TABLE"},
        {err::kQueueBadPort, "OFPQOFC_BAD_PORT"}, {err::kConfigBadFlags, "OFPSCFC_BAD_FLAGS"},
        {err::kRoleStale, "OFPRRFC_STALE"}, {err::kBadRole, "OFPRRFC_BAD_ROLE"},
        {err::kTableFeaturesEperm, "OFPTFFC_EPERM"},
    };
    for (const Name& n : kNames) {
        if (n.error == error) return n.name;
    }
    return "error type " + std::to_string(error.type) + " code " + std::to_string(error.code);
}

}  // namespace flowpath::of
