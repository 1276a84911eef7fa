// Miniflows: the sparse form round-trips, and hashing and comparing under a
// mask depend on the masked bits only.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <random>
#include <vector>

#include "flowpath/miniflow.hpp"

using namespace flowpath;

namespace {

FlowKey random_key(std::mt19937_64& rng, double density) {
    FlowKey key{};
    uint64_t* words = flow_words(key);
    std::bernoulli_distribution present(density);
    for (size_t i = 0; i < kFlowWords; ++i) words[i] = present(rng) ? rng() : 0;
    return key;
}

TEST(Miniflow, FromKeyKeepsExactlyTheNonzeroWords) {
    std::mt19937_64 rng(1);
    for (int round = 0; round < 1000; ++round) {
        const FlowKey key = random_key(rng, 0.4);
        const Miniflow mf = miniflow_from_key(key);
        for (unsigned i = 0; i < kFlowWords; ++i) {
            EXPECT_EQ(((mf.map >> i) & 1) != 0, flow_words(key)[i] != 0);
            EXPECT_EQ(mf.get(i), flow_words(key)[i]);
        }
        EXPECT_EQ(miniflow_expand(mf), key);
    }
}

TEST(Miniflow, HashAndEqualityFollowTheMaskOnly) {
    std::mt19937_64 rng(2);
    for (int round = 0; round < 1000; ++round) {
        const FlowMask mask_key = random_key(rng, 0.3);
        const Minimask mask = miniflow_from_key(mask_key);
        const FlowKey a = random_key(rng, 0.7);
        // b agrees with a on the mask's bits and is random elsewhere.
        FlowKey b = random_key(rng, 0.7);
        for (size_t i = 0; i < kFlowWords; ++i) {
            const uint64_t m = flow_words(mask_key)[i];
            flow_words(b)[i] = (flow_words(a)[i] & m) | (flow_words(b)[i] & ~m);
        }
        const Miniflow ma = miniflow_from_key(a), mb = miniflow_from_key(b);
        EXPECT_EQ(miniflow_hash_masked(ma, mask, 7), miniflow_hash_masked(mb, mask, 7));
        const Miniflow masked = miniflow_mask(ma, mask);
        EXPECT_TRUE(miniflow_equal_masked(mb, mask, masked));
        EXPECT_EQ(masked.map, mask.map);

        // One masked bit flipped: no longer equal under the mask.
        if (mask.map == 0) continue;
        const unsigned word = static_cast<unsigned>(std::countr_zero(mask.map));
        FlowKey c = a;
        flow_words(c)[word] ^= uint64_t{1} << std::countr_zero(flow_words(mask_key)[word]);
        EXPECT_FALSE(miniflow_equal_masked(miniflow_from_key(c), mask, masked));
    }
}

TEST(Miniflow, HashSpreadsKeys) {
    // Keys differing in one masked field should rarely collide.
    FlowMask mask_key{};
    mask_key.nw_dst = 0xffffffff;
    const Minimask mask = miniflow_from_key(mask_key);
    std::vector<uint32_t> hashes;
    for (uint32_t i = 0; i < 4096; ++i) {
        FlowKey key{};
        key.nw_dst = i;
        hashes.push_back(miniflow_hash_masked(miniflow_from_key(key), mask, 0));
    }
    std::sort(hashes.begin(), hashes.end());
    const size_t distinct = static_cast<size_t>(std::unique(hashes.begin(), hashes.end()) - hashes.begin());
    EXPECT_GE(distinct, 4090u);
}

}  // namespace
