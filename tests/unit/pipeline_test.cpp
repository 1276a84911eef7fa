// Translation: tables, resubmit/goto, outputs, lazy header commits, and the
// megaflow property of the wildcards it records.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "flowpath/pipeline.hpp"

using namespace flowpath;

namespace {

FlowKey udp_key(uint32_t in_port, uint32_t nw_dst = 0x0a000001, uint8_t ttl = 64) {
    FlowKey k{};
    k.in_port = in_port;
    k.dl_type = htons(0x0800);
    k.nw_src = htonl(0x0a000064);
    k.nw_dst = htonl(nw_dst);
    k.nw_proto = 17;
    k.nw_ttl = ttl;
    k.tp_src = htons(1000);
    k.tp_dst = htons(53);
    return k;
}

Rule rule(uint8_t table, uint16_t priority, ActionList actions) {
    Rule r;
    r.table = table;
    r.priority = priority;
    r.actions = std::move(actions);
    return r;
}

Rule ip_rule(uint8_t table, uint16_t priority, ActionList actions) {
    Rule r = rule(table, priority, std::move(actions));
    r.match.value.dl_type = htons(0x0800);
    r.match.mask.dl_type = 0xffff;
    return r;
}

Rule in_port_rule(uint32_t port, ActionList actions, uint16_t priority = 100) {
    Rule r = rule(0, priority, std::move(actions));
    r.match.value.in_port = port;
    r.match.mask.in_port = 0xffffffff;
    return r;
}

std::vector<uint32_t> outputs(const Translation& t) {
    std::vector<uint32_t> ports;
    for (const Action& a : t.actions) {
        if (a.type == ActionType::kOutput) ports.push_back(a.port);
    }
    return ports;
}

const PortNames kPorts = {"p1", "p2", "p3", "p4"};

TEST(Translate, NoRulesIsNoMatch) {
    RuleSet rules(kPorts);
    Translation t;
    translate(rules, udp_key(1), t);
    EXPECT_EQ(t.drop, TranslateDrop::no_match);
    EXPECT_TRUE(t.actions.empty());
}

TEST(Translate, OutputSkipsInputPortButInPortSends) {
    RuleSet rules(kPorts);
    rules.add(rule(0, 1, {Action::output(1), Action::output(2), Action::of(ActionType::kInPort)}));
    Translation t;
    translate(rules, udp_key(1), t);
    EXPECT_EQ(outputs(t), (std::vector<uint32_t>{2, 1}));
    EXPECT_EQ(t.drop, TranslateDrop::none);
    EXPECT_EQ(t.wildcards.in_port, 0xffffffffu);
}

TEST(Translate, FloodAndAllSkipInputPort) {
    RuleSet rules(kPorts);
    rules.add(rule(0, 1, {Action::of(ActionType::kFlood)}));
    Translation t;
    translate(rules, udp_key(3), t);
    EXPECT_EQ(outputs(t), (std::vector<uint32_t>{1, 2, 4}));
}

TEST(Translate, HighestPriorityWins) {
    RuleSet rules(kPorts);
    rules.add(rule(0, 1, {Action::output(2)}));
    rules.add(in_port_rule(1, {Action::output(3)}, 200));
    Translation t;
    translate(rules, udp_key(1), t);
    EXPECT_EQ(outputs(t), std::vector<uint32_t>{3});
    translate(rules, udp_key(4), t);
    EXPECT_EQ(outputs(t), std::vector<uint32_t>{2});
}

TEST(Translate, SameMatchAndPriorityReplaces) {
    RuleSet rules(kPorts);
    rules.add(rule(0, 5, {Action::output(2)}));
    rules.add(rule(0, 5, {Action::output(3)}));
    EXPECT_EQ(rules.size(), 1u);
    Translation t;
    translate(rules, udp_key(1), t);
    EXPECT_EQ(outputs(t), std::vector<uint32_t>{3});
}

TEST(Translate, ResubmitMissContinuesGotoMissStops) {
    RuleSet rules(kPorts);
    rules.add(rule(0, 1, {Action::resubmit(kResubmitSamePort, 7), Action::output(2), Action::goto_table(9)}));
    Translation t;
    translate(rules, udp_key(1), t);
    EXPECT_EQ(outputs(t), std::vector<uint32_t>{2});
    EXPECT_EQ(t.drop, TranslateDrop::none);

    RuleSet only_goto(kPorts);
    only_goto.add(rule(0, 1, {Action::goto_table(3)}));
    translate(only_goto, udp_key(1), t);
    EXPECT_EQ(t.drop, TranslateDrop::no_match);
}

TEST(Translate, ResubmitWithPortChangesLookupOnly) {
    RuleSet rules(kPorts);
    rules.add(rule(0, 1, {Action::resubmit(4, 1), Action::output(4)}));
    Rule r = in_port_rule(4, {Action::output(3)});
    r.table = 1;
    rules.add(r);
    Translation t;
    translate(rules, udp_key(1), t);
    // In table 1 the packet looked as if from port 4; back in table 0 it is
    // from port 1 again, so output:4 is not skipped.
    EXPECT_EQ(outputs(t), (std::vector<uint32_t>{3, 4}));
}

TEST(Translate, DecTtlExpiryStopsOnlyItsRule) {
    RuleSet rules(kPorts);
    rules.add(ip_rule(0, 1, {Action::output(2), Action::resubmit(kResubmitSamePort, 1), Action::output(3)}));
    rules.add(ip_rule(1, 1, {Action::of(ActionType::kDecTtl), Action::output(4)}));
    Translation t;
    translate(rules, udp_key(1, 1, 1), t);
    EXPECT_EQ(outputs(t), (std::vector<uint32_t>{2, 3}));
    EXPECT_EQ(t.wildcards.nw_ttl, 0xff);

    translate(rules, udp_key(1, 1, 64), t);
    EXPECT_EQ(outputs(t), (std::vector<uint32_t>{2, 4, 3}));
    // The TTL write comes right before the first output after dec_ttl.
    ASSERT_EQ(t.actions.size(), 4u);
    EXPECT_EQ(t.actions[1].type, ActionType::kSetField);
    EXPECT_EQ(t.actions[1].field, SetField::kNwTtl);
    EXPECT_EQ(t.actions[1].value[0], 63);

    RuleSet expire_only(kPorts);
    expire_only.add(ip_rule(0, 1, {Action::of(ActionType::kDecTtl), Action::output(2)}));
    translate(expire_only, udp_key(1, 1, 0), t);
    EXPECT_EQ(t.drop, TranslateDrop::ttl_expired);
}

TEST(Translate, HeaderChangesCommitLazilyBeforeEachOutput) {
    const uint32_t a = htonl(0x01020304), orig = htonl(0x0a000064);
    RuleSet rules(kPorts);
    rules.add(ip_rule(0, 1, {Action::output(2), Action::set(SetField::kIpv4Src, &a), Action::output(3),
                             Action::set(SetField::kIpv4Src, &orig), Action::output(4)}));
    Translation t;
    translate(rules, udp_key(1), t);
    ASSERT_EQ(t.actions.size(), 5u);
    EXPECT_EQ(t.actions[0], Action::output(2));
    EXPECT_EQ(t.actions[1], Action::set(SetField::kIpv4Src, &a));
    EXPECT_EQ(t.actions[2], Action::output(3));
    EXPECT_EQ(t.actions[3], Action::set(SetField::kIpv4Src, &orig));
    EXPECT_EQ(t.actions[4], Action::output(4));
    EXPECT_EQ(t.wildcards.nw_src, 0xffffffffu);

    RuleSet set_and_back(kPorts);
    set_and_back.add(ip_rule(0, 1, {Action::set(SetField::kIpv4Src, &a), Action::set(SetField::kIpv4Src, &orig),
                                    Action::output(2)}));
    translate(set_and_back, udp_key(1), t);
    EXPECT_EQ(t.actions, (ActionList{Action::output(2)}));
}

TEST(Translate, TrailingChangesAreDropped) {
    const uint32_t a = htonl(0x01020304);
    RuleSet rules(kPorts);
    rules.add(ip_rule(0, 1, {Action::output(2), Action::set(SetField::kIpv4Src, &a)}));
    Translation t;
    translate(rules, udp_key(1), t);
    EXPECT_EQ(t.actions, (ActionList{Action::output(2)}));
}

TEST(Translate, TransportChangeEvenOnZeroPorts) {
    const uint16_t port = htons(80);
    RuleSet rules(kPorts);
    Rule r = ip_rule(0, 1, {Action::set(SetField::kUdpDst, &port), Action::output(2)});
    rules.add(r);
    Translation t;
    FlowKey zero_ports = udp_key(1);
    zero_ports.tp_src = zero_ports.tp_dst = 0;  // Open vSwitch still commits the change
    translate(rules, zero_ports, t);
    EXPECT_EQ(t.actions, (ActionList{Action::set(SetField::kUdpDst, &port), Action::output(2)}));
    translate(rules, udp_key(1), t);
    EXPECT_EQ(t.actions, (ActionList{Action::set(SetField::kUdpDst, &port), Action::output(2)}));
}

TEST(Translate, VlanPushSetPop) {
    const uint16_t vid = htons(0x1000 | 42);
    RuleSet rules(kPorts);
    rules.add(rule(0, 1, {Action::push_vlan(0x8100), Action::set(SetField::kVlanVid, &vid), Action::output(2),
                          Action::of(ActionType::kPopVlan), Action::output(3)}));
    Translation t;
    translate(rules, udp_key(1), t);
    EXPECT_EQ(t.actions, (ActionList{Action::push_vlan(0x8100), Action::set(SetField::kVlanVid, &vid),
                                     Action::output(2), Action::of(ActionType::kPopVlan), Action::output(3)}));
}

TEST(Translate, VlanSetOnUntaggedIsNoOp) {
    const uint16_t vid = htons(0x1000 | 42);
    RuleSet rules(kPorts);
    rules.add(rule(0, 1, {Action::set(SetField::kVlanVid, &vid), Action::output(2)}));
    Translation t;
    translate(rules, udp_key(1), t);
    EXPECT_EQ(t.actions, (ActionList{Action::output(2)}));
}

TEST(Translate, FragmentsAreClassifiedWithPortsZero) {
    RuleSet rules(kPorts);
    Rule dns = ip_rule(0, 10, {Action::output(2)});
    dns.match.value.nw_proto = 17;
    dns.match.mask.nw_proto = 0xff;
    dns.match.value.tp_dst = htons(53);
    dns.match.mask.tp_dst = 0xffff;
    rules.add(dns);
    rules.add(ip_rule(0, 1, {Action::output(3)}));
    FlowKey first_fragment = udp_key(1);
    first_fragment.nw_frag = kFragAny;
    Translation t;
    translate(rules, first_fragment, t);
    EXPECT_EQ(outputs(t), std::vector<uint32_t>{3});
    EXPECT_EQ(t.wildcards.nw_frag, 0xff);
    translate(rules, udp_key(1), t);
    EXPECT_EQ(outputs(t), std::vector<uint32_t>{2});
}

TEST(Translate, ThirdVlanPushDropsTheInnermostTag) {
    FlowKey key = udp_key(1);
    key.vlans[0] = VlanTag{htons(0x88a8), htons(0x1000 | 0x2000 | 7)};  // PCP 1, VID 7
    key.vlans[1] = VlanTag{htons(0x8100), htons(0x1000 | 9)};
    RuleSet rules(kPorts);
    rules.add(rule(0, 1, {Action::push_vlan(0x8100), Action::output(2)}));
    Translation t;
    translate(rules, key, t);
    const uint16_t vid = htons(0x1000 | 7);
    const uint8_t pcp = 1;
    EXPECT_EQ(t.actions, (ActionList{Action::of(ActionType::kPopVlan), Action::of(ActionType::kPopVlan),
                                     Action::push_vlan(0x88a8), Action::set(SetField::kVlanVid, &vid),
                                     Action::set(SetField::kVlanPcp, &pcp), Action::push_vlan(0x8100),
                                     Action::output(2)}));
}

TEST(Translate, ArpChangesNeedNonZeroOpcode) {
    FlowKey arp{};
    arp.in_port = 1;
    arp.dl_type = htons(0x0806);
    arp.nw_src = htonl(0x0a000001);
    const uint32_t spa = htonl(0x0a000002);
    RuleSet rules(kPorts);
    rules.add(rule(0, 1, {Action::set(SetField::kArpSpa, &spa), Action::output(2)}));
    Translation t;
    translate(rules, arp, t);  // opcode 0
    EXPECT_EQ(t.actions, (ActionList{Action::output(2)}));
    arp.nw_proto = 1;  // request
    translate(rules, arp, t);
    EXPECT_EQ(t.actions, (ActionList{Action::set(SetField::kArpSpa, &spa), Action::output(2)}));
}

TEST(Translate, NdSetFieldNeedsNdAtThatPoint) {
    FlowKey ns{};
    ns.in_port = 1;
    ns.dl_type = htons(0x86dd);
    ns.nw_proto = 58;
    ns.tp_src = htons(135);
    uint8_t target[16] = {0xff, 0x02};
    target[15] = 1;
    const uint8_t code = 3;
    RuleSet code_first(kPorts);
    code_first.add(rule(0, 1, {Action::set(SetField::kIcmpv6Code, &code), Action::set(SetField::kNdTarget, target),
                               Action::output(2)}));
    Translation t;
    translate(code_first, ns, t);  // no longer ND when the target is set: ignored
    EXPECT_EQ(t.actions, (ActionList{Action::set(SetField::kIcmpv6Type, "\x87"),
                                     Action::set(SetField::kIcmpv6Code, &code), Action::output(2)}));
    RuleSet target_first(kPorts);
    target_first.add(rule(0, 1, {Action::set(SetField::kNdTarget, target), Action::set(SetField::kIcmpv6Code, &code),
                                 Action::output(2)}));
    translate(target_first, ns, t);  // set while ND, committed although the code changes after
    EXPECT_EQ(t.actions, (ActionList{Action::set(SetField::kNdTarget, target), Action::set(SetField::kIcmpv6Type, "\x87"),
                                     Action::set(SetField::kIcmpv6Code, &code), Action::output(2)}));
}

TEST(Translate, ResubmitLoopIsTooDeep) {
    RuleSet rules(kPorts);
    rules.add(rule(0, 1, {Action::output(2), Action::resubmit(kResubmitSamePort, 0)}));
    Translation t;
    translate(rules, udp_key(1), t);
    EXPECT_EQ(t.drop, TranslateDrop::too_deep);
    EXPECT_TRUE(t.actions.empty());
}

TEST(Translate, CountsMatchedRules) {
    RuleSet rules(kPorts);
    rules.add(rule(0, 1, {Action::resubmit(kResubmitSamePort, 1), Action::output(2)}));
    rules.add(rule(1, 1, {}));
    Translation t;
    translate(rules, udp_key(1), t);
    ASSERT_EQ(t.matched_count, 2u);
    EXPECT_EQ(t.matched[0]->rule.table, 0);
    EXPECT_EQ(t.matched[1]->rule.table, 1);
}

TEST(Translate, ConntrackRulesRefused) {
    RuleSet rules(kPorts);
    Rule r = rule(0, 1, {Action::of(ActionType::kCtClear)});
    r.source = {"r.rules", 3};
    try {
        rules.add(r);
        FAIL() << "ct accepted";
    } catch (const std::exception& e) {
        EXPECT_NE(std::string(e.what()).find("r.rules:3: "), std::string::npos) << e.what();
    }
}

// The megaflow property: every key that agrees with a translated key on its
// wildcards translates to the same actions.
TEST(Translate, WildcardsCoverEverythingTheResultDependsOn) {
    std::mt19937 rng(12345);
    auto pick = [&](uint32_t n) { return static_cast<uint32_t>(rng() % n); };
    for (int round = 0; round < 20; ++round) {
        RuleSet rules(kPorts);
        for (int i = 0; i < 40; ++i) {
            ActionList actions;
            const int n = 1 + pick(3);
            for (int j = 0; j < n; ++j) {
                switch (pick(6)) {
                    case 0: actions.push_back(Action::output(1 + pick(4))); break;
                    case 1: actions.push_back(Action::of(ActionType::kDecTtl)); break;
                    case 2: {
                        const uint32_t addr = htonl(0x0a000000 | pick(4));
                        actions.push_back(Action::set(SetField::kIpv4Dst, &addr));
                        break;
                    }
                    case 3: actions.push_back(Action::resubmit(kResubmitSamePort, static_cast<uint8_t>(1 + pick(2)))); break;
                    case 4: actions.push_back(Action::of(ActionType::kInPort)); break;
                    default: actions.push_back(Action::output(1 + pick(4))); break;
                }
            }
            Rule r = ip_rule(static_cast<uint8_t>(pick(3)), static_cast<uint16_t>(pick(1000)), actions);
            if (pick(2)) {
                r.match.value.in_port = 1 + pick(4);
                r.match.mask.in_port = 0xffffffff;
            }
            if (pick(2)) {
                const uint32_t prefix = 24 + pick(9);
                const uint32_t mask = prefix == 32 ? 0xffffffffu : ~(0xffffffffu >> prefix);
                r.match.mask.nw_dst = htonl(mask);
                r.match.value.nw_dst = htonl(0x0a000000 | pick(4)) & r.match.mask.nw_dst;
            }
            if (pick(3) == 0) {
                r.match.mask.nw_ttl = 0xff;
                r.match.value.nw_ttl = static_cast<uint8_t>(pick(3));
            }
            rules.add(r);
        }
        for (int k = 0; k < 200; ++k) {
            const FlowKey key = udp_key(1 + pick(4), 0x0a000000 | pick(6), static_cast<uint8_t>(pick(4)));
            Translation first;
            translate(rules, key, first);
            for (int variant = 0; variant < 10; ++variant) {
                // Random bits outside the wildcards.
                FlowKey other = udp_key(1 + pick(4), 0x0a000000 | pick(256), static_cast<uint8_t>(pick(256)));
                other.tp_src = static_cast<uint16_t>(rng());
                const uint64_t* kw = flow_words(key);
                const uint64_t* ww = flow_words(first.wildcards);
                uint64_t* ow = flow_words(other);
                for (size_t w = 0; w < kFlowWords; ++w) ow[w] = (kw[w] & ww[w]) | (ow[w] & ~ww[w]);
                Translation second;
                translate(rules, other, second);
                ASSERT_EQ(second.actions, first.actions) << "round " << round << " key " << k;
                ASSERT_EQ(second.drop, first.drop);
            }
        }
    }
}

}  // namespace
