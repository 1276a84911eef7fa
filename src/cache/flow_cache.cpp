// A worker's cache hierarchy for one burst: exact cache, then signature
// cache, then the megaflow subtables; what none answers goes to the slow path (src/slowpath), whose
// answers come back through install/update/remove.
#include <algorithm>
#include <bit>

#include <emmintrin.h>

#include "flowpath/cache.hpp"

namespace flowpath {

FlowCache::FlowCache(uint32_t exact_entries, uint32_t megaflow_capacity, uint32_t exact_insert_inverse_probability,
                     uint32_t signature_entries, uint32_t signature_insert_inverse_probability)
    : exact_(exact_entries),
      signatures_(signature_entries),
      megaflows_(std::max<uint32_t>(megaflow_capacity, 2 * kMaxLookupBurst)),
      exact_insert_threshold_(threshold_of(std::max<uint32_t>(exact_insert_inverse_probability, 1))),
      signature_insert_threshold_(threshold_of(std::max<uint32_t>(signature_insert_inverse_probability, 1))) {}

bool FlowCache::sample(uint64_t threshold) {
    if (threshold == UINT64_MAX) return true;
    // xorshift64: cheap, and statistically plenty for sampling; a compare,
    // not a division (a 64-bit modulo was ~1% of the megaflow workload).
    random_state_ ^= random_state_ << 13;
    random_state_ ^= random_state_ >> 7;
    random_state_ ^= random_state_ << 17;
    return random_state_ <= threshold;
}

namespace {

// miniflow_expand(flow) into `key`, zeroing it with eight 16-byte stores:
// the compiler made the FlowKey{} of miniflow_expand in this loop a
// `rep stos`, ~7% of classify_burst on the megaflow workload.
void expand_into(FlowKey& key, const Miniflow& flow) {
    static_assert(sizeof(FlowKey) % sizeof(__m128i) == 0);
    auto* vectors = reinterpret_cast<__m128i*>(&key);
    for (unsigned v = 0; v < sizeof(FlowKey) / sizeof(__m128i); ++v) _mm_storeu_si128(vectors + v, _mm_setzero_si128());
    uint64_t* words = flow_words(key);
    unsigned n = 0;
    for (uint64_t m = flow.map; m; m &= m - 1) words[std::countr_zero(m)] = flow.words[n++];
}

}  // namespace

uint64_t FlowCache::probe_exact(const Miniflow* flows, unsigned count, const uint32_t* hashes, uint64_t now,
                                uint32_t* slots) {
    uint64_t missed = 0;
    for (unsigned i = 0; i < count; ++i) {
        slots[i] = exact_.lookup(flows[i], hashes[i], megaflows_);
        if (slots[i] == kNoFlow) {
            missed |= uint64_t{1} << i;
        } else {
            megaflows_.flow(slots[i]).last_used.set(now);
        }
    }
    const unsigned hits = count - static_cast<unsigned>(std::popcount(missed));
    counters_.exact_hits += hits;
    account_exact(count, hits);
    return missed;
}

void FlowCache::account_exact(unsigned count, unsigned hits) {
    window_lookups_ += count;
    window_hits_ += hits;
    if (window_lookups_ < kExactWindow) return;
    // With many more flows than entries nearly every probe misses (the
    // megaflow workload: 7.6% hits), and a signature-cache hit costs about
    // what an exact hit does: the probes' two lines per packet are then a
    // loss. Two thresholds, so a rate near one does not flip every window.
    // Only with a signature cache to go to instead.
    const uint64_t window_hits = window_hits_;
    if (exact_bypassed_) {
        exact_bypassed_ = window_hits * kExactResumeAt < window_lookups_;
    } else {
        exact_bypassed_ = signatures_.enabled() && window_hits * kExactBypassBelow < window_lookups_;
    }
    window_lookups_ = window_hits_ = 0;
}

uint64_t FlowCache::classify_burst(const Miniflow* flows, unsigned count, uint64_t now, uint32_t* slots) {
    const bool signatures = signatures_.enabled();
    // While bypassed, one burst in kExactProbeEvery still probes the exact
    // cache (and so measures whether it pays again).
    bool probe = true;
    if (exact_bypassed_) {
        probe = bursts_to_probe_ == 0;
        bursts_to_probe_ = probe ? kExactProbeEvery - 1 : bursts_to_probe_ - 1;
    }
    uint32_t hashes[kMaxLookupBurst];
    for (unsigned i = 0; i < count; ++i) {
        hashes[i] = ExactCache::hash_of(flows[i]);
        if (probe) {
            exact_.prefetch(hashes[i]);
        } else {
            signatures_.prefetch(hashes[i]);
        }
    }

    uint64_t missed;
    if (probe) {
        missed = probe_exact(flows, count, hashes, now, slots);
        if (!missed) return 0;
        if (signatures) {
            for (uint64_t m = missed; m; m &= m - 1) signatures_.prefetch(hashes[std::countr_zero(m)]);
        }
    } else {
        missed = count == kMaxLookupBurst ? ~uint64_t{0} : (uint64_t{1} << count) - 1;
        for (unsigned i = 0; i < count; ++i) slots[i] = kNoFlow;
        counters_.exact_skipped += count;
    }

    // Expanded once per packet here (while the signature buckets load),
    // every compare below is plain indexed loads.
    FlowKey keys[kMaxLookupBurst];
    const FlowKey* pointers[kMaxLookupBurst];
    for (uint64_t m = missed; m; m &= m - 1) {
        const unsigned i = static_cast<unsigned>(std::countr_zero(m));
        expand_into(keys[i], flows[i]);
        pointers[i] = &keys[i];
    }

    uint64_t remaining = missed;
    if (signatures) {
        // Each packet's first candidate's megaflow is prefetched for all of
        // them before any is compared, so the misses on slots overlap.
        uint32_t candidates[kMaxLookupBurst];
        for (uint64_t m = missed; m; m &= m - 1) {
            const unsigned i = static_cast<unsigned>(std::countr_zero(m));
            candidates[i] = signatures_.candidates(hashes[i]);
            if (candidates[i]) {
                const uint32_t slot = signatures_.slot_at(hashes[i], static_cast<unsigned>(std::countr_zero(candidates[i])) / 2);
                if (slot < megaflows_.slot_limit()) megaflows_.prefetch_slot(slot);
            }
        }
        uint64_t signature_hits = 0;
        for (uint64_t m = missed; m; m &= m - 1) {
            const unsigned i = static_cast<unsigned>(std::countr_zero(m));
            for (uint32_t c = candidates[i]; c; c &= c - 1) {
                const uint32_t slot = signatures_.slot_at(hashes[i], static_cast<unsigned>(std::countr_zero(c)) / 2);
                if (slot == kNoFlow || !megaflows_.matches(slot, keys[i])) continue;
                slots[i] = slot;
                signature_hits |= uint64_t{1} << i;
                megaflows_.flow(slot).last_used.set(now);
                if (sample(exact_insert_threshold_)) exact_.insert(flows[i], hashes[i], slot, megaflows_);
                break;
            }
        }
        counters_.signature_hits += static_cast<unsigned>(std::popcount(signature_hits));
        counters_.megaflow_hits += static_cast<unsigned>(std::popcount(signature_hits));
        remaining &= ~signature_hits;
        if (!remaining) return 0;
    }

    const uint64_t unresolved = megaflows_.lookup_burst(pointers, count, remaining, slots);
    const uint64_t hits = remaining & ~unresolved;
    counters_.megaflow_hits += static_cast<unsigned>(std::popcount(hits));
    for (uint64_t m = hits; m; m &= m - 1) {
        const unsigned i = static_cast<unsigned>(std::countr_zero(m));
        megaflows_.flow(slots[i]).last_used.set(now);
        if (signatures && sample(signature_insert_threshold_)) signatures_.insert(hashes[i], slots[i]);
        if (sample(exact_insert_threshold_)) exact_.insert(flows[i], hashes[i], slots[i], megaflows_);
    }
    counters_.misses += static_cast<unsigned>(std::popcount(unresolved));
    return unresolved;
}

void FlowCache::install(uint32_t slot, const FlowKey& masked, const FlowMask& mask, ActionList& actions,
                        TranslateDrop drop, uint64_t now, uint64_t pending_seq) {
    const Megaflow* before = megaflows_.peek(slot);
    if (before && before->live) simple_.remove(slot, megaflows_.mask_of(slot));  // replaced in place
    megaflows_.insert_at(slot, masked, mask, actions, drop, now);
    simple_.add(slot, masked, mask);
    megaflows_.flow(slot).pending_seq = pending_seq;
}

void FlowCache::remove(uint32_t slot, ActionList& reclaim) {
    const Megaflow* flow = megaflows_.peek(slot);
    if (flow && flow->live) simple_.remove(slot, megaflows_.mask_of(slot));
    megaflows_.remove(slot, &reclaim);
}

}  // namespace flowpath
