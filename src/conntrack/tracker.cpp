// The tracker: configuration, shards, the cleanup thread, ct-dump, ct-flush
// and statistics.
#include <arpa/inet.h>
#include <rte_cycles.h>
#include <rte_pause.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "shard.hpp"
#include "tcp.hpp"
#include "flowpath/config.hpp"
#include "flowpath/error.hpp"

namespace flowpath {

// ---- Timeouts ----

const char* timeout_class_name(TimeoutClass timeout_class) {
    switch (timeout_class) {
        case TimeoutClass::tcp_syn_sent: return "tcp_syn_sent";
        case TimeoutClass::tcp_opening: return "tcp_opening";
        case TimeoutClass::tcp_established: return "tcp_established";
        case TimeoutClass::tcp_closing: return "tcp_closing";
        case TimeoutClass::tcp_fin_wait: return "tcp_fin_wait";
        case TimeoutClass::tcp_closed: return "tcp_closed";
        case TimeoutClass::udp_first: return "udp_first";
        case TimeoutClass::udp_multiple: return "udp_multiple";
        case TimeoutClass::udp_bidir: return "udp_bidir";
        case TimeoutClass::icmp_first: return "icmp_first";
        case TimeoutClass::icmp_reply: return "icmp_reply";
        case TimeoutClass::other_first: return "other_first";
        case TimeoutClass::other_multiple: return "other_multiple";
        case TimeoutClass::other_bidir: return "other_bidir";
        case TimeoutClass::count_: break;
    }
    return "?";
}

ConnTimeouts ConnTimeouts::open_vswitch(uint64_t units_per_second) {
    return from_seconds({}, units_per_second);
}

ConnTimeouts ConnTimeouts::from_seconds(const std::vector<std::pair<std::string, uint32_t>>& seconds,
                                        uint64_t units_per_second) {
    using C = TimeoutClass;
    // Open vSwitch 3.1's default timeout policy (lib/conntrack-tp.c), by the
    // names of its CT_DPIF_TP_ATTR_* and thus of --ct-timeout-*.
    std::array<uint64_t, kTimeoutClasses> s{};
    auto at = [&](C c) -> uint64_t& { return s[static_cast<unsigned>(c)]; };
    at(C::tcp_syn_sent) = 30;
    at(C::tcp_opening) = 30;
    at(C::tcp_established) = 24 * 3600;
    at(C::tcp_closing) = 15 * 60;
    at(C::tcp_fin_wait) = 45;
    at(C::tcp_closed) = 30;
    at(C::udp_first) = 60;
    at(C::udp_multiple) = 60;
    at(C::udp_bidir) = 30;
    at(C::icmp_first) = 60;
    at(C::icmp_reply) = 30;
    bool other_first = false, other_multiple = false;
    for (const auto& [name, value] : seconds) {
        if (name == "tcp-syn-sent") at(C::tcp_syn_sent) = value;
        else if (name == "tcp-established") at(C::tcp_established) = value;
        else if (name == "tcp-fin-wait") at(C::tcp_closing) = value;   // OVS: CT_TM_TCP_CLOSING
        else if (name == "tcp-time-wait") at(C::tcp_fin_wait) = value;  // OVS: CT_TM_TCP_FIN_WAIT
        else if (name == "tcp-close") at(C::tcp_closed) = value;
        else if (name == "udp-first") at(C::udp_first) = value;
        else if (name == "udp-single") at(C::udp_multiple) = value;     // OVS: CT_TM_OTHER_MULTIPLE
        else if (name == "udp-multiple") at(C::udp_bidir) = value;      // OVS: CT_TM_OTHER_BIDIR
        else if (name == "icmp-first") at(C::icmp_first) = value;
        else if (name == "icmp-reply") at(C::icmp_reply) = value;
        else if (name == "other-first") at(C::other_first) = value, other_first = true;
        else if (name == "other-multiple") at(C::other_multiple) = at(C::other_bidir) = value, other_multiple = true;
        else throw Error("unknown connection-tracking timeout class '" + name + "'");
    }
    // Open vSwitch times every other protocol as UDP.
    if (!other_first) at(C::other_first) = at(C::udp_first);
    if (!other_multiple) {
        at(C::other_multiple) = at(C::udp_multiple);
        at(C::other_bidir) = at(C::udp_bidir);
    }
    ConnTimeouts t;
    for (unsigned k = 0; k < kTimeoutClasses; ++k) t.value[k] = s[k] * units_per_second;
    return t;
}

ConnTrackerConfig ConnTrackerConfig::from(const Config& config, unsigned shards) {
    ConnTrackerConfig c;
    c.shards = shards;
    c.limit = config.ct_max_connections ? config.ct_max_connections : kDefaultLimit;
    c.units_per_second = rte_get_tsc_hz();
    c.timeouts = ConnTimeouts::from_seconds(config.ct_timeouts, c.units_per_second);
    c.clock = [] { return rte_rdtsc(); };
    c.cleanup_min_interval = c.units_per_second / 5;
    c.cleanup_max_interval = c.units_per_second * 5;
    return c;
}

// ---- Shards ----

ConnShard::ConnShard(std::unique_ptr<ShardState> state) : state_(std::move(state)) {}
ConnShard::~ConnShard() = default;

unsigned ConnShard::execute(const CtAction& action, const CtPacket* packets, CtMeta* metas, unsigned count,
                            uint64_t now, bool stop_at_dependency) {
    return state_->execute(action, packets, metas, count, now, stop_at_dependency);
}

unsigned ConnShard::maintain(uint64_t now) { return state_->maintain(now); }

bool ConnShard::original_tuple(const CtMeta& meta, const CtPacket& packet, CtTuple& out) const {
    return state_->original_tuple(meta, packet, out);
}

uint32_t ConnShard::size() const { return static_cast<uint32_t>(load_shared(state_->counters.connections)); }

// ---- The tracker ----

ConnTracker::ConnTracker(ConnTrackerConfig config) : config_(std::move(config)), shared_(std::make_unique<TrackerShared>()) {
    if (config_.shards == 0) throw Error("a connection tracker needs at least one shard");
    if (config_.units_per_second == 0) throw Error("the connection tracker's clock has no unit");
    if (config_.limit == 0) config_.limit = ConnTrackerConfig::kDefaultLimit;
    if (config_.shard_capacity == 0) {
        config_.shard_capacity = std::min(config_.limit, ConnTrackerConfig::kDefaultShardCapacity);
    }
    if (!config_.clock) {
        config_.clock = [] {
            return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                             std::chrono::steady_clock::now().time_since_epoch())
                                             .count());
        };
    }
    config_.cleanup_min_interval = std::max<uint64_t>(config_.cleanup_min_interval, 1);
    config_.cleanup_max_interval = std::max(config_.cleanup_max_interval, config_.cleanup_min_interval);
    config_.cleanup_budget = std::max(config_.cleanup_budget, 1u);

    shared_->timeouts = config_.timeouts;
    shared_->units_per_second = config_.units_per_second;
    shared_->limit.store(config_.limit);
    for (unsigned i = 0; i < config_.shards; ++i) {
        auto state = std::make_unique<ShardState>(*shared_, config_.shard_capacity, config_.socket);
        shared_->shards.push_back(state.get());
        shards_.push_back(std::unique_ptr<ConnShard>(new ConnShard(std::move(state))));
    }
    if (config_.cleanup_thread) shared_->thread = std::thread([this] { cleanup_main(); });
}

