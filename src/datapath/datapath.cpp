#include "flowpath/datapath.hpp"

#include <rte_eal.h>
#include <rte_launch.h>
#include <rte_lcore.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <optional>
#include <sstream>

#include "flowpath/error.hpp"
#include "flowpath/log.hpp"
#include "flowpath/mtu.hpp"

namespace flowpath {

namespace {
// Packets a worker may hold outside the device rings: one rx burst and a
// full tx buffer per port, its upcalls at the slow path and the packets it
// holds back behind them.
unsigned worker_mbufs(size_t ports) {
    return kBurst * static_cast<unsigned>(ports + 1) + kUpcallRingSize + kHeldPackets;
}

// Connections the table holds in all when --ct-max-connections is not
// given. Each shard's slots are address space reserved when the tracker is
// made (about 170 bytes a slot, touched as used; the index grows with the
// connections: docs/conntrack.md): 2^20 slots take about 170 MB however many
// workers share them. Open vSwitch's default limit (3 million)
// stays the limit; the table's capacity binds first, and a commit it
// refuses is counted as refused, like one past the limit.
constexpr uint64_t kDefaultConnectionSlots = uint64_t{1} << 20;

// The tracker's configuration: --ct-max-connections split evenly over the
// workers' shards (each connection lives in one; RSS spreads them).
ConnTrackerConfig conntrack_config(const Config& config, unsigned workers) {
    ConnTrackerConfig c = ConnTrackerConfig::from(config, workers);
    const uint64_t total = config.ct_max_connections ? config.ct_max_connections : kDefaultConnectionSlots;
    c.shard_capacity = static_cast<uint32_t>((total + workers - 1) / workers);
    c.socket = static_cast<int>(rte_socket_id());
    return c;
}

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
    const uint64_t now_ms = rule_clock_ms();
    for (Rule& rule : parsed.value()) rules->add(std::move(rule), now_ms);
    log(LogLevel::info, "rules: ", rules->size(), " from ", config.rules_file);
    return rules;
}

Datapath::Datapath(const Config& config)
    : config_(config), lcores_(plan_lcores(config)), rules_(load_rules(config)) {
    std::vector<std::string> args = eal_arguments(config_, lcores_);
    // DPDK's own messages follow --log-level, one step quieter: its
    // informational lines are debugging detail for a flowpath user.
    args.insert(args.begin() + 1, "--log-level=" + std::to_string(eal_log_level(config_.log_level)));
    eal_ = std::make_unique<Eal>(args, config_.place("eal"));

    for (unsigned lcore : lcores_.worker_lcores) {
        if (!rte_lcore_is_enabled(lcore) || lcore == rte_get_main_lcore()) {
            throw ConfigError(config_.place("pmd-cores") + "pmd-cores: lcore " + std::to_string(lcore) +
                              " is not a worker lcore of the EAL (give --eal an -l list that covers it)");
        }
    }
    const size_t workers = lcores_.worker_lcores.size();

    for (unsigned i = 0; i < config_.ports.size(); ++i) {
        ports_.push_back(std::make_unique<Port>(config_.ports[i], i));
    }
    const uint16_t want_rxq = static_cast<uint16_t>(config_.rxq ? config_.rxq : workers);
    // One buffer holds a whole frame of the largest MTU, unless --mbuf-size
    // asks for smaller ones: longer frames are then chains, of up to
    // `segments` buffers (docs/architecture.md, MTU).
    uint32_t max_mtu = 0;
    for (const PortConfig& port : config_.ports) max_mtu = std::max(max_mtu, port.mtu);
    const uint32_t room = config_.mbuf_size ? config_.mbuf_size : frame_room(max_mtu);
    const uint32_t longest = max_frame_length(max_mtu) + kMtuCrc;
    const bool chains = room < longest;
    const unsigned segments = (longest + room - 1) / room;
    unsigned mbufs = kPoolSlack + kPoolCache * static_cast<unsigned>(workers + 1) +
                     static_cast<unsigned>(workers) * worker_mbufs(ports_.size()) * segments;
    for (auto& port : ports_) {
        port->plan_queues(want_rxq, static_cast<uint16_t>(workers));
        mbufs += port->mbufs_needed(room);
    }
    if (config_.mbufs) mbufs = config_.mbufs;
    pool_ = std::make_unique<PacketPool>("flowpath_pkts", mbufs, room, static_cast<int>(rte_socket_id()));
    log(LogLevel::info, "packet pool: ", mbufs, " mbufs of ", room, " bytes (largest MTU ", max_mtu,
        chains ? "; longer frames are chains" : "", ")");
    for (auto& port : ports_) port->configure(pool_->get(), room, chains);

    // Several workers and connection tracking: each connection lives in one
    // worker's shard, so both its directions must reach that worker. Every
    // port hashes with the same symmetric RSS key (Port::configure) and
    // queue q of every port goes to worker q % workers: a packet A->B on one
    // port and B->A on another land on the same queue number, so on the
    // same worker, when the ports have the same number of queues. A port
    // with fewer queues than workers, or several without RSS, breaks that
    // (warned below): a reply it takes to another worker looks new there.
    // Each worker has its own tx queue on every port where the device has
    // enough, else shares one.
    std::vector<WorkerPlan> plans(workers);
    for (unsigned p = 0; p < ports_.size(); ++p) {
        const Port& port = *ports_[p];
        for (uint16_t q = 0; q < port.rx_queues(); ++q) {
            plans[q % workers].rx.push_back({static_cast<uint16_t>(p), port.id(), q, port.config().mtu});
        }
        if (workers > 1 && (port.rx_queues() != ports_[0]->rx_queues() || port.rx_queues() < workers ||
                            !port.symmetric_rss())) {
            log(LogLevel::warn, "port ", port.name(), ": ", port.rx_queues(), " rx queue(s)",
                port.symmetric_rss() ? "" : " without RSS", " for ", workers,
                " workers: the two directions of a connection may reach different workers, whose connection "
                "trackers then see each other's replies as new");
        }
    }
    for (unsigned w = 0; w < workers; ++w) {
        plans[w].lcore = lcores_.worker_lcores[w];
        channels_.push_back(std::make_unique<UpcallChannel>(w, kUpcallRingSize));
        plans[w].channel = channels_.back().get();
        plans[w].flow_limit = config_.flow_limit;
        plans[w].exact_cache_entries = config_.exact_cache_entries;
        plans[w].signature_cache_entries = config_.signature_cache_entries;
        plans[w].tx_flush_interval_us = config_.tx_flush_interval_us;
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
            // A frame from a port of a larger MTU may exceed this one's.
            plans[w].tx[p] = {port.id(), queue, locks[queue], port.config().mtu < max_mtu ? port.config().mtu : kNoTxMtu};
        }
    }
    for (unsigned w = 0; w < workers; ++w) {
        if (plans[w].rx.empty()) log(LogLevel::warn, "worker on lcore ", plans[w].lcore, " has no rx queue to poll");
        workers_.push_back(std::make_unique<Worker>(std::move(plans[w]), stop_workers_));
    }
    start_conntrack(static_cast<unsigned>(workers));

