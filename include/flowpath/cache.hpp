// The worker's flow caches: an exact-match cache in front of a tuple-space
// classifier of megaflows.
//
// A *megaflow* is a cached translation: a masked key (the bits the rules
// looked at, from Translation::wildcards) and the datapath actions every
// packet agreeing with it on those bits gets. MegaflowCache holds them in one
// hash table per distinct mask (a subtable) and looks a burst up subtable by
// subtable, most-hit subtable first. ExactCache maps a packet's whole
// miniflow to the megaflow it hit last time, so a repeated flow costs one
// probe instead of one per subtable. SignatureCache does the same for many
// more flows in less memory (a 16-bit signature and a slot per flow), at the
// price of a masked compare against the megaflow on every hit.
//
// Megaflows live in slots that never move; a slot's generation changes when
// its megaflow is removed, so a reference (slot, generation) held by the
// exact cache goes stale instead of dangling (no reference counting, no
// flush of the exact cache on eviction).
//
// Threading: a worker's caches belong to it; it alone changes them. The
// slow path keeps a MegaflowCache of its own per worker (the registry: the
// authority on which megaflow sits in which slot) and tells the worker what
// to install, update and remove; the worker's copy is a replica at the same
// slots (insert_at). The only cross-thread reads are of a replica slot's
// statistics (peek(): relaxed atomics, one writer). Nothing here allocates
// on lookup. Design: docs/cache.md, docs/slowpath.md.
#pragma once

#include <emmintrin.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <vector>

#include "flowpath/action.hpp"
#include "flowpath/flow_key.hpp"
#include "flowpath/miniflow.hpp"
#include "flowpath/simple_key.hpp"
#include "flowpath/pipeline.hpp"
#include "flowpath/stats.hpp"

namespace flowpath {

/// Eviction candidates looked at per eviction.
inline constexpr unsigned kEvictionCandidates = 16;

/// `bytes` of zeroed anonymous memory, transparent huge pages where the
/// system allows them (madvise), every page touched now: with 4 KiB pages a
/// probe of a table of megabytes is also a TLB miss (a two-dimensional page
/// walk in a virtual machine). Throws Error when none can be had.
void* map_zeroed_pages(size_t bytes);

/// Frees what map_zeroed_pages() mapped (the deleter of a TableMemory).
struct TableUnmapper {
    size_t bytes = 0;
    void operator()(void* memory) const;
};
/// A large table read at random per packet (the exact and signature caches).
template <typename T>
using TableMemory = std::unique_ptr<T[], TableUnmapper>;

/// `count` zeroed T from map_zeroed_pages().
template <typename T>
TableMemory<T> map_table(size_t count) {
    static_assert(std::is_trivially_copyable_v<T>);
    const size_t bytes = count * sizeof(T);
    return TableMemory<T>(static_cast<T*>(map_zeroed_pages(bytes)), TableUnmapper{bytes});
}

/// "No megaflow": a lookup miss.
inline constexpr uint32_t kNoFlow = UINT32_MAX;

/// The most packets one burst lookup takes (a bitmask of them fits a word).
inline constexpr unsigned kMaxLookupBurst = 64;

/// Megaflow::only_output of a list that is not exactly one output.
inline constexpr uint32_t kNotOnlyOutput = 0;

/// A cached translation. Owned by a MegaflowCache.
///
/// Laid out by who reads it: line 0 is everything a hit reads and writes
/// (the caches' validation, the worker's ordering checks, statistics and a
/// plain output's port), lines 1-2 the masked key (a signature-cache hit
/// compares its first words: an IPv4 5-tuple mask's fit line 1), the rest
/// only installs, removals and the slow path read. Slots are line-aligned,
/// so an exact-cache hit of a plain-output megaflow reads one line of it
/// and a signature-cache hit two (docs/cache.md).
struct alignas(64) Megaflow {
    // Line 0. Statistics, written by the owning worker (one writer), read by
    // the slow path's revalidator through MegaflowCache::peek().
    Counter packets, bytes;
    Counter last_used;        ///< caller's time unit (TSC in the worker)
    /// Worker replica only: the sequence number of the last upcall that may
    /// carry a packet of this megaflow. Until every upcall up to it is
    /// answered, its packets go the slow way too, so none overtakes an
    /// earlier packet of its flow (docs/slowpath.md, ordering).
    uint64_t pending_seq = 0;
    // generation and live are written with __atomic stores by the owner and
    // read with __atomic loads by the slow path (MissHandler).
    uint32_t generation = 0;  ///< changes when the slot is freed
    uint32_t held = 0;        ///< worker replica only: its packets the worker holds back
    /// The port (1-based, as Action::port) when `actions` is exactly one
    /// output, else kNotOnlyOutput: a plain forwarding megaflow's packets go
    /// to that port without reading the list (MegaflowCache keeps it).
    uint32_t only_output = kNotOnlyOutput;
    uint16_t subtable = 0;    ///< index into the cache's subtables
    bool live = false;
    /// Worker replica only (the worker sets it on install and update): its
    /// actions run the tracker, so its packets keep their arrival order
    /// through it across the slow path (docs/slowpath.md, ordering).
    bool runs_ct = false;
    TranslateDrop drop = TranslateDrop::none;
    /// Worker replica only: the group its packets joined in the worker's
    /// latest dispatch. A hint, checked before use (it may be from any
    /// earlier pass): dispatch finds a megaflow's group without searching
    /// the pass's groups (PassGroups, passes.hpp).
    uint8_t dispatch_group = 0;

