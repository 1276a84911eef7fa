// Connection tracking: the `ct` action of Open vSwitch 3.1's userspace
// datapath, packet for packet (ct_state, ct_zone, ct_mark, commit,
// exec(set_field:V->ct_mark)), with a pf-derived TCP tracker, expiry by a
// cleanup thread, ct-dump / ct-flush and the conntrack statistics.
//
// Ownership (the invariant everything else rests on; docs/conntrack.md):
//  - A ConnTracker has one ConnShard per worker. A shard's connections are
//    created, looked up, updated and freed only by its worker: no lock and no
//    atomic read-modify-write on the packet path, except one exchange when a
//    connection is created or changes timeout class.
//  - Both directions of a connection must therefore reach the same worker.
//    The datapath guarantees it with symmetric RSS (the same symmetric
//    Toeplitz key on every port, and queue q of every port polled by worker
//    q: Port::configure, the Datapath constructor) and warns where a port's
//    queues cannot give it. A packet that reaches another worker is tracked
//    in that worker's shard: its reply direction would look new there.
//  - The cleanup thread never frees a connection: it keeps each shard's
//    expiration lists and sends the worker "expire slot i" messages; the
//    worker frees the slot (ConnShard::maintain) if it has not been refreshed
//    since. Workers send the cleanup thread "(re)list slot i" messages for
//    new connections and timeout-class changes. Both are single-producer
//    single-consumer rings.
//  - ct-dump and ct-flush run on any other thread: they read slots through a
//    per-slot sequence number (a seqlock) and atomic fields, and a flush only
//    marks connections dead (they stop matching at once); the worker frees
//    them when the cleanup thread says so.
//
// Time: the tracker never reads a clock on the packet path. `now` is passed
// in the unit of ConnTrackerConfig::units_per_second (the worker's per-burst
// TSC with ConnTrackerConfig::from); the cleanup thread reads
// ConnTrackerConfig::clock, which must be the same clock.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "flowpath/action.hpp"
#include "flowpath/flow_key.hpp"
#include "flowpath/packet.hpp"

namespace flowpath {

struct Config;

/// The timeout classes: one expiration list and one timeout each. The TCP
/// classes and the three UDP ones are Open vSwitch's (its CT_TM_* states);
/// other_* are the same machine for protocols other than TCP, UDP and ICMP,
/// which Open vSwitch times with the UDP values (and so does flowpath unless
/// --ct-timeout-other-* is given).
enum class TimeoutClass : uint8_t {
    tcp_syn_sent,     ///< first packet of a TCP connection (ct-timeout tcp-syn-sent)
    tcp_opening,      ///< handshake under way (OVS's tcp_syn_recv, 30 s; no option)
    tcp_established,  ///< tcp-established
    tcp_closing,      ///< a FIN seen (tcp-fin-wait)
    tcp_fin_wait,     ///< both FINs seen (tcp-time-wait)
    tcp_closed,       ///< RST seen, or both sides closed (tcp-close)
    udp_first,        ///< one packet (udp-first)
    udp_multiple,     ///< several packets, one direction (udp-single)
    udp_bidir,        ///< both directions seen (udp-multiple)
    icmp_first,       ///< icmp-first
    icmp_reply,       ///< icmp-reply
    other_first,      ///< other-first (default: udp-first's value)
    other_multiple,   ///< other-multiple (default: udp-single's value)
    other_bidir,      ///< other-multiple too (default: udp-multiple's value)
    count_
};
inline constexpr unsigned kTimeoutClasses = static_cast<unsigned>(TimeoutClass::count_);

/// The name of a timeout class ("tcp_established").
const char* timeout_class_name(TimeoutClass timeout_class);

/// A timeout for each class, in the tracker's time unit.
struct ConnTimeouts {
    std::array<uint64_t, kTimeoutClasses> value{};

