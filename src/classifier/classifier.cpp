// The Classifier: rule bookkeeping and the tuple-space lookup with wildcard
// tracking. See docs/classifier.md for why each step un-wildcards what it does.
#include <algorithm>
#include <stdexcept>
#include <string>

#include "classifier_impl.hpp"

namespace flowpath {

using namespace classifier_detail;

bool ClassifierRule::matches(const FlowKey& key) const {
    const uint64_t* k = flow_words(key);
    const uint64_t* m = flow_words(mask);
    const uint64_t* v = flow_words(value);
    for (size_t i = 0; i < kFlowWords; ++i) {
        if ((k[i] & m[i]) != v[i]) return false;
    }
    return true;
}

Classifier::Classifier() : impl_(std::make_unique<Impl>()) {}
Classifier::~Classifier() = default;
Classifier::Classifier(Classifier&&) noexcept = default;
Classifier& Classifier::operator=(Classifier&&) noexcept = default;

void Classifier::Impl::renumber() {
    std::vector<RuleEntry*> all;
    all.reserve(by_id.size());
    for (auto& [id, entry] : by_id) all.push_back(entry.get());
    std::sort(all.begin(), all.end(), [](const RuleEntry* a, const RuleEntry* b) { return a->seq < b->seq; });
    for (size_t i = 0; i < all.size(); ++i) {
        all[i]->seq = i;
        all[i]->rank = rank_of(all[i]->priority, all[i]->seq);
    }
    // Relative order is unchanged, so groups stay sorted; `order` is keyed
    // by the old ranks and is rebuilt (rare: once per 2^48 inserts).
    std::map<uint64_t, Subtable*, std::greater<uint64_t>> renumbered;
    for (auto& [rank, subtable] : order) {
        subtable->refresh_ranks();
        renumbered.emplace(subtable->max_rank, subtable);
    }
    order = std::move(renumbered);
    next_seq = all.size();
}

bool Classifier::insert(const FlowKey& value, const FlowMask& mask, uint16_t priority, uint32_t id,
                        const void* payload) {
    Impl& impl = *impl_;
    if (impl.by_id.contains(id)) return false;
    if (impl.next_seq >= kSeqLimit - 1) impl.renumber();

    auto entry = std::make_unique<RuleEntry>();
    uint64_t* v = flow_words(entry->value);
    const uint64_t* in = flow_words(value);
    const uint64_t* m = flow_words(mask);
    for (size_t i = 0; i < kFlowWords; ++i) v[i] = in[i] & m[i];
    entry->mask = mask;
    entry->priority = priority;
    entry->id = id;
    entry->payload = payload;
    entry->seq = impl.next_seq++;
    entry->rank = rank_of(priority, entry->seq);

    auto [it, created] = impl.by_mask.try_emplace(mask);
    if (created) it->second = std::make_unique<Subtable>(mask);
    Subtable* subtable = it->second.get();
    for (unsigned f = 0; f < kTrieFields; ++f) {
        if (subtable->trie_length[f]) {
            impl.tries[f].insert(field_bits(entry->value, kTrieFieldList[f]), subtable->trie_length[f]);
        }
    }
    // A new best rule moves the subtable in the search order.
    const bool moves = created || entry->rank > subtable->max_rank;
    if (moves && !created) impl.order.erase(subtable->max_rank);
    subtable->add_rule(entry.get());
    if (moves) impl.order.emplace(subtable->max_rank, subtable);
    impl.by_id.emplace(id, std::move(entry));
    ++impl.version;
    return true;
}

bool Classifier::remove(uint32_t id) {
    Impl& impl = *impl_;
    auto found = impl.by_id.find(id);
    if (found == impl.by_id.end()) return false;
    RuleEntry* entry = found->second.get();
    Subtable* subtable = entry->subtable;
    for (unsigned f = 0; f < kTrieFields; ++f) {
        if (subtable->trie_length[f]) {
            impl.tries[f].remove(field_bits(entry->value, kTrieFieldList[f]), subtable->trie_length[f]);
        }
    }
    // Removing the best rule moves the subtable in the search order (or
    // out of it with its last rule).
    const bool moves = entry->rank == subtable->max_rank;
    if (moves) impl.order.erase(subtable->max_rank);
    subtable->remove_rule(entry);
    if (subtable->ranks.empty()) {
        const FlowMask mask = subtable->mask;  // the map owns the subtable
        impl.by_mask.erase(mask);
    } else if (moves) {
        impl.order.emplace(subtable->max_rank, subtable);
    }
    impl.by_id.erase(found);
    ++impl.version;
    return true;
}

bool Classifier::modify(uint32_t id, const void* payload) {
    auto found = impl_->by_id.find(id);
    if (found == impl_->by_id.end()) return false;
    found->second->payload = payload;
    ++impl_->version;
    return true;
}

void Classifier::clear() {
    Impl& impl = *impl_;
    impl.order.clear();
    impl.by_mask.clear();
    impl.by_id.clear();
    for (PrefixTrie& trie : impl.tries) trie = PrefixTrie();
    ++impl.version;
}

const ClassifierRule* Classifier::find(uint32_t id) const {
    auto found = impl_->by_id.find(id);
    return found == impl_->by_id.end() ? nullptr : found->second.get();
}

const ClassifierRule* Classifier::find_exact(const FlowKey& value, const FlowMask& mask,
                                             uint16_t priority) const {
    auto it = impl_->by_mask.find(mask);
    if (it == impl_->by_mask.end()) return nullptr;
    const Subtable& subtable = *it->second;
    uint64_t masked[kFlowWords];
    uint32_t stage_hashes[kFlowWords];
    subtable.masked_words(value, masked);
    const uint32_t g = subtable.find_group(subtable.hashes_of(value, stage_hashes), masked);
    if (g == kNone) return nullptr;
    // Sorted by rank: equal priorities appear in insertion order.
    for (const RuleEntry* rule : subtable.groups[g].rules) {
        if (rule->priority == priority) return rule;
    }
    return nullptr;
}

const ClassifierRule* Classifier::lookup(const FlowKey& key, FlowMask& wildcards, LookupTrace* trace) const {
    const Impl& impl = *impl_;
    const uint64_t* key_words = flow_words(key);
    uint64_t* wc_words = flow_words(wildcards);
    const RuleEntry* best = nullptr;
    uint64_t best_rank = 0;  // ranks are never 0

    // Trie answers, computed the first time a subtable needs each field.
    TrieLookup trie_results[kTrieFields];
    bool trie_done[kTrieFields] = {};

    for (const auto& [max_rank, subtable] : impl.order) {
        // Subtables are in decreasing order of their best rule: once none can
        // beat `best`, the rest cannot either, whatever the key.
        if (max_rank <= best_rank) break;
        if (trace) {
            ++trace->subtables_visited;
            const uint64_t* m = flow_words(subtable->mask);
            uint64_t* t = flow_words(trace->visited_masks);
            for (size_t i = 0; i < kFlowWords; ++i) t[i] |= m[i];
        }

        // Prefix tries: if no rule of this prefix length lies on the key's
        // path, the subtable cannot match, and a few leading address bits
        // prove it for every key that shares them.
        if (subtable->uses_tries) {
            unsigned skip_field = kTrieFields;
            unsigned skip_bits = 129;
            for (unsigned f = 0; f < kTrieFields; ++f) {
                const unsigned length = subtable->trie_length[f];
                if (!length) continue;
                if (!trie_done[f]) {
                    trie_results[f] = impl.tries[f].lookup(field_bits(key, kTrieFieldList[f]),
                                                           kTrieFieldList[f].width);
                    trie_done[f] = true;
                }
                if (trie_results[f].match_lengths.test(length)) continue;
                const unsigned bits = std::min(length, trie_results[f].decisive_bits);
                if (bits < skip_bits) {
                    skip_bits = bits;
                    skip_field = f;
                }
            }
            if (skip_field < kTrieFields) {
                set_field_prefix(wildcards, kTrieFieldList[skip_field], skip_bits);
                if (trace) ++trace->trie_skips;
                continue;
            }
        }

        // Staged probe: after each mask word, ask whether any rule shares the
        // key's masked words so far; the first "no" ends the probe having
        // examined only those words.
        uint64_t masked[kFlowWords];
        uint32_t hash = kHashBasis;
        const unsigned n_words = subtable->n_words;
        unsigned examined = n_words;
        for (unsigned n = 0; n < n_words; ++n) {
            masked[n] = key_words[subtable->word_index[n]] & subtable->minimask.words[n];
            hash = hash_add_word(hash, masked[n]);
            if (n + 1 < n_words && !subtable->stages[n].contains(hash_finish(hash))) {
                examined = n + 1;
                break;
            }
        }
        if (examined < n_words) {
            for (unsigned n = 0; n < examined; ++n) {
                wc_words[subtable->word_index[n]] |= subtable->minimask.words[n];
            }
            if (trace) ++trace->stage_misses;
            continue;
        }

        // Every stage passed: the words before the last count, and the
        // group table is probed. On a miss, the ports trie (Open vSwitch's):
        // when no rule here has the key's ports, their leading bits prove it
        // for every key sharing them and stand in for the last word (the
        // ports are in the last word: word 15 is the key's last).
        for (unsigned n = 0; n + 1 < n_words; ++n) {
            wc_words[subtable->word_index[n]] |= subtable->minimask.words[n];
        }
        if (trace) ++trace->full_probes;
        const uint32_t g = subtable->find_group(hash_finish(hash), masked);
        if (g == kNone && subtable->ports_trie) {
            const TrieLookup ports = subtable->ports_trie->lookup(
                field_bits(key, kPortsField) & subtable->ports_mask, kPortsField.width);
            if (!ports.match_lengths.test(subtable->ports_length)) {
                const unsigned bits = std::min(subtable->ports_length, ports.decisive_bits);
                or_field_bits(wildcards, kPortsField, leading_bits(subtable->ports_mask, bits));
                if (trace) ++trace->port_trie_skips;
                continue;
            }
        }
        if (n_words) wc_words[subtable->word_index[n_words - 1]] |= subtable->minimask.words[n_words - 1];
        if (g != kNone && subtable->groups[g].best_rank > best_rank) {
            best = subtable->groups[g].best;
            best_rank = subtable->groups[g].best_rank;
        }
    }
    return best;
}

const ClassifierRule* Classifier::reference_lookup(const FlowKey& key) const {
    const RuleEntry* best = nullptr;
    for (const auto& [id, entry] : impl_->by_id) {
        if ((!best || entry->rank > best->rank) && entry->matches(key)) best = entry.get();
    }
    return best;
}

size_t Classifier::rule_count() const { return impl_->by_id.size(); }
size_t Classifier::subtable_count() const { return impl_->order.size(); }
uint64_t Classifier::version() const { return impl_->version; }

std::vector<const ClassifierRule*> Classifier::rules() const {
    std::vector<const RuleEntry*> all;
    all.reserve(impl_->by_id.size());
    for (const auto& [id, entry] : impl_->by_id) all.push_back(entry.get());
    std::sort(all.begin(), all.end(), [](const RuleEntry* a, const RuleEntry* b) { return a->rank > b->rank; });
    return {all.begin(), all.end()};
}

void Classifier::compact_sequence_numbers() { impl_->renumber(); }

Classifier& RuleTables::table(unsigned id) {
    if (id >= kMaxTables) {
        throw std::out_of_range(std::string(__FILE__) + ":" + std::to_string(__LINE__) + ": table " +
                                std::to_string(id) + " out of range (0-" + std::to_string(kMaxTables - 1) + ")");
    }
    if (!tables_[id]) tables_[id] = std::make_unique<Classifier>();
    return *tables_[id];
}

const Classifier* RuleTables::find_table(unsigned id) const {
    return id < kMaxTables ? tables_[id].get() : nullptr;
}

bool RuleTables::remove(unsigned id, uint32_t rule_id) {
    Classifier* classifier = id < kMaxTables ? tables_[id].get() : nullptr;
    return classifier && classifier->remove(rule_id);
}

const ClassifierRule* RuleTables::lookup(unsigned id, const FlowKey& key, FlowMask& wildcards) const {
    const Classifier* classifier = find_table(id);
    return classifier ? classifier->lookup(key, wildcards) : nullptr;
}

size_t RuleTables::rule_count() const {
    size_t total = 0;
    for (const auto& table : tables_) total += table ? table->rule_count() : 0;
    return total;
}

uint64_t RuleTables::version() const {
    uint64_t total = 0;
    for (const auto& table : tables_) total += table ? table->version() : 0;
    return total;
}

void RuleTables::clear() {
    for (auto& table : tables_) {
        if (table) table->clear();
    }
}

}  // namespace flowpath
