// Micro-benchmark: the connection table at 1k, 10k, 100k and 1M live
// connections. Lookup hit (one key, hash included; and bursts of 32), lookup
// miss, and an insert + remove cycle on the full-sized table. Keys are looked
// up in a random order over the whole table (both directions), as packets of
// many connections would. Reports ns and TSC cycles per operation and the
// bytes per live connection (B/conn), then on stderr the memory per slot
// (slot + index as DPDK's heap measured it).
#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <netinet/in.h>
#include <rte_cycles.h>
#include <sched.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "flowpath/conntrack.hpp"
#include "flowpath/io.hpp"

namespace {

using flowpath::ConnKey;
using flowpath::ConnRef;
using flowpath::ConnState;
using flowpath::ConnTable;
using flowpath::ConnTableConfig;
using flowpath::TimeoutClass;

constexpr unsigned kBurst = 32;
constexpr size_t kMaxProbeKeys = size_t{1} << 20;  // keys the lookups cycle through

/// Connection n's forward key; distinct for every n (the source address is a
/// bijection of n), zone picks a disjoint set for misses.
ConnKey key_number(uint32_t n, uint16_t zone = 0) {
    const uint32_t src = 0x0A000000u ^ (n * 2654435761u);
    return ConnKey::ipv4(zone, n % 4 == 0 ? IPPROTO_UDP : IPPROTO_TCP, htonl(src), htonl(0xC0A80000u | (n & 0xFFFF)),
                         htons(static_cast<uint16_t>(1024 + n % 60000)), htons(n % 2 ? 443 : 80));
}

struct Setup {
    uint32_t live = 0;
    std::unique_ptr<ConnTable> table;
    std::vector<ConnKey> hits;    // live keys, both directions, shuffled
    std::vector<ConnKey> misses;  // the same keys in another zone
    std::vector<ConnKey> fresh;   // never in the table: insert + remove
};

struct MemoryLine {
    uint32_t live, capacity;
    uint64_t index_bytes, total_bytes;
};
std::vector<MemoryLine> memory_lines;

// One table at a time (1M connections hold ~0.3 GB): benchmarks are
// registered size by size, so each size is built once.
std::unique_ptr<Setup> current;

Setup& setup_for(uint32_t live) {
    if (current && current->live == live) return *current;
    current.reset();
    auto s = std::make_unique<Setup>();
    s->live = live;
    ConnTableConfig config;
    config.capacity = live + live / 4;  // 80% full: room to insert, as a sized table would have
    config.timeouts = flowpath::ConnTimeouts::open_vswitch(rte_get_tsc_hz());
    s->table = std::make_unique<ConnTable>(config);
    for (uint32_t n = 0; n < live; ++n) {
        if (!s->table->insert(key_number(n), ConnState::tcp_established, TimeoutClass::tcp_established, 0)) {
            std::fprintf(stderr, "micro_conntrack: insert %u of %u failed\n", n, live);
            std::exit(1);
        }
    }
    std::mt19937_64 rng(42);
    const size_t probes = std::min<size_t>(2 * size_t{live}, kMaxProbeKeys);
    for (size_t k = 0; k < probes; ++k) {
        const uint32_t n = static_cast<uint32_t>(rng() % live);
        const ConnKey key = rng() % 2 ? key_number(n) : key_number(n).reversed();
        s->hits.push_back(key);
        ConnKey other = key;
        other.zone = 1;
        s->misses.push_back(other);
    }
    for (uint32_t n = 0; n < 4096; ++n) s->fresh.push_back(key_number(live + n));
    memory_lines.push_back({live, config.capacity, s->table->index_bytes(), s->table->memory_bytes()});
    current = std::move(s);
    return *current;
}

void report_cycles(benchmark::State& state, uint64_t cycles, unsigned keys_per_iteration) {
    using benchmark::Counter;
    const ConnTable& table = *current->table;
    state.counters["B/conn"] = static_cast<double>(table.memory_bytes()) / current->live;
    state.counters["cycles/op"] = Counter(static_cast<double>(cycles), Counter::kAvgIterations);
    if (keys_per_iteration > 1) {
        state.counters["cycles/key"] =
            Counter(static_cast<double>(cycles) / keys_per_iteration, Counter::kAvgIterations);
        state.counters["ns/key"] = Counter(keys_per_iteration, Counter::kIsIterationInvariantRate | Counter::kInvert);
    }
}

void BM_LookupHit(benchmark::State& state, uint32_t live) {
    Setup& s = setup_for(live);
    const ConnTable& table = *s.table;
    size_t i = 0;
    uint64_t misses = 0;
    const uint64_t start = rte_rdtsc();
    for (auto _ : state) {
        const ConnRef ref = table.lookup(s.hits[i]);
        misses += !ref.valid();
        benchmark::DoNotOptimize(ref);
        if (++i == s.hits.size()) i = 0;
    }
    report_cycles(state, rte_rdtsc() - start, 1);
    if (misses) state.SkipWithError("a hit key missed");
}

void BM_LookupHitBurst(benchmark::State& state, uint32_t live) {
    Setup& s = setup_for(live);
    const ConnTable& table = *s.table;
    std::vector<const ConnKey*> ptrs(s.hits.size());
    for (size_t k = 0; k < ptrs.size(); ++k) ptrs[k] = &s.hits[k];
    ConnRef refs[kBurst];
    size_t i = 0;
    uint64_t hits = 0;
    const uint64_t start = rte_rdtsc();
    for (auto _ : state) {
        hits += table.lookup_burst(&ptrs[i], nullptr, kBurst, refs);
        benchmark::DoNotOptimize(refs);
        i += kBurst;
        if (i + kBurst > ptrs.size()) i = 0;
    }
    report_cycles(state, rte_rdtsc() - start, kBurst);
    if (hits != static_cast<uint64_t>(state.iterations()) * kBurst) state.SkipWithError("a hit key missed");
}

void BM_LookupMiss(benchmark::State& state, uint32_t live) {
    Setup& s = setup_for(live);
    const ConnTable& table = *s.table;
    size_t i = 0;
    uint64_t hits = 0;
    const uint64_t start = rte_rdtsc();
    for (auto _ : state) {
        const ConnRef ref = table.lookup(s.misses[i]);
        hits += ref.valid();
        benchmark::DoNotOptimize(ref);
        if (++i == s.misses.size()) i = 0;
    }
    report_cycles(state, rte_rdtsc() - start, 1);
    if (hits) state.SkipWithError("a miss key hit");
}

// One new connection (lowest free slot, both keys indexed, expiration list)
// and its removal (both keys out, slot and key storage back).
void BM_InsertRemove(benchmark::State& state, uint32_t live) {
    Setup& s = setup_for(live);
    ConnTable& table = *s.table;
    size_t i = 0;
    uint64_t failed = 0;
    const uint64_t start = rte_rdtsc();
    for (auto _ : state) {
        const flowpath::InsertResult r =
            table.insert(s.fresh[i], ConnState::tcp_syn_sent, TimeoutClass::tcp_syn_sent, start);
        if (r) table.remove(r.ref.index());
        else ++failed;
        if (++i == s.fresh.size()) i = 0;
    }
    report_cycles(state, rte_rdtsc() - start, 1);
    if (failed) state.SkipWithError("insert failed");
}

std::string name(const char* base, uint32_t live) {
    std::string text(base);
    text += '/';
    text += std::to_string(live);
    return text;
}

}  // namespace

