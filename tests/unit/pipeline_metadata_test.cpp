// OpenFlow metadata: the `metadata` match and the write_metadata and
// clear_actions instructions in the rule language (printed as ovs-ofctl 3.1
// prints them), in the rule set (selection, replacement, tie order) and in
// translation (matched beside the key, frozen across a recirculation).
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "flowpath/pipeline.hpp"
#include "pipeline_test_util.hpp"

using namespace flowpath;
using namespace flowpath::pipeline_test;

namespace {

Rule parsed(const std::string& text) {
    Parsed<Rule> r = parse_rule(text, kPorts);
    if (!r) throw std::runtime_error(text + ": " + r.error().to_string());
    return r.value();
}

TEST(Metadata, ParsesAndPrintsAsOvsOfctl) {
    // Left: what is written; right: what ovs-ofctl 3.1 prints for it
    // (`ovs-ofctl -O OpenFlow13 parse-flow`), with flowpath's port names.
    const std::pair<const char*, const char*> cases[] = {
        {"priority=5,metadata=0x5/0xff,in_port=1 actions=output:2,clear_actions,write_metadata:0x5/0xff,goto_table:1",
         "priority=5,metadata=0x5/0xff,in_port=p1 actions=output:p2,clear_actions,write_metadata:0x5/0xff,goto_table:1"},
        {"metadata=0xF/0xF0 actions=write_metadata:0xF/0xf0", "metadata=0/0xf0 actions=write_metadata:0xf/0xf0"},
        {"metadata=0xffffffffffffffff actions=write_metadata:0x5/0xffffffffffffffff",
         "metadata=0xffffffffffffffff actions=write_metadata:0x5"},
        {"metadata=0x5/0x0,in_port=1 actions=write_metadata:0x5/0", "in_port=p1 actions=write_metadata:0x5/0"},
        {"metadata=0,in_port=1 actions=write_metadata:0/0xff", "metadata=0,in_port=p1 actions=write_metadata:0/0xff"},
        {"in_port=1 actions=clear_actions", "in_port=p1 actions=clear_actions"},
        {"ct_state=+trk,ct_zone=1,metadata=1,in_port=1,ip,nw_src=1.2.3.4 actions=1",
         "ct_state=+trk,ct_zone=1,ip,metadata=0x1,in_port=p1,nw_src=1.2.3.4 actions=output:p1"},
        {"table=1,priority=7,tcp,metadata=0x1,tp_dst=80 actions=ct(commit,table=2),write_metadata:0x2",
         "table=1, priority=7,tcp,metadata=0x1,tp_dst=80 actions=ct(commit,table=2),write_metadata:0x2"},
    };
    for (const auto& [text, printed] : cases) {
        SCOPED_TRACE(text);
        const Rule rule = parsed(text);
        EXPECT_EQ(format_rule(rule, kPorts), printed);
        EXPECT_EQ(parsed(format_rule(rule, kPorts)), rule);  // prints back to the same rule
    }
    const Rule rule = parsed("metadata=0xa5/0xf0 actions=write_metadata:0x12/0xff");
    EXPECT_EQ(rule.match.metadata, 0xa0u);  // pre-masked
    EXPECT_EQ(rule.match.metadata_mask, 0xf0u);
    EXPECT_EQ(write_metadata_of(rule.actions.at(0)), (MetadataWrite{0x12, 0xff}));  // kept as written
}

TEST(Metadata, InstructionsComeAfterTheActionsInOpenFlowsOrderOnceEach) {
    for (const char* bad : {"actions=write_metadata:0x1,output:1", "actions=clear_actions,output:1",
                            "actions=write_metadata:0x1,clear_actions", "actions=clear_actions,clear_actions",
                            "actions=write_metadata:0x1,write_metadata:0x2", "actions=goto_table:1,write_metadata:0x1",
                            "actions=write_metadata", "actions=write_metadata:0x1/", "actions=clear_actions:1",
                            "metadata=0x1/,actions=drop", "metadata=x,actions=drop"}) {
        EXPECT_FALSE(parse_rule(bad, kPorts).ok()) << bad;
    }
    // ovs-ofctl's message names the rule: instructions in the wrong order.
    Parsed<Rule> wrong = parse_rule("actions=write_metadata:0x1,output:1", kPorts);
    ASSERT_FALSE(wrong.ok());
    EXPECT_NE(wrong.error().message.find("in this order and once each"), std::string::npos) << wrong.error().message;
    EXPECT_TRUE(parse_rule("actions=output:1,clear_actions,write_metadata:0x1,goto_table:1", kPorts).ok());
    // del-flows takes a metadata match too.
    Parsed<MatchFilter> filter = parse_match("metadata=0x5/0xff", kPorts);
    ASSERT_TRUE(filter.ok());
    EXPECT_EQ(filter.value().match.metadata_mask, 0xffu);
}

TEST(Metadata, WriteMetadataBeforeGotoTableAndResubmitSeesTheOldValue) {
    const RuleSet rules = rules_from(
        "in_port=p1,actions=resubmit(,1),write_metadata:0x5/0xff,goto_table:1\n"
        "table=1,priority=10,metadata=0x5/0xff,ip,actions=output:p2\n"
        "table=1,priority=5,ip,actions=output:p3\n"
        "table=1,priority=20,metadata=0x6,actions=output:p4\n");
    Translation t;
    translate(rules, udp_key(1), t);
    // The resubmit runs table 1 with metadata 0, goto_table with 0x5.
    EXPECT_EQ(outputs(t), (std::vector<uint32_t>{3, 2}));
    EXPECT_EQ(t.matched_count, 3u);
    // Metadata is no key bit: nothing beyond what a plain rule marks.
    EXPECT_EQ(t.wildcards.recirc_id, 0xffffffffu);
    EXPECT_EQ(t.wildcards.pad0, 0);
    EXPECT_EQ(t.wildcards.pad2, 0u);
}

// set_field to metadata as ovs-ofctl 3.1 takes it for OpenFlow 1.3 and
// Open vSwitch prints it back (ovs-ofctl add-flow, dump-flows): a whole
// value as set_field, a masked one as one load per run of ones in the mask
// (value masked), a mask of 0 as nothing; `load` itself read back.
TEST(Metadata, SetFieldToMetadataParsesAndPrintsAsOpenVSwitch) {
    const std::pair<const char*, const char*> cases[] = {
        {"actions=set_field:0x5->metadata,goto_table:1", "actions=set_field:0x5->metadata,goto_table:1"},
        {"actions=set_field:0x5/0xff->metadata,output:1", "actions=load:0x5->OXM_OF_METADATA[0..7],output:p1"},
        {"actions=set_field:0x5/0xf0f->metadata,output:1",
         "actions=load:0x5->OXM_OF_METADATA[0..3],load:0->OXM_OF_METADATA[8..11],output:p1"},
        {"actions=set_field:0x5/0x8000000000000001->metadata,output:1",
         "actions=load:0x1->OXM_OF_METADATA[0],load:0->OXM_OF_METADATA[63],output:p1"},
        {"actions=set_field:0x5/0xffffffffffffffff->metadata,output:1", "actions=set_field:0x5->metadata,output:p1"},
        {"actions=set_field:0x1ff/0xff->metadata,output:1", "actions=load:0xff->OXM_OF_METADATA[0..7],output:p1"},
        {"actions=set_field:0x5/0->metadata,output:1", "actions=output:p1"},
        {"actions=load:0x5->OXM_OF_METADATA[],output:1", "actions=load:0x5->OXM_OF_METADATA[],output:p1"},
        {"actions=load:0->OXM_OF_METADATA[3],output:1", "actions=load:0->OXM_OF_METADATA[3],output:p1"},
    };
    for (const auto& [text, printed] : cases) {
        SCOPED_TRACE(text);
        const Rule rule = parsed(text);
        EXPECT_EQ(format_rule(rule, kPorts), printed);
        EXPECT_EQ(parsed(format_rule(rule, kPorts)), rule);
    }
    for (const char* bad : {"actions=set_field:0x5/->metadata", "actions=set_field:x->metadata",
                            "actions=load:0x10->OXM_OF_METADATA[0..3]", "actions=load:1->OXM_OF_METADATA[64]",
                            "actions=load:1->OXM_OF_METADATA[3..2]", "actions=load:1->NXM_NX_REG0[]",
                            "actions=load:1"}) {
        EXPECT_FALSE(parse_rule(bad, kPorts).ok()) << bad;
    }
}

// Unlike write_metadata, set_field changes the metadata where it stands:
// a resubmit after it sees the new value.
TEST(Metadata, SetFieldToMetadataTakesEffectAtOnce) {
    const RuleSet rules = rules_from(
        "in_port=p1,actions=set_field:0x5/0xff->metadata,resubmit(,1),set_field:0x6->metadata,goto_table:1\n"
        "table=1,priority=10,metadata=0x5/0xff,ip,actions=output:p2\n"
        "table=1,priority=5,ip,actions=output:p3\n"
        "table=1,priority=20,metadata=0x6,actions=output:p4\n");
    Translation t;
    translate(rules, udp_key(1), t);
    EXPECT_EQ(outputs(t), (std::vector<uint32_t>{2, 4}));
}

TEST(Metadata, WritesMergeUnderTheirMasks) {
    const RuleSet rules = rules_from(
        "actions=write_metadata:0xab,goto_table:1\n"
        "table=1,actions=write_metadata:0x100/0xf00,goto_table:2\n"
        "table=2,priority=9,metadata=0x1ab,actions=output:p2\n"
        "table=2,priority=1,actions=output:p3\n");
    Translation t;
    translate(rules, udp_key(1), t);
    EXPECT_EQ(outputs(t), (std::vector<uint32_t>{2}));
}

TEST(Metadata, EqualPrioritiesKeepTheFirstAddedAcrossMetadataMatches) {
    // Rules with and without a metadata match live in different
    // classifiers; among equal priorities the first added still wins.
    RuleSet first_plain = rules_from(
        "table=1,priority=5,ip,actions=output:p2\n"
        "table=1,priority=5,metadata=0,ip,actions=output:p3\n"
        "actions=goto_table:1\n");
    RuleSet first_metadata = rules_from(
        "table=1,priority=5,metadata=0,ip,actions=output:p3\n"
        "table=1,priority=5,ip,actions=output:p2\n"
        "actions=goto_table:1\n");
    Translation t;
    translate(first_plain, udp_key(1), t);
    EXPECT_EQ(outputs(t), (std::vector<uint32_t>{2}));
    translate(first_metadata, udp_key(1), t);
    EXPECT_EQ(outputs(t), (std::vector<uint32_t>{3}));
    // dump-flows lists both in that order.
    const std::string dump = first_metadata.dump(1);
    EXPECT_LT(dump.find("ip,metadata=0 actions=output:p3"), dump.find("priority=5,ip actions=output:p2")) << dump;
}

TEST(Metadata, RuleSetSelectsReplacesAndRemovesWithTheMetadataMatch) {
    RuleSet rules = rules_from(
        "table=1,metadata=0x5/0xff,ip,actions=output:p2\n"
        "table=1,metadata=0x15,ip,actions=output:p3\n"
        "table=1,ip,actions=output:p4\n");
    EXPECT_EQ(rules.size(), 3u);
    // Same table, priority and match: replaced; another metadata: added.
    rules.add(parsed("table=1,metadata=0x5/0xff,ip,actions=output:p1"));
    EXPECT_EQ(rules.size(), 3u);
    EXPECT_NE(rules.find_exact(1, parsed("table=1,metadata=0x5/0xff,ip,actions=drop").match, kDefaultPriority),
              nullptr);
    EXPECT_EQ(rules.find_exact(1, parsed("table=1,metadata=0x5,ip,actions=drop").match, kDefaultPriority), nullptr);
    // Non-strict: rules at least as specific (0x15 under 0xff is 0x15, not 0x5).
    MatchFilter loose = parse_match("metadata=0x5/0xf", kPorts).value();
    EXPECT_EQ(rules.remove(loose), 2u);
    EXPECT_EQ(rules.size(), 1u);
    Translation t;
    FlowKey key = udp_key(1);
    rules.add(parsed("actions=goto_table:1"));
    translate(rules, key, t);
    EXPECT_EQ(outputs(t), (std::vector<uint32_t>{4}));
}

TEST(Metadata, RecirculationFreezesTheMetadata) {
    const RuleSet rules = rules_from(
        "priority=9,in_port=p1,ip,actions=write_metadata:0x7,goto_table:1\n"
        "priority=8,in_port=p2,ip,actions=write_metadata:0x8,goto_table:1\n"
        "priority=1,ip,actions=goto_table:1\n"
        "table=1,ip,actions=ct(table=2)\n"
        "table=2,priority=9,metadata=0x7,ip,actions=output:p2\n"
        "table=2,priority=8,metadata=0x8,ip,actions=output:p1\n"
        "table=2,priority=1,ip,actions=output:p4\n");
    Translation t;
    uint32_t ids[3];
    for (uint32_t port = 1; port <= 3; ++port) {
        translate(rules, udp_key(port), t);
        ASSERT_EQ(t.actions.size(), 2u);
        ASSERT_EQ(t.actions[1].type, ActionType::kRecirc);
        ids[port - 1] = t.actions[1].port;
    }
    EXPECT_NE(ids[0], ids[1]);
    EXPECT_EQ(ids[2], recirc_id_for(2, 3, 3));  // metadata 0: the id says it all
    EXPECT_TRUE(ids[0] & kRecircFrozen);
    translate(rules, udp_key(1), t);
    EXPECT_EQ(t.actions[1].port, ids[0]);  // the same state, the same id
    const uint32_t expected[3] = {2, 1, 4};
    for (uint32_t port = 1; port <= 3; ++port) {
        FlowKey next = udp_key(port);
        next.recirc_id = ids[port - 1];
        next.ct_state = kCtTracked | kCtNew;
        translate(rules, next, t);
        EXPECT_EQ(outputs(t), (std::vector<uint32_t>{expected[port - 1]})) << port;
        const RecircState state = rules.thaw(ids[port - 1], port);
        EXPECT_EQ(state.table, 2);
        EXPECT_EQ(state.in_port, port);
    }
    EXPECT_EQ(rules.thaw(ids[0], 1).metadata, 0x7u);
    EXPECT_EQ(rules.thaw(ids[1], 2).metadata, 0x8u);
}

TEST(Metadata, RecirculationFreezesTheInPortWithTheMetadata) {
    const RuleSet rules = rules_from(
        "in_port=p1,ip,actions=set_field:3->in_port,resubmit(,1),write_metadata:0x3\n"
        "table=1,in_port=p3,ip,actions=ct(table=2)\n"
        "table=2,metadata=0x3,in_port=p3,ip,actions=output:p1\n");
    Translation t;
    translate(rules, udp_key(1), t);
    ASSERT_EQ(t.actions.size(), 2u);
    const uint32_t id = t.actions[1].port;
    EXPECT_EQ(id & kRecircFrozen, 0u);  // the write comes after the resubmit: metadata 0 at the ct
    // With the write first (an apply action can't write it: a second table does).
    const RuleSet later = rules_from(
        "in_port=p1,ip,actions=write_metadata:0x3,goto_table:1\n"
        "table=1,ip,actions=set_field:3->in_port,resubmit(,2)\n"
        "table=2,in_port=p3,ip,actions=ct(table=3)\n"
        "table=3,metadata=0x3,in_port=p3,ip,actions=output:p1\n");
    translate(later, udp_key(1), t);
    ASSERT_EQ(t.actions.size(), 2u);
    const uint32_t frozen = t.actions[1].port;
    EXPECT_TRUE(frozen & kRecircFrozen);
    FlowKey next = udp_key(1);
    next.recirc_id = frozen;
    next.ct_state = kCtTracked | kCtNew;
    translate(later, next, t);
    EXPECT_EQ(outputs(t), (std::vector<uint32_t>{1}));  // in_port p3 thawed: output to p1 not skipped
}

TEST(Metadata, TableMissRuleIsACatchAllWithoutMetadata) {
    const RuleSet rules = rules_from("priority=0,metadata=0,actions=controller\n");
    Translation t;
    translate(rules, udp_key(1), t);
    ASSERT_EQ(t.actions.size(), 1u);
    EXPECT_EQ(t.actions[0].ct_flags & kControllerTableMiss, 0);  // reason ACTION, not NO_MATCH
}

// The state a PACKET_IN shows (Open vSwitch's frozen metadata and its
// `conntracked`): the metadata and in_port of the translation at the
// controller action, and whether the ct fields are the tracker's there.
TEST(Metadata, ControllerActionCarriesMetadataInPortAndWhetherConntracked) {
    const RuleSet rules = rules_from(
        "priority=9,in_port=p1,ip,actions=write_metadata:0x1234/0xff00,goto_table:1\n"
        "priority=8,in_port=p2,ip,actions=set_field:3->in_port,controller,ct(table=2),ct_clear,controller\n"
        "table=1,ip,actions=controller\n"
        "table=2,priority=5,ip,actions=controller,ct(zone=1),controller\n");
    Translation t;
    translate(rules, udp_key(1), t);
    ASSERT_EQ(t.actions.size(), 1u);
    EXPECT_EQ(controller_metadata(t.actions[0]), 0x1200u);
    EXPECT_EQ(controller_in_port(t.actions[0]), 1u);
    EXPECT_EQ(t.actions[0].table, 1);
    EXPECT_FALSE(t.actions[0].ct_flags & kControllerConntracked);

    translate(rules, udp_key(2), t);  // controller, ct, recirc, ct_clear, controller
    ASSERT_EQ(t.actions.size(), 5u);
    EXPECT_EQ(controller_in_port(t.actions[0]), 3u);  // set_field to in_port shows
    EXPECT_EQ(controller_metadata(t.actions[0]), 0u);
    ASSERT_EQ(t.actions[2].type, ActionType::kRecirc);
    EXPECT_FALSE(t.actions[4].ct_flags & kControllerConntracked);

    FlowKey next = udp_key(2);
    next.recirc_id = t.actions[2].port;
    next.ct_state = kCtTracked | kCtNew;
    translate(rules, next, t);  // controller, ct, controller
    ASSERT_EQ(t.actions.size(), 3u);
    EXPECT_TRUE(t.actions[0].ct_flags & kControllerConntracked);  // after the ct(table=2)
    EXPECT_EQ(controller_in_port(t.actions[0]), 3u);              // thawed
    EXPECT_FALSE(t.actions[2].ct_flags & kControllerConntracked);  // after a ct of its own
}

// As Open vSwitch (rule_dpif_lookup_from_table): resubmit(port,table) looks
// up with that in_port; the actions of the rule found see the packet's.
TEST(Metadata, ResubmitPortIsTheInPortOfTheLookupOnly) {
    const RuleSet rules = rules_from(
        "in_port=p1,ip,actions=resubmit(p2,1)\n"
        "table=1,in_port=p2,ip,actions=in_port,output:p1,output:p2,controller\n"
        "table=1,in_port=p1,ip,actions=output:p4\n");
    Translation t;
    translate(rules, udp_key(1), t);
    EXPECT_EQ(outputs(t), (std::vector<uint32_t>{1, 2}));
    ASSERT_EQ(t.actions.back().type, ActionType::kController);
    EXPECT_EQ(controller_in_port(t.actions.back()), 1u);
}

}  // namespace
