// DatapathBackend: OpenFlow 1.3's flow table semantics over the slow path's
// live RuleSet, packet-outs through worker 0, events from the slow path and
// the ports.
#include "flowpath/openflow_datapath.hpp"

#include <net/if.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>

#include "flowpath/error.hpp"
#include "flowpath/io.hpp"
#include "flowpath/log.hpp"

namespace flowpath {

static_assert(of::kFlagSendFlowRem == kRuleFlagSendFlowRemoved);

namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kLinkPollInterval = std::chrono::milliseconds(500);

void split_ms(uint64_t ms, uint32_t& sec, uint32_t& nsec) {
    sec = static_cast<uint32_t>(ms / 1000);
    nsec = static_cast<uint32_t>(ms % 1000 * 1000000);
}

// A flow_mod's error for a rule RuleSet::check refuses (nothing today), as
// MemoryBackend answers.
std::optional<of::OfError> refused_by_datapath(const Rule& rule) {
    try {
        RuleSet::check(rule);
    } catch (const ConfigError&) {
        const FlowMask& m = rule.match.mask;
        return m.ct_state || m.ct_zone || m.ct_mark ? of::err::kBadField : of::err::kBadActionType;
    }
    return std::nullopt;
}

// Whether a rule of `table` at `priority` overlaps `match` (CHECK_OVERLAP).
bool overlaps(const RuleSet& rules, uint8_t table, uint16_t priority, const Match& match) {
    for (const RuleEntry* entry : rules.table_rules(table)) {
        if (entry->rule.priority == priority && matches_overlap(entry->rule.match, match)) return true;
    }
    return false;
}

// The flags (IFF_*) of the kernel interface behind a port (net_af_packet,
// net_pcap on an iface), whose link the driver does not follow (DPDK
// 22.11's af_packet says up from start to stop). Empty for a port without
// one.
std::optional<unsigned> kernel_interface_flags(uint16_t port_id) {
    rte_eth_dev_info info{};
    ifreq request{};
    if (rte_eth_dev_info_get(port_id, &info) != 0 || info.if_index == 0 ||
        !if_indextoname(info.if_index, request.ifr_name)) {
        return std::nullopt;
    }
    struct Socket {
        int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        ~Socket() {
            if (fd >= 0) ::close(fd);
        }
    } socket;
    if (socket.fd < 0 || ::ioctl(socket.fd, SIOCGIFFLAGS, &request) != 0) return std::nullopt;
    return static_cast<unsigned short>(request.ifr_flags);
}

// `bytes` in mbufs of `pool`: one segment when they fit, else a chain of
// full segments (a packet-out longer than --mbuf-size leaves as a received
// chain would, flowpath/mbuf_chain.hpp). Null when the pool runs out.
rte_mbuf* mbuf_chain_of(rte_mempool* pool, std::span<const uint8_t> bytes) {
    rte_mbuf* head = nullptr;
    size_t done = 0;
    do {
        rte_mbuf* segment = rte_pktmbuf_alloc(pool);
        if (!segment) {
            rte_pktmbuf_free(head);  // null-safe
            return nullptr;
        }
        const auto n = static_cast<uint16_t>(std::min<size_t>(bytes.size() - done, rte_pktmbuf_tailroom(segment)));
        std::memcpy(rte_pktmbuf_append(segment, n), bytes.data() + done, n);
        done += n;
        if (!head) {
            head = segment;
        } else if (rte_pktmbuf_chain(head, segment) != 0) {  // past the segment limit
            rte_pktmbuf_free(segment);
            rte_pktmbuf_free(head);
            return nullptr;
        }
    } while (done < bytes.size());
    return head;
}

FlowRemovedEvent removed_event(const Rule& rule, uint8_t reason, uint64_t age_ms, uint64_t packets, uint64_t bytes) {
    FlowRemovedEvent event;
    event.rule = rule;
    event.reason = reason;
    split_ms(age_ms, event.duration_sec, event.duration_nsec);
    event.packets = packets;
    event.bytes = bytes;
    return event;
}

}  // namespace

uint64_t default_datapath_id(const std::vector<const Port*>& ports) {
    if (ports.empty()) return 1;
    rte_ether_addr mac{};
    if (rte_eth_macaddr_get(ports[0]->id(), &mac) != 0) return 1;
    uint64_t id = 0;
    for (uint8_t byte : mac.addr_bytes) id = id << 8 | byte;
    return id ? id : 1;
}

