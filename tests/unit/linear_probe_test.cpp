// The open-addressing table shared by the classifier and the megaflow cache
// (src/common/linear_probe.hpp) against a plain list, through many growths:
// entries found while two arrays coexist and after, erases from either
// array, clustered hashes (long runs, runs wrapping past the array's end).
#include <gtest/gtest.h>

#include <cstdint>
#include <algorithm>
#include <vector>
#include <random>

#include "../../src/common/linear_probe.hpp"

namespace flowpath {
namespace {

struct Entry {
    uint32_t hash = 0;
    uint32_t value = 0;  // 0: empty
    constexpr bool empty() const { return value == 0; }
};

template <unsigned Load>
void check_against_list(uint32_t seed, uint32_t hash_mask) {
    using Table = LinearProbeTable<Entry, Load>;
    std::mt19937 rng(seed);
    Table table;
    std::vector<Entry> live;  // the reference: what the table must hold
    uint32_t next_value = 1;
    uint64_t steps_migrating = 0, erased_while_migrating = 0;
    size_t largest = 0;
    auto find_value = [&](uint32_t hash, uint32_t value) {
        return table.find(hash, [&](const Entry& e) { return e.hash == hash && e.value == value; });
    };
    for (int step = 0; step < 300000; ++step) {
        // Grow to ~100k entries, then churn around that.
        const bool add = live.empty() || rng() % 100 < (live.size() < 100000 ? 70u : 45u);
        if (add) {
            // Clustered hashes: one in 64 shares its low bits with the
            // array's last positions, so runs are long and wrap past the end.
            const uint32_t hash = (rng() % 64 == 0 ? 0xfffffff0u | (rng() & 15) : rng()) & hash_mask;
            table.insert(Entry{hash, next_value});
            live.push_back(Entry{hash, next_value++});
        } else {
            const size_t i = rng() % live.size();
            const size_t index = find_value(live[i].hash, live[i].value);
            ASSERT_NE(index, Table::npos) << "step " << step;
            ASSERT_EQ(table.at(index).value, live[i].value);
            erased_while_migrating += table.migrating();
            table.erase_at(index);
            live[i] = live.back();
            live.pop_back();
        }
        steps_migrating += table.migrating();
        largest = std::max(largest, table.capacity());
        ASSERT_EQ(table.size(), live.size());
        const bool full_check = step % 20000 == 0;
        if (full_check || step % 211 == 0) {
            for (int k = 0; k < (full_check ? static_cast<int>(live.size()) : 300); ++k) {
                const Entry& e = live[full_check ? static_cast<size_t>(k) : rng() % live.size()];
                ASSERT_NE(find_value(e.hash, e.value), Table::npos) << "step " << step << " value " << e.value;
            }
            for (int k = 0; k < 100; ++k) ASSERT_EQ(find_value(rng() & hash_mask, 0xffffffff), Table::npos);
        }
    }
    for (const Entry& e : live) ASSERT_NE(find_value(e.hash, e.value), Table::npos);
    // The test went through migrations, erasing during them too.
    EXPECT_GT(steps_migrating, 1000u);
    EXPECT_GT(erased_while_migrating, 100u);
    EXPECT_GE(largest, 100000u * 100 / Load);
}

TEST(LinearProbeTable, AgreesWithAListThroughGrowthsHalfFull) { check_against_list<50>(1, 0xffffffff); }
TEST(LinearProbeTable, AgreesWithAListThroughGrowthsThreeQuartersFull) {
    check_against_list<75>(2, 0xffffffff);
}
// Few distinct hashes: runs hundreds of entries long.
TEST(LinearProbeTable, AgreesWithAListOnFewHashes) { check_against_list<75>(3, 0x0003ffff); }

TEST(LinearProbeTable, MovesKeepEverything) {
    LinearProbeTable<Entry, 50> a;
    for (uint32_t i = 1; i <= 5000; ++i) a.insert(Entry{i * 2654435761u, i});
    LinearProbeTable<Entry, 50> b(std::move(a));
    EXPECT_EQ(a.size(), 0u);
    EXPECT_EQ(b.size(), 5000u);
    a = std::move(b);
    for (uint32_t i = 1; i <= 5000; ++i) {
        const uint32_t hash = i * 2654435761u;
        ASSERT_NE(a.find(hash, [&](const Entry& e) { return e.value == i; }), (LinearProbeTable<Entry, 50>::npos));
    }
}

}  // namespace
}  // namespace flowpath
