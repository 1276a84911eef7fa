// What flowpath must know of a capture file before DPDK's pcap driver opens
// it: that it is a pcap or pcapng file, of Ethernet frames, and how many
// mbufs its packets fill (a net_pcap port with infinite_rx=1 holds the whole
// file). DPDK-free, so that the fuzz build links it.
#pragma once

#include <cstdint>
#include <istream>
#include <string>

namespace flowpath {

/// LINKTYPE_ETHERNET: the only link type flowpath reads.
inline constexpr uint32_t kLinkTypeEthernet = 1;

/// Largest captured length libpcap accepts (its MAXIMUM_SNAPLEN): a larger
/// one is a corrupt file.
inline constexpr uint32_t kMaxCapturedLength = 262144;

/// A capture file, as far as it was read.
struct PcapScan {
    std::string error;        ///< empty, or why the file is unusable
    bool pcapng = false;
    /// The file's link type; for pcapng the first interface's that is not
    /// Ethernet, else Ethernet. Valid when has_link_type (a pcapng file
    /// may have no interface before its end).
    uint32_t link_type = 0;
    bool has_link_type = false;
    uint64_t packets = 0;     ///< packets counted (only when asked)
    uint64_t mbufs = 0;       ///< mbufs of `data_room` bytes they fill

    bool ok() const { return error.empty(); }
};

/// Reads a pcap or pcapng stream: its header (and, for pcapng, up to its
/// first interface) or, with `count_packets`, every packet. A length field
/// that cannot be right (a packet beyond kMaxCapturedLength or beyond its
/// block) is an error; a file cut short ends the count where it ends, as
/// libpcap does.
PcapScan scan_pcap(std::istream& in, bool count_packets, uint32_t data_room);

/// "Ethernet", "raw IP", "Linux cooked", ... or "type N".
std::string link_type_name(uint32_t link_type);

}  // namespace flowpath
