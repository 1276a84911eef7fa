// The connection table: keys, the index of both sides, the refusals, the
// lowest-free-slot policy and free clusters, expiry (sweep, refresh,
// budget), deferred reclaim, for_each and clear; a reader thread against
// the owner with QSBR grace periods; then 100k random operations against a
// reference model, in both reclaim modes. rte_hash needs the EAL: main()
// starts it (gtest_main's main is not pulled from its archive when this one
// exists).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <rte_malloc.h>
#include <rte_pause.h>
#include <rte_rcu_qsbr.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <random>
#include <memory>
#include <set>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "flowpath/conntrack.hpp"
#include "flowpath/error.hpp"
#include "flowpath/io.hpp"

using namespace flowpath;

namespace {

using Clusters = std::vector<std::pair<uint32_t, uint32_t>>;

ConnKey tcp_key(uint32_t n, uint16_t zone = 0) {
    return ConnKey::ipv4(zone, IPPROTO_TCP, htonl(0x0A000000u + n), htonl(0xC0A80001u), htons(static_cast<uint16_t>(1024 + n % 50000)),
                         htons(80));
}

// Small timeouts in "ticks" so tests read plainly.
ConnTimeouts test_timeouts() {
    ConnTimeouts t;
    for (uint64_t& v : t.value) v = 100;
    t[TimeoutClass::other_first] = 10;
    t[TimeoutClass::icmp_first] = 30;
    t[TimeoutClass::tcp_established] = 1000;
    return t;
}

ConnTableConfig config(uint32_t capacity, Reclaim reclaim = Reclaim::immediate) {
    ConnTableConfig c;
    c.capacity = capacity;
    c.timeouts = test_timeouts();
    c.reclaim = reclaim;
    return c;
}

uint32_t insert_ok(ConnTable& table, const ConnKey& key, TimeoutClass cls = TimeoutClass::other_first, uint64_t now = 0) {
    const InsertResult r = table.insert(key, ConnState::other, cls, now);
    EXPECT_EQ(r.status, InsertStatus::inserted);
    return r.ref.index();
}

std::vector<uint32_t> live_indices(const ConnTable& table) {
    std::vector<uint32_t> out;
    table.for_each([&](uint32_t index, const Connection& c) {
        EXPECT_TRUE(c.live());
        out.push_back(index);
    });
    return out;
}

TEST(ConnKey, LayoutAndReversal) {
    const ConnKey blank;
    const uint8_t zeros[sizeof(ConnKey)] = {};
    EXPECT_EQ(std::memcmp(&blank, zeros, sizeof(ConnKey)), 0);

    const ConnKey k = ConnKey::ipv4(7, IPPROTO_UDP, htonl(0x01020304), htonl(0x05060708), htons(1111), htons(53));
    EXPECT_EQ(k.family, AddressFamily::ipv4);
    EXPECT_EQ(k.src[0], 1);
    EXPECT_EQ(k.src[3], 4);
    for (int i = 4; i < 16; ++i) EXPECT_EQ(k.src[i], 0) << i;  // IPv4 in the first 4 bytes only

    const ConnKey r = k.reversed();
    EXPECT_EQ(std::memcmp(r.src, k.dst, 16), 0);
    EXPECT_EQ(std::memcmp(r.dst, k.src, 16), 0);
    EXPECT_EQ(r.src_port, k.dst_port);
    EXPECT_EQ(r.dst_port, k.src_port);
    EXPECT_EQ(r.zone, 7);
    EXPECT_EQ(r.nw_proto, IPPROTO_UDP);
    EXPECT_EQ(r.family, AddressFamily::ipv4);
    EXPECT_NE(r, k);
    EXPECT_EQ(r.reversed(), k);

    // ICMP echo: the id in both ports, so the reversed key keeps it.
    const ConnKey echo = ConnKey::ipv4(0, IPPROTO_ICMP, htonl(1), htonl(2), htons(99), htons(99));
    EXPECT_EQ(echo.reversed().src_port, htons(99));
    EXPECT_EQ(echo.reversed().dst_port, htons(99));
}

TEST(ConnRefTest, PacksIndexAndSide) {
    const ConnRef ref(12345, kReplySide);
    EXPECT_EQ(ref.value, 12345u << 1 | 1);
    EXPECT_EQ(ref.index(), 12345u);
    EXPECT_EQ(ref.side(), 1u);
    EXPECT_TRUE(ref.valid());
    EXPECT_FALSE(ConnRef{}.valid());
}

TEST(ConnTableTest, InsertThenLookupBothSides) {
    ConnTable table(config(64));
    const ConnKey a = tcp_key(1);
    const InsertResult r = table.insert(a, ConnState::tcp_syn_sent, TimeoutClass::tcp_syn_sent, 5);
    ASSERT_TRUE(r);
    EXPECT_EQ(r.ref, ConnRef(0, kInitiatorSide));
    EXPECT_EQ(table.lookup(a), ConnRef(0, kInitiatorSide));
    EXPECT_EQ(table.lookup(a.reversed()), ConnRef(0, kReplySide));
    EXPECT_EQ(table.lookup(a, table.hash(a)), ConnRef(0, kInitiatorSide));
    EXPECT_FALSE(table.lookup(tcp_key(2)).valid());
    EXPECT_FALSE(table.lookup(tcp_key(1, /*zone=*/3)).valid());  // zones are separate

    const Connection& c = table.connection(0);
    EXPECT_TRUE(c.live());
    EXPECT_EQ(c.key(0), a);
    EXPECT_EQ(c.key(1), a.reversed());
    EXPECT_EQ(c.state(), ConnState::tcp_syn_sent);
    EXPECT_EQ(c.timeout_class(), TimeoutClass::tcp_syn_sent);
    EXPECT_EQ(c.expiry(), 105u);
    EXPECT_EQ(c.mark(), 0u);
    table.set_mark(0, 0xabc);
    table.set_state(0, ConnState::tcp_established);
    EXPECT_EQ(c.mark(), 0xabcu);
    EXPECT_EQ(c.state(), ConnState::tcp_established);

    // An explicit reply key (as NAT will give) is indexed as given.
    const ConnKey b = tcp_key(2);
    const ConnKey b_reply = tcp_key(900).reversed();
    const uint32_t bi = table.insert(b, b_reply, ConnState::other, TimeoutClass::other_first, 0).ref.index();
    EXPECT_EQ(table.lookup(b_reply), ConnRef(bi, kReplySide));
    EXPECT_FALSE(table.lookup(b.reversed()).valid());

    EXPECT_EQ(table.size(), 2u);
    EXPECT_EQ(table.counters().created.get(), 2u);
    EXPECT_EQ(table.check_invariants(), "");
}

TEST(ConnTableTest, LookupBurstWithAndWithoutHashes) {
    ConnTable table(config(128));
    std::vector<ConnKey> keys;
    for (uint32_t n = 0; n < 40; ++n) {
        keys.push_back(tcp_key(n));
        if (n % 2 == 0) insert_ok(table, keys.back());
    }
    std::vector<const ConnKey*> ptrs;
    std::vector<uint32_t> hashes;
    std::vector<ConnKey> reply_keys;
    reply_keys.reserve(keys.size());
    for (size_t i = 0; i < keys.size(); ++i) {
        // Alternate forward and reply directions.
        reply_keys.push_back(i % 4 < 2 ? keys[i] : keys[i].reversed());
    }
    for (const ConnKey& k : reply_keys) {
        ptrs.push_back(&k);
        hashes.push_back(table.hash(k));
    }
    for (const uint32_t* h : {static_cast<const uint32_t*>(nullptr), static_cast<const uint32_t*>(hashes.data())}) {
        std::vector<ConnRef> refs(ptrs.size());
        const unsigned hits = table.lookup_burst(ptrs.data(), h, static_cast<unsigned>(ptrs.size()), refs.data());
        EXPECT_EQ(hits, 20u);
        for (size_t i = 0; i < ptrs.size(); ++i) EXPECT_EQ(refs[i], table.lookup(*ptrs[i])) << i;
    }
}

TEST(ConnTableTest, DuplicateInsertRefused) {
    ConnTable table(config(16));
    const ConnKey a = tcp_key(1);
    insert_ok(table, a);
    InsertResult again = table.insert(a, ConnState::other, TimeoutClass::other_first, 1);
    EXPECT_EQ(again.status, InsertStatus::exists);
    EXPECT_EQ(again.ref, ConnRef(0, kInitiatorSide));
    // The reply direction's key is taken too.
    again = table.insert(a.reversed(), ConnState::other, TimeoutClass::other_first, 1);
    EXPECT_EQ(again.status, InsertStatus::exists);
    EXPECT_EQ(again.ref, ConnRef(0, kReplySide));
    // A new forward key whose reply key collides with a's.
    again = table.insert(tcp_key(5), a.reversed(), ConnState::other, TimeoutClass::other_first, 1);
    EXPECT_EQ(again.status, InsertStatus::exists);
    EXPECT_FALSE(table.lookup(tcp_key(5)).valid());
    EXPECT_EQ(table.size(), 1u);
    EXPECT_EQ(table.counters().created.get(), 1u);
    EXPECT_EQ(table.counters().refused.get(), 0u);
    EXPECT_EQ(table.check_invariants(), "");
}

TEST(ConnTableTest, SymmetricKeyHasOneIndexEntry) {
    ConnTable table(config(16));
    // Same address and port on both ends: forward == reversed.
    const ConnKey self = ConnKey::ipv4(0, IPPROTO_UDP, htonl(0x7F000001), htonl(0x7F000001), htons(5), htons(5));
    ASSERT_EQ(self, self.reversed());
    const uint32_t i = insert_ok(table, self);
    EXPECT_EQ(table.lookup(self), ConnRef(i, kInitiatorSide));
    EXPECT_EQ(table.check_invariants(), "");
    table.remove(i);
    EXPECT_FALSE(table.lookup(self).valid());
    EXPECT_EQ(table.check_invariants(), "");
}

TEST(ConnTableTest, Ipv6Keys) {
    ConnTable table(config(16));
    uint8_t a[16] = {0x20, 0x01, 0x0d, 0xb8};
    uint8_t b[16] = {0x20, 0x01, 0x0d, 0xb8};
    a[15] = 1;
    b[15] = 2;
    const ConnKey k = ConnKey::ipv6(1, IPPROTO_TCP, a, b, htons(40000), htons(443));
    const uint32_t i = insert_ok(table, k);
    EXPECT_EQ(table.lookup(k.reversed()), ConnRef(i, kReplySide));
    // The same addresses' first 4 bytes as an IPv4 key is another key.
    uint32_t a4, b4;
    std::memcpy(&a4, a, 4);
    std::memcpy(&b4, b, 4);
    EXPECT_FALSE(table.lookup(ConnKey::ipv4(1, IPPROTO_TCP, a4, b4, htons(40000), htons(443))).valid());
}

TEST(ConnTableTest, CapacityAndLimitRefuseAndCount) {
    ConnTable table(config(8));
    for (uint32_t n = 0; n < 8; ++n) insert_ok(table, tcp_key(n));
    InsertResult r = table.insert(tcp_key(100), ConnState::other, TimeoutClass::other_first, 0);
    EXPECT_EQ(r.status, InsertStatus::full);
    EXPECT_FALSE(r.ref.valid());
    EXPECT_FALSE(table.lookup(tcp_key(100)).valid());
    EXPECT_EQ(table.counters().refused.get(), 1u);
    table.remove(3);
    EXPECT_EQ(insert_ok(table, tcp_key(100)), 3u);

    // The global limit, below the capacity.
    ConnTableConfig limited = config(64);
    limited.limit = 4;
    ConnTable small(limited);
    for (uint32_t n = 0; n < 4; ++n) insert_ok(small, tcp_key(n));
    EXPECT_EQ(small.insert(tcp_key(9), ConnState::other, TimeoutClass::other_first, 0).status, InsertStatus::full);
    EXPECT_EQ(small.counters().refused.get(), 1u);
    small.set_limit(5);
    insert_ok(small, tcp_key(9));
    small.set_limit(2);  // below the live count: nothing removed, inserts refused
    EXPECT_EQ(small.size(), 5u);
    EXPECT_EQ(small.insert(tcp_key(10), ConnState::other, TimeoutClass::other_first, 0).status, InsertStatus::full);
    EXPECT_EQ(small.counters().refused.get(), 2u);
    EXPECT_EQ(small.limit(), 2u);

    EXPECT_THROW({ ConnTable zero(config(0)); }, Error);
}

TEST(ConnTableTest, LowestFreeSlotAndClusterMerging) {
    ConnTable table(config(32));
    for (uint32_t n = 0; n < 12; ++n) EXPECT_EQ(insert_ok(table, tcp_key(n)), n);
    EXPECT_EQ(table.free_clusters(), (Clusters{{12, 20}}));

    // Freed out of order: 5 alone, then 3 alone, then 4 joins both.
    table.remove(5);
    EXPECT_EQ(table.free_clusters(), (Clusters{{5, 1}, {12, 20}}));
    table.remove(3);
    EXPECT_EQ(table.free_clusters(), (Clusters{{3, 1}, {5, 1}, {12, 20}}));
    table.remove(4);
    EXPECT_EQ(table.free_clusters(), (Clusters{{3, 3}, {12, 20}}));
    EXPECT_EQ(table.check_invariants(), "");
    // 7 alone, 6 joins the cluster on its left and the one on its right.
    table.remove(7);
    EXPECT_EQ(table.free_clusters(), (Clusters{{3, 3}, {7, 1}, {12, 20}}));
    table.remove(6);
    EXPECT_EQ(table.free_clusters(), (Clusters{{3, 5}, {12, 20}}));
    // 11 joins the tail cluster from its left (becomes its first slot).
    table.remove(11);
    EXPECT_EQ(table.free_clusters(), (Clusters{{3, 5}, {11, 21}}));
    // 0 becomes the first cluster.
    table.remove(0);
    EXPECT_EQ(table.free_clusters(), (Clusters{{0, 1}, {3, 5}, {11, 21}}));
    EXPECT_EQ(table.check_invariants(), "");

    // New connections take the lowest free slot, always.
    const uint32_t expected[] = {0, 3, 4, 5, 6, 7, 11, 12};
    uint32_t n = 100;
    for (uint32_t want : expected) EXPECT_EQ(insert_ok(table, tcp_key(n++)), want);
    EXPECT_EQ(table.free_clusters(), (Clusters{{13, 19}}));
    EXPECT_EQ(table.check_invariants(), "");

    // Fill up: the list empties; a freed slot starts it again.
    while (table.size() < 32) insert_ok(table, tcp_key(n++));
    EXPECT_TRUE(table.free_clusters().empty());
    table.remove(31);
    EXPECT_EQ(table.free_clusters(), (Clusters{{31, 1}}));
    table.remove(30);
    EXPECT_EQ(table.free_clusters(), (Clusters{{30, 2}}));
    EXPECT_EQ(table.check_invariants(), "");
}

TEST(ConnTableTest, SweepRemovesExactlyTheExpired) {
    ConnTable table(config(16));
    const uint32_t a = insert_ok(table, tcp_key(1), TimeoutClass::other_first, 0);  // expires 10
    const uint32_t b = insert_ok(table, tcp_key(2), TimeoutClass::other_first, 5);  // 15
    const uint32_t c = insert_ok(table, tcp_key(3), TimeoutClass::icmp_first, 0);   // 30
    const uint32_t d = insert_ok(table, tcp_key(4), TimeoutClass::tcp_established, 0);  // 1000
    EXPECT_EQ(table.next_expiry(), 10u);

    SweepResult s = table.sweep(9, 100);
    EXPECT_EQ(s.removed, 0u);
    EXPECT_EQ(s.next_expiry, 10u);

    s = table.sweep(10, 100);  // expired means expiry <= now
    EXPECT_EQ(s.removed, 1u);
    EXPECT_EQ(s.next_expiry, 15u);
    EXPECT_FALSE(table.connection(a).live());
    EXPECT_FALSE(table.lookup(tcp_key(1)).valid());
    EXPECT_FALSE(table.lookup(tcp_key(1).reversed()).valid());
    EXPECT_TRUE(table.lookup(tcp_key(2)).valid());

    s = table.sweep(40, 100);
    EXPECT_EQ(s.removed, 2u);
    EXPECT_EQ(s.next_expiry, 1000u);
    EXPECT_FALSE(table.connection(b).live());
    EXPECT_FALSE(table.connection(c).live());
    EXPECT_TRUE(table.connection(d).live());
    EXPECT_EQ(table.counters().expired.get(), 3u);
    EXPECT_EQ(table.size(), 1u);
    EXPECT_EQ(table.check_invariants(), "");

    table.remove(d);  // removed, not expired
    s = table.sweep(5000, 100);
    EXPECT_EQ(s.removed, 0u);
    EXPECT_EQ(s.next_expiry, ConnTable::kNever);
    EXPECT_EQ(table.counters().expired.get(), 3u);
}

TEST(ConnTableTest, SweepRespectsBudgetOldestFirst) {
    ConnTable table(config(64));
    // Interleave two classes so that expiry order crosses lists.
    std::vector<std::pair<uint64_t, uint32_t>> expiries;  // (expiry, index)
    for (uint32_t n = 0; n < 20; ++n) {
        const bool icmp = n % 3 == 0;
        const uint64_t now = n;
        const uint32_t i =
            insert_ok(table, tcp_key(n), icmp ? TimeoutClass::icmp_first : TimeoutClass::other_first, now);
        expiries.emplace_back(now + (icmp ? 30 : 10), i);
    }
    std::sort(expiries.begin(), expiries.end());
    const uint64_t now = 1000;  // everything expired
    size_t gone = 0;
    for (unsigned budget : {3u, 1u, 7u}) {
        const SweepResult s = table.sweep(now, budget);
        EXPECT_EQ(s.removed, budget);
        gone += budget;
        EXPECT_EQ(s.next_expiry, expiries[gone].first);  // <= now: more to do
        for (size_t k = 0; k < expiries.size(); ++k) {
            EXPECT_EQ(table.connection(expiries[k].second).live(), k >= gone) << k;
        }
    }
    const SweepResult s = table.sweep(now, 100);
    EXPECT_EQ(s.removed, 20u - gone);
    EXPECT_EQ(table.size(), 0u);
    EXPECT_EQ(table.check_invariants(), "");
}

TEST(ConnTableTest, RefreshMovesToTheTail) {
    ConnTable table(config(16));
    const uint32_t older = insert_ok(table, tcp_key(1), TimeoutClass::other_first, 0);  // 10
    const uint32_t newer = insert_ok(table, tcp_key(2), TimeoutClass::other_first, 5);  // 15
    table.refresh(older, TimeoutClass::other_first, 8);                                 // 18
    EXPECT_EQ(table.connection(older).expiry(), 18u);
    EXPECT_EQ(table.check_invariants(), "");
    SweepResult s = table.sweep(16, 100);
    EXPECT_EQ(s.removed, 1u);
    EXPECT_FALSE(table.connection(newer).live());
    EXPECT_TRUE(table.connection(older).live());
    EXPECT_EQ(s.next_expiry, 18u);

    // Moving to another class: the new class's timeout and list.
    table.refresh(older, TimeoutClass::tcp_established, 16);
    EXPECT_EQ(table.connection(older).timeout_class(), TimeoutClass::tcp_established);
    EXPECT_EQ(table.connection(older).expiry(), 1016u);
    EXPECT_EQ(table.sweep(500, 100).removed, 0u);

    // A clock stepping back never puts a connection before the list's tail.
    const uint32_t late = insert_ok(table, tcp_key(3), TimeoutClass::tcp_established, 100);  // 1100
    table.refresh(older, TimeoutClass::tcp_established, 50);  // would be 1050; the tail is 1100
    EXPECT_EQ(table.connection(older).expiry(), 1100u);
    EXPECT_TRUE(table.connection(late).live());
    EXPECT_EQ(table.check_invariants(), "");
}

TEST(ConnTableTest, ForEachVisitsExactlyTheLiveInIndexOrder) {
    ConnTable table(config(256));
    for (uint32_t n = 0; n < 200; ++n) insert_ok(table, tcp_key(n));
    std::set<uint32_t> live;
    for (uint32_t n = 0; n < 200; ++n) live.insert(n);
    std::mt19937 rng(7);
    for (int k = 0; k < 120; ++k) {
        const uint32_t i = rng() % 200;
        if (live.erase(i)) table.remove(i);
    }
    EXPECT_EQ(live_indices(table), std::vector<uint32_t>(live.begin(), live.end()));
    table.for_each([&](uint32_t index, const Connection& c) { EXPECT_EQ(c.key(0), tcp_key(index)); });
    EXPECT_EQ(table.check_invariants(), "");
}

TEST(ConnTableTest, ClearRemovesEverything) {
    ConnTable table(config(64));
    for (uint32_t n = 0; n < 50; ++n) insert_ok(table, tcp_key(n), TimeoutClass::other_first, n);
    table.clear();
    EXPECT_EQ(table.size(), 0u);
    EXPECT_TRUE(live_indices(table).empty());
    for (uint32_t n = 0; n < 50; ++n) EXPECT_FALSE(table.lookup(tcp_key(n)).valid());
    EXPECT_EQ(table.free_clusters(), (Clusters{{0, 64}}));
    EXPECT_EQ(table.next_expiry(), ConnTable::kNever);
    EXPECT_EQ(table.counters().created.get(), 50u);
    EXPECT_EQ(table.counters().expired.get(), 0u);
    EXPECT_EQ(table.check_invariants(), "");
    EXPECT_EQ(insert_ok(table, tcp_key(1)), 0u);
}

TEST(ConnTableTest, DeferredReclaimHoldsSlotsUntilReleased) {
    ConnTable table(config(8, Reclaim::deferred));
    for (uint32_t n = 0; n < 8; ++n) insert_ok(table, tcp_key(n), TimeoutClass::other_first, n);
    EXPECT_EQ(table.sweep(11, 100).removed, 2u);  // 0 and 1 expire
    EXPECT_EQ(table.size(), 6u);
    EXPECT_EQ(table.retired(), 2u);
    EXPECT_FALSE(table.lookup(tcp_key(0)).valid());  // gone from the index at once
    EXPECT_EQ(table.check_invariants(), "");
    // Their slots are not reusable yet: the table is full.
    EXPECT_EQ(table.insert(tcp_key(50), ConnState::other, TimeoutClass::other_first, 11).status, InsertStatus::full);

    const uint64_t mark = table.retire_mark();  // a grace period would start here
    table.remove(5);                            // retired after the mark
    EXPECT_EQ(table.release_retired(mark), 2u);
    EXPECT_EQ(table.retired(), 1u);
    EXPECT_EQ(table.free_clusters(), (Clusters{{0, 2}}));
    EXPECT_EQ(table.check_invariants(), "");
    EXPECT_EQ(insert_ok(table, tcp_key(50), TimeoutClass::other_first, 11), 0u);
    EXPECT_EQ(table.release_retired(), 1u);
    EXPECT_EQ(table.free_clusters(), (Clusters{{1, 1}, {5, 1}}));

    // The index's key storage comes back too: many cycles on a full table.
    for (uint32_t n = 100; n < 2000; ++n) {
        const uint32_t i = table.lookup(tcp_key(50)).valid() ? table.lookup(tcp_key(50)).index() : UINT32_MAX;
        if (i != UINT32_MAX) table.remove(i);
        table.release_retired();
        insert_ok(table, tcp_key(n), TimeoutClass::other_first, 20);
        table.remove(table.lookup(tcp_key(n)).index());
        table.release_retired(table.retire_mark());
    }
    EXPECT_EQ(table.check_invariants(), "");
}

// The threading contract as the threaded design will use it: a reader thread
// looks keys up while the owner inserts, removes and sweeps with deferred
// reclaim, releasing retired slots only after an RCU QSBR grace period. A
// reader that finds a key must find that key in the slot (a slot reused too
// early would hold another one).
TEST(ConnTableTest, ConcurrentReaderWithQsbrGracePeriods) {
    constexpr uint32_t kCapacity = 64;
    constexpr uint32_t kKeys = 256;
    ConnTable table(config(kCapacity, Reclaim::deferred));
    const size_t qsbr_size = rte_rcu_qsbr_get_memsize(1);
    std::unique_ptr<rte_rcu_qsbr, void (*)(void*)> qsbr(
        static_cast<rte_rcu_qsbr*>(rte_zmalloc("ct_test_qsbr", qsbr_size, RTE_CACHE_LINE_SIZE)), rte_free);
    ASSERT_NE(qsbr, nullptr);
    ASSERT_EQ(rte_rcu_qsbr_init(qsbr.get(), 1), 0);

    std::atomic<bool> stop{false};
    std::atomic<uint64_t> lookups{0}, found{0}, wrong{0};
    std::thread reader([&] {
        // The EAL pinned this process's main thread to lcore 0's CPU, and a
        // new thread inherits that: let the reader run on any CPU.
        cpu_set_t cpus;
        CPU_ZERO(&cpus);
        for (unsigned cpu = 0; cpu < std::thread::hardware_concurrency(); ++cpu) CPU_SET(cpu, &cpus);
        pthread_setaffinity_np(pthread_self(), sizeof(cpus), &cpus);
        rte_rcu_qsbr_thread_register(qsbr.get(), 0);
        rte_rcu_qsbr_thread_online(qsbr.get(), 0);
        std::mt19937 rng(1);
        while (!stop.load(std::memory_order_relaxed)) {
            const uint32_t n = rng() % kKeys;
            const ConnKey key = n % 2 ? tcp_key(n / 2) : tcp_key(n / 2).reversed();
            const ConnRef ref = table.lookup(key);
            if (ref) {
                // Hold the reference a while, as a packet being processed would.
                for (int k = 0; k < 64; ++k) rte_pause();
                const ConnKey seen = table.connection(ref.index()).key(ref.side());
                if (!(seen == key)) wrong.fetch_add(1, std::memory_order_relaxed);
                found.fetch_add(1, std::memory_order_relaxed);
            }
            lookups.fetch_add(1, std::memory_order_relaxed);
            rte_rcu_qsbr_quiescent(qsbr.get(), 0);  // holds no reference past here
        }
        rte_rcu_qsbr_thread_offline(qsbr.get(), 0);
        rte_rcu_qsbr_thread_unregister(qsbr.get(), 0);
    });

    std::mt19937 rng(2);
    uint64_t now = 0;
    bool waiting = false;
    uint64_t mark = 0, token = 0;
    for (int step = 0; step < 200000 || lookups.load() < 100000; ++step) {
        const uint32_t n = rng() % (kKeys / 2);
        const ConnRef ref = table.lookup(tcp_key(n));
        if (ref) {
            table.remove(ref.index());
        } else {
            table.insert(tcp_key(n), ConnState::other, TimeoutClass::other_first, now);
        }
        if (step % 50 == 0) table.sweep(now += 3, 8);
        // One grace period at a time: start one, release once it is over.
        if (!waiting && table.retired() > 0) {
            mark = table.retire_mark();
            token = rte_rcu_qsbr_start(qsbr.get());
            waiting = true;
        } else if (waiting && rte_rcu_qsbr_check(qsbr.get(), token, false) == 1) {
            table.release_retired(mark);
            waiting = false;
        } else if (waiting && table.retired() > kCapacity / 2) {
            std::this_thread::yield();  // on one CPU, the reader must run to end the period
        }
    }
    stop = true;
    reader.join();
    EXPECT_EQ(wrong.load(), 0u);
    EXPECT_GT(found.load(), 1000u) << lookups.load() << " lookups, " << table.size() << " live";
    table.release_retired();
    EXPECT_EQ(table.check_invariants(), "");
}

// ---- Randomised against a reference model ----

struct ModelConn {
    ConnKey forward, reply;
    TimeoutClass cls;
    uint64_t expiry;
    uint64_t order;  // when it was last put at its list's tail
    uint32_t mark;
};

struct Model {
    uint32_t capacity;
    std::map<uint32_t, ModelConn> live;            // index -> connection
    std::map<std::array<uint8_t, sizeof(ConnKey)>, ConnRef> keys;  // key bytes -> side
    std::deque<uint32_t> pending;                  // retired, not released (deferred)
    uint64_t created = 0, expired = 0, refused = 0, order = 0;

