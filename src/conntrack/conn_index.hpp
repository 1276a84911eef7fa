// The connection index (internal to src/conntrack): each direction's key to
// its connection side, used by the shard's owner alone (no other thread ever
// reads it, so it needs no concurrency protocol).
//
// Why not rte_hash: rte_hash keeps a copy of every key in a key store of its
// own, so a lookup touched a bucket, then the stored key, then (in the
// tracker) the connection's slot: three cache misses in a large table, and
// ~85 B per key. Here a bucket holds only (hash, ref) pairs and a candidate
// is checked against the key in its connection's slot, which the packet is
// about to update anyway: two misses, and 64 B per 7 keys.
//
// Layout: a power-of-two array of one-cache-line buckets, each with 7
// (hash, ref) entries (hash 0 = empty; ConnTable::hash never returns 0).
// Linear probing over buckets: a key lives in its home bucket (hash & mask)
// or, when that is full, in the first bucket after it with room; each bucket
// passed over counts it in `overflow`. A lookup stops at the first bucket
// without the key whose overflow is 0; an erase takes the counts back. No
// tombstones.
//
// Growth: the index starts at kInitialBuckets and doubles (a rehash of the
// stored hashes into a new array) when an insert finds it holding
// kGrowLoad keys a bucket on average, until the size `max_keys` asks for.
// So a table for a million connections holding ten thousand has an index of
// a few hundred KB that stays in the cache, not 32 MB read at random. The
// rehash runs on the owner, inside the insert that reaches the threshold:
// O(keys) once per doubling (docs/conntrack.md gives its time). An insert
// never fails while the index holds fewer keys than it was sized for; if a
// new array cannot be had it goes on in the old one while that has one free
// entry in 7.
#pragma once

#include <algorithm>
#include <cstdint>
#include <utility>

#include "zeroed_array.hpp"

namespace flowpath {

class ConnIndex {
public:
    static constexpr unsigned kEntriesPerBucket = 7;
    static constexpr uint32_t kNoRef = UINT32_MAX;

    /// One cache line: 7 hashes, the overflow count, 7 refs. All zero: empty.
    struct alignas(64) Bucket {
        uint32_t hashes[kEntriesPerBucket];
        uint32_t overflow;  ///< keys whose home is here or before that live after it
        uint32_t refs[kEntriesPerBucket];
        uint32_t reserved;
    };
    static_assert(sizeof(Bucket) == 64);

    /// Buckets an index starts with (16 KB), and the average keys per
    /// bucket at which it doubles (4 of 7: short probes; the size for
    /// `max_keys` is reached at or before `max_keys`).
    static constexpr uint32_t kInitialBuckets = 256;
    static constexpr uint32_t kGrowLoad = 4;

    /// Room for `max_keys` keys, starting with `initial_buckets` (a power
    /// of two; tests start smaller to see it grow).
    explicit ConnIndex(uint32_t max_keys, uint32_t initial_buckets = kInitialBuckets)
        : max_buckets_(bucket_count(max_keys)),
          mask_(std::min(max_buckets_, initial_buckets) - 1),
          max_keys_(max_keys),
          buckets_(mask_ + 1, ZeroedArray<Bucket>::Pages::huge) {}

    /// Buckets for `max_keys` at most: a power of two with at least one
    /// free entry in 7 at the most keys.
    static uint32_t bucket_count(uint32_t max_keys) {
        const uint64_t needed = (uint64_t{max_keys} + 5) / 6;
        uint32_t n = 1;
        while (n < needed) n <<= 1;
        return n;
    }

    void prefetch(uint32_t hash) const { __builtin_prefetch(&buckets_[hash & mask_]); }

    /// The first ref in `hash`'s home bucket stored with that hash, or
    /// kNoRef: a likely answer, to be confirmed (the burst lookup's first step).
    uint32_t candidate(uint32_t hash) const {
        const Bucket& b = buckets_[hash & mask_];
        for (unsigned e = 0; e < kEntriesPerBucket; ++e) {
            if (b.hashes[e] == hash) return b.refs[e];
        }
        return kNoRef;
    }

