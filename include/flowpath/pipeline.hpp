// The OpenFlow pipeline: from a packet's flow key to the datapath actions
// that forward it, by classifying it against the rule tables (with resubmit
// and goto_table) and applying the rules' actions to a working copy of the
// key, as Open vSwitch's translation does.
//
// The result is a flat list of *datapath actions* (kSetField with the final
// values, kPushVlan, kPopVlan, kOutput) that a worker applies to the packet,
// plus the wildcards: every key bit the result depends on. Any key that agrees
// with the translated one on those bits translates to the same actions, which
// is what makes the result cacheable as a megaflow.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "flowpath/action.hpp"
#include "flowpath/classifier.hpp"
#include "flowpath/flow_key.hpp"
#include "flowpath/rule.hpp"

namespace flowpath {

/// Resubmits nested deeper than this end the translation with a drop (as
/// Open vSwitch's translation depth limit does).
inline constexpr unsigned kMaxResubmitDepth = 64;
/// Total resubmits and table lookups one translation may make.
inline constexpr unsigned kMaxTableLookups = 4096;

/// A rule as the pipeline keeps it: the rule and its counters. Counters are
/// added to by every worker that matches the rule (relaxed atomics).
struct RuleEntry {
    Rule rule;
    uint32_t id = 0;
    std::atomic<uint64_t> packets{0};
    std::atomic<uint64_t> bytes{0};

    RuleEntry(Rule r, uint32_t i) : rule(std::move(r)), id(i) {}
};

/// The rule tables of one datapath. Built before the workers start; lookups
/// from several workers at once are safe (they only read).
class RuleSet {
public:
    explicit RuleSet(PortNames ports);

    /// Adds a rule; a rule with the same table, match and priority replaces
    /// the earlier one (as ovs-ofctl add-flow does).
    void add(Rule rule);

    const PortNames& ports() const { return ports_; }
    const RuleTables& tables() const { return tables_; }
    size_t size() const { return tables_.rule_count(); }

    /// The entry a classifier rule stands for.
    static RuleEntry& entry_of(const ClassifierRule& rule) {
        return *static_cast<RuleEntry*>(const_cast<void*>(rule.payload));
    }

    /// `flowpath-ctl dump-flows [TABLE]`: the rules in rule-file syntax with
    /// their counters, by table, then priority (highest first).
    std::string dump(int table = -1) const;

private:
    PortNames ports_;
    RuleTables tables_;
    std::deque<std::unique_ptr<RuleEntry>> entries_;  // owned here; the classifier points at them
    uint32_t next_id_ = 1;
};

/// Why a translation sends the packet nowhere.
enum class TranslateDrop : uint8_t {
    none,          ///< at least one output
    no_match,      ///< no rule in table 0 or in a goto_table target
    no_output,     ///< the rules ran but output nowhere (drop, empty actions, ...)
    ttl_expired,   ///< dec_ttl on TTL 0 or 1, and nothing was output before
    too_deep,      ///< resubmit depth or lookup budget exceeded
};

/// The most rules one translation records for counting.
inline constexpr unsigned kMaxMatchedRules = 32;

/// The outcome of one translation.
struct Translation {
    ActionList actions;       ///< datapath actions, in order
    FlowMask wildcards{};     ///< key bits the result depends on
    TranslateDrop drop = TranslateDrop::none;
    unsigned matched_count = 0;
    RuleEntry* matched[kMaxMatchedRules];  ///< rules that matched, for counters

    void clear();
    unsigned outputs() const;
};

/// Translates `key` (a packet's parsed key, in_port set) through `rules`.
/// `out` is cleared first; it keeps its capacity, so reusing one Translation
/// per worker allocates only while the action lists grow.
void translate(const RuleSet& rules, const FlowKey& key, Translation& out);

}  // namespace flowpath
