// The OpenFlow 1.3 agent: controllers and ovs-ofctl drive the datapath over
// TCP. The agent runs its own thread (non-blocking sockets, one poll loop):
// it connects to each `--controller tcp:IP:PORT` (reconnecting with
// backoff), accepts connections on `--openflow-listen ptcp:PORT[:IP]`,
// negotiates version 1.3, answers ECHO, FEATURES, CONFIG, ASYNC, ROLE,
// BARRIER and the multipart requests, and hands flow_mods and packet_outs
// to an OpenFlowBackend. A slow or hostile peer costs it memory up to a
// bound per connection and never blocks the thread, the workers or the
// control socket.
//
// The backend is the datapath seen from OpenFlow, in flowpath's own terms
// (Rule, MatchFilter, ActionList). The datapath tells the agent about
// packet-ins, removed flows and port changes through OpenFlowEvents, from
// any thread. MemoryBackend is a complete backend over in-memory rule
// tables, for tests and for the agent's own test program.
//
// docs/openflow.md describes the protocol coverage and the wiring.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "flowpath/openflow_codec.hpp"
#include "flowpath/pipeline.hpp"
#include "flowpath/rule.hpp"

namespace flowpath {

/// What a flow_mod does.
enum class FlowModCommand : uint8_t { kAdd, kModify, kModifyStrict, kDelete, kDeleteStrict };

/// Which rules a modify, delete or flow-stats request is about.
struct FlowSelector {
    /// The match, table (nullopt: every table), priority (strict only) and
    /// cookie under cookie_mask.
    MatchFilter filter;
    /// Strict: the rule's match and priority equal the filter's. Loose: the
    /// rule's match is at least as specific as the filter's (it examines
    /// every bit the filter examines, with the same value).
    bool strict = false;
    /// Only rules with an output to this port (of::kPortAny: any rule).
    uint32_t out_port = of::kPortAny;

    bool selects(const Rule& rule) const;
};

/// One flow_mod in flowpath's terms, checked by the agent before the
/// backend sees it: the match and actions passed check_rule, tables are
/// 0..kMaxTable, flags are known, no buffer is named.
struct FlowModRequest {
    FlowModCommand command = FlowModCommand::kAdd;
    /// kAdd: the rule. kModify*: the new actions (rule.actions); OpenFlow 1.3
    /// keeps the selected rules' cookie, timeouts and flags.
    Rule rule;
    /// kModify*, kDelete*: the rules concerned.
    FlowSelector select;
    /// of::kFlag*. kAdd keeps them with the rule (dump-flows shows them, as
    /// Open vSwitch does; a modify keeps them). CHECK_OVERLAP refuses an add
    /// that overlaps a rule of the same table and priority (OFPFMFC_OVERLAP);
    /// RESET_COUNTS zeroes the counters of a replaced or modified rule
    /// (otherwise they carry over); SEND_FLOW_REM asks for FLOW_REMOVED.
    uint16_t flags = 0;
};

/// A rule as dump-flows shows it.
struct FlowEntry {
    Rule rule;
    uint16_t flags = 0;  ///< of::kFlag* kept with the rule
    uint64_t packets = 0;
    uint64_t bytes = 0;
    uint32_t duration_sec = 0;
    uint32_t duration_nsec = 0;
};

/// A PACKET_IN from the datapath.
struct PacketInEvent {
    uint8_t reason = of::kReasonAction;  ///< NO_MATCH for a table-miss rule (priority 0, catch-all)
    uint8_t table_id = 0;
    uint64_t cookie = 0;                 ///< of the rule that sent it
    uint32_t in_port = 0;
    /// The match's other fields, as Open vSwitch 3.1 fills it: those not
    /// zero of metadata, ct_state (with the packet's eth_type), ct_zone,
    /// ct_mark and the connection's original tuple; the ct fields only
    /// after a ct(table=T) and before any ct or ct_clear in that pass.
    uint64_t metadata = 0;
    uint32_t ct_mark = 0;
    uint16_t ct_zone = 0;
    uint16_t dl_type = 0;  ///< network order; shown with a nonzero ct_state
    uint8_t ct_state = 0;
    CtTuple ct_tuple;      ///< shown when nw_proto is not 0
    /// Bytes of the packet to send at most (the controller action's
    /// max_len; of::kMaxLenNoBuffer: all), or kUseMissSendLen for each
    /// connection's miss_send_len.
    uint32_t max_len = of::kMaxLenNoBuffer;
    std::vector<uint8_t> packet;         ///< the whole packet
};
inline constexpr uint32_t kUseMissSendLen = 0x10000;

/// A rule that left the tables, for FLOW_REMOVED (only rules added with
/// SEND_FLOW_REM are reported).
struct FlowRemovedEvent {
    Rule rule;
    uint8_t reason = of::kRemovedDelete;  ///< IDLE_TIMEOUT, HARD_TIMEOUT or DELETE
    uint32_t duration_sec = 0;
    uint32_t duration_nsec = 0;
    uint64_t packets = 0;
    uint64_t bytes = 0;
};

/// A port that appeared, went or changed (link up/down), for PORT_STATUS.
struct PortStatusEvent {
    uint8_t reason = of::kPortModified;
    of::PortDesc port;
};

/// Where the datapath sends asynchronous events. Every member is safe to
/// call from any thread and never blocks on the network (events queue up to
/// a bound, beyond which they are counted and dropped).
class OpenFlowEvents {
public:
    virtual void packet_in(PacketInEvent event) = 0;
    virtual void flow_removed(FlowRemovedEvent event) = 0;
    virtual void port_status(PortStatusEvent event) = 0;

protected:
    ~OpenFlowEvents() = default;
};

/// The datapath as the agent sees it. The agent calls every member from its
/// own thread only (one call at a time); none is on the packet path.
class OpenFlowBackend {
public:
    virtual ~OpenFlowBackend() = default;

