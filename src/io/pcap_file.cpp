// Capture files read the way libpcap reads them, far enough to check them
// and to size a packet pool for them: classic pcap (either byte order,
// micro- or nanosecond) and pcapng (sections, interfaces, enhanced, simple
// and obsolete packet blocks).
#include "flowpath/pcap_file.hpp"

#include <algorithm>
#include <array>

namespace flowpath {

namespace {

constexpr uint32_t kPcapMagic = 0xa1b2c3d4;
constexpr uint32_t kPcapNanoMagic = 0xa1b23c4d;
constexpr uint32_t kPcapngByteOrder = 0x1a2b3c4d;
constexpr uint32_t kPcapngInterface = 1;
constexpr uint32_t kPcapngObsoletePacket = 2;
constexpr uint32_t kPcapngSimplePacket = 3;
constexpr uint32_t kPcapngEnhancedPacket = 6;
// libpcap refuses blocks beyond this (its initial MAX_BLOCKSIZE): no packet
// block of a readable file is larger.
constexpr uint32_t kMaxBlockLength = 16u << 20;

uint32_t swap32(uint32_t v) { return __builtin_bswap32(v); }

// Fixed-size fields of a file in its own byte order.
class Reader {
public:
    explicit Reader(std::istream& in) : in_(in) {}

    template <size_t N>
    bool read(std::array<unsigned char, N>& bytes) {
        return static_cast<bool>(in_.read(reinterpret_cast<char*>(bytes.data()), N));
    }
    // Skips `count` bytes; false when the file ends first.
    bool skip(uint64_t count) {
        while (count > 0) {
            const auto step = static_cast<std::streamsize>(std::min<uint64_t>(count, 1u << 30));
            in_.ignore(step);
            if (in_.gcount() != step) return false;
            count -= static_cast<uint64_t>(step);
        }
        return true;
    }
    void set_swapped(bool swapped) { swapped_ = swapped; }

