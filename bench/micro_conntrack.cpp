// Micro-benchmark: connection tracking.
//  - Track*/N: the per-packet cost of a ct action (key extraction with the
//    checksum checks, hash, burst lookup, the protocol state machine, the
//    expiry store) on bursts of 32 packets of N established connections,
//    both directions, in random order: TCP with checksums verified in
//    software (as Open vSwitch without offload) and with the NIC's verdict
//    ("Offload"), and UDP.
//  - Commit: new connections per second: a burst of 32 SYNs with fresh
//    tuples, committed (the table is emptied between rounds of 64k, untimed).
//  - Table*/N: the connection table alone (lookup hit, burst of 32, miss,
//    insert + remove).
// Reports cycles per packet (or operation) and, on stderr, the memory per
// connection.
#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <netinet/in.h>
#include <rte_cycles.h>
#include <rte_ip.h>
#include <sched.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "../src/conntrack/conn_table.hpp"
#include "flowpath/conntrack.hpp"
#include "flowpath/io.hpp"
#include "flowpath/packet.hpp"
#include "micro_cycles.hpp"

namespace {

using namespace flowpath;

constexpr unsigned kBurst = 32;
constexpr size_t kMaxFrames = size_t{1} << 18;  // frames the tracking loops cycle through

// ---- Frames ----

/// An Ethernet/IPv4 TCP or UDP frame with correct checksums, parsed.
struct BenchFrame {
    std::vector<uint8_t> bytes;
    FlowKey key{};
    PacketLayout layout;
};

BenchFrame make_frame(uint8_t proto, uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, uint8_t tcp_flags,
                      uint32_t seq, uint32_t ack) {
    const uint16_t l4_len = proto == IPPROTO_TCP ? 20 : 8 + 16;
    BenchFrame f;
    f.bytes.assign(14 + 20 + l4_len, 0);
    uint8_t* p = f.bytes.data();
    p[12] = 0x08;  // IPv4
    auto* ip = reinterpret_cast<rte_ipv4_hdr*>(p + 14);
    ip->version_ihl = 0x45;
    ip->total_length = htons(static_cast<uint16_t>(20 + l4_len));
    ip->time_to_live = 64;
    ip->next_proto_id = proto;
    ip->src_addr = htonl(src);
    ip->dst_addr = htonl(dst);
    uint8_t* l4 = p + 34;
    const uint16_t ports[2] = {htons(sport), htons(dport)};
    std::memcpy(l4, ports, 4);
    if (proto == IPPROTO_TCP) {
        const uint32_t numbers[2] = {htonl(seq), htonl(ack)};
        std::memcpy(l4 + 4, numbers, 8);
        l4[12] = 0x50;
        l4[13] = tcp_flags;
        l4[14] = 0xff;
        l4[15] = 0xff;
    } else {
        const uint16_t length = htons(l4_len);
        std::memcpy(l4 + 4, &length, 2);
    }
    ip->hdr_checksum = rte_ipv4_cksum(ip);
    const uint16_t checksum = rte_ipv4_udptcp_cksum(ip, l4);
    std::memcpy(l4 + (proto == IPPROTO_TCP ? 16 : 6), &checksum, 2);
    parse_flow_key(f.bytes.data(), static_cast<uint32_t>(f.bytes.size()), 1, f.key, f.layout);
    return f;
}

uint32_t client_of(uint32_t n) { return 0x0A000000u ^ (n * 2654435761u); }
uint32_t server_of(uint32_t n) { return 0xC0A80000u | (n & 0xFFFF); }
uint16_t port_of(uint32_t n) { return static_cast<uint16_t>(1024 + n % 60000); }

std::unique_ptr<ConnTracker> make_tracker(uint32_t capacity) {
    ConnTrackerConfig c;
    c.shard_capacity = capacity;
    c.limit = capacity;
    c.units_per_second = rte_get_tsc_hz();
    c.timeouts = ConnTimeouts::open_vswitch(c.units_per_second);
    c.clock = [] { return rte_rdtsc(); };
    c.cleanup_thread = false;
    return std::make_unique<ConnTracker>(std::move(c));
}

void run(ConnTracker& tracker, const CtAction& action, const std::vector<CtPacket>& packets) {
    std::vector<CtMeta> metas(packets.size());
    for (size_t i = 0; i < packets.size(); i += kBurst) {
        const unsigned n = static_cast<unsigned>(std::min<size_t>(kBurst, packets.size() - i));
        tracker.shard(0).execute(action, &packets[i], &metas[i], n, rte_rdtsc());
    }
}

// ---- Tracking established connections ----

struct TrackSetup {
    uint32_t live = 0;
    uint8_t proto = 0;
    std::unique_ptr<ConnTracker> tracker;
    std::vector<BenchFrame> frames;  // random connections, random direction
    std::vector<CtPacket> packets;
};
std::unique_ptr<TrackSetup> track_setup;

struct MemoryLine {
    uint32_t live;
    uint32_t capacity;
    uint64_t bytes;
};
std::vector<MemoryLine> memory_lines;

TrackSetup& track_setup_for(uint32_t live, uint8_t proto) {
    if (track_setup && track_setup->live == live && track_setup->proto == proto) return *track_setup;
    track_setup.reset();
    auto s = std::make_unique<TrackSetup>();
    s->live = live;
    s->proto = proto;
    s->tracker = make_tracker(live + live / 4);
    CtAction commit;
    commit.commit = true;
    const bool tcp = proto == IPPROTO_TCP;
    // Open each connection: TCP with a handshake, UDP with a packet each way.
    for (uint32_t base = 0; base < live; base += 4096) {
        std::vector<BenchFrame> open;
        for (uint32_t n = base; n < std::min(live, base + 4096); ++n) {
            const uint32_t c = client_of(n), sv = server_of(n);
            const uint16_t cp = port_of(n), sp = n % 2 ? 443 : 80;
            if (tcp) {
                open.push_back(make_frame(proto, c, sv, cp, sp, 0x02, 1000, 0));
                open.push_back(make_frame(proto, sv, c, sp, cp, 0x12, 5000, 1001));
                open.push_back(make_frame(proto, c, sv, cp, sp, 0x10, 1001, 5001));
            } else {
                open.push_back(make_frame(proto, c, sv, cp, sp, 0, 0, 0));
                open.push_back(make_frame(proto, sv, c, sp, cp, 0, 0, 0));
            }
        }
        std::vector<CtPacket> packets;
        for (const BenchFrame& f : open) {
            packets.push_back(CtPacket::from(f.key, f.bytes.data(), static_cast<uint32_t>(f.bytes.size()), f.layout));
        }
        run(*s->tracker, commit, packets);
    }
    if (s->tracker->stats().connections != live) {
        std::fprintf(stderr, "micro_conntrack: %lu of %u connections open\n",
                     static_cast<unsigned long>(s->tracker->stats().connections), live);
        std::exit(1);
    }
    // In-window segments without data (TCP) or datagrams, random connection
    // and direction.
    std::mt19937_64 rng(42);
    const size_t count = std::min<size_t>(2 * size_t{live}, kMaxFrames);
    for (size_t k = 0; k < count; ++k) {
        const uint32_t n = static_cast<uint32_t>(rng() % live);
        const uint32_t c = client_of(n), sv = server_of(n);
        const uint16_t cp = port_of(n), sp = n % 2 ? 443 : 80;
        s->frames.push_back(rng() % 2 ? make_frame(proto, c, sv, cp, sp, 0x10, 1001, 5001)
                                      : make_frame(proto, sv, c, sp, cp, 0x10, 5001, 1001));
    }
    for (const BenchFrame& f : s->frames) {
        s->packets.push_back(CtPacket::from(f.key, f.bytes.data(), static_cast<uint32_t>(f.bytes.size()), f.layout));
    }
    if (tcp) memory_lines.push_back({live, live + live / 4, s->tracker->memory_bytes()});
    track_setup = std::move(s);
    return *track_setup;
}

void BM_Track(benchmark::State& state, uint32_t live, uint8_t proto, uint8_t checksum) {
    TrackSetup& s = track_setup_for(live, proto);
    std::vector<CtPacket> packets = s.packets;
    for (CtPacket& p : packets) p.checksum = checksum;
    const uint8_t want = proto == IPPROTO_TCP ? (kCtEstablished | kCtTracked) : (kCtEstablished | kCtTracked);
    CtAction action;  // a plain ct: what a "match +est" pipeline does first
    CtMeta metas[kBurst];
    size_t i = 0;
    uint64_t packets_done = 0, wrong = 0;
    const bench::CyclesPerPacket cycles;
    for (auto _ : state) {
        for (CtMeta& m : metas) m = CtMeta{};
        s.tracker->shard(0).execute(action, &packets[i], metas, kBurst, rte_rdtsc());
        wrong += (metas[0].state & want) != want;
        packets_done += kBurst;
        i += kBurst;
        if (i + kBurst > packets.size()) i = 0;
    }
    cycles.report(state, packets_done);
    if (wrong) state.SkipWithError("a packet was not +est");
}

// ---- New connections ----

void BM_Commit(benchmark::State& state) {
    constexpr uint32_t kRound = 1u << 16;
    auto tracker = make_tracker(kRound + kRound / 4);
    std::vector<BenchFrame> frames;
    std::vector<CtPacket> packets;
    for (uint32_t n = 0; n < kRound; ++n) {
        frames.push_back(make_frame(IPPROTO_TCP, client_of(n), server_of(n), port_of(n), 80, 0x02, n, 0));
    }
    for (const BenchFrame& f : frames) {
        packets.push_back(CtPacket::from(f.key, f.bytes.data(), static_cast<uint32_t>(f.bytes.size()), f.layout));
    }
    CtAction commit;
    commit.commit = true;
    CtMeta metas[kBurst];
    size_t i = 0;
    uint64_t done = 0;
    const bench::CyclesPerPacket cycles;
    for (auto _ : state) {
        for (CtMeta& m : metas) m = CtMeta{};
        tracker->shard(0).execute(commit, &packets[i], metas, kBurst, rte_rdtsc());
        done += kBurst;
        i += kBurst;
        if (i + kBurst > packets.size()) {
            // Empty the table (untimed): flush, a cleanup round, the worker.
            state.PauseTiming();
            tracker->flush();
            while (tracker->stats().connections > 0) {
                tracker->cleanup_round(rte_rdtsc());
                while (tracker->shard(0).maintain(rte_rdtsc()) > 0) {
                }
            }
            i = 0;
            state.ResumeTiming();
        }
    }
    cycles.report(state, done);
    if (tracker->stats().refused) state.SkipWithError("a commit was refused");
}

// ---- The table alone ----

ConnKey key_number(uint32_t n, uint16_t zone = 0) {
    return ConnKey::ipv4(zone, n % 4 == 0 ? IPPROTO_UDP : IPPROTO_TCP, htonl(client_of(n)), htonl(server_of(n)),
                         htons(port_of(n)), htons(n % 2 ? 443 : 80));
}

struct TableSetup {
    uint32_t live = 0;
    std::unique_ptr<ConnTable> table;
    std::vector<ConnKey> hits;    // live keys, both directions, shuffled
    std::vector<ConnKey> misses;  // the same keys in another zone
    std::vector<ConnKey> fresh;   // never in the table: insert + remove
};
std::unique_ptr<TableSetup> table_setup;

TableSetup& table_setup_for(uint32_t live) {
    if (table_setup && table_setup->live == live) return *table_setup;
    table_setup.reset();
    auto s = std::make_unique<TableSetup>();
    s->live = live;
    s->table = std::make_unique<ConnTable>(live + live / 4);
    for (uint32_t n = 0; n < live; ++n) {
        const ConnKey k = key_number(n);
        if (!s->table->insert(k, s->table->hash(k), k.reversed(), ConnInit{})) {
            std::fprintf(stderr, "micro_conntrack: insert %u of %u failed\n", n, live);
            std::exit(1);
        }
    }
    std::mt19937_64 rng(42);
    const size_t probes = std::min<size_t>(2 * size_t{live}, size_t{1} << 20);
    for (size_t k = 0; k < probes; ++k) {
        const uint32_t n = static_cast<uint32_t>(rng() % live);
        const ConnKey key = rng() % 2 ? key_number(n) : key_number(n).reversed();
        s->hits.push_back(key);
        ConnKey other = key;
        other.zone = 1;
        s->misses.push_back(other);
    }
    for (uint32_t n = 0; n < 4096; ++n) s->fresh.push_back(key_number(live + n));
    table_setup = std::move(s);
    return *table_setup;
}

void BM_TableLookupHit(benchmark::State& state, uint32_t live) {
    TableSetup& s = table_setup_for(live);
    size_t i = 0;
    uint64_t misses = 0, done = 0;
    const bench::CyclesPerPacket cycles;
    for (auto _ : state) {
        const ConnRef ref = s.table->lookup(s.hits[i]);
        misses += !ref.valid();
        benchmark::DoNotOptimize(ref);
        ++done;
        if (++i == s.hits.size()) i = 0;
    }
    cycles.report(state, done);
    if (misses) state.SkipWithError("a hit key missed");
}

void BM_TableLookupBurst(benchmark::State& state, uint32_t live) {
    TableSetup& s = table_setup_for(live);
    std::vector<const ConnKey*> ptrs(s.hits.size());
    std::vector<uint32_t> hashes(s.hits.size());
    for (size_t k = 0; k < ptrs.size(); ++k) ptrs[k] = &s.hits[k];
    ConnRef refs[kBurst];
    size_t i = 0;
    uint64_t hits = 0, done = 0;
    const bench::CyclesPerPacket cycles;
    for (auto _ : state) {
        for (unsigned k = 0; k < kBurst; ++k) hashes[i + k] = s.table->hash(*ptrs[i + k]);  // hash included
        s.table->lookup_burst(&ptrs[i], &hashes[i], kBurst, refs);
        for (const ConnRef& r : refs) hits += r.valid();
        done += kBurst;
        i += kBurst;
        if (i + kBurst > ptrs.size()) i = 0;
    }
    cycles.report(state, done);
    if (hits != done) state.SkipWithError("a hit key missed");
}

void BM_TableLookupMiss(benchmark::State& state, uint32_t live) {
    TableSetup& s = table_setup_for(live);
    size_t i = 0;
    uint64_t hits = 0, done = 0;
    const bench::CyclesPerPacket cycles;
    for (auto _ : state) {
        const ConnRef ref = s.table->lookup(s.misses[i]);
        hits += ref.valid();
        benchmark::DoNotOptimize(ref);
        ++done;
        if (++i == s.misses.size()) i = 0;
    }
    cycles.report(state, done);
    if (hits) state.SkipWithError("a miss key hit");
}

void BM_TableInsertRemove(benchmark::State& state, uint32_t live) {
    TableSetup& s = table_setup_for(live);
    size_t i = 0;
    uint64_t failed = 0, done = 0;
    const bench::CyclesPerPacket cycles;
    for (auto _ : state) {
        const ConnKey& k = s.fresh[i];
        const InsertResult r = s.table->insert(k, s.table->hash(k), k.reversed(), ConnInit{});
        if (r) s.table->remove(r.ref.index());
        else ++failed;
        ++done;
        if (++i == s.fresh.size()) i = 0;
    }
    cycles.report(state, done);
    if (failed) state.SkipWithError("insert failed");
}

// The index filled with 2 x `live` keys (both directions of `live`
// connections), from its first size (`grow`: doubling on the way, as a
// table's index does) or made at its final size: the difference over the
// keys is what the rehashes cost, about half of it the last doubling's.
void BM_IndexFill(benchmark::State& state, uint32_t live, bool grow) {
    const uint32_t keys = 2 * live;
    std::vector<uint32_t> hashes(keys);
    std::mt19937 rng(live);
    for (uint32_t& h : hashes) h = static_cast<uint32_t>(rng()) | 1;
    uint64_t done = 0;
    for (auto _ : state) {
        ConnIndex index(keys, grow ? ConnIndex::kInitialBuckets : ConnIndex::bucket_count(keys));
        for (uint32_t k = 0; k < keys; ++k) index.insert(hashes[k], k);
        benchmark::DoNotOptimize(index.size());
        done += keys;
    }
    state.counters["ns_per_key"] =
        benchmark::Counter(static_cast<double>(done), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// The longest single insert while an index grows from kInitialBuckets to
// 2 * live keys: what one packet (a commit) can wait for a doubling.
void BM_IndexLongestInsert(benchmark::State& state, uint32_t live) {
    const uint32_t keys = 2 * live;
    std::vector<uint32_t> hashes(keys);
    std::mt19937 rng(live);
    for (uint32_t& h : hashes) h = static_cast<uint32_t>(rng()) | 1;
    // Each fill's longest insert; the least of them over the fills, since a
    // fill whose thread was preempted mid-insert measures the neighbours.
    uint64_t least_longest = UINT64_MAX;
    for (auto _ : state) {
        ConnIndex index(keys, ConnIndex::kInitialBuckets);
        uint64_t longest = 0;
        for (uint32_t k = 0; k < keys; ++k) {
            const uint64_t start = rte_rdtsc();
            index.insert(hashes[k], k);
            longest = std::max(longest, rte_rdtsc() - start);
        }
        least_longest = std::min(least_longest, longest);
        benchmark::DoNotOptimize(index.size());
    }
    state.counters["longest_insert_us"] =
        static_cast<double>(least_longest) * 1e6 / static_cast<double>(rte_get_tsc_hz());
}

std::string name(const char* base, uint32_t live) { return std::string(base) + '/' + std::to_string(live); }

}  // namespace

int main(int argc, char** argv) {
    // lcore 0 on the first CPU this process may use (scripts/bench runs it
    // under taskset). 768 MB: the 1M-connection index takes about 220 MB.
    cpu_set_t cpus;
    CPU_ZERO(&cpus);
    unsigned cpu = 0;
    if (sched_getaffinity(0, sizeof(cpus), &cpus) == 0) {
        while (cpu < CPU_SETSIZE - 1 && !CPU_ISSET(cpu, &cpus)) ++cpu;
    }
    Eal eal({"micro_conntrack", "--no-huge", "--no-shconf", "--no-pci", "-m", "768",
             "--lcores=0@" + std::to_string(cpu), "--log-level=error"});
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    for (uint32_t live : {1000u, 10000u, 100000u, 1000000u}) {
        benchmark::RegisterBenchmark(name("TrackTcp", live).c_str(), BM_Track, live, uint8_t{IPPROTO_TCP},
                                     uint8_t{0});
        benchmark::RegisterBenchmark(name("TrackTcpOffload", live).c_str(), BM_Track, live, uint8_t{IPPROTO_TCP},
                                     uint8_t{kCtL3Good | kCtL4Good});
        benchmark::RegisterBenchmark(name("TrackUdp", live).c_str(), BM_Track, live, uint8_t{IPPROTO_UDP},
                                     uint8_t{0});
    }
    benchmark::RegisterBenchmark("Commit", BM_Commit);
    for (uint32_t live : {1000u, 10000u, 100000u, 1000000u}) {
        benchmark::RegisterBenchmark(name("TableLookupHit", live).c_str(), BM_TableLookupHit, live);
        benchmark::RegisterBenchmark(name("TableLookupBurst32", live).c_str(), BM_TableLookupBurst, live);
        benchmark::RegisterBenchmark(name("TableLookupMiss", live).c_str(), BM_TableLookupMiss, live);
        benchmark::RegisterBenchmark(name("TableInsertRemove", live).c_str(), BM_TableInsertRemove, live);
    }
    for (uint32_t live : {10000u, 1000000u}) {
        benchmark::RegisterBenchmark(name("IndexFillGrowing", live).c_str(), BM_IndexFill, live, true)
            ->Unit(benchmark::kMillisecond);
        benchmark::RegisterBenchmark(name("IndexFillPresized", live).c_str(), BM_IndexFill, live, false)
            ->Unit(benchmark::kMillisecond);
        benchmark::RegisterBenchmark(name("IndexLongestInsert", live).c_str(), BM_IndexLongestInsert, live)
            ->Unit(benchmark::kMillisecond);
    }
    benchmark::RunSpecifiedBenchmarks();
    track_setup.reset();  // before the EAL goes
    table_setup.reset();

    // On stderr: stdout may be the JSON that scripts/bench reads.
    std::fprintf(stderr, "\nTSC %.3f GHz. Memory per connection (capacity = live * 1.25; slot %zu B):\n",
                 static_cast<double>(rte_get_tsc_hz()) / 1e9, sizeof(Connection));
    std::fprintf(stderr, "%10s %10s %16s %18s\n", "live", "capacity", "bytes per slot", "bytes per live conn");
    for (const MemoryLine& m : memory_lines) {
        std::fprintf(stderr, "%10u %10u %16.1f %18.1f\n", m.live, m.capacity,
                     static_cast<double>(m.bytes) / m.capacity, static_cast<double>(m.bytes) / m.live);
    }
    benchmark::Shutdown();
    return 0;
}
