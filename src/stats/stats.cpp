#include "flowpath/stats.hpp"

#include <cstdio>
#include <sstream>

namespace flowpath {

const char* drop_reason_name(DropReason reason) {
    switch (reason) {
        case DropReason::tx_queue_full: return "tx_queue_full";
        case DropReason::no_match: return "no_match";
        case DropReason::no_output: return "no_output";
        case DropReason::ttl_expired: return "ttl_expired";
        case DropReason::too_deep: return "too_deep";
        case DropReason::copy_failed: return "copy_failed";
        case DropReason::bad_packet: return "bad_packet";
        case DropReason::upcall_queue_full: return "upcall_queue_full";
        case DropReason::too_big: return "too_big";
        case DropReason::split_headers: return "split_headers";
        case DropReason::count_: break;
    }
    return "unknown";
}

uint64_t WorkerCounters::lost() const {
    uint64_t total = 0;
    for (const Counter& c : drops) total += c.get();
    return total;
}

namespace {
// Port names are validated to [A-Za-z0-9_.-], so they need no escaping.
std::string quoted(const std::string& text) { return "\"" + text + "\""; }

std::string number(double value) {
    char text[32];
    std::snprintf(text, sizeof(text), "%.2f", value);
    return text;
}
}  // namespace

std::string stats_to_json(const StatsSnapshot& stats) {
    std::ostringstream out;
    out << "{\n  \"ports\": [";
    for (size_t i = 0; i < stats.ports.size(); ++i) {
        const StatsSnapshot::Port& p = stats.ports[i];
        out << (i ? ",\n    " : "\n    ") << "{\"name\": " << quoted(p.name) << ", \"rx_packets\": " << p.rx_packets
            << ", \"rx_bytes\": " << p.rx_bytes << ", \"rx_dropped\": " << p.rx_dropped
            << ", \"tx_packets\": " << p.tx_packets << ", \"tx_bytes\": " << p.tx_bytes
            << ", \"tx_dropped\": " << p.tx_dropped << "}";
    }
    out << "\n  ],\n  \"workers\": [";
    for (size_t i = 0; i < stats.workers.size(); ++i) {
        const StatsSnapshot::Worker& w = stats.workers[i];
        out << (i ? ",\n    " : "\n    ") << "{\"lcore\": " << w.lcore << ", \"packets\": " << w.packets
            << ", \"simple_hits\": " << w.simple_hits << ", \"exact_hits\": " << w.exact_hits
            << ", \"exact_skipped\": " << w.exact_skipped << ", \"cache_hits\": " << w.cache_hits
            << ", \"misses\": " << w.misses << ", \"recirculations\": " << w.recirculations << ", \"lost\": " << w.lost
            << ", \"in_flight\": " << w.in_flight
            << ", \"cycles_per_packet\": " << number(w.cycles_per_packet) << "}";
    }
    out << "\n  ],\n  \"slow_path\": {\"upcalls\": " << stats.upcalls << ", \"installed\": " << stats.installed
        << ", \"evicted\": " << stats.evicted << ", \"expired\": " << stats.expired
        << ", \"widened\": " << stats.widened
        << ", \"queue_drops\": " << stats.drops[static_cast<unsigned>(DropReason::upcall_queue_full)]
        << ", \"batches\": " << stats.batches << ", \"revalidations\": " << stats.revalidations
        << ", \"last_revalidation_ms\": " << number(stats.last_revalidation_ms)
        << "},\n  \"cache\": {\"entries\": " << stats.cache_entries
        << ", \"subtables\": " << stats.cache_subtables
        << ", \"bytes\": " << stats.cache_bytes << "},\n  \"conntrack\": {\"connections\": "
        << stats.ct_connections << ", \"created\": " << stats.ct_created << ", \"expired\": " << stats.ct_expired
        << ", \"flushed\": " << stats.ct_flushed << ", \"refused\": " << stats.ct_refused
        << ", \"invalid\": " << stats.ct_invalid << "},\n  \"drops\": {";
    for (unsigned r = 0; r < kDropReasons; ++r) {
        out << (r ? ", " : "") << quoted(drop_reason_name(static_cast<DropReason>(r))) << ": " << stats.drops[r];
    }
    out << "}\n}\n";
    return out.str();
}

std::string stats_to_text(const StatsSnapshot& stats) {
    std::ostringstream out;
    char line[256];
    std::snprintf(line, sizeof(line), "%-12s %12s %14s %10s %12s %14s %10s\n", "port", "rx_packets", "rx_bytes",
                  "rx_drop", "tx_packets", "tx_bytes", "tx_drop");
    out << line;
    for (const StatsSnapshot::Port& p : stats.ports) {
        std::snprintf(line, sizeof(line), "%-12s %12llu %14llu %10llu %12llu %14llu %10llu\n", p.name.c_str(),
                      static_cast<unsigned long long>(p.rx_packets), static_cast<unsigned long long>(p.rx_bytes),
                      static_cast<unsigned long long>(p.rx_dropped), static_cast<unsigned long long>(p.tx_packets),
                      static_cast<unsigned long long>(p.tx_bytes), static_cast<unsigned long long>(p.tx_dropped));
        out << line;
    }
    std::snprintf(line, sizeof(line), "%-12s %12s %12s %12s %12s %10s %12s\n", "worker", "packets", "exact_hits",
                  "cache_hits", "misses", "lost", "cycles/pkt");
    out << line;
    for (const StatsSnapshot::Worker& w : stats.workers) {
        std::snprintf(line, sizeof(line), "lcore %-6u %12llu %12llu %12llu %12llu %10llu %12.1f\n", w.lcore,
                      static_cast<unsigned long long>(w.packets), static_cast<unsigned long long>(w.exact_hits),
                      static_cast<unsigned long long>(w.cache_hits), static_cast<unsigned long long>(w.misses),
                      static_cast<unsigned long long>(w.lost), w.cycles_per_packet);
        out << line;
    }
    std::snprintf(line, sizeof(line),
                  "slow path: upcalls=%llu installed=%llu evicted=%llu expired=%llu batches=%llu revalidations=%llu "
                  "last_revalidation_ms=%.2f\n",
                  static_cast<unsigned long long>(stats.upcalls), static_cast<unsigned long long>(stats.installed),
                  static_cast<unsigned long long>(stats.evicted), static_cast<unsigned long long>(stats.expired),
                  static_cast<unsigned long long>(stats.batches), static_cast<unsigned long long>(stats.revalidations),
                  stats.last_revalidation_ms);
    out << line;
    std::snprintf(line, sizeof(line),
                  "conntrack: connections=%llu created=%llu expired=%llu flushed=%llu refused=%llu invalid=%llu\n",
                  static_cast<unsigned long long>(stats.ct_connections), static_cast<unsigned long long>(stats.ct_created),
                  static_cast<unsigned long long>(stats.ct_expired), static_cast<unsigned long long>(stats.ct_flushed),
                  static_cast<unsigned long long>(stats.ct_refused), static_cast<unsigned long long>(stats.ct_invalid));
    out << line;
    out << "drops:";
    for (unsigned r = 0; r < kDropReasons; ++r) {
        out << " " << drop_reason_name(static_cast<DropReason>(r)) << "=" << stats.drops[r];
    }
    out << "\n";
    return out.str();
}

}  // namespace flowpath
