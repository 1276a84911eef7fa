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

// The overflow count each bucket of one array must have: for every entry,
// one in each bucket from its home up to (not including) its own.
template <typename BucketAt>
std::vector<uint32_t> expected_overflow(uint32_t buckets, BucketAt&& bucket_at) {
    std::vector<uint32_t> passed(buckets, 0);
    for (uint32_t b = 0; b < buckets; ++b) {
        for (unsigned e = 0; e < ConnIndex::kEntriesPerBucket; ++e) {
            const uint32_t h = bucket_at(b).hashes[e];
            if (h == 0) continue;
            for (uint32_t j = h % buckets; j != b; j = (j + 1) % buckets) ++passed[j];
        }
    }
    return passed;
}

// Both arrays (the old one while the index grows) count their overflows
// exactly and hold `model_size` entries together.
void expect_consistent(const ConnIndex& index, size_t model_size, int step) {
    ASSERT_EQ(index.size(), model_size) << step;
    const auto current = [&](uint32_t b) -> const ConnIndex::Bucket& { return index.bucket(b); };
    const auto old = [&](uint32_t b) -> const ConnIndex::Bucket& { return index.old_bucket(b); };
    size_t entries = 0;
    const std::vector<uint32_t> passed = expected_overflow(index.buckets(), current);
    for (uint32_t b = 0; b < index.buckets(); ++b) {
        ASSERT_EQ(index.bucket(b).overflow, passed[b]) << step << " " << b;
        for (unsigned e = 0; e < ConnIndex::kEntriesPerBucket; ++e) entries += index.bucket(b).hashes[e] != 0;
    }
    const std::vector<uint32_t> old_passed = expected_overflow(index.old_buckets(), old);
    for (uint32_t b = 0; b < index.old_buckets(); ++b) {
        ASSERT_EQ(index.old_bucket(b).overflow, old_passed[b]) << step << " old " << b;
        for (unsigned e = 0; e < ConnIndex::kEntriesPerBucket; ++e) entries += index.old_bucket(b).hashes[e] != 0;
    }
    ASSERT_EQ(entries, model_size) << step;
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

// The index starts small and doubles as keys are added, up to the size its
// maximum asks for; every key is found after each doubling, the overflow
// counts match the new layout, and erases after it work.
TEST(ConnIndexTest, GrowsAsKeysAreAdded) {
    constexpr uint32_t kMaxKeys = 1u << 16;
    ConnIndex index(kMaxKeys, 1);
    ASSERT_EQ(index.buckets(), 1u);
    std::mt19937 rng(9);
    std::vector<std::pair<uint32_t, uint32_t>> added;
    uint32_t last_buckets = index.buckets();
    for (uint32_t ref = 0; ref < kMaxKeys; ++ref) {
        const uint32_t hash = static_cast<uint32_t>(rng()) | 1;
        ASSERT_TRUE(index.insert(hash, ref)) << ref;
        added.emplace_back(hash, ref);
        // Never more than kGrowLoad keys a bucket before the largest size.
        if (index.buckets() < ConnIndex::bucket_count(kMaxKeys)) {
            ASSERT_LE(index.size(), ConnIndex::kGrowLoad * index.buckets() + 1) << ref;
        }
        if (index.buckets() != last_buckets) {
            ASSERT_EQ(index.buckets(), 2 * last_buckets) << ref;
            ASSERT_TRUE(index.growing() || last_buckets == 1) << ref;  // the old array moves a bucket per change
            last_buckets = index.buckets();
            expect_consistent(index, added.size(), static_cast<int>(ref));
            for (const auto& [h, r] : added) {
                const uint32_t want = r;
                ASSERT_EQ(index.find(h, [&](uint32_t x) { return x == want; }), want) << ref;
            }
        }
    }
    EXPECT_EQ(index.buckets(), 1u << 14);
    EXPECT_EQ(index.buckets(), ConnIndex::bucket_count(kMaxKeys));
    EXPECT_EQ(index.growths(), 14u);  // 1 -> 2^14 buckets
    // The last doubling (at 2^15 keys) moved its 2^13 old buckets one per
    // insert: the old array is gone.
    EXPECT_FALSE(index.growing());
    EXPECT_EQ(index.bytes(), size_t{1} << 14 << 6);
    EXPECT_FALSE(index.insert(12345, kMaxKeys));
    for (size_t i = 0; i < added.size(); i += 2) ASSERT_TRUE(index.erase(added[i].first, added[i].second));
    expect_consistent(index, added.size() / 2, -1);
    for (size_t i = 1; i < added.size(); i += 2) {
        const uint32_t want = added[i].second;
        ASSERT_EQ(index.find(added[i].first, [&](uint32_t x) { return x == want; }), want);
    }
}

// The model test again from one bucket: growth under few distinct hashes
// (long overflow runs) and erases in between.
TEST(ConnIndexTest, RandomOperationsWhileGrowingMatchTheModel) {
    constexpr uint32_t kMaxKeys = 600;
    ConnIndex index(kMaxKeys, 1);
    std::mt19937_64 rng(7);
    std::set<std::pair<uint32_t, uint32_t>> model;
    uint32_t next_ref = 0;
    for (int step = 0; step < 20000; ++step) {
        const unsigned op = static_cast<unsigned>(rng() % 100);
        const uint32_t hash = 1 + static_cast<uint32_t>(rng() % 300) * 37;
        if (op < 60) {
            const bool inserted = index.insert(hash, next_ref);
            ASSERT_EQ(inserted, model.size() < kMaxKeys) << step;
            if (inserted) model.insert({hash, next_ref});
            ++next_ref;
        } else if (!model.empty()) {
            auto it = std::next(model.begin(), static_cast<long>(rng() % model.size()));
            ASSERT_TRUE(index.erase(it->first, it->second)) << step;
            model.erase(it);
        }
        if (step % 97 == 0) {
            expect_consistent(index, model.size(), step);
            for (const auto& [h, ref] : model) {
                const uint32_t want = ref;
                ASSERT_EQ(index.find(h, [&](uint32_t r) { return r == want; }), want) << step;
            }
        }
    }
    EXPECT_GT(index.growths(), 3u);
    expect_consistent(index, model.size(), -1);
}