    /// The ref stored under `hash` for which matches(ref) holds, or kNoRef.
    template <typename Matches>
    uint32_t find(uint32_t hash, Matches&& matches) const {
        for (uint32_t i = hash & mask_;; i = (i + 1) & mask_) {
            const Bucket& b = buckets_[i];
            for (unsigned e = 0; e < kEntriesPerBucket; ++e) {
                if (b.hashes[e] == hash && matches(b.refs[e])) return b.refs[e];
            }
            if (b.overflow == 0) return kNoRef;
        }
    }

    /// Adds `ref` under `hash` (nonzero). False when the index holds its
    /// maximum already (nothing changes).
    bool insert(uint32_t hash, uint32_t ref) {
        if (size_ >= max_keys_) return false;
        const uint32_t buckets = mask_ + 1;
        if (size_ >= kGrowLoad * buckets && buckets < max_buckets_) [[unlikely]] grow();
        // (Only when growing failed: the old array while one entry in 7 is free.)
        if (size_ >= 6 * (mask_ + 1)) [[unlikely]] return false;
        place(buckets_, mask_, hash, ref);
        ++size_;
        return true;
    }

    /// Removes the entry (hash, ref); false when there is none.
    bool erase(uint32_t hash, uint32_t ref) {
        const uint32_t home = hash & mask_;
        for (uint32_t i = home;; i = (i + 1) & mask_) {
            Bucket& b = buckets_[i];
            for (unsigned e = 0; e < kEntriesPerBucket; ++e) {
                if (b.hashes[e] == hash && b.refs[e] == ref) {
                    b.hashes[e] = 0;
                    b.refs[e] = 0;
                    --size_;
                    for (uint32_t j = home; j != i; j = (j + 1) & mask_) --buckets_[j].overflow;
                    return true;
                }
            }
            if (b.overflow == 0) return false;
        }
    }

    uint32_t size() const { return size_; }
    uint32_t buckets() const { return mask_ + 1; }
    const Bucket& bucket(uint32_t i) const { return buckets_[i]; }
    uint32_t home(uint32_t hash) const { return hash & mask_; }
    size_t bytes() const { return buckets_.bytes(); }

    /// Doublings so far (statistics, tests).
    uint32_t growths() const { return growths_; }

private:
    static void place(ZeroedArray<Bucket>& buckets, uint32_t mask, uint32_t hash, uint32_t ref) {
        for (uint32_t i = hash & mask;; i = (i + 1) & mask) {
            Bucket& b = buckets[i];
            for (unsigned e = 0; e < kEntriesPerBucket; ++e) {
                if (b.hashes[e] == 0) {
                    b.hashes[e] = hash;
                    b.refs[e] = ref;
                    return;
                }
            }
            ++b.overflow;
        }
    }

    // Twice the buckets: every stored (hash, ref) placed again under the
    // new mask. Stays as it is when the memory cannot be had.
    void grow() {
        const uint32_t buckets = 2 * (mask_ + 1);
        ZeroedArray<Bucket> grown = ZeroedArray<Bucket>::try_reserve(buckets, ZeroedArray<Bucket>::Pages::huge);
        if (grown.empty()) return;
        for (uint32_t i = 0; i <= mask_; ++i) {
            const Bucket& b = buckets_[i];
            for (unsigned e = 0; e < kEntriesPerBucket; ++e) {
                if (b.hashes[e] != 0) place(grown, buckets - 1, b.hashes[e], b.refs[e]);
            }
        }
        buckets_ = std::move(grown);
        mask_ = buckets - 1;
        ++growths_;
    }

    uint32_t max_buckets_;
    uint32_t mask_;
    uint32_t max_keys_;
    uint32_t size_ = 0;
    uint32_t growths_ = 0;
    ZeroedArray<Bucket> buckets_;
};

}  // namespace flowpath
