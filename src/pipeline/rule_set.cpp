// The rule tables: adding, selecting (OpenFlow strict and non-strict
// matching), modifying, removing and replacing rules, and dump-flows.
#include <algorithm>
#include <map>
#include <mutex>
#include <sstream>
#include <tuple>

#include "flowpath/error.hpp"
#include "flowpath/pipeline.hpp"

namespace flowpath {

namespace {
const uint64_t* words_of(const FlowKey& key) { return flow_words(key); }

// OpenFlow non-strict selection: `rule` examines at least the filter's bits
// and agrees with it there.
bool at_least_as_specific(const Match& rule, const Match& filter) {
    const uint64_t* rv = words_of(rule.value);
    const uint64_t* rm = words_of(rule.mask);
    const uint64_t* fv = words_of(filter.value);
    const uint64_t* fm = words_of(filter.mask);
    for (unsigned w = 0; w < kFlowWords; ++w) {
        if ((rm[w] & fm[w]) != fm[w] || (rv[w] & fm[w]) != fv[w]) return false;
    }
    return rule.metadata_within(filter);
}
}  // namespace

// Written by the slow-path threads while they translate (under the rule
// set's read lock, several at once), hence a mutex of its own. Never on a
// worker's path: only translations of a ct(table=T) with metadata and of
// the passes they start take it.
struct RuleSet::FrozenStates {
    std::mutex lock;
    struct State {
        uint32_t in_port, lookup_in_port;
        uint64_t metadata;
    };
    std::vector<State> states;                                       // by index
    std::unordered_map<uint64_t, std::vector<uint32_t>> by_metadata;  // metadata -> indices
};

RuleSet::RuleSet(PortNames ports) : ports_(std::move(ports)), frozen_(std::make_unique<FrozenStates>()) {}
RuleSet::~RuleSet() = default;
RuleSet::RuleSet(RuleSet&&) noexcept = default;
RuleSet& RuleSet::operator=(RuleSet&&) noexcept = default;

void RuleSet::check(const Rule&) {
    // Nothing to refuse: connection tracking, the last feature rules had
    // and the datapath lacked, runs now. Callers keep checking, so a future
    // limit lands in one place.
}

Classifier* RuleSet::classifier_of(uint8_t table, const Match& match, bool create) {
    if (!match.metadata_mask) return create ? &tables_.table(table) : const_cast<Classifier*>(tables_.find_table(table));
    std::vector<MetadataGroup>& groups = metadata_groups_.at(table);
    auto group = std::find_if(groups.begin(), groups.end(),
                              [&](const MetadataGroup& g) { return g.mask == match.metadata_mask; });
    if (group == groups.end()) {
        if (!create) return nullptr;
        group = groups.insert(groups.end(), MetadataGroup{match.metadata_mask, {}});
    }
    auto it = group->by_value.find(match.metadata);
    if (it == group->by_value.end()) {
        if (!create) return nullptr;
        it = group->by_value.try_emplace(match.metadata).first;
    }
    return &it->second;
}

const Classifier* RuleSet::classifier_of(uint8_t table, const Match& match) const {
    return const_cast<RuleSet*>(this)->classifier_of(table, match, false);
}

void RuleSet::unlink(uint8_t table, const Match& match, uint32_t id) {
    Classifier* classifier = classifier_of(table, match, false);
    if (!classifier) return;
    classifier->remove(id);
    if (!match.metadata_mask || classifier->rule_count() > 0) return;
    // An empty metadata classifier would cost every lookup a probe.
    std::vector<MetadataGroup>& groups = metadata_groups_[table];
    for (auto group = groups.begin(); group != groups.end(); ++group) {
        if (group->mask != match.metadata_mask) continue;
        group->by_value.erase(match.metadata);
        if (group->by_value.empty()) groups.erase(group);
        return;
    }
}

const ClassifierRule* RuleSet::lookup(uint8_t table, const FlowKey& key, uint64_t metadata,
                                      FlowMask& wildcards) const {
    const ClassifierRule* best = tables_.lookup(table, key, wildcards);
    if (table >= kMaxTables) return best;
    for (const MetadataGroup& group : metadata_groups_[table]) {
        auto it = group.by_value.find(metadata & group.mask);
        if (it == group.by_value.end()) continue;
        const ClassifierRule* hit = it->second.lookup(key, wildcards);
        // Ids grow with every add and stay with a modify: the classifiers'
        // own tie order (first added wins) across classifiers.
        if (hit && (!best || hit->priority > best->priority ||
                    (hit->priority == best->priority && hit->id < best->id))) {
            best = hit;
        }
    }
    return best;
}

const RuleEntry* RuleSet::find_exact(uint8_t table, const Match& match, uint16_t priority) const {
    const Classifier* classifier = classifier_of(table, match);
    if (!classifier) return nullptr;
    const ClassifierRule* same = classifier->find_exact(match.value, match.mask, priority);
    return same ? &entry_of(*same) : nullptr;
}

std::vector<const RuleEntry*> RuleSet::table_rules(uint8_t table) const {
    std::vector<const RuleEntry*> out;
    if (const Classifier* plain = tables_.find_table(table)) {
        for (const ClassifierRule* rule : plain->rules()) out.push_back(&entry_of(*rule));
    }
    if (table >= kMaxTables || metadata_groups_[table].empty()) return out;
    for (const MetadataGroup& group : metadata_groups_[table]) {
        for (const auto& [value, classifier] : group.by_value) {
            for (const ClassifierRule* rule : classifier.rules()) out.push_back(&entry_of(*rule));
        }
    }
    std::sort(out.begin(), out.end(), [](const RuleEntry* a, const RuleEntry* b) {
        return a->rule.priority != b->rule.priority ? a->rule.priority > b->rule.priority : a->id < b->id;
    });
    return out;
}

uint32_t RuleSet::freeze(uint8_t table, uint32_t in_port, uint32_t packet_in_port, uint64_t metadata,
                         uint32_t lookup_in_port) const {
    if (!metadata && lookup_in_port == in_port) return recirc_id_for(table, in_port, packet_in_port);
    std::lock_guard guard(frozen_->lock);
    std::vector<uint32_t>& same_metadata = frozen_->by_metadata[metadata];
    for (uint32_t index : same_metadata) {
        const FrozenStates::State& state = frozen_->states[index];
        if (state.in_port == in_port && state.lookup_in_port == lookup_in_port) {
            return (table + 1u) | kRecircFrozen | index << kRecircShift;
        }
    }
    if (frozen_->states.size() >= kMaxFrozenStates) return 0;
    const auto index = static_cast<uint32_t>(frozen_->states.size());
    frozen_->states.push_back({in_port, lookup_in_port, metadata});
    same_metadata.push_back(index);
    return (table + 1u) | kRecircFrozen | index << kRecircShift;
}

RecircState RuleSet::thaw(uint32_t recirc_id, uint32_t packet_in_port) const {
    RecircState state;
    state.table = recirc_table(recirc_id);
    if (!(recirc_id & kRecircFrozen)) {
        state.in_port = state.lookup_in_port = recirc_in_port(recirc_id, packet_in_port);
        return state;
    }
    std::lock_guard guard(frozen_->lock);
    const uint32_t index = recirc_id >> kRecircShift;
    if (index >= frozen_->states.size()) {  // not an id this set made: a pass without frozen state
        state.in_port = state.lookup_in_port = packet_in_port;
        return state;
    }
    state.in_port = frozen_->states[index].in_port;
    state.lookup_in_port = frozen_->states[index].lookup_in_port;
    state.metadata = frozen_->states[index].metadata;
    return state;
}

RuleEntry& RuleSet::add(Rule rule, uint64_t now_ms, uint16_t flags, bool reset_counts) {
    check(rule);
    Classifier& table = *classifier_of(rule.table, rule.match, true);
    uint64_t packets = 0, bytes = 0;
    if (const ClassifierRule* same = table.find_exact(rule.match.value, rule.match.mask, rule.priority)) {
        const RuleEntry& old = entry_of(*same);
        if (!reset_counts) {
            packets = old.packets.load(std::memory_order_relaxed);
            bytes = old.bytes.load(std::memory_order_relaxed);
        }
        const uint32_t old_id = same->id;
        table.remove(old_id);  // the classifier stays: the new rule goes in next
        retire(old_id);
    }
    const uint32_t id = next_id_++;
    auto entry = std::make_unique<RuleEntry>(std::move(rule), id);
    entry->packets.store(packets, std::memory_order_relaxed);
    entry->bytes.store(bytes, std::memory_order_relaxed);
    entry->added_ms = now_ms;
    entry->used_ms.store(now_ms, std::memory_order_relaxed);
    entry->flags = flags;
    RuleEntry& placed = *entries_.emplace(id, std::move(entry)).first->second;
    if (placed.rule.idle_timeout || placed.rule.hard_timeout) timed_.insert(id);
    table.insert(placed.rule.match.value, placed.rule.match.mask, placed.rule.priority, id, &placed);
    return placed;
}

void RuleSet::retire(uint32_t id) {
    auto it = entries_.find(id);
    if (it == entries_.end()) return;
    retired_.push_back(std::move(it->second));
    entries_.erase(it);
    timed_.erase(id);
}

template <typename Fn>
void RuleSet::select(const MatchFilter& filter, bool strict, Fn&& fn) {
    std::vector<uint32_t> chosen;
    for (const auto& [id, entry] : entries_) {
        const Rule& rule = entry->rule;
        if (filter.table && *filter.table != rule.table) continue;
        if ((rule.cookie & filter.cookie_mask) != (filter.cookie & filter.cookie_mask)) continue;
        if (strict) {
            if (!(rule.match == filter.match) || rule.priority != filter.priority.value_or(kDefaultPriority)) continue;
        } else if (!at_least_as_specific(rule.match, filter.match)) {
            continue;
        }
        chosen.push_back(id);
    }
    for (uint32_t id : chosen) fn(*entries_.at(id));
}

size_t RuleSet::remove(const MatchFilter& filter, bool strict) {
    size_t removed = 0;
    select(filter, strict, [&](RuleEntry& entry) {
        unlink(entry.rule.table, entry.rule.match, entry.id);
        retire(entry.id);
        ++removed;
    });
    return removed;
}

bool RuleSet::remove_id(uint32_t id) {
    auto it = entries_.find(id);
    if (it == entries_.end()) return false;
    unlink(it->second->rule.table, it->second->rule.match, id);
    retire(id);
    return true;
}

size_t RuleSet::modify(const Rule& rule, bool any_table, bool strict) {
    check(rule);
    MatchFilter filter;
    filter.match = rule.match;
    if (!any_table) filter.table = rule.table;
    if (strict) filter.priority = rule.priority;
    size_t changed = 0;
    select(filter, strict, [&](RuleEntry& entry) {
        modify_entry(entry, rule.actions, false);
        ++changed;
    });
    return changed;
}

bool RuleSet::modify_id(uint32_t id, const ActionList& actions, bool reset_counts) {
    auto it = entries_.find(id);
    if (it == entries_.end()) return false;
    modify_entry(*it->second, actions, reset_counts);
    return true;
}

const RuleEntry* RuleSet::find_id(uint32_t id) const {
    auto it = entries_.find(id);
    return it == entries_.end() ? nullptr : it->second.get();
}

// The new actions go into a new entry: megaflows may still name the old one
// until they are revalidated.
void RuleSet::modify_entry(RuleEntry& entry, const ActionList& actions, bool reset_counts) {
    Rule updated = entry.rule;
    updated.actions = actions;
    auto fresh = std::make_unique<RuleEntry>(std::move(updated), entry.id);
    if (!reset_counts) {
        fresh->packets.store(entry.packets.load(std::memory_order_relaxed), std::memory_order_relaxed);
        fresh->bytes.store(entry.bytes.load(std::memory_order_relaxed), std::memory_order_relaxed);
    }
    fresh->added_ms = entry.added_ms;
    fresh->used_ms.store(entry.used_ms.load(std::memory_order_relaxed), std::memory_order_relaxed);
    fresh->flags = entry.flags;
    // Same id, same place among equal priorities.
    classifier_of(entry.rule.table, entry.rule.match, true)->modify(entry.id, fresh.get());
    std::unique_ptr<RuleEntry>& slot = entries_.at(entry.id);
    retired_.push_back(std::exchange(slot, std::move(fresh)));
}

RuleChangeResult RuleSet::replace(std::vector<Rule> rules, uint64_t now_ms) {
    for (const Rule& rule : rules) check(rule);
    RuleChangeResult result;
    // The last of several rules with one table, match and priority wins (as
    // adding them one by one would do).
    using Identity = std::tuple<uint8_t, uint16_t, std::string>;
    const auto identity = [](const Rule& rule) {
        std::string bytes(reinterpret_cast<const char*>(&rule.match.value), sizeof(FlowKey));
        bytes.append(reinterpret_cast<const char*>(&rule.match.mask), sizeof(FlowMask));
        bytes.append(reinterpret_cast<const char*>(&rule.match.metadata), sizeof(uint64_t));
        bytes.append(reinterpret_cast<const char*>(&rule.match.metadata_mask), sizeof(uint64_t));
        return Identity{rule.table, rule.priority, std::move(bytes)};
    };
    std::map<Identity, Rule*> wanted;
    for (Rule& rule : rules) wanted[identity(rule)] = &rule;

    std::vector<uint32_t> gone;
    for (const auto& [id, entry] : entries_) {
        auto it = wanted.find(identity(entry->rule));
        if (it == wanted.end()) {
            gone.push_back(id);
        } else if (it->second->actions == entry->rule.actions && it->second->cookie == entry->rule.cookie &&
                   it->second->idle_timeout == entry->rule.idle_timeout &&
                   it->second->hard_timeout == entry->rule.hard_timeout) {
            wanted.erase(it);  // unchanged: keeps its entry, counters and timeouts
        }
    }
    for (uint32_t id : gone) {
        unlink(entries_.at(id)->rule.table, entries_.at(id)->rule.match, id);
        retire(id);
        ++result.removed;
    }
    for (Rule& rule : rules) {  // in file order: it breaks ties between equal priorities
        auto it = wanted.find(identity(rule));
        if (it == wanted.end() || it->second != &rule) continue;
        const bool existed = find_exact(rule.table, rule.match, rule.priority) != nullptr;
        add(std::move(rule), now_ms);
        ++(existed ? result.modified : result.added);
    }
    return result;
}

std::vector<std::unique_ptr<RuleEntry>> RuleSet::take_retired() { return std::exchange(retired_, {}); }

std::string RuleSet::dump(int only_table) const {
    std::ostringstream out;
    for (unsigned t = 0; t < kMaxTables; ++t) {
        if (only_table >= 0 && static_cast<unsigned>(only_table) != t) continue;
        for (const RuleEntry* listed : table_rules(static_cast<uint8_t>(t))) {
            const RuleEntry& entry = *listed;
            out << "n_packets=" << entry.packets.load(std::memory_order_relaxed)
                << ", n_bytes=" << entry.bytes.load(std::memory_order_relaxed) << ", "
                << format_rule(entry.rule, ports_) << "\n";
        }
    }
    return out.str();
}

}  // namespace flowpath