    /// Applies flow_mods in order, each all or nothing: results[i] is
    /// nullopt when requests[i] took effect, else the OpenFlow error (and it
    /// changed nothing). The agent passes flow_mods that arrived back to
    /// back as one call so that a datapath can publish them together; when
    /// the call returns, every change is what the next call (dump, barrier
    /// reply, packet_out) sees. Deleted rules with SEND_FLOW_REM are
    /// reported through events (FlowRemovedEvent, reason DELETE). The
    /// backend may move what it keeps out of the requests (an add's rule).
    virtual void apply_flow_mods(std::span<FlowModRequest> requests,
                                 std::span<std::optional<of::OfError>> results) = 0;

    /// Appends the rules `select` picks (loose), by table, then priority
    /// (highest first), with their counters.
    virtual void dump_flows(const FlowSelector& select, std::vector<FlowEntry>& out) = 0;

    /// Lookup and match counts of every table that exists (tables without
    /// rules may be left out).
    virtual std::vector<of::TableStats> table_stats() = 0;

    /// The ports, numbered 1..N as OpenFlow numbers them.
    virtual std::vector<of::PortDesc> port_descs() = 0;
    /// N (the agent checks every port number in a flow_mod against it).
    virtual uint32_t port_count() { return static_cast<uint32_t>(port_descs().size()); }
    virtual std::vector<of::PortStats> port_stats() = 0;

    /// Sends `packet` as received on `in_port` (of::kPortController when
    /// none) through `actions` (already checked with check_rule against the
    /// packet); a kOutput to of::kPortTable runs it through the rule tables.
    virtual std::optional<of::OfError> packet_out(std::span<const uint8_t> packet, uint32_t in_port,
                                                  const ActionList& actions) = 0;