    SlowPathPlan slow;
    slow.cpus = config_.slow_path_cores;
    if (slow.cpus.empty()) slow.cpus.push_back(rte_lcore_to_cpu_id(static_cast<int>(rte_get_main_lcore())));
    slow.flow_limit = config_.flow_limit;
    slow.max_idle_ms = config_.max_idle_ms;
    std::vector<UpcallChannel*> channels;
    std::vector<const MegaflowCache*> replicas;
    for (unsigned w = 0; w < workers; ++w) {
        channels.push_back(channels_[w].get());
        replicas.push_back(&workers_[w]->megaflows());
    }
    slow_path_ = std::make_unique<SlowPath>(std::move(rules_), std::move(slow), std::move(channels), std::move(replicas));
    for (const PortConfig& port : config_.ports) {
        log(LogLevel::info, "port ", port.name, ": MTU ", port.mtu, ": longer frames are dropped as too_big (",
            port.mtu + kMtuEthernetHeader, " bytes untagged, ", max_frame_length(port.mtu), " with two VLAN tags)");
    }
    start_openflow();
    // Scrapes take their snapshots on the exposer's threads, never a worker's.
    if (!config_.metrics_listen.empty()) {
        metrics_ = std::make_unique<MetricsServer>(config_.metrics_listen, config_.metrics_listen_source.place(),
                                                   [this] { return snapshot(); });
    }
}

