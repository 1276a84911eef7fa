// The signature cache against the megaflow cache's linear scan (random
// masks, keys and removals), and the mask limit against a tuple-space
// explosion: a bounded number of subtables, and every packet still gets
// the translation it would get alone.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "flowpath/cache.hpp"
#include "flowpath/rule.hpp"
#include "flowpath/slowpath.hpp"

using namespace flowpath;

namespace {

uint32_t prefix(unsigned length) { return length == 0 ? 0 : htonl(~uint32_t{0} << (32 - length)); }

FlowMask random_mask(std::mt19937& rng) {
    FlowMask m{};
    m.dl_type = 0xffff;
    m.nw_src = prefix(rng() % 33);
    m.nw_dst = prefix(rng() % 33);
    if (rng() % 2) m.nw_proto = 0xff;
    if (rng() % 2) m.tp_src = 0xffff;
    if (rng() % 3 == 0) m.tp_dst = 0xffff;
    return m;
}

// Keys from a small space, so that megaflows are hit, overlap and repeat.
FlowKey random_key(std::mt19937& rng) {
    FlowKey k{};
    k.in_port = 1 + rng() % 2;
    k.dl_type = htons(0x0800);
    k.nw_src = htonl(0x0a000000u | (rng() % 4) << 30 | (rng() % 8));
    k.nw_dst = htonl(0x0a000000u | (rng() % 16));
    k.nw_proto = rng() % 2 ? 6 : 17;
    k.tp_src = htons(static_cast<uint16_t>(rng() % 8));
    k.tp_dst = htons(static_cast<uint16_t>(rng() % 4));
    return k;
}

struct SignatureCase {
    uint32_t signature_entries;
    uint32_t insert_inverse_probability;
};

class SignatureCacheAgainstLinearScan : public ::testing::TestWithParam<SignatureCase> {};

// Every packet the FlowCache answers lies inside the megaflow it names, and
// it answers exactly the packets the linear scan finds a megaflow for,
// while megaflows come and go under the signature cache's feet (its entries
// go stale, slots are reused by other megaflows).
TEST_P(SignatureCacheAgainstLinearScan, AnswersExactlyWhatTheScanFinds) {
    const SignatureCase c = GetParam();
    Translation t;
    t.clear();
    t.actions.push_back(Action::output(2));
    for (uint32_t seed = 1; seed <= 6; ++seed) {
        std::mt19937 rng(seed);
        std::vector<FlowMask> masks;
        for (int i = 0; i < 12; ++i) masks.push_back(random_mask(rng));
        // A 2-entry exact cache: almost everything goes past it.
        FlowCache cache(2, 4096, 1, c.signature_entries, c.insert_inverse_probability);
        MegaflowCache& megaflows = cache.megaflows();
        uint64_t packets = 0;
        for (unsigned round = 0; round < 400; ++round) {
            for (unsigned n = rng() % 4; n; --n) {  // installs
                const FlowKey key = random_key(rng);
                if (megaflows.lookup(key) == kNoFlow) megaflows.insert(key, masks[rng() % masks.size()], t, round);
            }
            if (megaflows.size() && rng() % 3 == 0) {  // removals: stale signatures, reused slots
                for (unsigned n = 1 + rng() % 3; n; --n) {
                    const uint32_t slot = rng() % megaflows.slot_limit();
                    if (megaflows.flow(slot).live) megaflows.remove(slot);
                }
            }
            const unsigned count = 1 + rng() % 32;
            FlowKey keys[32];
            Miniflow flows[32];
            for (unsigned i = 0; i < count; ++i) {
                keys[i] = random_key(rng);
                flows[i] = miniflow_from_key(keys[i]);
            }
            uint32_t slots[32];
            const uint64_t missed = cache.classify_burst(flows, count, round, slots);
            packets += count;
            for (unsigned i = 0; i < count; ++i) {
                const std::string where = "seed " + std::to_string(seed) + " round " + std::to_string(round) +
                                          " packet " + std::to_string(i);
                const bool found_by_scan = megaflows.reference_lookup(keys[i]) != kNoFlow;
                ASSERT_EQ(!(missed >> i & 1), found_by_scan) << where;
                if (found_by_scan) { ASSERT_TRUE(megaflows.matches(slots[i], keys[i])) << where; }
            }
        }
        const FlowCacheCounters& n = cache.counters();
        EXPECT_EQ(n.exact_hits + n.megaflow_hits + n.misses, packets);
        if (c.signature_entries >= 160) {  // one bucket for 64k keys may never hit: correct is enough
            EXPECT_GT(n.signature_hits, 0u);
        } else if (c.signature_entries) {
        } else {
            EXPECT_EQ(n.signature_hits, 0u);
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Sizes, SignatureCacheAgainstLinearScan,
                         ::testing::Values(SignatureCase{0, 1},         // off
                                           SignatureCase{10, 1},        // one bucket: constant replacement
                                           SignatureCase{160, 1},       // small: some replacement
                                           SignatureCase{1u << 16, 1},  // roomy
                                           SignatureCase{1u << 16, 4}));  // sampled insertion

// The exact cache's bypass: with many more flows than exact entries the
// FlowCache stops probing it (all but one burst in kExactProbeEvery), with
// a few flows again it probes every burst; in both, every packet's answer
// is one the linear scan agrees with (a megaflow it lies inside, and an
// answer exactly when a megaflow covers it).
TEST(ExactCacheBypass, BypassedUnderManyFlowsResumedUnderFewAndNoFateChanges) {
    Translation t;
    t.clear();
    t.actions.push_back(Action::output(2));
    std::mt19937 rng(7);
    // Masks exact on nw_src (every key its own megaflow) and random
    // elsewhere: six subtables.
    std::vector<FlowMask> masks;
    for (int i = 0; i < 6; ++i) {
        masks.push_back(random_mask(rng));
        masks.back().nw_src = 0xffffffff;
    }
    FlowCache cache(64, 8192, 1, 1u << 16, 1);
    MegaflowCache& megaflows = cache.megaflows();
    // 2,000 keys, a megaflow for nine in ten; the tenth stays a miss.
    std::vector<FlowKey> keys;
    for (uint32_t n = 0; n < 2000; ++n) {
        FlowKey k{};
        k.in_port = 1;
        k.dl_type = htons(0x0800);
        k.nw_src = htonl(0x0a000000u | n);
        k.nw_dst = htonl(0x0b000000u | (n * 7919) % 4096);
        k.nw_proto = 17;
        k.tp_src = htons(static_cast<uint16_t>(n % 1000));
        k.tp_dst = htons(static_cast<uint16_t>(53));
        keys.push_back(k);
        if (n % 10 != 0) megaflows.insert(k, masks[rng() % masks.size()], t, 0);
    }
    uint64_t packets = 0;
    // `bursts` bursts of 32 keys from the first `flow_count`; the linear
    // scan checks every packet of one burst in `check_every`.
    const auto run = [&](unsigned bursts, unsigned flow_count, unsigned check_every) {
        for (unsigned b = 0; b < bursts; ++b) {
            FlowKey burst[32];
            Miniflow flows[32];
            for (unsigned i = 0; i < 32; ++i) {
                burst[i] = keys[rng() % flow_count];
                flows[i] = miniflow_from_key(burst[i]);
            }
            uint32_t slots[32];
            const uint64_t missed = cache.classify_burst(flows, 32, b, slots);
            packets += 32;
            if (b % check_every != 0) continue;
            for (unsigned i = 0; i < 32; ++i) {
                const bool found_by_scan = megaflows.reference_lookup(burst[i]) != kNoFlow;
                ASSERT_EQ(!(missed >> i & 1), found_by_scan) << "burst " << b << " packet " << i;
                if (found_by_scan) { ASSERT_TRUE(megaflows.matches(slots[i], burst[i])) << "burst " << b; }
            }
        }
    };
    EXPECT_FALSE(cache.exact_bypassed());
    run(600, 2000, 3);  // 2,000 flows: a 64-entry exact cache hardly hits
    EXPECT_TRUE(cache.exact_bypassed());
    const FlowCacheCounters many = cache.counters();
    EXPECT_GT(many.exact_skipped, 0u);
    EXPECT_GT(many.signature_hits, 0u);
    EXPECT_GT(many.misses, 0u);
    // 8 flows: the probing bursts hit; within two windows of probes
    // (kExactProbeEvery * 2 * kExactWindow / 32 bursts) the bypass ends.
    run(FlowCache::kExactProbeEvery * 2 * FlowCache::kExactWindow / 32 + 100, 8, 16);
    EXPECT_FALSE(cache.exact_bypassed());
    const FlowCacheCounters& few = cache.counters();
    EXPECT_GT(few.exact_hits - many.exact_hits, 0u);
    EXPECT_EQ(few.exact_hits + few.megaflow_hits + few.misses, packets);
    EXPECT_EQ(megaflows.size(), 1800u);
}

// Without a signature cache there is nothing to bypass to.
TEST(ExactCacheBypass, NeverWithoutASignatureCache) {
    Translation t;
    t.clear();
    t.actions.push_back(Action::output(2));
    FlowCache cache(2, 8192, 1, 0, 1);
    FlowMask mask{};
    mask.dl_type = 0xffff;
    mask.nw_src = 0xffffffff;
    for (unsigned b = 0; b < 2000; ++b) {
        FlowKey keys[32];
        Miniflow flows[32];
        for (unsigned i = 0; i < 32; ++i) {
            keys[i] = FlowKey{};
            keys[i].in_port = 1;
            keys[i].dl_type = htons(0x0800);
            keys[i].nw_src = htonl(0x0a000000u | ((b * 32 + i) % 5000));
            if (cache.megaflows().lookup(keys[i]) == kNoFlow) cache.megaflows().insert(keys[i], mask, t, 0);
            flows[i] = miniflow_from_key(keys[i]);
        }
        uint32_t slots[32];
        EXPECT_EQ(cache.classify_burst(flows, 32, b, slots), 0u);
    }
    EXPECT_FALSE(cache.exact_bypassed());
    EXPECT_EQ(cache.counters().exact_skipped, 0u);
}

TEST(SignatureCache, SizeAndMemory) {
    const SignatureCache off(0);
    EXPECT_FALSE(off.enabled());
    EXPECT_EQ(off.memory_bytes(), 0u);
    const SignatureCache big(kDefaultSignatureEntries);
    EXPECT_GE(big.entries(), 1000000u);
    EXPECT_EQ(big.memory_bytes(), uint64_t{big.entries()} / SignatureCache::kWays * 64);
}

// --- Tuple-space explosion ---

// Allow rules exact on nw_src and on nw_dst (two subtables), everything
// else dropped: the prefix tries un-wildcard each address up to its first
// bit that differs from the rule's, so a packet differing at source bit i
// and destination bit j gets its own mask, up to 33 x 33 of them (Csikor
// et al.).
RuleSet attack_rules() {
    const PortNames ports = {"p1", "p2"};
    RuleSet rules(ports);
    Parsed<std::vector<Rule>> parsed = parse_rules(
        "priority=10,ip,nw_src=10.0.0.1,actions=output:p2\n"
        "priority=9,ip,nw_dst=10.0.0.2,actions=output:p2\n"
        "priority=1,ip,actions=drop\n",
        ports, "attack.rules");
    EXPECT_TRUE(parsed.ok());
    for (Rule& r : parsed.value()) rules.add(std::move(r));
    return rules;
}

FlowKey attack_key(unsigned src_bit, unsigned dst_bit, uint16_t port) {
    FlowKey k{};
    k.in_port = 1;
    k.dl_type = htons(0x0800);
    k.nw_src = htonl(0x0a000001u ^ (src_bit < 32 ? 1u << (31 - src_bit) : 0));
    k.nw_dst = htonl(0x0a000002u ^ (dst_bit < 32 ? 1u << (31 - dst_bit) : 0));
    k.nw_proto = 17;
    k.nw_ttl = 64;
    k.tp_src = htons(port);
    k.tp_dst = htons(53);
    return k;
}

void run_attack(unsigned mask_limit, unsigned& subtables, uint64_t& widened) {
    const RuleSet rules = attack_rules();
    InlineMissPath path(64, 200000, 1);
    path.handler.set_mask_limit(mask_limit);
    Translation alone;
    std::mt19937 rng(3);
    for (unsigned round = 0; round < 3; ++round) {  // again: the widened megaflows answer
        for (unsigned first = 0; first < 33 * 33; first += 32) {
            Miniflow flows[32];
            FlowKey keys[32];
            const unsigned count = std::min(32u, 33 * 33 - first);
            for (unsigned i = 0; i < count; ++i) {
                keys[i] = attack_key((first + i) / 33, (first + i) % 33, static_cast<uint16_t>(rng() % 4));
                flows[i] = miniflow_from_key(keys[i]);
            }
            uint32_t slots[32];
            path.classify(rules, 1, flows, count, round * 100 + first, slots);
            for (unsigned i = 0; i < count; ++i) {
                translate(rules, keys[i], alone);
                const Megaflow& f = path.cache.megaflows().flow(slots[i]);
                ASSERT_TRUE(path.cache.megaflows().matches(slots[i], keys[i]));
                ASSERT_EQ(f.actions, alone.actions) << "packet " << first + i;
                ASSERT_EQ(f.drop, alone.drop) << "packet " << first + i;
            }
        }
    }
    subtables = path.cache.megaflows().subtable_count();
    EXPECT_EQ(subtables, path.handler.registry().subtable_count());
    widened = path.handler.counters().widened.get();
}

TEST(MaskLimit, AnAttackMakesHundredsOfMasksWithoutIt) {
    unsigned subtables = 0;
    uint64_t widened = 0;
    run_attack(0, subtables, widened);
    EXPECT_GT(subtables, 500u);
    EXPECT_EQ(widened, 0u);
}

TEST(MaskLimit, BoundsTheSubtablesAndKeepsEveryPacketsFate) {
    for (unsigned limit : {1u, 4u, 32u}) {
        unsigned subtables = 0;
        uint64_t widened = 0;
        run_attack(limit, subtables, widened);
        EXPECT_LE(subtables, limit + kCoarseMasks + 1) << "limit " << limit;
        EXPECT_GT(widened, 0u) << "limit " << limit;
    }
}

}  // namespace
