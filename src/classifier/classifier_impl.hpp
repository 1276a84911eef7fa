// Internals of the Classifier (include/flowpath/classifier.hpp): rule
// entries, subtables with their staged hash sets, and prefix tries.
// Not part of the public interface; see docs/classifier.md for the design.
#pragma once

#include <algorithm>
#include <bit>
#include <bitset>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <unordered_map>
#include <vector>

#include "flowpath/classifier.hpp"
#include "flowpath/miniflow.hpp"
#include "../common/linear_probe.hpp"

namespace flowpath {
namespace classifier_detail {

inline constexpr uint32_t kNone = UINT32_MAX;
inline constexpr uint32_t kHashBasis = 0x6A09E667u;

/// Insertion sequence numbers stay below 2^48 - 1 (the classifier renumbers
/// before reaching it), so that (priority, seq) packs into one 64-bit rank.
inline constexpr uint64_t kSeqLimit = uint64_t{1} << 48;

/// The total order of rules: higher rank wins. Priority first, then earlier
/// insertion. Never zero, so 0 can mean "no rule yet".
inline uint64_t rank_of(uint16_t priority, uint64_t seq) {
    return (uint64_t{priority} << 48) | (kSeqLimit - 1 - seq);
}

struct Subtable;

/// The ranks of a subtable's rules, for the highest after a removal: a
/// max-heap with lazy deletion (removed ranks wait in a second heap until
/// they reach the top). Contiguous, no node per rank: a std::set's inserts
/// were a third of the OpenFlow agent's own time loading 100,000 rules.
/// Ranks are unique, and only present ranks are erased.
class RankHeap {
public:
    void insert(uint64_t rank) {
        live_.push_back(rank);
        std::push_heap(live_.begin(), live_.end());
    }
    void erase(uint64_t rank) {
        dead_.push_back(rank);
        std::push_heap(dead_.begin(), dead_.end());
        while (!dead_.empty() && live_.front() == dead_.front()) {
            std::pop_heap(live_.begin(), live_.end());
            live_.pop_back();
            std::pop_heap(dead_.begin(), dead_.end());
            dead_.pop_back();
        }
        if (dead_.size() > 64 && 2 * dead_.size() > live_.size()) compact();
    }
    bool empty() const { return live_.size() == dead_.size(); }
    /// The highest rank present, 0 when none.
    uint64_t max() const { return empty() ? 0 : live_.front(); }
    void clear() {
        live_.clear();
        dead_.clear();
    }

private:
    // Drops the removed ranks from the live heap (amortized over the
    // removals that made them at least half of it).
    void compact() {
        std::sort(dead_.begin(), dead_.end());
        std::erase_if(live_, [&](uint64_t r) { return std::binary_search(dead_.begin(), dead_.end(), r); });
        dead_.clear();
        std::make_heap(live_.begin(), live_.end());
    }

