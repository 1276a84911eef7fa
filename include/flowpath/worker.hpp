// The poll-mode worker: one per configured lcore. It polls its rx queues in
// bursts, runs each burst through pipeline passes (its own caches, its own
// connection-tracker shard), hands the misses to the slow path and applies
// its answers, and sends through per-port tx buffers. Everything it touches
// per packet is its own.
#pragma once

#include <rte_spinlock.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "flowpath/cache.hpp"
#include "flowpath/config.hpp"
#include "flowpath/conntrack.hpp"
#include "flowpath/packet.hpp"
#include "flowpath/passes.hpp"
#include "flowpath/pipeline.hpp"
#include "flowpath/slowpath.hpp"
#include "flowpath/stats.hpp"

struct rte_mbuf;
struct rte_mempool;

namespace flowpath {

/// Packets per rx burst and per tx buffer.
inline constexpr unsigned kBurst = 32;

/// One megaflow hit in this many enters the exact cache (Open vSwitch's
/// emc-insert-inv-prob default): a flood of short flows cannot thrash it,
/// while a long flow gets in within its first few hundred packets.
inline constexpr uint32_t kExactInsertInverseProbability = 100;

/// Bytes of a worker's copy of chained frames for the connection tracker,
/// which reads a frame whole (more than the longest frame, 65535 bytes).
inline constexpr uint32_t kCtScratchBytes = 1u << 16;

/// Tries of a tx burst that sent nothing before the rest is dropped.
inline constexpr unsigned kTxRetries = 16;

/// One rx queue a worker polls.
struct RxQueueRef {
    uint16_t port_index;  ///< index in the datapath's port list (OpenFlow port - 1)
    uint16_t port_id;     ///< DPDK port id
    uint16_t queue;
    uint32_t mtu = 1500;  ///< the port's: a frame whose L2 payload exceeds it is dropped (too_big)
};

/// TxQueueRef::mtu of a port no frame can exceed.
inline constexpr uint32_t kNoTxMtu = 1u << 30;

/// The tx queue a worker uses on one port; `lock` is set only when workers
/// outnumber the port's tx queues and must share one.
struct TxQueueRef {
    uint16_t port_id = 0;
    uint16_t queue = 0;
    rte_spinlock_t* lock = nullptr;
    /// The port's MTU where a frame may exceed it (another port's is
    /// larger): such a frame is dropped (too_big); else kNoTxMtu.
    uint32_t mtu = kNoTxMtu;
};

/// What a worker needs to run: fixed at start-up, read-only afterwards.
struct WorkerPlan {
    unsigned lcore = 0;
    std::vector<RxQueueRef> rx;
    std::vector<TxQueueRef> tx;        ///< indexed by port index
    UpcallChannel* channel = nullptr;  ///< to and from the slow path
    rte_mempool* pool = nullptr;       ///< for the copies that extra outputs need
    uint32_t flow_limit = 200000;      ///< megaflows in its cache
    uint32_t exact_cache_entries = kDefaultExactCacheEntries;          ///< --exact-cache-entries
    uint32_t signature_cache_entries = kDefaultSignatureCacheEntries;  ///< --signature-cache-entries; 0: none
    uint32_t tx_flush_interval_us = 0; ///< longest wait in a tx buffer; 0: every round
};

/// Reply operations a worker applies per poll round at most (then it polls
/// its rx queues again): bounds the pause a burst of installs can cause.
inline constexpr unsigned kReplyOpsPerRound = 512;
/// Saturated poll rounds (every rx queue gave a full burst) per TSC read:
/// the others reuse the last reading (Worker::run).
inline constexpr unsigned kRoundsPerTscRead = 4;
/// How many reply ops ahead a worker prefetches an answered packet's header.
inline constexpr unsigned kReplyPrefetch = 8;
/// Packets a worker may hold back behind their flow's upcalls (more are
/// dropped as upcall_queue_full): as many as may wait at the slow path,
/// since a burst of new flows whose answers are late (the slow-path thread
/// sharing a CPU with a worker) is held for as long as they are.
inline constexpr unsigned kHeldPackets = kUpcallRingSize;
/// How long a stopping worker waits for the slow path to answer its
/// outstanding upcalls before it gives up on them.
inline constexpr unsigned kDrainTimeoutMs = 2000;

/// One poll-mode worker. Constructed on the main thread; run() executes on
/// its lcore until `stop` is set, then flushes what it buffered and returns.
///
/// Per round: apply the slow path's replies (installs, updates, removals and
/// the packets it answered), then per rx burst one pass of pipeline stages:
///   extract   every packet's miniflow (plus, after a recirculation, the
///             metadata words: recirc_id, ct_state, ct_zone, ct_mark);
///   classify  find its megaflow in the FlowCache (exact, megaflow cache);
///   dispatch  in arrival order: no megaflow -> the slow path; one whose
///             earlier packets are still there (or, for a megaflow that runs
///             the tracker, any earlier packet at the slow path) -> held;
///             else into its megaflow's group;
///   execute   group by group (in the order of their first packets, as Open
///             vSwitch's batches), the megaflow's datapath actions: header
///             changes and outputs per packet, the ct action for the whole
///             group at once (the worker's ConnShard), and a recirculation
///             sends the group (or copies) through a nested pass of the same
///             stages, finished before the group goes on.
/// Every pass of a burst is done before the next rx burst.
class Worker {
public:
    Worker(WorkerPlan plan, const std::atomic<bool>& stop);
    ~Worker();

