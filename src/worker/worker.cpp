// The poll loop. Per round: apply what the slow path answered, receive a
// burst from each rx queue, classify and edit every packet, buffer it per
// output port; a full buffer is sent at once, the others when their oldest
// packet has waited tx-flush-interval (0: at the end of every round).
#include "flowpath/worker.hpp"

#include "flowpath/actions.hpp"
#include "flowpath/mtu.hpp"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_prefetch.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include <thread>

namespace flowpath {

static_assert(kBurst <= kMaxLookupBurst);

namespace {
// Checks a received frame before classification; DropReason::count_ lets it
// go on. A frame whose L2 payload exceeds the MTU is too_big. A chained
// frame within the MTU is made contiguous: the parser checks the IP lengths
// and the actions the transport length against the bytes they see, so a
// frame cut at a segment boundary would classify differently. The pool's
// data room holds a whole frame of the MTU (frame_room), so devices do not
// chain such frames and, should one do, the copy always has room.
inline DropReason admit_frame(rte_mbuf* packet, uint32_t mtu) {
    if (exceeds_mtu(rte_pktmbuf_mtod(packet, const uint8_t*), rte_pktmbuf_data_len(packet),
                    rte_pktmbuf_pkt_len(packet), mtu)) {
        return DropReason::too_big;
    }
    if (packet->nb_segs > 1 && rte_pktmbuf_linearize(packet) != 0) return DropReason::bad_packet;
    return DropReason::count_;
}
}  // namespace

Worker::Worker(WorkerPlan plan, const std::atomic<bool>& stop)
    : plan_(std::move(plan)),
      stop_(stop),
      tx_buffers_(plan_.tx.size()),
      counters_(plan_.tx.size()),
      cache_(kExactCacheEntries, plan_.flow_limit, kExactInsertInverseProbability),
      tx_flush_ticks_(rte_get_tsc_hz() / 1'000'000 * plan_.tx_flush_interval_us),
      held_(kHeldPackets) {}

int run_worker(void* arg) { return static_cast<Worker*>(arg)->run(); }

int Worker::run() {
    rte_mbuf* burst[kBurst];
    while (!stop_.load(std::memory_order_relaxed)) {
        const uint64_t start = rte_rdtsc();
        // The slow path's answers first: the packets it sends back leave
        // before any packet of a newer burst.
        const unsigned applied = apply_replies(start, kReplyOpsPerRound);
        unsigned received = 0;
        for (const RxQueueRef& rxq : plan_.rx) {
            const uint16_t count = rte_eth_rx_burst(rxq.port_id, rxq.queue, burst, kBurst);
            if (count == 0) continue;
            received += count;
            // A fresh stamp per burst (megaflow last-use times).
            process_burst(rxq, burst, count, rte_rdtsc());
        }
        const uint64_t end = rte_rdtsc();
        flush_due(end);
        if (start >= next_housekeeping_) housekeeping(start);
        if (received || applied) counters_.busy_cycles.add(end - start);
    }
    drain();
    flush_all();
    return 0;
}

// Stopping: the upcalls already sent are still answered and sent on, so a
// clean stop loses no packet (unless the slow path stays silent too long).
void Worker::drain() {
    const uint64_t deadline = rte_rdtsc() + rte_get_tsc_hz() / 1000 * kDrainTimeoutMs;
    while ((upcalls_answered_ < upcalls_sent_ || held_count_) && rte_rdtsc() < deadline) {
        if (apply_replies(rte_rdtsc(), kReplyOpsPerRound) == 0) std::this_thread::yield();
        flush_due(rte_rdtsc());
    }
    // The slow path stayed silent: what is still held is dropped, counted
    // (the upcalls it never answered are freed when it stops).
    for (; held_count_; --held_count_, held_head_ = (held_head_ + 1) % kHeldPackets) {
        drop(held_[held_head_].packet, DropReason::upcall_queue_full);
    }
}

// About once a second: re-rank the megaflow subtables by recent hits, so the
// busiest masks are probed first.
void Worker::housekeeping(uint64_t now) {
    cache_.megaflows().rank_subtables();
    next_housekeeping_ = now + rte_get_tsc_hz();
}

void Worker::publish_cache_counters() {
    // The cache counts cumulatively for this worker alone: publish its totals.
    const FlowCacheCounters& cached = cache_.counters();
    counters_.exact_hits.set(cached.exact_hits);
    counters_.cache_hits.set(cached.megaflow_hits);
    counters_.misses.set(cached.misses);
    const MegaflowCache& megaflows = cache_.megaflows();
    counters_.cache_entries.set(megaflows.size());
    counters_.cache_subtables.set(megaflows.subtable_count());
    counters_.cache_bytes.set(cache_.memory_bytes());  // exact + signature + megaflow caches
}

unsigned Worker::apply_replies(uint64_t now, unsigned budget) {
    UpcallChannel& channel = *plan_.channel;
    unsigned applied = 0;
    Reply* reply = nullptr;
    bool cache_changed = false;
    while (applied < budget && rte_ring_sc_dequeue(channel.replies(), reinterpret_cast<void**>(&reply)) == 0) {
        for (ReplyOp& op : reply->ops) {
            if (op.kind == ReplyOp::Kind::remove && cache_.flow(op.slot).held) unhold(op.slot);
            // Upcalls sent so far may hold packets of a megaflow installed now.
            if (apply_cache_op(cache_, op, *reply, now, upcalls_sent_)) {
                cache_changed = true;
            } else if (op.kind == ReplyOp::Kind::packet) {
                forward(static_cast<rte_mbuf*>(op.packet), op.layout, cache_.flow(op.slot), now);
                ++upcalls_answered_;
                if (held_count_) release_held(now);
            } else {
                channel.applied_generation.store(op.generation, std::memory_order_release);
            }
        }
        applied += static_cast<unsigned>(reply->ops.size());
        // Sized to hold every reply: the slow path made no more than that.
        rte_ring_sp_enqueue(channel.recycled(), reply);
    }
    if (cache_changed) publish_cache_counters();
    return applied;
}

// Holds a packet whose megaflow may still have earlier packets at the slow
// path; false when the worker holds all it can.
bool Worker::hold(rte_mbuf* packet, uint32_t in_port, uint32_t slot, Megaflow& flow, const PacketLayout& layout) {
    if (held_count_ == kHeldPackets) return false;
    held_[(held_head_ + held_count_) % kHeldPackets] = {packet, slot, flow.generation, in_port, flow.pending_seq,
                                                          layout};
    ++held_count_;
    ++flow.held;
    return true;
}

// The megaflow at `slot` goes while some of its packets are held: they go
// to the slow path now, in their order, before any later packet of their
// flow can (later ones arrive after this reply, and miss or find a
// megaflow installed after these upcalls).
void Worker::unhold(uint32_t slot) {
    Megaflow& flow = cache_.flow(slot);
    unsigned kept = 0;
    for (unsigned n = 0; n < held_count_; ++n) {
        HeldPacket& held = held_[(held_head_ + n) % kHeldPackets];
        if (held.slot == slot && held.generation == flow.generation) {
            upcall(held.packet, held.in_port);
        } else {
            held_[(held_head_ + kept++) % kHeldPackets] = held;
        }
    }
    held_count_ = kept;
    flow.held = 0;
}

// Forwards held packets, oldest first, while the upcalls each waits for have
// all been forwarded. (FIFO across megaflows: a packet may wait a little
// longer than its own megaflow needs, never less.)
void Worker::release_held(uint64_t now) {
    while (held_count_) {
        HeldPacket& held = held_[held_head_];
        if (held.release_seq > upcalls_answered_) return;
        held_head_ = (held_head_ + 1) % kHeldPackets;
        --held_count_;
        Megaflow& flow = cache_.flow(held.slot);
        --flow.held;  // (a megaflow removed while holding gave its packets back: unhold)
        forward(held.packet, held.layout, flow, now);
    }
}

void Worker::upcall(rte_mbuf* packet, uint32_t in_port) {
    Upcall message{packet, in_port, 0};
    if (rte_ring_sp_enqueue_elem(plan_.channel->upcalls(), &message, sizeof message) != 0) {
        drop(packet, DropReason::upcall_queue_full);
        return;
    }
    ++upcalls_sent_;
}

// Takes the megaflow's fate: counted in its statistics, then dropped under
// the translation's reason or edited and buffered for its outputs.
void Worker::forward(rte_mbuf* packet, PacketLayout& layout, Megaflow& flow, uint64_t now) {
    flow.packets.add(1);
    flow.bytes.add(rte_pktmbuf_pkt_len(packet));
    flow.last_used.set(now);
    switch (flow.drop) {
        case TranslateDrop::none: execute(packet, layout, flow.actions); break;
        case TranslateDrop::no_match: drop(packet, DropReason::no_match); break;
        case TranslateDrop::no_output: drop(packet, DropReason::no_output); break;
        case TranslateDrop::ttl_expired: drop(packet, DropReason::ttl_expired); break;
        case TranslateDrop::too_deep: drop(packet, DropReason::too_deep); break;
    }
}

void Worker::process_burst(const RxQueueRef& rxq, rte_mbuf** packets, unsigned count, uint64_t now) {
    counters_.in_flight.add(count);
    uint64_t bytes = 0;
    for (unsigned i = 0; i < count; ++i) bytes += rte_pktmbuf_pkt_len(packets[i]);
    PortCounters& in = counters_.per_port[rxq.port_index];
    in.rx_packets.add(count);
    in.rx_bytes.add(bytes);
    counters_.packets.add(count);

    unsigned kept = 0;
    for (unsigned i = 0; i < count; ++i) {
        const DropReason refused = admit_frame(packets[i], plan_.mtu);
        if (refused != DropReason::count_) {
            drop(packets[i], refused);
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

    const uint64_t missed = cache_.classify_burst(flows_, count, now, slots_);
    const FlowCacheCounters& cached = cache_.counters();
    counters_.exact_hits.set(cached.exact_hits);
    counters_.cache_hits.set(cached.megaflow_hits);
    counters_.misses.set(cached.misses);

    // In arrival order, so that packets of one flow leave in order. A packet
    // whose megaflow may still have packets at the slow path waits for them
    // (held, docs/slowpath.md: ordering).
    for (unsigned i = 0; i < count; ++i) {
        if (missed & (uint64_t{1} << i)) {
            upcall(packets[i], in_port);
            continue;
        }
        Megaflow& flow = cache_.flow(slots_[i]);
        if (flow.pending_seq > upcalls_answered_ || flow.held) {
            if (!hold(packets[i], in_port, slots_[i], flow, layouts_[i])) drop(packets[i], DropReason::upcall_queue_full);
            continue;
        }
        forward(packets[i], layouts_[i], flow, now);
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
    if (buffer.count == 0 && tx_flush_ticks_) buffer.oldest = rte_rdtsc();
    buffer.packets[buffer.count++] = packet;
    if (buffer.count == kBurst) flush(port_index);
}

void Worker::flush_due(uint64_t now) {
    for (unsigned port = 0; port < tx_buffers_.size(); ++port) {
        const TxBuffer& buffer = tx_buffers_[port];
        if (buffer.count && (tx_flush_ticks_ == 0 || now - buffer.oldest >= tx_flush_ticks_)) flush(port);
    }
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