// The connection tracker, made at start-up whatever the rules say: rules
// that need it may come later (add-flow, add-flows, OpenFlow), and a table
// made then would have to reach workers already running. Sized by
// conntrack_config; a table whose memory cannot be had stops the start.
void Datapath::start_conntrack(unsigned workers) {
    const ConnTrackerConfig config = conntrack_config(config_, workers);
    try {
        conntrack_ = std::make_unique<ConnTracker>(config);
    } catch (const Error& e) {
        const uint64_t total = uint64_t{config.shard_capacity} * workers;
        throw ConfigError("conntrack: a table of " + std::to_string(total) + " connections does not fit (" +
                          e.what() + "); lower --ct-max-connections");
    }
    for (unsigned w = 0; w < workers; ++w) workers_[w]->set_conntrack(&conntrack_->shard(w));
    log(LogLevel::info, "conntrack: ", uint64_t{config.shard_capacity} * workers, " connections in ", workers,
        " shard(s), limit ", config.limit, ", ", conntrack_->memory_bytes() >> 20, " MB reserved");
}

// The OpenFlow agent over the slow path's rules, when --controller or
// --openflow-listen asks for it: before any port starts, so that a listen
// port already taken stops the start (ConfigError).
void Datapath::start_openflow() {
    if (config_.controllers.empty() && config_.openflow_listen.empty()) return;
    DatapathView view;
    view.slow_path = slow_path_.get();
    for (const auto& port : ports_) view.ports.push_back(port.get());
    view.pool = pool_->get();
    view.snapshot = [this] { return snapshot(); };
    OpenFlowOptions options;
    const uint64_t datapath_id = config_.datapath_id ? *config_.datapath_id : default_datapath_id(view.ports);
    options.datapath_id = datapath_id;
    options.controllers = config_.controllers;
    options.listen = config_.openflow_listen;
    openflow_backend_ = std::make_unique<DatapathBackend>(std::move(view));
    openflow_ = std::make_unique<OpenFlowAgent>(*openflow_backend_, std::move(options));
    char dpid[20];
    std::snprintf(dpid, sizeof dpid, "%016llx", static_cast<unsigned long long>(datapath_id));
    log(LogLevel::info, "OpenFlow 1.3: datapath id ", dpid,
        openflow_->listen_port() ? ", listening on port " + std::to_string(openflow_->listen_port()) : std::string(),
        config_.controllers.empty() ? std::string() : ", " + std::to_string(config_.controllers.size()) + " controller(s)");
}

Datapath::~Datapath() {
    metrics_.reset();  // no scrape may run while the rest goes
    stop();
    openflow_backend_.reset();  // before the slow path it reports from
}

void Datapath::start() {
    for (auto& port : ports_) port->start();
    slow_path_->start();
    stop_workers_.store(false);
    for (auto& worker : workers_) {
        const int rc = rte_eal_remote_launch(run_worker, worker.get(), worker->plan().lcore);
        if (rc != 0) throw Error("cannot launch worker on lcore " + std::to_string(worker->plan().lcore));
    }
    running_ = true;
}

void Datapath::stop() {
    // No controller may change rules or send packets while the rest stops.
    openflow_.reset();
    if (running_) {
        // Workers finish their round, flush their tx buffers and return;
        // only then do the ports stop, so every buffered packet is sent.
        stop_workers_.store(true);
        for (auto& worker : workers_) rte_eal_wait_lcore(worker->plan().lcore);
        running_ = false;
    }
    if (slow_path_) {
        slow_path_->push_stats();  // the rules' counters as the run leaves them
        slow_path_->stop();
    }
    const std::lock_guard<std::mutex> lock(snapshot_lock_);  // a scrape may be reading the devices
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
    const std::lock_guard<std::mutex> lock(snapshot_lock_);
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
        w.simple_hits = c.simple_hits.get();
        w.exact_hits = c.exact_hits.get();
        w.exact_skipped = c.exact_skipped.get();
        w.cache_hits = c.cache_hits.get();
        w.misses = c.misses.get();
        w.recirculations = c.recirculations.get();
        stats.cache_entries += c.cache_entries.get();
        stats.cache_subtables += c.cache_subtables.get();
        stats.cache_bytes += c.cache_bytes.get();
        w.lost = c.lost();
        // Read after the port counters: a worker adds to in_flight before it
        // counts a burst as received, so a snapshot whose rx counts include a
        // packet and whose in_flight is 0 has seen that packet's fate.
        w.in_flight = c.in_flight.get();
        w.cycles_per_packet = w.packets ? static_cast<double>(c.busy_cycles.get()) / static_cast<double>(w.packets) : 0;
        stats.workers.push_back(w);
    }
    if (slow_path_) {
        const SlowPathTotals slow = slow_path_->totals();
        stats.upcalls = slow.upcalls;
        stats.installed = slow.installed;
        stats.evicted = slow.evicted;
        stats.widened = slow.widened;
        stats.expired = slow.expired;
        stats.batches = slow.batches;
        stats.revalidations = slow.revalidations;
        stats.last_revalidation_ms = static_cast<double>(slow.last_revalidation_us) / 1000.0;
    }
    if (conntrack_) {
        const CtStats ct = conntrack_->stats();
        stats.ct_connections = ct.connections;
        stats.ct_created = ct.created;
        stats.ct_expired = ct.expired;
        stats.ct_flushed = ct.flushed;
        stats.ct_refused = ct.refused;
        stats.ct_invalid = ct.invalid;
    }
    return stats;
}