    template <size_t N>
    uint32_t u32(const std::array<unsigned char, N>& bytes, size_t at) const {
        uint32_t v = uint32_t{bytes[at]} | uint32_t{bytes[at + 1]} << 8 | uint32_t{bytes[at + 2]} << 16 |
                     uint32_t{bytes[at + 3]} << 24;  // little-endian, then the file's order
        return swapped_ ? swap32(v) : v;
    }
    template <size_t N>
    uint32_t u16(const std::array<unsigned char, N>& bytes, size_t at) const {
        const uint32_t v = uint32_t{bytes[at]} | uint32_t{bytes[at + 1]} << 8;
        return swapped_ ? (v >> 8 | (v & 0xff) << 8) : v;
    }

private:
    std::istream& in_;
    bool swapped_ = false;  // the file is big-endian
};

// Adds one packet of `captured` bytes; false (with the error set) when the
// length cannot be right.
bool add_packet(PcapScan& scan, uint32_t captured, uint32_t data_room) {
    ++scan.packets;
    if (captured > kMaxCapturedLength) {
        scan.error = "packet " + std::to_string(scan.packets) + " claims " + std::to_string(captured) +
                     " captured bytes, beyond libpcap's limit of " + std::to_string(kMaxCapturedLength) +
                     ": the file is corrupt";
        return false;
    }
    // A packet larger than one mbuf's data room takes several segments.
    scan.mbufs += captured == 0 ? 1 : (captured + data_room - 1) / data_room;
    return true;
}

void scan_classic(Reader& reader, bool count, uint32_t data_room,
                  PcapScan& scan) {
    std::array<unsigned char, 20> rest{};
    if (!reader.read(rest)) {
        scan.error = "too short for a pcap file header (24 bytes)";
        return;
    }
    scan.link_type = reader.u32(rest, 16) & 0xffff;  // the upper bits carry FCS details
    scan.has_link_type = true;
    if (!count) return;
    std::array<unsigned char, 16> header{};
    while (reader.read(header)) {
        const uint32_t captured = reader.u32(header, 8);
        if (!add_packet(scan, captured, data_room)) return;
        if (!reader.skip(captured)) return;  // cut short: the count ends here, as libpcap's
    }
}

void scan_pcapng(Reader& reader, bool count, uint32_t data_room, PcapScan& scan) {
    scan.pcapng = true;
    // The first block's type (a section header) is read already.
    std::array<unsigned char, 8> header{0x0a, 0x0d, 0x0d, 0x0a};
    std::array<unsigned char, 4> first_length{};
    if (!reader.read(first_length)) {
        scan.error = "too short for a pcapng section header";
        return;
    }
    std::copy(first_length.begin(), first_length.end(), header.begin() + 4);
    for (uint64_t block = 1;; ++block) {
        if (block > 1 && !reader.read(header)) return;  // the end of the file (or a cut-short header)
        // A section header's type reads the same in either byte order; its
        // byte-order magic fixes the order of the section it starts.
        const bool section = header[0] == 0x0a && header[1] == 0x0d && header[2] == 0x0d && header[3] == 0x0a;
        uint32_t consumed = 0;
        if (section) {
            std::array<unsigned char, 4> order{};
            if (!reader.read(order)) {
                scan.error = "too short for a pcapng section header";
                return;
            }
            reader.set_swapped(false);
            const uint32_t magic = reader.u32(order, 0);
            if (magic != kPcapngByteOrder && magic != swap32(kPcapngByteOrder)) {
                scan.error = "pcapng section header without its byte-order magic: the file is corrupt";
                return;
            }
            reader.set_swapped(magic != kPcapngByteOrder);
            consumed = order.size();
        }
        const uint32_t type = reader.u32(header, 0);
        const uint32_t length = reader.u32(header, 4);
        if (length < 12 + consumed || length % 4 != 0 || length > kMaxBlockLength) {
            scan.error = "pcapng block " + std::to_string(block) + " has an impossible length of " +
                         std::to_string(length) + " bytes: the file is corrupt";
            return;
        }
        const uint32_t body = length - 12;  // less the header and the trailing length
        if (type == kPcapngInterface) {
            std::array<unsigned char, 8> idb{};
            if (body < idb.size() || !reader.read(idb)) return;
            consumed = idb.size();
            const uint32_t link_type = reader.u16(idb, 0);
            if (!scan.has_link_type || scan.link_type == kLinkTypeEthernet) scan.link_type = link_type;
            scan.has_link_type = true;
            if (!count) return;  // the link type is all a check needs
        } else if (count && (type == kPcapngEnhancedPacket || type == kPcapngObsoletePacket)) {
            std::array<unsigned char, 20> fixed{};
            if (body < fixed.size() || !reader.read(fixed)) return;
            consumed = fixed.size();
            const uint32_t captured = reader.u32(fixed, 12);
            if (!add_packet(scan, captured, data_room)) return;
            if (captured > body - consumed) {
                scan.error = "packet " + std::to_string(scan.packets) + " claims " + std::to_string(captured) +
                             " captured bytes in a block of " + std::to_string(length) + ": the file is corrupt";
                return;
            }
        } else if (count && type == kPcapngSimplePacket) {
            std::array<unsigned char, 4> original{};
            if (body < original.size() || !reader.read(original)) return;
            consumed = original.size();
            // The captured part is what the block holds, at most the original.
            if (!add_packet(scan, std::min(reader.u32(original, 0), body - consumed), data_room)) return;
        }
        if (!reader.skip(uint64_t{body} - consumed + 4)) return;
    }
}

}  // namespace

PcapScan scan_pcap(std::istream& in, bool count_packets, uint32_t data_room) {
    PcapScan scan;
    if (data_room == 0) data_room = 1;
    Reader reader(in);
    std::array<unsigned char, 4> magic{};
    if (!reader.read(magic)) {
        scan.error = "too short for a pcap file header (24 bytes)";
        return scan;
    }
    const uint32_t value = reader.u32(magic, 0);
    if (value == kPcapMagic || value == kPcapNanoMagic) {
        scan_classic(reader, count_packets, data_room, scan);
    } else if (swap32(value) == kPcapMagic || swap32(value) == kPcapNanoMagic) {
        reader.set_swapped(true);
        scan_classic(reader, count_packets, data_room, scan);
    } else if (magic == std::array<unsigned char, 4>{0x0a, 0x0d, 0x0d, 0x0a}) {
        scan_pcapng(reader, count_packets, data_room, scan);
    } else {
        scan.error = "not a pcap or pcapng file (it starts with neither's magic number)";
    }
    return scan;
}

std::string link_type_name(uint32_t link_type) {
    switch (link_type) {
        case 0: return "BSD loopback";
        case 1: return "Ethernet";
        case 101: return "raw IP";
        case 105: return "IEEE 802.11";
        case 113: return "Linux cooked";
        case 127: return "802.11 radiotap";
        case 228: return "raw IPv4";
        case 229: return "raw IPv6";
        case 276: return "Linux cooked v2";
    }
    return "type " + std::to_string(link_type);
}

}  // namespace flowpath