DatapathBackend::DatapathBackend(DatapathView view) : view_(std::move(view)) {
    for (size_t i = 0; i < view_.ports.size(); ++i) {
        const of::PortDesc desc = describe(i);
        link_state_.push_back({desc.config, desc.state});
    }
    view_.slow_path->set_events(this);
    link_poller_ = std::jthread([this](std::stop_token stop) {
        std::mutex lock;
        std::condition_variable_any wake;
        std::unique_lock guard(lock);
        while (!stop.stop_requested()) {
            wake.wait_for(guard, stop, kLinkPollInterval, [] { return false; });
            if (!stop.stop_requested()) poll_links();
        }
    });
}

DatapathBackend::~DatapathBackend() {
    link_poller_.request_stop();
    if (link_poller_.joinable()) link_poller_.join();
    view_.slow_path->set_events(nullptr);
}

void DatapathBackend::set_events(OpenFlowEvents* events) {
    std::lock_guard guard(events_lock_);
    events_ = events;
}

void DatapathBackend::apply_flow_mods(std::span<FlowModRequest> requests,
                                      std::span<std::optional<of::OfError>> results) {
    const uint64_t now_ms = rule_clock_ms();
    std::vector<FlowRemovedEvent> removed;
    std::vector<uint32_t> chosen;
    const auto select = [&](const RuleSet& rules, const FlowSelector& selector) {
        chosen.clear();
        rules.for_each([&](const RuleEntry& entry) {
            if (selector.selects(entry.rule)) chosen.push_back(entry.id);
        });
    };
    const auto apply = [&](RuleSet& rules) {
        for (size_t i = 0; i < requests.size(); ++i) {
            FlowModRequest& r = requests[i];
            std::optional<of::OfError>& result = results[i];
            result.reset();
            switch (r.command) {
            case FlowModCommand::kAdd: {
                if ((result = refused_by_datapath(r.rule))) break;
                if ((r.flags & of::kFlagCheckOverlap) && overlaps(rules, r.rule.table, r.rule.priority, r.rule.match)) {
                    result = of::err::kOverlap;
                    break;
                }
                if (rules.size() >= kMaxRules) {
                    if (!rules.find_exact(r.rule.table, r.rule.match, r.rule.priority)) {
                        result = of::err::kTableFull;
                        break;
                    }
                }
                rules.add(std::move(r.rule), now_ms, r.flags, (r.flags & of::kFlagResetCounts) != 0);
                break;
            }
            case FlowModCommand::kModify:
            case FlowModCommand::kModifyStrict:
                // Every selected rule takes the new actions; cookie, timeouts
                // and flags stay (OpenFlow 1.3).
                select(rules, r.select);
                for (uint32_t id : chosen) rules.modify_id(id, r.rule.actions, (r.flags & of::kFlagResetCounts) != 0);
                break;
            case FlowModCommand::kDelete:
            case FlowModCommand::kDeleteStrict:
                select(rules, r.select);
                for (uint32_t id : chosen) {
                    const RuleEntry* entry = rules.find_id(id);
                    if (entry->flags & of::kFlagSendFlowRem) {
                        removed.push_back(removed_event(entry->rule, of::kRemovedDelete, now_ms - entry->added_ms,
                                                        entry->packets.load(std::memory_order_relaxed),
                                                        entry->bytes.load(std::memory_order_relaxed)));
                    }
                    rules.remove_id(id);
                }
                break;
            }
        }
    };
    // As Open vSwitch: the tables change now (the next miss, dump, barrier
    // reply and packet-out see it); megaflows follow by revalidation.
    view_.slow_path->publish(apply);
    if (removed.empty()) return;
    std::lock_guard guard(events_lock_);
    if (!events_) return;
    for (FlowRemovedEvent& event : removed) events_->flow_removed(std::move(event));
}