    // Lines 1-2 (the map ends line 0).
    Miniflow masked;          ///< key & mask, with the mask's map

    // Cold: installs, removals, the slow path.
    uint32_t hash = 0;        ///< hash of `masked` in its subtable
    ActionList actions;       ///< datapath actions (the translation)
    uint64_t created = 0;

    // Slow-path registry only.
    std::vector<RuleEntry*> rules;  ///< rules its packets are credited to
    /// Tables whose lookup found no rule (Translation::missed): lookups its
    /// packets are credited to besides the rules' tables.
    std::array<uint8_t, kMaxMissedLookups> missed{};
    uint8_t missed_count = 0;
    uint64_t rule_generation = 0;   ///< rule-set generation it was translated at
    uint64_t pushed_packets = 0, pushed_bytes = 0;  ///< replica stats already credited
};
static_assert(offsetof(Megaflow, masked) + sizeof(uint64_t) == 64, "line 0 ends with the masked key's map");

/// A megaflow cache: tuple-space search over megaflows, owned by one worker.
class MegaflowCache {
public:
    /// At most `capacity` megaflows (a full cache evicts the least recently
    /// used of a few candidates to make room).
    explicit MegaflowCache(uint32_t capacity);
    ~MegaflowCache();
    MegaflowCache(const MegaflowCache&) = delete;
    MegaflowCache& operator=(const MegaflowCache&) = delete;

    /// Looks up `count` (<= kMaxLookupBurst) keys; for each bit i set in
    /// `wanted`, sets found[i] to the slot of a megaflow matching keys[i] or
    /// leaves it kNoFlow. Returns the bits of `wanted` that found nothing.
    /// Subtables are visited in rank order, each once for the whole burst.
    /// Keys are expanded (FlowKey, not Miniflow): each subtable then reads
    /// its mask's words by index.
    uint64_t lookup_burst(const FlowKey* const* keys, unsigned count, uint64_t wanted, uint32_t* found);

    /// One key; the same answer lookup_burst gives.
    uint32_t lookup(const FlowKey& key);

    /// The reference: a linear scan of every live megaflow (tests).
    uint32_t reference_lookup(const FlowKey& key) const;

    /// Installs the translation of `key` with `wildcards` (the bits it
    /// depends on; in_port is always added) in a free slot and returns it,
    /// or kNoFlow when the cache is full (make room with evict_one()). The
    /// caller makes sure no live megaflow matches `key` yet.
    uint32_t insert(const FlowKey& key, const FlowMask& wildcards, const Translation& translation, uint64_t now);

    /// Frees the least recently used of a few candidates (by last_used, or
    /// by `age_of(slot)` when given) and returns its slot; kNoFlow when the
    /// cache is not full.
    uint32_t evict_one();
    template <typename AgeOf>
    uint32_t evict_one(AgeOf&& last_used_of);

    /// Replica install: the megaflow `masked` under `mask` (in_port
    /// included) at `slot`, which must be free. `actions` is swapped in (the
    /// caller gets the slot's old, empty list back: no allocation here but
    /// the slot's chunk and a new mask's subtable).
    void insert_at(uint32_t slot, const FlowKey& masked, const FlowMask& mask, ActionList& actions,
                   TranslateDrop drop, uint64_t now);