    uint64_t operator[](TimeoutClass c) const { return value[static_cast<unsigned>(c)]; }
    uint64_t& operator[](TimeoutClass c) { return value[static_cast<unsigned>(c)]; }

    /// Open vSwitch 3.1's defaults (SYN_SENT 30 s, opening 30 s, ESTABLISHED
    /// 24 h, closing 15 min, FIN_WAIT 45 s, CLOSED 30 s, UDP and other
    /// 60/60/30 s, ICMP 60/30 s) in a unit of `units_per_second`.
    static ConnTimeouts open_vswitch(uint64_t units_per_second);
    /// Those defaults with the --ct-timeout-CLASS values (seconds, by the
    /// names of kCtTimeoutClasses) applied. Throws Error on an unknown name.
    static ConnTimeouts from_seconds(const std::vector<std::pair<std::string, uint32_t>>& seconds,
                                     uint64_t units_per_second);
};

/// One ct action's parameters (Open vSwitch's ct(commit, zone=N,
/// exec(set_field:V/M->ct_mark))).
struct CtAction {
    uint16_t zone = 0;
    bool commit = false;
    bool set_mark = false;   ///< exec(set_field:mark_value/mark_mask->ct_mark)
    uint32_t mark_value = 0;  ///< pre-masked
    uint32_t mark_mask = 0;

    /// The ct parameters of a rule action of type kCt.
    static CtAction from(const Action& action) {
        CtAction a;
        a.zone = action.ct_zone;
        a.commit = action.ct_flags & kCtCommit;
        a.set_mark = action.ct_flags & kCtSetMark;
        a.mark_value = action.ct_mark;
        a.mark_mask = action.ct_mark_mask;
        return a;
    }
};

/// Checksum verdicts a NIC gave (mbuf ol_flags); without them the tracker
/// verifies the IPv4 header and transport checksums itself, as Open vSwitch.
enum CtChecksumFlags : uint8_t {
    kCtL3Good = 0x01,
    kCtL3Bad = 0x02,
    kCtL4Good = 0x04,
    kCtL4Bad = 0x08,
};

/// What the tracker reads of one packet: the frame, where its headers are
/// (src/packet's PacketLayout) and three fields of its FlowKey.
struct CtPacket {
    const uint8_t* data = nullptr;
    uint32_t len = 0;
    PacketLayout layout;
    uint16_t dl_type = 0;  ///< network byte order, as in FlowKey
    uint8_t nw_proto = 0;  ///< after IPv6 extension headers, as in FlowKey
    uint8_t nw_frag = 0;   ///< NwFragBits
    uint8_t checksum = 0;  ///< CtChecksumFlags

    static CtPacket from(const FlowKey& key, const uint8_t* data, uint32_t len, const PacketLayout& layout,
                         uint8_t checksum = 0) {
        CtPacket p;
        p.data = data;
        p.len = len;
        p.layout = layout;
        p.dl_type = key.dl_type;
        p.nw_proto = key.nw_proto;
        p.nw_frag = key.nw_frag;
        p.checksum = checksum;
        return p;
    }
};

/// A tracked connection a packet remembers between ct actions (Open
/// vSwitch's md.conn): slot index and generation in the worker's shard.
struct ConnHandle {
    static constexpr uint32_t kNone = UINT32_MAX;
    uint32_t index = kNone;
    uint32_t seq = 0;
    bool valid() const { return index != kNone; }
};

/// The connection-tracking metadata a packet carries through its pipeline
/// passes (Open vSwitch's md.ct_state/ct_zone/ct_mark/conn): the worker keeps
/// one per packet, zeroed at receive, and copies state/zone/mark into the
/// FlowKey's ct_* fields for the next pass.
struct CtMeta {
    uint32_t mark = 0;
    uint16_t zone = 0;
    uint8_t state = 0;  ///< CtStateBits
    ConnHandle conn;

