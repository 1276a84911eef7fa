// The TCP tracker (internal to src/conntrack): the pf-derived state machine
// and sequence-window checks of Open vSwitch's conntrack-tcp.c, reimplemented
// over TcpPeer. Each side (peer) has a state, the highest sequence it sent
// (seqlo), the highest the other side may send (seqhi: its ack plus its
// window), the largest window it announced and its window scale.
#pragma once

#include <cstdint>

#include "conn_table.hpp"

namespace flowpath {

/// A peer's state, with Open vSwitch's numbers (CT_DPIF_TCPS_*): the tracker
/// compares them (>= kTcpClosing ...), and dumps print the names.
enum TcpState : uint8_t {
    kTcpClosed = 0,
    kTcpListen,
    kTcpSynSent,
    kTcpSynRecv,
    kTcpEstablished,
    kTcpCloseWait,
    kTcpFinWait1,
    kTcpClosing,
    kTcpLastAck,
    kTcpFinWait2,
    kTcpTimeWait,
    kTcpStates
};
/// "ESTABLISHED", ... ("[N]" beyond the table, as Open vSwitch prints it).
const char* tcp_state_name(uint8_t state);

/// TCP header flags (host order, the low 12 bits of the flags word).
enum TcpFlags : uint16_t {
    kTcpFin = 0x001,
    kTcpSyn = 0x002,
    kTcpRst = 0x004,
    kTcpPsh = 0x008,
    kTcpAck = 0x010,
    kTcpUrg = 0x020,
};

/// TcpPeer::wscale: the peer announced a window scale (the shift in the low
/// bits), or the connection was picked up without a handshake (unknown).
inline constexpr uint8_t kWscaleKnown = 0x80;
inline constexpr uint8_t kWscaleUnknown = 0x40;
inline constexpr uint8_t kWscaleMask = 0x0f;
inline constexpr uint8_t kMaxWscale = 14;

/// The fields of one TCP segment the tracker reads.
struct TcpSegment {
    uint32_t seq = 0;
    uint32_t ack = 0;
    uint32_t payload = 0;   ///< bytes after the TCP header (within the IP datagram)
    uint16_t flags = 0;     ///< TcpFlags
    uint16_t window = 0;
    const uint8_t* options = nullptr;  ///< the option bytes
    uint32_t options_len = 0;
};

/// What a packet did to a connection (Open vSwitch's ct_update_res).
enum class CtUpdate : uint8_t {
    invalid,    ///< +inv
    valid,      ///< +est (+rpl from the reply side)
    reopen,     ///< a new SYN after both sides closed: the old connection goes
    valid_new,  ///< still opening: +new
};

/// The outcome of tcp_update: the verdict and, when `refresh`, the timeout
/// class the connection moves to (expiring a timeout from now).
struct TcpUpdate {
    CtUpdate result = CtUpdate::invalid;
    bool refresh = false;
    TimeoutClass timeout_class = TimeoutClass::tcp_syn_sent;
};

/// Whether a SYN (without ACK) reopens the connection: both sides closed
/// (FIN_WAIT_2 or later), so the 4-tuple is being reused.
inline bool tcp_may_reopen(const TcpPeer (&peers)[2]) {
    return peers[0].state >= kTcpFinWait2 && peers[1].state >= kTcpFinWait2;
}

/// Flag combinations no segment may carry (SYN with RST or FIN; neither SYN
/// nor ACK nor RST; FIN, PSH or URG without ACK).
bool tcp_invalid_flags(uint16_t flags);
/// May this segment open a connection? (valid flags, not SYN+ACK)
bool tcp_valid_new(const TcpSegment& segment);
/// The state of a new connection opened by `segment` (side 0 sent it).
void tcp_new(TcpPeer (&peers)[2], const TcpSegment& segment);
/// Updates the connection with a segment sent by side `reply`; the outcome
/// in `out`.
void tcp_update(TcpPeer (&peers)[2], bool reply, const TcpSegment& segment, TcpUpdate& out);
/// The same, returned. (The out-parameter form is the one compiled: a
/// 3-byte struct returned in a register was assembled from byte stores and
/// a word load that stalled on store forwarding, ~2% of a packet.)
inline TcpUpdate tcp_update(TcpPeer (&peers)[2], bool reply, const TcpSegment& segment) {
    TcpUpdate out;
    tcp_update(peers, reply, segment, out);
    return out;
}
/// The window scale option of a SYN: kWscaleKnown | shift, or 0 without one.
uint8_t tcp_window_scale(const TcpSegment& segment);

}  // namespace flowpath
