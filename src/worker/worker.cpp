// The poll loop. Per round: receive a burst from each rx queue, decide the
// output of every packet, buffer it per output port; flush a buffer when it
// is full, and flush every buffer after a round whose queues were all
// drained (no full burst): waiting longer would only add latency.
#include "flowpath/worker.hpp"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_prefetch.h>

namespace flowpath {

Worker::Worker(WorkerPlan plan, const std::atomic<bool>& stop)
    : plan_(std::move(plan)), stop_(stop), tx_buffers_(plan_.tx.size()), counters_(plan_.tx.size()) {}

int run_worker(void* arg) { return static_cast<Worker*>(arg)->run(); }

int Worker::run() {
    rte_mbuf* burst[kBurst];
    while (!stop_.load(std::memory_order_relaxed)) {
        const uint64_t start = rte_rdtsc();
        unsigned received = 0;
        bool drained = true;
        for (const RxQueueRef& rxq : plan_.rx) {
            const uint16_t count = rte_eth_rx_burst(rxq.port_id, rxq.queue, burst, kBurst);
            if (count == 0) continue;
            if (count == kBurst) drained = false;
            received += count;
            process_burst(rxq, burst, count);
        }
        if (drained) flush_all();
        if (received) counters_.busy_cycles.add(rte_rdtsc() - start);
    }
    flush_all();
    return 0;
}

void Worker::process_burst(const RxQueueRef& rxq, rte_mbuf** packets, unsigned count) {
    counters_.in_flight.add(count);
    uint64_t bytes = 0;
    const unsigned out_port = plan_.output_of[rxq.port_index];
    for (unsigned i = 0; i < count; ++i) {
        if (i + 1 < count) rte_prefetch0(rte_pktmbuf_mtod(packets[i + 1], void*));
        bytes += rte_pktmbuf_pkt_len(packets[i]);
        enqueue(out_port, packets[i]);
    }
    PortCounters& in = counters_.per_port[rxq.port_index];
    in.rx_packets.add(count);
    in.rx_bytes.add(bytes);
    counters_.packets.add(count);
}

void Worker::enqueue(unsigned port_index, rte_mbuf* packet) {
    TxBuffer& buffer = tx_buffers_[port_index];
    buffer.packets[buffer.count++] = packet;
    if (buffer.count == kBurst) flush(port_index);
}

void Worker::flush(unsigned port_index) {
    TxBuffer& buffer = tx_buffers_[port_index];
    if (buffer.count == 0) return;
    const TxQueueRef& txq = plan_.tx[port_index];
    uint64_t bytes = 0;
    for (unsigned i = 0; i < buffer.count; ++i) bytes += rte_pktmbuf_pkt_len(buffer.packets[i]);

    if (txq.lock) rte_spinlock_lock(txq.lock);
    unsigned sent = 0;
    for (unsigned tries = 0; sent < buffer.count && tries < kTxRetries;) {
        const uint16_t now = rte_eth_tx_burst(txq.port_id, txq.queue, buffer.packets + sent,
                                              static_cast<uint16_t>(buffer.count - sent));
        sent += now;
        tries = now ? 0 : tries + 1;  // retry only while the queue makes no progress
    }
    if (txq.lock) rte_spinlock_unlock(txq.lock);

    PortCounters& out = counters_.per_port[port_index];
    if (sent < buffer.count) {
        const unsigned dropped = buffer.count - sent;
        for (unsigned i = sent; i < buffer.count; ++i) bytes -= rte_pktmbuf_pkt_len(buffer.packets[i]);
        rte_pktmbuf_free_bulk(buffer.packets + sent, dropped);
        out.tx_dropped.add(dropped);
        counters_.drops[static_cast<unsigned>(DropReason::tx_queue_full)].add(dropped);
    }
    out.tx_packets.add(sent);
    out.tx_bytes.add(bytes);
    counters_.in_flight.set(counters_.in_flight.get() - buffer.count);
    buffer.count = 0;
}

void Worker::flush_all() {
    for (unsigned port = 0; port < tx_buffers_.size(); ++port) flush(port);
}

}  // namespace flowpath
