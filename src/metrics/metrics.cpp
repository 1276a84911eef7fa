// Prometheus metrics: the snapshot as metric families, and the pull exposer
// (prometheus-cpp over civetweb) that serves them.
#include "flowpath/metrics.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <prometheus/collectable.h>
#include <prometheus/exposer.h>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <thread>

#include "flowpath/error.hpp"
#include "flowpath/log.hpp"

namespace flowpath {

namespace {

namespace pm = prometheus;
using Labels = std::vector<pm::ClientMetric::Label>;

pm::MetricFamily counter(const char* name, const char* help) { return {name, help, pm::MetricType::Counter, {}}; }
pm::MetricFamily gauge(const char* name, const char* help) { return {name, help, pm::MetricType::Gauge, {}}; }

void add(pm::MetricFamily& family, double value, Labels labels = {}) {
    pm::ClientMetric metric;
    metric.label = std::move(labels);
    if (family.type == pm::MetricType::Counter) {
        metric.counter.value = value;
    } else {
        metric.gauge.value = value;
    }
    family.metric.push_back(std::move(metric));
}

double value(uint64_t n) { return static_cast<double>(n); }

struct PortMetric {
    const char* name;
    const char* help;
    uint64_t StatsSnapshot::Port::*field;
};
constexpr PortMetric kPortMetrics[] = {
    {"flowpath_port_rx_packets_total", "Packets received on the port.", &StatsSnapshot::Port::rx_packets},
    {"flowpath_port_rx_bytes_total", "Bytes received on the port.", &StatsSnapshot::Port::rx_bytes},
    {"flowpath_port_rx_dropped_total", "Packets the device dropped or failed to receive (missed, errors, no mbuf).",
     &StatsSnapshot::Port::rx_dropped},
    {"flowpath_port_tx_packets_total", "Packets sent on the port.", &StatsSnapshot::Port::tx_packets},
    {"flowpath_port_tx_bytes_total", "Bytes sent on the port.", &StatsSnapshot::Port::tx_bytes},
    {"flowpath_port_tx_dropped_total", "Packets the port's tx queue did not take.", &StatsSnapshot::Port::tx_dropped},
};

std::vector<pm::MetricFamily> metric_families(const StatsSnapshot& stats) {
    std::vector<pm::MetricFamily> families;
    for (const PortMetric& m : kPortMetrics) {
        pm::MetricFamily family = counter(m.name, m.help);
        for (const StatsSnapshot::Port& port : stats.ports) add(family, value(port.*m.field), {{"port", port.name}});
        families.push_back(std::move(family));
    }

    pm::MetricFamily packets = counter("flowpath_worker_packets_total", "Packets the worker received.");
    pm::MetricFamily hits = counter("flowpath_cache_hits_total",
                                    "Packets answered by the worker's exact-match or megaflow cache.");
    pm::MetricFamily skipped = counter("flowpath_exact_cache_skipped_total",
                                       "Packets that went past the exact-match cache unprobed while it was bypassed.");
    pm::MetricFamily misses = counter("flowpath_misses_total", "Packets no cache of the worker answered (sent to the slow path).");
    pm::MetricFamily lost = counter("flowpath_worker_lost_total", "Packets the worker dropped, for any reason.");
    pm::MetricFamily cycles = gauge("flowpath_worker_cycles_per_packet",
                                    "TSC cycles per packet in the worker's busy rounds, since start.");
    for (const StatsSnapshot::Worker& w : stats.workers) {
        const std::string lcore = std::to_string(w.lcore);
        add(packets, value(w.packets), {{"lcore", lcore}});
        add(hits, value(w.simple_hits), {{"lcore", lcore}, {"level", "simple"}});
        add(hits, value(w.exact_hits), {{"lcore", lcore}, {"level", "exact"}});
        add(hits, value(w.cache_hits), {{"lcore", lcore}, {"level", "megaflow"}});
        add(skipped, value(w.exact_skipped), {{"lcore", lcore}});
        add(misses, value(w.misses), {{"lcore", lcore}});
        add(lost, value(w.lost), {{"lcore", lcore}});
        add(cycles, w.cycles_per_packet, {{"lcore", lcore}});
    }
    for (pm::MetricFamily* family : {&packets, &hits, &skipped, &misses, &lost, &cycles}) {
        families.push_back(std::move(*family));
    }

    pm::MetricFamily drops = counter("flowpath_drops_total", "Packets dropped, by reason.");
    for (unsigned r = 0; r < kDropReasons; ++r) {
        add(drops, value(stats.drops[r]), {{"reason", drop_reason_name(static_cast<DropReason>(r))}});
    }
    families.push_back(std::move(drops));

    const auto single = [&families](pm::MetricFamily family, uint64_t n) {
        add(family, value(n));
        families.push_back(std::move(family));
    };
    single(counter("flowpath_slow_path_upcalls_total", "Packets the slow path answered."), stats.upcalls);
    single(counter("flowpath_slow_path_installed_total", "Megaflows installed."), stats.installed);
    single(counter("flowpath_slow_path_evicted_total", "Megaflows evicted by the flow limit."), stats.evicted);
    single(counter("flowpath_slow_path_widened_total",
                   "Megaflows installed under a wider mask than translated (mask limit)."),
           stats.widened);
    single(counter("flowpath_slow_path_expired_total", "Megaflows expired unused (max-idle)."), stats.expired);
    single(counter("flowpath_slow_path_batches_total", "Upcall batches the slow path handled."), stats.batches);
    single(counter("flowpath_slow_path_revalidations_total", "Revalidations after rule changes."),
           stats.revalidations);
    pm::MetricFamily revalidation =
        gauge("flowpath_slow_path_last_revalidation_seconds", "How long the last revalidation took.");
    add(revalidation, stats.last_revalidation_ms / 1000.0);
    families.push_back(std::move(revalidation));
    single(gauge("flowpath_cache_entries", "Megaflows in the workers' caches."), stats.cache_entries);
    single(gauge("flowpath_cache_subtables", "Distinct megaflow masks, summed over workers."), stats.cache_subtables);
    single(gauge("flowpath_cache_bytes", "Memory the megaflow caches hold."), stats.cache_bytes);
    single(gauge("flowpath_conntrack_connections", "Tracked connections."), stats.ct_connections);
    single(counter("flowpath_conntrack_created_total", "Connections committed."), stats.ct_created);
    single(counter("flowpath_conntrack_expired_total", "Connections expired."), stats.ct_expired);
    single(counter("flowpath_conntrack_flushed_total", "Connections removed by ct-flush."), stats.ct_flushed);
    single(counter("flowpath_conntrack_refused_total", "Commits refused: ct-max-connections or a full table."),
           stats.ct_refused);
    single(counter("flowpath_conntrack_invalid_total", "Packets a ct action found invalid (+inv)."),
           stats.ct_invalid);
    return families;
}

// What the exposer collects on each scrape: a fresh snapshot.
class SnapshotCollectable final : public pm::Collectable {
public:
    explicit SnapshotCollectable(MetricsServer::SnapshotSource source) : source_(std::move(source)) {}