    /// The poll loop. Returns 0 (the lcore function's status).
    int run();

    /// Gives the worker its shard of the connection tracker (main thread,
    /// before any megaflow that runs ct can reach it; read every round).
    void set_conntrack(ConnShard* shard) { conntrack_.store(shard, std::memory_order_release); }

    const WorkerPlan& plan() const { return plan_; }
    const WorkerCounters& counters() const { return counters_; }
    /// The megaflow cache the slow path mirrors (it reads the statistics).
    const MegaflowCache& megaflows() const { return cache_.megaflows(); }

private:
    /// Packets waiting for one port's tx queue.
    struct TxBuffer {
        rte_mbuf* packets[kBurst];
        unsigned count = 0;
        uint64_t oldest = 0;  // TSC when the first buffered packet came
        uint64_t bytes = 0;   // what the next flush counts (see enqueue_packets)
    };
    /// One packet between the stages of a pass.
    struct InFlight {
        rte_mbuf* packet;
        PacketLayout layout;
        PacketMeta meta;
    };
    /// A packet held back until the upcalls before it are answered.
    struct HeldPacket {
        rte_mbuf* packet;
        PacketLayout layout;
        PacketMeta meta;
        uint32_t slot;
        uint32_t generation;   // of the megaflow when held
        uint64_t release_seq;  // upcalls answered before it may go
        uint32_t resume_at;    // the action it goes on from (a fork stopped it), or 0
    };
    /// What one pass works on. One per nesting level: a recirculation runs
    /// its pass while the pass that sent it waits, at most kMaxRecircDepth
    /// deep.
    struct PassScratch {
        InFlight packets[kBurst];   // the pass's packets, arrival order
        Miniflow flows[kBurst];
        uint32_t slots[kBurst];
        InFlight group[kBurst];     // one megaflow's packets, for execute
    };
    static constexpr unsigned kPassLevels = kMaxRecircDepth + 1;

    // The stages of a pass.
    void receive(const RxQueueRef& rxq, rte_mbuf** packets, unsigned count, uint64_t now);
    bool forward_simple(const RxQueueRef& rxq, rte_mbuf** packets, unsigned count, uint64_t now, uint64_t& bytes);
    bool forwards_now(const Megaflow& flow) const;
    void run_pass(unsigned level, unsigned count, uint64_t now, uint32_t previous = RecircShortcuts::kNone);
    bool take_shortcuts(uint32_t previous, const InFlight* packets, unsigned count, uint32_t* slots);
    void learn_shortcuts(uint32_t previous, const InFlight* packets, unsigned count, uint64_t missed,
                         const uint32_t* slots);
    void execute_groups(InFlight* packets, const PassGroups& groups, unsigned level, uint64_t now);
    void execute(uint32_t slot, InFlight* group, unsigned count, size_t from, unsigned level, uint64_t now);
    [[gnu::always_inline]] static uint64_t credit(Megaflow& flow, const InFlight* group, unsigned count, uint64_t now);
    unsigned run_range(InFlight* group, unsigned count, const ActionList& actions, size_t from, size_t to,
                       size_t taker);
    unsigned conntrack(const Action& action, InFlight* group, unsigned count, uint64_t now);
    unsigned track(const CtAction& action, const CtPacket* packets, CtMeta* metas, unsigned count, uint64_t now);
    void fill_ct_packet(const InFlight& p, uint8_t* scratch, CtPacket& ct);
    unsigned drop_split(PassScratch& pass, unsigned count, uint32_t split);
    unsigned to_controller(const Action& action, InFlight* group, unsigned count, bool take);
    void inject(rte_mbuf* packet, uint32_t in_port, uint32_t recirc_id, uint64_t now);
    void recirculate(uint32_t recirc_id, InFlight* group, unsigned count, bool take, unsigned level, uint64_t now,
                     uint32_t previous);

