// The poll-mode worker: one per configured lcore. It polls its rx queues in
// bursts, decides each packet's output ports, and sends through per-port tx
// buffers. Everything it touches per packet is its own.
#pragma once

#include <rte_spinlock.h>

#include <atomic>
#include <cstdint>
#include <vector>

#include "flowpath/cache.hpp"
#include "flowpath/packet.hpp"
#include "flowpath/pipeline.hpp"
#include "flowpath/stats.hpp"

struct rte_mbuf;
struct rte_mempool;

namespace flowpath {

/// Packets per rx burst and per tx buffer.
inline constexpr unsigned kBurst = 32;

/// Exact-match cache entries per worker (Open vSwitch's EMC size).
inline constexpr uint32_t kExactCacheEntries = 8192;
/// Megaflows per worker (Open vSwitch's default flow-limit).
inline constexpr uint32_t kMegaflowLimit = 200000;
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
    const RuleSet* rules = nullptr;    ///< read-only while workers run
    rte_mempool* pool = nullptr;       ///< for the copies that extra outputs need
};

/// One poll-mode worker. Constructed on the main thread; run() executes on
/// its lcore until `stop` is set, then flushes what it buffered and returns.
///
/// Per burst: extract every packet's miniflow, find each one's megaflow in
/// the FlowCache (exact cache, megaflow cache, else translate and install),
/// then, in arrival order, apply the megaflow's datapath actions to the mbuf
/// and buffer a copy for every output but the last, which takes the mbuf.
class Worker {
public:
    Worker(WorkerPlan plan, const std::atomic<bool>& stop);

    /// The poll loop. Returns 0 (the lcore function's status).
    int run();

    const WorkerPlan& plan() const { return plan_; }
    const WorkerCounters& counters() const { return counters_; }

private:
    /// Packets waiting for one port's tx queue.
    struct TxBuffer {
        rte_mbuf* packets[kBurst];
        unsigned count = 0;
    };

    void process_burst(const RxQueueRef& rxq, rte_mbuf** packets, unsigned count, uint64_t now);
    void credit_rules(const Megaflow& flow, uint64_t packets, uint64_t bytes);
    void execute(rte_mbuf* packet, PacketLayout& layout, const ActionList& actions);
    void housekeeping(uint64_t now);
    void drop(rte_mbuf* packet, DropReason reason);
    void enqueue(unsigned port_index, rte_mbuf* packet);
    void flush(unsigned port_index);
    void flush_all();

    WorkerPlan plan_;
    const std::atomic<bool>& stop_;
    std::vector<TxBuffer> tx_buffers_;  // indexed by port index
    WorkerCounters counters_;
    FlowCache cache_;
    uint64_t next_housekeeping_ = 0;  // TSC
    // Per-burst scratch, kept here so the hot loop never allocates.
    Miniflow flows_[kBurst];
    PacketLayout layouts_[kBurst];
    uint32_t slots_[kBurst];
};

/// The lcore entry point for rte_eal_remote_launch: `arg` is a Worker*.
int run_worker(void* arg);

}  // namespace flowpath