    /// Replaces a live megaflow's translation (revalidation); `actions` is
    /// swapped as in insert_at.
    void update(uint32_t slot, ActionList& actions, TranslateDrop drop);

    /// Removes the megaflow in `slot` (stale references then miss). With
    /// `reclaim`, its action list is swapped out into it instead of kept.
    void remove(uint32_t slot, ActionList* reclaim = nullptr);

    /// Removes every megaflow.
    void clear();

    /// Orders subtables by hits since the last call (most first) and resets
    /// the hit counts: call about once a second.
    void rank_subtables();

    Megaflow& flow(uint32_t slot) { return *slot_ptr(slot); }
    const Megaflow& flow(uint32_t slot) const { return *slot_ptr(slot); }

    /// For another thread: slot `slot` if its chunk exists (its statistics
    /// may be read; nothing else is stable), else null.
    const Megaflow* peek(uint32_t slot) const {
        if (slot >= capacity_) return nullptr;
        return peek_chunk(slot);
    }

    /// The mask of a live megaflow.
    FlowMask mask_of(uint32_t slot) const { return subtable_mask(slot_ptr(slot)->subtable); }

    /// Whether `slot` holds a live megaflow that `key` lies inside (its
    /// masked compare): the signature cache's validation.
    bool matches(uint32_t slot, const FlowKey& key) const;

    /// Prefetches slot `slot` (below slot_limit()): the two lines a
    /// signature hit reads (line 0 and the masked key's first words), which
    /// hold all the worker then reads of a plain megaflow.
    void prefetch_slot(uint32_t slot) const {
        const char* bytes = reinterpret_cast<const char*>(slot_ptr(slot));
        __builtin_prefetch(bytes);
        __builtin_prefetch(bytes + 64);
    }
    /// Prefetches, for writing, every line of `slot` if its chunk exists
    /// (a replica applying an install or remove the slow path sent).
    void prefetch_for_write(uint32_t slot) const {
        const Megaflow* flow = peek(slot);
        if (!flow) return;
        const char* bytes = reinterpret_cast<const char*>(flow);
        for (size_t offset = 0; offset < sizeof(Megaflow); offset += 64) __builtin_prefetch(bytes + offset, 1);
    }

    /// Whether some subtable has exactly `mask` (in_port included).
    bool has_mask(const FlowMask& mask) const;

    /// Every subtable's mask (the slow path's install policy; not per packet).
    std::vector<FlowMask> masks() const;

    /// Whether (slot, generation) still names the same live megaflow.
    bool valid(uint32_t slot, uint32_t generation) const {
        const Megaflow& f = *slot_ptr(slot);
        return f.live && f.generation == generation;
    }

    uint32_t size() const { return live_; }
    /// Slots below this have been used at least once (iterate them for a scan).
    uint32_t slot_limit() const { return next_unused_; }
    uint32_t capacity() const { return capacity_; }
    unsigned subtable_count() const;
    uint64_t evictions() const { return evictions_; }
    /// Bytes held: slots, actions, rule lists, subtables and their indexes.
    /// Cheap (no walk over the megaflows): the worker publishes it per burst.
    uint64_t memory_bytes() const;

    /// Calls fn(const Megaflow&, const FlowMask& mask) for each live megaflow.
    template <typename Fn>
    void for_each(Fn&& fn) const {
        for (uint32_t slot = 0; slot < next_unused_; ++slot) {
            const Megaflow& f = *slot_ptr(slot);
            if (f.live) fn(f, subtable_mask(f.subtable));
        }
    }

private:
    struct Subtable;
    // Slots per chunk: 64 (a chunk is allocated by the install that first
    // needs it; 1024-slot chunks made that install take ~100 us).
    static constexpr unsigned kChunkShift = 6;
    static constexpr uint32_t kSlotInChunk = (1u << kChunkShift) - 1;