    std::vector<uint64_t> live_;  // every rank inserted and not yet dropped (some removed)
    std::vector<uint64_t> dead_;  // removed ranks still in live_
};

/// A stored rule: the public part plus where it lives.
struct RuleEntry : ClassifierRule {
    uint64_t rank = 0;
    Subtable* subtable = nullptr;
};

/// A counting multiset of 32-bit hashes (open addressing, linear probing).
/// Staged lookup asks it "might any rule have this masked prefix?": a hash
/// that is absent proves no rule does.
class HashCountSet {
public:
    bool contains(uint32_t hash) const { return find(hash) != Table::npos; }
    void add(uint32_t hash);
    void remove(uint32_t hash);
    size_t size() const { return table_.size(); }

private:
    struct Slot {
        uint32_t hash = 0;
        uint32_t count = 0;  // 0 = empty slot
        constexpr bool empty() const { return count == 0; }
    };
    using Table = LinearProbeTable<Slot, 75>;
    size_t find(uint32_t hash) const {
        return table_.find(hash, [hash](const Slot& slot) { return slot.hash == hash; });
    }
    Table table_;
};

/// 128-bit big-endian bit string (bit 0 is the most significant).
struct Bits128 {
    uint64_t hi = 0;
    uint64_t lo = 0;
};

/// The prefix-trackable fields: IPv4 and IPv6 addresses.
struct TrieField {
    unsigned offset;  ///< byte offset in FlowKey
    unsigned width;   ///< bits (32 or 128)
};
inline constexpr unsigned kTrieFields = 4;
extern const std::array<TrieField, kTrieFields> kTrieFieldList;

/// The transport ports, tp_src then tp_dst, as one 32-bit string: the
/// field of the per-subtable ports tries.
inline constexpr TrieField kPortsField = {offsetof(FlowKey, tp_src), 32};

/// The field's bits of `key` as a big-endian bit string.
Bits128 field_bits(const FlowKey& key, const TrieField& field);

/// The first `length` bits of `bits`, the rest zero.
Bits128 leading_bits(Bits128 bits, unsigned length);

inline Bits128 operator&(const Bits128& a, const Bits128& b) { return {a.hi & b.hi, a.lo & b.lo}; }

/// ORs `bits` into `field` of `mask`.
void or_field_bits(FlowMask& mask, const TrieField& field, const Bits128& bits);

/// Length of the CIDR prefix `mask` holds on `field`; 0 when the mask is zero
/// there or not a prefix.
unsigned field_prefix_len(const FlowMask& mask, const TrieField& field);

/// ORs the first `bits` bits of `field` into `mask`.
void set_field_prefix(FlowMask& mask, const TrieField& field, unsigned bits);

/// What a prefix trie knows about one key.
struct TrieLookup {
    /// Bit L set: some stored prefix of length L equals the key's first L bits.
    std::bitset<129> match_lengths;
    /// Key bits that decide every stored prefix longer than the deepest one
    /// the key follows: agreeing on that many leading bits gives the same walk.
    unsigned decisive_bits = 0;
};

/// A path-compressed binary trie of the prefixes (value, length) of one
/// field, counting duplicates. Finds, for a key, which prefix lengths could
/// match it and how many leading bits prove the rest cannot.
class PrefixTrie {
public:
    PrefixTrie();
    void insert(Bits128 prefix, unsigned length);
    void remove(Bits128 prefix, unsigned length);
    /// Allocation-free walk; `width` is the field's width in bits.
    TrieLookup lookup(Bits128 key, unsigned width) const;
    bool empty() const { return nodes_[0].children[0] == kNone && nodes_[0].children[1] == kNone && nodes_[0].count == 0; }

private:
    struct Node {
        Bits128 value;           // prefix bits, zero beyond `length`
        unsigned length = 0;
        uint32_t count = 0;      // prefixes ending exactly here
        uint32_t children[2] = {kNone, kNone};
    };
    uint32_t new_node(Bits128 value, unsigned length, uint32_t count);
    void free_node(uint32_t index);
    std::vector<Node> nodes_;  // nodes_[0] is the root (length 0)
    std::vector<uint32_t> free_;
};

/// All rules sharing one masked value within a subtable, best first.
struct Group {
    uint32_t hash = 0;
    uint32_t next = kNone;       // bucket chain
    uint64_t best_rank = 0;
    const RuleEntry* best = nullptr;
    std::vector<RuleEntry*> rules;  // sorted by rank, highest first
};

/// One tuple: every rule with exactly this mask. A hash table of groups keyed
/// by the masked miniflow, plus one HashCountSet per stage for staged lookup.
/// Stage i covers the mask's words 0..i (in key word order), so a probe
/// that fails at stage i has looked only at those words.
struct Subtable {
    explicit Subtable(const FlowMask& full_mask);