    static std::array<uint8_t, sizeof(ConnKey)> bytes(const ConnKey& k) {
        std::array<uint8_t, sizeof(ConnKey)> b;
        std::memcpy(b.data(), &k, sizeof(k));
        return b;
    }
    ConnRef find(const ConnKey& k) const {
        const auto it = keys.find(bytes(k));
        return it == keys.end() ? ConnRef{} : it->second;
    }
    uint32_t lowest_free() const {
        for (uint32_t i = 0; i < capacity; ++i) {
            if (!live.count(i) && std::find(pending.begin(), pending.end(), i) == pending.end()) return i;
        }
        return UINT32_MAX;
    }
    void drop(uint32_t index) {
        const ModelConn& c = live.at(index);
        keys.erase(bytes(c.forward));
        keys.erase(bytes(c.reply));
        live.erase(index);
        pending.push_back(index);
    }
};

class ConnTableModelTest : public ::testing::TestWithParam<Reclaim> {};

TEST_P(ConnTableModelTest, RandomOperationsMatchTheModel) {
    const Reclaim reclaim = GetParam();
    constexpr uint32_t kCapacity = 300;
    constexpr uint32_t kKeyPool = 700;  // more keys than slots: the table fills
    ConnTable table(config(kCapacity, reclaim));
    Model model{kCapacity, {}, {}, {}};
    const ConnTimeouts timeouts = test_timeouts();
    std::mt19937_64 rng(20261122);

    // Key n: a forward key; reply is its reverse, except every 7th key,
    // whose reply is made up (as NAT would), and key 0, symmetric.
    auto forward_of = [](uint32_t n) {
        if (n == 0) return ConnKey::ipv4(0, IPPROTO_UDP, htonl(0x7F000001), htonl(0x7F000001), htons(9), htons(9));
        return ConnKey::ipv4(static_cast<uint16_t>(n % 3), n % 2 ? IPPROTO_TCP : IPPROTO_UDP,
                             htonl(0x0A000000u + n / 5), htonl(0x0B000000u + n % 5), htons(static_cast<uint16_t>(n)),
                             htons(80));
    };
    auto reply_of = [&](uint32_t n) {
        if (n % 7 == 3) return ConnKey::ipv4(0, IPPROTO_TCP, htonl(0x0C000000u + n), htonl(0x0A000001), htons(443), htons(static_cast<uint16_t>(n)));
        return forward_of(n).reversed();
    };
    const TimeoutClass classes[] = {TimeoutClass::other_first, TimeoutClass::icmp_first,
                                    TimeoutClass::tcp_established, TimeoutClass::tcp_syn_sent};

    uint64_t now = 0;
    for (int step = 0; step < 100000; ++step) {
        // Alternate phases of 5000 steps: with sweeps, and without (time
        // stands still and the table fills up to its capacity).
        const bool filling = (step / 5000) % 2 == 1;
        unsigned op = static_cast<unsigned>(rng() % 100);
        if (filling && op >= 72 && op < 86) op = 99;
        if (op < 45) {  // insert
            const uint32_t n = static_cast<uint32_t>(rng() % kKeyPool);
            const ConnKey fwd = forward_of(n), rpl = reply_of(n);
            const TimeoutClass cls = classes[rng() % 4];
            const InsertResult r = table.insert(fwd, rpl, ConnState::other, cls, now);
            ConnRef expect_found = model.find(fwd);
            if (!expect_found) expect_found = model.find(rpl);
            if (expect_found) {
                ASSERT_EQ(r.status, InsertStatus::exists) << step;
                ASSERT_EQ(r.ref, expect_found) << step;
            } else if (model.live.size() >= kCapacity || model.lowest_free() == UINT32_MAX) {
                ASSERT_EQ(r.status, InsertStatus::full) << step;
                ++model.refused;
            } else {
                ASSERT_EQ(r.status, InsertStatus::inserted) << step;
                const uint32_t want = model.lowest_free();
                ASSERT_EQ(r.ref, ConnRef(want, 0)) << step;
                model.live[want] = {fwd, rpl, cls, now + timeouts[cls], model.order++, 0};
                model.keys[Model::bytes(fwd)] = ConnRef(want, 0);
                if (!(fwd == rpl)) model.keys[Model::bytes(rpl)] = ConnRef(want, 1);
                ++model.created;
            }
        } else if (op < 60 && !model.live.empty()) {  // refresh
            auto it = std::next(model.live.begin(), static_cast<long>(rng() % model.live.size()));
            const TimeoutClass cls = classes[rng() % 4];
            table.refresh(it->first, cls, now);
            it->second.cls = cls;
            it->second.expiry = now + timeouts[cls];
            it->second.order = model.order++;
        } else if (op < 68 && !model.live.empty()) {  // remove
            auto it = std::next(model.live.begin(), static_cast<long>(rng() % model.live.size()));
            const uint32_t index = it->first;
            table.remove(index);
            model.drop(index);
        } else if (op < 72 && !model.live.empty()) {  // mark
            auto it = std::next(model.live.begin(), static_cast<long>(rng() % model.live.size()));
            const uint32_t mark = static_cast<uint32_t>(rng());
            table.set_mark(it->first, mark);
            it->second.mark = mark;
        } else if (op < 85) {  // time passes, sweep with a budget
            now += rng() % 6;
            const unsigned budget = static_cast<unsigned>(rng() % 8);
            // Expected removals: the expired, earliest first (ties: lower
            // class, then list order).
            std::vector<std::tuple<uint64_t, unsigned, uint64_t, uint32_t>> due;
            for (const auto& [index, c] : model.live) {
                if (c.expiry <= now) due.emplace_back(c.expiry, static_cast<unsigned>(c.cls), c.order, index);
            }
            std::sort(due.begin(), due.end());
            const SweepResult s = table.sweep(now, budget);
            const size_t expect = std::min<size_t>(budget, due.size());
            ASSERT_EQ(s.removed, expect) << step;
            for (size_t k = 0; k < expect; ++k) {
                ASSERT_FALSE(table.connection(std::get<3>(due[k])).live()) << step;
                model.drop(std::get<3>(due[k]));
                ++model.expired;
            }
            uint64_t next = ConnTable::kNever;
            for (const auto& [index, c] : model.live) next = std::min(next, c.expiry);
            ASSERT_EQ(s.next_expiry, next) << step;
        } else if (op < 86 && rng() % 20 == 0) {  // rare flush
            table.clear();
            while (!model.live.empty()) model.drop(model.live.begin()->first);
        } else {  // lookups
            for (int k = 0; k < 4; ++k) {
                const uint32_t n = static_cast<uint32_t>(rng() % kKeyPool);
                const ConnKey key = rng() % 2 ? forward_of(n) : reply_of(n);
                ASSERT_EQ(table.lookup(key), model.find(key)) << step;
            }
        }

        // Reclaim: immediate tables released already; deferred ones now and then.
        if (reclaim == Reclaim::immediate) {
            model.pending.clear();
        } else if (rng() % 10 == 0) {
            const size_t keep = rng() % 3 == 0 ? 1 : 0;  // sometimes hold the newest back
            if (model.pending.size() > keep) {
                const uint64_t mark = table.retire_mark() - keep;
                const unsigned released = table.release_retired(mark);
                ASSERT_EQ(released, model.pending.size() - keep) << step;
                model.pending.erase(model.pending.begin(), model.pending.end() - static_cast<long>(keep));
            }
        }

        if (step % 16 == 0) {
            ASSERT_EQ(table.size(), model.live.size()) << step;
            ASSERT_EQ(table.retired(), model.pending.size()) << step;
            ASSERT_EQ(table.counters().created.get(), model.created) << step;
            ASSERT_EQ(table.counters().expired.get(), model.expired) << step;
            ASSERT_EQ(table.counters().refused.get(), model.refused) << step;
            std::vector<uint32_t> seen;
            table.for_each([&](uint32_t index, const Connection& c) {
                seen.push_back(index);
                const auto it = model.live.find(index);
                if (it == model.live.end()) return;
                EXPECT_EQ(c.key(0), it->second.forward);
                EXPECT_EQ(c.key(1), it->second.reply);
                EXPECT_EQ(c.expiry(), it->second.expiry);
                EXPECT_EQ(c.timeout_class(), it->second.cls);
                EXPECT_EQ(c.mark(), it->second.mark);
            });
            std::vector<uint32_t> want;
            for (const auto& [index, c] : model.live) want.push_back(index);
            ASSERT_EQ(seen, want) << step;
        }
        if (step % 256 == 0) {
            ASSERT_EQ(table.check_invariants(), "") << step;
        }
    }
    // The run must have exercised every path.
    EXPECT_GT(model.refused, 0u);
    EXPECT_GT(model.expired, 1000u);
    EXPECT_GT(model.created, 10000u);
    EXPECT_EQ(table.check_invariants(), "");
}

INSTANTIATE_TEST_SUITE_P(Reclaim, ConnTableModelTest, ::testing::Values(Reclaim::immediate, Reclaim::deferred),
                         [](const ::testing::TestParamInfo<Reclaim>& info) {
                             return info.param == Reclaim::immediate ? std::string("Immediate")
                                                                     : std::string("Deferred");
                         });

}  // namespace

// rte_hash lives in EAL memory: start the EAL once for every test.
int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    try {
        Eal eal({"conntrack_test", "--no-huge", "--no-shconf", "--no-pci", "-m", "256", "-l", "0",
                 "--log-level=error"});
        return RUN_ALL_TESTS();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "conntrack_test: %s\n", e.what());
        return 1;
    }
}