    Megaflow* slot_ptr(uint32_t slot) const {
        return chunks_[slot >> kChunkShift].load(std::memory_order_relaxed) + (slot & kSlotInChunk);
    }
    const Megaflow* peek_chunk(uint32_t slot) const {
        const Megaflow* chunk = chunks_[slot >> kChunkShift].load(std::memory_order_acquire);
        return chunk ? chunk + (slot & kSlotInChunk) : nullptr;
    }
    void ensure_chunk(uint32_t slot);
    FlowMask subtable_mask(uint16_t subtable) const;
    uint32_t allocate_slot();
    void place(uint32_t slot, const FlowKey& key, const FlowMask& mask, uint64_t now);
    uint16_t subtable_for(const FlowMask& mask);
    uint32_t probe(const Subtable& table, const FlowKey& key, uint32_t hash) const;
    static uint64_t heap_bytes_of(const Megaflow& flow);

    uint32_t capacity_;
    uint32_t live_ = 0;
    uint32_t next_unused_ = 0;         // slots below it have been used at least once
    uint32_t clock_hand_ = 0;          // next eviction candidate
    uint64_t evictions_ = 0;
    uint64_t heap_bytes_ = 0;          // capacity of every slot's vectors
    // One pointer per possible chunk, fixed at construction: a chunk appears
    // (release) before any slot in it is named to another thread, and never
    // moves, so peek() may read slots while the owner installs.
    std::unique_ptr<std::atomic<Megaflow*>[]> chunks_;
    uint32_t chunk_count_ = 0;
    uint64_t allocated_chunks_ = 0;
    std::vector<uint32_t> free_slots_;                   // freed slots, reused first
    std::vector<std::unique_ptr<Subtable>> subtables_;   // stable indices; null once emptied
    std::vector<Subtable*> ranked_;                      // live subtables, lookup order
};

/// An exact-match cache: whole miniflow -> megaflow slot, 2-way set
/// associative, `entries` a power of two. An entry is two cache lines,
/// aligned (the L2's adjacent-line prefetcher brings the pair): the first
/// holds the hash and the map (one 64-bit tag: one compare rejects another
/// flow), the slot, its generation and the first kEntryHeadWords words (an
/// untagged IPv4 TCP/UDP key has 7: the 7th is the second line's first). Flows of more than kEntryWords words (VLAN-tagged IPv6 neighbor
/// discovery) are not cached here: the signature cache and the subtables
/// answer them. Owned by one worker.
class ExactCache {
public:
    explicit ExactCache(uint32_t entries);

    /// The hash of a packet's whole miniflow (map and words): compute once.
    static uint32_t hash_of(const Miniflow& flow);

    /// The megaflow slot cached for `flow` (hash from hash_of), or kNoFlow.
    /// An entry whose megaflow was removed since reads as a miss.
    uint32_t lookup(const Miniflow& flow, uint32_t hash, const MegaflowCache& megaflows) const {
        for (unsigned way = 0; way < 2; ++way) {
            const Entry& e = entries_[bucket(hash, way)];
            // An empty entry's tag (kEmptyTag) is no flow's, so the tag
            // compare also rules it out.
            if (e.tag == tag_of(hash, flow) && same_words(e, flow) && megaflows.valid(e.slot, e.generation)) {
                return e.slot;
            }
        }
        return kNoFlow;
    }

    /// Caches `flow` -> `slot` (its generation read from `megaflows`),
    /// replacing the flow's own entry, else an empty or stale one, else the
    /// older of the two candidates.
    void insert(const Miniflow& flow, uint32_t hash, uint32_t slot, const MegaflowCache& megaflows);

    /// Prefetches the entries `hash` may live in.
    void prefetch(uint32_t hash) const {
        __builtin_prefetch(&entries_[bucket(hash, 0)]);
        __builtin_prefetch(&entries_[bucket(hash, 1)]);
    }

    void clear();
    uint32_t entries() const { return mask_ + 1; }
    uint64_t memory_bytes() const { return uint64_t{entries()} * sizeof(Entry); }
    /// Entries that name a live megaflow (a scan: for statistics, not per packet).
    uint32_t valid_entries(const MegaflowCache& megaflows) const;

    /// Words an entry holds in its first cache line, and in all.
    static constexpr unsigned kEntryHeadWords = 6;
    static constexpr unsigned kEntryWords = 13;

private:
    // The tag: the hash in the high half, the map in the low (a map has
    // kFlowWords < 32 bits). An empty entry's tag has a map no flow has.
    static_assert(kFlowWords < 32);
    static constexpr uint64_t kEmptyTag = ~uint64_t{0};
    static uint64_t tag_of(uint32_t hash, const Miniflow& flow) { return uint64_t{hash} << 32 | flow.map; }

