// The poll-mode worker: one per configured lcore. It polls its rx queues in
// bursts, finds each packet's megaflow in its own caches, hands the misses
// to the slow path and applies its answers, and sends through per-port tx
// buffers. Everything it touches per packet is its own.
#pragma once

#include <rte_spinlock.h>

#include <atomic>
#include <cstdint>
#include <vector>

#include "flowpath/cache.hpp"
#include "flowpath/packet.hpp"
#include "flowpath/pipeline.hpp"
#include "flowpath/slowpath.hpp"
#include "flowpath/stats.hpp"

struct rte_mbuf;
struct rte_mempool;

namespace flowpath {

/// Packets per rx burst and per tx buffer.
inline constexpr unsigned kBurst = 32;

/// Exact-match cache entries per worker (Open vSwitch's EMC size).
inline constexpr uint32_t kExactCacheEntries = 8192;
/// One megaflow hit in this many enters the exact cache (Open vSwitch's
/// emc-insert-inv-prob default): a flood of short flows cannot thrash it,
/// while a long flow gets in within its first few hundred packets.
inline constexpr uint32_t kExactInsertInverseProbability = 100;

/// Tries of a tx burst that sent nothing before the rest is dropped.
inline constexpr unsigned kTxRetries = 16;

/// One rx queue a worker polls.
struct RxQueueRef {
    uint16_t port_index;  ///< index in the datapath's port list (OpenFlow port - 1)
    uint16_t port_id;     ///< DPDK port id
    uint16_t queue;
};

/// The tx queue a worker uses on one port; `lock` is set only when workers
/// outnumber the port's tx queues and must share one.
struct TxQueueRef {
    uint16_t port_id = 0;
    uint16_t queue = 0;
    rte_spinlock_t* lock = nullptr;
};

/// What a worker needs to run: fixed at start-up, read-only afterwards.
struct WorkerPlan {
    unsigned lcore = 0;
    std::vector<RxQueueRef> rx;
    std::vector<TxQueueRef> tx;        ///< indexed by port index
    UpcallChannel* channel = nullptr;  ///< to and from the slow path
    rte_mempool* pool = nullptr;       ///< for the copies that extra outputs need
    uint32_t flow_limit = 200000;      ///< megaflows in its cache
    uint32_t tx_flush_interval_us = 0; ///< longest wait in a tx buffer; 0: every round
    uint32_t mtu = 1500;               ///< a frame whose L2 payload exceeds it is dropped (too_big)
};

/// Reply operations a worker applies per poll round at most (then it polls
/// its rx queues again): bounds the pause a burst of installs can cause.
inline constexpr unsigned kReplyOpsPerRound = 512;
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
/// the packets it answered), then per rx burst: extract every packet's
/// miniflow, find its megaflow in the FlowCache (exact cache, megaflow
/// cache), and in arrival order either hand it to the slow path (no
/// megaflow, or one whose earlier packets are still there) or apply the
/// megaflow's datapath actions, buffering a copy for every output but the
/// last, which takes the mbuf.
class Worker {
public:
    Worker(WorkerPlan plan, const std::atomic<bool>& stop);

    /// The poll loop. Returns 0 (the lcore function's status).
    int run();

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
    };

    void process_burst(const RxQueueRef& rxq, rte_mbuf** packets, unsigned count, uint64_t now);
    unsigned apply_replies(uint64_t now, unsigned budget);
    void forward(rte_mbuf* packet, PacketLayout& layout, Megaflow& flow, uint64_t now);
    void upcall(rte_mbuf* packet, uint32_t in_port);
    bool hold(rte_mbuf* packet, uint32_t in_port, uint32_t slot, Megaflow& flow, const PacketLayout& layout);
    void release_held(uint64_t now);
    void unhold(uint32_t slot);
    void publish_cache_counters();
    void drain();
    void execute(rte_mbuf* packet, PacketLayout& layout, const ActionList& actions);
    void housekeeping(uint64_t now);
    void drop(rte_mbuf* packet, DropReason reason);
    void enqueue(unsigned port_index, rte_mbuf* packet);
    void flush(unsigned port_index);
    void flush_all();
    void flush_due(uint64_t now);

    WorkerPlan plan_;
    const std::atomic<bool>& stop_;
    std::vector<TxBuffer> tx_buffers_;  // indexed by port index
    WorkerCounters counters_;
    FlowCache cache_;
    uint64_t next_housekeeping_ = 0;  // TSC
    uint64_t tx_flush_ticks_ = 0;     // tx_flush_interval_us in TSC ticks
    // Upcalls sent and answered so far (sequence numbers: upcall n is the
    // n-th sent). A megaflow whose pending_seq is above `answered_` may have
    // packets at the slow path: its packets follow them there.
    uint64_t upcalls_sent_ = 0;
    uint64_t upcalls_answered_ = 0;
    // Packets of megaflows with packets still at the slow path, waiting
    // (FIFO) until every upcall up to their release_seq was forwarded.
    struct HeldPacket {
        rte_mbuf* packet;
        uint32_t slot;
        uint32_t generation;  // of the megaflow when held
        uint32_t in_port;
        uint64_t release_seq;
        PacketLayout layout;
    };
    std::vector<HeldPacket> held_;  // ring of kHeldPackets
    unsigned held_head_ = 0, held_count_ = 0;
    // Per-burst scratch, kept here so the hot loop never allocates.
    Miniflow flows_[kBurst];
    PacketLayout layouts_[kBurst];
    uint32_t slots_[kBurst];
};

/// The lcore entry point for rte_eal_remote_launch: `arg` is a Worker*.
int run_worker(void* arg);

}  // namespace flowpath
