// The connection index (src/conntrack/conn_index.hpp) on its own: inserts,
// finds and erases against a reference model, with hashes drawn from a few
// values so that buckets fill, keys overflow into the buckets after their
// home (also past the last bucket, round to the first) and the overflow
// counts must be taken back exactly by erases.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <utility>
#include <vector>

#include "../../src/conntrack/conn_index.hpp"

using namespace flowpath;

namespace {

// The overflow count each bucket must have: for every entry, one in each
// bucket from its home up to (not including) its own.
std::vector<uint32_t> expected_overflow(const ConnIndex& index) {
    std::vector<uint32_t> passed(index.buckets(), 0);
    for (uint32_t b = 0; b < index.buckets(); ++b) {
        for (unsigned e = 0; e < ConnIndex::kEntriesPerBucket; ++e) {
            const uint32_t h = index.bucket(b).hashes[e];
            if (h == 0) continue;
            for (uint32_t j = index.home(h); j != b; j = (j + 1) % index.buckets()) ++passed[j];
        }
    }
    return passed;
}

void expect_consistent(const ConnIndex& index, size_t model_size, int step) {
    ASSERT_EQ(index.size(), model_size) << step;
    const std::vector<uint32_t> passed = expected_overflow(index);
    for (uint32_t b = 0; b < index.buckets(); ++b) ASSERT_EQ(index.bucket(b).overflow, passed[b]) << step << " " << b;
}

}  // namespace

TEST(ConnIndexTest, SizedForItsKeysWithRoom) {
    EXPECT_EQ(ConnIndex::bucket_count(1), 1u);
    EXPECT_EQ(ConnIndex::bucket_count(6), 1u);
    EXPECT_EQ(ConnIndex::bucket_count(7), 2u);
    EXPECT_EQ(ConnIndex::bucket_count(2u << 20), 1u << 19);
    for (uint32_t keys : {1u, 13u, 100u, 5000u, 1u << 21}) {
        EXPECT_GE(uint64_t{ConnIndex::bucket_count(keys)} * ConnIndex::kEntriesPerBucket * 6, uint64_t{keys} * 7);
    }
}

TEST(ConnIndexTest, OverflowsIntoTheNextBucketsAndBack) {
    ConnIndex index(30);  // 8 buckets
    ASSERT_EQ(index.buckets(), 8u);
    // 20 keys of one home, the last bucket: they fill it and wrap round to
    // buckets 0 and 1.
    const uint32_t home7 = 7 | 8 << 8;
    for (uint32_t r = 0; r < 20; ++r) ASSERT_TRUE(index.insert(home7, r));
    EXPECT_EQ(index.bucket(7).overflow, 13u);
    EXPECT_EQ(index.bucket(0).overflow, 6u);
    EXPECT_EQ(index.bucket(1).overflow, 0u);
    for (uint32_t r = 0; r < 20; ++r) {
        EXPECT_EQ(index.find(home7, [&](uint32_t ref) { return ref == r; }), r);
    }
    // A key of home 0 lands behind them in bucket 1 (passing bucket 0), and
    // is found there.
    ASSERT_TRUE(index.insert(8, 100));
    EXPECT_EQ(index.bucket(0).overflow, 7u);
    EXPECT_EQ(index.find(8, [](uint32_t ref) { return ref == 100; }), 100u);
    EXPECT_EQ(index.find(8, [](uint32_t ref) { return ref == 101; }), ConnIndex::kNoRef);
    EXPECT_EQ(index.find(home7, [](uint32_t ref) { return ref == 100; }), ConnIndex::kNoRef);
    // Erases take the counts back.
    for (uint32_t r = 0; r < 20; ++r) ASSERT_TRUE(index.erase(home7, r));
    EXPECT_FALSE(index.erase(home7, 0));
    for (uint32_t b = 0; b < index.buckets(); ++b) EXPECT_EQ(index.bucket(b).overflow, b == 0 ? 1u : 0u) << b;
    EXPECT_EQ(index.size(), 1u);
    EXPECT_EQ(index.find(8, [](uint32_t ref) { return ref == 100; }), 100u);
}

TEST(ConnIndexTest, RefusesBeyondItsKeys) {
    ConnIndex index(10);
    for (uint32_t r = 0; r < 10; ++r) ASSERT_TRUE(index.insert(5, r));
    EXPECT_FALSE(index.insert(5, 10));
    EXPECT_EQ(index.size(), 10u);
    ASSERT_TRUE(index.erase(5, 3));
    EXPECT_TRUE(index.insert(6, 10));
}

TEST(ConnIndexTest, RandomOperationsMatchTheModel) {
    constexpr uint32_t kMaxKeys = 200;
    ConnIndex index(kMaxKeys);  // 64 buckets
    // Hashes from a small set with few homes: long overflow runs. Each
    // (hash, ref) pair is distinct, as the table's are.
    std::mt19937_64 rng(20261205);
    std::set<std::pair<uint32_t, uint32_t>> model;
    uint32_t next_ref = 0;
    for (int step = 0; step < 200000; ++step) {
        const unsigned op = static_cast<unsigned>(rng() % 100);
        const uint32_t hash = 1 + static_cast<uint32_t>(rng() % 24) * 37;
        if (op < 50) {
            const bool inserted = index.insert(hash, next_ref);
            ASSERT_EQ(inserted, model.size() < kMaxKeys) << step;
            if (inserted) model.insert({hash, next_ref});
            ++next_ref;
        } else if (op < 90 && !model.empty()) {
            auto it = std::next(model.begin(), static_cast<long>(rng() % model.size()));
            ASSERT_TRUE(index.erase(it->first, it->second)) << step;
            ASSERT_FALSE(index.erase(it->first, it->second)) << step;
            model.erase(it);
        } else {
            // Every ref stored under one hash is found; another is not.
            for (const auto& [h, ref] : model) {
                if (h != hash) continue;
                const uint32_t want = ref;
                ASSERT_EQ(index.find(h, [&](uint32_t r) { return r == want; }), want) << step;
            }
            ASSERT_EQ(index.find(hash, [&](uint32_t r) { return r == next_ref; }), ConnIndex::kNoRef) << step;
        }
        if (step % 64 == 0) expect_consistent(index, model.size(), step);
    }
    expect_consistent(index, model.size(), -1);
}
