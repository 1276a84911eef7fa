// The worker's side of the slow path: applying the slow path's replies
// (cache ops, answered packets, packet-outs, fences), sending misses up, and
// holding packets that must not overtake earlier ones still at the slow path
// (the ordering rules are in docs/slowpath.md).
#include "flowpath/worker.hpp"

#include <rte_mbuf.h>
#include <rte_prefetch.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include <algorithm>

namespace flowpath {

namespace {
bool runs_tracker(const ActionList& actions) {
    return std::any_of(actions.begin(), actions.end(), [](const Action& a) { return a.type == ActionType::kCt; });
}
}  // namespace

unsigned Worker::apply_replies(uint64_t now, unsigned budget) {
    UpcallChannel& channel = *plan_.channel;
    unsigned applied = 0;
    Reply* reply = nullptr;
    bool cache_changed = false;
    while (applied < budget && rte_ring_sc_dequeue(channel.replies(), reinterpret_cast<void**>(&reply)) == 0) {
        std::vector<ReplyOp>& ops = reply->ops;
        // The answered packets were last touched on the slow path's core:
        // their headers are fetched a few ops ahead, their first bytes fewer.
        for (size_t i = 0; i < std::min<size_t>(ops.size(), kReplyPrefetch); ++i) prefetch_reply_op(ops[i]);
        for (size_t i = 0; i < ops.size(); ++i) {
            if (i + kReplyPrefetch < ops.size()) prefetch_reply_op(ops[i + kReplyPrefetch]);
            if (i + kReplyPrefetch / 2 < ops.size() && ops[i + kReplyPrefetch / 2].kind == ReplyOp::Kind::packet)
                rte_prefetch0(rte_pktmbuf_mtod(static_cast<rte_mbuf*>(ops[i + kReplyPrefetch / 2].packet), void*));
            ReplyOp& op = ops[i];
            if (op.kind == ReplyOp::Kind::remove && cache_.flow(op.slot).held) unhold(op.slot, now);
            // Upcalls sent so far may hold packets of a megaflow installed now.
            if (apply_cache_op(cache_, op, *reply, now, order_.sent_count())) {
                cache_changed = true;
                if (op.kind != ReplyOp::Kind::remove) {
                    Megaflow& flow = cache_.flow(op.slot);
                    flow.runs_ct = runs_tracker(flow.actions);
                }
            } else if (op.kind == ReplyOp::Kind::packet) {
                order_.answered();
                resume(op, now);
                if (!held_.empty()) release_held(now);
                if (!deferred_.empty()) release_transmits();
            } else if (op.kind == ReplyOp::Kind::transmit) {
                transmit(static_cast<rte_mbuf*>(op.packet), op.slot);
            } else if (op.kind == ReplyOp::Kind::inject) {
                inject(static_cast<rte_mbuf*>(op.packet), op.slot, op.payload, now);
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

// Starts fetching what applying `op` touches: the slot it changes (cold:
// evicted or reused) and the packet the slow path's core last read.
void Worker::prefetch_reply_op(const ReplyOp& op) const {
    switch (op.kind) {
    case ReplyOp::Kind::packet:
        rte_prefetch0(op.packet);
        break;
    case ReplyOp::Kind::install:
    case ReplyOp::Kind::remove:
        cache_.megaflows().prefetch_for_write(op.slot);
        break;
    case ReplyOp::Kind::update:
    case ReplyOp::Kind::fence:
    case ReplyOp::Kind::transmit:  // rare (packet-outs): nothing worth fetching early
    case ReplyOp::Kind::inject:
        break;
    }
}

// A packet the slow path answered goes on by its megaflow from where it
// missed, unless it would reach the tracker before an earlier packet still
// at the slow path (one of an earlier pass, upcalled again after this one).
void Worker::resume(const ReplyOp& op, uint64_t now) {
    const InFlight packet{static_cast<rte_mbuf*>(op.packet), op.layout, op.meta};
    Megaflow& flow = cache_.flow(op.slot);
    if ((flow.runs_ct || packet.meta.recirc_id) && earlier_pending(packet.meta.stamp)) {
        if (!hold(packet, op.slot, flow, 0, 0)) drop(packet.packet, DropReason::upcall_queue_full);
        return;
    }
    PassScratch& pass = scratch_[0];
    pass.group[0] = packet;
    execute(op.slot, pass.group, 1, 0, 0, now);
}

// Holds a packet until every upcall up to `release_seq` is answered (and,
// for a megaflow that runs the tracker, every earlier packet's); one that a
// fork stopped at action `resume_at` until its copy is done too. False when
// the worker holds all it can.
bool Worker::hold(const InFlight& packet, uint32_t slot, Megaflow& flow, uint64_t release_seq, size_t resume_at) {
    const HeldPacket held{packet.packet, packet.layout, packet.meta, slot, flow.generation, release_seq,
                          static_cast<uint32_t>(resume_at)};
    if (!held_.insert(held)) return false;
    ++flow.held;
    return true;
}

bool Worker::releasable(const HeldPacket& held) const {
    if (held.release_seq > order_.answered_count()) return false;
    if (held.resume_at) return !order_.outstanding_up_to(held.meta.stamp);  // its copy's upcalls too
    return !((cache_.megaflows().flow(held.slot).runs_ct || held.meta.recirc_id) &&
             order_.earlier_outstanding(held.meta.stamp));
}

// The megaflow at `slot` goes while some of its packets are held: they go
// to the slow path now, in their order, before any later packet of their
// flow can (later ones arrive after this reply, and miss or find a
// megaflow installed after these upcalls). A packet a fork stopped half-way
// cannot start over there: it finishes the actions it started with first
// (before its copy, if that is still at the slow path).
void Worker::unhold(uint32_t slot, uint64_t now) {
    Megaflow& flow = cache_.flow(slot);
    finishing_.clear();
    held_.remove_if([&](const HeldPacket& held) {
        if (held.slot != slot || held.generation != flow.generation || !held.resume_at) return false;
        finishing_.push_back(held);
        return true;
    });
    flow.held -= static_cast<uint32_t>(finishing_.size());
    for (const HeldPacket& held : finishing_) {
        InFlight packet{held.packet, held.layout, held.meta};
        execute(slot, &packet, 1, held.resume_at, 0, now);
    }
    held_.remove_if([&](const HeldPacket& held) {
        if (held.slot != slot || held.generation != flow.generation) return false;
        upcall(InFlight{held.packet, held.layout, held.meta});
        return true;
    });
    flow.held = 0;
}

// Forwards held packets, oldest first, while they may go; a run of them of
// one megaflow goes as one group. (One queue for all megaflows: a packet
// may wait a little longer than it needs, never less.)
void Worker::release_held(uint64_t now) {
    PassScratch& pass = scratch_[0];
    while (!held_.empty() && releasable(held_.front())) {
        const uint32_t slot = held_.front().slot;
        const uint32_t resume_at = held_.front().resume_at;
        Megaflow& flow = cache_.flow(slot);
        unsigned n = 0;
        do {
            const HeldPacket& held = held_.front();
            pass.group[n++] = InFlight{held.packet, held.layout, held.meta};
            held_.pop_front();
            --flow.held;  // (a megaflow removed while holding gave its packets back: unhold)
        } while (n < kBurst && !resume_at && !held_.empty() && held_.front().slot == slot &&
                 !held_.front().resume_at && releasable(held_.front()));
        execute(slot, pass.group, n, resume_at, 0, now);
    }
}

// A packet-out's packet to port `port_index` as it is: now, unless packets
// that came before it are at the slow path or held (then in their wake).
void Worker::transmit(rte_mbuf* packet, uint32_t port_index) {
    counters_.in_flight.add(1);
    const uint32_t stamp = next_stamp_++;
    if (deferred_.empty() && order_.idle() && held_.empty()) {
        enqueue(port_index, packet);
        return;
    }
    if (!deferred_.push_back(DeferredTransmit{packet, port_index, stamp, order_.sent_count()})) {
        drop(packet, DropReason::upcall_queue_full);
    }
}

// Sends the deferred transmits whose earlier packets have all gone, in order.
void Worker::release_transmits() {
    while (!deferred_.empty()) {
        const DeferredTransmit& next = deferred_.front();
        if (next.release_seq > order_.answered_count() || earlier_pending(next.stamp)) return;
        enqueue(next.port_index, next.packet);
        deferred_.pop_front();
    }
}

void Worker::upcall(const InFlight& packet) {
    Upcall message{packet.packet, packet.meta};
    if (rte_ring_sp_enqueue_elem(plan_.channel->upcalls(), &message, sizeof message) != 0) {
        drop(packet.packet, DropReason::upcall_queue_full);
        return;
    }
    order_.sent(packet.meta.stamp);
    wake_slow_path_ = true;
}

}  // namespace flowpath