    // The slow path: upcalls, its answers, and the packets held behind them.
    unsigned apply_replies(uint64_t now, unsigned budget);
    void prefetch_reply_op(const ReplyOp& op) const;
    void resume(const ReplyOp& op, uint64_t now);
    void upcall(const InFlight& packet);
    bool earlier_pending(uint32_t stamp) const;
    bool must_wait(const Megaflow& flow, const PacketMeta& meta) const;
    bool waits_for_upcalls(const Megaflow& flow) const;
    bool hold(const InFlight& packet, uint32_t slot, Megaflow& flow, uint64_t release_seq, size_t resume_at);
    bool releasable(const HeldPacket& held) const;
    void release_held(uint64_t now);
    void unhold(uint32_t slot, uint64_t now);
    void transmit(rte_mbuf* packet, uint32_t port_index);
    void release_transmits();
    void drain();
    // The slow-path thread may have parked: costs a fence and a load unless it did.
    void ring_slow_path() {
        wake_slow_path_ = false;
        plan_.channel->wake_slow_path();
    }

    void publish_hit_counters();
    void publish_cache_counters();
    void housekeeping(uint64_t now);
    void drop(rte_mbuf* packet, DropReason reason);
    void enqueue(unsigned port_index, rte_mbuf* packet);
    template <typename PacketOf>
    void enqueue_packets(unsigned port_index, unsigned count, PacketOf&& packet_of, uint64_t bytes);
    void flush(unsigned port_index);
    void flush_all();
    void flush_due(uint64_t now);

    WorkerPlan plan_;
    const std::atomic<bool>& stop_;
    std::vector<TxBuffer> tx_buffers_;  // indexed by port index
    WorkerCounters counters_;
    FlowCache cache_;
    std::atomic<ConnShard*> conntrack_{nullptr};
    ConnShard* shard_ = nullptr;      // conntrack_ as read at the start of the round
    uint64_t next_housekeeping_ = 0;  // TSC
    uint64_t tx_flush_ticks_ = 0;     // tx_flush_interval_us in TSC ticks
    uint32_t next_stamp_ = 0;         // arrival order of received packets
    // Upcalls sent and answered, and the earliest-arrived packet among those
    // outstanding. A megaflow whose pending_seq is above the answered count
    // may have packets at the slow path: its packets follow them there.
    UpcallOrder order_;
    HeldQueue<HeldPacket> held_;
    std::vector<HeldPacket> finishing_;  // unhold's, reserved: no allocation
    // A packet-out's packets sent as they are (ReplyOp transmit) that came
    // while earlier packets, such as an earlier packet-out's OUTPUT:TABLE,
    // were at the slow path or held: they leave after those, as Open
    // vSwitch runs each packet-out to its end before the next.
    struct DeferredTransmit {
        rte_mbuf* packet;
        uint32_t port_index;
        uint32_t stamp;        // its place in arrival order
        uint64_t release_seq;  // upcalls answered before it may go
    };
    FixedRing<DeferredTransmit> deferred_;  // kHeldPackets
    bool wake_slow_path_ = false;  // upcalls or packet-ins queued this round: ring once at its end
    std::unique_ptr<PassScratch[]> scratch_;  // kPassLevels, so the hot loop never allocates
    std::unique_ptr<uint8_t[]> ct_scratch_;   // kCtScratchBytes: chained frames the tracker reads
    // The megaflow a recirculated pass finds, by the one it left and its ct
    // fields (passes.hpp); its hits count as megaflow cache hits.
    std::unique_ptr<RecircShortcuts> shortcuts_;
    uint64_t shortcut_hits_ = 0;
};

// The ordering checks, inline: dispatch asks them for every packet.

// Whether a packet that arrived before the one stamped `stamp` has not gone
// through its pipeline yet: it is at the slow path, or held.
inline bool Worker::earlier_pending(uint32_t stamp) const {
    return order_.earlier_outstanding(stamp) || (!held_.empty() && stamp_before(held_.front().meta.stamp, stamp));
}

// Whether a packet that found `flow` must wait: the megaflow may still have
// earlier packets at the slow path or held; and for a megaflow that runs the
// tracker, any earlier packet that has not gone through its pipeline yet (it
// may be of the same connection, in another megaflow: the tracker sees
// packets in arrival order, as Open vSwitch's, whose misses are handled
// before later packets).
// A recirculated packet waits likewise for any earlier packet: after a ct,
// packets of one connection part into megaflows by their ct fields, so one
// whose megaflow is ready must not overtake an earlier one of its flow that
// missed in another.
inline bool Worker::must_wait(const Megaflow& flow, const PacketMeta& meta) const {
    return waits_for_upcalls(flow) || ((flow.runs_ct || meta.recirc_id) && earlier_pending(meta.stamp));
}

// Whether the megaflow may still have earlier packets at the slow path (the
// upcalls sent before its install are not all answered) or held.
inline bool Worker::waits_for_upcalls(const Megaflow& flow) const {
    return flow.pending_seq > order_.answered_count() || flow.held;
}

/// The lcore entry point for rte_eal_remote_launch: `arg` is a Worker*.
int run_worker(void* arg);

}  // namespace flowpath
