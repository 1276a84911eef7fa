// The slow path without threads: rule changes (add, delete strict and not,
// modify, replace), revalidation against translating every packet alone
// with random rule changes between bursts, statistics pushed to the rules,
// idle expiry, and the rule set's generations and reclaim.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>
#include <vector>

#include "flowpath/error.hpp"
#include "flowpath/slowpath.hpp"
#include "packet_builders.hpp"

using namespace flowpath;
using namespace flowpath::test_frames;

namespace {

const PortNames kPorts = {"p1", "p2", "p3", "p4"};

std::vector<Rule> rules_of(const std::string& text) {
    Parsed<std::vector<Rule>> parsed = parse_rules(text, kPorts, "test.rules");
    EXPECT_TRUE(parsed.ok()) << parsed.error().to_string();
    return parsed.ok() ? parsed.value() : std::vector<Rule>{};
}

void add_all(RuleSet& set, const std::string& text) {
    for (Rule& rule : rules_of(text)) set.add(std::move(rule));
}

MatchFilter filter_of(const std::string& text) {
    Parsed<MatchFilter> parsed = parse_match(text, kPorts);
    EXPECT_TRUE(parsed.ok()) << parsed.error().to_string();
    return parsed.value();
}

std::string dump_without_counters(const RuleSet& set) {
    std::string text;
    const std::string dump = set.dump();
    for (size_t at = 0; at < dump.size();) {
        const size_t end = dump.find('\n', at);
        std::string line = dump.substr(at, end - at);
        line = line.substr(line.find(", ", line.find("n_bytes")) + 2);
        text += line + "\n";
        at = end + 1;
    }
    return text;
}

TEST(RuleSetChanges, DeleteNonStrictTakesEveryRuleAtLeastAsSpecific) {
    RuleSet set(kPorts);
    add_all(set,
            "priority=5,ip,nw_dst=10.0.0.0/8,actions=output:p2\n"
            "priority=6,ip,nw_dst=10.1.0.0/16,actions=output:p3\n"
            "priority=7,udp,nw_dst=10.1.2.3,actions=drop\n"
            "priority=8,ip,nw_dst=11.0.0.0/8,actions=output:p2\n"
            "table=1,priority=5,ip,nw_dst=10.9.0.0/16,actions=output:p4\n"
            "priority=1,actions=output:p1\n");
    EXPECT_EQ(set.remove(filter_of("ip,nw_dst=10.1.0.0/16")), 2u);  // the /16 and the /32 under it
    EXPECT_EQ(set.size(), 4u);
    EXPECT_EQ(set.remove(filter_of("table=1,ip,nw_dst=10.0.0.0/8")), 1u);  // only table 1
    EXPECT_EQ(set.size(), 3u);
    EXPECT_EQ(set.remove(filter_of("")), 3u);  // everything
    EXPECT_EQ(set.size(), 0u);
    EXPECT_EQ(set.take_retired().size(), 6u);
}

TEST(RuleSetChanges, DeleteStrictNeedsTheSameMatchAndPriority) {
    RuleSet set(kPorts);
    add_all(set, "priority=5,ip,nw_dst=10.0.0.0/8,actions=output:p2\npriority=6,ip,nw_dst=10.0.0.0/8,actions=drop\n");
    EXPECT_EQ(set.remove(filter_of("priority=7,ip,nw_dst=10.0.0.0/8"), true), 0u);
    EXPECT_EQ(set.remove(filter_of("priority=6,ip,nw_dst=10.0.0.0/8"), true), 1u);
    EXPECT_EQ(dump_without_counters(set), "priority=5,ip,nw_dst=10.0.0.0/8 actions=output:p2\n");
}

TEST(RuleSetChanges, ModifyKeepsCountersAndAppliesToEveryTableUnlessNamed) {
    RuleSet set(kPorts);
    add_all(set, "priority=5,udp,actions=output:p2\ntable=2,priority=5,udp,tp_dst=53,actions=output:p3\n");
    set.for_each([](const RuleEntry& entry) { const_cast<RuleEntry&>(entry).packets.store(7); });
    Rule rule = rules_of("udp,actions=output:p4\n")[0];
    EXPECT_EQ(set.modify(rule, /*any_table=*/true), 2u);
    EXPECT_EQ(set.modify(rules_of("table=3,udp,actions=drop\n")[0], false), 0u);
    set.for_each([](const RuleEntry& entry) {
        EXPECT_EQ(entry.packets.load(), 7u);
        ASSERT_EQ(entry.rule.actions.size(), 1u);
        EXPECT_EQ(entry.rule.actions[0].type, ActionType::kOutput);
    });
    EXPECT_EQ(set.take_retired().size(), 2u);  // the old entries, for megaflows that still name them
}

TEST(RuleSetChanges, AddKeepsFlagsAndResetCountsZeroesAReplacedRulesCounters) {
    RuleSet set(kPorts);
    Rule rule = rules_of("priority=5,udp,actions=output:p2\n")[0];
    RuleEntry& first = set.add(rule, 100, kRuleFlagSendFlowRemoved);
    EXPECT_EQ(first.flags, kRuleFlagSendFlowRemoved);
    first.packets.store(9);
    const RuleEntry& kept = set.add(rule, 200, 0);  // replaced: counters carried over, flags the new ones
    EXPECT_EQ(kept.packets.load(), 9u);
    EXPECT_EQ(kept.flags, 0);
    EXPECT_EQ(kept.added_ms, 200u);
    const RuleEntry& reset = set.add(rule, 300, 0, /*reset_counts=*/true);
    EXPECT_EQ(reset.packets.load(), 0u);
    EXPECT_EQ(set.size(), 1u);
    EXPECT_EQ(set.find_id(reset.id), &reset);
    EXPECT_EQ(set.find_id(first.id), nullptr);  // retired
}

TEST(RuleSetChanges, ModifyByIdKeepsIdPlaceFlagsAgeAndCountersUnlessReset) {
    RuleSet set(kPorts);
    const uint32_t earlier = set.add(rules_of("priority=5,udp,tp_dst=7,actions=output:p3\n")[0], 50,
                                     kRuleFlagSendFlowRemoved).id;
    add_all(set, "priority=5,udp,actions=output:p2\n");  // equal priority, added later: loses ties
    const RuleEntry* entry = set.find_id(earlier);
    const_cast<RuleEntry*>(entry)->packets.store(4);
    ASSERT_TRUE(set.modify_id(earlier, {Action::output(4)}));
    entry = set.find_id(earlier);
    ASSERT_NE(entry, nullptr);
    EXPECT_EQ(entry->rule.actions, ActionList{Action::output(4)});
    EXPECT_EQ(entry->flags, kRuleFlagSendFlowRemoved);
    EXPECT_EQ(entry->added_ms, 50u);
    EXPECT_EQ(entry->packets.load(), 4u);
    // Still the rule a udp packet to port 7 finds: same place among equals.
    const Bytes frame = eth(0x0800) + ipv4(17, udp(1000, 7));
    FlowKey key;
    PacketLayout layout;
    parse_flow_key(frame.vec().data(), static_cast<uint32_t>(frame.vec().size()), 1, key, layout);
    Translation t;
    translate(set, key, t);
    ASSERT_EQ(t.matched_count, 1u);
    EXPECT_EQ(t.matched[0]->id, earlier);
    ASSERT_TRUE(set.modify_id(earlier, {Action::output(3)}, /*reset_counts=*/true));
    EXPECT_EQ(set.find_id(earlier)->packets.load(), 0u);
    EXPECT_FALSE(set.modify_id(9999, {}));
    EXPECT_EQ(set.take_retired().size(), 2u);
}

TEST(RuleSetChanges, ReplaceKeepsUnchangedRulesAndTheirCounters) {
    RuleSet set(kPorts);
    add_all(set, "priority=5,udp,actions=output:p2\npriority=6,tcp,actions=output:p3\npriority=7,icmp,actions=drop\n");
    set.for_each([](const RuleEntry& entry) { const_cast<RuleEntry&>(entry).packets.store(entry.rule.priority); });
    const RuleChangeResult result =
        set.replace(rules_of("priority=5,udp,actions=output:p2\npriority=6,tcp,actions=output:p4\n"
                             "priority=9,arp,actions=flood\n"));
    EXPECT_EQ(result.added, 1u);
    EXPECT_EQ(result.modified, 1u);
    EXPECT_EQ(result.removed, 1u);
    EXPECT_EQ(set.size(), 3u);
    set.for_each([](const RuleEntry& entry) {
        if (entry.rule.priority == 5) { EXPECT_EQ(entry.packets.load(), 5u); }  // unchanged
        if (entry.rule.priority == 6) { EXPECT_EQ(entry.packets.load(), 6u); }  // new actions, counters kept
        if (entry.rule.priority == 9) { EXPECT_EQ(entry.packets.load(), 0u); }  // new
    });
}

TEST(RuleSetChanges, ARefusalBeforeAnythingChangesChangesNothing) {
    LiveRules live(std::make_unique<RuleSet>(kPorts));
    std::vector<Rule> rules = rules_of("priority=1,ip,actions=output:p2\npriority=2,ip,actions=ct(commit),output:p2\n");
    const auto check_all = [&](RuleSet& set) {
        for (const Rule& rule : rules) {
            RuleSet::check(rule);  // conntrack rules pass now
            if (rule.actions.size() > 1) throw ConfigError("r.rules:2: refused");
        }
        for (const Rule& rule : rules) set.add(rule);
    };
    EXPECT_THROW(live.change(check_all), ConfigError);
    EXPECT_EQ(live.read([](const RuleSet& set, uint64_t) { return set.size(); }), 0u);
    live.change([&](RuleSet& set) {
        for (const Rule& rule : rules) set.add(rule);
    });
    EXPECT_EQ(live.read([](const RuleSet& set, uint64_t) { return set.size(); }), 2u);
}

TEST(LiveRules, EveryChangeIsANewGenerationAndRetiredEntriesWaitForReclaim) {
    LiveRules live(std::make_unique<RuleSet>(kPorts));
    const uint64_t first = live.generation();
    const uint64_t g1 = live.change([](RuleSet& set) { add_all(set, "udp,actions=output:p2\n"); });
    EXPECT_EQ(g1, first + 1);
    const uint64_t g2 = live.change([](RuleSet& set) { set.remove(filter_of("")); });
    EXPECT_EQ(g2, g1 + 1);
    EXPECT_EQ(live.generation(), g2);
    live.reclaim(g1);  // the entry retired at g2 is still there (ASan would see a leak otherwise: none)
    live.reclaim(g2);
    EXPECT_EQ(live.read([](const RuleSet& set, uint64_t generation) { return set.size() + generation; }), g2);
}

// --- the registry and the worker's replica through rule changes ---

Bytes random_frame(std::mt19937& rng) {
    const auto pick = [&](uint32_t n) { return static_cast<uint32_t>(rng() % n); };
    Ipv4Opts v4;
    v4.src = 0x0a000000 | pick(4);
    v4.dst = 0x0a000000 | pick(4) << 8 | pick(4);
    v4.ttl = static_cast<uint8_t>(1 + pick(3));
    if (pick(8) == 0) v4.frag_off = pick(2) ? 0x2000 : 0x0010;  // first or later fragment
    const uint16_t sport = static_cast<uint16_t>(1000 + pick(3));
    const uint16_t dport = static_cast<uint16_t>(pick(2) ? 53 : 80 + pick(2));
    Bytes l4 = pick(3) ? udp(sport, dport) : tcp(sport, dport, 0x02);
    const uint8_t proto = l4.size() == 8 ? 17 : 6;
    switch (pick(5)) {
        case 0: return eth_tagged({{0x8100, static_cast<uint16_t>(10 + pick(2))}}, 0x0800) + ipv4(proto, l4, v4);
        case 1: {
            Bytes frame = eth(0x0800) + ipv4(proto, l4, v4);
            return frame.prefix(14 + 20 + pick(8));  // truncated transport (UDP header: 8)
        }
        default: return eth(0x0800) + ipv4(proto, l4, v4);
    }
}

std::string random_rule(std::mt19937& rng) {
    const auto pick = [&](uint32_t n) { return static_cast<uint32_t>(rng() % n); };
    std::string match = "table=" + std::to_string(pick(2)) + ",priority=" + std::to_string(1 + pick(50));
    std::string actions;
    switch (pick(4)) {
        case 0:
            match += ",ip,nw_dst=10.0." + std::to_string(pick(4)) + ".0/" + std::to_string(22 + pick(3));
            actions = pick(2) ? "dec_ttl,output:p2" : "mod_nw_dst:10.9.9.9,output:p3";
            break;
        case 1:
            match += ",udp,tp_dst=" + std::to_string(pick(2) ? 53 : 81);
            actions = pick(2) ? "mod_tp_dst:99,output:p2" : "resubmit(,1),output:p4";
            break;
        case 2:
            match += ",ip,nw_src=10.0.0." + std::to_string(pick(4));
            actions = pick(2) ? "drop" : "mod_nw_tos:8,output:p1";
            break;
        default:
            match += ",dl_vlan=" + std::to_string(10 + pick(2));
            actions = pick(2) ? "strip_vlan,output:p2" : "output:p3";
            break;
    }
    return match + ",actions=" + actions;
}

// A random change, as flowpath-ctl would make it.
void random_change(std::mt19937& rng, RuleSet& set) {
    switch (rng() % 4) {
        case 0: add_all(set, random_rule(rng) + "\n"); break;
        case 1: set.remove(filter_of(rng() % 2 ? "udp" : "ip,nw_src=10.0.0." + std::to_string(rng() % 4))); break;
        case 2: set.modify(rules_of(random_rule(rng) + "\n")[0], rng() % 2 == 0); break;
        default: {
            std::string text = "table=0,priority=0,actions=output:p4\n";
            for (int i = 0; i < 12; ++i) text += random_rule(rng) + "\n";
            set.replace(rules_of(text));
            break;
        }
    }
}

void forward_counting(InlineMissPath& path, uint32_t slot, uint64_t now) {
    Megaflow& flow = path.cache.flow(slot);
    flow.packets.add(1);
    flow.bytes.add(100);
    flow.last_used.set(now);
}

TEST(MissHandlerRevalidation, EveryPacketAfterEveryChangeGetsTheNewRulesTranslation) {
    for (uint32_t seed = 1; seed <= 6; ++seed) {
        std::mt19937 rng(seed);
        LiveRules live(std::make_unique<RuleSet>(kPorts));
        live.change([&](RuleSet& set) {
            std::string text = "table=0,priority=0,actions=output:p4\n";
            for (int i = 0; i < 20; ++i) text += random_rule(rng) + "\n";
            add_all(set, text);
        });
        InlineMissPath path(seed % 2 ? 64 : 8192, seed % 3 ? 200000 : 128, 1);
        Translation reference;
        uint64_t now = 1;
        for (int round = 0; round < 40; ++round) {
            // Traffic at the current rules.
            live.read([&](const RuleSet& rules, uint64_t generation) {
                for (int burst = 0; burst < 5; ++burst) {
                    const unsigned count = 1 + rng() % 32;
                    Miniflow flows[32];
                    for (unsigned i = 0; i < count; ++i) {
                        const Bytes frame = random_frame(rng);
                        PacketLayout layout;
                        extract_miniflow(frame.vec().data(), static_cast<uint32_t>(frame.size()), 1 + rng() % 4,
                                         flows[i], layout);
                    }
                    uint32_t slots[32];
                    path.classify(rules, generation, flows, count, ++now, slots);
                    for (unsigned i = 0; i < count; ++i) {
                        translate(rules, miniflow_expand(flows[i]), reference);
                        const Megaflow& cached = path.cache.megaflows().flow(slots[i]);
                        ASSERT_TRUE(cached.live);
                        ASSERT_EQ(cached.actions, reference.actions)
                            << "seed " << seed << " round " << round << " megaflow at generation "
                            << path.handler.registry().flow(slots[i]).rule_generation << " of " << generation
                            << " created " << cached.created << " now " << now;
                        ASSERT_EQ(cached.drop, reference.drop) << "seed " << seed << " round " << round;
                        forward_counting(path, slots[i], now);
                    }
                }
            });
            // A change, then the revalidation a slow-path thread runs, in
            // slices as it sends them.
            live.change([&](RuleSet& set) { random_change(rng, set); });
            live.read([&](const RuleSet& rules, uint64_t generation) {
                for (bool done = false; !done;) {
                    path.reply.clear();
                    done = path.handler.revalidate(rules, generation, path.reply, 7);
                    path.apply(now);
                }
            });
            ASSERT_EQ(path.cache.megaflows().size(), path.handler.registry().size());
            live.reclaim(live.generation());
        }
        EXPECT_GT(path.handler.counters().revalidated.get(), 0u);
        EXPECT_GT(path.handler.counters().updated.get() + path.handler.counters().invalidated.get(), 0u);
    }
}

TEST(MissHandlerStatistics, RuleAndTableCountersAddUpToThePacketsForwardedAndIdleMegaflowsExpire) {
    LiveRules live(std::make_unique<RuleSet>(kPorts));
    // Port 53: table 0 only. Other ports: table 0, table 1 (a match), table 2
    // (empty: a lookup without a match).
    live.change([](RuleSet& set) {
        add_all(set, "priority=9,udp,tp_dst=53,actions=output:p2\n"
                     "priority=1,actions=resubmit(,1),resubmit(,2),output:p3\n"
                     "table=1,priority=1,udp,actions=output:p4\n");
    });
    InlineMissPath path(64, 1024, 1);
    std::mt19937 rng(11);
    uint64_t now = 100;
    std::map<const RuleEntry*, uint64_t> expected;
    uint64_t to_53 = 0, others = 0;
    Translation reference;
    live.read([&](const RuleSet& rules, uint64_t generation) {
        for (int burst = 0; burst < 50; ++burst) {
            Miniflow flows[16];
            for (Miniflow& flow : flows) {
                const bool dns = rng() % 2;
                (dns ? to_53 : others) += 1;
                const Bytes frame = eth(0x0800) + ipv4(17, udp(1000 + rng() % 50, dns ? 53 : 54));
                PacketLayout layout;
                extract_miniflow(frame.vec().data(), static_cast<uint32_t>(frame.size()), 1, flow, layout);
            }
            uint32_t slots[16];
            path.classify(rules, generation, flows, 16, ++now, slots);
            for (unsigned i = 0; i < 16; ++i) {
                forward_counting(path, slots[i], now);
                translate(rules, miniflow_expand(flows[i]), reference);
                for (unsigned r = 0; r < reference.matched_count; ++r) ++expected[reference.matched[r]];
            }
        }
    });
    // Nothing idle before `now - 10`: only the statistics move.
    path.reply.clear();
    while (!path.handler.sweep(now - 10, 5000, path.reply, 1000)) {
    }
    EXPECT_TRUE(path.reply.ops.empty());
    const auto& tables = path.handler.table_counters();
    EXPECT_EQ(tables[0].lookups.get(), to_53 + others);
    EXPECT_EQ(tables[0].matched.get(), to_53 + others);
    EXPECT_EQ(tables[1].lookups.get(), others);
    EXPECT_EQ(tables[1].matched.get(), others);
    EXPECT_EQ(tables[2].lookups.get(), others);
    EXPECT_EQ(tables[2].matched.get(), 0u);
    EXPECT_EQ(tables[3].lookups.get(), 0u);
    live.read([&](const RuleSet& rules, uint64_t) {
        rules.for_each([&](const RuleEntry& entry) {
            EXPECT_EQ(entry.packets.load(), expected[&entry]) << format_rule(entry.rule, kPorts);
            EXPECT_EQ(entry.bytes.load(), expected[&entry] * 100);
            if (expected[&entry]) { EXPECT_EQ(entry.used_ms.load(), 5000u); }
        });
    });
    // A second push adds nothing new.
    path.handler.sweep(0, 6000, path.reply, 1000);
    live.read([&](const RuleSet& rules, uint64_t) {
        rules.for_each([&](const RuleEntry& entry) { EXPECT_EQ(entry.packets.load(), expected[&entry]); });
    });
    EXPECT_EQ(tables[2].lookups.get(), others);
    // Everything idle: every megaflow goes, in the registry and the replica.
    const uint32_t megaflows = path.handler.registry().size();
    ASSERT_GT(megaflows, 0u);
    path.reply.clear();
    while (!path.handler.sweep(now + 1, 7000, path.reply, 1000)) {
    }
    path.apply(now);
    EXPECT_EQ(path.handler.counters().expired.get(), megaflows);
    EXPECT_EQ(path.handler.registry().size(), 0u);
    EXPECT_EQ(path.cache.megaflows().size(), 0u);
    EXPECT_EQ(path.cache.megaflows().subtable_count(), 0u);
}

}  // namespace