std::string Datapath::dump_flows(int table) {
    slow_path_->push_stats();
    return slow_path_->rules().read([table](const RuleSet& rules, uint64_t) { return rules.dump(table); });
}

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

namespace flowpath {

namespace {
// "COMMAND ARGS" -> ARGS ("" when none).
std::string argument_of(const std::string& command, const std::string& name) {
    if (command.size() <= name.size()) return {};
    const size_t start = command.find_first_not_of(' ', name.size());
    return start == std::string::npos ? std::string() : command.substr(start);
}

bool is_command(const std::string& command, const std::string& name) {
    return command == name || command.starts_with(name + " ");
}

CtlReply refused(const std::string& why) { return {false, why + "\n"}; }

// The rules of `text`, each checked; a ParseError or the first refused rule
// becomes the error text.
std::optional<std::vector<Rule>> parse_checked(std::string_view text, const PortNames& ports, const std::string& file,
                                               std::string& error) {
    Parsed<std::vector<Rule>> parsed = parse_rules(text, ports, file);
    if (!parsed) {
        error = parsed.error().to_string();
        return std::nullopt;
    }
    try {
        for (const Rule& rule : parsed.value()) RuleSet::check(rule);
    } catch (const ConfigError& e) {
        error = e.what();
        return std::nullopt;
    }
    return std::move(parsed.value());
}

// The table= of a mod-flows rule was given (else it applies to every table,
// as ovs-ofctl mod-flows does).
bool names_table(const std::string& rule_text) {
    const std::string before_actions = rule_text.substr(0, rule_text.find("actions"));
    for (size_t at = before_actions.find("table"); at != std::string::npos; at = before_actions.find("table", at + 1)) {
        const bool starts_word = at == 0 || before_actions[at - 1] == ',' || before_actions[at - 1] == ' ';
        const size_t after = before_actions.find_first_not_of(' ', at + 5);
        if (starts_word && after != std::string::npos && before_actions[after] == '=') return true;
    }
    return false;
}
}  // namespace

std::optional<CtlReply> Datapath::control(const std::string& command, const std::string& body) {
    PortNames ports;
    for (const PortConfig& port : config_.ports) ports.push_back(port.name);
    const auto apply = [this](const std::function<void(RuleSet&)>& fn) -> CtlReply {
        try {
            slow_path_->change(fn);
        } catch (const std::exception& e) {
            return refused(e.what());
        }
        return {true, ""};
    };

    if (is_command(command, "add-flows") || is_command(command, "replace-flows")) {
        const bool replace = is_command(command, "replace-flows");
        const std::string file = argument_of(command, replace ? "replace-flows" : "add-flows");
        if (file.empty()) return refused(std::string(replace ? "replace-flows" : "add-flows") + ": expected a FILE");
        std::string error;
        std::optional<std::vector<Rule>> rules = parse_checked(body, ports, file, error);
        if (!rules) return refused(error);
        const uint64_t now_ms = rule_clock_ms();
        return apply([&](RuleSet& set) {
            if (replace) {
                set.replace(std::move(*rules), now_ms);
            } else {
                for (Rule& rule : *rules) set.add(std::move(rule), now_ms);
            }
        });
    }
    if (is_command(command, "add-flow") || is_command(command, "mod-flows")) {
        const bool modify = is_command(command, "mod-flows");
        const std::string name = modify ? "mod-flows" : "add-flow";
        const std::string text = argument_of(command, name);
        if (text.empty()) return refused(name + ": expected a RULE");
        Parsed<Rule> parsed = parse_rule(text, ports, SourceLocation{name, 1});
        if (!parsed) return refused(parsed.error().to_string());
        Rule rule = std::move(parsed.value());
        try {
            RuleSet::check(rule);
        } catch (const ConfigError& e) {
            return refused(e.what());
        }
        const bool any_table = modify && !names_table(text);
        const uint64_t now_ms = rule_clock_ms();
        return apply([&](RuleSet& set) {
            if (modify) {
                set.modify(rule, any_table);
            } else {
                set.add(std::move(rule), now_ms);
            }
        });
    }
    if (is_command(command, "del-flows")) {
        std::string text = argument_of(command, "del-flows");
        bool strict = false;
        if (text.starts_with("--strict")) {
            strict = true;
            text = argument_of(text, "--strict");
        }
        Parsed<MatchFilter> filter = parse_match(text, ports);
        if (!filter) {
            ParseError error = filter.error();
            if (error.file.empty()) error.file = "del-flows";
            if (!error.line) error.line = 1;
            return refused(error.to_string());
        }
        return apply([&](RuleSet& set) { set.remove(filter.value(), strict); });
    }
    if (is_command(command, "dump-cache")) {
        const std::string arg = argument_of(command, "dump-cache");
        int worker = -1;
        if (!arg.empty()) {
            char* end = nullptr;
            const long w = std::strtol(arg.c_str(), &end, 10);
            if (*end != 0 || w < 0 || static_cast<size_t>(w) >= workers_.size()) {
                return refused("dump-cache: expected a worker from 0 to " + std::to_string(workers_.size() - 1) +
                               ", found '" + arg + "'");
            }
            worker = static_cast<int>(w);
        }
        try {
            return CtlReply{true, slow_path_->dump_cache(worker)};
        } catch (const std::exception& e) {
            return refused(e.what());
        }
    }
    if (is_command(command, "ct-dump") || is_command(command, "ct-flush")) {
        const bool dump = is_command(command, "ct-dump");
        const std::vector<std::string> args = split_words(argument_of(command, dump ? "ct-dump" : "ct-flush"));
        try {
            return CtlReply{true, dump ? ct_dump_command(*conntrack_, args) : ct_flush_command(*conntrack_, args)};
        } catch (const std::exception& e) {
            return refused(e.what());
        }
    }
    if (command == "pmd-stats") return CtlReply{true, pmd_stats()};
    return std::nullopt;
}

std::string Datapath::pmd_stats() const {
    std::ostringstream out;
    const StatsSnapshot stats = snapshot();
    for (size_t w = 0; w < stats.workers.size(); ++w) {
        const StatsSnapshot::Worker& worker = stats.workers[w];
        const auto share = [&](uint64_t n) {
            char text[16];
            std::snprintf(text, sizeof text, "%.1f%%",
                          worker.packets ? 100.0 * static_cast<double>(n) / static_cast<double>(worker.packets) : 0.0);
            return std::string(text);
        };
        out << "worker " << w << " (lcore " << worker.lcore << "):\n"
            << "  packets received: " << worker.packets << "\n"
            << "  simple-match hits: " << worker.simple_hits << " (" << share(worker.simple_hits) << ")\n"
            << "  exact-cache hits: " << worker.exact_hits << " (" << share(worker.exact_hits) << ")\n"
            << "  exact cache skipped (bypassed): " << worker.exact_skipped << " (" << share(worker.exact_skipped)
            << ")\n"
            << "  megaflow hits: " << worker.cache_hits << " (" << share(worker.cache_hits) << ")\n"
            << "  misses (to the slow path): " << worker.misses << " (" << share(worker.misses) << ")\n"
            << "  recirculations: " << worker.recirculations << "\n"
            << "  lost (dropped): " << worker.lost << "\n";
        char cycles[32];
        std::snprintf(cycles, sizeof cycles, "%.1f", worker.cycles_per_packet);
        out << "  cycles per packet: " << cycles << "\n";
    }
    return out.str();
}

}  // namespace flowpath