void DatapathBackend::dump_flows(const FlowSelector& select, std::vector<FlowEntry>& out) {
    view_.slow_path->push_stats();  // the counters as the workers have them now
    const uint64_t now_ms = rule_clock_ms();
    struct Found {
        FlowEntry entry;
        uint32_t id;
    };
    std::vector<Found> found;
    view_.slow_path->rules().read([&](const RuleSet& rules, uint64_t) {
        rules.for_each([&](const RuleEntry& e) {
            if (!select.selects(e.rule)) return;
            FlowEntry entry{e.rule, e.flags, e.packets.load(std::memory_order_relaxed),
                            e.bytes.load(std::memory_order_relaxed), 0, 0};
            split_ms(now_ms - std::min(now_ms, e.added_ms), entry.duration_sec, entry.duration_nsec);
            found.push_back(Found{std::move(entry), e.id});
        });
        return 0;
    });
    std::sort(found.begin(), found.end(), [](const Found& a, const Found& b) {
        if (a.entry.rule.table != b.entry.rule.table) return a.entry.rule.table < b.entry.rule.table;
        if (a.entry.rule.priority != b.entry.rule.priority) return a.entry.rule.priority > b.entry.rule.priority;
        return a.id < b.id;
    });
    for (Found& f : found) out.push_back(std::move(f.entry));
}

std::vector<of::TableStats> DatapathBackend::table_stats() {
    view_.slow_path->push_stats();  // the packets the workers counted until now
    const std::vector<TableCount> counts = view_.slow_path->table_counts();
    std::vector<of::TableStats> tables(kMaxTable + 1);
    for (unsigned t = 0; t <= kMaxTable; ++t) {
        tables[t].table_id = static_cast<uint8_t>(t);
        tables[t].lookup_count = counts[t].lookups;
        tables[t].matched_count = counts[t].matched;
    }
    view_.slow_path->rules().read([&](const RuleSet& rules, uint64_t) {
        rules.for_each([&](const RuleEntry& e) { ++tables[e.rule.table].active_count; });
        return 0;
    });
    return tables;
}

of::PortDesc DatapathBackend::describe(size_t index) const {
    const Port& port = *view_.ports[index];
    of::PortDesc desc;
    desc.port_no = static_cast<uint32_t>(index + 1);
    rte_ether_addr mac{};
    if (rte_eth_macaddr_get(port.id(), &mac) == 0) std::memcpy(desc.hw_addr, mac.addr_bytes, 6);
    desc.name = port.name();
    rte_eth_link link{};
    if (rte_eth_link_get_nowait(port.id(), &link) == 0 && link.link_status == RTE_ETH_LINK_UP) {
        desc.state = of::kPortStateLive;
        if (link.link_speed != RTE_ETH_SPEED_NUM_NONE && link.link_speed != RTE_ETH_SPEED_NUM_UNKNOWN) {
            desc.curr_speed = desc.max_speed = link.link_speed * 1000;  // Mb/s -> kb/s
        }
    } else {
        desc.state = of::kPortStateLinkDown;
    }
    // As Open vSwitch reads a system port: administratively down is
    // config PORT_DOWN, no carrier (or down) is LINK_DOWN, else LIVE.
    if (const std::optional<unsigned> flags = kernel_interface_flags(port.id())) {
        desc.config = *flags & IFF_UP ? 0 : of::kPortConfigDown;
        desc.state = *flags & IFF_RUNNING ? of::kPortStateLive : of::kPortStateLinkDown;
    }
    return desc;
}

std::vector<of::PortDesc> DatapathBackend::port_descs() {
    std::vector<of::PortDesc> out;
    for (size_t i = 0; i < view_.ports.size(); ++i) out.push_back(describe(i));
    return out;
}

std::vector<of::PortStats> DatapathBackend::port_stats() {
    const StatsSnapshot stats = view_.snapshot();
    const auto age = Clock::now() - started_;
    const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(age);
    std::vector<of::PortStats> out;
    for (size_t i = 0; i < stats.ports.size(); ++i) {
        const StatsSnapshot::Port& p = stats.ports[i];
        of::PortStats s;
        s.port_no = static_cast<uint32_t>(i + 1);
        s.rx_packets = p.rx_packets;
        s.tx_packets = p.tx_packets;
        s.rx_bytes = p.rx_bytes;
        s.tx_bytes = p.tx_bytes;
        s.rx_dropped = p.rx_dropped;
        s.tx_dropped = p.tx_dropped;
        s.duration_sec = static_cast<uint32_t>(seconds.count());
        s.duration_nsec = static_cast<uint32_t>(std::chrono::nanoseconds(age - seconds).count());
        out.push_back(s);
    }
    return out;
}

