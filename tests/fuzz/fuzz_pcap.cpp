// libFuzzer target for the capture-file scan that checks rx_pcap files and
// sizes the packet pool: any bytes, both modes, must end without a crash,
// and a successful count gives every packet at least one mbuf.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>

#include "flowpath/pcap_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace flowpath;
    const std::string bytes(reinterpret_cast<const char*>(data), size);
    for (const bool count : {false, true}) {
        std::istringstream in(bytes);
        const PcapScan scan = scan_pcap(in, count, 2048);
        if (scan.ok() && scan.mbufs < scan.packets) std::abort();
        if (!count && scan.packets != 0) std::abort();
    }
    return 0;
}
