// One worker's registry: upcalls answered, megaflows revalidated, statistics
// pushed to the rules and idle megaflows expired. Single-threaded; the
// slow-path thread that owns the worker calls it (docs/slowpath.md).
#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "flowpath/rule.hpp"
#include "flowpath/slowpath.hpp"

namespace flowpath {

namespace {
// Whether every bit of `inner` is in `outer`.
bool covered_by(const FlowMask& inner, const FlowMask& outer) {
    const uint64_t* i = flow_words(inner);
    const uint64_t* o = flow_words(outer);
    for (unsigned w = 0; w < kFlowWords; ++w) {
        if (i[w] & ~o[w]) return false;
    }
    return true;
}

unsigned bit_count(const FlowMask& mask) {
    unsigned n = 0;
    for (unsigned w = 0; w < kFlowWords; ++w) n += static_cast<unsigned>(std::popcount(flow_words(mask)[w]));
    return n;
}

FlowMask union_of(const FlowMask& a, const FlowMask& b) {
    FlowMask out;
    for (unsigned w = 0; w < kFlowWords; ++w) flow_words(out)[w] = flow_words(a)[w] | flow_words(b)[w];
    return out;
}

// The whole 5-tuple of either IP version, exact: what a coarse mask adds.
FlowMask five_tuple_mask() {
    FlowMask m{};
    m.in_port = UINT32_MAX;
    m.dl_type = 0xffff;
    m.nw_src = m.nw_dst = UINT32_MAX;
    std::memset(m.ipv6_src, 0xff, sizeof m.ipv6_src);
    std::memset(m.ipv6_dst, 0xff, sizeof m.ipv6_dst);
    m.nw_proto = 0xff;
    m.nw_frag = 0xff;
    m.tp_src = m.tp_dst = 0xffff;
    return m;
}

bool same_rules(const std::vector<RuleEntry*>& a, const Translation& t) {
    return a.size() == t.matched_count && std::equal(a.begin(), a.end(), t.matched);
}
}  // namespace

uint32_t Reply::add_translation() {
    if (translations_used == translations.size()) translations.emplace_back();
    ReplyTranslation& t = translations[translations_used];
    t.actions.clear();
    return translations_used++;
}

bool apply_cache_op(FlowCache& cache, const ReplyOp& op, Reply& reply, uint64_t now, uint64_t pending_seq) {
    switch (op.kind) {
        case ReplyOp::Kind::install: {
            ReplyTranslation& t = reply.translations[op.payload];
            cache.install(op.slot, t.masked, t.mask, t.actions, op.drop, now, pending_seq);
            return true;
        }
        case ReplyOp::Kind::update: cache.update(op.slot, reply.translations[op.payload].actions, op.drop); return true;
        case ReplyOp::Kind::remove: cache.remove(op.slot, reply.translations[op.payload].actions); return true;
        case ReplyOp::Kind::packet:
        case ReplyOp::Kind::fence:
        case ReplyOp::Kind::transmit:
        case ReplyOp::Kind::inject: return false;
    }
    return false;
}

MissHandler::MissHandler(uint32_t flow_limit, const MegaflowCache* replica)
    : registry_(std::max<uint32_t>(flow_limit, 2 * kMaxLookupBurst)), replica_(replica) {}

bool MissHandler::replica_stats(uint32_t slot, ReplicaStats& out) const {
    if (!replica_) return false;
    const Megaflow* copy = replica_->peek(slot);
    if (!copy) return false;
    // The replica's slot holds this megaflow only once the worker applied
    // everything up to its install: same generation before and after the
    // reads (the worker bumps it, release, before reusing the slot).
    const uint32_t generation = registry_.flow(slot).generation;
    if (__atomic_load_n(&copy->generation, __ATOMIC_ACQUIRE) != generation) return false;
    out.packets = copy->packets.get();
    out.bytes = copy->bytes.get();
    out.last_used = copy->last_used.get();
    std::atomic_thread_fence(std::memory_order_acquire);
    return __atomic_load_n(&copy->generation, __ATOMIC_RELAXED) == generation &&
           __atomic_load_n(&copy->live, __ATOMIC_RELAXED);
}

void MissHandler::push_stats(uint32_t slot, uint64_t now_ms) {
    ReplicaStats stats;
    if (!replica_stats(slot, stats)) return;
    Megaflow& flow = registry_.flow(slot);
    if (stats.packets <= flow.pushed_packets) return;
    const uint64_t packets = stats.packets - flow.pushed_packets;
    const uint64_t bytes = stats.bytes - flow.pushed_bytes;
    for (RuleEntry* rule : flow.rules) {
        rule->packets.fetch_add(packets, std::memory_order_relaxed);
        rule->bytes.fetch_add(bytes, std::memory_order_relaxed);
        rule->used_ms.store(now_ms, std::memory_order_relaxed);
        tables_[rule->rule.table].lookups.add(packets);
        tables_[rule->rule.table].matched.add(packets);
    }
    for (unsigned i = 0; i < flow.missed_count; ++i) tables_[flow.missed[i]].lookups.add(packets);
    flow.pushed_packets = stats.packets;
    flow.pushed_bytes = stats.bytes;
}

void MissHandler::emit_install(uint32_t slot, Reply& reply) {
    const Megaflow& flow = registry_.flow(slot);
    const uint32_t index = reply.add_translation();
    ReplyTranslation& t = reply.translations[index];
    t.masked = miniflow_expand(flow.masked);
    t.mask = registry_.mask_of(slot);
    t.actions.assign(flow.actions.begin(), flow.actions.end());
    ReplyOp op{ReplyOp::Kind::install};
    op.drop = flow.drop;
    op.slot = slot;
    op.payload = index;
    reply.ops.push_back(op);
}

void MissHandler::retire(uint32_t slot, Reply& reply, uint64_t now_ms) {
    push_stats(slot, now_ms);
    registry_.remove(slot);
    ReplyOp op{ReplyOp::Kind::remove};
    op.slot = slot;
    op.payload = reply.add_translation();  // receives the replica's action list
    reply.ops.push_back(op);
}

// Tuple-space explosion: packets crafted so that each one's translation
// looks at a different set of bits would give every worker one subtable per
// set, and every packet that misses would probe them all. Past the mask
// limit a new mask is widened instead: examining more bits than the
// translation needs only splits its megaflow into more, narrower megaflows
// with the same actions (narrowing would not be safe). The choice, in order:
// the existing mask with the fewest bits that covers it (no new subtable),
// the mask with the whole 5-tuple exact while fewer than kCoarseMasks such
// masks were added, else every bit exact (one subtable, one megaflow per
// distinct key). So a worker has at most limit + kCoarseMasks + 1 subtables.
FlowMask MissHandler::install_mask(const FlowMask& wildcards) {
    FlowMask mask = wildcards;
    mask.in_port = UINT32_MAX;
    const unsigned subtables = registry_.subtable_count();
    if (mask_limit_ == 0 || subtables < mask_limit_ || registry_.has_mask(mask)) return mask;
    const FlowMask* best = nullptr;
    unsigned best_bits = UINT32_MAX;
    const std::vector<FlowMask> existing = registry_.masks();
    for (const FlowMask& candidate : existing) {
        if (!covered_by(mask, candidate)) continue;
        const unsigned bits = bit_count(candidate);
        if (bits < best_bits) {
            best = &candidate;
            best_bits = bits;
        }
    }
    if (best) return *best;
    const FlowMask coarse = union_of(mask, five_tuple_mask());
    if (subtables < mask_limit_ + kCoarseMasks) return coarse;
    FlowMask every_bit;
    std::memset(&every_bit, 0xff, sizeof every_bit);
    return every_bit;
}

void MissHandler::handle(const RuleSet& rules, uint64_t generation, const Miniflow* flows,
                         const PacketLayout* layouts, const Upcall* upcalls, unsigned count, uint64_t now,
                         Reply& reply) {
    counters_.upcalls.add(count);
    counters_.batches.add(1);
    for (unsigned i = 0; i < count; ++i) {
        const FlowKey key = miniflow_expand(flows[i]);
        // A megaflow installed since the worker missed (by this batch or an
        // earlier one) answers it: one translation per flow.
        uint32_t slot = registry_.lookup(key);
        if (slot == kNoFlow) {
            translate(rules, key, translation_);
            counters_.translations.add(1);
            FlowMask mask = install_mask(translation_.wildcards);
            slot = registry_.insert(key, mask, translation_, now);
            if (slot == kNoFlow) {  // at the flow limit: the least recently used goes
                const uint32_t victim = registry_.evict_one([this](uint32_t s) {
                    ReplicaStats stats;
                    return replica_stats(s, stats) ? stats.last_used : registry_.flow(s).last_used.get();
                });
                // evict_one() removed it from the registry; the replica
                // still needs the remove (and the statistics are lost for
                // the packets of its last moments: it was the least used).
                ReplyOp op{ReplyOp::Kind::remove};
                op.slot = victim;
                op.payload = reply.add_translation();
                reply.ops.push_back(op);
                counters_.evicted.add(1);
                mask = install_mask(translation_.wildcards);  // the eviction may have emptied a subtable
                slot = registry_.insert(key, mask, translation_, now);
            }
            FlowMask own = translation_.wildcards;
            own.in_port = UINT32_MAX;
            if (std::memcmp(&own, &mask, sizeof mask) != 0) counters_.widened.add(1);
            registry_.flow(slot).rule_generation = generation;
            counters_.installed.add(1);
            emit_install(slot, reply);
        }
        ReplyOp op{ReplyOp::Kind::packet};
        op.slot = slot;
        op.layout = layouts[i];
        op.packet = upcalls[i].packet;
        op.meta = upcalls[i].meta;
        reply.ops.push_back(op);
    }
}

bool MissHandler::revalidate(const RuleSet& rules, uint64_t generation, Reply& reply, unsigned budget) {
    const size_t start = reply.ops.size();
    const uint64_t now_ms = rule_clock_ms();
    for (; revalidate_cursor_ < registry_.slot_limit(); ++revalidate_cursor_) {
        if (reply.ops.size() - start >= budget) return false;
        const uint32_t slot = revalidate_cursor_;
        Megaflow& flow = registry_.flow(slot);
        if (!flow.live || flow.rule_generation >= generation) continue;
        // Counters go to the rules that matched the packets counted so far.
        push_stats(slot, now_ms);
        translate(rules, miniflow_expand(flow.masked), translation_);
        counters_.revalidated.add(1);
        FlowMask wildcards = translation_.wildcards;
        wildcards.in_port = UINT32_MAX;
        if (!covered_by(wildcards, registry_.mask_of(slot))) {
            // The new rules look at bits this megaflow ignores: its packets
            // may now differ, so it goes and they miss again.
            retire(slot, reply, now_ms);
            counters_.invalidated.add(1);
            continue;
        }
        if (flow.actions != translation_.actions || flow.drop != translation_.drop) {
            flow.actions.assign(translation_.actions.begin(), translation_.actions.end());
            flow.drop = translation_.drop;
            const uint32_t index = reply.add_translation();
            reply.translations[index].actions.assign(flow.actions.begin(), flow.actions.end());
            ReplyOp op{ReplyOp::Kind::update};
            op.drop = flow.drop;
            op.slot = slot;
            op.payload = index;
            reply.ops.push_back(op);
            counters_.updated.add(1);
        }
        if (!same_rules(flow.rules, translation_)) {
            flow.rules.assign(translation_.matched, translation_.matched + translation_.matched_count);
        }
        flow.missed_count = static_cast<uint8_t>(translation_.missed_count);
        std::copy_n(translation_.missed, translation_.missed_count, flow.missed.begin());
        flow.rule_generation = generation;
    }
    revalidate_cursor_ = 0;
    return true;
}

bool MissHandler::sweep(uint64_t idle_before, uint64_t now_ms, Reply& reply, unsigned budget) {
    const size_t start = reply.ops.size();
    // Reading statistics is cheap; a slice of ops bounds the reply, a slice
    // of slots bounds the time the caller holds its locks.
    for (unsigned visited = 0; sweep_cursor_ < registry_.slot_limit(); ++sweep_cursor_, ++visited) {
        if (reply.ops.size() - start >= budget || visited >= 16 * budget) return false;
        const uint32_t slot = sweep_cursor_;
        if (!registry_.flow(slot).live) continue;
        ReplicaStats stats;
        if (!replica_stats(slot, stats)) continue;  // the worker has not installed it yet
        push_stats(slot, now_ms);
        if (stats.last_used < idle_before) {
            retire(slot, reply, now_ms);
            counters_.expired.add(1);
        }
    }
    sweep_cursor_ = 0;
    return true;
}

std::string MissHandler::dump(const PortNames& ports, uint64_t now, uint64_t ticks_per_ms) const {
    std::ostringstream out;
    for (uint32_t slot = 0; slot < registry_.slot_limit(); ++slot) {
        const Megaflow& flow = registry_.flow(slot);
        if (!flow.live) continue;
        ReplicaStats stats{0, 0, flow.created};
        replica_stats(slot, stats);
        Match match;
        match.mask = registry_.mask_of(slot);
        match.value = miniflow_expand(flow.masked);
        const uint64_t ticks = std::max<uint64_t>(ticks_per_ms, 1);
        out << "slot=" << slot << ", match=" << format_match(match, ports);
        // The mask word by word (nonzero words only): what the match leaves out.
        out << ", mask=";
        const uint64_t* words = flow_words(match.mask);
        bool first = true;
        for (unsigned w = 0; w < kFlowWords; ++w) {
            if (!words[w]) continue;
            char hex[24];
            std::snprintf(hex, sizeof hex, "%s%u:%016llx", first ? "" : ",", w, static_cast<unsigned long long>(words[w]));
            out << hex;
            first = false;
        }
        out << ", packets=" << stats.packets << ", bytes=" << stats.bytes
            << ", age=" << (now > flow.created ? (now - flow.created) / ticks : 0) << "ms"
            << ", idle=" << (now > stats.last_used ? (now - stats.last_used) / ticks : 0) << "ms, actions=";
        switch (flow.drop) {
            case TranslateDrop::none: out << format_actions(flow.actions, ports); break;
            case TranslateDrop::no_match: out << "drop(no_match)"; break;
            case TranslateDrop::no_output: out << "drop"; break;
            case TranslateDrop::ttl_expired: out << "drop(ttl_expired)"; break;
            case TranslateDrop::too_deep: out << "drop(too_deep)"; break;
        }
        out << "\n";
    }
    return out.str();
}

}  // namespace flowpath
