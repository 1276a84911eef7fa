// MemoryBackend: OpenFlow 1.3's flow table semantics over an ordered map of
// rules, with a RuleSet rebuilt on demand for forwarding (receive and
// packet_out to TABLE).
#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <set>

#include "flowpath/actions.hpp"
#include "flowpath/error.hpp"
#include "flowpath/openflow.hpp"
#include "flowpath/packet.hpp"

namespace flowpath {

namespace {

using Clock = std::chrono::steady_clock;

constexpr uint32_t kPortSpeedKbps = 10000000;  // what the ports report: 10 Gb/s
constexpr size_t kRoom = 64;                   // head- and tailroom of a working packet

// Rules in dump order: table, priority (highest first), then insertion.
struct OrderKey {
    uint8_t table;
    uint16_t priority;
    uint64_t seq;
    bool operator<(const OrderKey& o) const {
        if (table != o.table) return table < o.table;
        if (priority != o.priority) return priority > o.priority;
        return seq < o.seq;
    }
};

// A rule's identity for add and the strict commands: table, priority, match.
struct ExactKey {
    uint8_t table;
    uint16_t priority;
    Match match;
    bool operator<(const ExactKey& o) const {
        if (table != o.table) return table < o.table;
        if (priority != o.priority) return priority < o.priority;
        if (const int c = std::memcmp(&match.value, &o.match.value, sizeof(FlowKey))) return c < 0;
        if (const int c = std::memcmp(&match.mask, &o.match.mask, sizeof(FlowKey))) return c < 0;
        if (match.metadata_mask != o.match.metadata_mask) return match.metadata_mask < o.match.metadata_mask;
        return match.metadata < o.match.metadata;
    }
};

}  // namespace

struct MemoryBackend::State {
    struct Entry {
        Rule rule;
        uint16_t flags = 0;
        uint64_t packets = 0;
        uint64_t bytes = 0;
        Clock::time_point created;
        Clock::time_point used;
    };
    struct Port {
        of::PortDesc desc;
        of::PortStats stats;
        std::vector<std::vector<uint8_t>> sent;
    };

    mutable std::mutex mutex;
    PortNames names;
    size_t max_rules;
    OpenFlowEvents* events = nullptr;
    std::map<OrderKey, Entry> rules;
    std::map<ExactKey, OrderKey> exact;
    std::set<OrderKey> timed;  // the rules with an idle or hard timeout: what expire() looks at
    uint64_t next_seq = 0;
    std::vector<Port> ports;
    Clock::time_point started = Clock::now();
    std::vector<uint64_t> lookups = std::vector<uint64_t>(kMaxTable + 1);
    std::vector<uint64_t> matched = std::vector<uint64_t>(kMaxTable + 1);
    // The rules as the pipeline runs them; rebuilt after a change.
    std::unique_ptr<RuleSet> pipeline;
    std::vector<OrderKey> pipeline_keys;  // RuleSet id i+1 is rules[pipeline_keys[i]]

    void remove(std::map<OrderKey, Entry>::iterator it, uint8_t reason, Clock::time_point now) {
        const Entry& e = it->second;
        if ((e.flags & of::kFlagSendFlowRem) && events) {
            FlowRemovedEvent event;
            event.rule = e.rule;
            event.reason = reason;
            const auto age = now - e.created;
            event.duration_sec = static_cast<uint32_t>(std::chrono::duration_cast<std::chrono::seconds>(age).count());
            event.duration_nsec = static_cast<uint32_t>((age - std::chrono::seconds(event.duration_sec)).count());
            event.packets = e.packets;
            event.bytes = e.bytes;
            events->flow_removed(std::move(event));
        }
        exact.erase(ExactKey{e.rule.table, e.rule.priority, e.rule.match});
        timed.erase(it->first);
        rules.erase(it);
        pipeline.reset();
    }