    std::vector<pm::MetricFamily> Collect() const override {
        try {
            return metric_families(source_());
        } catch (const std::exception& e) {  // never let it unwind into civetweb's thread
            log(LogLevel::warn, "metrics: cannot take a snapshot: ", e.what());
            return {};
        }
    }

private:
    MetricsServer::SnapshotSource source_;
};

// Checks "ADDR:PORT" (IPv4 address, numeric port); throws ConfigError
// otherwise. IPv4 only: Debian's civetweb, prometheus-cpp's HTTP server, is
// built without IPv6.
in_addr check_listen_address(const std::string& listen, const std::string& where) {
    const size_t colon = listen.rfind(':');
    const std::string address = colon == std::string::npos ? "" : listen.substr(0, colon);
    const std::string port = colon == std::string::npos ? "" : listen.substr(colon + 1);
    const auto bad = [&](const std::string& why) {
        return ConfigError(where + "metrics-listen: " + why + ", found '" + listen + "'");
    };
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
        std::stoul(port) > 65535) {
        throw bad("expected ADDR:PORT with a port 0-65535");
    }
    in_addr ipv4{};
    if (inet_pton(AF_INET, address.c_str(), &ipv4) != 1) {
        throw bad("expected an IPv4 address before the port (0.0.0.0 for every interface; the HTTP server has no "
                  "IPv6)");
    }
    return ipv4;
}

}  // namespace

std::string metrics_text(const StatsSnapshot& stats) { return pm::TextSerializer().Serialize(metric_families(stats)); }

MetricsServer::MetricsServer(const std::string& listen, const std::string& place, SnapshotSource snapshot)
    : collectable_(std::make_shared<SnapshotCollectable>(std::move(snapshot))) {
    listen_address_ = check_listen_address(listen, place);
    try {
        // Two threads: a scrape never waits behind another; a client that
        // stalls is cut off after the request timeout.
        exposer_ = std::make_unique<pm::Exposer>(
            std::vector<std::string>{"listening_ports", listen, "num_threads", "2", "request_timeout_ms", "5000"});
    } catch (const std::exception&) {
        throw ConfigError(place + "metrics-listen: cannot listen on " + listen + " (address in use or not local?)");
    }
    exposer_->RegisterCollectable(collectable_);
    const std::vector<int> bound = exposer_->GetListeningPorts();
    port_ = bound.empty() ? 0 : static_cast<unsigned>(bound.front());
    log(LogLevel::info, "metrics: serving Prometheus metrics at http://", listen.substr(0, listen.rfind(':')), ":",
        port_, "/metrics");
}

namespace {
// Opens and closes one TCP connection to `address`:`port` (blocking, local).
void knock(in_addr address, unsigned port) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return;
    sockaddr_in peer{};
    peer.sin_family = AF_INET;
    peer.sin_port = htons(static_cast<uint16_t>(port));
    peer.sin_addr = address;
    connect(fd, reinterpret_cast<const sockaddr*>(&peer), sizeof(peer));
    close(fd);
}
}  // namespace

MetricsServer::~MetricsServer() {
    // civetweb's listening thread polls with a 2 s timeout and sees the stop
    // flag only between polls, which would hold up every clean stop by up to
    // 2 s. A connection wakes it at once: knock until the exposer is gone.
    in_addr address = listen_address_;
    if (address.s_addr == htonl(INADDR_ANY)) address.s_addr = htonl(INADDR_LOOPBACK);
    std::atomic<bool> gone{false};
    std::thread knocker([&] {
        while (!gone.load()) {
            knock(address, port_);
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
    });
    exposer_.reset();
    gone.store(true);
    knocker.join();
}

}  // namespace flowpath