ConnTracker::~ConnTracker() {
    if (shared_->thread.joinable()) {
        {
            std::lock_guard lock(shared_->mutex);
            shared_->stop = true;
        }
        shared_->wake.notify_all();
        shared_->thread.join();
    }
}

uint64_t ConnTracker::now() const { return config_.clock(); }

void ConnTracker::set_limit(uint32_t limit) {
    shared_->limit.store(limit ? limit : ConnTrackerConfig::kDefaultLimit, std::memory_order_relaxed);
}

uint64_t ConnTracker::memory_bytes() const {
    uint64_t total = sizeof(*this) + sizeof(TrackerShared);
    for (const ShardState* s : shared_->shards) {
        total += sizeof(ShardState) + s->table.memory_bytes() + s->lists.bytes() +
                 uint64_t{s->relist.capacity()} * sizeof(uint32_t) +
                 uint64_t{s->expire.capacity()} * sizeof(ExpireMessage);
    }
    return total;
}

CtStats ConnTracker::stats() const {
    CtStats s;
    for (const ShardState* shard : shared_->shards) shard->counters.sample(s);
    return s;
}

uint64_t ConnTracker::cleanup_round(uint64_t now) {
    bool more = false;
    uint64_t next = ShardState::kNever;
    for (ShardState* shard : shared_->shards) next = std::min(next, shard->cleanup(now, config_.cleanup_budget, more));
    shared_->rounds.fetch_add(1, std::memory_order_release);
    // Bounded work per round: when it ran out, come back after the minimum
    // interval; else when the earliest expiry is due, within the bounds.
    const uint64_t earliest = now + config_.cleanup_min_interval;
    if (more) return earliest;
    const uint64_t latest = now + config_.cleanup_max_interval;
    return std::clamp(next, earliest, latest);
}