    struct alignas(64) Entry {
        // Line 0: what a hit of a flow of up to kEntryHeadWords words reads.
        uint64_t tag = kEmptyTag;  // tag_of(the flow's hash, its map)
        uint32_t slot = kNoFlow;
        uint32_t generation = 0;
        uint64_t words[kEntryWords];  // the flow's words (the rest in line 1)
        // Line 1: the rest of the words, then what only insert reads.
        uint32_t stamp = 0;  // insertion order, to pick the older way
    };
    static_assert(sizeof(Entry) == 128 && offsetof(Entry, words) + 8 * kEntryHeadWords == 64);

    /// The entry's words equal the flow's (tags already equal). Inline,
    /// OR-accumulated, no call: the count is the same for every packet of a
    /// parse path, so the loop's exit is predicted.
    static bool same_words(const Entry& e, const Miniflow& flow) {
        const unsigned n = flow.size();
        uint64_t diff = 0;
        for (unsigned i = 0; i < n; ++i) diff |= e.words[i] ^ flow.words[i];
        return diff == 0;
    }
    // A set is two adjacent entries: the hash picks the set, so two flows
    // compete only when their sets agree, and both ways sit side by side.
    uint32_t bucket(uint32_t hash, unsigned way) const { return ((hash << 1) & mask_) | way; }

    TableMemory<Entry> entries_;
    uint32_t mask_;
    uint32_t stamp_ = 0;
};

/// Signature cache entries by default: 2^17 buckets of 10, 1,310,720
/// entries (8 MiB), enough for 1M flows at ~76% occupancy.
inline constexpr uint32_t kDefaultSignatureEntries = 1u << 20;

/// The signature cache (Open vSwitch's SMC): a packet's full-key hash (the
/// exact cache's) -> the megaflow slot that answered it, for many more flows
/// than the exact cache holds. A bucket is one cache line of 10 ways, each a
/// 16-bit signature (the hash's high half; the low bits pick the bucket) and
/// a slot. Nothing is removed from it: a hit is only a candidate, accepted
/// when that slot holds a live megaflow the packet lies inside (the masked
/// compare), so an entry whose megaflow went stale reads as a miss, and one
/// whose slot was reused by a megaflow covering the packet is as right as
/// any other megaflow that covers it (every megaflow is valid for every
/// packet inside it). Owned by one worker; 0 entries disables it.
class SignatureCache {
public:
    /// At least `entries` entries, rounded up to a power-of-two bucket count.
    explicit SignatureCache(uint32_t entries);

    bool enabled() const { return bucket_mask_ != UINT32_MAX; }

    void prefetch(uint32_t hash) const { __builtin_prefetch(&buckets_[hash & bucket_mask_]); }

    /// The ways of `hash`'s bucket whose signature is `hash`'s: bit 2w set
    /// for way w (way = countr_zero / 2); slot_at(hash, w) names their slots.
    uint32_t candidates(uint32_t hash) const {
        const Bucket& b = buckets_[hash & bucket_mask_];
        const __m128i want = _mm_set1_epi16(static_cast<short>(hash >> 16));
        // Ways 0-7 and 2-9 (two overlapping loads), two mask bits per way.
        const uint32_t low = static_cast<uint32_t>(
            _mm_movemask_epi8(_mm_cmpeq_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(b.signature)), want)));
        const uint32_t high = static_cast<uint32_t>(_mm_movemask_epi8(
            _mm_cmpeq_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.signature + 2)), want)));
        return (low | high << 4) & 0x55555u;
    }
    /// The slot of way `way` of `hash`'s bucket; kNoFlow when the way is empty.
    uint32_t slot_at(uint32_t hash, unsigned way) const {
        return buckets_[hash & bucket_mask_].slot_plus_one[way] - 1;
    }

    /// Remembers `hash` -> `slot`: the way already naming it, else one with
    /// the same signature (most likely the same flow's stale entry), else an
    /// empty way, else the next of the bucket's ways in turn.
    void insert(uint32_t hash, uint32_t slot);

    void clear();
    uint32_t entries() const { return enabled() ? (bucket_mask_ + 1) * kWays : 0; }
    uint64_t memory_bytes() const { return enabled() ? uint64_t{bucket_mask_ + 1} * sizeof(Bucket) : 0; }

    static constexpr unsigned kWays = 10;

