// Packets as mbuf chains (include/flowpath/mbuf_chain.hpp): the key and
// layout read from a chain's first segment are those of the whole frame;
// actions applied through the first segment leave the same bytes as on the
// whole frame; a frame whose headers run past its first segment is joined
// when it can be and refused otherwise; a VLAN push on a chain takes only
// headroom. The chains are hand-made mbufs (no EAL) whose segments are heap
// blocks of exactly their bytes, so ASan catches a read past a segment.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "flowpath/actions.hpp"
#include "flowpath/mbuf_chain.hpp"
#include "flowpath/packet.hpp"
#include "frame_gen.hpp"

namespace flowpath {
namespace {

using namespace test_frames;
using Frame = std::vector<uint8_t>;

/// A frame cut into segments at `cuts` (ascending offsets), each segment in
/// its own heap block: `headroom` bytes before the first, `tailroom` after
/// it, none around the others.
class Chain {
public:
    Chain(const Frame& frame, const std::vector<uint32_t>& cuts, uint16_t headroom = 128, uint16_t tailroom = 0) {
        std::vector<uint32_t> bounds = {0};
        bounds.insert(bounds.end(), cuts.begin(), cuts.end());
        bounds.push_back(static_cast<uint32_t>(frame.size()));
        mbufs_.resize(bounds.size() - 1);
        for (size_t s = 0; s + 1 < bounds.size(); ++s) {
            const uint32_t len = bounds[s + 1] - bounds[s];
            const uint16_t before = s == 0 ? headroom : 0;
            const uint16_t after = s == 0 ? tailroom : 0;
            blocks_.push_back(std::make_unique<uint8_t[]>(before + len + after));
            uint8_t* block = blocks_.back().get();
            std::memcpy(block + before, frame.data() + bounds[s], len);
            rte_mbuf& m = mbufs_[s];
            std::memset(&m, 0, sizeof m);
            m.buf_addr = block;
            m.buf_len = static_cast<uint16_t>(before + len + after);
            m.data_off = before;
            m.data_len = static_cast<uint16_t>(len);
            // Later segments are never freed into a pool (there is none):
            // a reference of their own keeps rte_pktmbuf_linearize from it.
            rte_mbuf_refcnt_set(&m, s == 0 ? 1 : 2);
            m.next = s + 2 < bounds.size() ? &mbufs_[s + 1] : nullptr;
        }
        mbufs_[0].nb_segs = static_cast<uint16_t>(mbufs_.size());
        mbufs_[0].pkt_len = static_cast<uint32_t>(frame.size());
    }

    rte_mbuf* head() { return &mbufs_[0]; }