    FlowMask mask;
    Minimask minimask;
    unsigned n_words = 0;
    uint8_t word_index[kFlowWords] = {};  // the n-th mask word's index in the key
    uint64_t max_rank = 0;
    RankHeap ranks;                       // all rule ranks, for max_rank after removal
    std::vector<HashCountSet> stages;     // n_words - 1 entries (the last stage is the table)
    uint8_t trie_length[kTrieFields] = {};  // prefix length on each trie field, 0 = none
    bool uses_tries = false;

    /// The ports trie (Open vSwitch's): the rules' ports under the mask, as
    /// prefixes of `ports_length` bits (up to the mask's last port bit), so
    /// that a key whose ports leave every rule's early costs only the ports'
    /// leading bits, not the whole mask. Only for masks with port bits (a
    /// trie allocates its root: 100,000 masks, 100,000 allocations).
    Bits128 ports_mask;
    unsigned ports_length = 0;
    std::optional<PrefixTrie> ports_trie;

    std::vector<Group> groups;
    std::vector<uint64_t> values;         // group g's masked words at g * n_words
    std::vector<uint32_t> free_groups;
    std::vector<uint32_t> buckets;        // heads of group chains
    size_t n_groups = 0;

    /// The table hash of a masked value (equal to miniflow_hash_masked() of
    /// it under `minimask`); stores the n_words - 1 stage hashes in `stage_hashes`.
    uint32_t hashes_of(const FlowKey& masked_value, uint32_t* stage_hashes) const;

    /// The index of the group whose masked words equal `masked`, or kNone.
    uint32_t find_group(uint32_t hash, const uint64_t* masked) const {
        if (buckets.empty()) return kNone;
        for (uint32_t g = buckets[hash & (buckets.size() - 1)]; g != kNone; g = groups[g].next) {
            if (groups[g].hash != hash) continue;
            const uint64_t* v = values.data() + size_t{g} * n_words;
            bool equal = true;
            for (unsigned i = 0; i < n_words; ++i) equal &= v[i] == masked[i];
            if (equal) return g;
        }
        return kNone;
    }

    /// The words of `masked_value` under the mask, in mask order.
    void masked_words(const FlowKey& masked_value, uint64_t* out) const;

    void add_rule(RuleEntry* rule);
    void remove_rule(RuleEntry* rule);

    /// Recomputes group bests and max_rank after the ranks were renumbered.
    void refresh_ranks();

private:
    uint32_t find_or_add_group(uint32_t hash, const uint64_t* masked);
    void unlink_group(uint32_t g);
    void grow_buckets();
};

/// Hash of a FlowMask for the mask -> subtable map.
struct MaskHash {
    size_t operator()(const FlowMask& mask) const {
        uint32_t h = kHashBasis;
        const uint64_t* w = flow_words(mask);
        for (size_t i = 0; i < kFlowWords; ++i) h = hash_add_word(h, w[i]);
        return hash_finish(h);
    }
};

}  // namespace classifier_detail

struct Classifier::Impl {
    std::unordered_map<uint32_t, std::unique_ptr<classifier_detail::RuleEntry>> by_id;
    std::unordered_map<FlowMask, std::unique_ptr<classifier_detail::Subtable>, classifier_detail::MaskHash>
        by_mask;
    /// The search order: every non-empty subtable under its max_rank,
    /// highest first (ranks are unique, so the order is strict). A change of
    /// a subtable's max_rank moves its entry: O(log subtables), where a
    /// sorted vector cost O(subtables) per insert and made loading quadratic
    /// in the number of masks. Keyed by the rank itself so that placing one
    /// touches no subtable.
    std::map<uint64_t, classifier_detail::Subtable*, std::greater<uint64_t>> order;
    std::array<classifier_detail::PrefixTrie, classifier_detail::kTrieFields> tries;
    uint64_t next_seq = 0;
    uint64_t version = 0;

    /// Renumbers seq densely from 0, keeping the order.
    void renumber();
};

}  // namespace flowpath
