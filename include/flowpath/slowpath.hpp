// The slow path: misses handled off the workers, live rule changes and
// revalidation.
//
// A worker hands each packet that no cache of its own answers to the slow
// path as an Upcall on its own single-producer ring. A slow-path thread
// takes upcalls in batches, looks each one up in the worker's *registry*
// (the slow path's MegaflowCache for that worker, the authority on which
// megaflow sits in which slot), translates the packets no megaflow covers
// once per flow against the current rules, and answers with a Reply: a list
// of operations the worker applies in order at the start of a poll round
// (install, update, remove a megaflow at a slot; forward a packet by a
// slot's megaflow; fence). The worker alone writes its caches; the registry
// and the worker's replica agree slot by slot because every change to one
// reaches the other in order.
//
// Rule changes take the rule set's write lock, apply whole, and bump a
// generation. Each slow-path thread then re-translates every megaflow of its
// workers older than that generation (revalidation), sends the updates and
// removals, and a fence; a change returns once every worker has applied the
// fence. Design and invariants: docs/slowpath.md.
#pragma once

#include <pthread.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "flowpath/cache.hpp"
#include "flowpath/packet.hpp"
#include "flowpath/passes.hpp"
#include "flowpath/pipeline.hpp"
#include "flowpath/stats.hpp"

namespace flowpath {

/// One miss a worker hands to the slow path: the packet (an rte_mbuf,
/// opaque here) and what it carries besides its bytes: the slow path takes
/// the input port, recirc_id and ct state, zone and mark of its key from
/// `meta` (the rest it takes from the bytes) and gives `meta` back with its
/// answer, so that the worker continues the packet where it left it. A ring
/// element of 48 bytes.
struct Upcall {
    void* packet;
    PacketMeta meta;
};
static_assert(sizeof(Upcall) == 48);

/// A packet for the OpenFlow controllers: a datapath kController (see
/// datapath_controller) ran on it in a worker, which hands the packet (or a
/// copy) to the slow path on its own ring, apart from the misses (nothing
/// answers it, nothing waits for it). What the PACKET_IN's match shows
/// besides: the in_port and metadata of the translation at the action, and
/// the packet's ct fields and its connection's original tuple when the
/// action saw them (kControllerConntracked; else 0). A ring element of 80
/// bytes.
struct PacketInUpcall {
    void* packet;       ///< an rte_mbuf the slow path frees
    uint64_t cookie;    ///< of the rule whose action sent it
    uint64_t metadata;  ///< OpenFlow metadata
    uint32_t in_port;   ///< the translation's in_port
    uint32_t ct_mark;
    uint16_t ct_zone;
    uint16_t dl_type;   ///< the packet key's (network order), which Open vSwitch shows with ct_state
    uint16_t max_len;   ///< bytes to send at most (kControllerAll: all)
    uint8_t table;      ///< of that rule
    uint8_t flags;      ///< kControllerTableMiss, kControllerConntracked
    uint8_t ct_state;
    CtTuple ct_tuple;   ///< with a valid ct_state (new, est or rpl), else nw_proto 0
};
static_assert(sizeof(PacketInUpcall) == 80);

/// One instruction of a Reply.
struct ReplyOp {
    enum class Kind : uint8_t {
        install,   ///< megaflow translations[payload] at `slot` (free in the replica)
        update,    ///< the megaflow at `slot` takes translations[payload]'s actions
        remove,    ///< free `slot` (its actions are swapped into translations[payload])
        packet,    ///< forward `packet` by the megaflow at `slot`
        fence,     ///< every change of rule generation `generation` has come
        transmit,  ///< send `packet` (a new mbuf) out of port index `slot` (OpenFlow packet-out)
        inject,    ///< run `packet` (a new mbuf) through the pipeline as received on OpenFlow port
                   ///< `slot`, its pass the one of recirculation id `payload` (0: a first pass)
    };
    explicit ReplyOp(Kind k) : kind(k), packet(nullptr) {}