    std::optional<of::OfError> add(const FlowModRequest& r, Clock::time_point now) {
        try {
            RuleSet::check(r.rule);  // what the datapath cannot run (nothing today)
        } catch (const ConfigError&) {
            const FlowMask& m = r.rule.match.mask;
            return m.ct_state || m.ct_zone || m.ct_mark ? of::err::kBadField : of::err::kBadActionType;
        }
        const ExactKey key{r.rule.table, r.rule.priority, r.rule.match};
        const auto same = exact.find(key);
        if (r.flags & of::kFlagCheckOverlap) {
            const auto first = rules.lower_bound(OrderKey{r.rule.table, r.rule.priority, 0});
            for (auto it = first; it != rules.end() && it->first.table == r.rule.table &&
                                  it->first.priority == r.rule.priority;
                 ++it) {
                if (matches_overlap(it->second.rule.match, r.rule.match)) return of::err::kOverlap;
            }
        }
        // The rule keeps its flags (dump-flows shows them), as Open vSwitch does.
        Entry entry{r.rule, r.flags, 0, 0, now, now};
        if (same != exact.end()) {
            // Replaced: counters carry over unless RESET_COUNTS (OpenFlow 1.3 6.4).
            Entry& old = rules.at(same->second);
            if (!(r.flags & of::kFlagResetCounts)) {
                entry.packets = old.packets;
                entry.bytes = old.bytes;
            }
            old = std::move(entry);
            if (r.rule.idle_timeout || r.rule.hard_timeout) {
                timed.insert(same->second);
            } else {
                timed.erase(same->second);
            }
        } else {
            if (rules.size() >= max_rules) return of::err::kTableFull;
            const OrderKey order{r.rule.table, r.rule.priority, next_seq++};
            rules.emplace(order, std::move(entry));
            exact.emplace(key, order);
            if (r.rule.idle_timeout || r.rule.hard_timeout) timed.insert(order);
        }
        pipeline.reset();
        return std::nullopt;
    }

    void apply(const FlowModRequest& r, std::optional<of::OfError>& result, Clock::time_point now) {
        switch (r.command) {
        case FlowModCommand::kAdd:
            result = add(r, now);
            return;
        case FlowModCommand::kModify:
        case FlowModCommand::kModifyStrict:
            for (auto& [order, e] : rules) {
                if (!r.select.selects(e.rule)) continue;
                e.rule.actions = r.rule.actions;
                if (r.flags & of::kFlagResetCounts) e.packets = e.bytes = 0;
                pipeline.reset();
            }
            return;
        case FlowModCommand::kDelete:
        case FlowModCommand::kDeleteStrict:
            for (auto it = rules.begin(); it != rules.end();) {
                auto next = std::next(it);
                if (r.select.selects(it->second.rule)) remove(it, of::kRemovedDelete, now);
                it = next;
            }
            return;
        }
    }

    RuleSet& current() {
        if (!pipeline) {
            pipeline = std::make_unique<RuleSet>(names);
            pipeline_keys.clear();
            for (const auto& [order, e] : rules) {
                pipeline->add(e.rule);
                pipeline_keys.push_back(order);
            }
        }
        return *pipeline;
    }

    void send(uint32_t port, const uint8_t* data, size_t len) {
        Port& p = ports.at(port - 1);
        p.sent.emplace_back(data, data + len);
        ++p.stats.tx_packets;
        p.stats.tx_bytes += len;
    }

