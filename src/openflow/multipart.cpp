// Multipart bodies (DESC, FLOW, AGGREGATE, TABLE, PORT_STATS, PORT_DESC,
// TABLE_FEATURES), the reply writer that splits long replies, and the
// table-features properties of flowpath's tables.
#include <cstring>
#include <type_traits>

#include "flowpath/error.hpp"
#include "layout.hpp"
#include "oxm.hpp"

namespace flowpath::of {

namespace {

constexpr size_t kMultipartHeaderLen = kHeaderLen + 8;
constexpr size_t kFlowStatsFixedLen = 48;
constexpr size_t kTableFeaturesFixedLen = 64;
constexpr size_t kPortStatsLen = 112;
constexpr size_t kPortDescLen = 64;
constexpr size_t kTableStatsLen = 24;

template <typename IO>
void body(IO& io, Desc& d) {
    io.text(d.mfr_desc, 256);
    io.text(d.hw_desc, 256);
    io.text(d.sw_desc, 256);
    io.text(d.serial_num, 32);
    io.text(d.dp_desc, 256);
}

template <typename IO>
void body(IO& io, FlowStatsRequest& r) {
    io.u8(r.table_id);
    io.pad(3);
    io.u32(r.out_port);
    io.u32(r.out_group);
    io.pad(4);
    io.u64(r.cookie);
    io.u64(r.cookie_mask);
    io.match(r.match);
}

template <typename IO>
void body(IO& io, AggregateStats& a) {
    io.u64(a.packet_count);
    io.u64(a.byte_count);
    io.u32(a.flow_count);
    io.pad(4);
}

template <typename IO>
void body(IO& io, TableStats& t) {
    io.u8(t.table_id);
    io.pad(3);
    io.u32(t.active_count);
    io.u64(t.lookup_count);
    io.u64(t.matched_count);
}

template <typename IO>
void body(IO& io, PortStatsRequest& r) {
    io.u32(r.port_no);
    io.pad(4);
}

template <typename IO>
void body(IO& io, PortStats& p) {
    io.u32(p.port_no);
    io.pad(4);
    for (uint64_t* counter : {&p.rx_packets, &p.tx_packets, &p.rx_bytes, &p.tx_bytes, &p.rx_dropped,
                              &p.tx_dropped, &p.rx_errors, &p.tx_errors, &p.rx_frame_err, &p.rx_over_err,
                              &p.rx_crc_err, &p.collisions}) {
        io.u64(*counter);
    }
    io.u32(p.duration_sec);
    io.u32(p.duration_nsec);
}

template <typename IO>
void body(IO& io, PortDesc& p) {
    layout::port_desc(io, p);
}

// The entries with their own length field: the length is written as a
// placeholder and patched (Out), or was checked by the entry splitter (In).
template <typename IO>
void body(IO& io, FlowStats& f) {
    uint16_t length = 0;
    size_t start = 0;
    if constexpr (!IO::kDecoding) start = io.w.size();
    io.u16(length);
    io.u8(f.table_id);
    io.pad(1);
    io.u32(f.duration_sec);
    io.u32(f.duration_nsec);
    io.u16(f.priority);
    io.u16(f.idle_timeout);
    io.u16(f.hard_timeout);
    io.u16(f.flags);
    io.pad(4);
    io.u64(f.cookie);
    io.u64(f.packet_count);
    io.u64(f.byte_count);
    io.match(f.match);
    io.instructions(f.instructions);
    if constexpr (!IO::kDecoding) io.w.patch16(start, static_cast<uint16_t>(io.w.size() - start));
}

template <typename IO>
void body(IO& io, TableFeatures& t) {
    uint16_t length = 0;
    size_t start = 0;
    if constexpr (!IO::kDecoding) start = io.w.size();
    io.u16(length);
    io.u8(t.table_id);
    io.pad(5);
    io.text(t.name, 32);
    io.u64(t.metadata_match);
    io.u64(t.metadata_write);
    io.u32(t.config);
    io.u32(t.max_entries);
    io.rest(t.properties);
    if constexpr (IO::kDecoding) {
        // Each property: type, length (>= 4, without padding), padding to 8.
        wire::Reader props(t.properties);
        while (io.ok() && props.remaining() > 0) {
            props.u16();
            const uint16_t prop_length = props.u16();
            const size_t padded = (size_t{prop_length} + 7) / 8 * 8;
            if (!props.ok() || prop_length < 4 || padded - 4 > props.remaining()) return io.fail(err::kBadLen);
            props.skip(padded - 4);
        }
    } else {
        io.w.patch16(start, static_cast<uint16_t>(io.w.size() - start));
    }
}

template <typename B>
Decoded<B> decode_one(ByteView bytes) {
    layout::In io(bytes);
    B value;
    body(io, value);
    if (!io.ok()) return *io.r.error();
    if (io.r.remaining() != 0) return err::kBadLen;
    return value;
}

template <typename T>
struct IsVector : std::false_type {};
template <typename T>
struct IsVector<std::vector<T>> : std::true_type {};

// Entries with a length field at their start, or of a fixed size.
template <typename E>
constexpr size_t fixed_length() {
    if constexpr (std::is_same_v<E, PortStats>) return kPortStatsLen;
    if constexpr (std::is_same_v<E, PortDesc>) return kPortDescLen;
    if constexpr (std::is_same_v<E, TableStats>) return kTableStatsLen;
    return 0;
}
template <typename E>
constexpr size_t min_length() {
    if constexpr (std::is_same_v<E, FlowStats>) return kFlowStatsFixedLen;
    return kTableFeaturesFixedLen;
}

// A property of the table-features body.
void property(wire::Writer& w, uint16_t type, const Bytes& payload) {
    const size_t start = w.size();
    w.u16(type);
    w.u16(static_cast<uint16_t>(4 + payload.size()));
    w.bytes(ByteView(payload));
    w.pad_from(start);
}

}  // namespace

template <typename B>
void encode_body(const B& value, Bytes& out) {
    layout::Out io(out);
    body(io, const_cast<B&>(value));  // Out only reads
}

template <typename B>
Decoded<B> decode_body(ByteView bytes) {
    if constexpr (IsVector<B>::value) {
        using E = typename B::value_type;
        B entries;
        wire::Reader r(bytes);
        while (r.remaining() > 0) {
            size_t length = fixed_length<E>();
            if (length == 0) {
                if (r.remaining() < 2) return err::kBadLen;
                length = wire::load_be(bytes.data() + r.position(), 2);
                if (length < min_length<E>() || length % 8 != 0) return err::kBadLen;
            }
            const ByteView entry = r.take(length);
            if (!r.ok()) return err::kBadLen;
            Decoded<E> decoded = decode_one<E>(entry);
            if (!decoded.ok()) return decoded.error();
            entries.push_back(std::move(decoded.value()));
        }
        return entries;
    } else {
        return decode_one<B>(bytes);
    }
}

#define FP_OPENFLOW_BODY(B)                         \
    template void encode_body<B>(const B&, Bytes&); \
    template Decoded<B> decode_body<B>(ByteView);
FP_OPENFLOW_BODY(Desc)
FP_OPENFLOW_BODY(FlowStatsRequest)
FP_OPENFLOW_BODY(AggregateStats)
FP_OPENFLOW_BODY(PortStatsRequest)
#undef FP_OPENFLOW_BODY
#define FP_OPENFLOW_ENTRIES(E)                      \
    template void encode_body<E>(const E&, Bytes&); \
    template Decoded<std::vector<E>> decode_body<std::vector<E>>(ByteView);
FP_OPENFLOW_ENTRIES(FlowStats)
FP_OPENFLOW_ENTRIES(TableStats)
FP_OPENFLOW_ENTRIES(PortStats)
FP_OPENFLOW_ENTRIES(PortDesc)
FP_OPENFLOW_ENTRIES(TableFeatures)
#undef FP_OPENFLOW_ENTRIES

// ---- The reply writer --------------------------------------------------------

MultipartReplyWriter::MultipartReplyWriter(MultipartType type, uint32_t xid, Bytes& out)
    : type_(type), xid_(xid), out_(out) {}

void MultipartReplyWriter::start_message() {
    start_ = out_.size();
    wire::Writer w(out_);
    w.u8(kVersion);
    w.u8(static_cast<uint8_t>(MsgType::kMultipartReply));
    w.u16(0);
    w.u32(xid_);
    w.u16(static_cast<uint16_t>(type_));
    w.u16(0);
    w.zeros(4);
    open_ = true;
}

void MultipartReplyWriter::add_encoded(ByteView entry) {
    if (kMultipartHeaderLen + entry.size() > kMaxMessageLen) {
        throw Error("OpenFlow multipart entry of " + std::to_string(entry.size()) + " bytes does not fit a message");
    }
    if (open_ && out_.size() - start_ + entry.size() > kMaxMessageLen) {
        wire::Writer w(out_);
        w.patch16(start_ + 2, static_cast<uint16_t>(out_.size() - start_));
        w.patch16(start_ + kHeaderLen + 2, kMultipartMore);
        open_ = false;
    }
    if (!open_) start_message();
    out_.insert(out_.end(), entry.begin(), entry.end());
}

void MultipartReplyWriter::finish() {
    if (!open_) start_message();
    wire::Writer(out_).patch16(start_ + 2, static_cast<uint16_t>(out_.size() - start_));
    open_ = false;
}

// ---- Table features ----------------------------------------------------------

Bytes table_feature_properties(uint8_t table_id) {
    // ofp_table_feature_prop_type.
    constexpr uint16_t kInstructions = 0, kNextTables = 2, kWriteActions = 4, kApplyActions = 6, kMatch = 8,
                       kWildcards = 10, kWriteSetfield = 12, kApplySetfield = 14;
    Bytes out;
    wire::Writer w(out);
    Bytes list;
    wire::Writer l(list);

    // goto_table where a later table exists; write_metadata, apply and
    // clear actions.
    for (uint16_t type : {uint16_t{1}, uint16_t{2}, uint16_t{4}, uint16_t{5}}) {
        if (type == 1 && table_id >= kMaxTable) continue;
        l.u16(type);
        l.u16(4);
    }
    property(w, kInstructions, list);
    list.clear();
    for (unsigned t = table_id + 1u; t <= kMaxTable; ++t) l.u8(static_cast<uint8_t>(t));
    property(w, kNextTables, list);
    list.clear();
    property(w, kWriteActions, list);
    // OUTPUT, PUSH_VLAN, POP_VLAN, SET_NW_TTL, DEC_NW_TTL, SET_FIELD.
    for (uint16_t type : {0, 17, 18, 23, 24, 25}) {
        l.u16(type);
        l.u16(4);
    }
    property(w, kApplyActions, list);
    list.clear();
    // Match: every field, with the mask bit where a rule may mask it (Open
    // vSwitch's "arbitrary mask"); wildcards: every field, none required.
    Bytes settable, wildcards;
    wire::Writer s(settable), wc(wildcards);
    for (const oxm::Field& field : oxm::fields()) {
        // set_field to metadata is an action of its own (kSetMetadata), not
        // a header field's: settable all the same.
        if (field.settable || field.map == oxm::Map::kMetadata) s.u32(oxm::header(field, false));
        // packet_type and the 16-bit in_port are only accepted, never
        // needed; tcp_flags is listed as NXM.
        if (field.map == oxm::Map::kPacketType || (field.map == oxm::Map::kInPort && field.oxm_class != oxm::kBasic) ||
            field.oxm_class == oxm::kExperimenterClass) {
            continue;
        }
        l.u32(oxm::header(field, field.maskable));
        wc.u32(oxm::header(field, false));
    }
    property(w, kMatch, list);
    property(w, kWildcards, wildcards);
    property(w, kWriteSetfield, Bytes{});
    property(w, kApplySetfield, settable);
    return out;
}

}  // namespace flowpath::of
