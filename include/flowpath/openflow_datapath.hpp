// The OpenFlow agent's backend over the running datapath: flow_mods become
// changes of the slow path's live rule set (the one the rule file and
// flowpath-ctl change too), dumps read it, packet-outs reach the ports
// through worker 0, and the slow path's packet-ins and expired rules, and
// the ports' link changes, become the agent's asynchronous messages.
// docs/openflow.md, "Wiring into flowpath".
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "flowpath/openflow.hpp"
#include "flowpath/slowpath.hpp"
#include "flowpath/stats.hpp"

struct rte_mempool;

namespace flowpath {

class Port;

/// What the backend reaches of the datapath (the Datapath owns all of it
/// and outlives the backend).
struct DatapathView {
    SlowPath* slow_path = nullptr;
    std::vector<const Port*> ports;  ///< port i is OpenFlow port i+1
    rte_mempool* pool = nullptr;     ///< for packet-out copies
    /// The datapath's counters (port statistics).
    std::function<StatsSnapshot()> snapshot;
};

/// The production OpenFlowBackend. Sets itself as the slow path's events
/// on construction and unsets on destruction.
class DatapathBackend final : public OpenFlowBackend, private SlowPathEvents {
public:
    /// Rules the tables hold at most before an add is refused (TABLE_FULL).
    static constexpr size_t kMaxRules = 1000000;

    explicit DatapathBackend(DatapathView view);
    ~DatapathBackend() override;
    DatapathBackend(const DatapathBackend&) = delete;
    DatapathBackend& operator=(const DatapathBackend&) = delete;

    void apply_flow_mods(std::span<FlowModRequest> requests,
                         std::span<std::optional<of::OfError>> results) override;
    void dump_flows(const FlowSelector& select, std::vector<FlowEntry>& out) override;
    std::vector<of::TableStats> table_stats() override;
    std::vector<of::PortDesc> port_descs() override;
    uint32_t port_count() override { return static_cast<uint32_t>(view_.ports.size()); }
    std::vector<of::PortStats> port_stats() override;
    std::optional<of::OfError> packet_out(std::span<const uint8_t> packet, uint32_t in_port,
                                          const ActionList& actions) override;
    void set_events(OpenFlowEvents* events) override;

    /// Compares every port's link state with the last one seen and reports
    /// the changes as PORT_STATUS (a thread of the backend calls it twice a
    /// second; public for tests).
    void poll_links();

private:
    void packet_in(const PacketInUpcall& upcall, const uint8_t* data, uint32_t len) override;
    void rule_expired(RuleExpiry expiry) override;
    of::PortDesc describe(size_t index) const;

    DatapathView view_;
    std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
    std::mutex events_lock_;  // slow-path threads and the link poller read events_
    OpenFlowEvents* events_ = nullptr;
    // (config, state) last seen, by port index (then poll_links only)
    std::vector<std::pair<uint32_t, uint32_t>> link_state_;
    std::jthread link_poller_;          // last: stops before the rest goes
};

/// The datapath id when none is configured: the first port's MAC address
/// (48 bits), as Open vSwitch derives a bridge's from a port's address.
uint64_t default_datapath_id(const std::vector<const Port*>& ports);

}  // namespace flowpath