    // Runs the rules on `packet` from `in_port` (from where `recirc_id`
    // says, a packet-out's entry): counters, outputs and the packet-ins of
    // the rules' CONTROLLER actions.
    std::vector<uint32_t> forward(uint32_t in_port, std::span<const uint8_t> packet, Clock::time_point now,
                                  bool packet_out = false, uint32_t recirc_id = 0) {
        FlowKey key;
        PacketLayout layout;
        parse_flow_key(packet.data(), static_cast<uint32_t>(packet.size()), in_port, key, layout);
        key.recirc_id = recirc_id;
        Translation t;
        translate(current(), key, t);
        // Table statistics as DatapathBackend counts them: a lookup per
        // table visited, a match per rule found.
        for (unsigned i = 0; i < t.missed_count; ++i) ++lookups[t.missed[i]];
        for (unsigned i = 0; i < t.matched_count; ++i) {
            Entry& e = rules.at(pipeline_keys.at(t.matched[i]->id - 1));
            ++matched[e.rule.table];
            ++lookups[e.rule.table];
            ++e.packets;
            e.bytes += packet.size();
            e.used = now;
        }
        // Each datapath kController of the translation sends the packet as
        // received (no conntrack here: no ct fields); a packet-out's with
        // reason ACTION, as Open vSwitch's.
        for (const Action& a : t.actions) {
            if (a.type != ActionType::kController || !events) continue;
            PacketInEvent in;
            in.reason = a.ct_flags & kControllerTableMiss && !packet_out ? of::kReasonNoMatch : of::kReasonAction;
            in.table_id = a.table;
            in.cookie = controller_cookie(a);
            in.in_port = controller_in_port(a);
            in.metadata = controller_metadata(a);
            in.max_len = a.port;
            in.packet.assign(packet.begin(), packet.end());
            events->packet_in(std::move(in));
        }
        std::vector<uint8_t> buffer(kRoom + packet.size() + kRoom);
        std::memcpy(buffer.data() + kRoom, packet.data(), packet.size());
        PacketBuffer pkt{buffer.data() + kRoom, static_cast<uint32_t>(packet.size()), kRoom, kRoom};
        std::vector<uint32_t> outputs;
        execute_actions(pkt, layout, t.actions.data(), t.actions.size(),
                        [&](uint32_t port, const PacketBuffer& out, bool) {
                            send(port, out.data, out.len);
                            outputs.push_back(port);
                        });
        return outputs;
    }
};

MemoryBackend::MemoryBackend(PortNames ports, size_t max_rules) : state_(std::make_unique<State>()) {
    state_->names = std::move(ports);
    state_->max_rules = max_rules;
    for (size_t i = 0; i < state_->names.size(); ++i) {
        State::Port p;
        p.desc.port_no = static_cast<uint32_t>(i + 1);
        p.desc.hw_addr[0] = 0x02;  // locally administered
        p.desc.hw_addr[5] = static_cast<uint8_t>(i + 1);
        p.desc.name = state_->names[i];
        p.desc.state = of::kPortStateLive;
        p.desc.curr_speed = p.desc.max_speed = kPortSpeedKbps;
        p.stats.port_no = p.desc.port_no;
        state_->ports.push_back(std::move(p));
    }
}

MemoryBackend::~MemoryBackend() = default;

void MemoryBackend::apply_flow_mods(std::span<FlowModRequest> requests,
                                    std::span<std::optional<of::OfError>> results) {
    std::lock_guard lock(state_->mutex);
    const Clock::time_point now = Clock::now();
    for (size_t i = 0; i < requests.size(); ++i) state_->apply(requests[i], results[i], now);
}

void MemoryBackend::dump_flows(const FlowSelector& select, std::vector<FlowEntry>& out) {
    std::lock_guard lock(state_->mutex);
    const Clock::time_point now = Clock::now();
    for (const auto& [order, e] : state_->rules) {
        if (!select.selects(e.rule)) continue;
        const auto age = std::chrono::duration_cast<std::chrono::nanoseconds>(now - e.created);
        const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(age);
        out.push_back(FlowEntry{e.rule, e.flags, e.packets, e.bytes, static_cast<uint32_t>(seconds.count()),
                                static_cast<uint32_t>((age - seconds).count())});
    }
}

std::vector<of::TableStats> MemoryBackend::table_stats() {
    std::lock_guard lock(state_->mutex);
    std::vector<of::TableStats> tables(kMaxTable + 1);
    for (unsigned t = 0; t <= kMaxTable; ++t) {
        tables[t].table_id = static_cast<uint8_t>(t);
        tables[t].lookup_count = state_->lookups[t];
        tables[t].matched_count = state_->matched[t];
    }
    for (const auto& [order, e] : state_->rules) ++tables[order.table].active_count;
    return tables;
}

std::vector<of::PortDesc> MemoryBackend::port_descs() {
    std::lock_guard lock(state_->mutex);
    std::vector<of::PortDesc> out;
    for (const State::Port& p : state_->ports) out.push_back(p.desc);
    return out;
}

std::vector<of::PortStats> MemoryBackend::port_stats() {
    std::lock_guard lock(state_->mutex);
    const auto age = Clock::now() - state_->started;
    const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(age);
    std::vector<of::PortStats> out;
    for (State::Port& p : state_->ports) {
        p.stats.duration_sec = static_cast<uint32_t>(seconds.count());
        p.stats.duration_nsec = static_cast<uint32_t>(std::chrono::nanoseconds(age - seconds).count());
        out.push_back(p.stats);
    }
    return out;
}

std::optional<of::OfError> MemoryBackend::packet_out(std::span<const uint8_t> packet, uint32_t in_port,
                                                     const ActionList& actions) {
    std::lock_guard lock(state_->mutex);
    const Clock::time_point now = Clock::now();
    State& s = *state_;
    struct Sink final : PacketOutSink {
        State& s;
        Clock::time_point now;
        Sink(State& state, Clock::time_point t) : s(state), now(t) {}
        void send(uint32_t port, std::span<const uint8_t> bytes) override { s.send(port, bytes.data(), bytes.size()); }
        void table(std::span<const uint8_t> bytes, const PacketOutEntry& entry) override {
            if (const std::optional<uint32_t> recirc_id = packet_out_recirc_id(s.current(), entry)) {
                s.forward(entry.in_port, bytes, now, true, *recirc_id);
            }
        }
        void controller(std::span<const uint8_t> bytes, uint32_t in_port, uint64_t metadata,
                        uint32_t max_len) override {
            if (!s.events) return;
            s.events->packet_in(packet_out_packet_in(bytes, in_port, metadata, max_len));
        }
    } sink(s, now);
    return run_packet_out(packet, in_port, actions, static_cast<uint32_t>(s.ports.size()), sink);
}

void MemoryBackend::set_events(OpenFlowEvents* events) {
    std::lock_guard lock(state_->mutex);
    state_->events = events;
}

std::vector<uint32_t> MemoryBackend::receive(uint32_t port, std::span<const uint8_t> packet) {
    std::lock_guard lock(state_->mutex);
    State::Port& p = state_->ports.at(port - 1);
    ++p.stats.rx_packets;
    p.stats.rx_bytes += packet.size();
    return state_->forward(port, packet, Clock::now());
}

void MemoryBackend::expire(Clock::time_point now) {
    std::lock_guard lock(state_->mutex);
    for (auto key = state_->timed.begin(); key != state_->timed.end();) {
        const auto it = state_->rules.find(*key++);  // remove() erases the key
        const State::Entry& e = it->second;
        if (e.rule.hard_timeout && now >= e.created + std::chrono::seconds(e.rule.hard_timeout)) {
            state_->remove(it, of::kRemovedHardTimeout, now);
        } else if (e.rule.idle_timeout && now >= e.used + std::chrono::seconds(e.rule.idle_timeout)) {
            state_->remove(it, of::kRemovedIdleTimeout, now);
        }
    }
}

void MemoryBackend::set_link(uint32_t port, bool up) {
    std::lock_guard lock(state_->mutex);
    State::Port& p = state_->ports.at(port - 1);
    p.desc.state = up ? of::kPortStateLive : of::kPortStateLinkDown;
    if (state_->events) state_->events->port_status(PortStatusEvent{of::kPortModified, p.desc});
}

std::vector<std::vector<uint8_t>> MemoryBackend::sent(uint32_t port) const {
    std::lock_guard lock(state_->mutex);
    return state_->ports.at(port - 1).sent;
}

size_t MemoryBackend::rule_count() const {
    std::lock_guard lock(state_->mutex);
    return state_->rules.size();
}

}  // namespace flowpath