int main(int argc, char** argv) {
    // lcore 0 on the first CPU this process may use (scripts/bench runs it
    // under taskset). 512 MB: the 1M-connection index takes about 220 MB.
    cpu_set_t cpus;
    CPU_ZERO(&cpus);
    unsigned cpu = 0;
    if (sched_getaffinity(0, sizeof(cpus), &cpus) == 0) {
        while (cpu < CPU_SETSIZE - 1 && !CPU_ISSET(cpu, &cpus)) ++cpu;
    }
    flowpath::Eal eal({"micro_conntrack", "--no-huge", "--no-shconf", "--no-pci", "-m", "512",
                       "--lcores=0@" + std::to_string(cpu), "--log-level=error"});
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    for (uint32_t live : {1000u, 10000u, 100000u, 1000000u}) {
        benchmark::RegisterBenchmark(name("LookupHit", live).c_str(), BM_LookupHit, live);
        benchmark::RegisterBenchmark(name("LookupHitBurst32", live).c_str(), BM_LookupHitBurst, live);
        benchmark::RegisterBenchmark(name("LookupMiss", live).c_str(), BM_LookupMiss, live);
        benchmark::RegisterBenchmark(name("InsertRemove", live).c_str(), BM_InsertRemove, live);
    }
    benchmark::RunSpecifiedBenchmarks();
    current.reset();  // before the EAL goes

    // On stderr: stdout may be the JSON that scripts/bench reads.
    std::fprintf(stderr, "\nTSC %.3f GHz. Memory per connection (capacity = live * 1.25; slot %zu B):\n",
                 static_cast<double>(rte_get_tsc_hz()) / 1e9, sizeof(flowpath::Connection));
    std::fprintf(stderr, "%10s %10s %14s %14s %16s\n", "live", "capacity", "index B/slot", "total B/slot",
                 "total B/live conn");
    for (const MemoryLine& m : memory_lines) {
        std::fprintf(stderr, "%10u %10u %14.1f %14.1f %16.1f\n", m.live, m.capacity,
                    static_cast<double>(m.index_bytes) / m.capacity, static_cast<double>(m.total_bytes) / m.capacity,
                    static_cast<double>(m.total_bytes) / m.live);
    }
    benchmark::Shutdown();
    return 0;
}
