// The poll loop. Per round: apply what the slow path answered, receive a
// burst from each rx queue and run it through its pipeline passes (extract,
// classify, dispatch, execute; a recirculation is a nested pass), buffer
// every packet per output port; a full buffer is sent at once, the others
// when their oldest packet has waited tx-flush-interval (0: at the end of
// every round); free the connections the tracker's cleanup found expired.
// What comes back from the slow path is applied in replies.cpp.
#include "flowpath/worker.hpp"

#include "flowpath/actions.hpp"
#include "flowpath/mbuf_chain.hpp"
#include "flowpath/mtu.hpp"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_prefetch.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include <algorithm>
#include <cstddef>
#include <thread>

namespace flowpath {

static_assert(kBurst <= kMaxLookupBurst);

namespace {
// Checks a received frame before classification; DropReason::count_ lets it
// go on. A frame whose L2 payload exceeds the MTU is too_big. A chained
// frame goes on as it is (mbuf_chain.hpp).
inline DropReason admit_frame(rte_mbuf* packet, uint32_t mtu) {
    if (exceeds_mtu(rte_pktmbuf_mtod(packet, const uint8_t*), rte_pktmbuf_data_len(packet),
                    rte_pktmbuf_pkt_len(packet), mtu)) {
        return DropReason::too_big;
    }
    return DropReason::count_;
}

// A received packet's metadata: field by field, not through a temporary
// (copying one costs a store-forwarding stall per packet).
inline void start_meta(PacketMeta& meta, uint32_t in_port, uint32_t stamp) {
    meta.ct.mark = 0;
    meta.ct.zone = 0;
    meta.ct.state = 0;
    meta.ct.conn.index = ConnHandle::kNone;
    meta.ct.conn.seq = 0;
    meta.in_port = in_port;
    meta.recirc_id = 0;
    meta.stamp = stamp;
    meta.dl_type = 0;
    meta.nw_proto = 0;
    meta.nw_frag = 0;
    meta.depth = 0;
    meta.packet_out = 0;
}

// The key fields the ct action reads, noted for packets that may reach one
// (no action changes them, so any pass's key serves the later ones).
void note_l3_fields(const Miniflow& flow, PacketMeta& meta) {
    constexpr unsigned kDlTypeWord = flow_word_of(offsetof(FlowKey, dl_type));
    constexpr unsigned kScalarsWord = flow_word_of(offsetof(FlowKey, nw_proto));
    static_assert(flow_word_of(offsetof(FlowKey, nw_frag)) == kScalarsWord);
    const uint64_t dl = flow.get(kDlTypeWord);
    const uint64_t scalars = flow.get(kScalarsWord);
    meta.dl_type = static_cast<uint16_t>(dl >> (8 * (offsetof(FlowKey, dl_type) % 8)));
    meta.nw_proto = static_cast<uint8_t>(scalars >> (8 * (offsetof(FlowKey, nw_proto) % 8)));
    meta.nw_frag = static_cast<uint8_t>(scalars >> (8 * (offsetof(FlowKey, nw_frag) % 8)));
}

// The NIC's checksum verdicts, for the tracker (it verifies what they leave
// unknown). Header changes before a ct keep a right checksum right and a
// wrong one wrong, so the verdicts still hold then.
uint8_t checksum_flags(const rte_mbuf* packet) {
    uint8_t flags = 0;
    switch (packet->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK) {
        case RTE_MBUF_F_RX_IP_CKSUM_GOOD: flags |= kCtL3Good; break;
        case RTE_MBUF_F_RX_IP_CKSUM_BAD: flags |= kCtL3Bad; break;
        default: break;
    }
    switch (packet->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK) {
        case RTE_MBUF_F_RX_L4_CKSUM_GOOD: flags |= kCtL4Good; break;
        case RTE_MBUF_F_RX_L4_CKSUM_BAD: flags |= kCtL4Bad; break;
        default: break;
    }
    return flags;
}

DropReason drop_reason(TranslateDrop drop) {
    switch (drop) {
        case TranslateDrop::no_match: return DropReason::no_match;
        case TranslateDrop::no_output: return DropReason::no_output;
        case TranslateDrop::ttl_expired: return DropReason::ttl_expired;
        case TranslateDrop::too_deep: return DropReason::too_deep;
        case TranslateDrop::none: break;
    }
    // A list meant to output that could not (a VLAN push without room).
    return DropReason::bad_packet;
}

// Actions the whole group of a megaflow takes at once, between the ranges
// each packet runs alone.
bool group_action(const Action& action) {
    return action.type == ActionType::kCt || action.type == ActionType::kCtClear ||
           action.type == ActionType::kRecirc || action.type == ActionType::kController;
}

// Whether actions[0, to) leave a packet's bytes as this pass read them
// (outputs, ct, copies; no header change): a recirculation there may take
// the shortcut (RecircShortcuts), its key being this pass's with new
// metadata words.
bool keeps_bytes(const ActionList& actions, size_t to) {
    for (size_t i = 0; i < to; ++i) {
        switch (actions[i].type) {
            case ActionType::kOutput:
            case ActionType::kInPort:
            case ActionType::kFlood:
            case ActionType::kAll:
            case ActionType::kCt:
            case ActionType::kCtClear:
            case ActionType::kController:
            case ActionType::kRecirc:
                break;
            default:
                return false;
        }
    }
    return true;
}

// Whether a list must run one packet at a time: the packet leaves (an
// output, a recirculation) both before and after a group action (a
// recirculation's copy counts as leaving there), or a ct follows a
// recirculation. Run as a group, every packet would do the part before
// the group action before any does the part after it, where Open vSwitch's
// translation of each packet finishes one before the next (A A B B, not
// A B A B; see Worker::execute).
bool forks(const ActionList& actions) {
    bool left = false;           // an output or recirculation so far
    bool split = false;          // a group action after something left
    bool recirculated = false;
    for (const Action& a : actions) {
        switch (a.type) {
            case ActionType::kOutput:
                if (split) return true;
                left = true;
                break;
            case ActionType::kRecirc:
                if (split) return true;
                left = split = recirculated = true;
                break;
            case ActionType::kCt:
                if (recirculated) return true;
                split |= left;
                break;
            case ActionType::kCtClear:
                split |= left;
                break;
            default:
                break;
        }
    }
    return false;
}
}  // namespace

Worker::Worker(WorkerPlan plan, const std::atomic<bool>& stop)
    : plan_(std::move(plan)),
      stop_(stop),
      tx_buffers_(plan_.tx.size()),
      counters_(plan_.tx.size()),
      cache_(plan_.exact_cache_entries, plan_.flow_limit, kExactInsertInverseProbability,
             plan_.signature_cache_entries),
      tx_flush_ticks_(rte_get_tsc_hz() / 1'000'000 * plan_.tx_flush_interval_us),
      // Outstanding upcalls: those in the ring, and those taken and not yet
      // answered (at most a ring's worth more).
      order_(2 * kUpcallRingSize),
      held_(kHeldPackets),
      deferred_(kHeldPackets),
      scratch_(std::make_unique<PassScratch[]>(kPassLevels)),
      ct_scratch_(std::make_unique<uint8_t[]>(kCtScratchBytes)),
      shortcuts_(std::make_unique<RecircShortcuts>()) {
    finishing_.reserve(kHeldPackets);
}

Worker::~Worker() = default;

static_assert(kDefaultSignatureCacheEntries == kDefaultSignatureEntries, "one default for the signature cache");

int run_worker(void* arg) { return static_cast<Worker*>(arg)->run(); }

int Worker::run() {
    rte_mbuf* burst[kBurst];
    // The TSC is read at a round's start (in this VM a read costs 15 ns, half
    // a nanosecond per packet of a full burst), except while the worker is
    // saturated: after a round in which every rx queue gave a full burst,
    // the next kRoundsPerTscRead - 1 rounds reuse the last reading. Their
    // stamps (megaflow last use, ct expiry) are then a few microseconds old;
    // tx buffers are flushed every round then (no flush interval), so no
    // flush deadline depends on it.
    uint64_t last_read = rte_rdtsc();
    bool busy_since_read = false;
    bool saturated = false;
    unsigned reuses = 0;
    while (!stop_.load(std::memory_order_relaxed)) {
        uint64_t start = last_read;
        if (!saturated || ++reuses == kRoundsPerTscRead) {
            start = rte_rdtsc();
            // Busy: the time since the last reading if a round in it had work
            // (after saturated rounds, at most one short idle round with them).
            if (busy_since_read) counters_.busy_cycles.add(start - last_read);
            last_read = start;
            busy_since_read = false;
            reuses = 0;
        }
        shard_ = conntrack_.load(std::memory_order_acquire);
        // The slow path's answers first: the packets it sends back leave
        // before any packet of a newer burst.
        const unsigned applied = apply_replies(start, kReplyOpsPerRound);
        unsigned received = 0;
        for (const RxQueueRef& rxq : plan_.rx) {
            const uint16_t count = rte_eth_rx_burst(rxq.port_id, rxq.queue, burst, kBurst);
            if (count == 0) continue;
            received += count;
            receive(rxq, burst, count, start);
        }
        flush_due(start);
        if (wake_slow_path_) ring_slow_path();
        // Connections the cleanup thread found expired are freed here, by
        // their owner, every round.
        if (shard_) shard_->maintain(start);
        if (start >= next_housekeeping_) housekeeping(start);
        busy_since_read |= received || applied;
        saturated = tx_flush_ticks_ == 0 && received == kBurst * plan_.rx.size();
    }
    drain();
    flush_all();
    return 0;
}

// Stopping: the upcalls already sent are still answered and sent on, so a
// clean stop loses no packet (unless the slow path stays silent too long).
void Worker::drain() {
    const uint64_t deadline = rte_rdtsc() + rte_get_tsc_hz() / 1000 * kDrainTimeoutMs;
    while ((!order_.idle() || !held_.empty() || !deferred_.empty()) && rte_rdtsc() < deadline) {
        if (apply_replies(rte_rdtsc(), kReplyOpsPerRound) == 0) std::this_thread::yield();
        if (wake_slow_path_) ring_slow_path();
        flush_due(rte_rdtsc());
    }
    // The slow path stayed silent: what is still held is dropped, counted
    // (the upcalls it never answered are freed when it stops).
    for (; !held_.empty(); held_.pop_front()) drop(held_.front().packet, DropReason::upcall_queue_full);
    for (; !deferred_.empty(); deferred_.pop_front()) drop(deferred_.front().packet, DropReason::upcall_queue_full);
}

// About once a second: re-rank the megaflow subtables by recent hits, so the
// busiest masks are probed first.
void Worker::housekeeping(uint64_t now) {
    cache_.megaflows().rank_subtables();
    next_housekeeping_ = now + rte_get_tsc_hz();
}

// The cache counts cumulatively for this worker alone: publish its totals
// (after every pass's classification, and with the gauges below).
void Worker::publish_hit_counters() {
    const FlowCacheCounters& cached = cache_.counters();
    counters_.simple_hits.set(cached.simple_hits);
    counters_.exact_hits.set(cached.exact_hits);
    counters_.exact_skipped.set(cached.exact_skipped);
    counters_.cache_hits.set(cached.megaflow_hits + shortcut_hits_);
    counters_.misses.set(cached.misses);
}

void Worker::publish_cache_counters() {
    publish_hit_counters();
    const MegaflowCache& megaflows = cache_.megaflows();
    counters_.cache_entries.set(megaflows.size());
    counters_.cache_subtables.set(megaflows.subtable_count());
    counters_.cache_bytes.set(cache_.memory_bytes());  // exact + signature + megaflow caches
}

// ---- The stages of a pass ----

void Worker::receive(const RxQueueRef& rxq, rte_mbuf** packets, unsigned count, uint64_t now) {
    counters_.in_flight.add(count);
    PortCounters& in = counters_.per_port[rxq.port_index];
    in.rx_packets.add(count);
    counters_.packets.add(count);
    uint64_t bytes = 0;
    if (cache_.simple().active() && forward_simple(rxq, packets, count, now, bytes)) {
        in.rx_bytes.add(bytes);
        return;
    }
    for (unsigned i = 0; i < count; ++i) bytes += rte_pktmbuf_pkt_len(packets[i]);
    in.rx_bytes.add(bytes);

    PassScratch& pass = scratch_[0];
    const uint32_t in_port = rxq.port_index + 1u;  // OpenFlow numbering
    uint32_t stamp = next_stamp_;
    unsigned kept = 0;
    for (unsigned i = 0; i < count; ++i) {
        const DropReason refused = admit_frame(packets[i], rxq.mtu);
        if (refused != DropReason::count_) {
            drop(packets[i], refused);
            continue;
        }
        InFlight& packet = pass.packets[kept++];
        packet.packet = packets[i];
        start_meta(packet.meta, in_port, stamp++);
    }
    next_stamp_ = stamp;
    if (kept) run_pass(0, kept, now);
}

// The simple-match path (docs/cache.md, "Simple match"): a burst whose
// every packet is a plain IPv4 frame that the simple-match tier gives a
// megaflow that only outputs, and may go now, goes straight to the tx
// buffers, run by run in arrival order: no miniflow, no hash, no metadata.
// False: nothing was done, and the burst takes the pipeline. True: the
// burst's bytes were added to `bytes` (summed on its one read of each length).
bool Worker::forward_simple(const RxQueueRef& rxq, rte_mbuf** packets, unsigned count, uint64_t now,
                            uint64_t& bytes) {
    const SimpleMatch& simple = cache_.simple();
    const uint32_t in_port = rxq.port_index + 1u;
    // The burst's runs of one megaflow: slot, first packet, bytes.
    uint32_t run_slot[kBurst];
    unsigned run_start[kBurst + 1];
    uint64_t run_bytes[kBurst];
    unsigned runs = 0;
    uint64_t current_bytes = 0;
    uint32_t last_slot = kNoFlow;
    for (unsigned i = 0; i < count; ++i) {
        if (i + kPrefetchAhead < count) rte_prefetch0(rte_pktmbuf_mtod(packets[i + kPrefetchAhead], void*));
        const rte_mbuf* packet = packets[i];
        const uint8_t* data = rte_pktmbuf_mtod(packet, const uint8_t*);
        const uint32_t len = packet->pkt_len;
        if (packet->nb_segs != 1 || exceeds_mtu(data, packet->data_len, len, rxq.mtu)) return false;
        SimpleKey key;
        if (!extract_simple(data, packet->data_len, in_port, key)) return false;
        const uint32_t slot = simple.lookup(key);
        if (slot == kNoFlow) return false;
        if (slot != last_slot) {
            if (!forwards_now(cache_.flow(slot))) return false;
            if (runs) run_bytes[runs - 1] = current_bytes;
            run_slot[runs] = slot;
            run_start[runs++] = i;
            current_bytes = 0;
            last_slot = slot;
        }
        current_bytes += len;
    }
    run_bytes[runs - 1] = current_bytes;
    run_start[runs] = count;
    for (unsigned r = 0; r < runs; ++r) {
        const unsigned size = run_start[r + 1] - run_start[r];
        Megaflow& flow = cache_.flow(run_slot[r]);
        flow.packets.add(size);
        flow.bytes.add(run_bytes[r]);
        flow.last_used.set(now);
        bytes += run_bytes[r];
        rte_mbuf** run = packets + run_start[r];
        enqueue_packets(flow.only_output - 1, size, [run](unsigned k) { return run[k]; }, run_bytes[r]);
    }
    cache_.count_simple_hits(count);
    counters_.simple_hits.set(cache_.counters().simple_hits);
    return true;
}

// Whether a megaflow's packets may take the simple path: it only outputs,
// and must_wait would let a first-pass packet of it go (no ct).
bool Worker::forwards_now(const Megaflow& flow) const {
    return flow.only_output != kNotOnlyOutput && !flow.runs_ct && !waits_for_upcalls(flow);
}

// One pass over scratch_[level].packets: extract, classify, dispatch,
// execute. A recirculation in execute runs the next level's pass inside it;
// `previous` is then the megaflow the packets left, when they left it with
// their bytes untouched (else RecircShortcuts::kNone).
void Worker::run_pass(unsigned level, unsigned count, uint64_t now, uint32_t previous) {
    PassScratch& pass = scratch_[level];
    InFlight* packets = pass.packets;

    // A recirculated pass the shortcut answers for every packet needs no
    // key and no lookup (a packet's dl_type, nw_proto and nw_frag were
    // noted in its first pass, whose megaflow ran the ct).
    const bool shortcut = previous != RecircShortcuts::kNone && take_shortcuts(previous, packets, count, pass.slots);
    uint64_t missed = 0;
    if (!shortcut) {
        // Extract: the key from the bytes; after a recirculation with the
        // metadata words of the pass (each packet's own in_port too).
        PacketLayout layouts[kBurst];
        extract_burst(
            count,
            [packets](unsigned i) {
                return PacketView{rte_pktmbuf_mtod(packets[i].packet, const uint8_t*),
                                  rte_pktmbuf_data_len(packets[i].packet)};
            },
            packets[0].meta.in_port, pass.flows, layouts);
        uint32_t split = 0;  // chains whose headers are not in their first segment
        static_assert(kBurst <= 32);
        for (unsigned i = 0; i < count; ++i) {
            // A chain was read as its first segment alone: again, as a chain.
            if (packets[i].packet->nb_segs > 1) [[unlikely]] {
                if (!extract_chained(packets[i].packet, packets[0].meta.in_port, pass.flows[i], layouts[i])) {
                    split |= uint32_t{1} << i;
                }
            }
            packets[i].layout = layouts[i];
            if (packets[i].meta.recirc_id) set_pass_metadata(pass.flows[i], packets[i].meta);
        }
        if (split) [[unlikely]] {
            count = drop_split(pass, count, split);
            if (count == 0) return;
        }

        // Classify.
        missed = cache_.classify_burst(pass.flows, count, now, pass.slots);
        if (previous != RecircShortcuts::kNone) learn_shortcuts(previous, packets, count, missed, pass.slots);
    }
    publish_hit_counters();

    // Dispatch, in arrival order, so that packets of one flow leave in
    // order: a miss goes to the slow path, a packet that must not overtake
    // earlier ones there is held (docs/slowpath.md: ordering), the others
    // join their megaflow's group.
    constexpr uint8_t kNoGroup = 0xff;
    static_assert(kBurst <= kMaxPassGroups && kBurst < kNoGroup);
    uint8_t group_of[kBurst];
    PassGroups groups;
    bool grouped_all = true;  // no packet went to the slow path or waits
    for (unsigned i = 0; i < count; ++i) {
        group_of[i] = kNoGroup;
        if (missed & (uint64_t{1} << i)) {
            note_l3_fields(pass.flows[i], packets[i].meta);  // its megaflow may run ct
            upcall(packets[i]);
            grouped_all = false;
            continue;
        }
        const uint32_t slot = pass.slots[i];
        Megaflow& flow = cache_.flow(slot);
        const bool wait = must_wait(flow, packets[i].meta);
        // (A held packet's megaflow may run ct by the time it goes: an update.)
        if (!shortcut && (wait || flow.runs_ct)) note_l3_fields(pass.flows[i], packets[i].meta);
        if (wait) {
            if (!hold(packets[i], slot, flow, flow.pending_seq, 0)) drop(packets[i].packet, DropReason::upcall_queue_full);
            grouped_all = false;
            continue;
        }
        // After a recirculation, packets of one flow may part into
        // megaflows by their ct fields: groups are runs in arrival order
        // there, so that none overtakes an earlier packet of its flow.
        group_of[i] = static_cast<uint8_t>(groups.join(slot, flow.dispatch_group, level > 0));
    }

    // Execute, megaflow by megaflow in the order of their first packets:
    // where every packet joined a group and the groups are runs, from the
    // packets as they are; else gathered in one counting sort.
    if (grouped_all && groups.in_order()) {
        execute_groups(packets, groups, level, now);
        return;
    }
    unsigned placed[kBurst];
    for (unsigned g = 0, at = 0; g < groups.count(); at += groups.size(g++)) placed[g] = at;
    for (unsigned i = 0; i < count; ++i) {
        if (group_of[i] != kNoGroup) pass.group[placed[group_of[i]]++] = packets[i];
    }
    execute_groups(pass.group, groups, level, now);
}

// Counts a group's packets in its megaflow's statistics; returns their bytes.
inline uint64_t Worker::credit(Megaflow& flow, const InFlight* group, unsigned count, uint64_t now) {
    uint64_t bytes = 0;
    for (unsigned i = 0; i < count; ++i) bytes += rte_pktmbuf_pkt_len(group[i].packet);
    flow.packets.add(count);
    flow.bytes.add(bytes);
    flow.last_used.set(now);
    return bytes;
}

// Executes a pass's groups, laid out one after the other in `packets`, in
// that order. Consecutive groups of plain forwarding megaflows
// (one output: see execute) to the same port go to its tx buffer in one
// enqueue, their statistics credited group by group: the tx buffer gets the
// packets in the order execute would give it them, without a call per group
// (with a megaflow per packet, as on the tss workload, a call per packet).
void Worker::execute_groups(InFlight* packets, const PassGroups& groups, unsigned level, uint64_t now) {
    InFlight* run = packets;  // plain groups not yet enqueued, all to run_port
    unsigned run_count = 0;
    uint32_t run_port = kNotOnlyOutput;
    uint64_t run_bytes = 0;
    const auto enqueue_run = [&] {
        if (run_count == 0) return;
        enqueue_packets(run_port - 1, run_count, [run](unsigned i) { return run[i].packet; }, run_bytes);
        run_count = 0;
        run_bytes = 0;
    };
    InFlight* group = packets;
    for (unsigned g = 0; g < groups.count(); group += groups.size(g++)) {
        const unsigned size = groups.size(g);
        Megaflow& flow = cache_.flow(groups.slot(g));
        if (flow.only_output == kNotOnlyOutput) {
            enqueue_run();
            execute(groups.slot(g), group, size, 0, level, now);
            continue;
        }
        if (flow.only_output != run_port) {
            enqueue_run();
            run_port = flow.only_output;
        }
        if (run_count == 0) run = group;
        run_count += size;
        run_bytes += credit(flow, group, size, now);
    }
    enqueue_run();
}

// Runs the datapath actions of the megaflow at `slot` on its packets of a
// pass, from action `from` (0, or where a fork left them): each packet alone
// up to the next group action, the group together there (the ct action,
// ct_clear, a recirculation). The action that takes the packet (the last
// output or recirculation) gets the mbuf, every earlier one a copy.
void Worker::execute(uint32_t slot, InFlight* group, unsigned count, size_t from, unsigned level, uint64_t now) {
    Megaflow& flow = cache_.flow(slot);
    // A plain forwarding megaflow (one output, nothing else): the packets go
    // to the port's tx buffer as run_range would send them, without the
    // executor (no action touches the bytes, nothing to sync) and without
    // reading the action list (Megaflow::only_output is on the line the
    // caches' hit read). Issue 10: ~10 cycles per packet on the emc
    // workload; the megaflow's line 0 alone (docs/cache.md).
    if (from == 0 && flow.only_output != kNotOnlyOutput) {
        const uint64_t bytes = credit(flow, group, count, now);
        enqueue_packets(flow.only_output - 1, count, [group](unsigned i) { return group[i].packet; }, bytes);
        return;
    }
    const ActionList& actions = flow.actions;
    // A list that forks: each packet runs it and the passes it starts
    // before the next packet starts, as when each packet runs its pipeline
    // alone (Open vSwitch's translation of every packet: A's copies leave
    // before B's, A A B B, where its batches give A B A B). A packet whose
    // earlier ones are still at the slow path or held waits for them.
    // Rare (rules that output on both sides of a ct); [ct, recirc] and
    // [ct(commit), output] keep their burst.
    if (count > 1 && forks(actions)) {
        for (unsigned i = 0; i < count; ++i) {
            if (i > 0 && earlier_pending(group[i].meta.stamp)) {
                for (; i < count; ++i) {
                    if (!hold(group[i], slot, flow, 0, from)) drop(group[i].packet, DropReason::upcall_queue_full);
                }
                return;
            }
            execute(slot, group + i, 1, from, level, now);
        }
        return;
    }
    if (from == 0) credit(flow, group, count, now);

    const size_t n = actions.size();
    const size_t taker = packet_taker(actions.data(), n);
    while (count > 0) {
        size_t to = from;
        while (to < n && !group_action(actions[to])) ++to;
        count = run_range(group, count, actions, from, to, taker);
        if (to == n || count == 0) break;
        const Action& action = actions[to];
        if (action.type == ActionType::kCt) {
            // A packet whose verdict depends on what an earlier one of the
            // group does after this ct (commits the connection it belongs
            // to, say): the earlier ones finish their pipelines first, as
            // each packet's runs alone in Open vSwitch.
            for (unsigned done; (done = conntrack(action, group, count, now)) < count;) {
                execute(slot, group, done, to + 1, level, now);
                group += done;
                count -= done;
            }
        } else if (action.type == ActionType::kCtClear) {
            for (unsigned i = 0; i < count; ++i) group[i].meta.ct.clear();
        } else if (action.type == ActionType::kController) {
            // The last action with nothing taking the packet before: the
            // slow path gets the packet itself, else a copy.
            count = to_controller(action, group, count, to + 1 == n && taker == n);
        } else if (to == taker) {
            recirculate(action.port, group, count, true, level, now,
                        keeps_bytes(actions, to) ? slot : RecircShortcuts::kNone);
            return;
        } else {
            // A fork (one packet here): its copy's passes first. A copy that
            // went to the slow path or waits holds the packet at this point
            // until it is done.
            const uint64_t sent = order_.sent_count();
            const unsigned held = held_.size();
            recirculate(action.port, group, count, false, level, now,
                        keeps_bytes(actions, to) ? slot : RecircShortcuts::kNone);
            if (order_.sent_count() != sent || held_.size() != held) {
                for (unsigned i = 0; i < count; ++i) {
                    if (!hold(group[i], slot, flow, 0, to + 1)) drop(group[i].packet, DropReason::upcall_queue_full);
                }
                return;
            }
        }
        from = to + 1;
    }
    // Still here: no output or recirculation took them.
    for (unsigned i = 0; i < count; ++i) drop(group[i].packet, drop_reason(flow.drop));
}

// actions[from, to) on each packet of the group; returns how many are still
// the worker's (the others were taken by an output or dropped).
unsigned Worker::run_range(InFlight* group, unsigned count, const ActionList& actions, size_t from, size_t to,
                           size_t taker) {
    if (from == to) return count;
    unsigned kept = 0;
    for (unsigned i = 0; i < count; ++i) {
        rte_mbuf* packet = group[i].packet;
        PacketBuffer bytes = packet_buffer(packet);
        bool taken = false;
        const auto output = [&](uint32_t port, const PacketBuffer&, bool last) {
            sync_packet(packet, bytes);
            if (last) {
                taken = true;
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
        const bool done = execute_range(bytes, group[i].layout, actions.data(), from, to, taker, output);
        if (taken) continue;
        sync_packet(packet, bytes);
        // Only a VLAN push without room stops a range early.
        if (!done) {
            drop(packet, DropReason::bad_packet);
            continue;
        }
        group[kept++] = group[i];
    }
    return kept;
}

// A datapath kController: each packet (`take`), or a copy, to the slow path,
// which sends the controllers a PACKET_IN. Returns how many are still the
// worker's. A full ring drops what it cannot take (upcall_queue_full).
unsigned Worker::to_controller(const Action& action, InFlight* group, unsigned count, bool take) {
    for (unsigned i = 0; i < count; ++i) {
        rte_mbuf* packet = take ? group[i].packet : rte_pktmbuf_copy(group[i].packet, plan_.pool, 0, UINT32_MAX);
        if (!packet) {
            counters_.drops[static_cast<unsigned>(DropReason::copy_failed)].add(1);
            continue;
        }
        const PacketMeta& meta = group[i].meta;
        const bool conntracked = action.ct_flags & kControllerConntracked;
        PacketInUpcall message{};
        message.packet = packet;
        message.cookie = controller_cookie(action);
        message.metadata = controller_metadata(action);
        message.in_port = controller_in_port(action);
        message.dl_type = meta.dl_type;
        message.max_len = static_cast<uint16_t>(action.port);
        message.table = action.table;
        message.flags = meta.packet_out ? action.ct_flags & ~kControllerTableMiss : action.ct_flags;
        if (conntracked) {
            message.ct_state = meta.ct.state;
            message.ct_zone = meta.ct.zone;
            message.ct_mark = meta.ct.mark;
            // Open vSwitch shows the connection's tuple when the state is
            // valid (new, est or rpl: its is_ct_valid).
            if (shard_ && (meta.ct.state & (kCtNew | kCtEstablished | kCtReply))) {
                CtPacket ct;
                fill_ct_packet(group[i], ct_scratch_.get(), ct);
                shard_->original_tuple(meta.ct, ct, message.ct_tuple);
            }
        }
        if (rte_ring_sp_enqueue_elem(plan_.channel->packet_ins(), &message, sizeof message) == 0) {
            wake_slow_path_ = true;
            if (take) counters_.in_flight.set(counters_.in_flight.get() - 1);
        } else if (take) {
            drop(packet, DropReason::upcall_queue_full);
        } else {
            rte_pktmbuf_free(packet);
            counters_.drops[static_cast<unsigned>(DropReason::upcall_queue_full)].add(1);
        }
    }
    return take ? 0 : count;
}

// A packet-out's packet: through the pipeline as received on `in_port`, in
// the pass of `recirc_id` (0: a first pass; else the table and metadata a
// resubmit or set_field to metadata of the packet-out starts it with, no ct
// fields).
void Worker::inject(rte_mbuf* packet, uint32_t in_port, uint32_t recirc_id, uint64_t now) {
    counters_.in_flight.add(1);
    InFlight& injected = scratch_[0].packets[0];
    injected.packet = packet;
    start_meta(injected.meta, in_port, next_stamp_++);
    injected.meta.recirc_id = recirc_id;
    injected.meta.packet_out = 1;
    run_pass(0, 1, now);
}

// The ct action for the group, in one call to the worker's shard; returns
// how many of the group's packets (the first ones) it ran: the tracker stops
// before a packet that depends on what an earlier one does after the ct, and
// chained frames are read copied whole from a scratch, a call's worth at a
// time (the caller runs the first ones on, then calls again with the rest).
unsigned Worker::conntrack(const Action& action, InFlight* group, unsigned count, uint64_t now) {
    CtPacket packets[kBurst];
    CtMeta metas[kBurst];
    const CtAction ct_action = CtAction::from(action);
    uint32_t scratch_used = 0;
    for (unsigned i = 0; i < count; ++i) {
        const InFlight& p = group[i];
        const uint32_t len = rte_pktmbuf_pkt_len(p.packet);
        if (p.packet->nb_segs > 1 && i > 0 && scratch_used + len > kCtScratchBytes) [[unlikely]] {
            count = i;  // the scratch is full: the rest in the next call
            break;
        }
        fill_ct_packet(p, ct_scratch_.get() + scratch_used, packets[i]);
        if (p.packet->nb_segs > 1) [[unlikely]] scratch_used += len;
        metas[i] = p.meta.ct;
    }
    count = track(ct_action, packets, metas, count, now);
    for (unsigned i = 0; i < count; ++i) group[i].meta.ct = metas[i];
    return count;
}

// What the tracker reads of a packet (a chained frame copied whole to
// `scratch`, which has room for it).
void Worker::fill_ct_packet(const InFlight& p, uint8_t* scratch, CtPacket& ct) {
    ct.len = rte_pktmbuf_pkt_len(p.packet);
    if (p.packet->nb_segs > 1) [[unlikely]] {
        ct.data = contiguous_frame(p.packet, scratch);
    } else {
        ct.data = rte_pktmbuf_mtod(p.packet, const uint8_t*);
    }
    ct.layout = p.layout;
    ct.dl_type = p.meta.dl_type;
    ct.nw_proto = p.meta.nw_proto;
    ct.nw_frag = p.meta.nw_frag;
    ct.checksum = checksum_flags(p.packet);
}

unsigned Worker::track(const CtAction& action, const CtPacket* packets, CtMeta* metas, unsigned count,
                       uint64_t now) {
    if (shard_) return shard_->execute(action, packets, metas, count, now, true);
    // No tracker (cannot happen: the datapath gives every worker its shard
    // before it starts): tracked as a packet it cannot track.
    for (unsigned i = 0; i < count; ++i) {
        metas[i].clear();
        metas[i].state = kCtInvalid | kCtTracked;
        metas[i].zone = action.zone;
    }
    return count;
}

// Drops the pass's packets in `split` (chains whose headers could not be
// read from their first segment), keeping the others in order; returns how
// many remain.
unsigned Worker::drop_split(PassScratch& pass, unsigned count, uint32_t split) {
    unsigned kept = 0;
    for (unsigned i = 0; i < count; ++i) {
        if (split & (uint32_t{1} << i)) {
            drop(pass.packets[i].packet, DropReason::split_headers);
            continue;
        }
        if (kept != i) {
            pass.packets[kept] = pass.packets[i];
            pass.flows[kept] = pass.flows[i];
        }
        ++kept;
    }
    return kept;
}

// A kRecirc: the group's packets (`take`: they are taken; else copies, and
// the group goes on) go through the next pass now, with the recirculation
// id and the ct fields in their key.
void Worker::recirculate(uint32_t recirc_id, InFlight* group, unsigned count, bool take, unsigned level,
                         uint64_t now, uint32_t previous) {
    PassScratch& next = scratch_[level + 1];
    unsigned n = 0;
    for (unsigned i = 0; i < count; ++i) {
        rte_mbuf* packet = group[i].packet;
        if (!take) {
            packet = rte_pktmbuf_copy(packet, plan_.pool, 0, UINT32_MAX);
            if (!packet) {
                counters_.drops[static_cast<unsigned>(DropReason::copy_failed)].add(1);
                continue;
            }
            counters_.in_flight.add(1);
        }
        if (group[i].meta.depth >= kMaxRecircDepth) {
            drop(packet, DropReason::too_deep);
            continue;
        }
        // Copied whole, then patched in place: patching a local copy first
        // and copying that stalled on store forwarding (~8 ns a packet).
        InFlight& out = next.packets[n++];
        out = group[i];
        out.packet = packet;
        out.meta.recirc_id = recirc_id;
        ++out.meta.depth;
    }
    counters_.recirculations.add(n);
    // The depth bound keeps the levels within kPassLevels: a packet enters
    // at level 0 with some depth and each level adds one.
    if (n) run_pass(level + 1, n, now, previous);
}

// The shortcut's answers for a recirculated pass whose packets left megaflow
// `previous` untouched: true, with `slots` set, when it has a usable, live
// answer for every packet; false (nothing counted) otherwise, and the pass
// classifies all of them as usual.
bool Worker::take_shortcuts(uint32_t previous, const InFlight* packets, unsigned count, uint32_t* slots) {
    const uint32_t generation = cache_.flow(previous).generation;
    const MegaflowCache& megaflows = cache_.megaflows();
    const RecircShortcuts::Entry* last = nullptr;  // most packets share the one before's
    for (unsigned i = 0; i < count; ++i) {
        const RecircShortcuts::Entry* entry = shortcuts_->find(previous, generation, packets[i].meta);
        if (!entry) return false;
        if (entry != last) {
            if (!entry->usable || !megaflows.valid(entry->slot, entry->generation)) return false;
            last = entry;
        }
        slots[i] = entry->slot;
    }
    shortcut_hits_ += count;
    return true;
}

// After a recirculated pass classified its packets: the pairs (megaflow
// left, metadata) the shortcut does not know yet, each with whether the
// megaflow found may answer every packet of the pair (recirc_mask_covered).
void Worker::learn_shortcuts(uint32_t previous, const InFlight* packets, unsigned count, uint64_t missed,
                             const uint32_t* slots) {
    const MegaflowCache& megaflows = cache_.megaflows();
    const uint32_t generation = megaflows.flow(previous).generation;
    for (unsigned i = 0; i < count; ++i) {
        if (missed & (uint64_t{1} << i)) continue;
        const RecircShortcuts::Entry* known = shortcuts_->find(previous, generation, packets[i].meta);
        if (known && megaflows.valid(known->slot, known->generation)) continue;
        const uint32_t slot = slots[i];
        shortcuts_->learn(previous, generation, packets[i].meta, slot, megaflows.flow(slot).generation,
                          recirc_mask_covered(megaflows.mask_of(slot), megaflows.mask_of(previous)));
    }
}

void Worker::drop(rte_mbuf* packet, DropReason reason) {
    rte_pktmbuf_free(packet);
    counters_.drops[static_cast<unsigned>(reason)].add(1);
    counters_.in_flight.set(counters_.in_flight.get() - 1);
}

void Worker::enqueue(unsigned port_index, rte_mbuf* packet) {
    // A port of a smaller MTU than another's (else kNoTxMtu): a frame
    // from the larger may not fit.
    const uint32_t mtu = plan_.tx[port_index].mtu;
    if (rte_pktmbuf_pkt_len(packet) > mtu + kMtuEthernetHeader) [[unlikely]] {
        if (exceeds_mtu(rte_pktmbuf_mtod(packet, const uint8_t*), rte_pktmbuf_data_len(packet),
                        rte_pktmbuf_pkt_len(packet), mtu)) {
            counters_.per_port[port_index].tx_dropped.add(1);
            drop(packet, DropReason::too_big);
            return;
        }
    }
    TxBuffer& buffer = tx_buffers_[port_index];
    if (buffer.count == 0 && tx_flush_ticks_) buffer.oldest = rte_rdtsc();
    buffer.bytes += rte_pktmbuf_pkt_len(packet);
    buffer.packets[buffer.count++] = packet;
    if (buffer.count == kBurst) flush(port_index);
}

// `count` packets (packet_of(i)) of `bytes` bytes in all to one port's tx
// buffer, in order. When they fit, their bytes join the buffer's at once
// (the caller has summed them: no second read of each length); when the
// buffer fills on the way, each flush counts its own packets' lengths.
template <typename PacketOf>
void Worker::enqueue_packets(unsigned port_index, unsigned count, PacketOf&& packet_of, uint64_t bytes) {
    if (plan_.tx[port_index].mtu != kNoTxMtu) [[unlikely]] {  // frames may be too big for it: one at a time
        for (unsigned i = 0; i < count; ++i) enqueue(port_index, packet_of(i));
        return;
    }
    TxBuffer& buffer = tx_buffers_[port_index];
    if (buffer.count == 0 && tx_flush_ticks_ && count) buffer.oldest = rte_rdtsc();
    if (buffer.count + count <= kBurst) {
        for (unsigned i = 0; i < count; ++i) buffer.packets[buffer.count + i] = packet_of(i);
        buffer.count += count;
        buffer.bytes += bytes;
        if (buffer.count == kBurst) flush(port_index);
        return;
    }
    for (unsigned i = 0; i < count; ++i) {
        rte_mbuf* packet = packet_of(i);
        buffer.bytes += rte_pktmbuf_pkt_len(packet);
        buffer.packets[buffer.count++] = packet;
        if (buffer.count == kBurst) {
            flush(port_index);
            if (tx_flush_ticks_ && i + 1 < count) buffer.oldest = rte_rdtsc();
        }
    }
}

void Worker::flush_due(uint64_t now) {
    for (unsigned port = 0; port < tx_buffers_.size(); ++port) {
        const TxBuffer& buffer = tx_buffers_[port];
        // (Signed: `now` is the round's start, older than a packet this
        // round buffered.)
        if (buffer.count &&
            (tx_flush_ticks_ == 0 || static_cast<int64_t>(now - buffer.oldest) >= static_cast<int64_t>(tx_flush_ticks_))) {
            flush(port);
        }
    }
}

void Worker::flush(unsigned port_index) {
    TxBuffer& buffer = tx_buffers_[port_index];
    if (buffer.count == 0) return;
    const TxQueueRef& txq = plan_.tx[port_index];
    uint64_t bytes = buffer.bytes;

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
    buffer.bytes = 0;
}

void Worker::flush_all() {
    for (unsigned port = 0; port < tx_buffers_.size(); ++port) flush(port);
}

}  // namespace flowpath
