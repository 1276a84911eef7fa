// Translation of connection tracking: ct and ct_clear actions, ct_state,
// ct_zone and ct_mark matches, recirculation and the pass after it, as Open
// vSwitch 3.1 translates them, and the megaflow property with the ct fields
// and recirc_id.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <random>
#include <stdexcept>
#include <string>

#include "flowpath/pipeline.hpp"
#include "pipeline_test_util.hpp"

using namespace flowpath;
using namespace flowpath::pipeline_test;

namespace {

Action ct_action(uint16_t zone, bool commit, uint32_t mark = 0, uint32_t mark_mask = 0) {
    Action a = Action::of(ActionType::kCt);
    a.ct_zone = zone;
    a.ct_flags = static_cast<uint8_t>((commit ? kCtCommit : 0) | (mark_mask ? kCtSetMark : 0));
    a.ct_mark = mark;
    a.ct_mark_mask = mark_mask;
    return a;
}

// The key of a pass after a recirculation: what the tracker left.
FlowKey recirculated(FlowKey key, uint32_t recirc_id, uint8_t state, uint16_t zone = 0, uint32_t mark = 0) {
    key.recirc_id = recirc_id;
    key.ct_state = state;
    key.ct_zone = zone;
    key.ct_mark = mark;
    return key;
}

TEST(Translate, RecircIdsNameTheTableAndTheFrozenInPort) {
    EXPECT_EQ(recirc_id_for(0, 2, 2), 1u);
    EXPECT_EQ(recirc_table(recirc_id_for(253, 2, 2)), 253);
    EXPECT_EQ(recirc_in_port(recirc_id_for(7, 2, 2), 2), 2u);
    const uint32_t moved = recirc_id_for(7, 3, 2);
    EXPECT_NE(moved, recirc_id_for(7, 2, 2));
    EXPECT_EQ(recirc_table(moved), 7);
    EXPECT_EQ(recirc_in_port(moved, 2), 3u);
    EXPECT_EQ(recirc_in_port(moved, 1), 3u);
}

TEST(Translate, CtWithTableIsATrackerActionAndARecirculation) {
    const RuleSet rules = rules_from("ip,actions=ct(zone=1,table=2)\n");
    Translation t;
    translate(rules, udp_key(1), t);
    EXPECT_EQ(t.actions, (ActionList{ct_action(1, false), Action::recirc(recirc_id_for(2, 1, 1))}));
    EXPECT_EQ(t.drop, TranslateDrop::none);
    EXPECT_EQ(t.wildcards.recirc_id, 0xffffffffu);
    // Every translation depends on recirc_id, a drop too.
    translate(RuleSet(kPorts), udp_key(1), t);
    EXPECT_EQ(t.wildcards.recirc_id, 0xffffffffu);
}

TEST(Translate, PassAfterRecirculationStartsInItsTableWithTheCtFields) {
    const RuleSet rules = rules_from(
        "ip,actions=output:p3\n"
        "table=2,priority=10,ct_state=+trk+new,ip,actions=ct(commit,zone=1,exec(set_field:0x5->ct_mark)),output:p2\n"
        "table=2,priority=10,ct_state=+trk+est,ct_mark=5,ip,actions=output:p2\n"
        "table=2,priority=1,ip,actions=output:p4\n");
    Translation t;
    const uint32_t id = recirc_id_for(2, 1, 1);
    translate(rules, recirculated(udp_key(1), id, kCtTracked | kCtNew, 1), t);
    EXPECT_EQ(t.actions, (ActionList{ct_action(1, true, 5, 0xffffffff), Action::output(2)}));
    translate(rules, recirculated(udp_key(1), id, kCtTracked | kCtEstablished, 1, 5), t);
    EXPECT_EQ(t.actions, (ActionList{Action::output(2)}));
    EXPECT_EQ(t.wildcards.ct_mark, 0xffffffffu);
    translate(rules, recirculated(udp_key(1), id, kCtTracked | kCtEstablished, 1, 4), t);
    EXPECT_EQ(t.actions, (ActionList{Action::output(4)}));
    EXPECT_NE(t.wildcards.ct_state & (kCtTracked | kCtNew | kCtEstablished), 0);
    // The first pass of the same packet starts in table 0.
    translate(rules, udp_key(1), t);
    EXPECT_EQ(t.actions, (ActionList{Action::output(3)}));
}

TEST(Translate, CtWithoutTableGoesOnWithTheCtFieldsCleared) {
    // As Open vSwitch: the ct fields a later match reads in the same pass
    // are those of an untracked packet, whatever the tracker found.
    const RuleSet rules = rules_from(
        "ip,actions=ct(commit,zone=3),resubmit(,1)\n"
        "table=1,priority=10,ct_state=+trk,ip,actions=output:p2\n"
        "table=1,priority=5,ct_state=-trk,ip,actions=output:p3\n");
    Translation t;
    translate(rules, udp_key(1), t);
    EXPECT_EQ(t.actions, (ActionList{ct_action(3, true), Action::output(3)}));
    // Also when the pass began tracked.
    translate(rules, recirculated(udp_key(1), recirc_id_for(0, 1, 1), kCtTracked | kCtEstablished), t);
    EXPECT_EQ(t.actions, (ActionList{ct_action(3, true), Action::output(3)}));
}

TEST(Translate, CtClearClearsTheCtFieldsForLaterMatches) {
    const RuleSet rules = rules_from(
        "ip,actions=ct_clear,resubmit(,1)\n"
        "table=1,priority=10,ct_state=+trk,ip,actions=output:p2\n"
        "table=1,priority=5,ip,actions=output:p3\n");
    Translation t;
    translate(rules, recirculated(udp_key(1), recirc_id_for(0, 1, 1), kCtTracked | kCtEstablished), t);
    EXPECT_EQ(t.actions, (ActionList{Action::of(ActionType::kCtClear), Action::output(3)}));
}

TEST(Translate, CtForksWhenActionsFollowTheRecirculation) {
    const RuleSet rules = rules_from("ip,actions=ct(table=1),mod_nw_dst:10.0.0.9,output:p2\n");
    Translation t;
    translate(rules, udp_key(1), t);
    const uint32_t dst = htonl(0x0a000009);
    EXPECT_EQ(t.actions, (ActionList{ct_action(0, false), Action::recirc(recirc_id_for(1, 1, 1)),
                                     Action::set(SetField::kIpv4Dst, &dst), Action::output(2)}));
}

TEST(Translate, CtSeesTheHeaderChangesBeforeIt) {
    const RuleSet rules = rules_from("ip,actions=mod_nw_dst:10.0.0.9,ct(commit),output:p2\n");
    Translation t;
    translate(rules, udp_key(1), t);
    const uint32_t dst = htonl(0x0a000009);
    EXPECT_EQ(t.actions, (ActionList{Action::set(SetField::kIpv4Dst, &dst), ct_action(0, true), Action::output(2)}));
}

TEST(Translate, CtWithoutOutputStillTracksThenDrops) {
    Translation t;
    translate(rules_from("ip,actions=ct(commit)\n"), udp_key(1), t);
    EXPECT_EQ(t.actions, (ActionList{ct_action(0, true)}));
    EXPECT_EQ(t.drop, TranslateDrop::no_output);
    translate(rules_from("ip,actions=ct(commit),goto_table:5\n"), udp_key(1), t);
    EXPECT_EQ(t.actions, (ActionList{ct_action(0, true)}));
    EXPECT_EQ(t.drop, TranslateDrop::no_match);
    // Header changes after the last ct reach no one.
    translate(rules_from("ip,actions=ct(commit),mod_nw_dst:10.0.0.9\n"), udp_key(1), t);
    EXPECT_EQ(t.actions, (ActionList{ct_action(0, true)}));
    // A recirculation takes the packet: no drop, whatever this pass lacks.
    translate(rules_from("ip,actions=ct(table=1),goto_table:5\n"), udp_key(1), t);
    EXPECT_EQ(t.actions, (ActionList{ct_action(0, false), Action::recirc(recirc_id_for(1, 1, 1))}));
    EXPECT_EQ(t.drop, TranslateDrop::none);
}

TEST(Translate, RecirculationKeepsTheInPortOfTheTranslation) {
    // A ct after set_field to in_port freezes that in_port: the next pass
    // runs with it (Open vSwitch's frozen metadata), so output to the
    // packet's own port is no longer skipped there. A resubmit's port is
    // the in_port of its lookup only (ofproto/trace of Open vSwitch 3.1):
    // the ct in the rule it finds freezes the packet's.
    const RuleSet rules = rules_from(
        "in_port=p1,ip,actions=set_field:3->in_port,resubmit(,1)\n"
        "table=1,in_port=p3,ip,actions=ct(table=2)\n"
        "table=2,in_port=p3,ip,actions=output:p1\n");
    Translation t;
    translate(rules, udp_key(1), t);
    const uint32_t id = recirc_id_for(2, 3, 1);
    EXPECT_EQ(t.actions, (ActionList{ct_action(0, false), Action::recirc(id)}));
    translate(rules, recirculated(udp_key(1), id, kCtTracked | kCtNew), t);
    EXPECT_EQ(t.actions, (ActionList{Action::output(1)}));

    const RuleSet resubmitted = rules_from(
        "in_port=p1,ip,actions=resubmit(p3,1)\n"
        "table=1,in_port=p3,ip,actions=ct(table=2)\n"
        "table=2,in_port=p3,ip,actions=output:p2\n"
        "table=2,in_port=p1,ip,actions=output:p4\n");
    translate(resubmitted, udp_key(1), t);
    const uint32_t same_port = recirc_id_for(2, 1, 1);
    EXPECT_EQ(t.actions, (ActionList{ct_action(0, false), Action::recirc(same_port)}));
    translate(resubmitted, recirculated(udp_key(1), same_port, kCtTracked | kCtNew), t);
    EXPECT_EQ(t.actions, (ActionList{Action::output(4)}));
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

// The megaflow property for rules with ct actions and ct matches, on keys
// of first passes and of passes after recirculations (recirc_id, ct_state,
// ct_zone and ct_mark set): recirc_id always, and the ct fields wherever a
// match read them, are in the wildcards.
TEST(Translate, ConntrackWildcardsCoverEverythingTheResultDependsOn) {
    std::mt19937 rng(4242);
    auto pick = [&](uint32_t n) { return static_cast<uint32_t>(rng() % n); };
    const uint8_t states[] = {0, kCtTracked | kCtNew, kCtTracked | kCtEstablished,
                              kCtTracked | kCtEstablished | kCtReply, kCtTracked | kCtInvalid,
                              kCtTracked | kCtRelated | kCtReply, kCtTracked | kCtNew | kCtReply};
    auto random_recirc_id = [&](uint32_t in_port) -> uint32_t {
        switch (pick(4)) {
            case 0: return 0;
            case 1: return recirc_id_for(static_cast<uint8_t>(pick(3)), 1 + pick(4), in_port);
            default: return recirc_id_for(static_cast<uint8_t>(pick(3)), in_port, in_port);
        }
    };
    auto random_key = [&]() {
        FlowKey key = udp_key(1 + pick(4), 0x0a000000 | pick(4), static_cast<uint8_t>(pick(4)));
        key.recirc_id = random_recirc_id(key.in_port);
        if (key.recirc_id) {
            key.ct_state = states[pick(7)];
            key.ct_zone = static_cast<uint16_t>(pick(3));
            key.ct_mark = pick(3);
        }
        return key;
    };
    for (int round = 0; round < 20; ++round) {
        RuleSet rules(kPorts);
        for (int i = 0; i < 40; ++i) {
            ActionList actions;
            const int n = 1 + pick(4);
            for (int j = 0; j < n; ++j) {
                switch (pick(9)) {
                    case 0: {
                        Action ct = ct_action(static_cast<uint16_t>(pick(3)), pick(2), pick(4), pick(2) ? 0xff : 0);
                        if (pick(2)) {
                            ct.ct_flags |= kCtRecirc;
                            ct.table = static_cast<uint8_t>(pick(3));
                        }
                        actions.push_back(ct);
                        break;
                    }
                    case 1: actions.push_back(Action::of(ActionType::kCtClear)); break;
                    case 2: {
                        const uint32_t addr = htonl(0x0a000000 | pick(4));
                        actions.push_back(Action::set(SetField::kIpv4Dst, &addr));
                        break;
                    }
                    case 3: actions.push_back(Action::resubmit(kResubmitSamePort, static_cast<uint8_t>(pick(3)))); break;
                    case 4: actions.push_back(Action::resubmit(1 + pick(4), static_cast<uint8_t>(pick(3)))); break;
                    case 5: actions.push_back(Action::of(ActionType::kDecTtl)); break;
                    default: actions.push_back(Action::output(1 + pick(4))); break;
                }
            }
            Rule r = ip_rule(static_cast<uint8_t>(pick(3)), static_cast<uint16_t>(pick(1000)), actions);
            if (pick(2)) {
                const uint8_t state_masks[] = {kCtTracked, kCtTracked | kCtNew, kCtEstablished | kCtReply, kCtInvalid,
                                               0x3f};
                r.match.mask.ct_state = state_masks[pick(5)];
                r.match.value.ct_state = states[pick(7)] & r.match.mask.ct_state;
            }
            if (pick(4) == 0) {
                r.match.mask.ct_zone = 0xffff;
                r.match.value.ct_zone = static_cast<uint16_t>(pick(3));
            }
            if (pick(4) == 0) {
                r.match.mask.ct_mark = pick(2) ? 0xffffffffu : 1u;
                r.match.value.ct_mark = pick(3) & r.match.mask.ct_mark;
            }
            if (pick(2)) {
                r.match.value.in_port = 1 + pick(4);
                r.match.mask.in_port = 0xffffffff;
            }
            if (pick(3) == 0) {
                r.match.mask.nw_dst = htonl(0xfffffffe);
                r.match.value.nw_dst = htonl(0x0a000000 | pick(4)) & r.match.mask.nw_dst;
            }
            rules.add(r);
        }
        for (int k = 0; k < 200; ++k) {
            const FlowKey key = random_key();
            Translation first;
            translate(rules, key, first);
            ASSERT_EQ(first.wildcards.recirc_id, 0xffffffffu);
            for (int variant = 0; variant < 10; ++variant) {
                FlowKey noise = random_key();
                noise.tp_src = static_cast<uint16_t>(rng());
                Translation second;
                translate(rules, blend(key, first.wildcards, noise), second);
                ASSERT_EQ(second.actions, first.actions) << "round " << round << " key " << k;
                ASSERT_EQ(second.drop, first.drop);
            }
        }
    }
}

}  // namespace
