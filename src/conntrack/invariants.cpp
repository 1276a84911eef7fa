// ConnTable::check_invariants: the whole table checked against every
// invariant of docs/conntrack.md, for tests and debugging (O(capacity)).
#include <rte_hash.h>

#include "flowpath/conntrack.hpp"
#include "flowpath/log.hpp"

namespace flowpath {

std::string ConnTable::check_invariants() const {
    using Status = Connection::Status;
    auto is_free = [&](uint32_t i) { return slots_[i].status_ == Status::free; };

    // Free clusters: increasing, maximal runs of free slots, doubly linked,
    // each one's last slot naming its first.
    uint64_t listed_free = 0;
    uint32_t prev = kNil;
    uint64_t steps = 0;
    for (uint32_t first = free_head_; first != kNil; first = slots_[first].cluster_next_) {
        if (++steps > capacity_) return "free cluster list loops";
        if (first >= capacity_) return cat("free cluster at ", first, " is outside the table");
        const Connection& head = slots_[first];
        const uint32_t length = head.cluster_length_;
        if (length == 0 || uint64_t{first} + length > capacity_) {
            return cat("free cluster at ", first, " has length ", length);
        }
        if (prev != kNil && first <= prev + slots_[prev].cluster_length_) {
            return cat("free cluster at ", first, " is not after the one at ", prev, " or touches it");
        }
        if (head.cluster_prev_ != prev) return cat("free cluster at ", first, " has a wrong previous link");
        if (first > 0 && is_free(first - 1)) return cat("free cluster at ", first, " is not maximal on its left");
        const uint32_t end = first + length;
        if (end < capacity_ && is_free(end)) return cat("free cluster at ", first, " is not maximal on its right");
        for (uint32_t i = first; i < end; ++i) {
            if (!is_free(i)) return cat("slot ", i, " in the free cluster at ", first, " is not free");
        }
        if (slots_[end - 1].cluster_first_ != first) {
            return cat("last slot of the free cluster at ", first, " names ", slots_[end - 1].cluster_first_);
        }
        listed_free += length;
        prev = first;
    }

    // Slot states against the bitmaps and the counters.
    uint64_t free_slots = 0, live = 0, retired_slots = 0, index_keys = 0;
    for (uint32_t i = 0; i < capacity_; ++i) {
        const Connection& c = slots_[i];
        const bool bit = free_bits_[i >> 6] >> (i & 63) & 1;
        if (bit != (c.status_ == Status::free)) return cat("free bit of slot ", i, " disagrees with its state");
        if (c.status_ == Status::free) ++free_slots;
        if (c.status_ == Status::retired) ++retired_slots;
        if (c.status_ != Status::live) continue;
        ++live;

        // Each live connection: its keys (two, or one that both directions
        // share) lead back to it.
        if (c.one_key_ != (c.key_[0] == c.key_[1])) return cat("connection ", i, " has a wrong one-key flag");
        for (unsigned side = 0; side < (c.one_key_ ? 1u : 2u); ++side) {
            if (c.hash_[side] != hash(c.key_[side])) return cat("connection ", i, " side ", side, " has a stale hash");
            if (lookup(c.key_[side]) != ConnRef(i, side)) {
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
    if (live != size()) return cat(live, " live slots but the counter says ", size());
    if (retired_slots != retired()) return cat(retired_slots, " retired slots but ", retired(), " pending release");

    // The index holds the live keys plus the storage retired keys keep.
    for (uint64_t n = released_total_; n < retired_total_; ++n) {
        for (int32_t position : retired_ring_[n % capacity_].position) index_keys += position >= 0;
    }
    const int32_t in_index = rte_hash_count(index_.get());
    if (in_index < 0 || static_cast<uint64_t>(in_index) != index_keys) {
        return cat("the index holds ", in_index, " keys, expected ", index_keys);
    }

    // Expiration lists: every live connection on its class's list, each list
    // doubly linked and sorted by expiry.
    uint64_t listed_live = 0;
    for (unsigned k = 0; k < kTimeoutClasses; ++k) {
        uint32_t before = kNil;
        for (uint32_t i = list_head_[k]; i != kNil; i = slots_[i].expiry_next_) {
            if (++listed_live > live) return cat("expiration list ", k, " is longer than the live connections");
            const Connection& c = slots_[i];
            if (c.status_ != Status::live) return cat("slot ", i, " on expiration list ", k, " is not live");
            if (static_cast<unsigned>(c.timeout_class_) != k) return cat("connection ", i, " is on a wrong list");
            if (c.expiry_prev_ != before) return cat("connection ", i, " has a wrong previous link");
            if (before != kNil && slots_[before].expiry_ > c.expiry_) {
                return cat("expiration list ", k, " is not sorted at connection ", i);
            }
            before = i;
        }
        if (list_tail_[k] != before) return cat("expiration list ", k, " has a wrong tail");
    }
    if (listed_live != live) return cat(live, " live connections but ", listed_live, " on expiration lists");
    return "";
}

}  // namespace flowpath
