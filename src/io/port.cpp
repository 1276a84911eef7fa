// Ports: probe from devargs, queue plan, configuration, start and stop.
#include <rte_dev.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include <algorithm>
#include <fstream>

#include "devargs.hpp"
#include "flowpath/error.hpp"
#include "flowpath/io.hpp"
#include "flowpath/log.hpp"
#include "flowpath/mtu.hpp"
#include "flowpath/pcap_file.hpp"

namespace flowpath {

namespace {
// The largest MTU the device takes, judged as rte_eth_dev_configure does:
// its max_mtu, and its longest frame less its per-frame overhead (header and
// CRC unless the device states a larger one).
uint32_t device_max_mtu(const rte_eth_dev_info& info) {
    uint32_t overhead = RTE_ETHER_HDR_LEN + RTE_ETHER_CRC_LEN;
    if (info.max_mtu != UINT16_MAX && info.max_rx_pktlen > info.max_mtu) overhead = info.max_rx_pktlen - info.max_mtu;
    const uint32_t by_length = info.max_rx_pktlen > overhead ? info.max_rx_pktlen - overhead : 0;
    return std::min<uint32_t>(info.max_mtu, by_length);
}

std::string link_text(uint16_t port_id) {
    rte_eth_link link{};
    if (rte_eth_link_get_nowait(port_id, &link) != 0) return "unknown";
    if (link.link_status != RTE_ETH_LINK_UP) return "down";
    return "up " + std::to_string(link.link_speed) + " Mbps " +
           (link.link_duplex == RTE_ETH_LINK_FULL_DUPLEX ? "full-duplex" : "half-duplex");
}
}  // namespace

void symmetric_rss_key(uint8_t* key, size_t length) {
    // The Toeplitz hash of (src, dst, sport, dport) equals that of (dst,
    // src, dport, sport) when the key repeats with a 16-bit period: the
    // swapped fields then meet the same key bits (Woo and Park, "Scalable
    // TCP Session Monitoring with Symmetric Receive-side Scaling", 2012).
    for (size_t i = 0; i < length; ++i) key[i] = i % 2 ? 0x5a : 0x6d;
}

Port::Port(const PortConfig& config, unsigned index) : config_(config), index_(index) {
    device_name_ = devargs_device(config.devargs);
    // No two ports name one device (checked before start), so a device that
    // exists already was made by the EAL: a --vdev, or a bus scan (a PCI
    // port). It is used as it is; arguments given here could not apply.
    if (rte_eth_dev_get_port_by_name(device_name_.c_str(), &port_id_) == 0) {
        if (device_name_ != config.devargs) {
            throw ConfigError(config.source.place() + "port " + config.name + ": device '" + device_name_ +
                              "' was already created by the EAL (--eal's --vdev, or its bus scan), so the "
                              "arguments '" + config.devargs.substr(device_name_.size() + 1) +
                              "' cannot apply: name the device alone, or give them in one place");
        }
        log(LogLevel::info, "port ", config.name, " (OpenFlow ", of_port(), "): ", device_name_,
            " as the EAL created it, dpdk port ", port_id_);
        return;
    }
    const int rc = rte_dev_probe(config.devargs.c_str());
    if (rc < 0) {
        throw ConfigError(config.source.place() + "port " + config.name + ": device '" + config.devargs +
                          "' failed to probe: " + rte_strerror(-rc) + " (the driver's message above says why)");
    }
    if (rte_eth_dev_get_port_by_name(device_name_.c_str(), &port_id_) != 0) {
        throw ConfigError(config.source.place() + "port " + config.name + ": device '" + device_name_ +
                          "' probed but is not an ethernet port");
    }
    log(LogLevel::info, "port ", config.name, " (OpenFlow ", of_port(), "): ", config.devargs, ", dpdk port ",
        port_id_);
}

Port::~Port() {
    stop();
    // Closing releases the port; rte_eal_cleanup() then removes the device.
    if (configured_) rte_eth_dev_close(port_id_);
}

void Port::plan_queues(uint16_t want_rxq, uint16_t want_txq) {
    rte_eth_dev_info info{};
    const int rc = rte_eth_dev_info_get(port_id_, &info);
    if (rc != 0) {
        throw ConfigError(config_.source.place() + "port " + name() + ": cannot read device info: " +
                          rte_strerror(-rc));
    }
    rxq_ = std::max<uint16_t>(1, std::min(want_rxq, info.max_rx_queues));
    txq_ = std::max<uint16_t>(1, std::min(want_txq, info.max_tx_queues));
    if (rxq_ < want_rxq) log(LogLevel::info, "port ", name(), ": device offers ", rxq_, " rx queues of ", want_rxq, " wanted");
    if (txq_ < want_txq) {
        log(LogLevel::info, "port ", name(), ": device offers ", txq_, " tx queues of ", want_txq,
            " wanted; workers share them under a lock");
    }
    rx_desc_ = kRxDescriptors;
    tx_desc_ = kTxDescriptors;
    if (rte_eth_dev_adjust_nb_rx_tx_desc(port_id_, &rx_desc_, &tx_desc_) != 0) {
        rx_desc_ = kRxDescriptors;
        tx_desc_ = kTxDescriptors;
    }
}

unsigned Port::mbufs_needed(uint32_t frame_room) const {
    uint64_t mbufs = uint64_t{rxq_} * rx_desc_ + uint64_t{txq_} * tx_desc_;
    bool infinite = false;
    std::vector<std::string> rx_files;
    for (const auto& [key, value] : devargs_pairs(config_.devargs)) {
        if (key == "infinite_rx" && value == "1") infinite = true;
        if (key == "rx_pcap") rx_files.push_back(value);
    }
    if (infinite) {
        for (const std::string& file : rx_files) {
            std::ifstream in(file, std::ios::binary);
            const PcapScan scan = scan_pcap(in, true, frame_room);
            if (!scan.ok()) {
                throw ConfigError(config_.source.place() + "port " + name() + ": rx_pcap " + file + ": " + scan.error);
            }
            // net_pcap preloads the file whole and cannot chain a frame then.
            if (scan.mbufs > scan.packets) {
                throw ConfigError(config_.source.place() + "port " + name() + ": rx_pcap " + file +
                                  " has frames longer than the packet buffers (" + std::to_string(frame_room) +
                                  " bytes), and net_pcap cannot read them into chains with infinite_rx=1: "
                                  "raise --mbuf-size (or --mtu), or leave infinite_rx out");
            }
            mbufs += scan.mbufs;
        }
    }
    return static_cast<unsigned>(std::min<uint64_t>(mbufs, 1u << 26));
}

void Port::configure(rte_mempool* pool, uint32_t data_room, bool chains) {
    rte_eth_dev_info info{};
    rte_eth_dev_info_get(port_id_, &info);
    const std::string where = config_.source.place() + "port " + name() + ": ";
    const uint32_t mtu = config_.mtu;
    const uint32_t max_mtu = device_max_mtu(info);
    if (mtu < info.min_mtu || mtu > max_mtu) {
        throw ConfigError(config_.mtu_source.place() + "port " + name() + ": device '" + device_name_ +
                          "' takes an MTU of " + std::to_string(info.min_mtu) + " to " + std::to_string(max_mtu) +
                          ", not " + std::to_string(mtu) + " (--mtu)");
    }
    rte_eth_conf conf{};
    conf.rxmode.mtu = mtu;
    // A frame longer than a buffer arrives as a chain: rx scatter where the
    // device offers it; net_pcap chains such frames by itself. Any other
    // device could not receive them.
    const bool scatter = max_frame_length(mtu) + kMtuCrc > data_room;
    if (scatter && (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_SCATTER)) {
        conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_SCATTER;
    } else if (scatter && !sends_and_receives_chains(device_name_)) {
        throw ConfigError(where + "device '" + device_name_ + "' cannot receive a frame of MTU " +
                          std::to_string(mtu) + " (" + std::to_string(max_frame_length(mtu)) +
                          " bytes) into buffers of " + std::to_string(data_room) +
                          " bytes: it has no rx scatter; raise --mbuf-size or leave it out");
    }
    // Chains received on any port may leave by this one.
    if (chains && (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MULTI_SEGS)) {
        conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
    } else if (chains && !sends_and_receives_chains(device_name_)) {
        throw ConfigError(where + "device '" + device_name_ + "' cannot send chained frames (no multi-segment " +
                          "tx), and buffers of " + std::to_string(data_room) +
                          " bytes (--mbuf-size) chain the longest frames: raise --mbuf-size or leave it out");
    }
    if (conf.rxmode.offloads || conf.txmode.offloads) {
        log(LogLevel::info, "port ", name(), ": chained frames:", scatter ? " rx scatter" : "",
            chains ? " multi-segment tx" : "");
    }
    // Symmetric RSS: the same symmetric Toeplitz key on every port, so that
    // both directions of a connection hash alike and, with queue q of every
    // port polled by worker q (the Datapath), reach the one worker whose
    // conntrack shard owns the connection (conntrack.hpp, ownership).
    std::vector<uint8_t> key(info.hash_key_size ? info.hash_key_size : kSymmetricRssKeyLength);
    if (rxq_ > 1 && info.flow_type_rss_offloads != 0) {
        symmetric_rss_key(key.data(), key.size());
        conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
        conf.rx_adv_conf.rss_conf.rss_key = key.data();
        conf.rx_adv_conf.rss_conf.rss_key_len = static_cast<uint8_t>(key.size());
        conf.rx_adv_conf.rss_conf.rss_hf =
            info.flow_type_rss_offloads & (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP | RTE_ETH_RSS_SCTP);
        rss_ = true;
    } else if (rxq_ > 1) {
        log(LogLevel::info, "port ", name(), ": device has no RSS; each rx queue is fed by the device itself");
    }
    int rc = rte_eth_dev_configure(port_id_, rxq_, txq_, &conf);
    if (rc != 0) throw ConfigError(where + "configure failed: " + rte_strerror(-rc));
    configured_ = true;
    const int socket = rte_eth_dev_socket_id(port_id_);
    for (uint16_t q = 0; q < rxq_; ++q) {
        rc = rte_eth_rx_queue_setup(port_id_, q, rx_desc_, socket < 0 ? SOCKET_ID_ANY : socket, nullptr, pool);
        if (rc != 0) throw ConfigError(where + "rx queue " + std::to_string(q) + " setup failed: " + rte_strerror(-rc));
    }
    for (uint16_t q = 0; q < txq_; ++q) {
        rc = rte_eth_tx_queue_setup(port_id_, q, tx_desc_, socket < 0 ? SOCKET_ID_ANY : socket, nullptr);
        if (rc != 0) throw ConfigError(where + "tx queue " + std::to_string(q) + " setup failed: " + rte_strerror(-rc));
    }
}

void Port::start() {
    const int rc = rte_eth_dev_start(port_id_);
    if (rc != 0) {
        throw ConfigError(config_.source.place() + "port " + name() + ": start failed: " + rte_strerror(-rc));
    }
    started_ = true;
    rte_eth_promiscuous_enable(port_id_);  // a switch port takes every frame; some devices refuse, harmlessly
    if (rss_) spread_reta();
    uint16_t mtu = 0;
    rte_eth_dev_get_mtu(port_id_, &mtu);
    log(LogLevel::info, "port ", name(), ": started, ", rxq_, " rx / ", txq_, " tx queues, MTU ", mtu, ", link ",
        link_text(port_id_));
}

// The redirection table as every device of a kind fills it by default,
// entry i to queue i % rxq, written out so that ports of different devices
// with the same queue count map a hash to the same queue too. A device that
// cannot be told keeps its own (logged).
void Port::spread_reta() {
    rte_eth_dev_info info{};
    if (rte_eth_dev_info_get(port_id_, &info) != 0 || info.reta_size == 0) return;
    std::vector<rte_eth_rss_reta_entry64> reta((info.reta_size + RTE_ETH_RETA_GROUP_SIZE - 1) / RTE_ETH_RETA_GROUP_SIZE);
    for (uint16_t i = 0; i < info.reta_size; ++i) {
        rte_eth_rss_reta_entry64& group = reta[i / RTE_ETH_RETA_GROUP_SIZE];
        group.mask |= uint64_t{1} << (i % RTE_ETH_RETA_GROUP_SIZE);
        group.reta[i % RTE_ETH_RETA_GROUP_SIZE] = static_cast<uint16_t>(i % rxq_);
    }
    const int rc = rte_eth_dev_rss_reta_update(port_id_, reta.data(), info.reta_size);
    if (rc != 0) {
        log(LogLevel::info, "port ", name(), ": keeps the device's RSS redirection table (", rte_strerror(-rc), ")");
    }
}

void Port::stop() {
    if (!started_) return;
    started_ = false;
    const int rc = rte_eth_dev_stop(port_id_);
    if (rc != 0) log(LogLevel::warn, "port ", name(), ": stop failed: ", rte_strerror(-rc));
}

uint64_t Port::device_rx_dropped() const {
    rte_eth_stats stats{};
    if (rte_eth_stats_get(port_id_, &stats) != 0) return 0;
    return stats.imissed + stats.ierrors + stats.rx_nombuf;
}

}  // namespace flowpath