std::optional<of::OfError> DatapathBackend::packet_out(std::span<const uint8_t> packet, uint32_t in_port,
                                                       const ActionList& actions) {
    // The packets it makes go to worker 0 once the actions all ran (a
    // packet-out that fails half-way sends nothing).
    struct Sink final : PacketOutSink {
        DatapathBackend& backend;
        std::vector<SlowPath::Injected> packets;
        std::vector<PacketInEvent> packet_ins;
        bool out_of_mbufs = false;
        bool out_of_states = false;
        explicit Sink(DatapathBackend& b) : backend(b) {}
        ~Sink() {
            for (const SlowPath::Injected& p : packets) rte_pktmbuf_free(static_cast<rte_mbuf*>(p.packet));
        }
        void add(std::span<const uint8_t> bytes, uint32_t port, bool pipeline, uint32_t recirc_id = 0) {
            rte_mbuf* mbuf = mbuf_chain_of(backend.view_.pool, bytes);
            if (!mbuf) {
                out_of_mbufs = true;
                return;
            }
            packets.push_back(SlowPath::Injected{mbuf, port, pipeline, recirc_id});
        }
        void send(uint32_t port, std::span<const uint8_t> bytes) override { add(bytes, port - 1, false); }
        void table(std::span<const uint8_t> bytes, const PacketOutEntry& entry) override {
            // The pass starts where the recirculation id says (the table,
            // the metadata), as a ct(table=T)'s does.
            const std::optional<uint32_t> recirc_id = backend.view_.slow_path->rules().read(
                [&](const RuleSet& rules, uint64_t) { return packet_out_recirc_id(rules, entry); });
            if (!recirc_id) {
                out_of_states = true;
                return;
            }
            add(bytes, entry.in_port, true, *recirc_id);
        }
        void controller(std::span<const uint8_t> bytes, uint32_t in_port, uint64_t metadata,
                        uint32_t max_len) override {
            packet_ins.push_back(packet_out_packet_in(bytes, in_port, metadata, max_len));
        }
    } sink(*this);
    if (auto error = run_packet_out(packet, in_port, actions, static_cast<uint32_t>(view_.ports.size()), sink)) {
        return error;
    }
    if (sink.out_of_mbufs) log(LogLevel::warn, "packet-out: no mbufs for a copy; that copy is not sent");
    if (sink.out_of_states) {
        log(LogLevel::warn, "packet-out: no frozen state left for its metadata; that copy does not run the rules");
    }
    if (!sink.packets.empty()) {
        view_.slow_path->inject(sink.packets);  // takes them, sent or not
        sink.packets.clear();
    }
    if (!sink.packet_ins.empty()) {
        std::lock_guard guard(events_lock_);
        for (PacketInEvent& in : sink.packet_ins) {
            if (events_) events_->packet_in(std::move(in));
        }
    }
    return std::nullopt;
}

void DatapathBackend::packet_in(const PacketInUpcall& upcall, const uint8_t* data, uint32_t len) {
    PacketInEvent in;
    in.reason = upcall.flags & kControllerTableMiss ? of::kReasonNoMatch : of::kReasonAction;
    in.table_id = upcall.table;
    in.cookie = upcall.cookie;
    in.in_port = upcall.in_port;
    in.metadata = upcall.metadata;
    in.ct_state = upcall.ct_state;
    in.ct_zone = upcall.ct_zone;
    in.ct_mark = upcall.ct_mark;
    in.dl_type = upcall.dl_type;
    in.ct_tuple = upcall.ct_tuple;
    in.max_len = upcall.max_len == kControllerAll ? of::kMaxLenNoBuffer : upcall.max_len;
    in.packet.assign(data, data + len);
    std::lock_guard guard(events_lock_);
    if (events_) events_->packet_in(std::move(in));
}

void DatapathBackend::rule_expired(RuleExpiry expiry) {
    FlowRemovedEvent event = removed_event(expiry.rule, expiry.hard ? of::kRemovedHardTimeout : of::kRemovedIdleTimeout,
                                           expiry.age_ms, expiry.packets, expiry.bytes);
    std::lock_guard guard(events_lock_);
    if (events_) events_->flow_removed(std::move(event));
}

void DatapathBackend::poll_links() {
    for (size_t i = 0; i < view_.ports.size(); ++i) {
        of::PortDesc desc = describe(i);
        const std::pair<uint32_t, uint32_t> seen{desc.config, desc.state};
        if (seen == link_state_[i]) continue;
        link_state_[i] = seen;
        std::lock_guard guard(events_lock_);
        if (events_) events_->port_status(PortStatusEvent{of::kPortModified, std::move(desc)});
    }
}

}  // namespace flowpath
