// The OpenFlow 1.3 wire codec (version 0x04): every message the agent sends
// or receives, as plain structs, with an encoder and a decoder for each.
//
// Bytes from the network are untrusted: every decoder checks every length it
// meets (the header, the fixed part of the message, the match and each of
// its OXM fields, each instruction, each action, each multipart entry) and
// answers with the OpenFlow error the switch must send back (OfError) rather
// than reading past anything. Decoders never throw and never allocate more
// than the message itself holds.
//
// Matches and actions are translated to and from flowpath's own types on the
// way through: an OXM match becomes a Match over the FlowKey (OpenFlow
// `metadata` beside it, in Match::metadata), and actions and instructions
// become an ActionList. Open vSwitch's extensions that ovs-ofctl
// sends for flowpath's fields are read and written too (NXM vlan_tci,
// nw_frag, nw_ttl, tcp_flags, ct_state/zone/mark; the resubmit, ct and
// ct_clear actions), so that a rule written with ovs-ofctl survives a round
// trip through the agent unchanged.
//
// docs/openflow.md lists the messages, fields and actions.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "flowpath/action.hpp"
#include "flowpath/conntrack.hpp"
#include "flowpath/rule.hpp"

namespace flowpath::of {

inline constexpr uint8_t kVersion = 0x04;
inline constexpr size_t kHeaderLen = 8;
inline constexpr size_t kMaxMessageLen = 0xffff;

using Bytes = std::vector<uint8_t>;
using ByteView = std::span<const uint8_t>;

/// ofp_type.
enum class MsgType : uint8_t {
    kHello = 0, kError = 1, kEchoRequest = 2, kEchoReply = 3, kExperimenter = 4,
    kFeaturesRequest = 5, kFeaturesReply = 6, kGetConfigRequest = 7, kGetConfigReply = 8,
    kSetConfig = 9, kPacketIn = 10, kFlowRemoved = 11, kPortStatus = 12, kPacketOut = 13,
    kFlowMod = 14, kGroupMod = 15, kPortMod = 16, kTableMod = 17, kMultipartRequest = 18,
    kMultipartReply = 19, kBarrierRequest = 20, kBarrierReply = 21, kQueueGetConfigRequest = 22,
    kQueueGetConfigReply = 23, kRoleRequest = 24, kRoleReply = 25, kGetAsyncRequest = 26,
    kGetAsyncReply = 27, kSetAsync = 28, kMeterMod = 29,
};
/// Message types 0..kMsgTypeCount-1 exist in OpenFlow 1.3.
inline constexpr unsigned kMsgTypeCount = 30;
/// "FLOW_MOD", ...; "UNKNOWN" beyond the 1.3 types.
const char* msg_type_name(uint8_t type);

/// ofp_multipart_type.
enum class MultipartType : uint16_t {
    kDesc = 0, kFlow = 1, kAggregate = 2, kTable = 3, kPortStats = 4, kQueue = 5, kGroup = 6,
    kGroupDesc = 7, kGroupFeatures = 8, kMeter = 9, kMeterConfig = 10, kMeterFeatures = 11,
    kTableFeatures = 12, kPortDesc = 13, kExperimenter = 0xffff,
};
/// OFPMPF_REQ_MORE / OFPMPF_REPLY_MORE.
inline constexpr uint16_t kMultipartMore = 1;

// Reserved port numbers (ofp_port_no), group, buffer and table ids.
inline constexpr uint32_t kPortMax = 0xffffff00;
inline constexpr uint32_t kPortInPort = 0xfffffff8;
inline constexpr uint32_t kPortTable = 0xfffffff9;
inline constexpr uint32_t kPortNormal = 0xfffffffa;
inline constexpr uint32_t kPortFlood = 0xfffffffb;
inline constexpr uint32_t kPortAll = 0xfffffffc;
inline constexpr uint32_t kPortController = 0xfffffffd;
inline constexpr uint32_t kPortLocal = 0xfffffffe;
inline constexpr uint32_t kPortAny = 0xffffffff;
inline constexpr uint32_t kGroupAny = 0xffffffff;
inline constexpr uint32_t kNoBuffer = 0xffffffff;
inline constexpr uint8_t kTableAll = 0xff;
/// OFPCML_NO_BUFFER: a controller output's max_len meaning "all of it".
inline constexpr uint16_t kMaxLenNoBuffer = 0xffff;

// flow_mod commands (ofp_flow_mod_command).
inline constexpr uint8_t kFlowAdd = 0, kFlowModify = 1, kFlowModifyStrict = 2, kFlowDelete = 3,
                         kFlowDeleteStrict = 4;
// flow_mod flags (ofp_flow_mod_flags).
inline constexpr uint16_t kFlagSendFlowRem = 1, kFlagCheckOverlap = 2, kFlagResetCounts = 4,
                          kFlagNoPktCounts = 8, kFlagNoBytCounts = 16;
inline constexpr uint16_t kFlowModFlagsAll = 31;
// packet_in reasons, flow_removed reasons, port_status reasons.
inline constexpr uint8_t kReasonNoMatch = 0, kReasonAction = 1, kReasonInvalidTtl = 2;
inline constexpr uint8_t kRemovedIdleTimeout = 0, kRemovedHardTimeout = 1, kRemovedDelete = 2,
                         kRemovedGroupDelete = 3;
inline constexpr uint8_t kPortAdded = 0, kPortDeleted = 1, kPortModified = 2;
// Controller roles (ofp_controller_role).
inline constexpr uint32_t kRoleNoChange = 0, kRoleEqual = 1, kRoleMaster = 2, kRoleSlave = 3;
// Switch capabilities (ofp_capabilities), port config and state bits.
inline constexpr uint32_t kCapFlowStats = 1, kCapTableStats = 2, kCapPortStats = 4;
inline constexpr uint32_t kPortConfigDown = 1;
inline constexpr uint32_t kPortStateLinkDown = 1, kPortStateLive = 4;

/// An OpenFlow error: ofp_error_msg's type and code.
struct OfError {
    uint16_t type = 0;
    uint16_t code = 0;
    bool operator==(const OfError&) const = default;
};
/// "OFPBRC_BAD_TYPE" and so on, for logs and test failures.
std::string error_name(OfError error);

/// The errors flowpath sends (OpenFlow 1.3 names in the comments).
namespace err {
inline constexpr OfError kHelloIncompatible{0, 0};      // OFPHFC_INCOMPATIBLE
inline constexpr OfError kBadVersion{1, 0};             // OFPBRC_BAD_VERSION
inline constexpr OfError kBadType{1, 1};                // OFPBRC_BAD_TYPE
inline constexpr OfError kBadMultipart{1, 2};           // OFPBRC_BAD_MULTIPART
inline constexpr OfError kBadExperimenter{1, 3};        // OFPBRC_BAD_EXPERIMENTER
inline constexpr OfError kRequestEperm{1, 5};           // OFPBRC_EPERM
inline constexpr OfError kBadLen{1, 6};                 // OFPBRC_BAD_LEN
inline constexpr OfError kBufferUnknown{1, 8};          // OFPBRC_BUFFER_UNKNOWN
inline constexpr OfError kBadTableId{1, 9};             // OFPBRC_BAD_TABLE_ID
inline constexpr OfError kIsSlave{1, 10};               // OFPBRC_IS_SLAVE
inline constexpr OfError kBadPort{1, 11};               // OFPBRC_BAD_PORT
inline constexpr OfError kBadPacket{1, 12};             // OFPBRC_BAD_PACKET
inline constexpr OfError kBadActionType{2, 0};          // OFPBAC_BAD_TYPE
inline constexpr OfError kBadActionLen{2, 1};           // OFPBAC_BAD_LEN
inline constexpr OfError kBadActionExperimenter{2, 2};  // OFPBAC_BAD_EXPERIMENTER
inline constexpr OfError kBadActionExpType{2, 3};       // OFPBAC_BAD_EXP_TYPE
inline constexpr OfError kBadOutPort{2, 4};             // OFPBAC_BAD_OUT_PORT
inline constexpr OfError kBadActionArgument{2, 5};      // OFPBAC_BAD_ARGUMENT
inline constexpr OfError kBadOutGroup{2, 9};            // OFPBAC_BAD_OUT_GROUP
inline constexpr OfError kMatchInconsistent{2, 10};     // OFPBAC_MATCH_INCONSISTENT
inline constexpr OfError kUnsupportedOrder{2, 11};      // OFPBAC_UNSUPPORTED_ORDER
inline constexpr OfError kBadSetType{2, 13};            // OFPBAC_BAD_SET_TYPE
inline constexpr OfError kBadSetLen{2, 14};             // OFPBAC_BAD_SET_LEN
inline constexpr OfError kBadSetArgument{2, 15};        // OFPBAC_BAD_SET_ARGUMENT
inline constexpr OfError kUnknownInstruction{3, 0};     // OFPBIC_UNKNOWN_INST
inline constexpr OfError kUnsupInstruction{3, 1};       // OFPBIC_UNSUP_INST
inline constexpr OfError kBadGotoTable{3, 2};           // OFPBIC_BAD_TABLE_ID
inline constexpr OfError kUnsupMetadata{3, 3};          // OFPBIC_UNSUP_METADATA
inline constexpr OfError kBadInstExperimenter{3, 5};    // OFPBIC_BAD_EXPERIMENTER
inline constexpr OfError kBadInstLen{3, 7};             // OFPBIC_BAD_LEN
inline constexpr OfError kBadMatchType{4, 0};           // OFPBMC_BAD_TYPE
inline constexpr OfError kBadMatchLen{4, 1};            // OFPBMC_BAD_LEN
inline constexpr OfError kBadWildcards{4, 5};           // OFPBMC_BAD_WILDCARDS
inline constexpr OfError kBadField{4, 6};               // OFPBMC_BAD_FIELD
inline constexpr OfError kBadValue{4, 7};               // OFPBMC_BAD_VALUE
inline constexpr OfError kBadMask{4, 8};                // OFPBMC_BAD_MASK
inline constexpr OfError kBadPrereq{4, 9};              // OFPBMC_BAD_PREREQ
inline constexpr OfError kDupField{4, 10};              // OFPBMC_DUP_FIELD
inline constexpr OfError kFlowModUnknown{5, 0};         // OFPFMFC_UNKNOWN
inline constexpr OfError kTableFull{5, 1};              // OFPFMFC_TABLE_FULL
inline constexpr OfError kFlowModBadTable{5, 2};        // OFPFMFC_BAD_TABLE_ID
inline constexpr OfError kOverlap{5, 3};                // OFPFMFC_OVERLAP
inline constexpr OfError kFlowModEperm{5, 4};           // OFPFMFC_EPERM
inline constexpr OfError kBadCommand{5, 6};             // OFPFMFC_BAD_COMMAND
inline constexpr OfError kBadFlags{5, 7};               // OFPFMFC_BAD_FLAGS
inline constexpr OfError kTableModBadTable{8, 0};       // OFPTMFC_BAD_TABLE
inline constexpr OfError kQueueBadPort{9, 0};           // OFPQOFC_BAD_PORT
inline constexpr OfError kConfigBadFlags{10, 0};        // OFPSCFC_BAD_FLAGS
inline constexpr OfError kRoleStale{11, 0};             // OFPRRFC_STALE
inline constexpr OfError kBadRole{11, 2};               // OFPRRFC_BAD_ROLE
inline constexpr OfError kTableFeaturesEperm{13, 5};    // OFPTFFC_EPERM
}  // namespace err

/// Either a decoded value or the error the switch answers with.
template <typename T>
class Decoded {
public:
    Decoded(T value) : result_(std::move(value)) {}
    Decoded(OfError error) : result_(error) {}
    bool ok() const { return result_.index() == 0; }
    explicit operator bool() const { return ok(); }
    T& value() { return std::get<0>(result_); }
    const T& value() const { return std::get<0>(result_); }
    OfError error() const { return std::get<1>(result_); }

private:
    std::variant<T, OfError> result_;
};

/// ofp_header.
struct Header {
    uint8_t version = kVersion;
    uint8_t type = 0;
    uint16_t length = kHeaderLen;
    uint32_t xid = 0;
};

/// The header at the start of `bytes`, or nullopt when fewer than 8 bytes
/// are there. Says nothing about whether `length` bytes follow.
std::optional<Header> peek_header(ByteView bytes);

// ---- Matches, instructions, actions ---------------------------------------

/// An OXM match: flowpath's Match (OpenFlow metadata included).
struct OxmMatch {
    Match match;
    /// A PACKET_IN's ct_nw_src/dst or ct_ipv6_src/dst, ct_nw_proto,
    /// ct_tp_src/dst (when nw_proto is not 0): encoded, never decoded (no
    /// rule matches them).
    CtTuple ct_tuple;
    bool operator==(const OxmMatch&) const = default;
};

/// A flow entry's instructions as flowpath runs them, in one action list in
/// OpenFlow's instruction order whatever order they came in: the
/// apply-actions list, then kClearActions (clear_actions: flowpath keeps no
/// action set, so a no-op kept to print back), kWriteMetadata
/// (write_metadata) and kGotoTable (goto_table). write_actions and meter
/// are not supported (OFPBIC_UNSUP_INST).
struct Instructions {
    ActionList actions;
    bool operator==(const Instructions&) const = default;
};

/// Decodes an ofp_match (type OXM, length, fields, padding to 8 bytes) at
/// the start of `bytes`; `consumed` gets its padded size. Checks every
/// field's length, value, mask, duplicates and prerequisites.
Decoded<OxmMatch> decode_match(ByteView bytes, size_t& consumed);
/// Appends an ofp_match (padded to 8 bytes), fields in Open vSwitch's order.
void encode_match(const OxmMatch& match, Bytes& out);

/// Where an action list is decoded: PACKET_OUT may output to TABLE.
enum class ActionContext : uint8_t { kFlow, kPacketOut };

/// Decodes a whole action list (`bytes` is exactly the list).
Decoded<ActionList> decode_actions(ByteView bytes, ActionContext context);
/// Appends the wire form of `actions` (kGotoTable must not be among them).
void encode_actions(const ActionList& actions, Bytes& out);

/// Decodes an instruction list (`bytes` is exactly the list).
Decoded<Instructions> decode_instructions(ByteView bytes);
void encode_instructions(const Instructions& instructions, Bytes& out);

/// Checks a decoded flow entry as the rule parser checks a rule: in_port
/// and every output, resubmit and set_field port within 1..port_count
/// (kPortTable too in a PACKET_OUT), each set_field's and action's
/// prerequisites in `match` (with the VLAN tags that the match and earlier
/// pushes and pops give), goto_table last and after `table`. nullopt when
/// consistent.
std::optional<OfError> check_rule(const Match& match, uint8_t table, const ActionList& actions,
                                  uint32_t port_count, ActionContext context);

// ---- Messages --------------------------------------------------------------

/// HELLO: the versions the sender supports (bit v = version v, for the
/// first 32 versions). A HELLO without a bitmap element means "the header's
/// version and every version below it".
struct Hello {
    static constexpr MsgType kType = MsgType::kHello;
    uint32_t versions = 1u << kVersion;
};
/// ERROR: type, code and (at least 64 bytes of) the failed request.
struct ErrorMsg {
    static constexpr MsgType kType = MsgType::kError;
    OfError error;
    Bytes data;
};
struct EchoRequest {
    static constexpr MsgType kType = MsgType::kEchoRequest;
    Bytes data;
};
struct EchoReply {
    static constexpr MsgType kType = MsgType::kEchoReply;
    Bytes data;
};
/// A message without a body: FEATURES_REQUEST, GET_CONFIG_REQUEST,
/// BARRIER_REQUEST/REPLY, GET_ASYNC_REQUEST.
template <MsgType T>
struct Empty {
    static constexpr MsgType kType = T;
};
using FeaturesRequest = Empty<MsgType::kFeaturesRequest>;
using GetConfigRequest = Empty<MsgType::kGetConfigRequest>;
using BarrierRequest = Empty<MsgType::kBarrierRequest>;
using BarrierReply = Empty<MsgType::kBarrierReply>;
using GetAsyncRequest = Empty<MsgType::kGetAsyncRequest>;

struct FeaturesReply {
    static constexpr MsgType kType = MsgType::kFeaturesReply;
    uint64_t datapath_id = 0;
    uint32_t n_buffers = 0;
    uint8_t n_tables = 0;
    uint8_t auxiliary_id = 0;
    uint32_t capabilities = 0;
};
/// ofp_switch_config: GET_CONFIG_REPLY and SET_CONFIG.
template <MsgType T>
struct SwitchConfig {
    static constexpr MsgType kType = T;
    uint16_t flags = 0;            ///< OFPC_FRAG_*: only NORMAL (0) is supported
    uint16_t miss_send_len = 128;
};
using GetConfigReply = SwitchConfig<MsgType::kGetConfigReply>;
using SetConfig = SwitchConfig<MsgType::kSetConfig>;

/// ofp_async_config: [0] for the master/equal role, [1] for slave; bit r of
/// a mask = reason r is sent.
template <MsgType T>
struct AsyncConfig {
    static constexpr MsgType kType = T;
    uint32_t packet_in_mask[2] = {0, 0};
    uint32_t port_status_mask[2] = {0, 0};
    uint32_t flow_removed_mask[2] = {0, 0};
};
using GetAsyncReply = AsyncConfig<MsgType::kGetAsyncReply>;
using SetAsync = AsyncConfig<MsgType::kSetAsync>;

/// ofp_role_request: ROLE_REQUEST and ROLE_REPLY.
template <MsgType T>
struct RoleMessage {
    static constexpr MsgType kType = T;
    uint32_t role = kRoleNoChange;
    uint64_t generation_id = 0;
};
using RoleRequest = RoleMessage<MsgType::kRoleRequest>;
using RoleReply = RoleMessage<MsgType::kRoleReply>;

struct FlowMod {
    static constexpr MsgType kType = MsgType::kFlowMod;
    uint64_t cookie = 0;
    uint64_t cookie_mask = 0;
    uint8_t table_id = 0;
    uint8_t command = kFlowAdd;
    uint16_t idle_timeout = 0;
    uint16_t hard_timeout = 0;
    uint16_t priority = kDefaultPriority;
    uint32_t buffer_id = kNoBuffer;
    uint32_t out_port = kPortAny;
    uint32_t out_group = kGroupAny;
    uint16_t flags = 0;
    OxmMatch match;
    Instructions instructions;
};

struct PacketIn {
    static constexpr MsgType kType = MsgType::kPacketIn;
    uint32_t buffer_id = kNoBuffer;
    uint16_t total_len = 0;
    uint8_t reason = kReasonNoMatch;
    uint8_t table_id = 0;
    uint64_t cookie = 0;
    OxmMatch match;  ///< in_port (and metadata when set)
    Bytes data;
};

struct FlowRemoved {
    static constexpr MsgType kType = MsgType::kFlowRemoved;
    uint64_t cookie = 0;
    uint16_t priority = 0;
    uint8_t reason = kRemovedDelete;
    uint8_t table_id = 0;
    uint32_t duration_sec = 0;
    uint32_t duration_nsec = 0;
    uint16_t idle_timeout = 0;
    uint16_t hard_timeout = 0;
    uint64_t packet_count = 0;
    uint64_t byte_count = 0;
    OxmMatch match;
};

/// ofp_port.
struct PortDesc {
    uint32_t port_no = 0;
    uint8_t hw_addr[6] = {};
    std::string name;  ///< at most 15 bytes on the wire
    uint32_t config = 0;
    uint32_t state = 0;
    uint32_t curr = 0, advertised = 0, supported = 0, peer = 0;
    uint32_t curr_speed = 0, max_speed = 0;  ///< kbps
    bool operator==(const PortDesc&) const = default;
};

struct PortStatus {
    static constexpr MsgType kType = MsgType::kPortStatus;
    uint8_t reason = kPortModified;
    PortDesc port;
};

/// PACKET_OUT. Outputs to kPortTable (run the pipeline) are kOutput actions
/// with port kPortTable.
struct PacketOut {
    static constexpr MsgType kType = MsgType::kPacketOut;
    uint32_t buffer_id = kNoBuffer;
    uint32_t in_port = kPortController;
    ActionList actions;
    Bytes data;
};

struct TableMod {
    static constexpr MsgType kType = MsgType::kTableMod;
    uint8_t table_id = 0;
    uint32_t config = 0;
};

struct QueueGetConfigRequest {
    static constexpr MsgType kType = MsgType::kQueueGetConfigRequest;
    uint32_t port = kPortAny;
};
/// The reply; flowpath has no queues, so only the port.
struct QueueGetConfigReply {
    static constexpr MsgType kType = MsgType::kQueueGetConfigReply;
    uint32_t port = kPortAny;
};

/// MULTIPART_REQUEST / MULTIPART_REPLY with the body still encoded (see the
/// body types below).
template <MsgType T>
struct Multipart {
    static constexpr MsgType kType = T;
    uint16_t type = 0;   ///< MultipartType
    uint16_t flags = 0;  ///< kMultipartMore
    Bytes body;
};
using MultipartRequest = Multipart<MsgType::kMultipartRequest>;
using MultipartReply = Multipart<MsgType::kMultipartReply>;

/// Encodes one whole message: header (with `xid` and the final length) and
/// body, appended to `out`. A message too long for the 16-bit length is a
/// programming error (the multipart writer splits long replies).
template <typename M>
void encode(const M& message, uint32_t xid, Bytes& out);

/// Decodes one whole message (`bytes` starts with its header and is exactly
/// `length` long; version and type must be M's).
template <typename M>
Decoded<M> decode(ByteView bytes);

// ---- Multipart bodies ------------------------------------------------------

/// ofp_desc: the five strings (cut to their wire sizes).
struct Desc {
    std::string mfr_desc, hw_desc, sw_desc, serial_num, dp_desc;
};
/// ofp_flow_stats_request, also for AGGREGATE.
struct FlowStatsRequest {
    uint8_t table_id = kTableAll;
    uint32_t out_port = kPortAny;
    uint32_t out_group = kGroupAny;
    uint64_t cookie = 0;
    uint64_t cookie_mask = 0;
    OxmMatch match;
};
/// ofp_flow_stats.
struct FlowStats {
    uint8_t table_id = 0;
    uint32_t duration_sec = 0;
    uint32_t duration_nsec = 0;
    uint16_t priority = 0;
    uint16_t idle_timeout = 0;
    uint16_t hard_timeout = 0;
    uint16_t flags = 0;
    uint64_t cookie = 0;
    uint64_t packet_count = 0;
    uint64_t byte_count = 0;
    OxmMatch match;
    Instructions instructions;
};
struct AggregateStats {
    uint64_t packet_count = 0;
    uint64_t byte_count = 0;
    uint32_t flow_count = 0;
};
struct TableStats {
    uint8_t table_id = 0;
    uint32_t active_count = 0;
    uint64_t lookup_count = 0;
    uint64_t matched_count = 0;
};
struct PortStatsRequest {
    uint32_t port_no = kPortAny;
};
struct PortStats {
    uint32_t port_no = 0;
    uint64_t rx_packets = 0, tx_packets = 0, rx_bytes = 0, tx_bytes = 0;
    uint64_t rx_dropped = 0, tx_dropped = 0, rx_errors = 0, tx_errors = 0;
    uint64_t rx_frame_err = 0, rx_over_err = 0, rx_crc_err = 0, collisions = 0;
    uint32_t duration_sec = 0, duration_nsec = 0;
};
/// ofp_table_features with its properties still encoded (each checked to be
/// a well-formed TLV when decoded).
struct TableFeatures {
    uint8_t table_id = 0;
    std::string name;
    uint64_t metadata_match = 0;
    uint64_t metadata_write = 0;
    uint32_t config = 0;
    uint32_t max_entries = 0;
    Bytes properties;
};
/// The properties flowpath's tables have: the instructions, actions and
/// match/set fields the codec supports, every later table reachable.
Bytes table_feature_properties(uint8_t table_id);

/// Appends one body or one entry of a reply body.
template <typename B>
void encode_body(const B& body, Bytes& out);
/// Decodes a whole body: a request body, a single-struct reply body, or a
/// reply body of entries (B = std::vector<Entry>).
template <typename B>
Decoded<B> decode_body(ByteView body);

/// Writes a multipart reply of any number of entries as as many
/// MULTIPART_REPLY messages as 64 KiB allows, REPLY_MORE on all but the last.
class MultipartReplyWriter {
public:
    MultipartReplyWriter(MultipartType type, uint32_t xid, Bytes& out);
    /// Appends one entry (or a whole single-struct body).
    template <typename Entry>
    void add(const Entry& entry) {
        scratch_.clear();
        encode_body(entry, scratch_);
        add_encoded(scratch_);
    }
    /// Closes the last message (also when no entry was added).
    void finish();

private:
    void add_encoded(ByteView entry);
    void start_message();

    MultipartType type_;
    uint32_t xid_;
    Bytes& out_;
    size_t start_ = 0;  // offset of the open message in out_
    bool open_ = false;
    Bytes scratch_;
};

}  // namespace flowpath::of
