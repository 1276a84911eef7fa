// libFuzzer target: a byte stream from a peer through one agent session
// (framing, negotiation, dispatch, every handler, flow_mods applied to a
// MemoryBackend, replies). The first byte says where the stream is cut in
// two reads. Whatever the session sends back must be whole OpenFlow 1.3
// messages that the codec reads.
#include "../../src/openflow/session.hpp"
#include "openflow_fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace flowpath;
    using namespace flowpath::of;
    if (size == 0) return 0;
    MemoryBackend backend({"p1", "p2", "p3", "p4"});
    OpenFlowOptions options;
    SessionCounters counters;
    SessionHost host{backend, options, counters, std::nullopt, [](Session&) {}};
    const Clock::time_point now{};
    Session session(host, (data[0] & 0x80) != 0, "fuzz", now);
    const ByteView stream(data + 1, size - 1);
    const size_t cut = stream.empty() ? 0 : (data[0] * 7u) % (stream.size() + 1);
    session.receive(stream.first(cut), now);
    session.receive(stream.subspan(cut), now);
    session.tick(now + std::chrono::seconds(6));
    ByteView out = session.pending();
    while (!out.empty()) {
        const std::optional<Header> h = peek_header(out);
        if (!h || h->version != kVersion || h->length < kHeaderLen || h->length > out.size()) {
            fuzz::die("the session sent a malformed message", ByteView(data, size));
        }
        out = out.subspan(h->length);
    }
    return 0;
}
