// The datapath process: owns the EAL, the packet pool, the ports and the
// workers, and starts and stops them in the order that loses no packet.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "flowpath/config.hpp"
#include "flowpath/conntrack.hpp"
#include "flowpath/io.hpp"
#include "flowpath/ctl.hpp"
#include "flowpath/metrics.hpp"
#include "flowpath/openflow.hpp"
#include "flowpath/openflow_datapath.hpp"
#include "flowpath/pipeline.hpp"
#include "flowpath/slowpath.hpp"
#include "flowpath/stats.hpp"
#include "flowpath/worker.hpp"

namespace flowpath {

/// Everything that runs packets. Construction probes and configures every
/// port (so a bad device fails before any port starts); start() starts the
/// ports, the slow path and the workers; stop() drains the workers (the
/// slow path answers what they handed it), flushes their tx buffers, stops
/// the slow path and the ports (a tx_pcap file is then complete).
class Datapath {
public:
    explicit Datapath(const Config& config);
    ~Datapath();
    Datapath(const Datapath&) = delete;
    Datapath& operator=(const Datapath&) = delete;

    void start();
    void stop();

    /// Packets received so far on every port (the idle detector's clock).
    uint64_t total_rx_packets() const;
    /// Whether any worker holds packets not yet sent or dropped.
    bool work_in_flight() const;

    /// Every statistic now. Safe to call from any thread (the metrics
    /// endpoint calls it from its own): device counters are read under a
    /// lock, worker counters are single-writer atomics.
    StatsSnapshot snapshot() const;
    /// `flowpath-ctl show`: ports with counters, workers and their rx queues.
    std::string show() const;
    /// `flowpath-ctl dump-flows [TABLE]` (-1: every table).
    std::string dump_flows(int table);
    /// The rule, cache and conntrack commands of flowpath-ctl (add-flow,
    /// add-flows, del-flows, mod-flows, replace-flows, dump-cache,
    /// pmd-stats, ct-dump, ct-flush); null when `command` is none of them.
    std::optional<CtlReply> control(const std::string& command, const std::string& body);
    /// `flowpath-ctl pmd-stats`: per worker, packets by cache level, losses
    /// and cycles per packet.
    std::string pmd_stats() const;

    /// The OpenFlow agent's listening port (0: none); for logs and tests.
    uint16_t openflow_port() const { return openflow_ ? openflow_->listen_port() : 0; }

private:
    void start_conntrack(unsigned workers);
    void start_openflow();

    Config config_;
    LcorePlan lcores_;
    std::unique_ptr<RuleSet> rules_;  // handed to the slow path once built
    // Declared so that destruction runs workers, ports, pool, EAL: ports
    // hand their mbufs back before the pool goes, the EAL goes last.
    std::unique_ptr<Eal> eal_;
    std::unique_ptr<PacketPool> pool_;
    std::vector<std::unique_ptr<Port>> ports_;
    std::vector<std::unique_ptr<rte_spinlock_t>> tx_locks_;
    std::vector<std::unique_ptr<UpcallChannel>> channels_;  // one per worker, outlive both ends
    std::unique_ptr<ConnTracker> conntrack_;  // a shard per worker: outlives them, goes before the EAL
    std::vector<std::unique_ptr<Worker>> workers_;
    std::unique_ptr<SlowPath> slow_path_;  // stopped after the workers, before the ports
    // --controller, --openflow-listen: the agent goes first (stop()), then
    // its backend, before the slow path and the ports. Null when off.
    std::unique_ptr<DatapathBackend> openflow_backend_;
    std::unique_ptr<OpenFlowAgent> openflow_;
    std::atomic<bool> stop_workers_{false};
    bool running_ = false;
    mutable std::mutex snapshot_lock_;  // one reader of the devices' counters at a time
    // Last, so it is gone before anything its scrapes read.
    std::unique_ptr<MetricsServer> metrics_;  // --metrics-listen; null when off
};

/// Reads --rules into a RuleSet (empty for none or "-"). Throws ConfigError
/// naming the rule file, line and column.
std::unique_ptr<RuleSet> load_rules(const Config& config);

}  // namespace flowpath
