// Classifier internals against brute force, and randomized properties of
// the classifier against its linear reference: same answers, and wildcards
// that satisfy the megaflow property.
#include <gtest/gtest.h>

#include <algorithm>
#include <bitset>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "classifier_test_util.hpp"
#include "flowpath/classifier.hpp"
// White-box: the trie and hash set are internal.
#include "../../src/classifier/classifier_impl.hpp"

namespace flowpath {
namespace {

using namespace classifier_test;

// --- Internals against brute force ---

TEST(ClassifierInternals, HashCountSetMatchesMultiset) {
    std::mt19937 rng(7);
    classifier_detail::HashCountSet set;
    std::multiset<uint32_t> model;
    for (int step = 0; step < 20000; ++step) {
        // Few distinct values in a few home slots: long probe chains.
        const uint32_t h = (rng() % 64) * 1024 + rng() % 4;
        if (rng() % 3 != 0 || model.empty()) {
            set.add(h);
            model.insert(h);
        } else if (auto it = model.find(h); it != model.end()) {
            set.remove(h);
            model.erase(it);
        }
        if (step % 97 == 0) {
            for (uint32_t probe = 0; probe < 64 * 1024; probe += 1023) {
                ASSERT_EQ(set.contains(probe), model.contains(probe));
            }
            for (uint32_t x : model) ASSERT_TRUE(set.contains(x));
        }
    }
}

TEST(ClassifierInternals, PrefixTrieMatchesBruteForce) {
    using classifier_detail::Bits128;
    std::mt19937_64 rng(11);
    for (unsigned width : {32u, 128u}) {
        classifier_detail::PrefixTrie trie;
        std::vector<std::pair<Bits128, unsigned>> stored;
        auto bit = [](const Bits128& b, unsigned i) {
            return i < 64 ? (b.hi >> (63 - i)) & 1 : (b.lo >> (127 - i)) & 1;
        };
        auto common = [&](const Bits128& a, const Bits128& b, unsigned limit) {
            unsigned n = 0;
            while (n < limit && bit(a, n) == bit(b, n)) ++n;
            return n;
        };
        auto random_bits = [&] {
            // Values near each other so prefixes share paths.
            Bits128 b{(rng() % 4) << 62 | (rng() % 8) << 40 | (rng() & 0xFF) << 24, width == 128 ? rng() % 4 : 0};
            if (width == 32) b.hi &= ~uint64_t{0} << 32;
            return b;
        };
        for (int step = 0; step < 3000; ++step) {
            if (stored.empty() || rng() % 3 != 0) {
                const unsigned length = static_cast<unsigned>(rng() % (width + 1));
                Bits128 p = random_bits();
                // Stored prefixes are zero beyond their length.
                for (unsigned i = length; i < 128; ++i) {
                    if (i < 64) p.hi &= ~(uint64_t{1} << (63 - i));
                    else p.lo &= ~(uint64_t{1} << (127 - i));
                }
                trie.insert(p, length);
                stored.emplace_back(p, length);
            } else {
                const size_t i = rng() % stored.size();
                trie.remove(stored[i].first, stored[i].second);
                stored.erase(stored.begin() + static_cast<ptrdiff_t>(i));
            }
            const Bits128 key = random_bits();
            const classifier_detail::TrieLookup result = trie.lookup(key, width);
            unsigned deepest = 0;  // deepest depth some stored prefix follows the key to
            std::bitset<129> lengths;
            for (const auto& [p, length] : stored) {
                const unsigned shared = common(p, key, length);
                deepest = std::max(deepest, shared);
                if (shared == length) lengths.set(length);
            }
            // The bit after `deepest` decides only if a prefix that follows
            // the key that far goes on beyond it (it leaves the key there).
            bool goes_on = false;
            for (const auto& [p, length] : stored) goes_on |= common(p, key, length) == deepest && length > deepest;
            ASSERT_EQ(result.match_lengths, lengths) << "step " << step;
            ASSERT_EQ(result.decisive_bits, std::min(deepest + (goes_on ? 1 : 0), width)) << "step " << step;
        }
        for (const auto& [p, length] : stored) trie.remove(p, length);
        EXPECT_TRUE(trie.empty());
    }
}

// --- Randomized properties against the reference ---

/// Generates rules and keys over several fields from small value pools, so
/// that keys often hit rules and rules often overlap.
class RuleGenerator {
public:
    /// With `n_masks` > 0, rules share that many masks (as real tables do:
    /// many rules per subtable); with 0, every rule draws its own mask.
    RuleGenerator(uint32_t seed, unsigned max_priority, unsigned n_masks = 0)
        : rng_(seed), max_priority_(max_priority) {
        for (unsigned i = 0; i < n_masks; ++i) masks_.push_back(free_rule().mask);
    }

