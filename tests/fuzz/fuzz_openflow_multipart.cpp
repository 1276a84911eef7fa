// libFuzzer target: MULTIPART_REQUEST and MULTIPART_REPLY messages and every
// body the codec reads (flow/aggregate and port-stats requests; desc,
// aggregate, flow, table, port stats, port desc and table features replies).
#include "openflow_fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace flowpath::of;
    const ByteView bytes(data, size);
    fuzz::message_round_trip<MultipartRequest>(bytes);
    fuzz::message_round_trip<MultipartReply>(bytes);
    // The bodies on their own: the bytes after a multipart header, if any.
    const ByteView body = size > 16 ? bytes.subspan(16) : ByteView();
    fuzz::body_round_trip<FlowStatsRequest>(body);
    fuzz::body_round_trip<PortStatsRequest>(body);
    fuzz::body_round_trip<Desc>(body);
    fuzz::body_round_trip<AggregateStats>(body);
    fuzz::body_round_trip<std::vector<FlowStats>>(body);
    fuzz::body_round_trip<std::vector<TableStats>>(body);
    fuzz::body_round_trip<std::vector<PortStats>>(body);
    fuzz::body_round_trip<std::vector<PortDesc>>(body);
    fuzz::body_round_trip<std::vector<TableFeatures>>(body);
    return 0;
}
