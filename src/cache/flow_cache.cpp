// A worker's cache hierarchy for one burst: exact cache, megaflow cache,
// then the miss path (translate, install).
#include <algorithm>
#include <bit>

#include "flowpath/cache.hpp"

namespace flowpath {

FlowCache::FlowCache(const RuleSet& rules, uint32_t exact_entries, uint32_t megaflow_capacity,
                     uint32_t exact_insert_inverse_probability)
    : rules_(rules),
      exact_(exact_entries),
      megaflows_(std::max<uint32_t>(megaflow_capacity, 2 * kMaxLookupBurst)),
      exact_insert_inverse_probability_(std::max<uint32_t>(exact_insert_inverse_probability, 1)) {}

bool FlowCache::sample_exact_insert() {
    if (exact_insert_inverse_probability_ == 1) return true;
    // xorshift64: cheap, and statistically plenty for sampling.
    random_state_ ^= random_state_ << 13;
    random_state_ ^= random_state_ >> 7;
    random_state_ ^= random_state_ << 17;
    return random_state_ % exact_insert_inverse_probability_ == 0;
}

void FlowCache::classify_burst(const Miniflow* flows, unsigned count, uint64_t now, uint32_t* slots) {
    // Eviction spares exactly the megaflows stamped with this call's `now`;
    // a clock that did not advance must not make it spare two bursts' worth.
    if (now <= last_now_) now = last_now_ + 1;
    last_now_ = now;
    uint32_t hashes[kMaxLookupBurst];
    for (unsigned i = 0; i < count; ++i) {
        hashes[i] = ExactCache::hash_of(flows[i]);
        exact_.prefetch(hashes[i]);
    }

    uint64_t missed = 0;
    for (unsigned i = 0; i < count; ++i) {
        slots[i] = exact_.lookup(flows[i], hashes[i], megaflows_);
        if (slots[i] == kNoFlow) {
            missed |= uint64_t{1} << i;
        } else {
            megaflows_.flow(slots[i]).last_used = now;
        }
    }
    counters_.exact_hits += count - static_cast<unsigned>(std::popcount(missed));
    if (!missed) return;

    // Expanded once per packet here, every subtable's hash and compare
    // below is plain indexed loads.
    FlowKey keys[kMaxLookupBurst];
    const FlowKey* pointers[kMaxLookupBurst];
    for (uint64_t m = missed; m; m &= m - 1) {
        const unsigned i = static_cast<unsigned>(std::countr_zero(m));
        keys[i] = miniflow_expand(flows[i]);
        pointers[i] = &keys[i];
    }
    const uint64_t unresolved = megaflows_.lookup_burst(pointers, count, missed, slots);
    const uint64_t hits = missed & ~unresolved;
    counters_.megaflow_hits += static_cast<unsigned>(std::popcount(hits));
    for (uint64_t m = hits; m; m &= m - 1) {
        const unsigned i = static_cast<unsigned>(std::countr_zero(m));
        megaflows_.flow(slots[i]).last_used = now;
        if (sample_exact_insert()) exact_.insert(flows[i], hashes[i], slots[i], megaflows_);
    }

    // Every megaflow this burst found is stamped `now` before the first
    // install below, so an eviction cannot take one of them.
    counters_.misses += static_cast<unsigned>(std::popcount(unresolved));
    for (uint64_t m = unresolved; m; m &= m - 1) {
        const unsigned i = static_cast<unsigned>(std::countr_zero(m));
        slots[i] = miss(keys[i], now);
        if (sample_exact_insert()) exact_.insert(flows[i], hashes[i], slots[i], megaflows_);
    }
}

uint32_t FlowCache::miss(const FlowKey& key, uint64_t now) {
    // An earlier miss of the same burst may have installed a megaflow that
    // covers this packet too: one translation per flow, not per packet.
    uint32_t slot = megaflows_.lookup(key);
    if (slot != kNoFlow) {
        megaflows_.flow(slot).last_used = now;
        return slot;
    }
    translate(rules_, key, translation_);
    ++counters_.upcalls;
    slot = megaflows_.insert(key, translation_.wildcards, translation_, now);
    ++counters_.installed;
    return slot;
}

void FlowCache::reference_translate(const Miniflow& flow, Translation& out) const {
    translate(rules_, miniflow_expand(flow), out);
}

}  // namespace flowpath