    Kind kind;
    TranslateDrop drop = TranslateDrop::none;  ///< install, update
    PacketLayout layout{};                     ///< packet
    uint32_t slot = 0;
    uint32_t payload = 0;
    union {
        void* packet;
        uint64_t generation;
    };
    PacketMeta meta{};  ///< packet: its upcall's, unchanged
};

/// A megaflow as a Reply carries it.
struct ReplyTranslation {
    FlowKey masked{};
    FlowMask mask{};
    ActionList actions;
};

/// What the slow path sends a worker: operations applied in order; the
/// packet ops answer the worker's upcalls one each, in the order sent. Reply
/// objects go back to the slow path for reuse, so their vectors keep their
/// capacity and the worker never allocates or frees them.
struct Reply {
    std::vector<ReplyOp> ops;
    std::vector<ReplyTranslation> translations;  ///< [0, translations_used) are this reply's
    uint32_t translations_used = 0;

    void clear() {
        ops.clear();
        translations_used = 0;
    }
    /// A fresh translation slot (reusing an earlier reply's storage).
    uint32_t add_translation();
};

/// The key a slow-path thread classifies an upcall by: the packet's bytes
/// (`data`, `len`) extracted with the metadata of the pass it missed in.
inline void extract_upcall(const uint8_t* data, uint32_t len, const PacketMeta& meta, Miniflow& flow,
                           PacketLayout& layout) {
    extract_miniflow(data, len, meta.in_port, flow, layout);
    set_pass_metadata(flow, meta);
}
/// The same for a chained frame of `len` bytes whose first `avail` are at
/// `data` (its headers lie there: the worker dropped it otherwise).
inline void extract_upcall(const uint8_t* data, uint32_t avail, uint32_t len, const PacketMeta& meta, Miniflow& flow,
                           PacketLayout& layout) {
    extract_miniflow_chained(data, avail, len, meta.in_port, flow, layout);
    set_pass_metadata(flow, meta);
}

/// Applies a cache operation (install, update, remove) of `reply` to a
/// worker's cache; false for the others (packet, fence, transmit, inject:
/// the worker's own).
/// `pending_seq` is the worker's count of upcalls sent so far: any of them
/// may carry a packet of a megaflow installed now.
bool apply_cache_op(FlowCache& cache, const ReplyOp& op, Reply& reply, uint64_t now, uint64_t pending_seq);

/// What a slow-path thread counts (one writer: that thread).
struct SlowPathCounters {
    Counter upcalls;        ///< packets received from workers
    Counter translations;   ///< flows translated (one per new megaflow)
    Counter installed;      ///< megaflows installed
    Counter evicted;        ///< megaflows removed to respect the flow limit
    Counter expired;        ///< megaflows removed after max-idle
    Counter batches;        ///< batches of upcalls handled
    Counter revalidations;  ///< revalidation rounds (one per rule generation seen)
    Counter revalidated;    ///< megaflows re-translated
    Counter updated;        ///< ... whose actions changed
    Counter invalidated;    ///< ... removed (their mask no longer covers the translation)
    Counter widened;        ///< megaflows installed under a wider mask than their translation's (mask limit)
    Counter last_revalidation_us;  ///< duration of the latest round
};

/// Table statistics with Open vSwitch's meaning: every lookup a packet's
/// translation made in the table (table 0, resubmits, goto_table, a
/// recirculation's table), and those that found a rule. Credited from
/// megaflow statistics when they reach the rules (never per packet).
struct TableCounters {
    Counter lookups, matched;
};
/// One table's statistics as read (SlowPath::table_counts).
struct TableCount {
    uint64_t lookups = 0, matched = 0;
};

/// Distinct megaflow masks a worker gets from translations as they are; a
/// megaflow whose mask would add a subtable beyond it is widened
/// (MissHandler::install_mask, docs/cache.md: tuple-space explosion).
inline constexpr unsigned kDefaultMaskLimit = 128;
/// Coarse masks (the translation's mask with the whole 5-tuple exact) that
/// may be added beyond the limit; past them, the all-bits mask.
inline constexpr unsigned kCoarseMasks = 8;

/// One worker's registry and the single-threaded logic that keeps it: the
/// part of the slow path that needs no thread or ring (tests drive it
/// directly). Rule-set reads happen under the caller's read lock.
class MissHandler {
public:
    /// `flow_limit` megaflows at most; `replica` is the worker's megaflow
    /// cache (its statistics are read, nothing else), null in tests that
    /// have none.
    MissHandler(uint32_t flow_limit, const MegaflowCache* replica);