    struct Rule {
        FlowKey value{};
        FlowMask mask{};
        uint16_t priority = 0;
    };

    Rule rule() {
        if (masks_.empty()) return free_rule();
        Rule r;
        r.mask = masks_[uniform(masks_.size())];
        r.value = mix(key(), r.mask, FlowKey{});
        r.priority = static_cast<uint16_t>(uniform(max_priority_ + 1));
        return r;
    }

    /// A rule over at least three fields (fewer would make nearly every key
    /// hit some near-catch-all rule).
    Rule free_rule() {
        Rule r;
        for (unsigned fields = 0; fields < 3;) {
            r = Rule{};
            fields = 0;
            FlowKey& v = r.value;
            FlowMask& m = r.mask;
            if (chance(30)) fields += exact(m.in_port, v.in_port, 1 + uniform(4));
            if (chance(70)) fields += exact(m.dl_type, v.dl_type, htons(chance(80) ? 0x0800 : 0x86DD));
            if (chance(60)) fields += prefix32(m.nw_src, v.nw_src);
            if (chance(60)) fields += prefix32(m.nw_dst, v.nw_dst);
            if (chance(40)) fields += exact(m.nw_proto, v.nw_proto, chance(50) ? 6 : 17);
            if (chance(40)) fields += port(m.tp_src, v.tp_src);
            if (chance(40)) fields += port(m.tp_dst, v.tp_dst);
            if (chance(10)) fields += partial(m.tcp_flags, v.tcp_flags, 0x0FFF);
            if (chance(10)) fields += partial(m.ct_state, v.ct_state, 0x3F);
            if (chance(10)) fields += exact(m.vlans[0].tci, v.vlans[0].tci, htons(kVlanPresent | uniform(3)));
            if (chance(15)) fields += prefix128(m.ipv6_dst, v.ipv6_dst);
        }
        r.priority = static_cast<uint16_t>(uniform(max_priority_ + 1));
        return r;
    }

    /// A key from the pools, independent of any rule.
    FlowKey key() {
        FlowKey k{};
        k.in_port = 1 + uniform(5);
        k.dl_type = htons(chance(80) ? 0x0800 : chance(50) ? 0x86DD : 0x0806);
        k.nw_src = address();
        k.nw_dst = address();
        k.nw_proto = chance(45) ? 6 : chance(80) ? 17 : 1;
        k.tp_src = port_value();
        k.tp_dst = port_value();
        k.tcp_flags = static_cast<uint16_t>(uniform(0x1000));
        k.ct_state = static_cast<uint8_t>(uniform(0x40));
        k.vlans[0].tci = chance(50) ? 0 : htons(kVlanPresent | uniform(4));
        address128(k.ipv6_dst);
        return k;
    }

    /// A key that matches `r` unless some bits get flipped.
    FlowKey key_near(const Rule& r) {
        const FlowKey pool = key();
        FlowKey k = mix(r.value, r.mask, pool);
        if (chance(20)) flow_words(k)[uniform(kFlowWords)] ^= uint64_t{1} << uniform(64);
        return k;
    }

    /// `base` on the bits of `keep`, `other` elsewhere.
    static FlowKey mix(const FlowKey& base, const FlowMask& keep, const FlowKey& other) {
        FlowKey k;
        for (size_t i = 0; i < kFlowWords; ++i) {
            flow_words(k)[i] = (flow_words(base)[i] & flow_words(keep)[i]) | (flow_words(other)[i] & ~flow_words(keep)[i]);
        }
        return k;
    }

    FlowKey random_bytes() {
        FlowKey k;
        for (size_t i = 0; i < kFlowWords; ++i) flow_words(k)[i] = rng_();
        return k;
    }

