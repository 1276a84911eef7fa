// Tests of the tuple-space classifier on hand-made cases: semantics,
// bookkeeping, and how narrow the wildcards of a lookup are. The randomized
// comparisons with the reference live in classifier_property_test.cpp.
#include <gtest/gtest.h>

#include <utility>
#include <vector>

#include "classifier_test_util.hpp"
#include "flowpath/classifier.hpp"

namespace flowpath {
namespace {

using namespace classifier_test;

/// A key matching IPv4 TCP 10.0.0.1:1000 -> 192.168.1.1:80 on port 1.
FlowKey tcp_key() {
    FlowKey key{};
    key.in_port = 1;
    key.dl_type = htons(0x0800);
    key.nw_src = ipv4(10, 0, 0, 1);
    key.nw_dst = ipv4(192, 168, 1, 1);
    key.nw_proto = 6;
    key.tp_src = htons(1000);
    key.tp_dst = htons(80);
    return key;
}

TEST(Classifier, EmptyFindsNothingAndExaminesNothing) {
    Classifier c;
    FlowMask wc{};
    EXPECT_EQ(c.lookup(tcp_key(), wc), nullptr);
    EXPECT_TRUE(is_zero(wc));
    EXPECT_EQ(c.reference_lookup(tcp_key()), nullptr);
    EXPECT_EQ(c.rule_count(), 0u);
    EXPECT_EQ(c.subtable_count(), 0u);
    EXPECT_TRUE(c.rules().empty());
}

TEST(Classifier, HighestPriorityWins) {
    Classifier c;
    FlowKey value{};
    FlowMask mask{};
    mask.dl_type = 0xFFFF;
    value.dl_type = htons(0x0800);
    ASSERT_TRUE(c.insert(value, mask, 10, 1, tag(1)));
    FlowMask mask2 = mask;
    mask2.nw_proto = 0xFF;
    FlowKey value2 = value;
    value2.nw_proto = 6;
    ASSERT_TRUE(c.insert(value2, mask2, 20, 2, tag(2)));
    EXPECT_EQ(c.subtable_count(), 2u);

    FlowMask wc{};
    const ClassifierRule* r = c.lookup(tcp_key(), wc);
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(r->id, 2u);
    EXPECT_EQ(r->payload, tag(2));

    FlowKey udp = tcp_key();
    udp.nw_proto = 17;
    r = c.lookup(udp, wc);
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(r->id, 1u);

    ASSERT_TRUE(c.remove(2));
    r = c.lookup(tcp_key(), wc);
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(r->id, 1u);
    EXPECT_EQ(c.subtable_count(), 1u);
}

TEST(Classifier, PrefixMasksAndPriorities) {
    Classifier c;
    const unsigned lengths[] = {8, 16, 24, 32};
    for (unsigned i = 0; i < 4; ++i) {
        FlowKey value{};
        FlowMask mask{};
        mask.nw_dst = prefix_mask(lengths[i]);
        value.nw_dst = ipv4(192, 168, 1, 1);
        ASSERT_TRUE(c.insert(value, mask, static_cast<uint16_t>(100 + i), i, tag(i)));
    }
    FlowKey key = tcp_key();
    FlowMask wc{};
    EXPECT_EQ(c.lookup(key, wc)->id, 3u);  // the /32, highest priority
    key.nw_dst = ipv4(192, 168, 1, 2);
    EXPECT_EQ(c.lookup(key, wc)->id, 2u);
    key.nw_dst = ipv4(192, 168, 2, 1);
    EXPECT_EQ(c.lookup(key, wc)->id, 1u);
    key.nw_dst = ipv4(192, 1, 1, 1);
    EXPECT_EQ(c.lookup(key, wc)->id, 0u);
    key.nw_dst = ipv4(193, 168, 1, 1);
    EXPECT_EQ(c.lookup(key, wc), nullptr);
}

TEST(Classifier, InsertRemoveModifyBookkeeping) {
    Classifier c;
    FlowKey value{};
    FlowMask mask{};
    mask.in_port = ~0u;
    value.in_port = 1;
    const uint64_t v0 = c.version();
    ASSERT_TRUE(c.insert(value, mask, 5, 7, tag(1)));
    EXPECT_GT(c.version(), v0);
    EXPECT_FALSE(c.insert(value, mask, 6, 7, tag(2))) << "duplicate id must be refused";
    EXPECT_EQ(c.rule_count(), 1u);
    EXPECT_EQ(c.find(7)->priority, 5);

    const uint64_t v1 = c.version();
    ASSERT_TRUE(c.modify(7, tag(3)));
    EXPECT_GT(c.version(), v1);
    EXPECT_EQ(c.find(7)->payload, tag(3));
    FlowMask wc{};
    EXPECT_EQ(c.lookup(tcp_key(), wc)->payload, tag(3));

    EXPECT_FALSE(c.modify(8, tag(4)));
    EXPECT_FALSE(c.remove(8));
    EXPECT_TRUE(c.remove(7));
    EXPECT_FALSE(c.remove(7));
    EXPECT_EQ(c.find(7), nullptr);
    EXPECT_EQ(c.rule_count(), 0u);
    EXPECT_EQ(c.subtable_count(), 0u);
    EXPECT_EQ(c.lookup(tcp_key(), wc), nullptr);

    // The id is free again.
    EXPECT_TRUE(c.insert(value, mask, 5, 7, tag(1)));
    c.clear();
    EXPECT_EQ(c.rule_count(), 0u);
    EXPECT_EQ(c.subtable_count(), 0u);
    EXPECT_EQ(c.lookup(tcp_key(), wc), nullptr);
}

TEST(Classifier, ValueIsStoredMasked) {
    Classifier c;
    FlowKey value = tcp_key();  // many bits outside the mask
    FlowMask mask{};
    mask.nw_src = prefix_mask(8);
    ASSERT_TRUE(c.insert(value, mask, 1, 1, nullptr));
    EXPECT_EQ(c.find(1)->value.nw_src, ipv4(10, 0, 0, 0));
    EXPECT_EQ(c.find(1)->value.in_port, 0u);
    FlowKey other{};
    other.nw_src = ipv4(10, 9, 9, 9);
    FlowMask wc{};
    EXPECT_NE(c.lookup(other, wc), nullptr);
    EXPECT_NE(c.find_exact(value, mask, 1), nullptr);
}

TEST(Classifier, FindExact) {
    Classifier c;
    FlowKey value{};
    FlowMask mask{};
    mask.tp_dst = 0xFFFF;
    value.tp_dst = htons(80);
    ASSERT_TRUE(c.insert(value, mask, 10, 1, nullptr));
    ASSERT_TRUE(c.insert(value, mask, 20, 2, nullptr));
    ASSERT_TRUE(c.insert(value, mask, 10, 3, nullptr));
    EXPECT_EQ(c.find_exact(value, mask, 10)->id, 1u);  // first inserted
    EXPECT_EQ(c.find_exact(value, mask, 20)->id, 2u);
    EXPECT_EQ(c.find_exact(value, mask, 30), nullptr);
    FlowKey other = value;
    other.tp_dst = htons(81);
    EXPECT_EQ(c.find_exact(other, mask, 10), nullptr);
    FlowMask other_mask = mask;
    other_mask.tp_src = 0xFFFF;
    EXPECT_EQ(c.find_exact(value, other_mask, 10), nullptr);
    c.remove(1);
    EXPECT_EQ(c.find_exact(value, mask, 10)->id, 3u);
}

TEST(Classifier, TiesGoToTheFirstInsertedRule) {
    // Two overlapping rules of equal priority in different subtables, in
    // both insertion orders: the first inserted wins either way.
    for (int order = 0; order < 2; ++order) {
        Classifier c;
        FlowKey v1{}, v2{};
        FlowMask m1{}, m2{};
        m1.nw_src = prefix_mask(8);
        v1.nw_src = ipv4(10, 0, 0, 0);
        m2.tp_dst = 0xFFFF;
        v2.tp_dst = htons(80);
        if (order == 0) {
            c.insert(v1, m1, 50, 1, nullptr);
            c.insert(v2, m2, 50, 2, nullptr);
        } else {
            c.insert(v2, m2, 50, 2, nullptr);
            c.insert(v1, m1, 50, 1, nullptr);
        }
        const uint32_t first = order == 0 ? 1 : 2;
        const uint32_t second = order == 0 ? 2 : 1;
        FlowMask wc{};
        EXPECT_EQ(c.lookup(tcp_key(), wc)->id, first);
        EXPECT_EQ(c.reference_lookup(tcp_key())->id, first);
        // Modify keeps the place; re-inserting moves to the back.
        c.modify(first, tag(9));
        EXPECT_EQ(c.lookup(tcp_key(), wc)->id, first);
        c.remove(first);
        EXPECT_EQ(c.lookup(tcp_key(), wc)->id, second);
        if (first == 1) c.insert(v1, m1, 50, 1, nullptr);
        else c.insert(v2, m2, 50, 2, nullptr);
        EXPECT_EQ(c.lookup(tcp_key(), wc)->id, second);
    }
}

TEST(Classifier, TiesWithinOneMatchGroup) {
    Classifier c;
    FlowKey value{};
    FlowMask mask{};
    mask.in_port = ~0u;
    value.in_port = 1;
    c.insert(value, mask, 7, 30, nullptr);
    c.insert(value, mask, 7, 10, nullptr);
    c.insert(value, mask, 7, 20, nullptr);
    FlowMask wc{};
    EXPECT_EQ(c.lookup(tcp_key(), wc)->id, 30u);
    c.remove(30);
    EXPECT_EQ(c.lookup(tcp_key(), wc)->id, 10u);
    c.insert(value, mask, 8, 40, nullptr);
    EXPECT_EQ(c.lookup(tcp_key(), wc)->id, 40u);
}

TEST(Classifier, CatchAllRuleWithEmptyMask) {
    Classifier c;
    c.insert(FlowKey{}, FlowMask{}, 0, 1, nullptr);
    FlowMask wc{};
    ASSERT_NE(c.lookup(tcp_key(), wc), nullptr);
    EXPECT_TRUE(is_zero(wc)) << "a catch-all examines nothing";
    FlowKey nothing{};
    EXPECT_EQ(c.lookup(nothing, wc)->id, 1u);
}

TEST(Classifier, ManySubtables) {
    Classifier c;
    // 33 nw_src prefix lengths x 3 tp_dst masks = 99 distinct masks.
    uint32_t id = 0;
    for (unsigned length = 0; length <= 32; ++length) {
        for (uint16_t port_mask : {uint16_t{0}, uint16_t{0xFFFF}, uint16_t{0xFF00}}) {
            FlowKey value{};
            FlowMask mask{};
            mask.nw_src = prefix_mask(length);
            mask.tp_dst = port_mask;
            value.nw_src = ipv4(10, 1, 2, 3) & mask.nw_src;
            value.tp_dst = htons(80) & port_mask;
            ASSERT_TRUE(c.insert(value, mask, static_cast<uint16_t>(id), id, nullptr));
            ++id;
        }
    }
    EXPECT_EQ(c.subtable_count(), 99u);
    EXPECT_EQ(c.rule_count(), 99u);
    FlowKey key = tcp_key();
    key.nw_src = ipv4(10, 1, 2, 3);
    FlowMask wc{};
    EXPECT_EQ(c.lookup(key, wc)->id, 98u);  // /32 with the 0xFF00 port mask
    key.nw_src = ipv4(10, 1, 2, 2);         // matches up to /31
    EXPECT_EQ(c.lookup(key, wc)->id, 95u);
    // The 0xFF00 mask (as stored) covers the second byte on the wire, the
    // port's low byte: 0x1250 still matches it, 81 matches only no-port rules.
    key.tp_dst = htons(0x1250);
    EXPECT_EQ(c.lookup(key, wc)->id, 95u);
    key.tp_dst = htons(81);
    EXPECT_EQ(c.lookup(key, wc)->id, 93u);
    EXPECT_EQ(c.lookup(key, wc), c.reference_lookup(key));
    for (uint32_t i = 0; i < id; ++i) ASSERT_TRUE(c.remove(i));
    EXPECT_EQ(c.subtable_count(), 0u);
}

TEST(Classifier, RulesListedByPriorityThenInsertion) {
    Classifier c;
    FlowMask mask{};
    mask.in_port = ~0u;
    FlowKey value{};
    const uint16_t priorities[] = {5, 9, 5, 1, 9};
    for (uint32_t i = 0; i < 5; ++i) {
        value.in_port = i;
        c.insert(value, mask, priorities[i], i, nullptr);
    }
    std::vector<uint32_t> ids;
    for (const ClassifierRule* r : c.rules()) ids.push_back(r->id);
    EXPECT_EQ(ids, (std::vector<uint32_t>{1, 4, 0, 2, 3}));
    c.compact_sequence_numbers();
    ids.clear();
    for (const ClassifierRule* r : c.rules()) ids.push_back(r->id);
    EXPECT_EQ(ids, (std::vector<uint32_t>{1, 4, 0, 2, 3}));
    EXPECT_EQ(c.find(3)->seq, 3u);
}

TEST(Classifier, CompactingKeepsTieBreaks) {
    Classifier c;
    FlowKey v1{}, v2{};
    FlowMask m1{}, m2{};
    m1.in_port = ~0u;
    v1.in_port = 1;
    m2.nw_proto = 0xFF;
    v2.nw_proto = 6;
    for (uint32_t i = 0; i < 10; ++i) c.insert(v1, m1, 1, 100 + i, nullptr);  // push seq up
    for (uint32_t i = 0; i < 10; ++i) c.remove(100 + i);
    c.insert(v2, m2, 3, 2, nullptr);
    c.insert(v1, m1, 3, 1, nullptr);
    c.compact_sequence_numbers();
    EXPECT_EQ(c.find(2)->seq, 0u);
    FlowMask wc{};
    EXPECT_EQ(c.lookup(tcp_key(), wc)->id, 2u);
    c.insert(v1, m1, 3, 3, nullptr);
    EXPECT_EQ(c.find(3)->seq, 2u);
    EXPECT_EQ(c.lookup(tcp_key(), wc)->id, 2u);
}

// --- Wildcard narrowness on hand-made cases ---

TEST(ClassifierWildcards, TrieUnwildcardsOnlyTheDecisiveAddressBits) {
    Classifier c;
    FlowKey value{};
    FlowMask mask{};
    mask.dl_type = 0xFFFF;
    value.dl_type = htons(0x0800);
    mask.nw_dst = prefix_mask(8);
    value.nw_dst = ipv4(10, 0, 0, 0);
    c.insert(value, mask, 100, 1, nullptr);

    FlowKey key = tcp_key();  // nw_dst 192.168.1.1: differs from 10/8 in bit 0
    FlowMask wc{};
    EXPECT_EQ(c.lookup(key, wc), nullptr);
    FlowMask expected{};
    expected.nw_dst = prefix_mask(1);
    EXPECT_EQ(wc, expected);

    // 11.x differs from 10.x only in bit 7: eight bits decide.
    key.nw_dst = ipv4(11, 0, 0, 0);
    wc = FlowMask{};
    EXPECT_EQ(c.lookup(key, wc), nullptr);
    expected.nw_dst = prefix_mask(8);
    EXPECT_EQ(wc, expected);

    // A catch-all below does not need more bits.
    c.insert(FlowKey{}, FlowMask{}, 0, 2, nullptr);
    key.nw_dst = ipv4(192, 168, 1, 1);
    wc = FlowMask{};
    EXPECT_EQ(c.lookup(key, wc)->id, 2u);
    expected.nw_dst = prefix_mask(1);
    EXPECT_EQ(wc, expected);
}

TEST(ClassifierWildcards, TrieWorksForIpv6) {
    Classifier c;
    FlowKey value{};
    FlowMask mask{};
    for (int i = 0; i < 8; ++i) mask.ipv6_src[i] = 0xFF;  // /64
    value.ipv6_src[0] = 0x20;
    value.ipv6_src[1] = 0x01;
    c.insert(value, mask, 100, 1, nullptr);
    FlowKey key{};
    key.ipv6_src[0] = 0x20;
    key.ipv6_src[1] = 0x02;  // differs at bit 14
    FlowMask wc{};
    EXPECT_EQ(c.lookup(key, wc), nullptr);
    FlowMask expected{};
    expected.ipv6_src[0] = 0xFF;
    expected.ipv6_src[1] = 0xFE;
    EXPECT_EQ(wc, expected);
    key.ipv6_src[1] = 0x01;
    key.ipv6_src[15] = 0x77;
    wc = FlowMask{};
    EXPECT_EQ(c.lookup(key, wc)->id, 1u);
    EXPECT_EQ(wc, mask);
}

// A key that ends its walk at a leaf prefix needs no bit past the leaf; one
// whose path goes on elsewhere needs the bit where it leaves (the megaflow
// workload's /16 sources got 17 bits before: twice the megaflows).
TEST(ClassifierWildcards, TrieLeafNeedsNoBitBeyondIt) {
    Classifier c;
    FlowKey value{};
    FlowMask mask{};
    mask.nw_src = prefix_mask(24);
    value.nw_src = ipv4(10, 28, 243, 0);
    c.insert(value, mask, 1000, 1, nullptr);
    mask.nw_src = prefix_mask(16);
    value.nw_src = ipv4(10, 83, 0, 0);
    c.insert(value, mask, 500, 2, nullptr);

    FlowKey key = tcp_key();
    key.nw_src = ipv4(10, 83, 5, 5);
    FlowMask wc{};
    LookupTrace trace;
    EXPECT_EQ(c.lookup(key, wc, &trace)->id, 2u);
    EXPECT_EQ(trace.trie_skips, 1u);
    FlowMask expected{};
    expected.nw_src = prefix_mask(16);
    EXPECT_EQ(wc, expected);

    // A /24 under the /16, on the side the key does not take: bit 16 decides.
    mask.nw_src = prefix_mask(24);
    value.nw_src = ipv4(10, 83, 128, 0);
    c.insert(value, mask, 1000, 3, nullptr);
    wc = FlowMask{};
    EXPECT_EQ(c.lookup(key, wc)->id, 2u);
    expected.nw_src = prefix_mask(17);
    EXPECT_EQ(wc, expected);
}

// The ports trie: a key whose ports leave every rule's of a subtable costs
// the leading port bits that show it, instead of the whole last word.
TEST(ClassifierWildcards, PortsTrieUnwildcardsOnlyTheLeadingPortBits) {
    Classifier c;
    FlowKey value{};
    FlowMask mask{};
    mask.dl_type = 0xFFFF;
    value.dl_type = htons(0x0800);
    mask.nw_proto = 0xFF;
    value.nw_proto = 6;
    mask.nw_src = prefix_mask(24);
    value.nw_src = ipv4(10, 0, 0, 0);
    mask.tp_dst = 0xFFFF;
    mask.tcp_flags = 0xFFFF;  // in the last word too: never looked at
    uint32_t id = 1;
    for (uint16_t port : {22, 53, 80, 443}) {
        value.tp_dst = htons(port);
        c.insert(value, mask, 100, id++, nullptr);
    }
    FlowMask earlier_stages{};
    earlier_stages.dl_type = 0xFFFF;
    earlier_stages.nw_proto = 0xFF;
    earlier_stages.nw_src = prefix_mask(24);

    // 8080 = 0x1f90 leaves 0x00xx/0x01xx at bit 3: four bits of tp_dst.
    FlowKey key = tcp_key();
    key.tp_dst = htons(8080);
    FlowMask wc{};
    LookupTrace trace;
    EXPECT_EQ(c.lookup(key, wc, &trace), nullptr);
    EXPECT_EQ(trace.full_probes, 1u);
    EXPECT_EQ(trace.port_trie_skips, 1u);
    FlowMask expected = earlier_stages;
    expected.tp_dst = htons(0xF000);
    EXPECT_EQ(wc, expected);

    // 81 shares 15 bits with 80: the whole port, not tcp_flags.
    key.tp_dst = htons(81);
    wc = FlowMask{};
    EXPECT_EQ(c.lookup(key, wc), nullptr);
    expected.tp_dst = 0xFFFF;
    EXPECT_EQ(wc, expected);

    // A rule's ports with other flags: the full probe, the whole mask.
    key.tp_dst = htons(80);
    key.tcp_flags = htons(0x12);
    wc = FlowMask{};
    trace = LookupTrace{};
    EXPECT_EQ(c.lookup(key, wc, &trace), nullptr);
    EXPECT_EQ(trace.full_probes, 1u);
    EXPECT_EQ(trace.port_trie_skips, 0u);
    EXPECT_EQ(wc, mask);

    // Masked source ports (tp_src=0x1000/0xf000 ... 0x4000/0xf000): 0x8000
    // leaves them at the first bit, 0x6000 at the third.
    Classifier ranges;
    FlowKey range_value{};
    FlowMask range_mask{};
    range_mask.tp_src = htons(0xF000);
    for (uint16_t high = 1; high <= 4; ++high) {
        range_value.tp_src = htons(static_cast<uint16_t>(high << 12));
        ranges.insert(range_value, range_mask, 100, high, nullptr);
    }
    // The source port's wildcards and the answer's id (0: none).
    auto source_port = [&](uint16_t port) {
        key.tp_src = htons(port);
        wc = FlowMask{};
        const ClassifierRule* hit = ranges.lookup(key, wc);
        return std::pair{ntohs(wc.tp_src), hit ? hit->id : 0u};
    };
    EXPECT_EQ(source_port(0x8123), std::pair(uint16_t{0x8000}, 0u));
    EXPECT_EQ(source_port(0x6123), std::pair(uint16_t{0xE000}, 0u));
    EXPECT_EQ(source_port(0x3123), std::pair(uint16_t{0xF000}, 3u));
    EXPECT_EQ(wc, range_mask);
}

TEST(ClassifierWildcards, StagedLookupStopsAtTheFirstMissingWord) {
    Classifier c;
    FlowKey value{};
    FlowMask mask{};
    mask.dl_type = 0xFFFF;  // word 3
    value.dl_type = htons(0x0800);
    mask.tp_dst = 0xFFFF;   // word 15
    value.tp_dst = htons(80);
    c.insert(value, mask, 100, 1, nullptr);

    FlowKey arp{};
    arp.dl_type = htons(0x0806);
    arp.tp_dst = htons(80);
    FlowMask wc{};
    LookupTrace trace;
    EXPECT_EQ(c.lookup(arp, wc, &trace), nullptr);
    FlowMask expected{};
    expected.dl_type = 0xFFFF;
    EXPECT_EQ(wc, expected) << "tp_dst need not be examined";
    EXPECT_EQ(trace.stage_misses, 1u);

    FlowKey other_port = tcp_key();
    other_port.tp_dst = htons(81);
    wc = FlowMask{};
    EXPECT_EQ(c.lookup(other_port, wc), nullptr);
    EXPECT_EQ(wc, mask);
}

TEST(ClassifierWildcards, SearchStopsOnceNothingCanBeatTheMatch) {
    Classifier c;
    FlowKey v1{}, v2{};
    FlowMask m1{}, m2{};
    m1.in_port = ~0u;
    v1.in_port = 1;
    m2.nw_src = prefix_mask(16);
    v2.nw_src = ipv4(10, 0, 0, 0);
    c.insert(v1, m1, 200, 1, nullptr);
    c.insert(v2, m2, 100, 2, nullptr);
    FlowMask wc{};
    LookupTrace trace;
    EXPECT_EQ(c.lookup(tcp_key(), wc, &trace)->id, 1u);
    EXPECT_EQ(wc, m1);
    EXPECT_EQ(trace.subtables_visited, 1u);

    FlowKey other = tcp_key();
    other.in_port = 2;
    wc = FlowMask{};
    EXPECT_EQ(c.lookup(other, wc, &trace)->id, 2u);
    FlowMask expected = m1;
    expected.nw_src = m2.nw_src;
    EXPECT_EQ(wc, expected);
}

TEST(ClassifierWildcards, AccumulatesIntoExistingBits) {
    Classifier c;
    FlowKey value{};
    FlowMask mask{};
    mask.in_port = ~0u;
    value.in_port = 1;
    c.insert(value, mask, 1, 1, nullptr);
    FlowMask wc{};
    wc.tp_src = 0xFFFF;
    c.lookup(tcp_key(), wc);
    EXPECT_EQ(wc.tp_src, 0xFFFF);
    EXPECT_EQ(wc.in_port, ~0u);
}

TEST(RuleTables, TablesAreIndependent) {
    RuleTables tables;
    FlowMask wc{};
    EXPECT_EQ(tables.lookup(0, tcp_key(), wc), nullptr);
    EXPECT_EQ(tables.find_table(3), nullptr);
    FlowKey value{};
    FlowMask mask{};
    mask.in_port = ~0u;
    value.in_port = 1;
    tables.table(3).insert(value, mask, 1, 1, tag(3));
    tables.table(253).insert(FlowKey{}, FlowMask{}, 1, 1, tag(253));
    EXPECT_EQ(tables.lookup(3, tcp_key(), wc)->payload, tag(3));
    EXPECT_EQ(tables.lookup(253, tcp_key(), wc)->payload, tag(253));
    EXPECT_EQ(tables.lookup(0, tcp_key(), wc), nullptr);
    EXPECT_EQ(tables.lookup(254, tcp_key(), wc), nullptr);
    EXPECT_EQ(tables.rule_count(), 2u);
    EXPECT_THROW(tables.table(254), std::out_of_range);
    const uint64_t v = tables.version();
    tables.clear();
    EXPECT_GT(tables.version(), v);
    EXPECT_EQ(tables.rule_count(), 0u);
}

}  // namespace
}  // namespace flowpath
