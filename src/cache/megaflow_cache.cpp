// The megaflow cache: slots that never move, one open-addressing index per
// subtable (distinct mask), burst lookup subtable by subtable.
#include <algorithm>
#include <cstring>

#include "flowpath/cache.hpp"
#include "../common/linear_probe.hpp"

namespace flowpath {

namespace {
constexpr uint32_t kHashBasis = 0x6d65676au;  // any constant: "megj"

// Megaflow::only_output of `actions`.
uint32_t only_output_of(const ActionList& actions) {
    return actions.size() == 1 && actions[0].type == ActionType::kOutput ? actions[0].port : kNotOnlyOutput;
}
}  // namespace

/// One distinct megaflow mask and the index of its megaflows: (hash, slot)
/// pairs, linear probing, at most half full (probe chains stay short). The
/// index grows a few entries per install (linear_probe.hpp): an install
/// never rehashes a whole subtable.
struct MegaflowCache::Subtable {
    struct Bucket {
        uint32_t hash = 0;
        uint32_t slot_plus_one = 0;  // 0: empty (an all-zero bucket must be)
        constexpr bool empty() const { return slot_plus_one == 0; }
        uint32_t slot() const { return slot_plus_one - 1; }
    };
    using Index = LinearProbeTable<Bucket, 50>;

    Subtable(const FlowMask& full_mask, uint16_t self)
        : mask(full_mask), minimask(miniflow_from_key(full_mask)), index(self) {
        for (uint64_t m = minimask.map; m; m &= m - 1) word_index[n_words++] = static_cast<uint8_t>(std::countr_zero(m));
    }

    // Keys come in expanded (one FlowKey per packet, made once per burst),
    // so a mask word is a plain indexed load: no map arithmetic per word.
    uint32_t hash_of(const FlowKey& key) const {
        const uint64_t* words = flow_words(key);
        uint32_t hash = kHashBasis;
        for (unsigned n = 0; n < n_words; ++n) hash = hash_add_word(hash, words[word_index[n]] & minimask.words[n]);
        return hash_finish(hash);
    }

    bool matches(const FlowKey& key, const Miniflow& masked) const {
        const uint64_t* words = flow_words(key);
        for (unsigned n = 0; n < n_words; ++n) {
            if ((words[word_index[n]] & minimask.words[n]) != masked.words[n]) return false;
        }
        return true;
    }

    void add(uint32_t hash, uint32_t slot) { megaflows.insert(Bucket{hash, slot + 1}); }

    void erase(uint32_t hash, uint32_t slot) {
        megaflows.erase_at(megaflows.find(hash, [slot](const Bucket& b) { return b.slot() == slot; }));
    }

    uint32_t count() const { return static_cast<uint32_t>(megaflows.size()); }