uint64_t ConnTracker::wake_cleanup() {
    uint64_t ticket;
    {
        std::lock_guard lock(shared_->mutex);
        shared_->wake_requested = true;
        ticket = shared_->started + 1;
    }
    shared_->wake.notify_all();
    return ticket;
}

std::string ConnTracker::check_invariants() const {
    for (size_t i = 0; i < shared_->shards.size(); ++i) {
        std::string problem = shared_->shards[i]->table.check_invariants();
        if (problem.empty()) problem = shared_->shards[i]->check_lists();
        if (!problem.empty()) return "shard " + std::to_string(i) + ": " + problem;
    }
    return "";
}

uint64_t ConnTracker::cleanup_rounds() const { return shared_->rounds.load(std::memory_order_acquire); }

void ConnTracker::cleanup_main() {
    std::unique_lock lock(shared_->mutex);
    while (!shared_->stop) {
        shared_->wake_requested = false;
        ++shared_->started;
        lock.unlock();
        const uint64_t now = config_.clock();
        const uint64_t next = cleanup_round(now);
        lock.lock();
        const auto wait = std::chrono::nanoseconds(static_cast<int64_t>(
            static_cast<double>(next - now) * 1e9 / static_cast<double>(config_.units_per_second)));
        shared_->wake.wait_for(lock, wait, [&] { return shared_->stop || shared_->wake_requested; });
    }
}

// ---- Flush ----

uint64_t ConnTracker::flush(std::optional<uint16_t> zone) {
    uint64_t flushed = 0;
    for (ShardState* shard : shared_->shards) {
        ConnTable& table = shard->table;
        const uint32_t end = table.high_water();
        for (uint32_t i = 0; i < end; ++i) {
            ConnSnapshot snap;
            if (!table.snapshot(i, snap) || snap.killed) continue;
            if (zone && snap.key[0].zone != *zone) continue;
            Connection& c = table.slot(i);
            store_shared(c.killed, uint8_t{1}, std::memory_order_seq_cst);
            if (load_shared(c.seq, std::memory_order_seq_cst) == snap.seq) {
                ++flushed;
                continue;
            }
            // The worker reused the slot meanwhile, and may have cleared the
            // flag before this store: take it back from the newcomer.
            while (load_shared(c.seq, std::memory_order_acquire) & 1) rte_pause();
            store_shared(c.killed, uint8_t{0}, std::memory_order_seq_cst);
        }
        shard->flush_pending.store(true, std::memory_order_release);
    }
    wake_cleanup();
    return flushed;
}

// ---- Dump ----

