// The connection table (src/conntrack/conn_table.hpp): keys (ICMP queries
// included), the index of both sides, refusals, the lowest-free-slot policy
// and free clusters, the seqlock snapshot against a writer thread, and 100k
// random operations against a reference model. The tracker's clock
// (ConnTrackerConfig::from: the TSC's rate) needs the EAL: this file's
// main() starts it for every conntrack test.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "../../src/conntrack/conn_table.hpp"
#include "conntrack_test_util.hpp"
#include "flowpath/error.hpp"
#include "flowpath/io.hpp"

using namespace flowpath;

namespace {

using Clusters = std::vector<std::pair<uint32_t, uint32_t>>;

ConnKey tcp_key(uint32_t n, uint16_t zone = 0) {
    return ConnKey::ipv4(zone, IPPROTO_TCP, htonl(0x0A000000u + n), htonl(0xC0A80001u),
                         htons(static_cast<uint16_t>(1024 + n % 50000)), htons(80));
}

uint32_t insert_ok(ConnTable& table, const ConnKey& key, uint64_t expiry = 100) {
    ConnInit init;
    init.expiry = expiry;
    const InsertResult r = table.insert(key, table.hash(key), key.reversed(), init);
    EXPECT_EQ(r.status, InsertStatus::inserted);
    return r.ref.index();
}

std::vector<uint32_t> live_indices(const ConnTable& table) {
    std::vector<uint32_t> out;
    table.for_each([&](uint32_t index, const Connection& c) {
        EXPECT_EQ(c.status, kSlotLive);
        out.push_back(index);
    });
    return out;
}

TEST(ConnKey, LayoutAndReversal) {
    const ConnKey blank;
    const uint8_t zeros[sizeof(ConnKey)] = {};
    EXPECT_EQ(std::memcmp(&blank, zeros, sizeof(ConnKey)), 0);

    const ConnKey k = ConnKey::ipv4(7, IPPROTO_UDP, htonl(0x01020304), htonl(0x05060708), htons(1111), htons(53));
    EXPECT_EQ(k.family(), AddressFamily::ipv4);
    EXPECT_EQ(k.icmp_query(), kIcmpNone);
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
    EXPECT_EQ(r.family(), AddressFamily::ipv4);
    EXPECT_NE(r, k);
    EXPECT_EQ(r.reversed(), k);
}

TEST(ConnKey, IcmpQueriesReverseToTheirPartnerType) {
    // An echo request from A keys (A->B, request); its reply from B keys
    // (B->A, reply) = the reversed key. A request from B is another key.
    ConnKey request = ConnKey::ipv4(0, IPPROTO_ICMP, htonl(1), htonl(2), htons(99), htons(99));
    request.set_icmp_query(icmp_query_of(false, 8));
    EXPECT_EQ(request.icmp_query(), kIcmpEchoRequest);
    ConnKey reply = ConnKey::ipv4(0, IPPROTO_ICMP, htonl(2), htonl(1), htons(99), htons(99));
    reply.set_icmp_query(icmp_query_of(false, 0));
    EXPECT_EQ(request.reversed(), reply);
    EXPECT_EQ(reply.reversed(), request);
    ConnKey request_from_b = reply;
    request_from_b.set_icmp_query(kIcmpEchoRequest);
    EXPECT_NE(request_from_b, request.reversed());
    EXPECT_EQ(request.family(), AddressFamily::ipv4);

    const std::pair<uint8_t, uint8_t> pairs[] = {{8, 0}, {13, 14}, {15, 16}};
    for (const auto& [ask, answer] : pairs) {
        ConnKey q;
        q.set_icmp_query(icmp_query_of(false, ask));
        EXPECT_EQ(icmp_query_type(q.reversed().icmp_query()), answer);
        EXPECT_EQ(icmp_query_type(q.reversed().reversed().icmp_query()), ask);
    }
    EXPECT_EQ(icmp_query_of(true, 128), kIcmp6EchoRequest);
    EXPECT_EQ(icmp_query_type(kIcmp6EchoReply), 129);
    EXPECT_EQ(icmp_query_of(false, 3), kIcmpNone);  // errors are no query
    EXPECT_EQ(icmp_query_of(false, 128), kIcmpNone);
    EXPECT_EQ(icmp_query_of(true, 8), kIcmpNone);
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
    ConnTable table(64);
    const ConnKey a = tcp_key(1);
    ConnInit init;
    init.expiry = 105;
    init.timeout_class = static_cast<uint8_t>(TimeoutClass::tcp_syn_sent);
    init.proto_state = 2;
    init.tcp[0].seqlo = 77;
    const InsertResult r = table.insert(a, table.hash(a), a.reversed(), init);
    ASSERT_TRUE(r);
    EXPECT_EQ(r.ref, ConnRef(0, kInitiatorSide));
    EXPECT_EQ(table.lookup(a), ConnRef(0, kInitiatorSide));
    EXPECT_EQ(table.lookup(a.reversed()), ConnRef(0, kReplySide));
    EXPECT_EQ(table.lookup(a, table.hash(a)), ConnRef(0, kInitiatorSide));
    EXPECT_FALSE(table.lookup(tcp_key(2)).valid());
    EXPECT_FALSE(table.lookup(tcp_key(1, /*zone=*/3)).valid());  // zones are separate

    const Connection& c = table.slot(0);
    EXPECT_EQ(c.status, kSlotLive);
    EXPECT_EQ(c.key[0], a);
    EXPECT_EQ(c.key[1], a.reversed());
    EXPECT_EQ(c.expiry, 105u);
    EXPECT_EQ(c.mark, 0u);
    EXPECT_EQ(c.timeout_class, static_cast<uint8_t>(TimeoutClass::tcp_syn_sent));
    EXPECT_EQ(c.proto_state, 2);
    EXPECT_EQ(c.tcp[0].seqlo, 77u);
    EXPECT_EQ(c.seq % 2, 0u);
    EXPECT_EQ(table.high_water(), 1u);

    // An explicit reply key (as NAT will give) is indexed as given.
    const ConnKey b = tcp_key(2);
    const ConnKey b_reply = tcp_key(900).reversed();
    const uint32_t bi = table.insert(b, table.hash(b), b_reply, ConnInit{}).ref.index();
    EXPECT_EQ(table.lookup(b_reply), ConnRef(bi, kReplySide));
    EXPECT_FALSE(table.lookup(b.reversed()).valid());
    EXPECT_EQ(table.size(), 2u);
    EXPECT_EQ(table.check_invariants(), "");
}

TEST(ConnTableTest, LookupBurst) {
    ConnTable table(128);
    std::vector<ConnKey> keys;
    for (uint32_t n = 0; n < 100; ++n) {
        keys.push_back(n % 4 < 2 ? tcp_key(n) : tcp_key(n).reversed());
        if (n % 2 == 0) insert_ok(table, tcp_key(n));
    }
    std::vector<const ConnKey*> ptrs;
    std::vector<uint32_t> hashes;
    for (const ConnKey& k : keys) {
        ptrs.push_back(&k);
        hashes.push_back(table.hash(k));
    }
    // 100 keys: more than one bulk lookup.
    std::vector<ConnRef> refs(ptrs.size());
    table.lookup_burst(ptrs.data(), hashes.data(), static_cast<unsigned>(ptrs.size()), refs.data());
    unsigned hits = 0;
    for (size_t i = 0; i < ptrs.size(); ++i) {
        EXPECT_EQ(refs[i], table.lookup(*ptrs[i])) << i;
        hits += refs[i].valid();
    }
    EXPECT_EQ(hits, 50u);
}

TEST(ConnTableTest, DuplicateInsertRefused) {
    ConnTable table(16);
    const ConnKey a = tcp_key(1);
    insert_ok(table, a);
    InsertResult again = table.insert(a, table.hash(a), a.reversed(), ConnInit{});
    EXPECT_EQ(again.status, InsertStatus::exists);
    EXPECT_EQ(again.ref, ConnRef(0, kInitiatorSide));
    // The reply direction's key is taken too.
    again = table.insert(a.reversed(), table.hash(a.reversed()), a, ConnInit{});
    EXPECT_EQ(again.status, InsertStatus::exists);
    EXPECT_EQ(again.ref, ConnRef(0, kReplySide));
    // A new forward key whose reply key collides with a's.
    again = table.insert(tcp_key(5), table.hash(tcp_key(5)), a.reversed(), ConnInit{});
    EXPECT_EQ(again.status, InsertStatus::exists);
    EXPECT_FALSE(table.lookup(tcp_key(5)).valid());
    EXPECT_EQ(table.size(), 1u);
    EXPECT_EQ(table.check_invariants(), "");
}

TEST(ConnTableTest, SymmetricKeyHasOneIndexEntry) {
    ConnTable table(16);
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
    ConnTable table(16);
    uint8_t a[16] = {0x20, 0x01, 0x0d, 0xb8};
    uint8_t b[16] = {0x20, 0x01, 0x0d, 0xb8};
    a[15] = 1;
    b[15] = 2;
    const ConnKey k = ConnKey::ipv6(1, IPPROTO_TCP, a, b, htons(40000), htons(443));
    EXPECT_EQ(k.family(), AddressFamily::ipv6);
    const uint32_t i = insert_ok(table, k);
    EXPECT_EQ(table.lookup(k.reversed()), ConnRef(i, kReplySide));
    // The same addresses' first 4 bytes as an IPv4 key is another key.
    uint32_t a4, b4;
    std::memcpy(&a4, a, 4);
    std::memcpy(&b4, b, 4);
    EXPECT_FALSE(table.lookup(ConnKey::ipv4(1, IPPROTO_TCP, a4, b4, htons(40000), htons(443))).valid());
}

TEST(ConnTableTest, FullTableRefuses) {
    ConnTable table(8);
    for (uint32_t n = 0; n < 8; ++n) insert_ok(table, tcp_key(n));
    const InsertResult r = table.insert(tcp_key(100), table.hash(tcp_key(100)), tcp_key(100).reversed(), ConnInit{});
    EXPECT_EQ(r.status, InsertStatus::full);
    EXPECT_FALSE(r.ref.valid());
    EXPECT_FALSE(table.lookup(tcp_key(100)).valid());
    table.remove(3);
    EXPECT_EQ(insert_ok(table, tcp_key(100)), 3u);
    EXPECT_EQ(table.check_invariants(), "");
    EXPECT_THROW({ ConnTable zero(0); }, Error);
    EXPECT_THROW({ ConnTable huge(ConnTable::kMaxCapacity + 1); }, Error);
}

TEST(ConnTableTest, LowestFreeSlotAndClusterMerging) {
    ConnTable table(32);
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
    EXPECT_EQ(table.high_water(), 12u);

    // New connections take the lowest free slot, always.
    const uint32_t expected[] = {0, 3, 4, 5, 6, 7, 11, 12};
    uint32_t n = 100;
    for (uint32_t want : expected) EXPECT_EQ(insert_ok(table, tcp_key(n++)), want);
    EXPECT_EQ(table.free_clusters(), (Clusters{{13, 19}}));
    EXPECT_EQ(table.high_water(), 13u);
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

TEST(ConnTableTest, ForEachVisitsExactlyTheLiveInIndexOrder) {
    ConnTable table(256);
    for (uint32_t n = 0; n < 200; ++n) insert_ok(table, tcp_key(n));
    std::set<uint32_t> live;
    for (uint32_t n = 0; n < 200; ++n) live.insert(n);
    std::mt19937 rng(7);
    for (int k = 0; k < 120; ++k) {
        const uint32_t i = rng() % 200;
        if (live.erase(i)) table.remove(i);
    }
    EXPECT_EQ(live_indices(table), std::vector<uint32_t>(live.begin(), live.end()));
    table.for_each([&](uint32_t index, const Connection& c) { EXPECT_EQ(c.key[0], tcp_key(index)); });
    EXPECT_EQ(table.check_invariants(), "");
}

TEST(ConnTableTest, SnapshotSeesLiveConnectionsWholeAndSkipsFreeSlots) {
    ConnTable table(8);
    const uint32_t i = insert_ok(table, tcp_key(3), 777);
    store_shared(table.slot(i).mark, 42u);
    ConnSnapshot snap;
    ASSERT_TRUE(table.snapshot(i, snap));
    EXPECT_EQ(snap.key[0], tcp_key(3));
    EXPECT_EQ(snap.key[1], tcp_key(3).reversed());
    EXPECT_EQ(snap.expiry, 777u);
    EXPECT_EQ(snap.mark, 42u);
    EXPECT_FALSE(snap.killed);
    EXPECT_EQ(snap.seq, table.slot(i).seq);
    EXPECT_FALSE(table.snapshot(5, snap));  // never used
    table.remove(i);
    EXPECT_FALSE(table.snapshot(i, snap));
}

// The seqlock: a reader thread snapshots slots while the owner keeps
// replacing their connections. Every snapshot must be one connection, whole
// (its reply key the reverse of its forward key, the expiry its own).
TEST(ConnTableTest, SnapshotsAreConsistentWhileTheOwnerRewrites) {
    constexpr uint32_t kCapacity = 16;
    ConnTable table(kCapacity);
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> seen{0}, torn{0};
    std::thread reader([&] {
        ct_test::run_on_any_cpu();
        while (!stop.load(std::memory_order_relaxed)) {
            for (uint32_t i = 0; i < table.high_water(); ++i) {
                ConnSnapshot snap;
                if (!table.snapshot(i, snap)) continue;
                uint32_t n;
                std::memcpy(&n, snap.key[0].src, 4);
                n = ntohl(n) - 0x0A000000u;
                // The mark is set after the insert: 0 until then.
                if (!(snap.key[1] == snap.key[0].reversed()) || snap.expiry != n || (snap.mark != n && snap.mark != 0)) {
                    torn.fetch_add(1, std::memory_order_relaxed);
                }
                seen.fetch_add(1, std::memory_order_relaxed);
            }
        }
    });
    std::mt19937 rng(3);
    std::vector<uint32_t> live_n(kCapacity, UINT32_MAX);
    for (uint32_t step = 0; step < 300000 || seen.load() < 100000; ++step) {
        const uint32_t slot = rng() % kCapacity;
        if (live_n[slot] != UINT32_MAX) {
            const ConnRef ref = table.lookup(tcp_key(live_n[slot]));
            table.remove(ref.index());
            live_n[ref.index()] = UINT32_MAX;
        } else {
            const uint32_t n = 1 + rng() % 40000;
            if (table.lookup(tcp_key(n))) continue;
            const uint32_t i = insert_ok(table, tcp_key(n), n);
            store_shared(table.slot(i).mark, n);
            live_n[i] = n;
        }
        if (step > 5000000) break;
    }
    stop = true;
    reader.join();
    EXPECT_EQ(torn.load(), 0u);
    EXPECT_GT(seen.load(), 1000u);
    EXPECT_EQ(table.check_invariants(), "");
}

// ---- Randomised against a reference model ----

TEST(ConnTableModelTest, RandomOperationsMatchTheModel) {
    constexpr uint32_t kCapacity = 300;
    constexpr uint32_t kKeyPool = 700;  // more keys than slots: the table fills
    ConnTable table(kCapacity);
    std::map<uint32_t, std::pair<ConnKey, ConnKey>> live;  // index -> (forward, reply)
    std::map<std::array<uint8_t, sizeof(ConnKey)>, ConnRef> keys;
    auto bytes = [](const ConnKey& k) {
        std::array<uint8_t, sizeof(ConnKey)> b;
        std::memcpy(b.data(), &k, sizeof(k));
        return b;
    };
    auto find = [&](const ConnKey& k) {
        const auto it = keys.find(bytes(k));
        return it == keys.end() ? ConnRef{} : it->second;
    };
    auto lowest_free = [&] {
        for (uint32_t i = 0; i < kCapacity; ++i) {
            if (!live.count(i)) return i;
        }
        return UINT32_MAX;
    };
    // Key n: a forward key; reply is its reverse, except every 7th key,
    // whose reply is made up (as NAT would), and key 0, symmetric.
    auto forward_of = [](uint32_t n) {
        if (n == 0) return ConnKey::ipv4(0, IPPROTO_UDP, htonl(0x7F000001), htonl(0x7F000001), htons(9), htons(9));
        return ConnKey::ipv4(static_cast<uint16_t>(n % 3), n % 2 ? IPPROTO_TCP : IPPROTO_UDP,
                             htonl(0x0A000000u + n / 5), htonl(0x0B000000u + n % 5), htons(static_cast<uint16_t>(n)),
                             htons(80));
    };
    auto reply_of = [&](uint32_t n) {
        if (n % 7 == 3) {
            return ConnKey::ipv4(0, IPPROTO_TCP, htonl(0x0C000000u + n), htonl(0x0A000001), htons(443),
                                 htons(static_cast<uint16_t>(n)));
        }
        return forward_of(n).reversed();
    };

    std::mt19937_64 rng(20261122);
    uint64_t refused = 0, created = 0;
    for (int step = 0; step < 100000; ++step) {
        // Phases of 5000 steps: mostly inserts (the table fills), then mixed.
        const bool filling = (step / 5000) % 2 == 1;
        const unsigned op = static_cast<unsigned>(rng() % 100);
        if (op < (filling ? 70u : 45u)) {  // insert
            const uint32_t n = static_cast<uint32_t>(rng() % kKeyPool);
            const ConnKey fwd = forward_of(n), rpl = reply_of(n);
            ConnInit init;
            init.expiry = n;
            const InsertResult r = table.insert(fwd, table.hash(fwd), rpl, init);
            ConnRef expect_found = find(fwd);
            if (!expect_found) expect_found = find(rpl);
            if (expect_found) {
                ASSERT_EQ(r.status, InsertStatus::exists) << step;
                ASSERT_EQ(r.ref, expect_found) << step;
            } else if (live.size() >= kCapacity) {
                ASSERT_EQ(r.status, InsertStatus::full) << step;
                ++refused;
            } else {
                ASSERT_EQ(r.status, InsertStatus::inserted) << step;
                const uint32_t want = lowest_free();
                ASSERT_EQ(r.ref, ConnRef(want, 0)) << step;
                live[want] = {fwd, rpl};
                keys[bytes(fwd)] = ConnRef(want, 0);
                if (!(fwd == rpl)) keys[bytes(rpl)] = ConnRef(want, 1);
                ++created;
            }
        } else if (op < 90 && !live.empty()) {  // remove
            auto it = std::next(live.begin(), static_cast<long>(rng() % live.size()));
            table.remove(it->first);
            keys.erase(bytes(it->second.first));
            keys.erase(bytes(it->second.second));
            live.erase(it);
        } else {  // lookups, either direction
            for (int k = 0; k < 4; ++k) {
                const uint32_t n = static_cast<uint32_t>(rng() % kKeyPool);
                const ConnKey key = rng() % 2 ? forward_of(n) : reply_of(n);
                ASSERT_EQ(table.lookup(key), find(key)) << step;
            }
        }
        if (step % 16 == 0) {
            ASSERT_EQ(table.size(), live.size()) << step;
            std::vector<uint32_t> want;
            for (const auto& [index, c] : live) want.push_back(index);
            ASSERT_EQ(live_indices(table), want) << step;
        }
        if (step % 256 == 0) {
            ASSERT_EQ(table.check_invariants(), "") << step;
        }
    }
    // The run must have exercised every path.
    EXPECT_GT(refused, 0u);
    EXPECT_GT(created, 10000u);
    EXPECT_EQ(table.check_invariants(), "");
}

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
