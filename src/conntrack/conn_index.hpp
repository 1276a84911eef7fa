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
// Growth: the index starts at kInitialBuckets and doubles when an insert
// finds it holding kGrowLoad keys a bucket on average, until the size
// `max_keys` asks for. So a table for a million connections holding ten
// thousand has an index of a few hundred KB that stays in the cache, not
// 32 MB read at random. A doubling is incremental: the insert that reaches
// the threshold maps the new array (twice the buckets) and from then on
// every insert and erase moves the entries of one old bucket into it (the
// hashes are in the buckets: no key is read again), while lookups look in
// the new array and then in the old one. The old array is unmapped when its
// last bucket moved, after at most as many changes as it had buckets, long
// before the next doubling is due (kGrowLoad keys a bucket: a quarter of
// the way). So no packet waits for a rehash of the whole index (a million
// keys took ~25 ms at once). An insert never fails while the index holds
// fewer keys than it was sized for; if a new array cannot be had it goes on
// in the old one while that has one free entry in 7.
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
          max_keys_(max_keys),
          current_{ZeroedArray<Bucket>(std::min(max_buckets_, initial_buckets), ZeroedArray<Bucket>::Pages::huge),
                   std::min(max_buckets_, initial_buckets) - 1} {}

    /// Buckets for `max_keys` at most: a power of two with at least one
    /// free entry in 7 at the most keys.
    static uint32_t bucket_count(uint32_t max_keys) {
        const uint64_t needed = (uint64_t{max_keys} + 5) / 6;
        uint32_t n = 1;
        while (n < needed) n <<= 1;
        return n;
    }

    void prefetch(uint32_t hash) const {
        __builtin_prefetch(&current_.buckets[hash & current_.mask]);
        if (growing()) __builtin_prefetch(&old_.buckets[hash & old_.mask]);
    }

    /// The first ref in `hash`'s home bucket stored with that hash, or
    /// kNoRef: a likely answer, to be confirmed (the burst lookup's first step).
    uint32_t candidate(uint32_t hash) const {
        const uint32_t ref = current_.candidate(hash);
        return ref == kNoRef && growing() ? old_.candidate(hash) : ref;
    }

    /// The ref stored under `hash` for which matches(ref) holds, or kNoRef.
    template <typename Matches>
    uint32_t find(uint32_t hash, Matches&& matches) const {
        const uint32_t ref = current_.find(hash, matches);
        return ref == kNoRef && growing() ? old_.find(hash, matches) : ref;
    }

    /// Adds `ref` under `hash` (nonzero). False when the index holds its
    /// maximum already (nothing changes).
    bool insert(uint32_t hash, uint32_t ref) {
        if (size_ >= max_keys_) return false;
        if (growing()) {
            move_old_buckets(kMovedPerChange);
        } else if (size_ >= kGrowLoad * buckets() && buckets() < max_buckets_) [[unlikely]] {
            start_growing();
        }
        // (Only when growing failed: the old array while one entry in 7 is free.)
        if (!growing() && size_ >= 6 * buckets()) [[unlikely]] return false;
        current_.place(hash, ref);
        ++size_;
        return true;
    }

    /// Removes the entry (hash, ref); false when there is none.
    bool erase(uint32_t hash, uint32_t ref) {
        if (!current_.erase(hash, ref) && !(growing() && old_.erase(hash, ref))) return false;
        --size_;
        if (growing()) move_old_buckets(kMovedPerChange);
        return true;
    }

    uint32_t size() const { return size_; }
    /// The current array's buckets (while growing the old one still holds
    /// the entries of its buckets not moved yet: old_bucket()).
    uint32_t buckets() const { return current_.mask + 1; }
    const Bucket& bucket(uint32_t i) const { return current_.buckets[i]; }
    uint32_t home(uint32_t hash) const { return hash & current_.mask; }
    bool growing() const { return !old_.buckets.empty(); }
    uint32_t old_buckets() const { return growing() ? old_.mask + 1 : 0; }
    const Bucket& old_bucket(uint32_t i) const { return old_.buckets[i]; }
    size_t bytes() const { return current_.buckets.bytes() + old_.buckets.bytes(); }

    /// Doublings so far (statistics, tests).
    uint32_t growths() const { return growths_; }

private:
    // Old buckets moved per insert or erase while growing.
    static constexpr uint32_t kMovedPerChange = 1;

    // One array of buckets under its mask: linear probing with overflow counts.
    struct Table {
        ZeroedArray<Bucket> buckets;
        uint32_t mask = 0;

        uint32_t candidate(uint32_t hash) const {
            const Bucket& b = buckets[hash & mask];
            for (unsigned e = 0; e < kEntriesPerBucket; ++e) {
                if (b.hashes[e] == hash) return b.refs[e];
            }
            return kNoRef;
        }

        template <typename Matches>
        uint32_t find(uint32_t hash, Matches& matches) const {
            for (uint32_t i = hash & mask;; i = (i + 1) & mask) {
                const Bucket& b = buckets[i];
                for (unsigned e = 0; e < kEntriesPerBucket; ++e) {
                    if (b.hashes[e] == hash && matches(b.refs[e])) return b.refs[e];
                }
                if (b.overflow == 0) return kNoRef;
            }
        }

        void place(uint32_t hash, uint32_t ref) {
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

        // Clears entry e of bucket i; the buckets it passed over from its
        // home count it no longer.
        void remove_at(uint32_t i, unsigned e) {
            for (uint32_t j = buckets[i].hashes[e] & mask; j != i; j = (j + 1) & mask) --buckets[j].overflow;
            buckets[i].hashes[e] = 0;
            buckets[i].refs[e] = 0;
        }

        bool erase(uint32_t hash, uint32_t ref) {
            for (uint32_t i = hash & mask;; i = (i + 1) & mask) {
                const Bucket& b = buckets[i];
                for (unsigned e = 0; e < kEntriesPerBucket; ++e) {
                    if (b.hashes[e] == hash && b.refs[e] == ref) {
                        remove_at(i, e);
                        return true;
                    }
                }
                if (b.overflow == 0) return false;
            }
        }
    };

    // Maps twice the buckets; the current array becomes the old one. Stays
    // as it is when the memory cannot be had.
    void start_growing() {
        const uint32_t buckets = 2 * (current_.mask + 1);
        ZeroedArray<Bucket> grown = ZeroedArray<Bucket>::try_reserve(buckets, ZeroedArray<Bucket>::Pages::huge);
        if (grown.empty()) return;
        old_.buckets = std::move(current_.buckets);
        old_.mask = current_.mask;
        current_.buckets = std::move(grown);
        current_.mask = buckets - 1;
        moved_ = 0;
        ++growths_;
        move_old_buckets(kMovedPerChange);
    }

    // The entries of the next `count` old buckets into the current array;
    // the old array goes when its last bucket has moved.
    void move_old_buckets(uint32_t count) {
        for (; count > 0 && moved_ <= old_.mask; --count, ++moved_) {
            const Bucket& b = old_.buckets[moved_];
            for (unsigned e = 0; e < kEntriesPerBucket; ++e) {
                if (b.hashes[e] == 0) continue;
                current_.place(b.hashes[e], b.refs[e]);
                old_.remove_at(moved_, e);
            }
        }
        if (moved_ > old_.mask) old_ = Table{};  // unmapped
    }

    uint32_t max_buckets_;
    uint32_t max_keys_;
    uint32_t size_ = 0;
    uint32_t growths_ = 0;
    uint32_t moved_ = 0;  // old buckets [0, moved_) are empty
    Table current_;
    Table old_;  // while growing: the previous array (else empty)
};

}  // namespace flowpath