namespace {

const char* protocol_name(uint8_t proto) {
    switch (proto) {
        case 1: return "icmp";
        case 58: return "icmpv6";
        case 6: return "tcp";
        case 17: return "udp";
        case 132: return "sctp";
        case 136: return "udplite";
        case 33: return "dccp";
        case 2: return "igmp";
        default: return nullptr;
    }
}

void append_tuple(std::string& out, const ConnKey& key) {
    char text[INET6_ADDRSTRLEN];
    const int af = key.family() == AddressFamily::ipv6 ? AF_INET6 : AF_INET;
    out += "src=";
    out += inet_ntop(af, key.src, text, sizeof(text));
    out += ",dst=";
    out += inet_ntop(af, key.dst, text, sizeof(text));
    char tail[64];
    if (key.nw_proto == 1 || key.nw_proto == 58) {
        std::snprintf(tail, sizeof(tail), ",id=%u,type=%u,code=0", ntohs(key.src_port),
                      icmp_query_type(key.icmp_query()));
    } else {
        std::snprintf(tail, sizeof(tail), ",sport=%u,dport=%u", ntohs(key.src_port), ntohs(key.dst_port));
    }
    out += tail;
}

// The TCP state a dump shows: the higher of the two peers', with Open
// vSwitch's non-verbose adjustments toward the kernel's names.
const char* shown_tcp_state(uint8_t state) {
    if (state == kTcpFinWait2) state = kTcpTimeWait;
    if (state == kTcpSynRecv) state = kTcpEstablished;
    return tcp_state_name(state);
}

}  // namespace

std::string ConnTracker::dump(std::optional<uint16_t> zone) const {
    std::string out;
    const uint64_t now = config_.clock();
    for (const ShardState* shard : shared_->shards) {
        const ConnTable& table = shard->table;
        const uint32_t end = table.high_water();
        for (uint32_t i = 0; i < end; ++i) {
            ConnSnapshot snap;
            if (!table.snapshot(i, snap) || snap.killed || snap.expiry <= now) continue;
            const ConnKey& fwd = snap.key[0];
            if (zone && fwd.zone != *zone) continue;
            if (const char* name = protocol_name(fwd.nw_proto)) out += name;
            else out += std::to_string(fwd.nw_proto);
            out += ",orig=(";
            append_tuple(out, fwd);
            out += "),reply=(";
            append_tuple(out, snap.key[1]);
            out += ')';
            if (fwd.zone) out += ",zone=" + std::to_string(fwd.zone);
            if (snap.mark) out += ",mark=" + std::to_string(snap.mark);
            if (fwd.nw_proto == 6) {
                const char* state = shown_tcp_state(snap.proto_state);
                out += ",protoinfo=(state=";
                if (state) {
                    out += state;
                } else {
                    out += '[';
                    out += std::to_string(snap.proto_state);
                    out += ']';
                }
                out += ')';
            }
            out += '\n';
        }
    }
    return out;
}

// ---- flowpath-ctl ----

namespace {

std::optional<uint16_t> zone_argument(const char* command, const std::vector<std::string>& args) {
    if (args.empty()) return std::nullopt;
    const std::string& arg = args[0];
    if (args.size() == 1 && arg.rfind("zone=", 0) == 0 && arg.size() > 5 && arg.size() <= 10) {
        uint32_t zone = 0;
        bool digits = true;
        for (size_t k = 5; k < arg.size(); ++k) {
            if (arg[k] < '0' || arg[k] > '9') digits = false;
            else zone = zone * 10 + static_cast<uint32_t>(arg[k] - '0');
        }
        if (digits && zone <= UINT16_MAX) return static_cast<uint16_t>(zone);
    }
    throw Error(std::string(command) + ": expected no argument or zone=N (0-65535), got '" + arg + "'");
}

}  // namespace

std::string ct_dump_command(const ConnTracker& tracker, const std::vector<std::string>& args) {
    return tracker.dump(zone_argument("ct-dump", args));
}

std::string ct_flush_command(ConnTracker& tracker, const std::vector<std::string>& args) {
    tracker.flush(zone_argument("ct-flush", args));
    return "";
}

}  // namespace flowpath
