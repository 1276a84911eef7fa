// The signature cache: full-key hash -> megaflow slot, 10 ways per cache
// line, every hit validated by the caller against the megaflow itself.
#include <bit>
#include <cstring>

#include "flowpath/cache.hpp"

namespace flowpath {

SignatureCache::SignatureCache(uint32_t entries) {
    if (entries == 0) return;
    uint32_t buckets = 1;
    while (uint64_t{buckets} * kWays < entries) buckets <<= 1;
    buckets_ = map_table<Bucket>(buckets);  // zeroed: every way empty
    bucket_mask_ = buckets - 1;
}

void SignatureCache::insert(uint32_t hash, uint32_t slot) {
    Bucket& b = buckets_[hash & bucket_mask_];
    const uint16_t signature = static_cast<uint16_t>(hash >> 16);
    int same_signature = -1, empty = -1;
    for (unsigned way = 0; way < kWays; ++way) {
        if (b.slot_plus_one[way] == 0) {
            if (empty < 0) empty = static_cast<int>(way);
        } else if (b.signature[way] == signature) {
            if (b.slot_plus_one[way] == slot + 1) return;
            if (same_signature < 0) same_signature = static_cast<int>(way);
        }
    }
    unsigned way;
    if (same_signature >= 0) {
        way = static_cast<unsigned>(same_signature);
    } else if (empty >= 0) {
        way = static_cast<unsigned>(empty);
    } else {
        // Full: one victim per insert, round robin over the ways (no age to
        // keep per entry; a flow that keeps coming is re-inserted).
        way = next_victim_;
        next_victim_ = next_victim_ + 1 == kWays ? 0 : next_victim_ + 1;
    }
    b.signature[way] = signature;
    b.slot_plus_one[way] = slot + 1;
}

void SignatureCache::clear() {
    if (enabled()) std::memset(static_cast<void*>(buckets_.get()), 0, memory_bytes());
}

}  // namespace flowpath
