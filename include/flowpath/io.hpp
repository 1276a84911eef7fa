// DPDK resources, each owned by one RAII object: the EAL, the packet pool and
// the ports. Built and torn down by the main thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "flowpath/config.hpp"

struct rte_mempool;

namespace flowpath {

/// The lcores the process runs on: the main lcore (management) and one per
/// worker, as the EAL `-l`/`--lcores` argument names them.
struct LcorePlan {
    unsigned main_lcore = 0;
    std::vector<unsigned> worker_lcores;
};

/// CPUs this process may run on, ascending.
std::vector<unsigned> allowed_cpus();

/// Picks the main lcore (the lowest lcore that runs no worker). Unless --eal
/// maps lcores itself, lcores map onto `cpus`: throws ConfigError (naming
/// where --pmd-cores was given) when no lcore is left for the main thread or
/// when there are more workers than CPUs.
LcorePlan plan_lcores(const Config& config, const std::vector<unsigned>& cpus = allowed_cpus());

/// The EAL argument vector (argv[0] included): --eal's words, or the built-in
/// default; an lcore list covering `plan` is added when they have none.
std::vector<std::string> eal_arguments(const Config& config, const LcorePlan& plan);

/// Splits an --eal string into words (shell-like: quotes group words).
std::vector<std::string> split_words(const std::string& text);

/// Checks every file and name the run will use, before anything is opened or
/// probed (the pcap driver creates tx_pcap files when it probes): the rules
/// file, each pcap port's rx_pcap (there, readable, a pcap or pcapng file of
/// Ethernet frames) and tx_pcap, --stats-json, --ctl-socket (free, or a stale
/// socket), and that no output is another output or an input, and no device
/// is named by two ports. Throws ConfigError naming the place and the reason.
void check_before_start(const Config& config);

/// The DPDK Environment Abstraction Layer, initialised for the process's
/// lifetime. Only one may exist.
class Eal {
public:
    /// Starts the EAL; a failure is a ConfigError prefixed with `place`
    /// (where --eal was given).
    explicit Eal(const std::vector<std::string>& args, const std::string& place = "command line: ");
    ~Eal();
    Eal(const Eal&) = delete;
    Eal& operator=(const Eal&) = delete;
};

/// A pool of packet buffers (mbufs) shared by every port and worker. Each
/// holds `frame_room` bytes after the headroom: by default frame_room(the
/// largest MTU) keeps every frame within its MTU in one buffer (as Open
/// vSwitch-DPDK sizes its mbufs from the MTU); a smaller --mbuf-size makes
/// longer frames arrive as chains (docs/architecture.md, MTU).
class PacketPool {
public:
    PacketPool(const std::string& name, unsigned count, uint32_t frame_room, int socket);
    ~PacketPool();
    PacketPool(const PacketPool&) = delete;
    PacketPool& operator=(const PacketPool&) = delete;

    rte_mempool* get() const { return pool_; }
    unsigned size() const { return count_; }

private:
    rte_mempool* pool_ = nullptr;
    unsigned count_ = 0;
};

/// Descriptor ring sizes asked of every queue (the device may adjust them).
inline constexpr uint16_t kRxDescriptors = 1024;
inline constexpr uint16_t kTxDescriptors = 1024;

/// One ethdev port from its devargs: probed on construction, then configured
/// with queues, started, and on destruction stopped, closed and removed.
class Port {
public:
    /// Probes the device. Throws ConfigError naming the port's config place.
    Port(const PortConfig& config, unsigned index);
    ~Port();
    Port(const Port&) = delete;
    Port& operator=(const Port&) = delete;

    /// Decides queue counts: `want_rxq` rx and `want_txq` tx queues, fewer
    /// where the device allows fewer (logged).
    void plan_queues(uint16_t want_rxq, uint16_t want_txq);

    /// Mbufs this port can hold: its descriptors, plus a pcap file held whole
    /// by `infinite_rx=1`. Throws ConfigError for a corrupt file, or one with
    /// a frame longer than `frame_room` (net_pcap cannot chain those then).
    unsigned mbufs_needed(uint32_t frame_room) const;

    /// Configures the device and its queues (symmetric RSS when several rx
    /// queues: see symmetric_rss_key) with its port MTU (PortConfig::mtu),
    /// rx buffers of `data_room` bytes from `pool` (rx scatter when a frame
    /// of the MTU is longer) and, when `chains` (some port may receive
    /// chained frames), multi-segment tx. Throws ConfigError when the
    /// device cannot take that MTU (naming the range it can) or the chains.
    void configure(rte_mempool* pool, uint32_t data_room, bool chains);
    void start();
    /// Stops the device; idempotent. Called before close so tx files flush.
    void stop();

    const std::string& name() const { return config_.name; }
    const PortConfig& config() const { return config_; }
    uint16_t id() const { return port_id_; }
    /// OpenFlow port number (1-based declaration order).
    unsigned of_port() const { return index_ + 1; }
    uint16_t rx_queues() const { return rxq_; }
    /// Whether the device spreads its rx queues by symmetric RSS.
    bool symmetric_rss() const { return rss_; }
    uint16_t tx_queues() const { return txq_; }

    /// Packets the device dropped or failed to receive (imissed, ierrors,
    /// rx_nombuf).
    uint64_t device_rx_dropped() const;

private:
    PortConfig config_;
    unsigned index_;
    std::string device_name_;
    uint16_t port_id_ = 0;
    uint16_t rxq_ = 1;
    uint16_t txq_ = 1;
    uint16_t rx_desc_ = kRxDescriptors;
    uint16_t tx_desc_ = kTxDescriptors;
    bool started_ = false;
    bool configured_ = false;
    bool rss_ = false;

    void spread_reta();
};

/// Bytes of an RSS key when the device does not say (Toeplitz, 40).
inline constexpr size_t kSymmetricRssKeyLength = 40;
/// Fills `key` with a symmetric Toeplitz key: a packet from A to B and one
/// from B to A (addresses and ports swapped) hash alike, on every port that
/// uses it.
void symmetric_rss_key(uint8_t* key, size_t length);

}  // namespace flowpath
