// Counters: each written by exactly one thread (its owner) and read by the
// management thread, plus the statistics snapshot and its JSON form.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace flowpath {

/// A counter with one writer. The owner adds with a plain load and store (no
/// locked instruction); readers on other threads see a recent value.
class Counter {
public:
    void add(uint64_t n) { value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
    void set(uint64_t n) { value_.store(n, std::memory_order_relaxed); }
    uint64_t get() const { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<uint64_t> value_{0};
};

/// Why a packet was dropped. Every drop is counted under one reason.
enum class DropReason : unsigned {
    tx_queue_full,  ///< the tx queue stayed full through the retries
    no_match,       ///< no rule matched in table 0 or in a goto_table target
    no_output,      ///< the matching rules output nowhere (drop, empty actions)
    ttl_expired,    ///< dec_ttl on TTL 0 or 1 before any output
    too_deep,       ///< resubmits nested too deep or looped
    copy_failed,    ///< no mbuf for the copy that a second output needs
    bad_packet,     ///< the packet could not be edited (a VLAN push without headroom)
    upcall_queue_full,  ///< a miss found its worker's ring to the slow path full
    too_big,        ///< the frame is larger than the MTU allows
    split_headers,  ///< a chained frame's headers run past its first segment, which cannot hold them all
    count_
};
inline constexpr unsigned kDropReasons = static_cast<unsigned>(DropReason::count_);

/// The JSON name of a drop reason.
const char* drop_reason_name(DropReason reason);

/// One worker's counters for one port.
struct PortCounters {
    Counter rx_packets, rx_bytes;
    Counter tx_packets, tx_bytes, tx_dropped;
};

/// Everything one worker counts. Owned and written by that worker only;
/// cache-line aligned so workers never share a line.
struct alignas(64) WorkerCounters {
    explicit WorkerCounters(size_t ports) : per_port(ports) {}

    Counter packets;      ///< packets received
    Counter simple_hits;  ///< simple-match hits (before the exact cache)
    Counter exact_hits;   ///< exact-match cache hits
    Counter exact_skipped;  ///< packets that went past the exact cache unprobed (bypassed: docs/cache.md)
    Counter cache_hits;   ///< megaflow cache hits
    Counter misses;       ///< packets no cache of the worker answered (sent to the slow path)
    Counter recirculations;  ///< passes after the first (ct(table=T)): hits and misses count passes
    Counter cache_entries;    ///< megaflows in the worker's cache now
    Counter cache_subtables;  ///< distinct megaflow masks now
    Counter cache_bytes;      ///< memory the megaflow cache holds
    Counter busy_cycles;  ///< TSC cycles spent in rounds that received packets
    Counter in_flight;    ///< packets buffered, not yet sent or dropped
    Counter drops[kDropReasons];
    std::vector<PortCounters> per_port;

    uint64_t lost() const;
};

/// A point-in-time copy of every statistic, in the contract's shape.
struct StatsSnapshot {
    struct Port {
        std::string name;
        uint64_t rx_packets = 0, rx_bytes = 0, rx_dropped = 0;
        uint64_t tx_packets = 0, tx_bytes = 0, tx_dropped = 0;
    };
    struct Worker {
        unsigned lcore = 0;
        uint64_t packets = 0, exact_hits = 0, cache_hits = 0, misses = 0, lost = 0;
        double cycles_per_packet = 0;
        uint64_t recirculations = 0;
        uint64_t in_flight = 0;  ///< received (or copied) and not yet sent or dropped
        uint64_t simple_hits = 0;  ///< answered by the simple-match tier (docs/cache.md)
        uint64_t exact_skipped = 0;  ///< went past the exact cache unprobed while it was bypassed
    };
    std::vector<Port> ports;
    std::vector<Worker> workers;
    uint64_t drops[kDropReasons] = {};
    uint64_t upcalls = 0, installed = 0, evicted = 0, expired = 0, batches = 0, revalidations = 0;
    uint64_t widened = 0;  ///< megaflows installed under a wider mask than their translation (mask limit)
    double last_revalidation_ms = 0;
    uint64_t cache_entries = 0, cache_subtables = 0, cache_bytes = 0;
    uint64_t ct_connections = 0, ct_created = 0, ct_expired = 0, ct_flushed = 0, ct_refused = 0, ct_invalid = 0;
};

/// The statistics object of interface.md (plus a "drops" object by reason).
std::string stats_to_json(const StatsSnapshot& stats);

/// A human-readable table (flowpath-ctl show, and the end of a run).
std::string stats_to_text(const StatsSnapshot& stats);

}  // namespace flowpath