    /// Answers `count` upcalls whose keys (with their metadata, see
    /// extract_upcall) and layouts were extracted: one packet op each, after
    /// the install of its megaflow when it had none. `generation` is the
    /// rules' generation (read under the same lock).
    void handle(const RuleSet& rules, uint64_t generation, const Miniflow* flows, const PacketLayout* layouts,
                const Upcall* upcalls, unsigned count, uint64_t now, Reply& reply);

    /// Re-translates megaflows older than `generation`, from where the last
    /// call stopped, adding at most about `budget` ops. True once every
    /// megaflow is at `generation` (the next call starts over).
    bool revalidate(const RuleSet& rules, uint64_t generation, Reply& reply, unsigned budget);

    /// Credits rules with what the replica counted since the last push and
    /// removes megaflows not used since `idle_before` (replica's clock), from
    /// where the last call stopped, adding at most about `budget` ops. True
    /// once the whole registry was swept.
    bool sweep(uint64_t idle_before, uint64_t now_ms, Reply& reply, unsigned budget);

    /// `dump-cache` lines for this worker: match, mask, actions, counters, age.
    std::string dump(const PortNames& ports, uint64_t now, uint64_t ticks_per_ms) const;

    /// Masks kept as translated before new ones are widened (0: no limit);
    /// a worker then has at most limit + kCoarseMasks + 1 subtables.
    void set_mask_limit(unsigned limit) { mask_limit_ = limit; }
    unsigned mask_limit() const { return mask_limit_; }

    /// The mask a new megaflow of a translation with `wildcards` is installed
    /// under (in_port included): the translation's own, or past the mask
    /// limit a wider one that adds no subtable if it can (never narrower:
    /// every packet inside the megaflow still gets its own translation).
    FlowMask install_mask(const FlowMask& wildcards);

    const MegaflowCache& registry() const { return registry_; }
    SlowPathCounters& counters() { return counters_; }
    const SlowPathCounters& counters() const { return counters_; }
    /// Lookups and matches by table, as far as pushed to the rules.
    const std::array<TableCounters, kMaxTable + 1>& table_counters() const { return tables_; }

private:
    struct ReplicaStats {
        uint64_t packets, bytes, last_used;
    };
    bool replica_stats(uint32_t slot, ReplicaStats& out) const;
    void push_stats(uint32_t slot, uint64_t now_ms);
    void retire(uint32_t slot, Reply& reply, uint64_t now_ms);
    void emit_install(uint32_t slot, Reply& reply);

    MegaflowCache registry_;
    const MegaflowCache* replica_;
    Translation translation_;  // reused: no allocation once warm
    uint32_t revalidate_cursor_ = 0;
    uint32_t sweep_cursor_ = 0;
    unsigned mask_limit_ = kDefaultMaskLimit;
    SlowPathCounters counters_;
    std::array<TableCounters, kMaxTable + 1> tables_;
};

/// The rule set as the slow path shares it: one writer at a time applies a
/// change whole under the write lock and bumps the generation; readers
/// (slow-path threads) hold the read lock for a batch or a revalidation
/// slice. Entries a change removed are kept (retired) until every
/// slow-path thread has revalidated past that change, because megaflows in
/// the registries name them until then.
class LiveRules {
public:
    explicit LiveRules(std::unique_ptr<RuleSet> rules);
    ~LiveRules();
    LiveRules(const LiveRules&) = delete;
    LiveRules& operator=(const LiveRules&) = delete;

    /// Runs `fn(rules, generation)` under the read lock.
    template <typename Fn>
    auto read(Fn&& fn) const {
        ReadLock lock(this);
        return fn(static_cast<const RuleSet&>(*rules_), generation_.load(std::memory_order_relaxed));
    }

    /// Runs `fn(rules)` under the write lock and bumps the generation.
    /// Returns the new generation. If fn throws, nothing changed (fn must
    /// check before it changes anything).
    uint64_t change(const std::function<void(RuleSet&)>& fn);

    uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