    /// Where to send asynchronous events from now on (null: nowhere). The
    /// agent sets it when it starts and clears it before it goes away.
    virtual void set_events(OpenFlowEvents* events) = 0;
};

/// Whether two matches can match one packet (CHECK_OVERLAP).
bool matches_overlap(const Match& a, const Match& b);
/// Whether the actions output to `port` (kOutput, or in_port/flood/all when
/// `port` is a reserved port of that name).
bool actions_output_to(const ActionList& actions, uint32_t port);

/// Where a packet-out's packet enters the rule tables: OUTPUT:TABLE (table
/// 0) or a resubmit (its table), as received on `in_port`, with the
/// OpenFlow metadata its actions set before (set_field to metadata). The
/// first lookup is on `lookup_in_port` (a resubmit's port), the rules'
/// actions see `in_port`.
struct PacketOutEntry {
    uint32_t in_port = 0;
    uint8_t table = 0;
    uint64_t metadata = 0;
    uint32_t lookup_in_port = 0;
};

/// Where a packet-out's packet goes, as run_packet_out finds it.
class PacketOutSink {
public:
    /// Out of `port` (1..N, never the packet's in_port unless IN_PORT said so).
    virtual void send(uint32_t port, std::span<const uint8_t> bytes) = 0;
    /// OUTPUT:TABLE or resubmit: through the rules from `entry`.
    virtual void table(std::span<const uint8_t> bytes, const PacketOutEntry& entry) = 0;
    /// CONTROLLER: a PACKET_IN (reason ACTION, table 0) of at most
    /// `max_len` bytes; `metadata` the OpenFlow metadata at the action.
    virtual void controller(std::span<const uint8_t> bytes, uint32_t in_port, uint64_t metadata,
                            uint32_t max_len) = 0;

protected:
    ~PacketOutSink() = default;
};

/// The PACKET_IN of a packet-out's CONTROLLER action (reason ACTION, table
/// 0, cookie all ones, as Open vSwitch 3.1 sends it; metadata in the match
/// when not 0).
PacketInEvent packet_out_packet_in(std::span<const uint8_t> bytes, uint32_t in_port, uint64_t metadata,
                                   uint32_t max_len);

/// Runs a packet-out's `actions` (checked with check_rule) on `packet` from
/// `in_port`, one by one as the executor does (set_field, push/pop VLAN,
/// dec_ttl change the bytes the next outputs send; set_field to metadata
/// the metadata the next OUTPUT:TABLE, resubmit or CONTROLLER carries),
/// telling `sink` where it goes; a datapath with `port_count` ports. An
/// error for what no packet-out can do here (ct; a push without room).
std::optional<of::OfError> run_packet_out(std::span<const uint8_t> packet, uint32_t in_port,
                                          const ActionList& actions, uint32_t port_count, PacketOutSink& sink);

/// The recirculation id a packet-out's packet starts its pass with, so that
/// the translator starts in `entry.table` with `entry.in_port`,
/// `entry.metadata` and `entry.lookup_in_port` (RuleSet::thaw): 0, a first
/// pass as received, for table 0 without metadata or other lookup port;
/// else RuleSet::freeze's. Nothing when `rules` has no frozen state left
/// (kMaxFrozenStates).
std::optional<uint32_t> packet_out_recirc_id(const RuleSet& rules, const PacketOutEntry& entry);

/// An OpenFlow endpoint: "tcp:IP:PORT" (active) or "ptcp:PORT[:IP]"
/// (passive, 127.0.0.1 when IP is omitted). IPv4 or [IPv6].
struct OpenFlowTarget {
    std::string address;  ///< numeric IPv4 or IPv6, no brackets
    uint16_t port = 0;
};
/// Parses `text`; throws ConfigError "OPTION: expected ..., found '...'".
OpenFlowTarget parse_openflow_target(const std::string& text, bool passive, const std::string& option);

/// How the agent behaves.
struct OpenFlowOptions {
    uint64_t datapath_id = 0;
    std::vector<std::string> controllers;  ///< "tcp:IP:PORT", each connected to and kept connected
    std::string listen;                    ///< "ptcp:PORT[:IP]"; empty: no listener
    /// A connection idle this long gets an ECHO_REQUEST; silent as long
    /// again, it is closed (an active one then reconnects).
    std::chrono::milliseconds probe_interval{5000};
    std::chrono::milliseconds min_backoff{1000};  ///< first reconnect delay, doubled up to max
    std::chrono::milliseconds max_backoff{8000};
    /// Bytes a connection may have waiting to be sent before the agent stops
    /// reading its requests and drops asynchronous messages to it.
    size_t max_queued_bytes = 4u << 20;
    /// Events (packet-ins and the rest) waiting for the agent thread at most.
    size_t max_queued_events = 4096;
    of::Desc desc = {"flowpath", "flowpath userspace datapath", "flowpath", "None", "None"};
};

/// What the agent has done so far (monotonic counters).
struct OpenFlowStats {
    uint64_t connections = 0;     ///< connections that completed HELLO
    uint64_t messages_in = 0;
    uint64_t messages_out = 0;
    uint64_t flow_mods = 0;
    uint64_t errors_sent = 0;
    uint64_t events_dropped = 0;  ///< events or async messages dropped under a bound
    unsigned connected = 0;       ///< connections open now (HELLO done)
    unsigned controllers = 0;     ///< of them, to --controller targets
};

/// The agent. Construction binds the listener (ConfigError when it cannot)
/// and starts the thread; destruction stops it and closes every connection.
class OpenFlowAgent final : public OpenFlowEvents {
public:
    OpenFlowAgent(OpenFlowBackend& backend, OpenFlowOptions options);
    ~OpenFlowAgent();
    OpenFlowAgent(const OpenFlowAgent&) = delete;
    OpenFlowAgent& operator=(const OpenFlowAgent&) = delete;

