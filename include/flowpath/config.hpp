// The process configuration: every option of interface.md, from the command
// line and an INI file (Boost.Program_options), validated with the place each
// value came from so that errors name the user's file and line.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "flowpath/log.hpp"

namespace flowpath {

/// The per-worker cache sizes' defaults and bounds (docs/cache.md): the
/// exact cache as Open vSwitch's EMC; the signature cache for 1M flows
/// (8 MiB). The upper bounds keep one worker's caches under ~0.5 GiB each.
inline constexpr uint32_t kDefaultExactCacheEntries = 8192;
inline constexpr uint32_t kMaxExactCacheEntries = 1u << 22;
inline constexpr uint32_t kDefaultSignatureCacheEntries = 1u << 20;
inline constexpr uint32_t kMaxSignatureCacheEntries = 1u << 26;

/// Where a value was given: a config file and line, or the command line
/// (empty file).
struct ConfigSource {
    std::string file;
    unsigned line = 0;

    /// "FILE:LINE: " or "command line: ", ready to prefix a message.
    std::string place() const;
};

/// One `--port NAME=DEVARGS`.
struct PortConfig {
    std::string name;
    std::string devargs;
    ConfigSource source;
    uint32_t mtu = 1500;      ///< its MTU: `--mtu NAME=N`, else `--mtu N`
    ConfigSource mtu_source;  ///< where that MTU was given
};

/// The validated configuration. Zero or empty means "not given" where the
/// contract has a computed default.
struct Config {
    std::string config_file;
    std::string eal_args;          ///< empty: the built-in default
    std::vector<PortConfig> ports; ///< in declaration order: port i is OpenFlow port i+1
    std::string rules_file;        ///< empty or "-": no rules
    std::vector<unsigned> pmd_cores;  ///< lcores of the workers, ascending
    unsigned rxq = 0;                 ///< 0: one per worker
    unsigned mbufs = 0;               ///< 0: sized from ports, queues and descriptors
    unsigned exit_when_idle_ms = 0;   ///< 0: off
    double duration_s = 0;            ///< 0: off
    std::string stats_json;
    std::string ctl_socket = "/tmp/flowpath.ctl";
    LogLevel log_level = LogLevel::info;

    // Slow path and caches (docs/slowpath.md).
    std::vector<unsigned> slow_path_cores;  ///< CPUs of the slow-path threads; empty: the main lcore's
    uint32_t flow_limit = 200000;           ///< megaflows per worker
    uint32_t max_idle_ms = 10000;           ///< a megaflow unused this long expires
    /// Per worker: exact-match cache entries (rounded up to a power of two)
    /// and signature cache entries (0: none); docs/cache.md.
    uint32_t exact_cache_entries = kDefaultExactCacheEntries;
    uint32_t signature_cache_entries = kDefaultSignatureCacheEntries;
    uint32_t tx_flush_interval_us = 0;      ///< longest wait in a tx buffer; 0: every poll round

    // Operations.
    uint32_t mtu = 1500;                    ///< largest L2 payload forwarded (`--mtu N`; ports' own in PortConfig)
    uint32_t mbuf_size = 0;                 ///< packet bytes per mbuf; 0: a whole frame of the largest MTU
    std::string metrics_listen;             ///< ADDR:PORT for Prometheus; empty: off
    ConfigSource metrics_listen_source;     ///< where metrics_listen was given

    // OpenFlow agent.
    std::vector<std::string> controllers;   ///< each "tcp:IP:PORT"
    std::string openflow_listen;            ///< "ptcp:PORT[:IP]"; empty: off
    std::optional<uint64_t> datapath_id;    ///< empty: derived from the first port

    // Connection tracking: 0 / absent means Open vSwitch's default.
    uint32_t ct_max_connections = 0;
    /// Timeouts in seconds by class name as given ("tcp-established", ...):
    /// only the classes the user set.
    std::vector<std::pair<std::string, uint32_t>> ct_timeouts;

    /// Where each option that was given came from (the value in force), by
    /// option name ("eal", "pmd-cores", ...).
    std::map<std::string, ConfigSource> sources;

    /// "FILE:LINE: " of `option`'s value, or "command line: " when it came
    /// from there or was not given: the prefix of a message about it.
    std::string place(const std::string& option) const;
};

/// The connection-tracking timeout classes `--ct-timeout-CLASS` accepts
/// (Open vSwitch's names).
inline constexpr const char* kCtTimeoutClasses[] = {
    "tcp-syn-sent", "tcp-established", "tcp-fin-wait", "tcp-time-wait", "tcp-close", "udp-first",
    "udp-single",   "udp-multiple",    "icmp-first",   "icmp-reply",    "other-first", "other-multiple"};

/// What the command line asked for.
struct ParsedCommandLine {
    Config config;
    bool help = false;  ///< --help: print `usage` and exit 0
    std::string usage;
};

/// The default worker when --pmd-cores is not given.
inline constexpr unsigned kDefaultPmdCore = 1;

/// Parses argv and the --config file. Throws ConfigError naming the file and
/// line (or "command line") and the reason.
ParsedCommandLine parse_command_line(int argc, const char* const argv[]);

/// Parses an lcore list ("1", "1-3", "1,3"); false when malformed.
bool parse_lcore_list(const std::string& text, std::vector<unsigned>& lcores);

}  // namespace flowpath
