// Subtables (one per distinct mask) and the hash sets of their stages.
#include <algorithm>

#include "classifier_impl.hpp"

namespace flowpath::classifier_detail {

void HashCountSet::add(uint32_t hash) {
    const size_t i = find(hash);
    if (i != Table::npos) {
        ++table_.at(i).count;
    } else {
        table_.insert(Slot{hash, 1});
    }
}

void HashCountSet::remove(uint32_t hash) {
    const size_t i = find(hash);
    if (i == Table::npos) return;
    if (--table_.at(i).count == 0) table_.erase_at(i);
}

Subtable::Subtable(const FlowMask& full_mask)
    : mask(full_mask), minimask(miniflow_from_key(full_mask)), n_words(minimask.size()) {
    unsigned n = 0;
    for (uint64_t m = minimask.map; m; m &= m - 1) word_index[n++] = static_cast<uint8_t>(std::countr_zero(m));
    stages.resize(n_words > 0 ? n_words - 1 : 0);
    for (unsigned f = 0; f < kTrieFields; ++f) {
        trie_length[f] = static_cast<uint8_t>(field_prefix_len(mask, kTrieFieldList[f]));
        uses_tries |= trie_length[f] != 0;
    }
    ports_mask = field_bits(mask, kPortsField);
    if (ports_mask.hi) {
        ports_length = 64 - static_cast<unsigned>(std::countr_zero(ports_mask.hi));
        ports_trie.emplace();
    }
}

uint32_t Subtable::hashes_of(const FlowKey& masked_value, uint32_t* stage_hashes) const {
    const uint64_t* words = flow_words(masked_value);
    uint32_t hash = kHashBasis;
    for (unsigned n = 0; n < n_words; ++n) {
        hash = hash_add_word(hash, words[word_index[n]] & minimask.words[n]);
        if (n + 1 < n_words) stage_hashes[n] = hash_finish(hash);
    }
    return hash_finish(hash);
}

void Subtable::masked_words(const FlowKey& masked_value, uint64_t* out) const {
    const uint64_t* words = flow_words(masked_value);
    for (unsigned n = 0; n < n_words; ++n) out[n] = words[word_index[n]] & minimask.words[n];
}

uint32_t Subtable::find_or_add_group(uint32_t hash, const uint64_t* masked) {
    const uint32_t found = find_group(hash, masked);
    if (found != kNone) return found;
    uint32_t g;
    if (!free_groups.empty()) {
        g = free_groups.back();
        free_groups.pop_back();
    } else {
        g = static_cast<uint32_t>(groups.size());
        groups.emplace_back();
        values.resize(values.size() + n_words);
    }
    std::copy(masked, masked + n_words, values.begin() + static_cast<ptrdiff_t>(size_t{g} * n_words));
    groups[g].hash = hash;
    if (++n_groups > buckets.size()) grow_buckets();
    uint32_t& head = buckets[hash & (buckets.size() - 1)];
    groups[g].next = head;
    head = g;
    return g;
}

void Subtable::grow_buckets() {
    std::vector<uint32_t> old = std::move(buckets);
    buckets.assign(std::max<size_t>(8, old.size() * 2), kNone);
    for (uint32_t head : old) {
        for (uint32_t g = head; g != kNone;) {
            const uint32_t next = groups[g].next;
            uint32_t& slot = buckets[groups[g].hash & (buckets.size() - 1)];
            groups[g].next = slot;
            slot = g;
            g = next;
        }
    }
}

void Subtable::unlink_group(uint32_t g) {
    uint32_t* link = &buckets[groups[g].hash & (buckets.size() - 1)];
    while (*link != g) link = &groups[*link].next;
    *link = groups[g].next;
    groups[g] = Group{};
    free_groups.push_back(g);
    --n_groups;
}

namespace {
bool higher_rank(const RuleEntry* a, const RuleEntry* b) { return a->rank > b->rank; }
}  // namespace

void Subtable::add_rule(RuleEntry* rule) {
    uint32_t stage_hashes[kFlowWords];
    uint64_t masked[kFlowWords];
    masked_words(rule->value, masked);
    const uint32_t hash = hashes_of(rule->value, stage_hashes);
    for (unsigned i = 0; i + 1 < n_words; ++i) stages[i].add(stage_hashes[i]);
    if (ports_trie) ports_trie->insert(field_bits(rule->value, kPortsField), ports_length);

    Group& group = groups[find_or_add_group(hash, masked)];
    group.rules.insert(std::upper_bound(group.rules.begin(), group.rules.end(), rule, higher_rank), rule);
    group.best = group.rules.front();
    group.best_rank = group.best->rank;

    ranks.insert(rule->rank);
    max_rank = ranks.max();
    rule->subtable = this;
}

void Subtable::remove_rule(RuleEntry* rule) {
    uint32_t stage_hashes[kFlowWords];
    uint64_t masked[kFlowWords];
    masked_words(rule->value, masked);
    const uint32_t hash = hashes_of(rule->value, stage_hashes);
    for (unsigned i = 0; i + 1 < n_words; ++i) stages[i].remove(stage_hashes[i]);
    if (ports_trie) ports_trie->remove(field_bits(rule->value, kPortsField), ports_length);

    const uint32_t g = find_group(hash, masked);
    if (g != kNone) {
        Group& group = groups[g];
        std::erase(group.rules, rule);
        if (group.rules.empty()) {
            unlink_group(g);
        } else {
            group.best = group.rules.front();
            group.best_rank = group.best->rank;
        }
    }
    ranks.erase(rule->rank);
    max_rank = ranks.max();
    rule->subtable = nullptr;
}

void Subtable::refresh_ranks() {
    ranks.clear();
    for (uint32_t head : buckets) {
        for (uint32_t g = head; g != kNone; g = groups[g].next) {
            Group& group = groups[g];
            for (const RuleEntry* rule : group.rules) ranks.insert(rule->rank);
            group.best_rank = group.best->rank;
        }
    }
    max_rank = ranks.max();
}

}  // namespace flowpath::classifier_detail
