// The worker-facing pieces of pipeline passes that need no DPDK: a pass's
// key (metadata words in the miniflow), the upcall ordering (the earliest
// packet still at the slow path), dispatch's groups, the held queue in arrival order, the
// executor's ranges, and the symmetric RSS key.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <rte_thash.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <memory>
#include <random>
#include <vector>

#include "flowpath/actions.hpp"
#include "flowpath/io.hpp"
#include "flowpath/packet.hpp"
#include "flowpath/passes.hpp"
#include "flowpath/pipeline.hpp"
#include "flowpath/slowpath.hpp"
#include "packet_builders.hpp"

using namespace flowpath;

namespace {

using namespace test_frames;

std::vector<uint8_t> udp4_frame() { return (eth(0x0800) + ipv4(17, udp(1000, 53))).vec(); }
std::vector<uint8_t> tcp4_frame() { return (eth(0x0800) + ipv4(6, tcp(40000, 80, 0x02))).vec(); }
std::vector<uint8_t> arp_frame() { return (eth(0x0806) + arp(1)).vec(); }

PacketMeta meta_of(uint32_t in_port, uint32_t recirc_id, uint8_t state, uint16_t zone, uint32_t mark) {
    PacketMeta meta;
    meta.in_port = in_port;
    meta.recirc_id = recirc_id;
    meta.ct.state = state;
    meta.ct.zone = zone;
    meta.ct.mark = mark;
    return meta;
}

// A pass's key is the frame's key with the metadata fields set, whatever
// words the frame's parse path provides.
TEST(PassKey, MetadataWordsGoIntoTheExtractedMiniflow) {
    const std::vector<std::vector<uint8_t>> frames = {
        udp4_frame(), tcp4_frame(), arp_frame(),
        std::vector<uint8_t>(10, 0xab),  // shorter than Ethernet: word 0 alone
    };
    const PacketMeta metas[] = {
        meta_of(3, 0, 0, 0, 0),
        meta_of(3, recirc_id_for(5, 3, 3), kCtTracked | kCtNew, 0, 0),
        meta_of(2, recirc_id_for(1, 4, 2), kCtTracked | kCtEstablished | kCtReply, 7, 0xdeadbeef),
        meta_of(1, 0, kCtTracked, 0, 1),
    };
    for (const auto& frame : frames) {
        for (const PacketMeta& meta : metas) {
            Miniflow flow;
            PacketLayout layout, reference_layout;
            extract_upcall(frame.data(), static_cast<uint32_t>(frame.size()), meta, flow, layout);
            FlowKey want;
            parse_flow_key(frame.data(), static_cast<uint32_t>(frame.size()), meta.in_port, want, reference_layout);
            want.recirc_id = meta.recirc_id;
            want.ct_state = meta.ct.state;
            want.ct_zone = meta.ct.zone;
            want.ct_mark = meta.ct.mark;
            EXPECT_TRUE(miniflow_expand(flow) == want);
            // Words stay in increasing order with the map (the hashes rely on it).
            EXPECT_EQ(flow.size(), static_cast<unsigned>(__builtin_popcountll(flow.map)));
            for (unsigned w = 0; w < kFlowWords; ++w) EXPECT_EQ(flow.get(w), flow_words(want)[w]);
        }
    }
}

TEST(PassKey, SettingAWordInsertsReplacesAndRemoves) {
    FlowKey key{};
    key.in_port = 1;
    key.dl_type = htons(0x0800);
    key.tp_src = 7;
    Miniflow flow = miniflow_from_key(key);
    miniflow_set_word(flow, 1, 0x1234);
    key.ct_zone = 0x1234;
    EXPECT_TRUE(miniflow_expand(flow) == key);
    miniflow_set_word(flow, 1, 0x99);
    key.ct_zone = 0x99;
    EXPECT_TRUE(miniflow_expand(flow) == key);
    miniflow_set_word(flow, 1, 0);
    key.ct_zone = 0;
    EXPECT_TRUE(miniflow_expand(flow) == key);
    EXPECT_EQ(flow.map & 2, 0u);
    miniflow_set_word(flow, 15, 0);
    key.tp_src = 0;
    EXPECT_TRUE(miniflow_expand(flow) == key);
}

// The shortcut's rule (recirc_mask_covered), checked against masked
// compares: when the next mask is covered, every key that matches the
// previous megaflow and carries the same pass metadata matches the next
// megaflow that one such key found; when it is not, some such key does not.
TEST(RecircShortcut, CoveredMaskAnswersEveryPacketOfThePair) {
    std::mt19937_64 rng(77);
    const auto masked_equal = [](const FlowKey& a, const FlowKey& b, const FlowMask& mask) {
        for (unsigned w = 0; w < kFlowWords; ++w) {
            if ((flow_words(a)[w] ^ flow_words(b)[w]) & flow_words(mask)[w]) return false;
        }
        return true;
    };
    const auto random_mask = [&](unsigned density) {
        FlowMask mask{};
        for (unsigned w = 0; w < kFlowWords; ++w) {
            uint64_t m = 0;
            for (unsigned byte = 0; byte < 8; ++byte) {
                if (rng() % 16 < density) m |= uint64_t{0xff} << (8 * byte);
            }
            flow_words(mask)[w] = m;
        }
        mask.in_port = UINT32_MAX;  // every megaflow matches in_port
        return mask;
    };
    unsigned covered = 0, uncovered = 0;
    for (int round = 0; round < 2000; ++round) {
        const FlowMask previous = random_mask(10);
        // The next mask: a subset of the previous one's bits plus metadata,
        // sometimes with one bit more.
        FlowMask next{};
        for (unsigned w = 0; w < kFlowWords; ++w) flow_words(next)[w] = flow_words(previous)[w] & rng();
        next.in_port = UINT32_MAX;
        next.ct_state = 0xff;
        next.recirc_id = UINT32_MAX;
        next.ct_mark = static_cast<uint32_t>(rng());
        if (rng() % 2) next.tp_src |= 0x8000;  // perhaps a bit the previous mask lacks
        const bool want_covered = (next.tp_src & ~previous.tp_src) == 0;
        ASSERT_EQ(recirc_mask_covered(next, previous), want_covered) << round;
        (want_covered ? covered : uncovered)++;

        // Keys of the previous megaflow: the first one's pass key (metadata
        // set) installs the next megaflow; the others take it by the shortcut.
        FlowKey first{};
        for (unsigned w = 0; w < kFlowWords; ++w) flow_words(first)[w] = rng();
        first.ct_mark = first.ct_zone = first.ct_state = 0;
        first.pad0 = 0;
        first.recirc_id = 0;
        const uint32_t mark = static_cast<uint32_t>(rng()), recirc = 1 + static_cast<uint32_t>(rng() % 9);
        const auto pass_key = [&](FlowKey key) {
            key.ct_mark = mark;
            key.ct_state = kCtTracked | kCtEstablished;
            key.ct_zone = 3;
            key.recirc_id = recirc;
            return key;
        };
        const FlowKey installed = pass_key(first);
        bool all_match = true;
        for (int k = 0; k < 32; ++k) {
            FlowKey other{};
            for (unsigned w = 0; w < kFlowWords; ++w) {
                const uint64_t m = flow_words(previous)[w];
                flow_words(other)[w] = (flow_words(first)[w] & m) | (rng() & ~m);
            }
            other.ct_mark = other.ct_zone = other.ct_state = 0;
            other.recirc_id = 0;
            ASSERT_TRUE(masked_equal(other, first, previous));
            if (!masked_equal(pass_key(other), installed, next)) all_match = false;
            other.tp_src ^= 0x8000;  // the bit a widened mask adds
            if (masked_equal(other, first, previous) && !masked_equal(pass_key(other), installed, next)) {
                all_match = false;
            }
        }
        EXPECT_EQ(all_match, want_covered) << round;
    }
    EXPECT_GT(covered, 100u);
    EXPECT_GT(uncovered, 100u);
}

// The table: an answer is found only under the exact key it was learned
// with (megaflow left and its generation, ct_state, ct_zone, ct_mark,
// recirc_id), and a later answer for the same key replaces it.
TEST(RecircShortcut, AnswersOnlyItsExactPair) {
    auto table = std::make_unique<RecircShortcuts>();
    const PacketMeta est = meta_of(1, 5, kCtTracked | kCtEstablished, 2, 9);
    EXPECT_EQ(table->find(10, 1, est), nullptr);
    table->learn(10, 1, est, 77, 4, true);
    const RecircShortcuts::Entry* entry = table->find(10, 1, est);
    ASSERT_NE(entry, nullptr);
    EXPECT_EQ(entry->slot, 77u);
    EXPECT_EQ(entry->generation, 4u);
    EXPECT_TRUE(entry->usable);
    EXPECT_EQ(table->find(11, 1, est), nullptr);  // another megaflow left
    EXPECT_EQ(table->find(10, 2, est), nullptr);  // the slot reused since
    EXPECT_EQ(table->find(10, 1, meta_of(1, 6, est.ct.state, 2, 9)), nullptr);
    EXPECT_EQ(table->find(10, 1, meta_of(1, 5, kCtTracked | kCtNew, 2, 9)), nullptr);
    EXPECT_EQ(table->find(10, 1, meta_of(1, 5, est.ct.state, 3, 9)), nullptr);
    EXPECT_EQ(table->find(10, 1, meta_of(1, 5, est.ct.state, 2, 8)), nullptr);
    // in_port is not part of the key: the previous megaflow fixes it.
    EXPECT_NE(table->find(10, 1, meta_of(4, 5, est.ct.state, 2, 9)), nullptr);
    table->learn(10, 1, est, 78, 5, false);
    entry = table->find(10, 1, est);
    ASSERT_NE(entry, nullptr);
    EXPECT_EQ(entry->slot, 78u);
    EXPECT_FALSE(entry->usable);
    table->clear();
    EXPECT_EQ(table->find(10, 1, est), nullptr);
}

TEST(UpcallOrderTest, EarliestOutstandingFollowsAnswersInSendOrder) {
    UpcallOrder order(16);
    EXPECT_TRUE(order.idle());
    EXPECT_FALSE(order.earlier_outstanding(100));
    order.sent(10);  // seq 1
    order.sent(20);  // seq 2
    EXPECT_TRUE(order.earlier_outstanding(11));
    EXPECT_FALSE(order.earlier_outstanding(10));  // its own stamp is not earlier
    order.sent(5);   // seq 3: a packet that came back and missed again, older than both
    EXPECT_TRUE(order.earlier_outstanding(6));
    order.answered();  // seq 1 (stamp 10): 5 is still out
    EXPECT_TRUE(order.earlier_outstanding(6));
    EXPECT_FALSE(order.earlier_outstanding(5));
    order.answered();  // seq 2
    order.answered();  // seq 3
    EXPECT_TRUE(order.idle());
    EXPECT_FALSE(order.earlier_outstanding(1000));
    EXPECT_EQ(order.sent_count(), 3u);
    EXPECT_EQ(order.answered_count(), 3u);
}

// Against a plain list of outstanding stamps: random sends (stamps mostly
// increasing, some old ones again) and answers, across stamp wrap-around.
TEST(UpcallOrderTest, AgreesWithAPlainListOfOutstandingUpcalls) {
    std::mt19937 rng(9);
    UpcallOrder order(1024);
    std::deque<uint32_t> outstanding;
    uint32_t next_stamp = 0xffffff00u;  // wraps during the test
    for (int step = 0; step < 200000; ++step) {
        if (outstanding.size() < 900 && rng() % 3 != 0) {
            uint32_t stamp = next_stamp;
            next_stamp += 1 + rng() % 3;
            if (rng() % 5 == 0 && !outstanding.empty()) stamp = outstanding[rng() % outstanding.size()] - rng() % 4;
            outstanding.push_back(stamp);
            order.sent(stamp);
        } else if (!outstanding.empty()) {
            outstanding.pop_front();
            order.answered();
        }
        const uint32_t probe = next_stamp - rng() % 2000;
        const bool want = std::any_of(outstanding.begin(), outstanding.end(),
                                      [&](uint32_t s) { return stamp_before(s, probe); });
        ASSERT_EQ(order.earlier_outstanding(probe), want) << "step " << step;
        ASSERT_EQ(order.idle(), outstanding.empty());
    }
}

// Dispatch's groups: the megaflow's hint against the plain search, and both
// against what a pass's groups are (first pass: one per megaflow in the
// order of first packets; after a recirculation: runs). The hints persist
// across passes as on the megaflows, and some are scrambled between passes
// (any value a byte may hold): a hint is only ever a hint.
TEST(PassGroupsTest, HintAgreesWithTheSearchAndWithTheDefinition) {
    std::mt19937 rng(21);
    std::vector<uint8_t> hints(200);
    for (uint8_t& h : hints) h = static_cast<uint8_t>(rng());
    unsigned reordered = 0, in_order = 0;
    for (int pass = 0; pass < 20000; ++pass) {
        const bool runs = rng() % 4 == 0;
        const unsigned count = 1 + rng() % kMaxPassGroups;
        // Few megaflows (repeats, interleaved) or many (mostly distinct).
        const unsigned megaflows = rng() % 2 ? 1 + rng() % 6 : static_cast<unsigned>(hints.size());
        PassGroups fast, reference;
        std::vector<uint32_t> first_seen;  // the definition: slots in order of first packets
        uint32_t previous = UINT32_MAX;
        unsigned run = 0;
        bool ordered = true;
        for (unsigned i = 0; i < count; ++i) {
            const uint32_t slot = static_cast<uint32_t>(rng() % megaflows);
            const unsigned g = fast.join(slot, hints[slot], runs);
            ASSERT_EQ(g, reference.reference_join(slot, runs)) << "pass " << pass << " packet " << i;
            unsigned want;
            if (runs) {
                if (i > 0 && slot != previous) ++run;
                want = run;
            } else {
                const auto at = std::find(first_seen.begin(), first_seen.end(), slot);
                want = static_cast<unsigned>(at - first_seen.begin());
                if (at == first_seen.end()) {
                    first_seen.push_back(slot);
                } else if (at + 1 != first_seen.end()) {
                    ordered = false;
                }
            }
            ASSERT_EQ(g, want) << "pass " << pass << " packet " << i;
            ASSERT_EQ(fast.slot(g), slot);
            previous = slot;
        }
        ASSERT_EQ(fast.count(), reference.count());
        unsigned total = 0;
        for (unsigned g = 0; g < fast.count(); ++g) {
            ASSERT_EQ(fast.size(g), reference.size(g));
            ASSERT_EQ(fast.slot(g), reference.slot(g));
            total += fast.size(g);
        }
        ASSERT_EQ(total, count);
        ASSERT_EQ(fast.in_order(), reference.in_order());
        ASSERT_EQ(fast.in_order(), ordered);
        (ordered ? in_order : reordered) += 1;
        for (unsigned k = rng() % 3; k > 0; --k) hints[rng() % hints.size()] = static_cast<uint8_t>(rng());
    }
    // Both kinds of pass were seen.
    EXPECT_GT(in_order, 1000u);
    EXPECT_GT(reordered, 1000u);
}

// A hint naming another megaflow's group of this pass (left by an earlier
// pass) starts a group instead of joining that one.
TEST(PassGroupsTest, StaleHintNamingAnotherMegaflowsGroupStartsAGroup) {
    PassGroups groups;
    uint8_t hint_a = 5, hint_b = 0;  // b's hint names a's group once a has one
    EXPECT_EQ(groups.join(7, hint_a, false), 0u);
    EXPECT_EQ(hint_a, 0);
    EXPECT_EQ(groups.join(9, hint_b, false), 1u);
    EXPECT_EQ(hint_b, 1);
    EXPECT_EQ(groups.join(7, hint_a, false), 0u);
    EXPECT_FALSE(groups.in_order());
    EXPECT_EQ(groups.size(0), 2u);
    EXPECT_EQ(groups.size(1), 1u);
}

struct Held {
    PacketMeta meta;
    int id;
};

Held held(uint32_t stamp, int id) {
    Held h{};
    h.meta.stamp = stamp;
    h.id = id;
    return h;
}

std::vector<int> ids(HeldQueue<Held>& queue) {
    std::vector<int> out;
    for (unsigned i = 0; i < queue.size(); ++i) out.push_back(queue[i].id);
    return out;
}

// The plain ring under HeldQueue (the worker's deferred transmits): first
// in, first out across the wrap, refusing when full.
TEST(FixedRingTest, FirstInFirstOutAcrossTheWrap) {
    FixedRing<int> ring(3);
    EXPECT_TRUE(ring.empty());
    int next_in = 0, next_out = 0;
    for (int round = 0; round < 10; ++round) {
        while (!ring.full()) ASSERT_TRUE(ring.push_back(next_in++));
        EXPECT_FALSE(ring.push_back(-1));
        EXPECT_EQ(ring.size(), 3u);
        for (int k = 0; k < 1 + round % 3; ++k) {
            ASSERT_EQ(ring.front(), next_out++);
            ring.pop_front();
        }
    }
    while (!ring.empty()) {
        ASSERT_EQ(ring.front(), next_out++);
        ring.pop_front();
    }
    EXPECT_EQ(next_out, next_in);
}

TEST(HeldQueueTest, KeepsArrivalOrderAcrossTheRing) {
    HeldQueue<Held> queue(4);
    ASSERT_TRUE(queue.insert(held(10, 1)));
    ASSERT_TRUE(queue.insert(held(12, 2)));
    queue.pop_front();  // the ring's head moves: later inserts wrap
    ASSERT_TRUE(queue.insert(held(13, 3)));
    ASSERT_TRUE(queue.insert(held(11, 4)));  // older than 12 and 13: goes before them
    ASSERT_TRUE(queue.insert(held(12, 5)));  // same stamp as 2 (a copy): behind it
    EXPECT_TRUE(queue.full());
    EXPECT_FALSE(queue.insert(held(14, 6)));
    EXPECT_EQ(ids(queue), (std::vector<int>{4, 2, 5, 3}));
    std::vector<int> taken;
    queue.remove_if([&](const Held& h) {
        if (h.meta.stamp != 12) return false;
        taken.push_back(h.id);
        return true;
    });
    EXPECT_EQ(taken, (std::vector<int>{2, 5}));
    EXPECT_EQ(ids(queue), (std::vector<int>{4, 3}));
    EXPECT_EQ(queue.front().id, 4);
    // Stamps that wrapped are still in arrival order.
    HeldQueue<Held> wrapping(4);
    wrapping.insert(held(0xfffffffeu, 1));
    wrapping.insert(held(1, 2));
    wrapping.insert(held(0xffffffffu, 3));
    EXPECT_EQ(ids(wrapping), (std::vector<int>{1, 3, 2}));
}

// Against a list kept sorted by arrival (stable): random inserts, mostly
// new arrivals, some old packets, pops from the front, across wrap-around.
TEST(HeldQueueTest, AgreesWithASortedList) {
    std::mt19937 rng(17);
    HeldQueue<Held> queue(64);
    std::vector<Held> reference;
    uint32_t next = 0xfffffff0u;
    int id = 0;
    for (int step = 0; step < 100000; ++step) {
        if (rng() % 3 && !queue.full()) {
            uint32_t stamp = next;
            if (rng() % 4 == 0) stamp -= rng() % 40;  // an old packet
            else next += 1 + rng() % 2;
            const Held h = held(stamp, id++);
            ASSERT_TRUE(queue.insert(h));
            auto at = std::upper_bound(reference.begin(), reference.end(), h, [](const Held& a, const Held& b) {
                return stamp_before(a.meta.stamp, b.meta.stamp);
            });
            reference.insert(at, h);
        } else if (!queue.empty()) {
            ASSERT_EQ(queue.front().id, reference.front().id) << "step " << step;
            queue.pop_front();
            reference.erase(reference.begin());
        }
        ASSERT_EQ(queue.size(), reference.size());
    }
    std::vector<int> want;
    for (const Held& h : reference) want.push_back(h.id);
    EXPECT_EQ(ids(queue), want);
}

// The executor's ranges: what the worker runs between its group actions.
TEST(ExecuteRange, TakerIsTheLastOutputOrRecirculationUnlessCtFollows) {
    const Action out2 = Action::output(2), out3 = Action::output(3), recirc = Action::recirc(5);
    Action ct = Action::of(ActionType::kCt);
    const ActionList forked{ct, recirc, out2};
    EXPECT_EQ(packet_taker(forked.data(), forked.size()), 2u);
    const ActionList recirculated{ct, recirc};
    EXPECT_EQ(packet_taker(recirculated.data(), recirculated.size()), 1u);
    const ActionList tracked_last{out2, ct};
    EXPECT_EQ(packet_taker(tracked_last.data(), tracked_last.size()), 2u);
    const ActionList plain{out2, out3};
    EXPECT_EQ(packet_taker(plain.data(), plain.size()), 1u);
    EXPECT_EQ(packet_taker(nullptr, 0), 0u);
}

TEST(ExecuteRange, RunsItsRangeAndGivesTheTakerThePacket) {
    std::vector<uint8_t> frame = udp4_frame();
    const uint32_t dst = htonl(0x0a000009);
    const ActionList actions{Action::set(SetField::kIpv4Dst, &dst), Action::output(2), Action::of(ActionType::kCt),
                             Action::recirc(7), Action::output(3)};
    const size_t taker = packet_taker(actions.data(), actions.size());
    PacketLayout layout;
    FlowKey key;
    parse_flow_key(frame.data(), static_cast<uint32_t>(frame.size()), 1, key, layout);
    PacketBuffer pkt{frame.data(), static_cast<uint32_t>(frame.size()), 0, 0};
    std::vector<std::pair<uint32_t, bool>> outputs;
    const auto out = [&](uint32_t port, const PacketBuffer&, bool last) { outputs.emplace_back(port, last); };
    // Up to the ct: the set and a copy to port 2.
    EXPECT_TRUE(execute_range(pkt, layout, actions.data(), 0, 2, taker, out));
    EXPECT_EQ(outputs, (std::vector<std::pair<uint32_t, bool>>{{2, false}}));
    FlowKey after;
    PacketLayout unused;
    parse_flow_key(frame.data(), static_cast<uint32_t>(frame.size()), 1, after, unused);
    EXPECT_EQ(after.nw_dst, dst);
    // After the recirculation: the last output takes it.
    EXPECT_TRUE(execute_range(pkt, layout, actions.data(), 4, 5, taker, out));
    EXPECT_EQ(outputs.back(), (std::pair<uint32_t, bool>{3, true}));
}

// Symmetric RSS: A->B and B->A (addresses and ports swapped) hash alike
// under the key every port gets, IPv4 and IPv6, TCP and UDP tuples.
TEST(SymmetricRss, BothDirectionsHashAlike) {
    uint8_t key[kSymmetricRssKeyLength];
    symmetric_rss_key(key, sizeof key);
    std::mt19937 rng(3);
    for (int i = 0; i < 1000; ++i) {
        rte_ipv4_tuple forward{}, backward{};
        forward.src_addr = rng();
        forward.dst_addr = rng();
        forward.sport = static_cast<uint16_t>(rng());
        forward.dport = static_cast<uint16_t>(rng());
        backward.src_addr = forward.dst_addr;
        backward.dst_addr = forward.src_addr;
        backward.sport = forward.dport;
        backward.dport = forward.sport;
        EXPECT_EQ(rte_softrss(reinterpret_cast<uint32_t*>(&forward), RTE_THASH_V4_L4_LEN, key),
                  rte_softrss(reinterpret_cast<uint32_t*>(&backward), RTE_THASH_V4_L4_LEN, key));
        rte_ipv6_tuple forward6{}, backward6{};
        for (unsigned b = 0; b < 16; ++b) {
            forward6.src_addr[b] = static_cast<uint8_t>(rng());
            forward6.dst_addr[b] = static_cast<uint8_t>(rng());
        }
        std::memcpy(backward6.src_addr, forward6.dst_addr, 16);
        std::memcpy(backward6.dst_addr, forward6.src_addr, 16);
        forward6.sport = backward6.dport = static_cast<uint16_t>(rng());
        forward6.dport = backward6.sport = static_cast<uint16_t>(rng());
        EXPECT_EQ(rte_softrss(reinterpret_cast<uint32_t*>(&forward6), RTE_THASH_V6_L4_LEN, key),
                  rte_softrss(reinterpret_cast<uint32_t*>(&backward6), RTE_THASH_V6_L4_LEN, key));
    }
    // A key that is not symmetric (the Microsoft default's first bytes) tells them apart.
    uint8_t plain[kSymmetricRssKeyLength] = {0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67,
                                            0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb};
    rte_ipv4_tuple a{0x0a000001, 0x0a000002, {}};
    a.sport = 1000;
    a.dport = 80;
    rte_ipv4_tuple b{0x0a000002, 0x0a000001, {}};
    b.sport = 80;
    b.dport = 1000;
    EXPECT_NE(rte_softrss(reinterpret_cast<uint32_t*>(&a), RTE_THASH_V4_L4_LEN, plain),
              rte_softrss(reinterpret_cast<uint32_t*>(&b), RTE_THASH_V4_L4_LEN, plain));
}

}  // namespace