    /// Frees entries retired by changes up to `generation` (every reader has
    /// revalidated past them).
    void reclaim(uint64_t generation);

private:
    struct ReadLock {
        explicit ReadLock(const LiveRules* r) : rules(r) { pthread_rwlock_rdlock(&r->lock_); }
        ~ReadLock() { pthread_rwlock_unlock(&rules->lock_); }
        const LiveRules* rules;
    };

    std::unique_ptr<RuleSet> rules_;
    mutable pthread_rwlock_t lock_;
    std::atomic<uint64_t> generation_{1};
    std::mutex retired_lock_;
    std::vector<std::pair<uint64_t, std::unique_ptr<RuleEntry>>> retired_;
};

/// A worker's FlowCache and its MissHandler driven synchronously, as the
/// worker and the slow-path thread drive them through their rings (same
/// operations, same order; no threads, no DPDK): for tests and benchmarks.
struct InlineMissPath {
    InlineMissPath(uint32_t exact_entries, uint32_t flow_limit, uint32_t exact_insert_inverse_probability,
                   uint32_t signature_entries = kDefaultSignatureEntries)
        : cache(exact_entries, flow_limit, exact_insert_inverse_probability, signature_entries),
          handler(flow_limit, &cache.megaflows()) {}

    /// Sets slots[i] to the megaflow that decides packet i: the caches',
    /// else the one the slow path answered with. Packets are named by their
    /// index in the upcalls.
    void classify(const RuleSet& rules, uint64_t generation, const Miniflow* flows, unsigned count, uint64_t now,
                  uint32_t* slots) {
        const uint64_t missed = cache.classify_burst(flows, count, now, slots);
        if (!missed) return;
        Miniflow upcall_flows[kMaxLookupBurst];
        PacketLayout layouts[kMaxLookupBurst] = {};
        Upcall upcalls[kMaxLookupBurst];
        unsigned n = 0;
        for (unsigned i = 0; i < count; ++i) {
            if (!(missed & (uint64_t{1} << i))) continue;
            upcall_flows[n] = flows[i];
            upcalls[n++] = Upcall{reinterpret_cast<void*>(static_cast<uintptr_t>(i)), PacketMeta{}};
        }
        reply.clear();
        handler.handle(rules, generation, upcall_flows, layouts, upcalls, n, now, reply);
        apply(now, slots);
    }

    /// Applies `reply` as the worker does; packet ops set slots[packet index].
    void apply(uint64_t now, uint32_t* slots = nullptr) {
        for (const ReplyOp& op : reply.ops) {
            if (apply_cache_op(cache, op, reply, now, 0)) continue;
            if (op.kind == ReplyOp::Kind::packet && slots) slots[reinterpret_cast<uintptr_t>(op.packet)] = op.slot;
        }
    }

    FlowCache cache;
    MissHandler handler;
    Reply reply;
};

/// Milliseconds on the clock rule timeouts use (steady).
uint64_t rule_clock_ms();

/// RuleEntry::flags bit asking to be told when the rule goes (OpenFlow's
/// OFPFF_SEND_FLOW_REM).
inline constexpr uint16_t kRuleFlagSendFlowRemoved = 0x0001;

/// A rule that expired by its idle or hard timeout, as the slow path
/// reports it (only rules with kRuleFlagSendFlowRemoved).
struct RuleExpiry {
    Rule rule;
    bool hard = false;  ///< the hard timeout (else the idle one)
    uint64_t age_ms = 0;
    uint64_t packets = 0;
    uint64_t bytes = 0;
};

/// What the slow path reports to the OpenFlow agent's side. Called on a
/// slow-path thread; must not block for long (the agent queues events).
class SlowPathEvents {
public:
    /// A datapath kController ran on a packet: `data`/`len` are its bytes
    /// (valid during the call only).
    virtual void packet_in(const PacketInUpcall& upcall, const uint8_t* data, uint32_t len) = 0;
    /// A rule with kRuleFlagSendFlowRemoved expired.
    virtual void rule_expired(RuleExpiry expiry) = 0;

protected:
    ~SlowPathEvents() = default;
};

}  // namespace flowpath

struct rte_ring;