    unsigned uniform(uint64_t n) { return static_cast<unsigned>(rng_() % n); }
    bool chance(unsigned percent) { return uniform(100) < percent; }

private:
    // Each field setter returns whether it now restricts the field.
    template <class T>
    bool exact(T& mask, T& value, uint64_t v) {
        mask = static_cast<T>(~T{0});
        value = static_cast<T>(v);
        return true;
    }
    template <class T>
    bool partial(T& mask, T& value, uint64_t bits) {
        mask = static_cast<T>(rng_() & bits);
        value = static_cast<T>(rng_() & mask);
        return mask != 0;
    }
    uint32_t address() {
        static const uint32_t bases[] = {ipv4(10, 0, 0, 0), ipv4(10, 1, 0, 0), ipv4(192, 168, 0, 0),
                                         ipv4(172, 16, 0, 0)};
        return bases[uniform(4)] | htonl(uniform(4) << 8 | uniform(8));
    }
    bool prefix32(uint32_t& mask, uint32_t& value) {
        static const unsigned lengths[] = {8, 16, 24, 32};
        const unsigned length = chance(60) ? lengths[uniform(4)] : uniform(33);
        mask = prefix_mask(length);
        value = address() & mask;
        return length != 0;
    }
    void address128(uint8_t* bytes) {
        bytes[0] = 0x20;
        bytes[1] = static_cast<uint8_t>(uniform(2));
        bytes[7] = static_cast<uint8_t>(uniform(4));
        bytes[15] = static_cast<uint8_t>(uniform(4));
    }
    bool prefix128(uint8_t* mask, uint8_t* value) {
        const unsigned length = uniform(129);
        address128(value);
        for (unsigned i = 0; i < 16; ++i) {
            const unsigned bits = length > i * 8 ? std::min(8u, length - i * 8) : 0;
            mask[i] = static_cast<uint8_t>(0xFF00 >> bits);
            value[i] &= mask[i];
        }
        return length != 0;
    }
    uint16_t port_value() {
        static const uint16_t ports[] = {80, 443, 53, 1000, 0x1234};
        return htons(chance(80) ? ports[uniform(5)] : static_cast<uint16_t>(uniform(65536)));
    }
    bool port(uint16_t& mask, uint16_t& value) {
        if (chance(70)) {
            mask = 0xFFFF;
            value = port_value();
        } else {
            mask = static_cast<uint16_t>(rng_());  // arbitrary bit mask
            value = port_value() & mask;
        }
        return mask != 0;
    }

