// Prometheus metrics: the text form of a snapshot, and the HTTP endpoint.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "flowpath/error.hpp"
#include "flowpath/metrics.hpp"

namespace flowpath {
namespace {

StatsSnapshot sample_stats() {
    StatsSnapshot stats;
    stats.ports.push_back({"p0", 10, 1000, 1, 0, 0, 0});
    stats.ports.push_back({"p1", 0, 0, 0, 9, 900, 2});
    stats.workers.push_back({1, 10, 6, 3, 1, 4, 123.5});
    stats.workers.push_back({3, 20, 2, 4, 14, 0, 0});
    stats.drops[static_cast<unsigned>(DropReason::too_big)] = 3;
    stats.drops[static_cast<unsigned>(DropReason::no_match)] = 1;
    stats.upcalls = 5;
    stats.installed = 4;
    stats.evicted = 2;
    stats.expired = 6;
    stats.widened = 9;
    stats.batches = 8;
    stats.revalidations = 1;
    stats.last_revalidation_ms = 2.5;
    stats.cache_entries = 7;
    stats.cache_subtables = 2;
    stats.cache_bytes = 4096;
    stats.ct_connections = 11;
    stats.ct_created = 12;
    stats.ct_expired = 1;
    stats.ct_flushed = 2;
    stats.ct_refused = 3;
    stats.ct_invalid = 4;
    return stats;
}

bool has_line(const std::string& text, const std::string& line) {
    return text.find("\n" + line + "\n") != std::string::npos || text.starts_with(line + "\n");
}

TEST(Metrics, EveryStatisticUnderItsPrometheusName) {
    const std::string text = metrics_text(sample_stats());
    for (const char* line : {
             "flowpath_port_rx_packets_total{port=\"p0\"} 10",
             "flowpath_port_rx_bytes_total{port=\"p0\"} 1000",
             "flowpath_port_rx_dropped_total{port=\"p0\"} 1",
             "flowpath_port_tx_packets_total{port=\"p1\"} 9",
             "flowpath_port_tx_bytes_total{port=\"p1\"} 900",
             "flowpath_port_tx_dropped_total{port=\"p1\"} 2",
             "flowpath_worker_packets_total{lcore=\"1\"} 10",
             "flowpath_worker_packets_total{lcore=\"3\"} 20",
             "flowpath_cache_hits_total{lcore=\"1\",level=\"exact\"} 6",
             "flowpath_cache_hits_total{lcore=\"1\",level=\"megaflow\"} 3",
             "flowpath_misses_total{lcore=\"3\"} 14",
             "flowpath_worker_lost_total{lcore=\"1\"} 4",
             "flowpath_worker_cycles_per_packet{lcore=\"1\"} 123.5",
             "flowpath_drops_total{reason=\"too_big\"} 3",
             "flowpath_drops_total{reason=\"no_match\"} 1",
             "flowpath_drops_total{reason=\"bad_packet\"} 0",
             "flowpath_slow_path_upcalls_total 5",
             "flowpath_slow_path_installed_total 4",
             "flowpath_slow_path_evicted_total 2",
             "flowpath_slow_path_widened_total 9",
             "flowpath_slow_path_expired_total 6",
             "flowpath_slow_path_batches_total 8",
             "flowpath_slow_path_revalidations_total 1",
             "flowpath_slow_path_last_revalidation_seconds 0.0025",
             "flowpath_cache_entries 7",
             "flowpath_cache_subtables 2",
             "flowpath_cache_bytes 4096",
             "flowpath_conntrack_connections 11",
             "flowpath_conntrack_created_total 12",
             "flowpath_conntrack_expired_total 1",
             "flowpath_conntrack_flushed_total 2",
             "flowpath_conntrack_refused_total 3",
             "flowpath_conntrack_invalid_total 4",
             "# TYPE flowpath_port_rx_packets_total counter",
             "# TYPE flowpath_worker_cycles_per_packet gauge",
             "# TYPE flowpath_cache_entries gauge",
         }) {
        EXPECT_TRUE(has_line(text, line)) << "missing: " << line << "\nin:\n" << text;
    }
}

TEST(Metrics, EveryDropReasonIsListed) {
    const std::string text = metrics_text(StatsSnapshot{});
    for (unsigned r = 0; r < kDropReasons; ++r) {
        const std::string line =
            std::string("flowpath_drops_total{reason=\"") + drop_reason_name(static_cast<DropReason>(r)) + "\"} 0";
        EXPECT_TRUE(has_line(text, line)) << line;
    }
}

TEST(Metrics, LargeCountersKeepEveryDigit) {
    StatsSnapshot stats;
    stats.ports.push_back({"p0", 123456789012345ull, 0, 0, 0, 0, 0});
    EXPECT_TRUE(has_line(metrics_text(stats), "flowpath_port_rx_packets_total{port=\"p0\"} 123456789012345"));
}

// One HTTP GET on 127.0.0.1:port; the whole response.
std::string http_get(unsigned port, const std::string& path) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::string response;
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
        const std::string request = "GET " + path + " HTTP/1.0\r\nHost: localhost\r\n\r\n";
        if (write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
            char buffer[4096];
            ssize_t n;
            while ((n = read(fd, buffer, sizeof(buffer))) > 0) response.append(buffer, static_cast<size_t>(n));
        }
    }
    close(fd);
    return response;
}

