// The OpenFlow pipeline: from a packet's flow key to the datapath actions
// that forward it, by classifying it against the rule tables (with resubmit
// and goto_table) and applying the rules' actions to a working copy of the
// key, as Open vSwitch's translation does.
//
// The result is a flat list of *datapath actions* (kSetField with the final
// values, kPushVlan, kPopVlan, kOutput, and for connection tracking kCt,
// kCtClear and kRecirc) that a worker applies to the packet, plus the
// wildcards: every key bit the result depends on. Any key that agrees with
// the translated one on those bits translates to the same actions, which is
// what makes the result cacheable as a megaflow.
#pragma once

#include <atomic>
#include <cstring>
#include <cstdint>
#include <unordered_map>
#include <unordered_set>
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
/// credited by the revalidator from megaflow statistics (relaxed atomics: the
/// slow-path threads add, dump-flows reads), never by the workers.
struct RuleEntry {
    Rule rule;
    uint32_t id = 0;
    std::atomic<uint64_t> packets{0};
    std::atomic<uint64_t> bytes{0};
    /// Milliseconds (RuleSet's clock) when added, and when last credited
    /// with a packet: the hard and idle timeouts count from them.
    uint64_t added_ms = 0;
    std::atomic<uint64_t> used_ms{0};
    /// OpenFlow flow_mod flags (of::kFlag*: SEND_FLOW_REM, ...) the rule was
    /// added with; 0 for rules from the file and flowpath-ctl.
    uint16_t flags = 0;

    RuleEntry(Rule r, uint32_t i) : rule(std::move(r)), id(i) {}
};

/// What a rule change did.
struct RuleChangeResult {
    size_t added = 0, modified = 0, removed = 0;
};

/// What a pass after a recirculation starts from (RuleSet::thaw).
struct RecircState {
    uint8_t table = 0;      ///< the ct(table=T)'s table
    uint32_t in_port = 0;   ///< the translation's in_port at the ct
    uint64_t metadata = 0;  ///< OpenFlow metadata at the ct
    /// The in_port of the pass's first lookup only: in_port but for a
    /// packet-out's resubmit(P,T) (as Open vSwitch's resubmit, whose port
    /// is the lookup's, not the actions').
    uint32_t lookup_in_port = 0;
};

/// The rule tables of one datapath. Lookups from several threads at once are
/// safe while nobody changes the set; changes need exclusive access (the
/// slow path's LiveRules gives it, docs/slowpath.md). A removed or replaced
/// entry is not freed: it moves to the retired list, because megaflows may
/// still name it until they are revalidated; the owner frees it then.
class RuleSet {
public:
    explicit RuleSet(PortNames ports);
    ~RuleSet();
    RuleSet(RuleSet&&) noexcept;
    RuleSet& operator=(RuleSet&&) noexcept;

    /// Refuses a rule the datapath cannot run (throws ConfigError naming its
    /// place). add() checks too; call it first to check a whole batch. Every
    /// rule the parser accepts runs today: it refuses nothing.
    static void check(const Rule& rule);

    /// Adds a rule; a rule with the same table, match and priority is
    /// replaced and its counters carried over (as ovs-ofctl add-flow does)
    /// unless `reset_counts`. `now_ms` starts its timeouts; `flags` are kept
    /// with it (RuleEntry::flags). Returns the new entry.
    RuleEntry& add(Rule rule, uint64_t now_ms = 0, uint16_t flags = 0, bool reset_counts = false);

    /// `del-flows`: removes the rules `filter` selects. Non-strict (the
    /// default, as ovs-ofctl del-flows): every rule at least as specific as
    /// the filter's match, any priority; strict: exactly that match and
    /// priority. No table in the filter: every table.
    size_t remove(const MatchFilter& filter, bool strict = false);

    /// Removes the rule with this id (timeouts); false when gone already.
    bool remove_id(uint32_t id);

    /// The live entry with this id, null when there is none.
    const RuleEntry* find_id(uint32_t id) const;

    /// Gives the entry with this id `actions`, keeping its id, place among
    /// equal priorities, cookie, timeouts, flags, `added_ms` and (unless
    /// `reset_counts`) counters: an OpenFlow modify of one selected rule.
    /// False when there is no such entry.
    bool modify_id(uint32_t id, const ActionList& actions, bool reset_counts = false);

    /// `mod-flows`: gives the rules that `rule`'s match selects (non-strict,
    /// or strict as above; `any_table`: ignore rule.table) its actions,
    /// keeping their counters. Returns how many changed.
    size_t modify(const Rule& rule, bool any_table, bool strict = false);

    /// `replace-flows`: the set becomes exactly `rules`. A rule present
    /// before and after (same table, match and priority) keeps its counters;
    /// its actions and cookie are taken from the new rule.
    RuleChangeResult replace(std::vector<Rule> rules, uint64_t now_ms = 0);

    /// Entries removed or replaced since the last call: still readable
    /// until the caller frees them.
    std::vector<std::unique_ptr<RuleEntry>> take_retired();

    const PortNames& ports() const { return ports_; }
    size_t size() const { return entries_.size(); }

