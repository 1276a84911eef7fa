// libFuzzer target: every other message the codec reads, each tried on the
// same bytes: HELLO (version bitmaps), ERROR, ECHO, FEATURES, the switch
// configuration, async configuration, roles, TABLE_MOD, queue config, and
// the switch's own PACKET_IN, FLOW_REMOVED and PORT_STATUS.
#include "openflow_fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace flowpath::of;
    const ByteView bytes(data, size);
    (void)peek_header(bytes);
    fuzz::message_round_trip<Hello>(bytes);
    fuzz::message_round_trip<ErrorMsg>(bytes);
    fuzz::message_round_trip<EchoRequest>(bytes);
    fuzz::message_round_trip<EchoReply>(bytes);
    fuzz::message_round_trip<FeaturesRequest>(bytes);
    fuzz::message_round_trip<FeaturesReply>(bytes);
    fuzz::message_round_trip<GetConfigRequest>(bytes);
    fuzz::message_round_trip<GetConfigReply>(bytes);
    fuzz::message_round_trip<SetConfig>(bytes);
    fuzz::message_round_trip<GetAsyncRequest>(bytes);
    fuzz::message_round_trip<GetAsyncReply>(bytes);
    fuzz::message_round_trip<SetAsync>(bytes);
    fuzz::message_round_trip<RoleRequest>(bytes);
    fuzz::message_round_trip<RoleReply>(bytes);
    fuzz::message_round_trip<BarrierRequest>(bytes);
    fuzz::message_round_trip<BarrierReply>(bytes);
    fuzz::message_round_trip<TableMod>(bytes);
    fuzz::message_round_trip<QueueGetConfigRequest>(bytes);
    fuzz::message_round_trip<QueueGetConfigReply>(bytes);
    fuzz::message_round_trip<PacketIn>(bytes);
    fuzz::message_round_trip<FlowRemoved>(bytes);
    fuzz::message_round_trip<PortStatus>(bytes);
    return 0;
}