    /// ct_clear.
    void clear() { *this = CtMeta{}; }
};

/// The original direction of the connection a packet's ct found (Open
/// vSwitch's ct_orig_tuple, which a PACKET_IN shows as ct_nw_src/dst or
/// ct_ipv6_src/dst, ct_nw_proto, ct_tp_src and ct_tp_dst).
struct CtTuple {
    uint8_t src[16] = {};    ///< IPv4: the first 4 bytes
    uint8_t dst[16] = {};
    uint16_t src_port = 0;   ///< network order; ICMPv4: the query's type (Open vSwitch's), ICMPv6: its id
    uint16_t dst_port = 0;   ///< network order; ICMPv4: its code (0), ICMPv6: its id
    uint8_t nw_proto = 0;    ///< 0: no tuple
    uint8_t ipv6 = 0;        ///< 1: src and dst are IPv6 addresses

    bool operator==(const CtTuple&) const = default;
};

/// The tracker's statistics (the contract's `conntrack` object plus more).
struct CtStats {
    uint64_t connections = 0;  ///< in the table now (expired ones until reclaimed)
    uint64_t created = 0;      ///< ever committed
    uint64_t expired = 0;      ///< removed because they expired (or a TCP reuse replaced them)
    uint64_t flushed = 0;      ///< removed by ct-flush
    uint64_t refused = 0;      ///< commits refused: ct-max-connections or a full table
    uint64_t invalid = 0;      ///< packets that left a ct action with +inv
};

/// How a tracker is built.
struct ConnTrackerConfig {
    static constexpr uint32_t kDefaultLimit = 3'000'000;  ///< Open vSwitch's default
    static constexpr uint32_t kDefaultShardCapacity = 1u << 20;

    unsigned shards = 1;                 ///< one per worker
    uint32_t limit = kDefaultLimit;      ///< all shards together
    uint32_t shard_capacity = 0;         ///< slots per shard; 0: min(limit, kDefaultShardCapacity)
    uint64_t units_per_second = 1000;    ///< the unit of every `now`
    ConnTimeouts timeouts = ConnTimeouts::open_vswitch(1000);
    std::function<uint64_t()> clock;     ///< the cleanup thread's clock; empty: steady_clock in ms
    bool cleanup_thread = true;          ///< false: the owner calls ConnTracker::cleanup_round
    uint64_t cleanup_min_interval = 200;   ///< least time between two rounds (OVS: 200 ms)
    uint64_t cleanup_max_interval = 5000;  ///< most time between two rounds (OVS: 5 s)
    unsigned cleanup_budget = 16384;     ///< list steps per shard per round
    int socket = -1;                     ///< NUMA socket of the indexes (SOCKET_ID_ANY)

    /// The process configuration's ct-max-connections and ct-timeout-*, in
    /// TSC cycles (rte_get_tsc_hz(); the clock is rte_rdtsc), `shards` shards.
    static ConnTrackerConfig from(const Config& config, unsigned shards);
};

struct ShardState;
struct TrackerShared;

/// One worker's part of a tracker. Every method but the const ones runs on
/// that worker only (see the file comment).
class ConnShard {
public:
    ~ConnShard();
    ConnShard(const ConnShard&) = delete;
    ConnShard& operator=(const ConnShard&) = delete;

    /// Runs one ct action over `count` packets, in order, as Open vSwitch's
    /// conntrack_execute: reads and updates metas[i] (ct_state, ct_zone,
    /// ct_mark, the remembered connection), commits, applies the mark. Takes
    /// no lock, allocates nothing, throws nothing. Returns how many packets
    /// it ran: all, unless `stop_at_dependency`, which stops before the
    /// first packet whose verdict may depend on what an earlier one of the
    /// call does after this ct (it found no connection and may commit it
    /// later; or marks are rewritten and both have one connection): the
    /// caller finishes the earlier ones' pipelines first, as Open vSwitch
    /// runs each packet's alone, then calls again with the rest.
    unsigned execute(const CtAction& action, const CtPacket* packets, CtMeta* metas, unsigned count, uint64_t now,
                     bool stop_at_dependency = false);