    /// The best rule of `table` for `key` with OpenFlow metadata `metadata`
    /// (ties among equal priorities: the one added first), or null; ORs into
    /// `wildcards` the key bits the answer depends on (the metadata is no
    /// key bit: the rules that matched before wrote it). Allocation-free.
    const ClassifierRule* lookup(uint8_t table, const FlowKey& key, uint64_t metadata,
                                 FlowMask& wildcards) const;

    /// The live entry of `table` with exactly this match and priority
    /// (OpenFlow add and modify-strict), or null.
    const RuleEntry* find_exact(uint8_t table, const Match& match, uint16_t priority) const;

    /// The live entries of `table`, highest priority first, ties in the
    /// order they were added (dump-flows).
    std::vector<const RuleEntry*> table_rules(uint8_t table) const;

    /// The recirculation id of the pass a ct(table=`table`) starts, with the
    /// translation's `in_port` and `metadata` at that point, for a packet
    /// that came in on `packet_in_port`. Without metadata the id says it
    /// all (recirc_id_for); with metadata it names an entry of this set's
    /// frozen states (made on first use, kept for the set's life: their
    /// number is bounded by the metadata values the rules can write, and
    /// those packet-outs bring). `lookup_in_port` other than `in_port` (a
    /// packet-out's resubmit(P,T)) takes a frozen state too.
    /// 0 when the frozen states are full (kMaxFrozenStates). Thread-safe.
    uint32_t freeze(uint8_t table, uint32_t in_port, uint32_t packet_in_port, uint64_t metadata,
                    uint32_t lookup_in_port) const;

    /// What the pass of `recirc_id` (nonzero) starts from. Thread-safe.
    RecircState thaw(uint32_t recirc_id, uint32_t packet_in_port) const;

    /// Every live entry, in no particular order (revalidation).
    template <typename Fn>
    void for_each(Fn&& fn) const {
        for (const auto& [id, entry] : entries_) fn(*entry);
    }

    /// Every live entry with an idle or hard timeout, in no particular
    /// order: what the timeouts look at every 200 ms, without walking the
    /// rules that have none (a controller's 100,000 permanent rules).
    template <typename Fn>
    void for_each_timed(Fn&& fn) const {
        for (uint32_t id : timed_) fn(*entries_.at(id));
    }

    /// The entry a classifier rule stands for.
    static RuleEntry& entry_of(const ClassifierRule& rule) {
        return *static_cast<RuleEntry*>(const_cast<void*>(rule.payload));
    }

    /// `flowpath-ctl dump-flows [TABLE]`: the rules in rule-file syntax with
    /// their counters, by table, then priority (highest first).
    std::string dump(int table = -1) const;

private:
    /// The rules of one table that match metadata under one mask, one
    /// classifier per masked value: a lookup probes one classifier per mask.
    struct MetadataGroup {
        uint64_t mask = 0;
        std::unordered_map<uint64_t, Classifier> by_value;
    };

    /// The classifier that holds (or would hold) a rule of `table` with
    /// `match`; created when `create`, else null when there is none.
    Classifier* classifier_of(uint8_t table, const Match& match, bool create);
    const Classifier* classifier_of(uint8_t table, const Match& match) const;
    /// Removes rule `id` (of `table`, with `match`) from its classifier,
    /// dropping a metadata classifier left empty.
    void unlink(uint8_t table, const Match& match, uint32_t id);
    void retire(uint32_t id);
    void modify_entry(RuleEntry& entry, const ActionList& actions, bool reset_counts);
    template <typename Fn>
    void select(const MatchFilter& filter, bool strict, Fn&& fn);

    PortNames ports_;
    RuleTables tables_;  // rules without a metadata match
    std::array<std::vector<MetadataGroup>, kMaxTables> metadata_groups_;  // rules with one
    // Frozen states of recirculations with metadata (freeze, thaw).
    struct FrozenStates;
    std::unique_ptr<FrozenStates> frozen_;
    std::unordered_map<uint32_t, std::unique_ptr<RuleEntry>> entries_;  // owned here; the classifier points at them
    std::unordered_set<uint32_t> timed_;  // ids of the entries with a timeout
    std::vector<std::unique_ptr<RuleEntry>> retired_;
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
/// The most table lookups without a match one translation records (table
/// statistics; most translations have none, a table miss has one).
inline constexpr unsigned kMaxMissedLookups = 8;

/// The outcome of one translation.
struct Translation {
    ActionList actions;       ///< datapath actions, in order
    FlowMask wildcards{};     ///< key bits the result depends on
    /// Why the packet goes nowhere once its actions ran: none when an output
    /// or a recirculation takes it. The actions of a drop are only those with
    /// an effect of their own (kCt: a commit, a mark), often none.
    TranslateDrop drop = TranslateDrop::none;
    unsigned matched_count = 0;
    RuleEntry* matched[kMaxMatchedRules];  ///< rules that matched, for counters
    unsigned missed_count = 0;
    uint8_t missed[kMaxMissedLookups];     ///< tables whose lookup found no rule, for table statistics