private:
    struct alignas(64) Bucket {
        uint16_t signature[kWays];
        uint32_t slot_plus_one[kWays];  // 0: empty
    };
    static_assert(sizeof(Bucket) == 64);

    TableMemory<Bucket> buckets_;
    uint32_t bucket_mask_ = UINT32_MAX;  // UINT32_MAX: disabled
    uint32_t next_victim_ = 0;
};

/// What a FlowCache counted (plain integers: its owner reads them and
/// publishes them into its own counters).
/// The simple-match tier (Open vSwitch 3's simple match, widened to every
/// mask that leaves the transport header alone; docs/cache.md): while the
/// cache holds at most kSimpleMatchFlows megaflows and none of their masks
/// reads beyond the SimpleKey words, a packet's SimpleKey is compared with
/// each megaflow's masked value directly: no miniflow, no hash, no probe.
/// Kept by FlowCache on every install and remove.
class SimpleMatch {
public:
    static constexpr unsigned kSimpleMatchFlows = 8;

    /// Whether every live megaflow is in the table (and there is one).
    bool active() const { return deep_ == 0 && untabled_ == 0 && size_ > 0; }

    /// The slot of a megaflow matching `key`, or kNoFlow.
    uint32_t lookup(const SimpleKey& key) const {
        for (unsigned e = 0; e < size_; ++e) {
            const Entry& entry = entries_[e];
            bool match = entry.possible;
            for (unsigned k = 0; match && k < entry.words; ++k) {
                match = (key.words[entry.position[k]] & entry.mask[k]) == entry.value[k];
            }
            if (match) return entry.slot;
        }
        return kNoFlow;
    }

    /// A megaflow installed at `slot` (`masked` = key & mask).
    void add(uint32_t slot, const FlowKey& masked, const FlowMask& mask);
    /// The megaflow at `slot`, installed with `mask`, is gone.
    void remove(uint32_t slot, const FlowMask& mask);

    /// Whether a megaflow with `mask` can be answered here.
    static bool simple_mask(const FlowMask& mask);

private:
    struct Entry {
        uint32_t slot;
        bool possible;  ///< false: it needs a nonzero word a SimpleKey frame never has
        uint8_t words;  ///< mask words compared
        uint8_t position[kSimpleKeyWords];
        uint64_t mask[kSimpleKeyWords];
        uint64_t value[kSimpleKeyWords];
    };
    Entry entries_[kSimpleMatchFlows];
    unsigned size_ = 0;
    uint32_t deep_ = 0;      ///< live megaflows whose mask reads more
    uint32_t untabled_ = 0;  ///< simple ones beyond the table
};

struct FlowCacheCounters {
    uint64_t simple_hits = 0;    ///< packets the simple-match tier answered
    uint64_t exact_hits = 0;     ///< packets the exact cache answered
    uint64_t megaflow_hits = 0;  ///< ... a megaflow answered after the exact cache missed
    uint64_t signature_hits = 0; ///< ... of those, through the signature cache
    uint64_t misses = 0;         ///< ... that found no megaflow
    /// Packets that went past the exact cache without a probe (it was
    /// bypassed: FlowCache, docs/cache.md); counted in megaflow_hits or misses.
    uint64_t exact_skipped = 0;
};

/// A worker's caches: classify_burst() gives every packet of a burst the
/// megaflow that decides its fate, from the exact cache, then the signature
/// cache, then the megaflow subtables; packets that find none are the caller's to send to the slow path,
/// whose answers come back as install/update/remove calls at the slots the
/// slow path chose. Translation is not here: it is the slow path's.
class FlowCache {
public:
    /// Sizes: the exact cache's entries (rounded up to a power of two), the
    /// megaflow cache's capacity (the flow limit; at least
    /// 2 * kMaxLookupBurst), and the inverse probability of inserting a
    /// megaflow hit into the exact cache (1: always; Open vSwitch's default
    /// is 100, which keeps a flood of short flows from thrashing it); the
    /// signature cache's entries (0: none) and the inverse probability of
    /// inserting a subtable hit into it (1: every hit; docs/cache.md).
    FlowCache(uint32_t exact_entries, uint32_t megaflow_capacity, uint32_t exact_insert_inverse_probability,
              uint32_t signature_entries = kDefaultSignatureEntries,
              uint32_t signature_insert_inverse_probability = 1);