namespace flowpath {

/// Wakes a slow-path thread that parked: after a millisecond with nothing to
/// do the thread sleeps on an eventfd instead of polling (an idle datapath
/// then costs its core ~1,000 wake-ups a second, not tens of thousands, and
/// leaves the CPU to what shares it: the OpenFlow agent, the controller).
/// Whoever queues work for the thread calls ring() afterwards: a fence and
/// a load while the thread is awake, one eventfd write when it parked.
/// The thread calls prepare_to_park(), looks at its queues once more, then
/// park() or cancel_park(): with ring()'s fence between a producer's
/// enqueue and its load of `parked_`, one of the two always sees the other.
class Doorbell {
public:
    Doorbell();  ///< throws Error when no eventfd can be made
    ~Doorbell();
    Doorbell(const Doorbell&) = delete;
    Doorbell& operator=(const Doorbell&) = delete;

    void ring() noexcept {
        std::atomic_thread_fence(std::memory_order_seq_cst);
        if (parked_.load(std::memory_order_relaxed) && parked_.exchange(false, std::memory_order_acq_rel)) wake();
    }
    void prepare_to_park() noexcept { parked_.store(true, std::memory_order_seq_cst); }
    void cancel_park() noexcept { parked_.store(false, std::memory_order_relaxed); }
    /// Sleeps until ring() or `timeout_ms` passed.
    void park(int timeout_ms) noexcept;

private:
    void wake() noexcept;
    alignas(64) std::atomic<bool> parked_{false};  // read by every producer: a line of its own
    int fd_ = -1;
};

/// The rings between one worker and the slow path, created and freed here
/// (RAII). All single-producer, single-consumer:
/// - upcalls: worker -> slow path, Upcall elements;
/// - replies: slow path -> worker, Reply pointers;
/// - recycled: worker -> slow path, Replies applied (for reuse);
/// - packet_ins: worker -> slow path, PacketInUpcall elements.
class UpcallChannel {
public:
    /// `upcall_capacity` (a power of two) upcalls may wait.
    UpcallChannel(unsigned worker_index, unsigned upcall_capacity);
    ~UpcallChannel();
    UpcallChannel(const UpcallChannel&) = delete;
    UpcallChannel& operator=(const UpcallChannel&) = delete;

    rte_ring* upcalls() const { return upcalls_; }
    rte_ring* replies() const { return replies_; }
    rte_ring* recycled() const { return recycled_; }
    rte_ring* packet_ins() const { return packet_ins_; }

    /// Wakes the slow-path thread serving this worker if it parked; the
    /// worker calls it once per round in which it queued upcalls or
    /// packet-ins. (The SlowPath sets the doorbell before workers start;
    /// without a slow path, nothing to wake.)
    void wake_slow_path() const noexcept {
        if (doorbell_) doorbell_->ring();
    }
    void set_doorbell(Doorbell* doorbell) { doorbell_ = doorbell; }

    /// The newest rule generation whose fence the worker applied (the worker
    /// stores, release; rule changes wait on it).
    std::atomic<uint64_t> applied_generation{0};

private:
    rte_ring* upcalls_ = nullptr;
    rte_ring* replies_ = nullptr;
    rte_ring* recycled_ = nullptr;
    rte_ring* packet_ins_ = nullptr;
    Doorbell* doorbell_ = nullptr;
};

/// Packet-ins one worker may have waiting for the slow path; more are
/// dropped (counted as upcall_queue_full) while the controllers lag.
inline constexpr unsigned kPacketInRingSize = 1024;

/// Upcalls one worker may have waiting (its ring's size). Deep enough that
/// a burst of new flows at line rate (a pcap read whole, a NIC ring's
/// worth) waits instead of being dropped while the slow-path thread wakes.
inline constexpr unsigned kUpcallRingSize = 16384;
/// Upcalls one batch takes from one worker.
inline constexpr unsigned kUpcallBatch = 64;

/// How the slow path runs.
struct SlowPathPlan {
    std::vector<unsigned> cpus;  ///< one thread per CPU
    uint32_t flow_limit = 200000;
    uint32_t max_idle_ms = 10000;
};

/// What the slow path counted, summed over its threads.
struct SlowPathTotals {
    uint64_t upcalls = 0, translations = 0, installed = 0, evicted = 0, expired = 0, batches = 0;
    uint64_t widened = 0;  ///< installs under a wider mask than translated (mask limit)
    uint64_t revalidations = 0, revalidated = 0, updated = 0, invalidated = 0;
    uint64_t last_revalidation_us = 0;
};

/// The slow-path threads: each owns the MissHandlers of the workers
/// w with w % threads == its index, answers their upcalls, revalidates their
/// megaflows after a rule change, pushes their statistics to the rules and
/// expires idle megaflows; thread 0 also expires rules by their timeouts.
class SlowPath {
public:
    /// `replicas[w]` is worker w's megaflow cache (statistics are read).
    SlowPath(std::unique_ptr<RuleSet> rules, SlowPathPlan plan, std::vector<UpcallChannel*> channels,
             std::vector<const MegaflowCache*> replicas);
    ~SlowPath();
    SlowPath(const SlowPath&) = delete;
    SlowPath& operator=(const SlowPath&) = delete;