    void clear();
    unsigned outputs() const;
};

/// A datapath kController, what the translator makes of a rule's
/// `controller` action: `port` the bytes to send at most (the action's
/// max_len), `table` the rule's table, `ct_flags` kController* bits,
/// value[0..8) the rule's cookie, value[8..16) the OpenFlow metadata and
/// `ct_mark` the in_port of the translation at that action (what Open
/// vSwitch 3.1 freezes for a PACKET_IN: set_field to in_port shows, a
/// resubmit's port does not). The worker hands a copy of the packet to the
/// slow path (PacketInUpcall), which sends the PACKET_IN.
inline constexpr uint8_t kControllerTableMiss = 0x01;  ///< reason NO_MATCH (priority 0, catch-all), else ACTION
/// The pass is conntracked at the action (after a ct(table=T), before any
/// ct or ct_clear in it): the PACKET_IN carries the packet's ct fields, as
/// Open vSwitch's (its `conntracked`), else none.
inline constexpr uint8_t kControllerConntracked = 0x02;
/// What a datapath kController freezes of the translation at the action.
struct ControllerState {
    uint64_t cookie = 0;    ///< of the rule whose action it is
    uint64_t metadata = 0;  ///< OpenFlow metadata at the action
    uint32_t in_port = 0;   ///< the translation's in_port at the action
    bool table_miss = false;
    bool conntracked = false;
};
inline Action datapath_controller(uint16_t max_len, uint8_t table, const ControllerState& state) {
    Action a = Action::controller(max_len);
    a.table = table;
    a.ct_flags = static_cast<uint8_t>((state.table_miss ? kControllerTableMiss : 0) |
                                      (state.conntracked ? kControllerConntracked : 0));
    a.ct_mark = state.in_port;
    std::memcpy(a.value, &state.cookie, sizeof state.cookie);
    std::memcpy(a.value + 8, &state.metadata, sizeof state.metadata);
    return a;
}
/// The cookie a datapath kController carries.
inline uint64_t controller_cookie(const Action& a) {
    uint64_t cookie;
    std::memcpy(&cookie, a.value, sizeof cookie);
    return cookie;
}
/// The OpenFlow metadata a datapath kController carries.
inline uint64_t controller_metadata(const Action& a) {
    uint64_t metadata;
    std::memcpy(&metadata, a.value + 8, sizeof metadata);
    return metadata;
}
/// The in_port a datapath kController carries.
inline uint32_t controller_in_port(const Action& a) { return a.ct_mark; }

/// Translates `key` (a packet's parsed key, in_port set) through `rules`.
/// `out` is cleared first; it keeps its capacity, so reusing one Translation
/// per worker allocates only while the action lists grow.
///
/// A key with recirc_id 0 is a packet's first pass and starts in table 0;
/// another recirc_id names the pass a `ct(table=T)` started (see
/// recirc_id_for): it starts in table T, with the in_port the packet had in
/// the translation at that ct, and the key's ct_state, ct_zone and ct_mark
/// are what that ct found (a packet-out's packet may start in such a pass
/// too, with ct fields 0: packet_out_recirc_id). Every translation depends
/// on recirc_id.
void translate(const RuleSet& rules, const FlowKey& key, Translation& out);

// Recirculation ids: what Open vSwitch freezes at a ct(table=T) and thaws
// for the next pass. Without OpenFlow metadata it is encoded in the id
// itself (no table of ids to share between threads): bits 0-7 the table
// plus one, bit 8 set when the translation's in_port then differed from the
// packet's (a resubmit with a port, a set_field to in_port), bits 10-31
// that in_port. With metadata (64 bits, no room) bit 9 is set and bits
// 10-31 index the RuleSet's frozen states (RuleSet::freeze), which hold
// in_port and metadata.
inline constexpr uint32_t kRecircInPortSet = 0x100;
inline constexpr uint32_t kRecircFrozen = 0x200;
inline constexpr unsigned kRecircShift = 10;
/// The most frozen states one RuleSet keeps (22 bits of index).
inline constexpr uint32_t kMaxFrozenStates = 1u << (32 - kRecircShift);

/// The id of the pass that starts in `table` with OpenFlow in_port
/// `in_port` and metadata 0, for a packet that came in on
/// `packet_in_port`. Never 0.
constexpr uint32_t recirc_id_for(uint8_t table, uint32_t in_port, uint32_t packet_in_port) {
    const uint32_t id = table + 1u;
    return in_port == packet_in_port ? id : id | kRecircInPortSet | in_port << kRecircShift;
}
/// The table the pass of `recirc_id` (nonzero) starts in.
constexpr uint8_t recirc_table(uint32_t recirc_id) { return static_cast<uint8_t>((recirc_id & 0xff) - 1); }
/// The in_port the pass of `recirc_id` (without kRecircFrozen) starts with.
constexpr uint32_t recirc_in_port(uint32_t recirc_id, uint32_t packet_in_port) {
    return recirc_id & kRecircInPortSet ? recirc_id >> kRecircShift : packet_in_port;
}

}  // namespace flowpath
