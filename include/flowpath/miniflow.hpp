// Miniflows: the sparse form of a FlowKey.
//
// A miniflow is a bitmap of which 64-bit words of the FlowKey it carries plus
// just those words, packed in increasing word order. A word not in the map is
// zero. A *minimask* is a miniflow of a FlowMask; hashing and comparing a
// miniflow under a minimask touch only the words the mask's map selects, so
// their cost follows the mask, not the key.
//
// Storage is inline (no allocation): a Miniflow is at most one FlowKey plus
// the map, and the hot path keeps one per packet of a burst.
#pragma once

#include <bit>
#include <cstdint>

#include "flowpath/flow_key.hpp"

namespace flowpath {

/// A sparse FlowKey: `map` bit i set means word i is stored in `words`.
struct Miniflow {
    uint64_t map = 0;
    uint64_t words[kFlowWords];

    /// Number of words stored.
    unsigned size() const { return static_cast<unsigned>(std::popcount(map)); }

    /// Word `index` of the full key (zero when not in the map).
    uint64_t get(unsigned index) const {
        const uint64_t bit = uint64_t{1} << index;
        if (!(map & bit)) return 0;
        return words[std::popcount(map & (bit - 1))];
    }
};

/// A minimask is a miniflow of a FlowMask; its map holds its nonzero words.
using Minimask = Miniflow;

/// The miniflow of `key` holding exactly its nonzero words.
inline Miniflow miniflow_from_key(const FlowKey& key) {
    Miniflow mf;
    const uint64_t* w = flow_words(key);
    unsigned n = 0;
    for (unsigned i = 0; i < kFlowWords; ++i) {
        if (w[i]) {
            mf.map |= uint64_t{1} << i;
            mf.words[n++] = w[i];
        }
    }
    return mf;
}

/// The full key a miniflow stands for.
inline FlowKey miniflow_expand(const Miniflow& mf) {
    FlowKey key{};
    uint64_t* w = flow_words(key);
    unsigned n = 0;
    for (uint64_t m = mf.map; m; m &= m - 1) w[std::countr_zero(m)] = mf.words[n++];
    return key;
}

/// One step of the word hash: CRC32-C where the CPU has it (the DPDK build
/// flags require SSE4.2), a multiplicative mix otherwise.
inline uint32_t hash_add_word(uint32_t hash, uint64_t word) {
#if defined(__SSE4_2__)
    return static_cast<uint32_t>(__builtin_ia32_crc32di(hash, word));
#else
    uint64_t x = (word ^ hash) * 0x9E3779B97F4A7C15ull;
    return static_cast<uint32_t>(x >> 32) ^ static_cast<uint32_t>(x);
#endif
}

/// Final avalanche so that low bits of the hash are usable as bucket indices.
inline uint32_t hash_finish(uint32_t hash) {
    hash ^= hash >> 16;
    hash *= 0x85EBCA6Bu;
    hash ^= hash >> 13;
    hash *= 0xC2B2AE35u;
    hash ^= hash >> 16;
    return hash;
}

/// Hash of `flow` under `mask`: every word of the mask's map contributes
/// (flow word & mask word), absent flow words as zero. Two flows equal under
/// the mask hash equally.
inline uint32_t miniflow_hash_masked(const Miniflow& flow, const Minimask& mask, uint32_t basis) {
    uint32_t hash = basis;
    unsigned n = 0;
    for (uint64_t m = mask.map; m; m &= m - 1) {
        hash = hash_add_word(hash, flow.get(static_cast<unsigned>(std::countr_zero(m))) & mask.words[n++]);
    }
    return hash_finish(hash);
}

/// Whether `flow` & `mask` equals `masked` (a miniflow already masked by the
/// same mask, with the mask's map).
inline bool miniflow_equal_masked(const Miniflow& flow, const Minimask& mask, const Miniflow& masked) {
    unsigned n = 0;
    for (uint64_t m = mask.map; m; m &= m - 1, ++n) {
        if ((flow.get(static_cast<unsigned>(std::countr_zero(m))) & mask.words[n]) != masked.words[n]) return false;
    }
    return true;
}

/// `flow` & `mask`, stored with the mask's map (so equal-under-mask flows
/// give identical results).
inline Miniflow miniflow_mask(const Miniflow& flow, const Minimask& mask) {
    Miniflow out;
    out.map = mask.map;
    unsigned n = 0;
    for (uint64_t m = mask.map; m; m &= m - 1, ++n) {
        out.words[n] = flow.get(static_cast<unsigned>(std::countr_zero(m))) & mask.words[n];
    }
    return out;
}

}  // namespace flowpath