    /// The frame as the chain holds it now.
    Frame bytes() {
        Frame out;
        for (const rte_mbuf* m = head(); m; m = m->next) {
            const uint8_t* data = rte_pktmbuf_mtod(m, const uint8_t*);
            out.insert(out.end(), data, data + m->data_len);
        }
        EXPECT_EQ(out.size(), head()->pkt_len);
        return out;
    }

private:
    std::vector<std::unique_ptr<uint8_t[]>> blocks_;
    std::vector<rte_mbuf> mbufs_;
};

/// Random frames, about half of them padded past their IP datagram or
/// grown by a long payload, so that chains cut them after the headers too.
std::vector<Frame> long_frames(uint32_t seed, unsigned count) {
    FrameGen gen(seed);
    std::vector<Frame> frames;
    for (unsigned i = 0; i < count; ++i) {
        Frame frame = gen.frame().vec();
        if (gen.pick(2)) frame.resize(frame.size() + gen.pick(3000), static_cast<uint8_t>(gen.pick(256)));
        frames.push_back(std::move(frame));
    }
    return frames;
}

bool same(const Miniflow& a, const Miniflow& b) {
    if (a.map != b.map) return false;
    return std::memcmp(a.words, b.words, sizeof(uint64_t) * static_cast<size_t>(__builtin_popcountll(a.map))) == 0;
}

bool same(const PacketLayout& a, const PacketLayout& b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// The first segment's bytes where the whole-frame layout puts the headers
// a chain needs there (packet.hpp, kChainedHeaderWindow), for frames whose
// IP headers parsed: a first segment this long must be enough.
uint32_t headers_end(const Frame& frame, const PacketLayout& layout, const Miniflow& flow) {
    const FlowKey key = miniflow_expand(flow);
    const auto len = static_cast<uint32_t>(frame.size());
    if (key.nw_proto == 58 && layout.l4_offset != kNoOffset && layout.l4_offset < len &&
        (frame[layout.l4_offset] == 135 || frame[layout.l4_offset] == 136)) {
        return len;
    }
    const uint32_t from = layout.l4_offset != kNoOffset ? layout.l4_offset : layout.l3_offset;
    return std::min(len, std::max<uint32_t>(30, from + kChainedHeaderWindow));
}

TEST(Chain, KeyFromTheFirstSegmentIsTheWholeFramesKey) {
    unsigned chained = 0, refused = 0;
    for (const Frame& frame : long_frames(11, 1500)) {
        const auto len = static_cast<uint32_t>(frame.size());
        Miniflow whole;
        PacketLayout whole_layout;
        extract_miniflow(frame.data(), len, 3, whole, whole_layout);
        for (uint32_t avail : {1u, 13u, 30u, 40u, 54u, 64u, 100u, 150u, 256u, 1024u, len - 1, len}) {
            if (avail == 0 || avail > len) continue;
            // Only the first segment's bytes exist to be read.
            auto first = std::make_unique<uint8_t[]>(avail);
            std::memcpy(first.get(), frame.data(), avail);
            Miniflow flow;
            PacketLayout layout;
            const bool complete = extract_miniflow_chained(first.get(), avail, len, 3, flow, layout);
            if (complete) {
                ++chained;
                EXPECT_TRUE(same(flow, whole)) << "len " << len << " avail " << avail;
                EXPECT_TRUE(same(layout, whole_layout)) << "len " << len << " avail " << avail;
                continue;
            }
            ++refused;
            EXPECT_LT(avail, len);
            EXPECT_EQ(flow.map, 1u);
            EXPECT_EQ(layout.l3_offset, kNoOffset);
            // Refused only when the headers do run past the segment (frames
            // whose IP headers parsed: a broken IPv6 extension chain is
            // walked as far as the segment allows).
            if (whole_layout.flags & kLayoutL3) {
                EXPECT_LT(avail, headers_end(frame, whole_layout, whole)) << "len " << len << " avail " << avail;
            }
        }
    }
    EXPECT_GT(chained, 4000u);
    EXPECT_GT(refused, 1000u);
}

TEST(Chain, ExtensionHeadersPastTheFirstSegmentAreJoinedOrRefused) {
    // IPv6 with 320 bytes of extension headers before UDP.
    Bytes exts = ext6(60, 19) + ext6(17, 19);
    const Frame frame = (eth(0x86dd) + ipv6(0, exts + udp(1, 2) + Bytes().zeros(2000))).vec();
    Miniflow whole;
    PacketLayout whole_layout;
    extract_miniflow(frame.data(), static_cast<uint32_t>(frame.size()), 1, whole, whole_layout);
    ASSERT_EQ(whole_layout.l4_offset, 14 + 40 + 320);

    Chain full(frame, {256, 1024});  // no tailroom: cannot be joined
    Miniflow flow;
    PacketLayout layout;
    EXPECT_FALSE(extract_chained(full.head(), 1, flow, layout));
    EXPECT_EQ(full.head()->nb_segs, 3);
    EXPECT_EQ(full.bytes(), frame);

    Chain roomy(frame, {256, 1024}, 128, static_cast<uint16_t>(frame.size()));  // the rest fits
    EXPECT_TRUE(extract_chained(roomy.head(), 1, flow, layout));
    EXPECT_EQ(roomy.head()->nb_segs, 1);
    EXPECT_EQ(roomy.bytes(), frame);
    EXPECT_TRUE(same(flow, whole));
    EXPECT_TRUE(same(layout, whole_layout));

    Chain headers_in_first(frame, {512});
    EXPECT_TRUE(extract_chained(headers_in_first.head(), 1, flow, layout));
    EXPECT_EQ(headers_in_first.head()->nb_segs, 2);  // never joined when it need not be
    EXPECT_TRUE(same(flow, whole));
}

TEST(Chain, NeighborDiscoveryNeedsTheWholeMessage) {
    const Frame frame =
        (eth(0x86dd) + ipv6(58, nd(135, Bytes().zeros(64) + lla_opt(1, kMacA)), Ipv6Opts{})).vec();
    Miniflow flow;
    PacketLayout layout;
    const auto len = static_cast<uint32_t>(frame.size());
    EXPECT_FALSE(extract_miniflow_chained(frame.data(), len - 1, len, 1, flow, layout));
    EXPECT_TRUE(extract_miniflow_chained(frame.data(), len, len, 1, flow, layout));
}

Action set(SetField field, std::vector<uint8_t> value) { return Action::set(field, value.data()); }

// Action lists that touch every kind of header, output more than once and
// change the frame's length.
std::vector<std::vector<Action>> action_lists() {
    return {
        {set(SetField::kEthDst, {2, 0, 0, 0, 0, 9}), Action::output(1)},
        {Action::push_vlan(0x8100), set(SetField::kVlanVid, {0x00, 0x0a}), Action::output(1), Action::output(2)},
        {Action::of(ActionType::kPopVlan), Action::output(1)},
        {set(SetField::kIpv4Src, {10, 9, 9, 9}), set(SetField::kTcpSrc, {0x12, 0x34}),
         set(SetField::kUdpDst, {0, 99}), Action::of(ActionType::kDecTtl), Action::output(2),
         set(SetField::kNwTos, {0x20}), Action::output(3)},
        {set(SetField::kIpv6Dst, {0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7}),
         set(SetField::kIcmpv6Type, {129}), set(SetField::kSctpDst, {0, 7}), Action::output(1)},
        {set(SetField::kNdTarget, {0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x44}),
         set(SetField::kNdSll, {2, 2, 2, 2, 2, 2}), set(SetField::kArpTpa, {10, 0, 0, 9}), Action::output(1)},
        {Action::push_vlan(0x88a8), Action::push_vlan(0x8100), Action::output(1), Action::of(ActionType::kPopVlan),
         Action::output(2)},
    };
}

TEST(Chain, ActionsOnTheFirstSegmentLeaveTheWholeFramesBytes) {
    const std::vector<std::vector<Action>> lists = action_lists();
    unsigned compared = 0;
    std::mt19937 rng(5);
    for (const Frame& frame : long_frames(23, 800)) {
        const auto len = static_cast<uint32_t>(frame.size());
        for (const std::vector<Action>& actions : lists) {
            // The whole frame, contiguous, with headroom.
            std::vector<uint8_t> block(128 + len);
            std::memcpy(block.data() + 128, frame.data(), len);
            PacketBuffer whole{block.data() + 128, len, 128, 0};
            PacketLayout whole_layout;
            Miniflow flow;
            extract_miniflow(whole.data, len, 1, flow, whole_layout);
            std::vector<Frame> want;
            execute_actions(whole, whole_layout, actions.data(), actions.size(),
                            [&](uint32_t, const PacketBuffer& pkt, bool) { want.emplace_back(pkt.data, pkt.data + pkt.len); });

            // The same frame as a chain cut after its headers.
            const uint32_t cut = std::min<uint32_t>(len - 1, 160 + rng() % 200);
            if (cut < 30 || cut >= len) continue;
            Chain chain(frame, {cut, std::min(len - 1, cut + 1 + static_cast<uint32_t>(rng() % 900))});
            rte_mbuf* m = chain.head();
            PacketLayout layout;
            if (!extract_chained(m, 1, flow, layout)) continue;  // headers past the cut (ND)
            PacketBuffer bytes = packet_buffer(m);
            EXPECT_EQ(bytes.tailroom, 0u);
            std::vector<Frame> got;
            execute_actions(bytes, layout, actions.data(), actions.size(), [&](uint32_t, const PacketBuffer& pkt, bool) {
                sync_packet(m, pkt);
                got.push_back(chain.bytes());
            });
            ASSERT_EQ(got.size(), want.size());
            for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], want[i]) << "output " << i << ", len " << len;
            ++compared;
        }
    }
    EXPECT_GT(compared, 2000u);
}

TEST(Chain, PushOnAChainTakesHeadroomOnly) {
    const Frame frame = (eth(0x0800) + ipv4(17, udp(1, 2) + Bytes().zeros(3000))).vec();
    Chain roomless(frame, {200}, 2, 512);  // tailroom, but a chain's is not the frame's end
    PacketBuffer bytes = packet_buffer(roomless.head());
    PacketLayout layout;
    Miniflow flow;
    ASSERT_TRUE(extract_chained(roomless.head(), 1, flow, layout));
    EXPECT_FALSE(push_vlan(bytes, layout, 0x8100));
    EXPECT_EQ(roomless.bytes(), frame);

    Chain chain(frame, {200, 2000});
    rte_mbuf* m = chain.head();
    bytes = packet_buffer(m);
    ASSERT_TRUE(extract_chained(m, 1, flow, layout));
    ASSERT_TRUE(push_vlan(bytes, layout, 0x8100));
    sync_packet(m, bytes);
    EXPECT_EQ(m->data_len, 204);
    EXPECT_EQ(m->pkt_len, frame.size() + 4);
    EXPECT_EQ(m->next->data_len, 1800);  // the later segments are untouched
    Frame want = frame;
    want.insert(want.begin() + 12, {0x81, 0x00, 0x00, 0x00});
    EXPECT_EQ(chain.bytes(), want);
    ASSERT_TRUE(pop_vlan(bytes, layout));
    sync_packet(m, bytes);
    EXPECT_EQ(m->data_len, 200);
    EXPECT_EQ(chain.bytes(), frame);
}

TEST(Chain, ContiguousFrameCopiesAChainWhole) {
    const Frame frame = (eth(0x0800) + ipv4(6, tcp(1, 2, 0x10) + Bytes().zeros(5000))).vec();
    Chain chain(frame, {100, 2148, 4196});
    std::vector<uint8_t> scratch(frame.size());
    const uint8_t* bytes = contiguous_frame(chain.head(), scratch.data());
    EXPECT_EQ(bytes, scratch.data());
    EXPECT_EQ(Frame(bytes, bytes + frame.size()), frame);

    Chain single(frame, {});
    EXPECT_EQ(contiguous_frame(single.head(), scratch.data()), rte_pktmbuf_mtod(single.head(), const uint8_t*));
}

}  // namespace
}  // namespace flowpath
