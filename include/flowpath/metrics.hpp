// Prometheus metrics (--metrics-listen ADDR:PORT): the statistics snapshot
// in the Prometheus text format, served over HTTP at /metrics by
// prometheus-cpp's pull exposer. Never touched by the workers: each scrape
// takes a snapshot on the exposer's own thread.
#pragma once

#include <netinet/in.h>

#include <functional>
#include <memory>
#include <string>

#include "flowpath/stats.hpp"

namespace prometheus {
class Exposer;
class Collectable;
}  // namespace prometheus

namespace flowpath {

/// The Prometheus text form of `stats` (what /metrics serves): counters
/// named `flowpath_..._total`, gauges without the suffix, one label per
/// dimension (port, lcore, level, reason). docs/metrics.md lists them.
std::string metrics_text(const StatsSnapshot& stats);

/// An HTTP endpoint serving /metrics. Each scrape calls `snapshot` on one of
/// the exposer's threads (never a worker), so `snapshot` must be safe to
/// call from any thread for as long as the server lives.
class MetricsServer {
public:
    using SnapshotSource = std::function<StatsSnapshot()>;

    /// Listens on `listen` ("ADDR:PORT": an IPv4 address, 0.0.0.0 for every
    /// interface; port 0 picks a free port). Throws ConfigError prefixed by
    /// `place` (ConfigSource::place()) when the address is malformed or
    /// cannot be bound.
    MetricsServer(const std::string& listen, const std::string& place, SnapshotSource snapshot);
    ~MetricsServer();
    MetricsServer(const MetricsServer&) = delete;
    MetricsServer& operator=(const MetricsServer&) = delete;

    /// The TCP port it listens on (the one chosen when asked for port 0).
    unsigned port() const { return port_; }

private:
    std::shared_ptr<prometheus::Collectable> collectable_;
    std::unique_ptr<prometheus::Exposer> exposer_;
    in_addr listen_address_{};
    unsigned port_ = 0;
};

}  // namespace flowpath
