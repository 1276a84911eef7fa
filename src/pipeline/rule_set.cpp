// The rule tables: adding, selecting (OpenFlow strict and non-strict
// matching), modifying, removing and replacing rules, and dump-flows.
#include <algorithm>
#include <map>
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
    return true;
}
}  // namespace

RuleSet::RuleSet(PortNames ports) : ports_(std::move(ports)) {}

void RuleSet::check(const Rule&) {
    // Nothing to refuse: connection tracking, the last feature rules had
    // and the datapath lacked, runs now. Callers keep checking, so a future
    // limit lands in one place.
}

RuleEntry& RuleSet::add(Rule rule, uint64_t now_ms, uint16_t flags, bool reset_counts) {
    check(rule);
    Classifier& table = tables_.table(rule.table);
    uint64_t packets = 0, bytes = 0;
    if (const ClassifierRule* same = table.find_exact(rule.match.value, rule.match.mask, rule.priority)) {
        const RuleEntry& old = entry_of(*same);
        if (!reset_counts) {
            packets = old.packets.load(std::memory_order_relaxed);
            bytes = old.bytes.load(std::memory_order_relaxed);
        }
        const uint32_t old_id = same->id;
        table.remove(old_id);
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
    table.insert(placed.rule.match.value, placed.rule.match.mask, placed.rule.priority, id, &placed);
    return placed;
}

void RuleSet::retire(uint32_t id) {
    auto it = entries_.find(id);
    if (it == entries_.end()) return;
    retired_.push_back(std::move(it->second));
    entries_.erase(it);
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
        tables_.table(entry.rule.table).remove(entry.id);
        retire(entry.id);
        ++removed;
    });
    return removed;
}

bool RuleSet::remove_id(uint32_t id) {
    auto it = entries_.find(id);
    if (it == entries_.end()) return false;
    tables_.table(it->second->rule.table).remove(id);
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
    tables_.table(entry.rule.table).modify(entry.id, fresh.get());
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
        tables_.table(entries_.at(id)->rule.table).remove(id);
        retire(id);
        ++result.removed;
    }
    for (Rule& rule : rules) {  // in file order: it breaks ties between equal priorities
        auto it = wanted.find(identity(rule));
        if (it == wanted.end() || it->second != &rule) continue;
        const bool existed = tables_.table(rule.table).find_exact(rule.match.value, rule.match.mask, rule.priority);
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
        const Classifier* table = tables_.find_table(t);
        if (!table) continue;
        for (const ClassifierRule* rule : table->rules()) {
            const RuleEntry& entry = entry_of(*rule);
            out << "n_packets=" << entry.packets.load(std::memory_order_relaxed)
                << ", n_bytes=" << entry.bytes.load(std::memory_order_relaxed) << ", "
                << format_rule(entry.rule, ports_) << "\n";
        }
    }
    return out.str();
}

}  // namespace flowpath