    /// The listening TCP port (useful with ptcp:0), 0 without a listener.
    uint16_t listen_port() const;
    OpenFlowStats stats() const;

    void packet_in(PacketInEvent event) override;
    void flow_removed(FlowRemovedEvent event) override;
    void port_status(PortStatusEvent event) override;

    struct Impl;  // src/openflow/agent.cpp

private:
    std::unique_ptr<Impl> impl_;
};

/// A complete OpenFlowBackend over in-memory rule tables (tests, and the
/// agent's test program): flow_mods with OpenFlow 1.3's semantics, counters,
/// idle and hard timeouts (expire()), port descriptions and counters, and
/// packet_out through translate() of the current rules. Thread-safe.
class MemoryBackend final : public OpenFlowBackend {
public:
    explicit MemoryBackend(PortNames ports, size_t max_rules = 1000000);
    ~MemoryBackend() override;

    void apply_flow_mods(std::span<FlowModRequest> requests,
                         std::span<std::optional<of::OfError>> results) override;
    void dump_flows(const FlowSelector& select, std::vector<FlowEntry>& out) override;
    std::vector<of::TableStats> table_stats() override;
    std::vector<of::PortDesc> port_descs() override;
    std::vector<of::PortStats> port_stats() override;
    std::optional<of::OfError> packet_out(std::span<const uint8_t> packet, uint32_t in_port,
                                          const ActionList& actions) override;
    void set_events(OpenFlowEvents* events) override;

    /// A packet arriving on `port`: classified by the rules (counters,
    /// table lookups), copies to the ports the translation outputs to,
    /// PACKET_IN for CONTROLLER actions. Returns the output ports.
    std::vector<uint32_t> receive(uint32_t port, std::span<const uint8_t> packet);
    /// Removes the rules whose idle or hard timeout passed at `now`
    /// (FLOW_REMOVED for those with SEND_FLOW_REM).
    void expire(std::chrono::steady_clock::time_point now);
    /// Sets a port's link state (PORT_STATUS).
    void set_link(uint32_t port, bool up);
    /// Every packet sent on a port so far (by packet_out or receive).
    std::vector<std::vector<uint8_t>> sent(uint32_t port) const;
    size_t rule_count() const;

    struct State;  // src/openflow/memory_backend.cpp

private:
    std::unique_ptr<State> state_;
};

}  // namespace flowpath
