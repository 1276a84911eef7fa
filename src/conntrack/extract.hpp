// A packet's connection key, as Open vSwitch 3.1's conn_key_extract finds it
// (internal to src/conntrack): the checks that make a packet +inv before any
// lookup (not IP, an IP fragment, a bad IPv4 header or transport checksum, a
// truncated transport header, port 0, an ICMP type that is neither a query
// nor an error), the ICMP query id and types, and for an ICMP error the key
// of the connection its quoted header belongs to (reversed: the error travels
// against that header's direction).
#pragma once

#include <cstdint>

#include "conn_table.hpp"
#include "tcp.hpp"

namespace flowpath {

/// What extract_conn_key found.
struct CtParsed {
    ConnKey key;
    bool related = false;  ///< an ICMP error: `key` is the quoted connection's
    uint8_t l4_type = 0;   ///< the first transport byte (ICMP type), 0 if none
    TcpSegment tcp;        ///< nw_proto TCP and not related
};

/// The key of `packet` in `zone`; false when Open vSwitch would mark the
/// packet invalid without looking it up.
bool extract_conn_key(const CtPacket& packet, uint16_t zone, CtParsed& out);

}  // namespace flowpath
