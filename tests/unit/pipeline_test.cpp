// Translation: tables, resubmit/goto, outputs, lazy header commits, and the
// megaflow property of the wildcards it records.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>

#include "flowpath/actions.hpp"
#include "flowpath/packet.hpp"
#include "flowpath/pipeline.hpp"
#include "frame_gen.hpp"
#include "pipeline_test_util.hpp"
#include "rule_gen.hpp"

using namespace flowpath;
using namespace flowpath::pipeline_test;

namespace {

Rule in_port_rule(uint32_t port, ActionList actions, uint16_t priority = 100) {
    Rule r = rule(0, priority, std::move(actions));
    r.match.value.in_port = port;
    r.match.mask.in_port = 0xffffffff;
    return r;
}

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

// What a controller action of rule `cookie` freezes for a packet from port 1.
ControllerState sent_by(uint64_t cookie, bool table_miss) {
    ControllerState state;
    state.cookie = cookie;
    state.in_port = 1;
    state.table_miss = table_miss;
    return state;
}

TEST(Translate, ControllerIsADatapathActionNamingTheRuleAfterTheHeaderChanges) {
    RuleSet rules(kPorts);
    Rule miss = rule(0, 0, {Action::controller(kControllerAll)});
    miss.cookie = 0x1234;
    rules.add(miss);
    Translation t;
    translate(rules, udp_key(1), t);
    // The table-miss rule (priority 0, catch-all): reason NO_MATCH.
    ASSERT_EQ(t.actions.size(), 1u);
    EXPECT_EQ(t.actions[0], datapath_controller(kControllerAll, 0, sent_by(0x1234, true)));
    EXPECT_EQ(controller_cookie(t.actions[0]), 0x1234u);

    const uint8_t mac[6] = {2, 0, 0, 0, 0, 9};
    Rule learn = rule(0, 5, {Action::set(SetField::kEthDst, mac), Action::controller(128), Action::goto_table(3)});
    learn.cookie = 7;
    rules.add(learn);
    rules.add(rule(3, 1, {Action::output(2)}));
    translate(rules, udp_key(1), t);
    ASSERT_EQ(t.actions.size(), 3u);
    EXPECT_EQ(t.actions[0].type, ActionType::kSetField);  // committed before the packet goes up
    EXPECT_EQ(t.actions[1], datapath_controller(128, 0, sent_by(7, false)));
    EXPECT_EQ(t.actions[2], Action::output(2));
    EXPECT_EQ(t.drop, TranslateDrop::none);
    // The copy for the controller is taken before the output takes the packet.
    EXPECT_EQ(packet_taker(t.actions.data(), t.actions.size()), 2u);
    const ActionList up_last = {Action::output(2), datapath_controller(128, 0, sent_by(7, false))};
    EXPECT_EQ(packet_taker(up_last.data(), up_last.size()), up_last.size());
}

TEST(Translate, InPortOfAPacketFromTheControllerIsNoPort) {
    RuleSet rules(kPorts);
    rules.add(rule(0, 1, {Action::of(ActionType::kInPort), Action::of(ActionType::kFlood)}));
    Translation t;
    translate(rules, udp_key(0xfffffffd), t);  // a packet-out's packet to TABLE, in_port CONTROLLER
    EXPECT_EQ(outputs(t), (std::vector<uint32_t>{1, 2, 3, 4}));
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

// A rule's parser check sees a tag, but a resubmitted rule stripped it:
// Open vSwitch 3.1 still writes the VID (and the present bit), so the packet
// gets a tag again, while a PCP set needs a tag when it runs (ofproto/trace
// of dl_vlan=5,actions=resubmit(,1),set_field:4105->vlan_vid,output:2 with
// table=1,vlan_tci=0x1000/0x1000,actions=strip_vlan: pop_vlan,
// push_vlan(vid=9,pcp=0),2; with set_field:3->vlan_pcp: pop_vlan,2).
TEST(Translate, VlanVidSetOnUntaggedTagsItPcpSetDoesNot) {
    const uint16_t vid = htons(0x1000 | 9);
    const uint8_t pcp = 3;
    const FlowKey tagged = [] {
        FlowKey k = udp_key(1);
        k.vlans[0] = VlanTag{htons(0x8100), htons(0x1000 | 5)};
        return k;
    }();
    for (const bool set_vid : {true, false}) {
        RuleSet rules(kPorts);
        rules.add(rule(0, 1, {Action::resubmit(kResubmitSamePort, 1),
                              set_vid ? Action::set(SetField::kVlanVid, &vid) : Action::set(SetField::kVlanPcp, &pcp),
                              Action::output(2)}));
        rules.add(rule(1, 1, {Action::of(ActionType::kPopVlan)}));
        Translation t;
        translate(rules, tagged, t);
        if (set_vid) {
            // The same bytes as pop_vlan,push_vlan(vid=9,pcp=0): the tag's
            // VID rewritten, DEI cleared.
            EXPECT_EQ(t.actions, (ActionList{Action::set(SetField::kVlanVid, &vid), Action::output(2)}));
        } else {
            EXPECT_EQ(t.actions, (ActionList{Action::of(ActionType::kPopVlan), Action::output(2)}));
        }
        // Untagged from the start: the same.
        translate(rules, udp_key(1), t);
        EXPECT_EQ(t.actions.size(), set_vid ? 3u : 1u);
    }
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

// A megaflow of an unfragmented packet must not answer a first fragment of
// the same 5-tuple (classified with ports 0): nw_frag is marked for every IP
// packet, even when no rule looks at it.
TEST(Translate, EveryIpPacketMarksNwFrag) {
    RuleSet rules(kPorts);
    rules.add(rule(0, 1, {Action::output(2)}));
    Translation t;
    translate(rules, udp_key(1), t);
    EXPECT_EQ(t.wildcards.nw_frag, 0xff);
    FlowKey v6 = udp_key(1);
    v6.dl_type = htons(0x86dd);
    translate(rules, v6, t);
    EXPECT_EQ(t.wildcards.nw_frag, 0xff);
    FlowKey arp{};
    arp.in_port = 1;
    arp.dl_type = htons(0x0806);
    translate(rules, arp, t);
    EXPECT_EQ(t.wildcards.nw_frag, 0);
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

FlowKey tagged_key(uint32_t in_port, std::initializer_list<VlanTag> tags) {
    FlowKey k = udp_key(in_port);
    int i = 0;
    for (const VlanTag& tag : tags) k.vlans[i++] = VlanTag{htons(tag.tpid), htons(tag.tci)};
    return k;
}

Action set_tci(uint16_t tci) {
    const uint16_t value = htons(tci);
    return Action::set(SetField::kVlanTci, &value);
}

Action set_vid(uint16_t vid) {
    const uint16_t value = htons(0x1000 | vid);
    return Action::set(SetField::kVlanVid, &value);
}

Action set_pcp(uint8_t pcp) { return Action::set(SetField::kVlanPcp, &pcp); }

const Action kPop = Action::of(ActionType::kPopVlan);

// set_field to vlan_tci as Open vSwitch 3.1 runs it (ofproto/trace of the
// same rule: push_vlan(vid=5,pcp=3) on an untagged packet, pop_vlan on a
// tagged one for a value without 0x1000, both pops on two tags, nothing
// when the tag already says it).
TEST(Translate, SetVlanTciPushesPopsOrRewrites) {
    struct Case {
        const char* what;
        FlowKey key;
        uint16_t tci;
        ActionList want;
    } cases[] = {
        {"untagged, present", udp_key(1), 0x7005, {Action::push_vlan(0x8100), set_vid(5), set_pcp(3)}},
        {"untagged, VID 0", udp_key(1), 0x1000, {Action::push_vlan(0x8100)}},
        {"untagged, absent", udp_key(1), 0x0005, {}},
        {"tagged, same", tagged_key(1, {{0x8100, 0x7005}}), 0x7005, {}},
        {"tagged, other VID", tagged_key(1, {{0x8100, 0x7005}}), 0x7009, {set_vid(9)}},
        {"tagged, other PCP", tagged_key(1, {{0x8100, 0x7005}}), 0x1005, {set_pcp(0)}},
        {"tagged, absent", tagged_key(1, {{0x8100, 0x7005}}), 0x0000, {kPop}},
        {"tagged, absent with bits", tagged_key(1, {{0x8100, 0x7005}}), 0xefff, {kPop}},
        {"two tags, outer rewritten (TPID kept)", tagged_key(1, {{0x88a8, 0x5007}, {0x8100, 0x3009}}), 0x1005,
         {set_vid(5), set_pcp(0)}},
        {"two tags, absent", tagged_key(1, {{0x88a8, 0x5007}, {0x8100, 0x3009}}), 0x0000, {kPop, kPop}},
    };
    for (const Case& c : cases) {
        RuleSet rules(kPorts);
        rules.add(rule(0, 1, {set_tci(c.tci), Action::output(2)}));
        Translation t;
        translate(rules, c.key, t);
        ActionList want = c.want;
        want.push_back(Action::output(2));
        EXPECT_EQ(t.actions, want) << c.what;
        EXPECT_EQ(t.wildcards.vlans[0].tci, 0xffff) << c.what;
        EXPECT_EQ(t.wildcards.vlans[1].tci, 0xffff) << c.what;
    }
}

TEST(Translate, VlanChangesCommitLazilyLikeOtherFields) {
    const FlowKey key = tagged_key(1, {{0x8100, 0x7005}});
    struct Case {
        const char* what;
        FlowKey key;
        ActionList actions;
        ActionList want;
    } cases[] = {
        // Taken away and put back before the output: the packet keeps its tag.
        {"tci 0 then back", key, {set_tci(0), set_tci(0x7005), Action::output(2)}, {Action::output(2)}},
        {"pop then push the same", key, {kPop, Action::push_vlan(0x8100), set_vid(5), set_pcp(3), Action::output(2)},
         {Action::output(2)}},
        {"push then pop", udp_key(1), {Action::push_vlan(0x8100), kPop, Action::output(2)}, {Action::output(2)}},
        // Each output sees the tags as they are at that point.
        {"two outputs", udp_key(1), {set_tci(0x1005), Action::output(2), set_tci(0), Action::output(3)},
         {Action::push_vlan(0x8100), set_vid(5), Action::output(2), kPop, Action::output(3)}},
        // A slot set without the present bit: a push puts it behind the new tag
        // where it does not count, so the packet gets just the new tag.
        {"absent tci then push", tagged_key(1, {{0x88a8, 0x5007}, {0x8100, 0x3009}}),
         {set_tci(0), Action::push_vlan(0x8100), Action::output(2)},
         {kPop, kPop, Action::push_vlan(0x8100), Action::output(2)}},
        // The slot keeps its TPID: 0x88a8 comes back.
        {"TPID kept", tagged_key(1, {{0x88a8, 0x5007}}), {set_tci(0), set_tci(0x1009), Action::push_vlan(0x8100),
                                                         Action::output(2)},
         {kPop, Action::push_vlan(0x88a8), set_vid(9), Action::push_vlan(0x8100), Action::output(2)}},
    };
    for (const Case& c : cases) {
        RuleSet rules(kPorts);
        rules.add(rule(0, 1, c.actions));
        Translation t;
        translate(rules, c.key, t);
        EXPECT_EQ(t.actions, c.want) << c.what;
    }
}

// Later tables see the slot as set, present bit or not (ofproto/trace: a
// rule on vlan_tci=0x0005/0x0fff matches after set_field:0x5->vlan_tci).
TEST(Translate, LaterTablesSeeTheTciAsSet) {
    auto rules_with = [](ActionList first_table) {
        RuleSet rules(kPorts);
        Rule seen = rule(1, 10, {Action::output(2)});
        seen.match.value.vlans[0].tci = htons(0x0005);
        seen.match.mask.vlans[0].tci = htons(0x0fff);
        rules.add(seen);
        rules.add(rule(1, 1, {Action::output(3)}));
        first_table.push_back(Action::resubmit(kResubmitSamePort, 1));
        rules.add(rule(0, 1, first_table));
        return rules;
    };
    const RuleSet set_only = rules_with({set_tci(0x0005)});
    Translation t;
    translate(set_only, udp_key(1), t);
    EXPECT_EQ(t.actions, (ActionList{Action::output(2)}));
    translate(set_only, tagged_key(1, {{0x8100, 0x3005}}), t);
    EXPECT_EQ(t.actions, (ActionList{kPop, Action::output(2)}));
    // A pop of the only tag clears just the outer slot (ofproto/trace
    // agrees): the 0x0005 that the push moved into the second slot stays
    // there, unseen.
    const RuleSet push_pop = rules_with({set_tci(0x0005), Action::push_vlan(0x8100), kPop});
    translate(push_pop, udp_key(1), t);
    EXPECT_EQ(t.actions, (ActionList{Action::output(3)}));
}

// The megaflow property for rules full of VLAN actions, on keys with no,
// one and two tags.
TEST(Translate, VlanWildcardsCoverEverythingTheResultDependsOn) {
    std::mt19937 rng(777);
    auto pick = [&](uint32_t n) { return static_cast<uint32_t>(rng() % n); };
    const uint16_t tcis[] = {0x0000, 0x0005, 0x1000, 0x1005, 0x7005, 0x3009, 0xefff};
    auto random_key = [&]() {
        FlowKey key = udp_key(1 + pick(4));
        const unsigned tags = pick(3);
        for (unsigned i = 0; i < tags; ++i) {
            key.vlans[i] = VlanTag{htons(pick(2) ? 0x8100 : 0x88a8),
                                   htons(0x1000 | (pick(2) ? 5 : pick(8)) | pick(8) << 13)};
        }
        return key;
    };
    auto tags_of = [](const FlowKey& key) {
        char text[64];
        std::snprintf(text, sizeof text, "%04x/%04x %04x/%04x", ntohs(key.vlans[0].tpid), ntohs(key.vlans[0].tci),
                      ntohs(key.vlans[1].tpid), ntohs(key.vlans[1].tci));
        return std::string(text);
    };
    for (int round = 0; round < 20; ++round) {
        RuleSet rules(kPorts);
        for (int i = 0; i < 30; ++i) {
            ActionList actions;
            const int n = 1 + pick(5);
            for (int j = 0; j < n; ++j) {
                switch (pick(8)) {
                    case 0: actions.push_back(set_tci(tcis[pick(7)])); break;
                    case 1: actions.push_back(Action::push_vlan(pick(2) ? 0x8100 : 0x88a8)); break;
                    case 2: actions.push_back(kPop); break;
                    case 3: actions.push_back(set_vid(static_cast<uint16_t>(pick(2) ? 5 : pick(4096)))); break;
                    case 4: actions.push_back(set_pcp(static_cast<uint8_t>(pick(8)))); break;
                    case 5:
                        actions.push_back(Action::resubmit(kResubmitSamePort, static_cast<uint8_t>(1 + pick(2))));
                        break;
                    default: actions.push_back(Action::output(1 + pick(4))); break;
                }
            }
            Rule r = rule(static_cast<uint8_t>(pick(3)), static_cast<uint16_t>(pick(1000)), actions);
            if (pick(2)) {
                const uint16_t masks[] = {0x1000, 0x1fff, 0xf000, 0xffff, 0x0fff, 0xf00f};
                const uint16_t mask = masks[pick(6)];
                r.match.mask.vlans[0].tci = htons(mask);
                r.match.value.vlans[0].tci = htons(tcis[pick(7)] & mask);
            }
            rules.add(r);
        }
        for (int k = 0; k < 200; ++k) {
            const FlowKey key = random_key();
            Translation first;
            translate(rules, key, first);
            for (int variant = 0; variant < 10; ++variant) {
                FlowKey other = random_key();
                const uint64_t* kw = flow_words(key);
                const uint64_t* ww = flow_words(first.wildcards);
                uint64_t* ow = flow_words(other);
                for (size_t w = 0; w < kFlowWords; ++w) ow[w] = (kw[w] & ww[w]) | (ow[w] & ~ww[w]);
                Translation second;
                translate(rules, other, second);
                ASSERT_EQ(second.actions, first.actions)
                    << "round " << round << " key " << k << " tags " << tags_of(key) << " vs " << tags_of(other);
                ASSERT_EQ(second.drop, first.drop);
            }
        }
    }
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

// --- The megaflow property on generated rules and real frames ---

/// The key of a frame as the worker extracts it.
FlowKey key_of(const test_frames::Bytes& frame, uint32_t in_port) {
    Miniflow mf;
    PacketLayout layout;
    extract_miniflow(frame.vec().data(), static_cast<uint32_t>(frame.size()), in_port, mf, layout);
    return miniflow_expand(mf);
}

/// Rules from the rule generator (every match field and action of the rule
/// language, conntrack's included), and keys of
/// generated frames (fragments, VLANs, ND, ARP, truncated and malformed),
/// half of them forced into a random rule's match so rules with rare values
/// are hit. The megaflow property: any key that agrees with a translated key
/// on its wildcards translates to the same actions.
TEST(Translate, WildcardsCoverEverythingOnGeneratedRulesAndFrames) {
    for (uint32_t round = 0; round < 40; ++round) {
        rulegen::RuleGenOptions options;
        options.max_table = 2;
        rulegen::RuleGen gen(round + 1, options);
        const PortNames ports = gen.ports();
        RuleSet rules(ports);
        std::vector<Rule> added;
        while (added.size() < 40) {
            Parsed<Rule> parsed = parse_rule(gen.rule(), ports);
            ASSERT_TRUE(parsed.ok()) << parsed.error().to_string();
            rules.add(parsed.value());
            added.push_back(parsed.value());
        }
        test_frames::FrameGen frames(round + 100);
        // Rules over the frames' own pools, so the rewrites that depend on
        // the packet are hit often.
        for (const char* text : test_frames::kRulesOverFramePools) {
            if (frames.pick(2)) continue;
            Parsed<Rule> parsed = parse_rule(text, ports);
            ASSERT_TRUE(parsed.ok()) << text << ": " << parsed.error().to_string();
            parsed.value().priority = static_cast<uint16_t>(frames.pick(65536));
            parsed.value().table = static_cast<uint8_t>(frames.pick(3));
            rules.add(parsed.value());
            added.push_back(parsed.value());
        }
        auto random_key = [&]() {
            FlowKey key = key_of(frames.frame(), 1 + frames.pick(4));
            if (frames.pick(2)) {
                const Match& m = added[frames.pick(static_cast<uint32_t>(added.size()))].match;
                key = blend(m.value, m.mask, key);
            }
            return key;
        };
        for (int k = 0; k < 300; ++k) {
            const FlowKey key = random_key();
            Translation first;
            translate(rules, key, first);
            for (int variant = 0; variant < 12; ++variant) {
                // The bits outside the wildcards from another key, all zero
                // (nw_proto 0, ports 0, no tags), or one word's random.
                FlowKey other;
                switch (variant % 3) {
                    case 0: other = blend(key, first.wildcards, random_key()); break;
                    case 1: other = blend(key, first.wildcards, FlowKey{}); break;
                    default: {
                        FlowKey noise = key;
                        flow_words(noise)[frames.pick(kFlowWords)] = uint64_t{frames.rng()()} << 32 | frames.rng()();
                        other = blend(key, first.wildcards, noise);
                        break;
                    }
                }
                Translation second;
                translate(rules, other, second);
                ASSERT_EQ(second.actions, first.actions) << "round " << round << " key " << k << " variant " << variant;
                ASSERT_EQ(second.drop, first.drop) << "round " << round << " key " << k;
            }
        }
    }
}

// A rule that only outputs needs in_port, dl_type, recirc_id and (IP)
// nw_frag, as in Open vSwitch, whatever the packet: no nw_proto, no ICMP
// type or code.
TEST(Translate, PlainOutputMarksOnlyInPortDlTypeRecircIdAndNwFrag) {
    RuleSet rules(kPorts);
    rules.add(rule(0, 1, {Action::output(2)}));
    test_frames::FrameGen frames(5);
    for (int i = 0; i < 2000; ++i) {
        const FlowKey key = key_of(frames.frame(), 1);
        Translation t;
        translate(rules, key, t);
        FlowMask want{};
        want.in_port = 0xffffffff;
        want.dl_type = 0xffff;
        want.recirc_id = 0xffffffff;
        if (key.dl_type == htons(0x0800) || key.dl_type == htons(0x86dd)) want.nw_frag = 0xff;
        ASSERT_TRUE(t.wildcards == want) << "frame " << i << " nw_proto " << int(key.nw_proto);
    }
}

// A pending change that nw_proto 0 holds back still marks nw_proto (Open
// vSwitch does not, and its megaflows are wrong there).
TEST(Translate, ChangeSkippedForNwProtoZeroMarksNwProto) {
    const uint8_t tos = 0x20;
    RuleSet rules(kPorts);
    rules.add(rule(0, 1, {Action::set(SetField::kNwTos, &tos), Action::output(2)}));
    FlowKey key = udp_key(1);
    key.nw_proto = 0;
    Translation t;
    translate(rules, key, t);
    EXPECT_EQ(t.actions, ActionList{Action::output(2)});
    EXPECT_EQ(t.wildcards.nw_proto, 0xff);
    translate(rules, udp_key(1), t);
    EXPECT_EQ(t.actions, (ActionList{Action::set(SetField::kNwTos, &tos), Action::output(2)}));
    EXPECT_EQ(t.wildcards.nw_proto, 0xff);
}

}  // namespace