    void start();
    /// Stops the threads (call after the workers stopped) and frees what
    /// the rings still hold.
    void stop();

    /// Applies `fn` as one change and returns once every worker forwards by
    /// it. Throws what fn throws (nothing changed then), or Error when the
    /// workers did not confirm within `timeout_ms`.
    void change(const std::function<void(RuleSet&)>& fn, unsigned timeout_ms = 10000);

    /// Applies `fn` as one change and returns at once: new misses are
    /// translated by it from now on, the megaflows already in the workers'
    /// caches are revalidated right after (asynchronously, as Open
    /// vSwitch's revalidators do after a flow_mod: at once while a thread
    /// is awake, within a millisecond of its parking otherwise, so that a
    /// controller's stream of flow_mods does not wake it for each). A
    /// packet injected afterwards (inject) runs by it. Returns the change's
    /// generation.
    uint64_t publish(const std::function<void(RuleSet&)>& fn);

    /// Every thread pushes its megaflows' statistics to the rules now
    /// (dump-flows is then exact). False on timeout.
    bool push_stats(unsigned timeout_ms = 2000);

    /// Where packet-ins and expired rules are reported (null: nowhere).
    void set_events(SlowPathEvents* events) { events_.store(events, std::memory_order_release); }

    /// A packet for worker 0 to send (`pipeline` false: out of port index
    /// `port`) or to run through the pipeline as received on OpenFlow port
    /// `port` (OpenFlow packet-out), in the pass of `recirc_id` (0: a first
    /// pass; else where a packet-out's resubmit or metadata starts it,
    /// packet_out_recirc_id). `packet` is an rte_mbuf.
    struct Injected {
        void* packet;
        uint32_t port;
        bool pipeline;
        uint32_t recirc_id = 0;
    };
    /// Hands `packets` to worker 0 through its reply ring (they then take
    /// their turn with its other packets). While the datapath is not
    /// running they are freed. False when the slow path did not take them
    /// within `timeout_ms` (they are freed then too).
    bool inject(const std::vector<Injected>& packets, unsigned timeout_ms = 2000);

    /// `dump-cache [WORKER]`: worker -1 for all.
    std::string dump_cache(int worker);

    const LiveRules& rules() const { return rules_; }
    SlowPathTotals totals() const;
    /// Every table's lookups and matches (index: table id) as far as the
    /// last statistics push (push_stats() first for the packets until now).
    std::vector<TableCount> table_counts() const;

private:
    struct Thread;
    void run(Thread& thread);
    void run_on(Thread& thread, const std::function<void()>& task, unsigned timeout_ms);
    void expire_rules(uint64_t now_ms);
    void revalidate(Thread& thread, uint64_t ticks_per_ms);
    void reclaim_revalidated();

    LiveRules rules_;
    SlowPathPlan plan_;
    std::vector<UpcallChannel*> channels_;
    std::vector<const MegaflowCache*> replicas_;
    std::vector<std::unique_ptr<Thread>> threads_;
    std::atomic<bool> stop_{false};
    std::atomic<SlowPathEvents*> events_{nullptr};
    bool running_ = false;
};

}  // namespace flowpath
