// libFuzzer target: PACKET_OUT (actions with their length prefix, data).
#include "openflow_fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace flowpath::of;
    fuzz::message_round_trip<PacketOut>(ByteView(data, size));
    return 0;
}
