// The rule classifier: tuple space search over one OpenFlow table, with
// wildcard tracking for megaflows.
//
// A Classifier holds rules (value, mask, priority, id, payload) and finds the
// best rule for a full FlowKey. Besides the answer, a lookup reports which key
// bits it had to look at: every bit OR-ed into `wildcards` by lookup() is a
// bit the answer depends on, and no other bit is. The slow path turns that
// into a megaflow: a cache entry that matches every key agreeing with the
// looked-up key on those bits, all of which get the same answer.
//
// Design, invariants and costs: docs/classifier.md.
//
// Threading: a Classifier belongs to one thread (the slow path). Mutations
// (insert/remove/modify/clear) need exclusive access; const members, lookup
// included, only read, so several threads may look up at once as long as no
// one mutates. lookup() never allocates.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "flowpath/flow_key.hpp"

namespace flowpath {

/// One rule as a Classifier stores it. The payload is the caller's (the rule
/// table's Rule, say); the classifier never looks at it.
struct ClassifierRule {
    FlowKey value{};              ///< match value, already ANDed with `mask`
    FlowMask mask{};              ///< bits the rule examines
    uint16_t priority = 0;        ///< higher wins (OpenFlow priority)
    uint32_t id = 0;              ///< the caller's key; unique within one Classifier
    const void* payload = nullptr;
    uint64_t seq = 0;             ///< insertion order in this Classifier; lower wins ties

    /// Whether `key` & mask == value.
    bool matches(const FlowKey& key) const;
};

/// Optional diagnostics of one lookup (tests and benchmarks; costs a little
/// when asked for).
struct LookupTrace {
    unsigned subtables_visited = 0;  ///< subtables the search reached
    unsigned trie_skips = 0;         ///< ... ruled out by a prefix trie alone
    unsigned stage_misses = 0;       ///< ... ruled out before their last stage
    unsigned full_probes = 0;        ///< ... probed in their hash table
    unsigned port_trie_skips = 0;    ///< ... of those, missed and ruled out by their ports trie
    FlowMask visited_masks{};        ///< OR of the masks of the subtables reached
};

/// One OpenFlow table: a tuple-space-search classifier (one hash table per
/// distinct mask, searched in decreasing order of the best rule each holds).
///
/// Among the rules matching a key, the one with the highest priority wins;
/// among equal priorities, the one inserted first (lowest `seq`). Open vSwitch
/// leaves that tie undefined; here it is deterministic. modify() keeps a
/// rule's place in that order.
class Classifier {
public:
    Classifier();
    ~Classifier();
    Classifier(Classifier&&) noexcept;
    Classifier& operator=(Classifier&&) noexcept;
    Classifier(const Classifier&) = delete;
    Classifier& operator=(const Classifier&) = delete;

    /// Adds a rule, in time logarithmic in the rules and masks already held
    /// (amortised; so is remove()). `value` is masked by `mask` on the way in. Returns false
    /// (and changes nothing) when `id` is already in use. Rules with the same
    /// match and priority may coexist; replacing one is the caller's policy.
    bool insert(const FlowKey& value, const FlowMask& mask, uint16_t priority, uint32_t id,
                const void* payload);

    /// Removes the rule `id`; false when there is none.
    bool remove(uint32_t id);

    /// Replaces the payload of rule `id` (OpenFlow modify: same match and
    /// priority, new actions); false when there is none.
    bool modify(uint32_t id, const void* payload);

    /// Removes every rule.
    void clear();

    /// The rule `id`, or null.
    const ClassifierRule* find(uint32_t id) const;

    /// The first-inserted rule with exactly this match (value taken under
    /// `mask`) and priority, or null (for OpenFlow add/modify-strict).
    const ClassifierRule* find_exact(const FlowKey& value, const FlowMask& mask,
                                     uint16_t priority) const;

    /// The best rule for `key`, or null. ORs into `wildcards` the key bits
    /// the answer depends on: every key K' with (K' & wildcards) ==
    /// (key & wildcards) gets the same answer. Allocation-free.
    const ClassifierRule* lookup(const FlowKey& key, FlowMask& wildcards,
                                 LookupTrace* trace = nullptr) const;

    /// Same answer as lookup(), by a linear scan of every rule (the reference
    /// the tests compare against; no wildcards).
    const ClassifierRule* reference_lookup(const FlowKey& key) const;

    size_t rule_count() const;
    size_t subtable_count() const;

    /// Bumped by every change; lets caches tell they were built from an older
    /// rule set.
    uint64_t version() const;

    /// All rules, highest priority first, ties in insertion order (dump-flows).
    /// Pointers stay valid until the rule is removed.
    std::vector<const ClassifierRule*> rules() const;

    /// Renumbers `seq` densely from 0, keeping every rule's place in the
    /// order. Done automatically before seq could overflow (after 2^48
    /// inserts); public so that it can be tested.
    void compact_sequence_numbers();

private:
    struct Impl;  // src/classifier/classifier_impl.hpp
    std::unique_ptr<Impl> impl_;
};

/// Number of OpenFlow tables: ids 0..253.
inline constexpr unsigned kMaxTables = 254;

/// The rule tables of one pipeline; a table exists once something asks for it
/// by table(). Resubmit/goto logic is the pipeline's.
class RuleTables {
public:
    /// Table `id`, created empty on first use. Throws std::out_of_range when
    /// id >= kMaxTables.
    Classifier& table(unsigned id);

    /// Table `id` if it was ever created, else null (also for id out of range).
    const Classifier* find_table(unsigned id) const;

    /// Removes rule `rule_id` from table `id` (O(log) in the table's rules
    /// and masks); false when there is no such rule or table.
    bool remove(unsigned id, uint32_t rule_id);

    /// lookup() in table `id`; null when the table does not exist.
    const ClassifierRule* lookup(unsigned id, const FlowKey& key, FlowMask& wildcards) const;

    size_t rule_count() const;

    /// Changes whenever any table changes (sum of table versions).
    uint64_t version() const;

    /// Removes every rule of every table.
    void clear();

private:
    std::array<std::unique_ptr<Classifier>, kMaxTables> tables_;
};

}  // namespace flowpath
