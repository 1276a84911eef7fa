// The OXM field table: every match field the codec reads and writes, where
// its value lives in flowpath's FlowKey (through the rule language's field
// table, src/rules/fields.hpp) and what a set_field to it becomes. Internal
// to src/openflow.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "../rules/fields.hpp"
#include "flowpath/openflow_codec.hpp"

namespace flowpath::of::oxm {

// OXM classes.
inline constexpr uint16_t kNxm0 = 0x0000;
inline constexpr uint16_t kNxm1 = 0x0001;
inline constexpr uint16_t kBasic = 0x8000;
inline constexpr uint16_t kExperimenterClass = 0xffff;
inline constexpr uint32_t kOnf = 0x4f4e4600;  // ONF's experimenter id (ONFOXM_ET_*)

// NXM_NX_CT_* fields of a connection's original tuple (class kNxm1), which
// only a PACKET_IN carries.
inline constexpr uint8_t kNxmCtNwProto = 119;
inline constexpr uint8_t kNxmCtNwSrc = 120;
inline constexpr uint8_t kNxmCtNwDst = 121;
inline constexpr uint8_t kNxmCtIpv6Src = 122;
inline constexpr uint8_t kNxmCtIpv6Dst = 123;
inline constexpr uint8_t kNxmCtTpSrc = 124;
inline constexpr uint8_t kNxmCtTpDst = 125;

/// How an OXM value maps onto the match.
enum class Map : uint8_t {
    kBytes,     ///< the value bytes are the FlowKey bytes at the field's offset
    kInPort,    ///< 4 bytes, network order on the wire, host order in the key
    kNumber,    ///< an integer written into the field's slot bits (fields.hpp)
    kMetadata,  ///< OxmMatch::metadata
    kPacketType,  ///< OpenFlow 1.5 packet_type: only Ethernet, matches every packet
};

/// One OXM field.
struct Field {
    const char* name;        ///< OpenFlow's name, for messages
    uint16_t oxm_class;
    uint8_t field;
    uint8_t length;          ///< value bytes (without mask and experimenter id)
    uint32_t experimenter;   ///< class kExperimenterClass only
    rules::Fid fid;          ///< the flowpath field (unused for kMetadata)
    Map map;
    rules::Prereq prereq;    ///< what OpenFlow needs in the match
    bool maskable;
    bool settable;
    SetField set;            ///< what set_field to it writes (when settable)
};

/// The table, in no particular order.
std::span<const Field> fields();

/// The field with this header, or null.
const Field* find(uint16_t oxm_class, uint8_t field, uint32_t experimenter);
/// The field set_field writes `target` through (the OpenFlow field where
/// one exists), or null for kNwTtl (OFPAT_SET_NW_TTL) and others without.
const Field* find_set(SetField target);

/// The 32-bit OXM header: class, field, has-mask bit, payload length.
uint32_t header(const Field& field, bool masked);

/// Decodes a set_field action's single OXM (`bytes` is exactly the OXM TLV
/// with its padding) into a kSetField action.
Decoded<Action> decode_set_field(ByteView bytes);
/// Appends the OXM TLV (no padding) of a kSetField action.
void encode_set_field(const Action& action, Bytes& out);

}  // namespace flowpath::of::oxm