    std::mt19937_64 rng_;
    unsigned max_priority_;
    std::vector<FlowMask> masks_;
};

struct PropertyStats {
    uint64_t narrow_bits = 0;
    uint64_t coarse_bits = 0;
    uint64_t hits = 0;
    uint64_t lookups = 0;
};

/// Union of the masks of every subtable the search may reach for a lookup
/// whose answer is `result`: those holding a rule at least as good as it
/// (computed from the rule list, independently of the classifier's order).
FlowMask reachable_masks(const Classifier& c, const ClassifierRule* result) {
    FlowMask all{};
    for (const ClassifierRule* r : c.rules()) {
        const bool at_least_as_good =
            !result || r->priority > result->priority || (r->priority == result->priority && r->seq <= result->seq);
        if (!at_least_as_good) continue;
        for (size_t i = 0; i < kFlowWords; ++i) flow_words(all)[i] |= flow_words(r->mask)[i];
    }
    return all;
}

void check_keys(const Classifier& c, RuleGenerator& gen, const std::vector<RuleGenerator::Rule>& live,
                unsigned n_keys, PropertyStats& stats) {
    FlowMask any_rule_mask{};
    for (const RuleGenerator::Rule& r : live) {
        for (size_t i = 0; i < kFlowWords; ++i) flow_words(any_rule_mask)[i] |= flow_words(r.mask)[i];
    }
    for (unsigned k = 0; k < n_keys; ++k) {
        const FlowKey key = live.empty() || gen.chance(30) ? gen.key() : gen.key_near(live[gen.uniform(live.size())]);
        FlowMask wc{};
        LookupTrace trace;
        const ClassifierRule* got = c.lookup(key, wc, &trace);
        const ClassifierRule* want = c.reference_lookup(key);
        ASSERT_EQ(got, want) << "key " << k;
        ++stats.lookups;
        stats.hits += got != nullptr;

        // (c) narrowness: only bits of subtables the search reached.
        ASSERT_TRUE(subset(wc, trace.visited_masks)) << "key " << k;
        ASSERT_TRUE(subset(wc, reachable_masks(c, got))) << "key " << k;
        stats.narrow_bits += popcount(wc);
        stats.coarse_bits += popcount(trace.visited_masks);

        // (b) megaflow property: keys agreeing on the wildcards get the same
        // answer, both from the classifier and from the reference.
        for (unsigned j = 0; j < 12; ++j) {
            const FlowKey other = j % 3 == 0 ? gen.random_bytes()
                                  : j % 3 == 1 || live.empty() ? gen.key()
                                               : gen.key_near(live[gen.uniform(live.size())]);
            const FlowKey variant = RuleGenerator::mix(key, wc, other);
            FlowMask unused{};
            ASSERT_EQ(c.reference_lookup(variant), got) << "key " << k << " variant " << j;
            ASSERT_EQ(c.lookup(variant, unused), got) << "key " << k << " variant " << j;
        }
        // The nearest keys: one bit flipped that some rule looks at but the
        // wildcards left out.
        std::vector<unsigned> flippable;
        for (unsigned bit = 0; bit < kFlowWords * 64; ++bit) {
            const uint64_t b = uint64_t{1} << (bit % 64);
            if ((flow_words(any_rule_mask)[bit / 64] & b) && !(flow_words(wc)[bit / 64] & b)) flippable.push_back(bit);
        }
        for (unsigned j = 0; j < 8 && !flippable.empty(); ++j) {
            const unsigned bit = flippable[gen.uniform(flippable.size())];
            FlowKey variant = key;
            flow_words(variant)[bit / 64] ^= uint64_t{1} << (bit % 64);
            FlowMask unused{};
            ASSERT_EQ(c.reference_lookup(variant), got) << "key " << k << " flipped bit " << bit;
            ASSERT_EQ(c.lookup(variant, unused), got) << "key " << k << " flipped bit " << bit;
        }
    }
}

struct PropertyCase {
    uint32_t seed;
    unsigned n_rules;
    unsigned max_priority;  // small: many ties
    unsigned n_masks;       // 0: a fresh mask per rule
};

class ClassifierProperty : public ::testing::TestWithParam<PropertyCase> {};

TEST_P(ClassifierProperty, MatchesReferenceAndWildcardsAreSound) {
    const PropertyCase& pc = GetParam();
    RuleGenerator gen(pc.seed, pc.max_priority, pc.n_masks);
    Classifier c;
    std::map<uint32_t, RuleGenerator::Rule> live_by_id;
    uint32_t next_id = 0;
    auto live_rules = [&] {
        std::vector<RuleGenerator::Rule> v;
        for (const auto& [id, r] : live_by_id) v.push_back(r);
        return v;
    };
    for (unsigned i = 0; i < pc.n_rules; ++i) {
        const RuleGenerator::Rule r = gen.rule();
        ASSERT_TRUE(c.insert(r.value, r.mask, r.priority, next_id, nullptr));
        live_by_id[next_id++] = r;
    }
    PropertyStats stats;
    check_keys(c, gen, live_rules(), 300, stats);

    // Churn: remove a third, modify some, add new ones, check again.
    for (unsigned round = 0; round < 3; ++round) {
        std::vector<uint32_t> ids;
        for (const auto& [id, r] : live_by_id) ids.push_back(id);
        for (uint32_t id : ids) {
            if (gen.chance(33)) {
                ASSERT_TRUE(c.remove(id));
                live_by_id.erase(id);
            } else if (gen.chance(10)) {
                ASSERT_TRUE(c.modify(id, tag(id)));
            }
        }
        for (unsigned i = 0; i < pc.n_rules / 3; ++i) {
            const RuleGenerator::Rule r = gen.rule();
            ASSERT_TRUE(c.insert(r.value, r.mask, r.priority, next_id, nullptr));
            live_by_id[next_id++] = r;
        }
        ASSERT_EQ(c.rule_count(), live_by_id.size());
        check_keys(c, gen, live_rules(), 150, stats);
    }
    // The generator must produce both hits and misses, or the test is weak.
    EXPECT_GT(stats.hits, stats.lookups / 10);
    EXPECT_LT(stats.hits, stats.lookups);
    // Staged lookup and tries must save bits over un-wildcarding whole masks.
    EXPECT_LT(stats.narrow_bits, stats.coarse_bits);
    std::printf("seed %u: %llu lookups, %llu hits, %u subtables, avg wildcard bits %.1f (whole masks %.1f)\n",
                pc.seed, static_cast<unsigned long long>(stats.lookups), static_cast<unsigned long long>(stats.hits),
                static_cast<unsigned>(c.subtable_count()), double(stats.narrow_bits) / double(stats.lookups),
                double(stats.coarse_bits) / double(stats.lookups));

    // Removing everything leaves an empty classifier.
    for (const auto& [id, r] : live_by_id) ASSERT_TRUE(c.remove(id));
    EXPECT_EQ(c.subtable_count(), 0u);
    FlowMask wc{};
    EXPECT_EQ(c.lookup(gen.key(), wc), nullptr);
    EXPECT_TRUE(is_zero(wc));
}

INSTANTIATE_TEST_SUITE_P(Seeds, ClassifierProperty,
                         ::testing::Values(PropertyCase{1, 20, 65535, 0}, PropertyCase{2, 100, 65535, 0},
                                           PropertyCase{3, 400, 65535, 0}, PropertyCase{4, 200, 3, 0},
                                           PropertyCase{5, 60, 0, 0}, PropertyCase{6, 800, 1000, 0},
                                           PropertyCase{7, 300, 65535, 8}, PropertyCase{8, 300, 2, 6},
                                           PropertyCase{9, 100, 0, 4}, PropertyCase{10, 1000, 100, 24}));

// Live rule changes: random adds and removes over several tables (with
// RuleTables::remove, and with masks coming and going), every answer
// checked against a plain list per table: highest priority, then the
// earliest added; the subtable count against the distinct masks listed.
TEST(RuleTablesProperty, AddsAndRemovesAgainstPlainLists) {
    struct Listed {
        uint32_t id;
        RuleGenerator::Rule rule;
    };
    constexpr unsigned kTables = 3;
    for (uint32_t seed = 1; seed <= 4; ++seed) {
        RuleGenerator gen(seed, seed % 2 ? 65535 : 3, seed <= 2 ? 0 : 12);
        RuleTables tables;
        std::vector<Listed> lists[kTables];  // in order of addition
        uint32_t next_id = 0;
        auto listed_best = [&](unsigned t, const FlowKey& key) -> int64_t {
            const Listed* best = nullptr;
            for (const Listed& l : lists[t]) {
                bool hit = true;
                for (size_t w = 0; w < kFlowWords; ++w) {
                    hit &= (flow_words(key)[w] & flow_words(l.rule.mask)[w]) == flow_words(l.rule.value)[w];
                }
                if (hit && (!best || l.rule.priority > best->rule.priority)) best = &l;
            }
            return best ? int64_t{best->id} : -1;
        };
        for (unsigned op = 0; op < 3000; ++op) {
            const unsigned t = gen.uniform(kTables);
            std::vector<Listed>& list = lists[t];
            if (list.empty() || gen.chance(55)) {
                const RuleGenerator::Rule r = gen.rule();
                ASSERT_TRUE(tables.table(t).insert(r.value, r.mask, r.priority, next_id, nullptr));
                list.push_back({next_id++, r});
            } else {
                const size_t i = gen.uniform(list.size());
                ASSERT_TRUE(tables.remove(t, list[i].id));
                ASSERT_FALSE(tables.remove(t, list[i].id));
                list.erase(list.begin() + static_cast<ptrdiff_t>(i));
            }
            if (op % 100 != 99) continue;
            size_t total = 0;
            for (unsigned u = 0; u < kTables; ++u) {
                total += lists[u].size();
                std::set<std::vector<uint64_t>> masks;
                for (const Listed& l : lists[u]) {
                    masks.insert({flow_words(l.rule.mask), flow_words(l.rule.mask) + kFlowWords});
                }
                const Classifier* c = tables.find_table(u);
                ASSERT_EQ(c ? c->subtable_count() : 0u, masks.size());
                for (unsigned k = 0; k < 100; ++k) {
                    const FlowKey key = lists[u].empty() || gen.chance(30)
                                            ? gen.key()
                                            : gen.key_near(lists[u][gen.uniform(lists[u].size())].rule);
                    FlowMask wc{};
                    const ClassifierRule* got = tables.lookup(u, key, wc);
                    ASSERT_EQ(got ? int64_t{got->id} : -1, listed_best(u, key)) << "seed " << seed << " op " << op;
                }
            }
            ASSERT_EQ(tables.rule_count(), total);
        }
    }
    EXPECT_FALSE(RuleTables().remove(0, 1));
    EXPECT_FALSE(RuleTables().remove(kMaxTables, 1));
}

}  // namespace
}  // namespace flowpath
