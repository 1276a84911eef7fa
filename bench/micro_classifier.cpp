// Micro-benchmark: classifier lookup cost against the number of subtables
// (distinct masks), for keys built to hit a rule, keys outside every rule's
// addresses (prefix tries rule the subtables out) and random keys from the
// rules' own value pools. The linear reference is shown for scale.
#include <arpa/inet.h>
#include <benchmark/benchmark.h>

#include <algorithm>
#include <random>
#include <vector>

#include "flowpath/classifier.hpp"
#include "micro_cycles.hpp"

namespace {

using flowpath::Classifier;
using flowpath::FlowKey;
using flowpath::FlowMask;

constexpr unsigned kRulesPerSubtable = 16;
constexpr unsigned kKeys = 1024;

uint32_t prefix_mask(unsigned length) { return length == 0 ? 0 : htonl(~uint32_t{0} << (32 - length)); }

/// Mask number `index` (0..255): an nw_src prefix of 1..32 bits times eight
/// combinations of in_port, nw_proto and tp_dst; always dl_type.
FlowMask mask_number(unsigned index) {
    FlowMask mask{};
    mask.dl_type = 0xFFFF;
    mask.nw_src = prefix_mask(1 + index % 32);
    const unsigned variant = index / 32;
    if (variant & 1) mask.in_port = ~0u;
    if (variant & 2) mask.nw_proto = 0xFF;
    if (variant & 4) mask.tp_dst = 0xFFFF;
    return mask;
}

FlowKey random_key(std::mt19937_64& rng) {
    FlowKey key{};
    key.in_port = 1 + static_cast<uint32_t>(rng() % 4);
    key.dl_type = htons(0x0800);
    key.nw_src = htonl(0x0A000000u | static_cast<uint32_t>(rng() & 0xFFFF));  // 10.0.x.y
    key.nw_dst = htonl(0xC0A80000u | static_cast<uint32_t>(rng() & 0xFFFF));
    key.nw_proto = rng() % 2 ? 6 : 17;
    key.tp_src = htons(static_cast<uint16_t>(rng()));
    key.tp_dst = htons(static_cast<uint16_t>(rng() % 8 == 0 ? 80 : rng()));
    return key;
}

struct Setup {
    Classifier classifier;
    std::vector<FlowKey> hit_keys;
    std::vector<FlowKey> miss_keys;
    std::vector<FlowKey> random_keys;
};

Setup make_setup(unsigned n_subtables) {
    Setup s;
    std::mt19937_64 rng(42);
    uint32_t id = 0;
    for (unsigned t = 0; t < n_subtables; ++t) {
        const FlowMask mask = mask_number(t);
        for (unsigned r = 0; r < kRulesPerSubtable; ++r) {
            const FlowKey value = random_key(rng);
            s.classifier.insert(value, mask, static_cast<uint16_t>(rng() % 65536), id++, nullptr);
        }
    }
    // Hit keys: a rule's value with the other fields random.
    const std::vector<const flowpath::ClassifierRule*> rules = s.classifier.rules();
    for (unsigned k = 0; k < kKeys; ++k) {
        const flowpath::ClassifierRule* rule = rules[rng() % rules.size()];
        FlowKey key = random_key(rng);
        for (size_t w = 0; w < flowpath::kFlowWords; ++w) {
            flowpath::flow_words(key)[w] = (flowpath::flow_words(key)[w] & ~flowpath::flow_words(rule->mask)[w]) |
                                           flowpath::flow_words(rule->value)[w];
        }
        s.hit_keys.push_back(key);
    }
    // Miss keys: IPv4 from 11.0.0.0/8, where no rule is.
    for (unsigned k = 0; k < kKeys; ++k) {
        FlowKey key = random_key(rng);
        key.nw_src = htonl(0x0B000000u | static_cast<uint32_t>(rng() & 0xFFFFFF));
        s.miss_keys.push_back(key);
    }
    // Random keys from the rules' own pools: tries rarely rule a subtable
    // out, so most subtables are probed.
    for (unsigned k = 0; k < kKeys; ++k) s.random_keys.push_back(random_key(rng));
    return s;
}

enum class Keys { kHit, kMiss, kRandom };

void run_lookups(benchmark::State& state, Keys kind) {
    const Setup s = make_setup(static_cast<unsigned>(state.range(0)));
    const std::vector<FlowKey>& keys = kind == Keys::kHit    ? s.hit_keys
                                       : kind == Keys::kMiss ? s.miss_keys
                                                             : s.random_keys;
    size_t i = 0;
    uint64_t wildcard_bits = 0;
    const flowpath::bench::CyclesPerPacket cycles;
    for (auto _ : state) {
        FlowMask wildcards{};
        benchmark::DoNotOptimize(s.classifier.lookup(keys[i], wildcards));
        for (size_t w = 0; w < flowpath::kFlowWords; ++w) {
            wildcard_bits += static_cast<uint64_t>(__builtin_popcountll(flowpath::flow_words(wildcards)[w]));
        }
        i = (i + 1) % keys.size();
    }
    cycles.report(state, state.iterations());
    state.counters["subtables"] = static_cast<double>(s.classifier.subtable_count());
    state.counters["wc_bits"] = static_cast<double>(wildcard_bits) / static_cast<double>(state.iterations());
}

void BM_LookupHit(benchmark::State& state) { run_lookups(state, Keys::kHit); }
void BM_LookupMiss(benchmark::State& state) { run_lookups(state, Keys::kMiss); }
void BM_LookupRandom(benchmark::State& state) { run_lookups(state, Keys::kRandom); }

void BM_ReferenceLookupHit(benchmark::State& state) {
    const Setup s = make_setup(static_cast<unsigned>(state.range(0)));
    size_t i = 0;
    const flowpath::bench::CyclesPerPacket cycles;
    for (auto _ : state) {
        benchmark::DoNotOptimize(s.classifier.reference_lookup(s.hit_keys[i]));
        i = (i + 1) % s.hit_keys.size();
    }
    cycles.report(state, state.iterations());
}

/// `count` distinct masks (nw_src and nw_dst prefixes of 0..32 bits times
/// a 16-bit tp_dst mask: IPv4 ACL shapes, prefixes the tries track) with one
/// rule each, random priorities.
struct DistinctMaskRules {
    std::vector<FlowMask> masks;
    std::vector<FlowKey> values;
    std::vector<uint16_t> priorities;
};

DistinctMaskRules distinct_mask_rules(unsigned count) {
    DistinctMaskRules out;
    std::mt19937_64 rng(7);
    for (unsigned i = 0; i < count; ++i) {
        FlowMask mask{};
        mask.dl_type = 0xFFFF;
        mask.nw_proto = 0xFF;
        mask.nw_src = prefix_mask(i % 33);
        mask.nw_dst = prefix_mask(i / 33 % 33);
        mask.tp_dst = htons(static_cast<uint16_t>(i / (33 * 33) + 1));  // distinct per (src, dst) round
        out.masks.push_back(mask);
        out.values.push_back(random_key(rng));
        out.priorities.push_back(static_cast<uint16_t>(rng() % 65536));
    }
    return out;
}

void load(Classifier& c, const DistinctMaskRules& rules) {
    for (uint32_t i = 0; i < rules.masks.size(); ++i) {
        c.insert(rules.values[i], rules.masks[i], rules.priorities[i], i, nullptr);
    }
}

/// Loading `range(0)` rules over as many distinct masks into an empty
/// classifier, then (BM_RemoveDistinctMasks) removing them in random order:
/// each change must cost time logarithmic in the table's size (live
/// add-flows and del-flows), so the totals grow about linearly.
void BM_LoadDistinctMasks(benchmark::State& state) {
    const DistinctMaskRules rules = distinct_mask_rules(static_cast<unsigned>(state.range(0)));
    for (auto _ : state) {
        Classifier c;
        load(c, rules);
        if (c.subtable_count() != rules.masks.size()) state.SkipWithError("masks not distinct");
        state.PauseTiming();  // destruction is not loading
        c.clear();
        state.ResumeTiming();
    }
    state.counters["per_rule"] = benchmark::Counter(static_cast<double>(state.range(0)),
                                                    benchmark::Counter::kIsIterationInvariantRate |
                                                        benchmark::Counter::kInvert);
}

void BM_RemoveDistinctMasks(benchmark::State& state) {
    const DistinctMaskRules rules = distinct_mask_rules(static_cast<unsigned>(state.range(0)));
    std::vector<uint32_t> order(rules.masks.size());
    for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), std::mt19937_64(3));
    for (auto _ : state) {
        state.PauseTiming();
        Classifier c;
        load(c, rules);
        state.ResumeTiming();
        for (uint32_t id : order) c.remove(id);
        if (c.rule_count() != 0) state.SkipWithError("rules left");
    }
    state.counters["per_rule"] = benchmark::Counter(static_cast<double>(state.range(0)),
                                                    benchmark::Counter::kIsIterationInvariantRate |
                                                        benchmark::Counter::kInvert);
}

BENCHMARK(BM_LoadDistinctMasks)->Arg(12500)->Arg(50000)->Arg(100000)->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK(BM_RemoveDistinctMasks)->Arg(12500)->Arg(50000)->Arg(100000)->Unit(benchmark::kMillisecond)->Iterations(1);

BENCHMARK(BM_LookupHit)->Arg(1)->Arg(8)->Arg(64)->Arg(256);
BENCHMARK(BM_LookupMiss)->Arg(1)->Arg(8)->Arg(64)->Arg(256);
BENCHMARK(BM_LookupRandom)->Arg(1)->Arg(8)->Arg(64)->Arg(256);
BENCHMARK(BM_ReferenceLookupHit)->Arg(1)->Arg(8)->Arg(64)->Arg(256);

}  // namespace

BENCHMARK_MAIN();
