// The exact-match cache: a packet's whole miniflow -> the megaflow slot it
// hit, two ways per hash, entries validated against the slot's generation.
#include <cstring>

#include "flowpath/cache.hpp"

namespace flowpath {

ExactCache::ExactCache(uint32_t entries) {
    uint32_t size = 2;
    while (size < entries) size <<= 1;
    entries_ = map_table<Entry>(size);
    mask_ = size - 1;
    clear();  // an empty entry is not all zero bytes
}

uint32_t ExactCache::hash_of(const Miniflow& flow) {
    uint32_t hash = hash_add_word(0x65786374u, flow.map);  // "exct"
    const unsigned n = flow.size();
    for (unsigned i = 0; i < n; ++i) hash = hash_add_word(hash, flow.words[i]);
    return hash_finish(hash);
}

void ExactCache::insert(const Miniflow& flow, uint32_t hash, uint32_t slot, const MegaflowCache& megaflows) {
    const unsigned n = flow.size();
    if (n > kEntryWords) return;  // a rare long key (VLAN + IPv6 ND): the other caches serve it
    Entry* target = nullptr;
    for (unsigned way = 0; way < 2 && !target; ++way) {
        Entry& e = entries_[bucket(hash, way)];
        if (e.tag == tag_of(hash, flow) && same_words(e, flow)) target = &e;
    }
    for (unsigned way = 0; way < 2 && !target; ++way) {
        Entry& e = entries_[bucket(hash, way)];
        if (e.tag == kEmptyTag || !megaflows.valid(e.slot, e.generation)) target = &e;
    }
    if (!target) {
        Entry& a = entries_[bucket(hash, 0)];
        Entry& b = entries_[bucket(hash, 1)];
        target = static_cast<int32_t>(a.stamp - b.stamp) <= 0 ? &a : &b;
    }
    target->tag = tag_of(hash, flow);
    target->slot = slot;
    target->generation = megaflows.flow(slot).generation;
    target->stamp = ++stamp_;
    std::memcpy(target->words, flow.words, n * sizeof(uint64_t));
}

void ExactCache::clear() {
    for (uint32_t i = 0; i < entries(); ++i) {
        Entry& e = entries_[i];
        e.tag = kEmptyTag;
        e.slot = kNoFlow;
    }
}

uint32_t ExactCache::valid_entries(const MegaflowCache& megaflows) const {
    uint32_t n = 0;
    for (uint32_t i = 0; i < entries(); ++i) {
        const Entry& e = entries_[i];
        n += e.tag != kEmptyTag && megaflows.valid(e.slot, e.generation);
    }
    return n;
}

}  // namespace flowpath
