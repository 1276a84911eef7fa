// The flow caches: megaflow cache against its linear-scan reference, the
// exact cache's validation, eviction, and the whole FlowCache against plain
// translation of every packet (the reference path the worker replaced).
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <bit>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "flowpath/cache.hpp"
#include "flowpath/packet.hpp"
#include "flowpath/rule.hpp"
#include "frame_gen.hpp"
#include "packet_builders.hpp"
#include "flowpath/slowpath.hpp"

using namespace flowpath;
using namespace flowpath::test_frames;


namespace {

const PortNames kPorts = {"p1", "p2", "p3", "p4"};

FlowKey udp_key(uint32_t in_port, uint32_t dst, uint16_t dport) {
    FlowKey k{};
    k.in_port = in_port;
    k.dl_type = htons(0x0800);
    k.nw_src = htonl(0x0a000064);
    k.nw_dst = htonl(dst);
    k.nw_proto = 17;
    k.nw_ttl = 64;
    k.tp_src = htons(1000);
    k.tp_dst = htons(dport);
    return k;
}

FlowMask dst_mask(unsigned prefix, bool with_port) {
    FlowMask m{};
    m.dl_type = 0xffff;
    m.nw_dst = prefix == 0 ? 0 : htonl(~0u << (32 - prefix));
    if (with_port) {
        m.nw_proto = 0xff;
        m.tp_dst = 0xffff;
    }
    return m;
}

Translation output_to(uint32_t port) {
    Translation t;
    t.clear();
    t.actions.push_back(Action::output(port));
    return t;
}

// Whether `key` lies inside megaflow `f` (value under its mask).
bool covers(const MegaflowCache& cache, uint32_t slot, const FlowKey& key) {
    bool inside = false;
    cache.for_each([&](const Megaflow& f, const FlowMask& mask) {
        if (&f != &cache.flow(slot)) return;
        const FlowKey value = miniflow_expand(f.masked);
        inside = true;
        for (unsigned w = 0; w < kFlowWords; ++w) {
            inside &= (flow_words(key)[w] & flow_words(mask)[w]) == flow_words(value)[w];
        }
    });
    return inside;
}

TEST(MegaflowCache, BurstLookupAgreesWithLinearScan) {
    std::mt19937 rng(7);
    MegaflowCache cache(4096);
    // Megaflows over 1..24-bit destination prefixes, some with the port.
    for (int i = 0; i < 600; ++i) {
        const unsigned prefix = 8 + rng() % 17;
        const FlowKey key = udp_key(1 + rng() % 2, rng(), static_cast<uint16_t>(rng() % 4));
        if (cache.lookup(key) != kNoFlow) continue;  // the cache never holds two for one key
        cache.insert(key, dst_mask(prefix, rng() % 2), output_to(1 + rng() % 4), 1);
    }
    ASSERT_GT(cache.subtable_count(), 10u);
    for (int round = 0; round < 300; ++round) {
        const FlowKey* pointers[kMaxLookupBurst];
        FlowKey keys[kMaxLookupBurst];
        const unsigned count = 1 + rng() % kMaxLookupBurst;
        for (unsigned i = 0; i < count; ++i) {
            keys[i] = udp_key(1 + rng() % 2, rng(), static_cast<uint16_t>(rng() % 4));
            pointers[i] = &keys[i];
        }
        uint32_t found[kMaxLookupBurst];
        std::fill(found, found + kMaxLookupBurst, kNoFlow);
        const uint64_t wanted = rng() | uint64_t{rng()} << 32;
        const uint64_t missing = cache.lookup_burst(pointers, count, wanted, found);
        for (unsigned i = 0; i < count; ++i) {
            const bool asked = wanted >> i & 1;
            const uint32_t reference = cache.reference_lookup(keys[i]);
            if (!asked) {
                EXPECT_EQ(found[i], kNoFlow);
                continue;
            }
            EXPECT_EQ(found[i] == kNoFlow, reference == kNoFlow) << "packet " << i;
            EXPECT_EQ(missing >> i & 1, reference == kNoFlow ? 1u : 0u);
            if (found[i] != kNoFlow) {
                EXPECT_TRUE(covers(cache, found[i], keys[i]));
            }
        }
        if (round % 50 == 0) cache.rank_subtables();
    }
}

TEST(MegaflowCache, InPortIsAlwaysExact) {
    MegaflowCache cache(256);
    cache.insert(udp_key(1, 0x0a000001, 53), dst_mask(8, false), output_to(2), 1);
    EXPECT_NE(cache.lookup(udp_key(1, 0x0a636363, 7)), kNoFlow);
    EXPECT_EQ(cache.lookup(udp_key(2, 0x0a000001, 53)), kNoFlow);
}

TEST(MegaflowCache, RemoveInvalidatesAndDropsEmptySubtables) {
    MegaflowCache cache(256);
    const FlowKey a = udp_key(1, 0x0a000001, 53);
    const FlowKey b = udp_key(1, 0x0b000001, 53);
    const uint32_t slot_a = cache.insert(a, dst_mask(8, false), output_to(2), 1);
    const uint32_t slot_b = cache.insert(b, dst_mask(16, false), output_to(3), 1);
    EXPECT_EQ(cache.subtable_count(), 2u);
    const uint32_t generation = cache.flow(slot_a).generation;
    cache.remove(slot_a);
    EXPECT_FALSE(cache.valid(slot_a, generation));
    EXPECT_EQ(cache.lookup(a), kNoFlow);
    EXPECT_EQ(cache.lookup(b), slot_b);
    EXPECT_EQ(cache.subtable_count(), 1u);
    EXPECT_EQ(cache.size(), 1u);
    // The freed slot is reused, under a new generation.
    const uint32_t again = cache.insert(a, dst_mask(8, false), output_to(2), 2);
    EXPECT_EQ(again, slot_a);
    EXPECT_NE(cache.flow(again).generation, generation);
    cache.clear();
    EXPECT_EQ(cache.size(), 0u);
    EXPECT_EQ(cache.subtable_count(), 0u);
    EXPECT_EQ(cache.lookup(b), kNoFlow);
}

TEST(MegaflowCache, FullCacheRefusesThenEvictsTheLeastRecentlyUsed) {
    MegaflowCache cache(2 * kMaxLookupBurst);
    std::vector<uint32_t> slots;
    for (uint32_t i = 0; i < cache.capacity(); ++i) {
        slots.push_back(cache.insert(udp_key(1, i, 1), dst_mask(32, false), output_to(2), 10 + i));
    }
    EXPECT_EQ(cache.size(), cache.capacity());
    EXPECT_EQ(cache.insert(udp_key(1, 1000, 1), dst_mask(32, false), output_to(2), 5000), kNoFlow);
    // The first slot is the oldest: eviction takes it, the install reuses it.
    const uint32_t gen0 = cache.flow(slots[0]).generation;
    EXPECT_EQ(cache.evict_one(), slots[0]);
    const uint32_t slot = cache.insert(udp_key(1, 1000, 1), dst_mask(32, false), output_to(2), 5000);
    EXPECT_EQ(slot, slots[0]);
    EXPECT_NE(cache.flow(slot).generation, gen0);
    EXPECT_EQ(cache.evictions(), 1u);
    EXPECT_EQ(cache.size(), cache.capacity());
    // With an outside clock (the slow path reads the worker's), its answer decides.
    // (Candidates are a window after the clock hand, which moved past slot 0's.)
    const uint32_t young = cache.evict_one([&](uint32_t s) { return s == slots[20] ? 0 : 100; });
    EXPECT_EQ(young, slots[20]);
    EXPECT_FALSE(cache.flow(slots[20]).live);
    EXPECT_EQ(cache.evict_one(), kNoFlow);  // not full any more
}

TEST(MegaflowCache, ReplicaAtTheRegistrysSlotsAnswersTheSame) {
    MegaflowCache registry(256), replica(256);
    ActionList reclaimed;
    for (uint32_t i = 0; i < 40; ++i) {  // one input port each: no two megaflows overlap
        const uint32_t slot = registry.insert(udp_key(i, i << 8, 53), dst_mask(24 - i % 3, i % 2), output_to(2), 1);
        ActionList actions = registry.flow(slot).actions;
        replica.insert_at(slot, miniflow_expand(registry.flow(slot).masked), registry.mask_of(slot), actions,
                          TranslateDrop::none, 1);
        if (i % 5 == 4) {
            registry.remove(slot - 1);
            replica.remove(slot - 1, &reclaimed);
        }
    }
    EXPECT_EQ(registry.size(), replica.size());
    for (uint32_t i = 0; i < 80; ++i) {
        const FlowKey key = udp_key(i / 2, (i / 2) << 8 | i % 7, 53);
        ASSERT_EQ(replica.lookup(key), registry.lookup(key)) << i;
        ASSERT_EQ(replica.lookup(key), replica.reference_lookup(key)) << i;
    }
}

TEST(ExactCache, HitsOnlyTheSameMiniflowAndOnlyWhileTheMegaflowLives) {
    MegaflowCache megaflows(256);
    ExactCache exact(64);
    const Miniflow a = miniflow_from_key(udp_key(1, 0x0a000001, 53));
    const Miniflow b = miniflow_from_key(udp_key(1, 0x0a000002, 53));
    const uint32_t slot = megaflows.insert(udp_key(1, 0x0a000001, 53), dst_mask(8, false), output_to(2), 1);
    const uint32_t hash_a = ExactCache::hash_of(a);
    exact.insert(a, hash_a, slot, megaflows);
    EXPECT_EQ(exact.lookup(a, hash_a, megaflows), slot);
    EXPECT_EQ(exact.lookup(b, ExactCache::hash_of(b), megaflows), kNoFlow);
    // Same hash, different flow: still a miss.
    EXPECT_EQ(exact.lookup(b, hash_a, megaflows), kNoFlow);
    EXPECT_EQ(exact.valid_entries(megaflows), 1u);
    megaflows.remove(slot);
    EXPECT_EQ(exact.lookup(a, hash_a, megaflows), kNoFlow);
    EXPECT_EQ(exact.valid_entries(megaflows), 0u);
}

TEST(ExactCache, TwoWaysThenTheOlderIsReplaced) {
    MegaflowCache megaflows(256);
    ExactCache exact(2);  // one set of two ways: every flow competes
    std::vector<Miniflow> flows;
    std::vector<uint32_t> slots;
    for (uint32_t i = 0; i < 3; ++i) {
        flows.push_back(miniflow_from_key(udp_key(1, i, 53)));
        slots.push_back(megaflows.insert(udp_key(1, i, 53), dst_mask(32, false), output_to(2), 1));
    }
    for (uint32_t i = 0; i < 3; ++i) exact.insert(flows[i], ExactCache::hash_of(flows[i]), slots[i], megaflows);
    EXPECT_EQ(exact.lookup(flows[0], ExactCache::hash_of(flows[0]), megaflows), kNoFlow);
    EXPECT_EQ(exact.lookup(flows[1], ExactCache::hash_of(flows[1]), megaflows), slots[1]);
    EXPECT_EQ(exact.lookup(flows[2], ExactCache::hash_of(flows[2]), megaflows), slots[2]);
}

// The two-line entries and their inline compare against the plain rule
// (same map, same words: memcmp) for keys of every length, a difference in
// every word (the first line's and the second's), and keys too long to hold.
TEST(ExactCache, InlineCompareAgreesWithMemcmpAtEveryLength) {
    MegaflowCache megaflows(4096);
    std::mt19937_64 rng(77);
    FlowMask exact_mask;
    std::memset(&exact_mask, 0xff, sizeof exact_mask);
    const auto same = [](const Miniflow& a, const Miniflow& b) {
        return a.map == b.map && std::memcmp(a.words, b.words, a.size() * sizeof(uint64_t)) == 0;
    };
    for (unsigned n = 1; n <= kFlowWords; ++n) {
        for (unsigned round = 0; round < 20; ++round) {
            // A random map of n words, word 0 (in_port) always in it.
            uint64_t map = 1;
            while (static_cast<unsigned>(std::popcount(map)) < n) map |= uint64_t{1} << (rng() % kFlowWords);
            Miniflow flow;
            flow.map = map;
            for (unsigned i = 0; i < n; ++i) flow.words[i] = rng() & (round % 2 ? ~uint64_t{0} : 0xff);
            flow.words[0] = 1 + rng() % 4;
            ExactCache exact(64);
            const uint32_t slot = megaflows.insert(miniflow_expand(flow), exact_mask, output_to(2), 1);
            ASSERT_NE(slot, kNoFlow);
            const uint32_t hash = ExactCache::hash_of(flow);
            exact.insert(flow, hash, slot, megaflows);
            EXPECT_EQ(exact.lookup(flow, hash, megaflows), n <= ExactCache::kEntryWords ? slot : kNoFlow) << n;
            // Another flow in the same set (same hash given): a hit exactly when the plain compare agrees.
            for (unsigned k = 0; k < n; ++k) {
                Miniflow other = flow;
                other.words[k] ^= uint64_t{1} << (rng() % 64);
                EXPECT_EQ(exact.lookup(other, hash, megaflows) != kNoFlow, same(other, flow)) << n << " " << k;
            }
            if (n >= 2 && n < kFlowWords) {
                // The same words under another map of as many words: a miss.
                const uint64_t set = map & ~uint64_t{1}, unset = ~map & ((uint64_t{1} << kFlowWords) - 1);
                Miniflow moved = flow;
                moved.map = map ^ (set & -set) ^ (unset & -unset);
                EXPECT_EQ(exact.lookup(moved, hash, megaflows), kNoFlow) << n;
            }
            megaflows.remove(slot);
        }
    }
    // An empty cache (and a flow without words) never hits.
    ExactCache empty(64);
    Miniflow none;
    none.map = 0;
    EXPECT_EQ(empty.lookup(none, ExactCache::hash_of(none), megaflows), kNoFlow);
    EXPECT_EQ(empty.valid_entries(megaflows), 0u);
}

// --- FlowCache against translating every packet ---

std::string random_rule(std::mt19937& rng) {
    const auto pick = [&](uint32_t n) { return static_cast<uint32_t>(rng() % n); };
    std::string match = "table=" + std::to_string(pick(2)) + ",priority=" + std::to_string(pick(100));
    std::string actions;
    switch (pick(9)) {
        case 0:
            match += ",ip,nw_dst=10.0." + std::to_string(pick(8)) + ".0/" + std::to_string(16 + pick(9));
            actions = pick(2) ? "dec_ttl,output:p2" : "mod_nw_dst:10.9.9.9,output:p3";
            break;
        case 1:
            match += ",udp,tp_dst=" + std::to_string(pick(2) ? 53 : 81);
            actions = pick(2) ? "mod_tp_dst:99,output:p2" : "resubmit(,1),output:p4";
            break;
        case 2:
            match += ",in_port=p" + std::to_string(1 + pick(4));
            actions = pick(2) ? "flood" : "in_port";
            break;
        case 3:
            match += ",dl_vlan=" + std::to_string(10 + pick(2));
            actions = pick(2) ? "strip_vlan,output:p2" : "mod_vlan_pcp:3,output:p3";
            break;
        case 4:
            match += ",tcp,nw_src=10.0.0." + std::to_string(pick(4));
            actions = pick(2) ? "drop" : "mod_nw_tos:8,output:p1";
            break;
        case 6:
        case 7: {
            // Port ranges around the frames' ports (sources 1000-1002,
            // destinations 53, 80-82), several per mask and with address
            // prefixes: the ports tries' cases, the ACL shapes of the
            // megaflow benchmark.
            static const char* const kPortMatches[] = {
                "tcp,tp_dst=80/0xfffe",       "tcp,tp_dst=0x50/0xfff0",   "udp,tp_dst=53/0xfff8",
                "udp,tp_dst=82/0xfffe",       "udp,tp_src=1000/0xfffc",   "tcp,tp_src=0x3e8/0xff00",
                "sctp,tp_dst=81",             "tcp,tp_dst=0x8000/0x8000", "udp,tp_src=1001,tp_dst=0x40/0xffc0",
                "tcp,tp_src=1002,tp_dst=53",  "udp,tp_src=0x3e8/0xfff8,tp_dst=0x35/0xfffd",
                "icmp,icmp_type=8,icmp_code=1", "icmp6,icmp_type=136",
            };
            const std::string ports = kPortMatches[pick(std::size(kPortMatches))];
            match += "," + ports;
            if (ports.rfind("icmp6", 0) != 0 && pick(2)) match += ",nw_src=10.0.0." + std::to_string(pick(4)) + "/" + std::to_string(30 + pick(3));
            actions = pick(3) ? "output:p" + std::to_string(1 + pick(3)) : "drop";
            break;
        }
        default: {
            const size_t n = std::size(kRulesOverFramePools);
            return match + "," + kRulesOverFramePools[pick(static_cast<uint32_t>(n))];
        }
    }
    return match + ",actions=" + actions;
}

// `count` random rules and a catch-all to p4 into `rules`.
void add_random_rules(RuleSet& rules, std::mt19937& rng, int count) {
    std::string text;
    for (int i = 0; i < count; ++i) text += random_rule(rng) + "\n";
    text += "table=0,priority=0,actions=output:p4\n";
    Parsed<std::vector<Rule>> parsed = parse_rules(text, kPorts, "random.rules");
    ASSERT_TRUE(parsed.ok()) << parsed.error().to_string();
    for (Rule& r : parsed.value()) rules.add(std::move(r));
}

// The worker's megaflow (replica) forwards as `reference` says; the
// registry's credits the same rules.
void expect_same_translation(const InlineMissPath& path, uint32_t slot, const Translation& reference,
                             const std::string& where) {
    const Megaflow& cached = path.cache.megaflows().flow(slot);
    ASSERT_TRUE(cached.live) << where;
    ASSERT_EQ(cached.actions, reference.actions) << where;
    ASSERT_EQ(cached.drop, reference.drop) << where;
    const Megaflow& registered = path.handler.registry().flow(slot);
    ASSERT_EQ(registered.actions, reference.actions) << where;
    ASSERT_EQ(registered.rules.size(), reference.matched_count) << where;
    for (unsigned r = 0; r < reference.matched_count; ++r) ASSERT_EQ(registered.rules[r], reference.matched[r]) << where;
}

void reference_translate(const RuleSet& rules, const Miniflow& flow, Translation& out) {
    translate(rules, miniflow_expand(flow), out);
}

struct FlowCacheCase {
    uint32_t exact_entries;
    uint32_t megaflow_capacity;
    uint32_t insert_inverse_probability;
    uint32_t signature_entries = kDefaultSignatureEntries;
    unsigned mask_limit = kDefaultMaskLimit;  // small: most masks widened
};

class FlowCacheAgainstReference : public ::testing::TestWithParam<FlowCacheCase> {};

TEST_P(FlowCacheAgainstReference, EveryPacketGetsItsOwnTranslation) {
    const FlowCacheCase c = GetParam();
    for (uint32_t seed = 1; seed <= 8; ++seed) {
        std::mt19937 rng(seed);
        RuleSet rules(kPorts);
        ASSERT_NO_FATAL_FAILURE(add_random_rules(rules, rng, 30));

        InlineMissPath path(c.exact_entries, c.megaflow_capacity, c.insert_inverse_probability, c.signature_entries);
        path.handler.set_mask_limit(c.mask_limit);
        uint64_t packets = 0;
        Translation reference;
        FrameGen frame_gen(seed);  // fragments, VLANs, ND, ARP, truncated and malformed frames
        for (uint64_t burst = 0; burst < 150; ++burst) {
            const unsigned count = 1 + rng() % 32;
            std::vector<Bytes> frames;
            Miniflow flows[32];
            for (unsigned i = 0; i < count; ++i) {
                frames.push_back(frame_gen.frame());
                PacketLayout layout;
                extract_miniflow(frames[i].vec().data(), static_cast<uint32_t>(frames[i].size()), 1 + rng() % 4,
                                 flows[i], layout);
            }
            uint32_t slots[32];
            path.classify(rules, 1, flows, count, burst + 1, slots);
            packets += count;
            for (unsigned i = 0; i < count; ++i) {
                reference_translate(rules, flows[i], reference);
                expect_same_translation(path, slots[i], reference,
                                        "seed " + std::to_string(seed) + " burst " + std::to_string(burst) +
                                            " packet " + std::to_string(i));
            }
        }
        const FlowCacheCounters& n = path.cache.counters();
        const SlowPathCounters& slow = path.handler.counters();
        EXPECT_EQ(n.exact_hits + n.megaflow_hits + n.misses, packets);
        EXPECT_EQ(slow.upcalls.get(), n.misses);
        EXPECT_LE(slow.translations.get(), n.misses);
        EXPECT_EQ(slow.installed.get(), slow.translations.get());
        EXPECT_EQ(path.cache.megaflows().size(), path.handler.registry().size());
        EXPECT_LE(path.cache.megaflows().size(), path.cache.megaflows().capacity());
        EXPECT_GT(n.megaflow_hits + n.exact_hits, 0u);
        if (c.mask_limit) {
            EXPECT_LE(path.cache.megaflows().subtable_count(), c.mask_limit + kCoarseMasks + 1);
            if (c.mask_limit < 3) {
                EXPECT_GT(slow.widened.get(), 0u);
            }
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Sizes, FlowCacheAgainstReference,
                         ::testing::Values(FlowCacheCase{8192, 200000, 1},    // roomy, always insert
                                           FlowCacheCase{8192, 200000, 100},  // the worker's settings
                                           FlowCacheCase{4, 128, 1},          // constant eviction
                                           FlowCacheCase{64, 128, 3},
                                           FlowCacheCase{4, 200000, 1, 0},    // no signature cache
                                           FlowCacheCase{4, 200000, 1, 20},   // a thrashed signature cache
                                           FlowCacheCase{4, 200000, 1, kDefaultSignatureEntries, 1},  // widen all
                                           FlowCacheCase{4, 200000, 3, 64, 2},
                                           FlowCacheCase{4, 128, 1, 64, 1}));    // widen and evict

// The megaflow property over whole megaflows, not only the one a packet
// happened to take: after a run, every frame of a larger pool that lies
// inside any installed megaflow (the registry's, scanned linearly) gets that
// megaflow's actions when translated alone. Covers megaflows that overlap
// (widened ones, and proofs that depend on the key: tries, staged probes)
// and the frame kinds of FrameGen (IPv4 first and later fragments, one and
// two VLAN tags, truncated and malformed frames, IPv6 extension headers,
// ICMP and ICMPv6 with ND, ARP), over random rules with port ranges.
TEST(MegaflowProperty, EveryPacketInsideAMegaflowTranslatesToItsActions) {
    uint64_t checked = 0, megaflows = 0;
    for (uint32_t seed = 1; seed <= 12; ++seed) {
        std::mt19937 rng(seed + 100);
        RuleSet rules(kPorts);
        ASSERT_NO_FATAL_FAILURE(add_random_rules(rules, rng, 40));

        FrameGen frame_gen(seed);
        std::vector<Miniflow> pool(3000);
        for (Miniflow& flow : pool) {
            const Bytes frame = frame_gen.frame();
            PacketLayout layout;
            extract_miniflow(frame.vec().data(), static_cast<uint32_t>(frame.size()), 1 + rng() % 4, flow, layout);
        }
        // Install from the first third, under the default mask limit or
        // a tiny one (widened, overlapping masks).
        InlineMissPath path(64, 200000, 1);
        path.handler.set_mask_limit(seed % 3 == 0 ? 2 : kDefaultMaskLimit);
        uint32_t slots[32];
        for (size_t i = 0; i + 32 <= pool.size() / 3; i += 32) path.classify(rules, 1, &pool[i], 32, i + 1, slots);

        const MegaflowCache& registry = path.handler.registry();
        megaflows += registry.size();
        Translation alone;
        for (size_t p = 0; p < pool.size(); ++p) {
            const FlowKey key = miniflow_expand(pool[p]);
            bool translated = false;
            for (uint32_t slot = 0; slot < registry.slot_limit(); ++slot) {
                if (!registry.matches(slot, key)) continue;
                if (!translated) translate(rules, key, alone);
                translated = true;
                const Megaflow& flow = registry.flow(slot);
                ASSERT_EQ(flow.actions, alone.actions) << "seed " << seed << " frame " << p << " slot " << slot;
                ASSERT_EQ(flow.drop, alone.drop) << "seed " << seed << " frame " << p << " slot " << slot;
                ++checked;
            }
        }
    }
    // Most of the pool lies inside some megaflow, or the test says little.
    EXPECT_GT(checked, 12u * 3000 / 2);
    std::printf("%llu megaflows, %llu (frame, megaflow) pairs checked\n", static_cast<unsigned long long>(megaflows),
                static_cast<unsigned long long>(checked));
}

// Every megaflow exact and the flow limit at its minimum: installs keep
// evicting, and each packet must still get a live megaflow of its own
// translation, registry and replica agreeing slot by slot.
TEST(FlowCache, FlowLimitEvictsAndEveryPacketStillGetsItsTranslation) {
    RuleSet rules(kPorts);
    Parsed<std::vector<Rule>> parsed =
        parse_rules("priority=9,dl_src=66:77:88:99:aa:00,actions=drop\npriority=1,actions=output:p2\n", kPorts,
                    "exact.rules");
    ASSERT_TRUE(parsed.ok()) << parsed.error().to_string();
    for (Rule& r : parsed.value()) rules.add(std::move(r));
    InlineMissPath path(4, 0, 1);  // flow limit clamped up to the minimum
    ASSERT_EQ(path.cache.megaflows().capacity(), 2 * kMaxLookupBurst);
    Translation reference;
    uint32_t next = 0;
    for (int burst = 0; burst < 100; ++burst) {
        Miniflow flows[32];
        for (Miniflow& flow : flows) {
            Bytes frame = eth(0x0800) + ipv4(17, udp(1, 2));
            frame[10] = static_cast<uint8_t>(next >> 8);  // a distinct source MAC per packet
            frame[11] = static_cast<uint8_t>(next++);
            PacketLayout layout;
            extract_miniflow(frame.vec().data(), static_cast<uint32_t>(frame.size()), 1, flow, layout);
        }
        uint32_t slots[32];
        path.classify(rules, 1, flows, 32, 7, slots);
        for (unsigned i = 0; i < 32; ++i) {
            ASSERT_NE(slots[i], kNoFlow);
            reference_translate(rules, flows[i], reference);
            // A later install of the same burst may have evicted an earlier
            // packet's megaflow after that packet was forwarded: check the
            // live ones (each packet op was applied before its removal).
            if (path.cache.megaflows().flow(slots[i]).live) {
                expect_same_translation(path, slots[i], reference, "burst " + std::to_string(burst));
            }
        }
        ASSERT_EQ(path.cache.megaflows().size(), path.handler.registry().size());
    }
    EXPECT_GT(path.handler.counters().evicted.get(), 0u);
}

// The megaflow an unfragmented packet installs must not answer a first
// fragment of the same 5-tuple (fragments are classified with ports 0), nor
// the other way round.
TEST(FlowCache, FirstFragmentDoesNotReuseTheUnfragmentedMegaflow) {
    RuleSet rules(kPorts);
    Parsed<std::vector<Rule>> parsed = parse_rules(
        "priority=9,udp,tp_dst=53,actions=output:p2\npriority=1,ip,actions=output:p3\n", kPorts, "frag.rules");
    ASSERT_TRUE(parsed.ok()) << parsed.error().to_string();
    for (Rule& r : parsed.value()) rules.add(std::move(r));
    Ipv4Opts first_fragment;
    first_fragment.frag_off = 0x2000;  // MF, offset 0
    const Bytes whole = eth(0x0800) + ipv4(17, udp(1000, 53));
    const Bytes fragment = eth(0x0800) + ipv4(17, udp(1000, 53), first_fragment);
    for (const bool fragment_first : {false, true}) {
        InlineMissPath path(64, 1024, 1);
        Miniflow flows[2];
        PacketLayout layout;
        const Bytes& a = fragment_first ? fragment : whole;
        const Bytes& b = fragment_first ? whole : fragment;
        extract_miniflow(a.vec().data(), static_cast<uint32_t>(a.size()), 1, flows[0], layout);
        extract_miniflow(b.vec().data(), static_cast<uint32_t>(b.size()), 1, flows[1], layout);
        uint32_t slots[2];
        path.classify(rules, 1, flows, 1, 1, slots);
        path.classify(rules, 1, flows + 1, 1, 2, slots + 1);
        EXPECT_NE(slots[0], slots[1]);
        const uint32_t to_p2 = 2, to_p3 = 3;
        EXPECT_EQ(path.cache.megaflows().flow(slots[0]).actions, ActionList{Action::output(fragment_first ? to_p3 : to_p2)});
        EXPECT_EQ(path.cache.megaflows().flow(slots[1]).actions, ActionList{Action::output(fragment_first ? to_p2 : to_p3)});
        EXPECT_EQ(path.handler.counters().translations.get(), 2u);
    }
}

TEST(FlowCache, RepeatedFlowMovesFromMissToMegaflowToExactHits) {
    RuleSet rules(kPorts);
    Parsed<std::vector<Rule>> parsed = parse_rules("udp,actions=output:p2\n", kPorts, "one.rules");
    ASSERT_TRUE(parsed.ok());
    rules.add(parsed.value()[0]);
    InlineMissPath path(64, 1024, 1);
    const Bytes frame = eth(0x0800) + ipv4(17, udp(1, 2));
    Miniflow flows[2];
    PacketLayout layout;
    for (Miniflow& f : flows) extract_miniflow(frame.vec().data(), static_cast<uint32_t>(frame.size()), 1, f, layout);
    uint32_t slots[2];
    path.classify(rules, 1, flows, 2, 1, slots);  // one translation for both packets
    EXPECT_EQ(path.cache.counters().misses, 2u);
    EXPECT_EQ(path.handler.counters().translations.get(), 1u);
    EXPECT_EQ(slots[0], slots[1]);
    path.classify(rules, 1, flows, 2, 2, slots);  // the answers did not enter the exact cache
    EXPECT_EQ(path.cache.counters().megaflow_hits, 2u);
    path.classify(rules, 1, flows, 2, 3, slots);
    EXPECT_EQ(path.cache.counters().exact_hits, 2u);
    // Another flow of the same megaflow: a megaflow hit, then exact.
    const Bytes other = eth(0x0800) + ipv4(17, udp(7, 9));
    extract_miniflow(other.vec().data(), static_cast<uint32_t>(other.size()), 1, flows[0], layout);
    path.classify(rules, 1, flows, 1, 4, slots);
    EXPECT_EQ(path.cache.counters().megaflow_hits, 3u);
    EXPECT_EQ(slots[0], slots[1]);
    EXPECT_EQ(path.cache.megaflows().size(), 1u);
}

}  // namespace

namespace {

// A random mask over the fields a simple match can read, and now and then
// one it cannot (a transport field, so the tier must stand down).
FlowMask random_mask(std::mt19937& rng, bool allow_deep) {
    FlowMask m{};
    m.in_port = 0xffffffff;  // always exact, as every megaflow's
    const auto maybe = [&rng](unsigned one_in) { return rng() % one_in == 0; };
    if (maybe(2)) m.dl_type = 0xffff;
    if (maybe(4)) std::memset(m.dl_dst, 0xff, sizeof m.dl_dst);
    if (maybe(6)) m.dl_src[5] = 0xff;
    if (maybe(3)) m.nw_src = htonl(~0u << (rng() % 32));
    if (maybe(3)) m.nw_dst = htonl(~0u << (rng() % 32));
    if (maybe(2)) m.nw_proto = 0xff;
    if (maybe(4)) m.nw_frag = static_cast<uint8_t>(1 + rng() % 3);
    if (maybe(5)) m.nw_tos = 0xfc;
    if (maybe(8)) m.nw_ttl = 0xff;
    if (maybe(10)) m.vlans[0].tci = 0xffff;      // the one tag a simple frame may have
    if (maybe(10)) m.ipv6_src[15] = 0xff;        // likewise
    if (maybe(10)) m.recirc_id = 0xffffffff;      // likewise (a first pass)
    if (allow_deep && maybe(12)) m.tp_dst = 0xffff;
    return m;
}

FlowKey key_of(const Bytes& frame, uint32_t in_port) {
    Miniflow mf;
    PacketLayout layout;
    extract_miniflow(frame.vec().data(), static_cast<uint32_t>(frame.size()), in_port, mf, layout);
    return miniflow_expand(mf);
}

}  // namespace

// The simple-match tier against the linear scan, on random masks (some it
// cannot take), installs, replacements and removals: while it is active, a
// frame it takes finds a megaflow that covers it, or none when no megaflow
// does; it is active exactly while every live megaflow is in its table.
TEST(SimpleMatch, AgreesWithTheLinearScanWhileActive) {
    std::mt19937 rng(2026);
    FrameGen gen(1205);
    unsigned checked_hits = 0, checked_misses = 0, rounds_active = 0;
    for (int round = 0; round < 300; ++round) {
        FlowCache cache(64, 256, 1);
        const unsigned flows = 1 + rng() % 12;
        std::vector<uint32_t> live;
        unsigned deep = 0;
        for (uint32_t slot = 0; slot < flows; ++slot) {
            const FlowMask mask = random_mask(rng, round % 3 == 0);
            FlowKey masked = key_of(gen.frame(0), 1 + rng() % 2);
            for (unsigned w = 0; w < kFlowWords; ++w) flow_words(masked)[w] &= flow_words(mask)[w];
            if (cache.megaflows().reference_lookup(masked) != kNoFlow) continue;  // overlaps one already in
            ActionList actions{Action::output(2)};
            cache.install(slot, masked, mask, actions, TranslateDrop::none, 0, 0);
            live.push_back(slot);
            deep += mask.tp_dst != 0;
        }
        // Some go again (the table refills from what is left).
        for (size_t i = 0; i < live.size();) {
            if (rng() % 4 == 0) {
                if (cache.megaflows().mask_of(live[i]).tp_dst) --deep;
                ActionList reclaim;
                cache.remove(live[i], reclaim);
                live.erase(live.begin() + static_cast<long>(i));
            } else {
                ++i;
            }
        }
        const bool should_be_active =
            !live.empty() && deep == 0 && live.size() <= SimpleMatch::kSimpleMatchFlows;
        // (A removal among more than the table holds may leave it off until
        // they are all gone: active only ever errs on the safe side.)
        if (!should_be_active) {
            EXPECT_FALSE(cache.simple().active() && deep != 0) << round;
        }
        if (!cache.simple().active()) continue;
        ++rounds_active;
        for (int i = 0; i < 400; ++i) {
            const Bytes frame = gen.frame(4);
            const uint32_t in_port = 1 + rng() % 2;
            SimpleKey simple;
            if (!extract_simple(frame.vec().data(), static_cast<uint32_t>(frame.size()), in_port, simple)) continue;
            const FlowKey key = key_of(frame, in_port);
            const uint32_t slot = cache.simple().lookup(simple);
            if (slot != kNoFlow) {
                ASSERT_TRUE(covers(cache.megaflows(), slot, key)) << "round " << round;
                ++checked_hits;
            } else {
                ASSERT_EQ(cache.megaflows().reference_lookup(key), kNoFlow) << "round " << round;
                ++checked_misses;
            }
        }
    }
    EXPECT_GT(rounds_active, 50u);
    EXPECT_GT(checked_hits, 1000u);
    EXPECT_GT(checked_misses, 1000u);
}

// The tier stands down while any megaflow reads a transport field, and
// while more megaflows live than its table holds; it comes back when they go.
TEST(SimpleMatch, ActiveOnlyWhileEveryMegaflowIsInItsTable) {
    FlowCache cache(64, 256, 1);
    EXPECT_FALSE(cache.simple().active());
    const FlowMask shallow = dst_mask(24, false);
    const FlowMask deep = dst_mask(24, true);
    ActionList actions{Action::output(2)};
    FlowKey masked = udp_key(1, 0x0a000100, 53);
    masked.in_port = 0;  // dst_mask leaves in_port out: the value must too
    for (unsigned w = 0; w < kFlowWords; ++w) flow_words(masked)[w] &= flow_words(shallow)[w];
    cache.install(0, masked, shallow, actions, TranslateDrop::none, 0, 0);
    EXPECT_TRUE(cache.simple().active());
    FlowKey deep_masked = udp_key(1, 0x0a000200, 53);
    for (unsigned w = 0; w < kFlowWords; ++w) flow_words(deep_masked)[w] &= flow_words(deep)[w];
    actions = {Action::output(2)};
    cache.install(1, deep_masked, deep, actions, TranslateDrop::none, 0, 0);
    EXPECT_FALSE(cache.simple().active());
    ActionList reclaim;
    cache.remove(1, reclaim);
    EXPECT_TRUE(cache.simple().active());
    // More than the table holds: off until enough are gone.
    for (uint32_t slot = 1; slot <= SimpleMatch::kSimpleMatchFlows; ++slot) {
        FlowKey k = udp_key(1, 0x0a000000 + (slot << 8), 53);
        for (unsigned w = 0; w < kFlowWords; ++w) flow_words(k)[w] &= flow_words(shallow)[w];
        actions = {Action::output(2)};
        cache.install(slot, k, shallow, actions, TranslateDrop::none, 0, 0);
    }
    EXPECT_FALSE(cache.simple().active());
    cache.remove(SimpleMatch::kSimpleMatchFlows, reclaim);  // the one beyond the table
    EXPECT_TRUE(cache.simple().active());
    cache.remove(0, reclaim);
    EXPECT_TRUE(cache.simple().active());
}
