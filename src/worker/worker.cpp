// The poll loop. Per round: receive a burst from each rx queue, classify
// and edit every packet, buffer it per output port; flush a buffer when it
// is full, and flush every buffer after a round whose queues were all
// drained (no full burst): waiting longer would only add latency.
#include "flowpath/worker.hpp"

#include "flowpath/actions.hpp"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_prefetch.h>

namespace flowpath {

static_assert(kBurst <= kMaxLookupBurst);

Worker::Worker(WorkerPlan plan, const std::atomic<bool>& stop)
    : plan_(std::move(plan)),
      stop_(stop),
      tx_buffers_(plan_.tx.size()),
      counters_(plan_.tx.size()),
      cache_(*plan_.rules, kExactCacheEntries, kMegaflowLimit, kExactInsertInverseProbability) {}

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
            // A fresh stamp per burst: the cache spares only the megaflows
            // of the burst stamped with it (docs/cache.md, eviction).
            process_burst(rxq, burst, count, rte_rdtsc());
        }
        if (drained) flush_all();
        if (start >= next_housekeeping_) housekeeping(start);
        if (received) counters_.busy_cycles.add(rte_rdtsc() - start);
    }
    flush_all();
    return 0;
}

// About once a second: re-rank the megaflow subtables by recent hits, so the
// busiest masks are probed first.
void Worker::housekeeping(uint64_t now) {
    cache_.megaflows().rank_subtables();
    next_housekeeping_ = now + rte_get_tsc_hz();
}

void Worker::process_burst(const RxQueueRef& rxq, rte_mbuf** packets, unsigned count, uint64_t now) {
    counters_.in_flight.add(count);
    uint64_t bytes = 0;
    for (unsigned i = 0; i < count; ++i) bytes += rte_pktmbuf_pkt_len(packets[i]);
    PortCounters& in = counters_.per_port[rxq.port_index];
    in.rx_packets.add(count);
    in.rx_bytes.add(bytes);
    counters_.packets.add(count);

    // Headers are edited in place: they must sit in one segment.
    unsigned kept = 0;
    for (unsigned i = 0; i < count; ++i) {
        if (packets[i]->nb_segs > 1 && rte_pktmbuf_linearize(packets[i]) != 0) {
            drop(packets[i], DropReason::bad_packet);
            continue;
        }
        packets[kept++] = packets[i];
    }
    count = kept;

    const uint32_t in_port = rxq.port_index + 1u;  // OpenFlow numbering
    extract_burst(
        count,
        [packets](unsigned i) {
            return PacketView{rte_pktmbuf_mtod(packets[i], const uint8_t*), rte_pktmbuf_data_len(packets[i])};
        },
        in_port, flows_, layouts_);

    cache_.classify_burst(flows_, count, now, slots_);
    // The cache counts cumulatively for this worker alone: publish its totals.
    const FlowCacheCounters& cached = cache_.counters();
    counters_.exact_hits.set(cached.exact_hits);
    counters_.cache_hits.set(cached.megaflow_hits);
    counters_.misses.set(cached.misses);
    if (cached.installed != counters_.installed.get()) {  // the cache changed: its gauges too
        const MegaflowCache& megaflows = cache_.megaflows();
        counters_.upcalls.set(cached.upcalls);
        counters_.installed.set(cached.installed);
        counters_.evicted.set(megaflows.evictions());
        counters_.cache_entries.set(megaflows.size());
        counters_.cache_subtables.set(megaflows.subtable_count());
        counters_.cache_bytes.set(megaflows.memory_bytes());
    }

    // In arrival order, so that packets of one flow leave in order. Rule
    // counters are credited once per run of packets with the same megaflow.
    uint32_t run_slot = kNoFlow;
    uint64_t run_packets = 0, run_bytes = 0;
    for (unsigned i = 0; i < count; ++i) {
        Megaflow& flow = cache_.flow(slots_[i]);
        const uint32_t length = rte_pktmbuf_pkt_len(packets[i]);
        ++flow.packets;
        flow.bytes += length;
        if (slots_[i] != run_slot) {
            if (run_slot != kNoFlow) credit_rules(cache_.flow(run_slot), run_packets, run_bytes);
            run_slot = slots_[i];
            run_packets = run_bytes = 0;
        }
        ++run_packets;
        run_bytes += length;
        switch (flow.drop) {
            case TranslateDrop::none: execute(packets[i], layouts_[i], flow.actions); break;
            case TranslateDrop::no_match: drop(packets[i], DropReason::no_match); break;
            case TranslateDrop::no_output: drop(packets[i], DropReason::no_output); break;
            case TranslateDrop::ttl_expired: drop(packets[i], DropReason::ttl_expired); break;
            case TranslateDrop::too_deep: drop(packets[i], DropReason::too_deep); break;
        }
    }
    if (run_slot != kNoFlow) credit_rules(cache_.flow(run_slot), run_packets, run_bytes);
}

void Worker::credit_rules(const Megaflow& flow, uint64_t packets, uint64_t bytes) {
    for (RuleEntry* rule : flow.rules) {
        rule->packets.fetch_add(packets, std::memory_order_relaxed);
        rule->bytes.fetch_add(bytes, std::memory_order_relaxed);
    }
}

// Applies the datapath actions; every output but the last gets a copy of the
// packet as it is at that point, the last one the packet itself.
void Worker::execute(rte_mbuf* packet, PacketLayout& layout, const ActionList& actions) {
    PacketBuffer bytes{rte_pktmbuf_mtod(packet, uint8_t*), rte_pktmbuf_data_len(packet),
                       rte_pktmbuf_headroom(packet), rte_pktmbuf_tailroom(packet)};
    bool handed_over = false;
    const auto output = [&](uint32_t port, const PacketBuffer&, bool last) {
        // A VLAN push or pop moved the start or the length: tell the mbuf.
        packet->data_off = static_cast<uint16_t>(bytes.data - static_cast<uint8_t*>(packet->buf_addr));
        packet->data_len = static_cast<uint16_t>(bytes.len);
        packet->pkt_len = bytes.len;
        if (last) {
            handed_over = true;
            enqueue(port - 1, packet);
            return;
        }
        rte_mbuf* copy = rte_pktmbuf_copy(packet, plan_.pool, 0, UINT32_MAX);
        if (!copy) {
            counters_.drops[static_cast<unsigned>(DropReason::copy_failed)].add(1);
            return;
        }
        counters_.in_flight.add(1);
        enqueue(port - 1, copy);
    };
    execute_actions(bytes, layout, actions.data(), actions.size(), output);
    // Only a VLAN push without room stops the list before its last output.
    if (!handed_over) drop(packet, DropReason::bad_packet);
}

void Worker::drop(rte_mbuf* packet, DropReason reason) {
    rte_pktmbuf_free(packet);
    counters_.drops[static_cast<unsigned>(reason)].add(1);
    counters_.in_flight.set(counters_.in_flight.get() - 1);
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
