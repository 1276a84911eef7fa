// Reading a port's devargs string ("net_pcap0,rx_pcap=a.pcap,infinite_rx=1"),
// shared by the start-up checks and the ports.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace flowpath {

/// The device name: the devargs up to the first comma.
inline std::string devargs_device(const std::string& devargs) { return devargs.substr(0, devargs.find(',')); }

/// The key=value arguments after the device name, in order.
inline std::vector<std::pair<std::string, std::string>> devargs_pairs(const std::string& devargs) {
    std::vector<std::pair<std::string, std::string>> pairs;
    size_t start = devargs.find(',');
    while (start != std::string::npos) {
        const size_t end = devargs.find(',', start + 1);
        const std::string item = devargs.substr(start + 1, end == std::string::npos ? end : end - start - 1);
        const size_t eq = item.find('=');
        if (eq != std::string::npos) pairs.emplace_back(item.substr(0, eq), item.substr(eq + 1));
        start = end;
    }
    return pairs;
}

/// Whether the device is DPDK's pcap driver (net_pcap, alias eth_pcap), whose
/// rx_pcap and tx_pcap arguments name files.
inline bool is_pcap_device(const std::string& device) {
    return device.starts_with("net_pcap") || device.starts_with("eth_pcap");
}

/// Whether the device takes and sends mbuf chains without offering rx
/// scatter or multi-segment tx (DPDK 22.11 states neither for them):
/// net_pcap reads a frame longer than a buffer into a chain and writes a
/// chain whole (rte_pktmbuf_read), net_null frees what it is given.
inline bool sends_and_receives_chains(const std::string& device) {
    return is_pcap_device(device) || device.starts_with("net_null") || device.starts_with("eth_null");
}

}  // namespace flowpath
