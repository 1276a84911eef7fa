// The poll-mode worker: one per configured lcore. It polls its rx queues in
// bursts, decides each packet's output ports, and sends through per-port tx
// buffers. Everything it touches per packet is its own.
#pragma once

#include <rte_spinlock.h>

#include <atomic>
#include <cstdint>
#include <vector>

#include "flowpath/packet.hpp"
#include "flowpath/pipeline.hpp"
#include "flowpath/stats.hpp"

struct rte_mbuf;
struct rte_mempool;

namespace flowpath {

/// Packets per rx burst and per tx buffer.
inline constexpr unsigned kBurst = 32;

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
/// Per packet: parse the flow key, translate it through the rules into
/// datapath actions, apply them to the mbuf, and buffer a copy for every
/// output but the last, which takes the mbuf itself.
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

    void process_burst(const RxQueueRef& rxq, rte_mbuf** packets, unsigned count);
    void process_packet(uint32_t in_port, rte_mbuf* packet);
    void execute(rte_mbuf* packet, PacketLayout& layout);
    void drop(rte_mbuf* packet, DropReason reason);
    void enqueue(unsigned port_index, rte_mbuf* packet);
    void flush(unsigned port_index);
    void flush_all();

    WorkerPlan plan_;
    const std::atomic<bool>& stop_;
    std::vector<TxBuffer> tx_buffers_;  // indexed by port index
    WorkerCounters counters_;
    Translation translation_;  // reused for every packet: no allocation once warm
};

/// The lcore entry point for rte_eal_remote_launch: `arg` is a Worker*.
int run_worker(void* arg);

}  // namespace flowpath