    /// The original tuple of the connection `meta` (what `packet` left its
    /// last ct of this shard with) belongs to, as Open vSwitch writes it
    /// (write_ct_md): the remembered connection's forward key, else, for a
    /// new connection not committed, the packet's own. False when there is
    /// none (not tracked, invalid, or a related packet's connection is gone).
    bool original_tuple(const CtMeta& meta, const CtPacket& packet, CtTuple& out) const;

    /// The worker's share of expiry: frees the connections the cleanup thread
    /// found expired (unless refreshed since). Call it every poll round, with
    /// or without packets; returns how many it freed.
    unsigned maintain(uint64_t now);

    /// Connections in this shard now (any thread).
    uint32_t size() const;

private:
    friend class ConnTracker;
    explicit ConnShard(std::unique_ptr<ShardState> state);
    std::unique_ptr<ShardState> state_;
};

/// The connection tracker: shards, the cleanup thread, dumps and flushes.
class ConnTracker {
public:
    /// Throws Error when the configuration is impossible or memory (DPDK's
    /// for the indexes) runs out.
    explicit ConnTracker(ConnTrackerConfig config);
    ~ConnTracker();
    ConnTracker(const ConnTracker&) = delete;
    ConnTracker& operator=(const ConnTracker&) = delete;

    /// Worker `index`'s shard.
    ConnShard& shard(unsigned index) { return *shards_[index]; }
    unsigned shard_count() const { return static_cast<unsigned>(shards_.size()); }
    const ConnTrackerConfig& config() const { return config_; }
    /// The configured clock.
    uint64_t now() const;

    // ---- Control thread ----

    /// `ovs-appctl dpctl/dump-conntrack [zone=N]` text: one line per live
    /// connection (expired and flushed ones are left out), shard by shard in
    /// slot order.
    std::string dump(std::optional<uint16_t> zone = std::nullopt) const;
    /// Removes every connection (of `zone`): they stop matching at once; their
    /// memory comes back as the workers run maintain(). Returns how many.
    uint64_t flush(std::optional<uint16_t> zone = std::nullopt);
    /// Sums over the shards; each shard's connections/created/expired/flushed
    /// are one consistent sample (created = expired + flushed + connections).
    CtStats stats() const;
    /// Changes ct-max-connections (0: Open vSwitch's default).
    void set_limit(uint32_t limit);
    /// Bytes the tracker reserved: slots, expiry nodes, rings and indexes
    /// (address space, touched as connections use it).
    uint64_t memory_bytes() const;

    // ---- Cleanup ----

    /// One cleanup round over every shard at `now`; returns when the next
    /// round is due. The cleanup thread calls it; without the thread
    /// (config.cleanup_thread false) the owner does.
    uint64_t cleanup_round(uint64_t now);
    /// Wakes the cleanup thread for a round now. Returns the number of that
    /// round: once cleanup_rounds() reaches it, a round that began after this
    /// call is over.
    uint64_t wake_cleanup();
    /// Rounds finished so far.
    uint64_t cleanup_rounds() const;
    /// Every invariant of every shard's table (docs/conntrack.md); "" when
    /// they hold. Only while no worker and no cleanup round runs (tests).
    std::string check_invariants() const;

private:
    void cleanup_main();

    ConnTrackerConfig config_;
    std::unique_ptr<TrackerShared> shared_;
    std::vector<std::unique_ptr<ConnShard>> shards_;
};

/// flowpath-ctl `ct-dump [zone=N]` and `ct-flush [zone=N]`: the reply text,
/// or an Error naming the bad argument.
std::string ct_dump_command(const ConnTracker& tracker, const std::vector<std::string>& args);
std::string ct_flush_command(ConnTracker& tracker, const std::vector<std::string>& args);

}  // namespace flowpath