    FlowMask mask;
    Minimask minimask;
    uint8_t word_index[kFlowWords];  // the key word each mask word applies to
    unsigned n_words = 0;
    uint16_t index;
    uint64_t hits = 0;  // since the last ranking
    Index megaflows;    // never empty: a subtable goes with its last megaflow
};

MegaflowCache::MegaflowCache(uint32_t capacity)
    : capacity_(std::max<uint32_t>(capacity, 1)),
      chunks_(new std::atomic<Megaflow*>[((capacity_ - 1) >> kChunkShift) + 1]),
      chunk_count_(((capacity_ - 1) >> kChunkShift) + 1) {
    for (uint32_t c = 0; c < chunk_count_; ++c) chunks_[c].store(nullptr, std::memory_order_relaxed);
}

MegaflowCache::~MegaflowCache() {
    for (uint32_t c = 0; c < chunk_count_; ++c) delete[] chunks_[c].load(std::memory_order_relaxed);
}

void MegaflowCache::ensure_chunk(uint32_t slot) {
    std::atomic<Megaflow*>& chunk = chunks_[slot >> kChunkShift];
    if (chunk.load(std::memory_order_relaxed)) return;
    chunk.store(new Megaflow[size_t{1} << kChunkShift], std::memory_order_release);
    allocated_chunks_ += 1;
}

uint32_t MegaflowCache::probe(const Subtable& table, const FlowKey& key, uint32_t hash) const {
    const size_t i = table.megaflows.find(hash, [&](const Subtable::Bucket& bucket) {
        return bucket.hash == hash && table.matches(key, slot_ptr(bucket.slot())->masked);
    });
    return i == Subtable::Index::npos ? kNoFlow : table.megaflows.at(i).slot();
}

uint64_t MegaflowCache::lookup_burst(const FlowKey* const* keys, unsigned count, uint64_t wanted, uint32_t* found) {
    if (count < kMaxLookupBurst) wanted &= (uint64_t{1} << count) - 1;
    uint64_t remaining = wanted;
    uint32_t hashes[kMaxLookupBurst];
    for (Subtable* table : ranked_) {
        if (!remaining) break;
        // Hash the whole burst first and prefetch the buckets, then probe:
        // the probes' cache misses overlap instead of queueing.
        for (uint64_t m = remaining; m; m &= m - 1) {
            const unsigned i = static_cast<unsigned>(std::countr_zero(m));
            hashes[i] = table->hash_of(*keys[i]);
            table->megaflows.prefetch(hashes[i]);
        }
        for (uint64_t m = remaining; m; m &= m - 1) {
            const unsigned i = static_cast<unsigned>(std::countr_zero(m));
            const uint32_t slot = probe(*table, *keys[i], hashes[i]);
            if (slot == kNoFlow) continue;
            found[i] = slot;
            remaining &= ~(uint64_t{1} << i);
            ++table->hits;
        }
    }
    return remaining;
}

uint32_t MegaflowCache::lookup(const FlowKey& key) {
    const FlowKey* keys[1] = {&key};
    uint32_t found[1] = {kNoFlow};
    lookup_burst(keys, 1, 1, found);
    return found[0];
}

uint32_t MegaflowCache::reference_lookup(const FlowKey& key) const {
    const uint64_t* key_words = flow_words(key);
    for (uint32_t slot = 0; slot < next_unused_; ++slot) {
        const Megaflow& f = *slot_ptr(slot);
        if (!f.live) continue;
        const FlowMask mask = subtable_mask(f.subtable);
        const FlowKey value = miniflow_expand(f.masked);
        const uint64_t* mask_words = flow_words(mask);
        const uint64_t* value_words = flow_words(value);
        bool match = true;
        for (unsigned w = 0; w < kFlowWords && match; ++w) match = (key_words[w] & mask_words[w]) == value_words[w];
        if (match) return slot;
    }
    return kNoFlow;
}

FlowMask MegaflowCache::subtable_mask(uint16_t subtable) const { return subtables_[subtable]->mask; }

bool MegaflowCache::matches(uint32_t slot, const FlowKey& key) const {
    if (slot >= next_unused_) return false;
    const Megaflow& f = *slot_ptr(slot);
    return f.live && subtables_[f.subtable]->matches(key, f.masked);
}

bool MegaflowCache::has_mask(const FlowMask& mask) const {
    for (const Subtable* table : ranked_) {
        if (std::memcmp(&table->mask, &mask, sizeof mask) == 0) return true;
    }
    return false;
}

std::vector<FlowMask> MegaflowCache::masks() const {
    std::vector<FlowMask> out;
    out.reserve(ranked_.size());
    for (const Subtable* table : ranked_) out.push_back(table->mask);
    return out;
}

uint16_t MegaflowCache::subtable_for(const FlowMask& mask) {
    int free_index = -1;
    for (size_t i = 0; i < subtables_.size(); ++i) {
        const Subtable* table = subtables_[i].get();
        if (!table) {
            if (free_index < 0) free_index = static_cast<int>(i);
            continue;
        }
        if (std::memcmp(&table->mask, &mask, sizeof mask) == 0) return table->index;
    }
    const uint16_t index = free_index >= 0 ? static_cast<uint16_t>(free_index) : static_cast<uint16_t>(subtables_.size());
    auto table = std::make_unique<Subtable>(mask, index);
    ranked_.push_back(table.get());  // new masks start last; ranking moves them up
    if (index == subtables_.size()) {
        subtables_.push_back(std::move(table));
    } else {
        subtables_[index] = std::move(table);
    }
    return index;
}

uint32_t MegaflowCache::allocate_slot() {
    if (!free_slots_.empty()) {
        const uint32_t slot = free_slots_.back();
        free_slots_.pop_back();
        return slot;
    }
    if (next_unused_ == capacity_) return kNoFlow;
    ensure_chunk(next_unused_);
    return next_unused_++;
}

uint32_t MegaflowCache::evict_one() {
    return evict_one([this](uint32_t slot) { return slot_ptr(slot)->last_used.get(); });
}

// Fills a free slot's key, mask and index entry; the translation is the
// caller's to set.
void MegaflowCache::place(uint32_t slot, const FlowKey& key, const FlowMask& wildcards, uint64_t now) {
    FlowMask mask = wildcards;
    mask.in_port = UINT32_MAX;  // a cache entry never spans input ports
    const uint16_t index = subtable_for(mask);
    Subtable& table = *subtables_[index];
    Megaflow& f = *slot_ptr(slot);
    f.masked = miniflow_mask(miniflow_from_key(key), table.minimask);
    f.hash = table.hash_of(key);
    f.subtable = index;
    f.packets.set(0);
    f.bytes.set(0);
    f.last_used.set(now);
    f.created = now;
    f.pending_seq = 0;
    f.held = 0;
    f.rule_generation = 0;
    f.pushed_packets = f.pushed_bytes = 0;
    __atomic_store_n(&f.live, true, __ATOMIC_RELEASE);  // after the counters' reset (MissHandler)
    table.add(f.hash, slot);
    ++live_;
}

uint32_t MegaflowCache::insert(const FlowKey& key, const FlowMask& wildcards, const Translation& translation,
                               uint64_t now) {
    const uint32_t slot = allocate_slot();
    if (slot == kNoFlow) return kNoFlow;
    place(slot, key, wildcards, now);
    Megaflow& f = *slot_ptr(slot);
    heap_bytes_ -= heap_bytes_of(f);  // a reused slot keeps its vectors' capacity
    f.actions.assign(translation.actions.begin(), translation.actions.end());
    f.only_output = only_output_of(f.actions);
    f.drop = translation.drop;
    f.rules.assign(translation.matched, translation.matched + translation.matched_count);
    f.missed_count = static_cast<uint8_t>(translation.missed_count);
    std::copy_n(translation.missed, translation.missed_count, f.missed.begin());
    heap_bytes_ += heap_bytes_of(f);
    return slot;
}

void MegaflowCache::insert_at(uint32_t slot, const FlowKey& masked, const FlowMask& mask, ActionList& actions,
                              TranslateDrop drop, uint64_t now) {
    ensure_chunk(slot);
    if (slot >= next_unused_) next_unused_ = slot + 1;
    place(slot, masked, mask, now);
    update(slot, actions, drop);
}

void MegaflowCache::update(uint32_t slot, ActionList& actions, TranslateDrop drop) {
    Megaflow& f = *slot_ptr(slot);
    heap_bytes_ -= heap_bytes_of(f);
    f.actions.swap(actions);
    f.only_output = only_output_of(f.actions);
    f.drop = drop;
    heap_bytes_ += heap_bytes_of(f);
}

void MegaflowCache::remove(uint32_t slot, ActionList* reclaim) {
    Megaflow& f = *slot_ptr(slot);
    if (!f.live) return;
    Subtable& table = *subtables_[f.subtable];
    table.erase(f.hash, slot);
    if (table.count() == 0) {
        ranked_.erase(std::find(ranked_.begin(), ranked_.end(), &table));
        subtables_[f.subtable].reset();
    }
    __atomic_store_n(&f.live, false, __ATOMIC_RELAXED);
    __atomic_store_n(&f.generation, f.generation + 1, __ATOMIC_RELEASE);  // before the slot is reused
    heap_bytes_ -= heap_bytes_of(f);
    if (reclaim) f.actions.swap(*reclaim);
    f.actions.clear();
    f.only_output = kNotOnlyOutput;
    f.rules.clear();
    f.missed_count = 0;
    heap_bytes_ += heap_bytes_of(f);
    // (A replica never allocates: its registry chooses its slots.)
    free_slots_.push_back(slot);
    --live_;
}

void MegaflowCache::clear() {
    for (uint32_t slot = 0; slot < next_unused_; ++slot) remove(slot);
}

void MegaflowCache::rank_subtables() {
    std::stable_sort(ranked_.begin(), ranked_.end(),
                     [](const Subtable* a, const Subtable* b) { return a->hits > b->hits; });
    for (Subtable* table : ranked_) table->hits = 0;
}

unsigned MegaflowCache::subtable_count() const { return static_cast<unsigned>(ranked_.size()); }

uint64_t MegaflowCache::heap_bytes_of(const Megaflow& f) {
    return f.actions.capacity() * sizeof(Action) + f.rules.capacity() * sizeof(RuleEntry*);
}

uint64_t MegaflowCache::memory_bytes() const {
    // Slots and the megaflows' vectors are accounted as they change; only
    // the subtables (a few hundred at most) are summed here.
    uint64_t bytes = allocated_chunks_ * (sizeof(Megaflow) << kChunkShift) +
                     free_slots_.capacity() * sizeof(uint32_t) + heap_bytes_;
    for (const auto& table : subtables_) {
        if (table) bytes += sizeof(Subtable) + table->megaflows.capacity() * sizeof(Subtable::Bucket);
    }
    return bytes;
}

}  // namespace flowpath
