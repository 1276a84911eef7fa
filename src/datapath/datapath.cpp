#include "flowpath/datapath.hpp"

#include <rte_eal.h>
#include <rte_launch.h>
#include <rte_lcore.h>

#include <algorithm>
#include <sstream>

#include "flowpath/error.hpp"
#include "flowpath/log.hpp"

namespace flowpath {

namespace {
// Packets a worker may hold outside the rings: one rx burst and a full tx
// buffer per port.
unsigned worker_mbufs(size_t ports) { return kBurst * static_cast<unsigned>(ports + 1); }

// The per-lcore mempool cache (256 each) may hold mbufs too.
constexpr unsigned kPoolCache = 256;
constexpr unsigned kPoolSlack = 1024;

int eal_log_level(LogLevel level) {
    switch (level) {
        case LogLevel::error: return RTE_LOG_ERR;
        case LogLevel::warn: return RTE_LOG_WARNING;
        case LogLevel::info: return RTE_LOG_NOTICE;
        case LogLevel::debug: return RTE_LOG_INFO;
    }
    return RTE_LOG_NOTICE;
}
}  // namespace

std::unique_ptr<RuleSet> load_rules(const Config& config) {
    PortNames names;
    for (const PortConfig& port : config.ports) names.push_back(port.name);
    auto rules = std::make_unique<RuleSet>(names);
    if (config.rules_file.empty() || config.rules_file == "-") {
        log(LogLevel::info, "no rule file: every packet is dropped (no_match)");
        return rules;
    }
    Parsed<std::vector<Rule>> parsed = parse_rule_file(config.rules_file, names);
    if (!parsed) throw ConfigError(parsed.error().to_string());
    for (Rule& rule : parsed.value()) rules->add(std::move(rule));
    log(LogLevel::info, "rules: ", rules->size(), " from ", config.rules_file);
    return rules;
}

Datapath::Datapath(const Config& config)
    : config_(config), lcores_(plan_lcores(config)), rules_(load_rules(config)) {
    std::vector<std::string> args = eal_arguments(config_, lcores_);
    // DPDK's own messages follow --log-level, one step quieter: its
    // informational lines are debugging detail for a flowpath user.
    args.insert(args.begin() + 1, "--log-level=" + std::to_string(eal_log_level(config_.log_level)));
    eal_ = std::make_unique<Eal>(args);

    for (unsigned lcore : lcores_.worker_lcores) {
        if (!rte_lcore_is_enabled(lcore) || lcore == rte_get_main_lcore()) {
            throw ConfigError("command line: pmd-cores: lcore " + std::to_string(lcore) +
                              " is not a worker lcore of the EAL (give --eal an -l list that covers it)");
        }
    }
    const size_t workers = lcores_.worker_lcores.size();

    for (unsigned i = 0; i < config_.ports.size(); ++i) {
        ports_.push_back(std::make_unique<Port>(config_.ports[i], i));
    }
    const uint16_t want_rxq = static_cast<uint16_t>(config_.rxq ? config_.rxq : workers);
    unsigned mbufs = kPoolSlack + kPoolCache * static_cast<unsigned>(workers + 1) +
                     static_cast<unsigned>(workers) * worker_mbufs(ports_.size());
    for (auto& port : ports_) {
        port->plan_queues(want_rxq, static_cast<uint16_t>(workers));
        mbufs += port->mbufs_needed();
    }
    if (config_.mbufs) mbufs = config_.mbufs;
    pool_ = std::make_unique<PacketPool>("flowpath_pkts", mbufs, static_cast<int>(rte_socket_id()));
    log(LogLevel::info, "packet pool: ", mbufs, " mbufs");
    for (auto& port : ports_) port->configure(pool_->get());

    // Rx queues go round-robin over the workers; each worker has its own tx
    // queue on every port where the device has enough, else shares one.
    std::vector<WorkerPlan> plans(workers);
    unsigned next = 0;
    for (unsigned p = 0; p < ports_.size(); ++p) {
        const Port& port = *ports_[p];
        for (uint16_t q = 0; q < port.rx_queues(); ++q) {
            plans[next++ % workers].rx.push_back({static_cast<uint16_t>(p), port.id(), q});
        }
    }
    for (unsigned w = 0; w < workers; ++w) {
        plans[w].lcore = lcores_.worker_lcores[w];
        plans[w].rules = rules_.get();
        plans[w].pool = pool_->get();
        plans[w].tx.resize(ports_.size());
    }
    for (unsigned p = 0; p < ports_.size(); ++p) {
        const Port& port = *ports_[p];
        std::vector<rte_spinlock_t*> locks(port.tx_queues(), nullptr);
        if (port.tx_queues() < workers) {
            for (auto& lock : locks) {
                tx_locks_.push_back(std::make_unique<rte_spinlock_t>());
                rte_spinlock_init(tx_locks_.back().get());
                lock = tx_locks_.back().get();
            }
        }
        for (unsigned w = 0; w < workers; ++w) {
            const uint16_t queue = static_cast<uint16_t>(w % port.tx_queues());
            plans[w].tx[p] = {port.id(), queue, locks[queue]};
        }
    }
    for (unsigned w = 0; w < workers; ++w) {
        if (plans[w].rx.empty()) log(LogLevel::warn, "worker on lcore ", plans[w].lcore, " has no rx queue to poll");
        workers_.push_back(std::make_unique<Worker>(std::move(plans[w]), stop_workers_));
    }
}

Datapath::~Datapath() { stop(); }

void Datapath::start() {
    for (auto& port : ports_) port->start();
    stop_workers_.store(false);
    for (auto& worker : workers_) {
        const int rc = rte_eal_remote_launch(run_worker, worker.get(), worker->plan().lcore);
        if (rc != 0) throw Error("cannot launch worker on lcore " + std::to_string(worker->plan().lcore));
    }
    running_ = true;
}

void Datapath::stop() {
    if (running_) {
        // Workers finish their round, flush their tx buffers and return;
        // only then do the ports stop, so every buffered packet is sent.
        stop_workers_.store(true);
        for (auto& worker : workers_) rte_eal_wait_lcore(worker->plan().lcore);
        running_ = false;
    }
    for (auto& port : ports_) port->stop();
}

uint64_t Datapath::total_rx_packets() const {
    uint64_t total = 0;
    for (const auto& worker : workers_) {
        for (const PortCounters& port : worker->counters().per_port) total += port.rx_packets.get();
    }
    return total;
}

bool Datapath::work_in_flight() const {
    return std::any_of(workers_.begin(), workers_.end(),
                       [](const auto& worker) { return worker->counters().in_flight.get() != 0; });
}

StatsSnapshot Datapath::snapshot() const {
    StatsSnapshot stats;
    for (const auto& port : ports_) {
        StatsSnapshot::Port p;
        p.name = port->name();
        p.rx_dropped = port->device_rx_dropped();
        stats.ports.push_back(p);
    }
    for (const auto& worker : workers_) {
        const WorkerCounters& c = worker->counters();
        for (size_t p = 0; p < ports_.size(); ++p) {
            const PortCounters& pc = c.per_port[p];
            StatsSnapshot::Port& out = stats.ports[p];
            out.rx_packets += pc.rx_packets.get();
            out.rx_bytes += pc.rx_bytes.get();
            out.tx_packets += pc.tx_packets.get();
            out.tx_bytes += pc.tx_bytes.get();
            out.tx_dropped += pc.tx_dropped.get();
        }
        for (unsigned r = 0; r < kDropReasons; ++r) stats.drops[r] += c.drops[r].get();
        StatsSnapshot::Worker w;
        w.lcore = worker->plan().lcore;
        w.packets = c.packets.get();
        w.exact_hits = c.exact_hits.get();
        w.cache_hits = c.cache_hits.get();
        w.misses = c.misses.get();
        stats.upcalls += c.upcalls.get();
        stats.installed += c.installed.get();
        stats.evicted += c.evicted.get();
        stats.cache_entries += c.cache_entries.get();
        stats.cache_subtables += c.cache_subtables.get();
        stats.cache_bytes += c.cache_bytes.get();
        w.lost = c.lost();
        w.cycles_per_packet = w.packets ? static_cast<double>(c.busy_cycles.get()) / static_cast<double>(w.packets) : 0;
        stats.workers.push_back(w);
    }
    return stats;
}

std::string Datapath::dump_flows(int table) const { return rules_->dump(table); }

std::string Datapath::show() const {
    std::ostringstream out;
    out << stats_to_text(snapshot());
    for (const auto& worker : workers_) {
        out << "worker lcore " << worker->plan().lcore << ": rx queues";
        for (const RxQueueRef& rxq : worker->plan().rx) {
            out << " " << ports_[rxq.port_index]->name() << "/" << rxq.queue;
        }
        out << "\n";
    }
    return out.str();
}

}  // namespace flowpath