TEST(Metrics, EachScrapeTakesAFreshSnapshot) {
    std::atomic<uint64_t> packets{0};
    MetricsServer server("127.0.0.1:0", "test: ", [&packets] {
        StatsSnapshot stats;
        stats.ports.push_back({"p0", ++packets, 0, 0, 0, 0, 0});
        return stats;
    });
    ASSERT_NE(server.port(), 0u);
    const std::string first = http_get(server.port(), "/metrics");
    EXPECT_NE(first.find("200 OK"), std::string::npos) << first;
    EXPECT_NE(first.find("\nflowpath_port_rx_packets_total{port=\"p0\"} 1\n"), std::string::npos) << first;
    const std::string second = http_get(server.port(), "/metrics");
    EXPECT_NE(second.find("\nflowpath_port_rx_packets_total{port=\"p0\"} 2\n"), std::string::npos) << second;
    EXPECT_EQ(packets.load(), 2u);
}

// civetweb's listener polls for 2 s between looks at its stop flag; the
// server must not make a clean stop wait for that.
TEST(Metrics, StopsWithoutWaitingForTheListenersPoll) {
    auto server = std::make_unique<MetricsServer>("127.0.0.1:0", "", [] { return StatsSnapshot{}; });
    ASSERT_NE(http_get(server->port(), "/metrics").find("200 OK"), std::string::npos);
    const auto start = std::chrono::steady_clock::now();
    server.reset();
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1000));
}

TEST(Metrics, BadOrBusyAddressIsAConfigError) {
    EXPECT_THROW(MetricsServer("localhost:9100", "", [] { return StatsSnapshot{}; }), ConfigError);
    EXPECT_THROW(MetricsServer("127.0.0.1", "", [] { return StatsSnapshot{}; }), ConfigError);
    EXPECT_THROW(MetricsServer("127.0.0.1:65536", "", [] { return StatsSnapshot{}; }), ConfigError);
    EXPECT_THROW(MetricsServer("[::1]:9100", "", [] { return StatsSnapshot{}; }), ConfigError);
    MetricsServer first("127.0.0.1:0", "", [] { return StatsSnapshot{}; });
    try {
        MetricsServer second("127.0.0.1:" + std::to_string(first.port()), "file.conf:3: ",
                             [] { return StatsSnapshot{}; });
        FAIL() << "a second server bound the same port";
    } catch (const ConfigError& e) {
        EXPECT_TRUE(std::string(e.what()).starts_with("file.conf:3: metrics-listen: cannot listen")) << e.what();
    }
}

}  // namespace
}  // namespace flowpath
