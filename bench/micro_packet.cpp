// Micro-benchmark: flow-key extraction per packet, the fast path
// (extract_miniflow, straight into the sparse key) against the reference
// (parse_flow_key, then miniflow_from_key), on a burst of typical frames.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "flowpath/packet.hpp"
#include "micro_cycles.hpp"

namespace {

using flowpath::FlowKey;
using flowpath::Miniflow;
using flowpath::PacketLayout;

using Frame = std::vector<uint8_t>;

void put16(Frame& f, uint16_t v) {
    f.push_back(static_cast<uint8_t>(v >> 8));
    f.push_back(static_cast<uint8_t>(v));
}

Frame ethernet(uint16_t ethertype, bool vlan) {
    Frame f = {2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1};
    if (vlan) {
        put16(f, 0x8100);
        put16(f, 42);
    }
    put16(f, ethertype);
    return f;
}

Frame ipv4_l4(uint8_t proto, uint16_t sport, bool vlan) {
    Frame f = ethernet(0x0800, vlan);
    const Frame ip = {0x45, 0, 0, 46, 0, 1, 0x40, 0, 64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 1, 2};
    f.insert(f.end(), ip.begin(), ip.end());
    put16(f, sport);
    put16(f, 80);
    f.resize(f.size() + (proto == 6 ? 16 : 4), 0);
    if (proto == 6) f[f.size() - 8] = 0x50;  // TCP data offset 5
    f.resize(64, 0);
    return f;
}

Frame ipv6_tcp() {
    Frame f = ethernet(0x86dd, false);
    const Frame ip = {0x60, 0, 0, 0, 0, 20, 6, 64};
    f.insert(f.end(), ip.begin(), ip.end());
    for (int i = 0; i < 32; ++i) f.push_back(static_cast<uint8_t>(i));
    put16(f, 1234);
    put16(f, 443);
    f.resize(f.size() + 16, 0);
    f[f.size() - 8] = 0x50;
    return f;
}

std::vector<Frame> burst() {
    std::vector<Frame> frames;
    for (unsigned i = 0; i < 32; ++i) {
        switch (i % 4) {
            case 0: frames.push_back(ipv4_l4(17, static_cast<uint16_t>(1000 + i), false)); break;
            case 1: frames.push_back(ipv4_l4(6, static_cast<uint16_t>(2000 + i), false)); break;
            case 2: frames.push_back(ipv4_l4(17, static_cast<uint16_t>(3000 + i), true)); break;
            default: frames.push_back(ipv6_tcp()); break;
        }
    }
    return frames;
}

void BM_ExtractMiniflow(benchmark::State& state) {
    const std::vector<Frame> frames = burst();
    Miniflow flows[32];
    PacketLayout layouts[32];
    const flowpath::bench::CyclesPerPacket cycles;
    for (auto _ : state) {
        for (unsigned i = 0; i < frames.size(); ++i) {
            flowpath::extract_miniflow(frames[i].data(), static_cast<uint32_t>(frames[i].size()), 1, flows[i],
                                       layouts[i]);
        }
        benchmark::DoNotOptimize(flows);
    }
    cycles.report(state, state.iterations() * frames.size());
}
BENCHMARK(BM_ExtractMiniflow);

void BM_ReferenceParseThenCompress(benchmark::State& state) {
    const std::vector<Frame> frames = burst();
    Miniflow flows[32];
    PacketLayout layouts[32];
    const flowpath::bench::CyclesPerPacket cycles;
    for (auto _ : state) {
        for (unsigned i = 0; i < frames.size(); ++i) {
            FlowKey key;
            flowpath::parse_flow_key(frames[i].data(), static_cast<uint32_t>(frames[i].size()), 1, key, layouts[i]);
            flows[i] = flowpath::miniflow_from_key(key);
        }
        benchmark::DoNotOptimize(flows);
    }
    cycles.report(state, state.iterations() * frames.size());
}
BENCHMARK(BM_ReferenceParseThenCompress);

}  // namespace

BENCHMARK_MAIN();