    /// Sets slots[i] for each of the `count` (<= kMaxLookupBurst) miniflows,
    /// kNoFlow for those no megaflow matches, and returns their bit mask.
    /// Megaflows found are stamped with `now`.
    uint64_t classify_burst(const Miniflow* flows, unsigned count, uint64_t now, uint32_t* slots);

    /// The slow path's answers, applied at the slots it chose (see
    /// MegaflowCache::insert_at/update/remove; actions are swapped).
    void install(uint32_t slot, const FlowKey& masked, const FlowMask& mask, ActionList& actions, TranslateDrop drop,
                 uint64_t now, uint64_t pending_seq);
    void update(uint32_t slot, ActionList& actions, TranslateDrop drop) { megaflows_.update(slot, actions, drop); }
    void remove(uint32_t slot, ActionList& reclaim);

    Megaflow& flow(uint32_t slot) { return megaflows_.flow(slot); }
    const MegaflowCache& megaflows() const { return megaflows_; }
    MegaflowCache& megaflows() { return megaflows_; }
    const ExactCache& exact() const { return exact_; }
    const SignatureCache& signatures() const { return signatures_; }
    const FlowCacheCounters& counters() const { return counters_; }
    const SimpleMatch& simple() const { return simple_; }
    /// `count` packets answered by the simple-match tier.
    void count_simple_hits(unsigned count) { counters_.simple_hits += count; }

    /// Whether the exact cache is bypassed now: too few of its probes hit
    /// (below 1/kExactBypassBelow of a window's lookups), so most bursts go
    /// straight to the signature cache; one burst in kExactProbeEvery still
    /// probes it, and a window at or above 1/kExactResumeAt ends the bypass.
    bool exact_bypassed() const { return exact_bypassed_; }
    static constexpr uint32_t kExactWindow = 8192;  ///< exact-cache lookups per decision
    static constexpr uint32_t kExactBypassBelow = 3;
    static constexpr uint32_t kExactResumeAt = 2;
    static constexpr uint32_t kExactProbeEvery = 8;

    /// Bytes held by all three caches (the stats' cache.bytes).
    uint64_t memory_bytes() const {
        return exact_.memory_bytes() + signatures_.memory_bytes() + megaflows_.memory_bytes();
    }

private:
    /// True with probability (threshold + 1) / 2^64 (UINT64_MAX: always).
    bool sample(uint64_t threshold);
    static uint64_t threshold_of(uint32_t inverse_probability) { return UINT64_MAX / inverse_probability; }
    /// Looks up the burst's packets in the exact cache: sets slots[i] of the
    /// hits; returns the bit mask of the others.
    uint64_t probe_exact(const Miniflow* flows, unsigned count, const uint32_t* hashes, uint64_t now,
                         uint32_t* slots);
    /// Counts an exact-cache probe of `count` packets with `hits` hits and
    /// decides, once a window is full, whether to bypass it.
    void account_exact(unsigned count, unsigned hits);

    SimpleMatch simple_;
    ExactCache exact_;
    SignatureCache signatures_;
    MegaflowCache megaflows_;
    uint64_t exact_insert_threshold_;
    uint64_t signature_insert_threshold_;
    uint64_t random_state_ = 0x9E3779B97F4A7C15ull;
    FlowCacheCounters counters_;
    uint32_t window_lookups_ = 0, window_hits_ = 0;  // exact-cache probes in the current window
    uint32_t bursts_to_probe_ = 0;                   // while bypassed: bursts until the next probe
    bool exact_bypassed_ = false;
};

template <typename AgeOf>
uint32_t MegaflowCache::evict_one(AgeOf&& last_used_of) {
    if (live_ < capacity_) return kNoFlow;
    // Full: every slot below capacity_ is live. Looking at a few consecutive
    // slots from a clock hand is close to LRU at a bounded cost; drop
    // megaflows are not preferred (a flood would come straight back).
    uint32_t victim = clock_hand_;
    uint64_t oldest = last_used_of(victim);
    for (unsigned n = 1; n < kEvictionCandidates; ++n) {
        const uint32_t slot = (clock_hand_ + n) % capacity_;
        const uint64_t age = last_used_of(slot);
        if (age < oldest) {
            victim = slot;
            oldest = age;
        }
    }
    clock_hand_ = (clock_hand_ + kEvictionCandidates) % capacity_;
    remove(victim);
    ++evictions_;
    return victim;
}

}  // namespace flowpath
