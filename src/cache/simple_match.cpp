// The simple-match tier's table (docs/cache.md, "Simple match"): a handful
// of megaflows whose masks read no transport field, compared word by word
// with a frame's SimpleKey.
#include "flowpath/cache.hpp"

namespace flowpath {

namespace {
// Whether key word `word` is one a SimpleKey holds; its position there.
int simple_position(unsigned word) {
    for (unsigned p = 0; p < kSimpleKeyWords; ++p) {
        if (kSimpleKeyWordIndex[p] == word) return static_cast<int>(p);
    }
    return -1;
}

constexpr unsigned kTransportWord = kFlowWords - 1;
}  // namespace

bool SimpleMatch::simple_mask(const FlowMask& mask) {
    return flow_words(mask)[kTransportWord] == 0;
}

void SimpleMatch::add(uint32_t slot, const FlowKey& masked, const FlowMask& mask) {
    if (!simple_mask(mask)) {
        ++deep_;
        return;
    }
    if (size_ == kSimpleMatchFlows) {
        ++untabled_;
        return;
    }
    Entry& entry = entries_[size_++];
    entry.slot = slot;
    entry.possible = true;
    entry.words = 0;
    const uint64_t* mask_words = flow_words(mask);
    const uint64_t* value_words = flow_words(masked);
    for (unsigned w = 0; w < kTransportWord; ++w) {
        if (!mask_words[w]) continue;
        const int position = simple_position(w);
        if (position < 0) {
            // A word such frames have as zero: it matches them all or none.
            if (value_words[w] & mask_words[w]) entry.possible = false;
            continue;
        }
        entry.position[entry.words] = static_cast<uint8_t>(position);
        entry.mask[entry.words] = mask_words[w];
        entry.value[entry.words] = value_words[w] & mask_words[w];
        ++entry.words;
    }
}

void SimpleMatch::remove(uint32_t slot, const FlowMask& mask) {
    if (!simple_mask(mask)) {
        --deep_;
        return;
    }
    for (unsigned e = 0; e < size_; ++e) {
        if (entries_[e].slot != slot) continue;
        entries_[e] = entries_[--size_];
        return;
    }
    --untabled_;  // it was one of those beyond the table
}

}  // namespace flowpath
