// ConnTable::check_invariants: the whole table checked against every
// invariant of docs/conntrack.md, for tests and debugging (O(capacity)).
#include <vector>

#include "conn_table.hpp"
#include "flowpath/log.hpp"

namespace flowpath {

std::string ConnTable::check_invariants() const {
    auto is_free = [&](uint32_t i) { return slots_[i].status == kSlotFree; };

    // Free clusters: increasing, maximal runs of free slots, doubly linked,
    // each one's last slot naming its first.
    uint64_t listed_free = 0;
    uint32_t prev = kNil;
    uint64_t steps = 0;
    for (uint32_t first = free_head_; first != kNil; first = slots_[first].cluster.next) {
        if (++steps > capacity_) return "free cluster list loops";
        if (first >= capacity_) return cat("free cluster at ", first, " is outside the table");
        const FreeCluster& head = slots_[first].cluster;
        const uint32_t length = head.length;
        if (length == 0 || uint64_t{first} + length > capacity_) {
            return cat("free cluster at ", first, " has length ", length);
        }
        if (prev != kNil && first <= prev + slots_[prev].cluster.length) {
            return cat("free cluster at ", first, " is not after the one at ", prev, " or touches it");
        }
        if (head.prev != prev) return cat("free cluster at ", first, " has a wrong previous link");
        if (first > 0 && is_free(first - 1)) return cat("free cluster at ", first, " is not maximal on its left");
        const uint32_t end = first + length;
        if (end < capacity_ && is_free(end)) return cat("free cluster at ", first, " is not maximal on its right");
        for (uint32_t i = first; i < end; ++i) {
            if (!is_free(i)) return cat("slot ", i, " in the free cluster at ", first, " is not free");
        }
        if (slots_[end - 1].cluster.first != first) {
            return cat("last slot of the free cluster at ", first, " names ", slots_[end - 1].cluster.first);
        }
        listed_free += length;
        prev = first;
    }

    // Slot states against the bitmaps, the counters and the index.
    uint64_t free_slots = 0, live = 0, index_keys = 0;
    for (uint32_t i = 0; i < capacity_; ++i) {
        const Connection& c = slots_[i];
        const bool bit = free_bits_[i >> 6] >> (i & 63) & 1;
        if (bit != (c.status == kSlotFree)) return cat("free bit of slot ", i, " disagrees with its state");
        if (c.seq & 1) return cat("slot ", i, " is left half-written (odd sequence number)");
        if (c.status == kSlotFree) {
            ++free_slots;
            continue;
        }
        if (c.status != kSlotLive) return cat("slot ", i, " has status ", unsigned{c.status});
        ++live;
        if (i >= high_water_) return cat("live slot ", i, " is at or above the high-water mark ", high_water_);

        // Each live connection: its keys (two, or one that both directions
        // share) lead back to it.
        if ((c.one_key != 0) != (c.key[0] == c.key[1])) return cat("connection ", i, " has a wrong one-key flag");
        for (unsigned side = 0; side < (c.one_key ? 1u : 2u); ++side) {
            if (lookup(c.key[side]) != ConnRef(i, side)) {
                return cat("connection ", i, " side ", side, " is not indexed to itself");
            }
            ++index_keys;
        }
    }
    for (size_t w = 0; w < free_bits_.size(); ++w) {
        const bool summary = free_words_[w >> 6] >> (w & 63) & 1;
        if (summary != (free_bits_[w] != 0)) return cat("summary bit of free word ", w, " is wrong");
    }
    if (free_slots != listed_free) return cat(free_slots, " free slots but ", listed_free, " in free clusters");
    if (live != size()) return cat(live, " live slots but the table counts ", size());

    // The index holds the live keys and nothing else: every entry names a
    // live slot's side under that key's hash, and each bucket's overflow
    // counts exactly the entries that passed over it (in both arrays while
    // the index grows).
    if (index_.size() != index_keys) return cat("the index holds ", index_.size(), " keys, expected ", index_keys);
    uint64_t entries = 0;
    const auto check_array = [&](const char* which, uint32_t buckets, auto&& bucket_at) -> std::string {
        std::vector<uint32_t> passed(buckets, 0);
        for (uint32_t b = 0; b < buckets; ++b) {
            const ConnIndex::Bucket& bucket = bucket_at(b);
            for (unsigned e = 0; e < ConnIndex::kEntriesPerBucket; ++e) {
                const uint32_t h = bucket.hashes[e];
                if (h == 0) continue;
                ++entries;
                const ConnRef ref = ConnRef::from_raw(bucket.refs[e]);
                if (ref.index() >= capacity_ || slots_[ref.index()].status != kSlotLive) {
                    return cat(which, " index entry in bucket ", b, " names slot ", ref.index(), ", not a live one");
                }
                if (hash(slots_[ref.index()].key[ref.side()]) != h) {
                    return cat(which, " index entry in bucket ", b, " has another hash than its key");
                }
                for (uint32_t j = h & (buckets - 1); j != b; j = (j + 1) & (buckets - 1)) ++passed[j];
            }
        }
        for (uint32_t b = 0; b < buckets; ++b) {
            if (passed[b] != bucket_at(b).overflow) {
                return cat(which, " bucket ", b, " counts ", bucket_at(b).overflow, " overflowing keys, ", passed[b],
                           " passed it");
            }
        }
        return "";
    };
    if (std::string error = check_array("current", index_.buckets(), [&](uint32_t b) -> const ConnIndex::Bucket& {
            return index_.bucket(b);
        });
        !error.empty()) {
        return error;
    }
    if (std::string error = check_array("old", index_.old_buckets(), [&](uint32_t b) -> const ConnIndex::Bucket& {
            return index_.old_bucket(b);
        });
        !error.empty()) {
        return error;
    }
    if (entries != index_keys) return cat("the index has ", entries, " entries, expected ", index_keys);
    return "";
}

}  // namespace flowpath
