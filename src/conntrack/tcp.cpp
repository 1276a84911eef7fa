// The TCP tracker: Open vSwitch 3.1's conntrack-tcp.c behaviour (itself
// OpenBSD pf's, after Guido van Rooij's "Real Stateful TCP Packet
// Filtering"), written anew over TcpPeer. Every comparison of sequence
// numbers is modulo 2^32.
#include "tcp.hpp"

#include <algorithm>
#include <iterator>

namespace flowpath {

namespace {

constexpr bool seq_gt(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) > 0; }
constexpr bool seq_geq(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) >= 0; }

// How far an ack may trail or lead the other side's data: a maximal window
// plus a fudge factor of 1500 (pf's MAXACKWINDOW).
constexpr int32_t kMaxAckWindow = 0xffff + 1500;

constexpr uint32_t div_round_up(uint32_t value, unsigned shift) { return (value + (1u << shift) - 1) >> shift; }

constexpr const char* kStateNames[kTcpStates] = {"CLOSED",     "LISTEN",     "SYN_SENT", "SYN_RECV",
                                                 "ESTABLISHED", "CLOSE_WAIT", "FIN_WAIT_1", "CLOSING",
                                                 "LAST_ACK",   "FIN_WAIT_2", "TIME_WAIT"};

// The timeout class a connection's two peer states call for.
TimeoutClass class_of(const TcpPeer& src, const TcpPeer& dst) {
    if (src.state >= kTcpFinWait2 && dst.state >= kTcpFinWait2) return TimeoutClass::tcp_closed;
    if (src.state >= kTcpClosing && dst.state >= kTcpClosing) return TimeoutClass::tcp_fin_wait;
    if (src.state < kTcpEstablished || dst.state < kTcpEstablished) return TimeoutClass::tcp_opening;
    if (src.state >= kTcpClosing || dst.state >= kTcpClosing) return TimeoutClass::tcp_closing;
    return TimeoutClass::tcp_established;
}

// What an accepted segment teaches: the sender's largest window and highest
// sequence, and how far the receiver may now send.
void learn(TcpPeer& src, TcpPeer& dst, uint16_t win, uint32_t end, uint32_t ack, unsigned sws) {
    if (src.max_win < win) src.max_win = win;
    if (seq_gt(end, src.seqlo)) src.seqlo = end;
    const uint32_t scaled = uint32_t{win} << sws;
    if (seq_geq(ack + scaled, dst.seqhi)) dst.seqhi = ack + std::max<uint32_t>(scaled, 1);
}

}  // namespace

const char* tcp_state_name(uint8_t state) { return state < kTcpStates ? kStateNames[state] : nullptr; }

bool tcp_invalid_flags(uint16_t flags) {
    if (flags & kTcpSyn) {
        if (flags & (kTcpRst | kTcpFin)) return true;
    } else if (!(flags & (kTcpAck | kTcpRst))) {
        return true;
    }
    return !(flags & kTcpAck) && (flags & (kTcpFin | kTcpPsh | kTcpUrg));
}

bool tcp_valid_new(const TcpSegment& segment) {
    // A SYN+ACK cannot open a connection: only a SYN (a new one) or a
    // segment of one already under way (picked up mid-stream).
    return !tcp_invalid_flags(segment.flags) && (segment.flags & (kTcpSyn | kTcpAck)) != (kTcpSyn | kTcpAck);
}

uint8_t tcp_window_scale(const TcpSegment& segment) {
    // Walks the options as pf does: a 3-byte window option may end the
    // walk's room; a length below 2 counts as 2.
    const uint8_t* option = segment.options;
    int32_t left = static_cast<int32_t>(segment.options_len);
    uint8_t wscale = 0;
    while (left >= 3) {
        switch (option[0]) {
            case 0:  // end of options
                return wscale;
            case 1:  // no-op
                ++option;
                --left;
                continue;
            case 3:  // window scale
                wscale = static_cast<uint8_t>(std::min<uint8_t>(option[2], kMaxWscale) | kWscaleKnown);
                break;
            default:
                break;
        }
        const uint8_t length = std::max<uint8_t>(option[1], 2);
        left -= length;
        option += length;
    }
    return wscale;
}

void tcp_new(TcpPeer (&peers)[2], const TcpSegment& segment) {
    TcpPeer& src = peers[0];
    TcpPeer& dst = peers[1];
    src = TcpPeer{};
    dst = TcpPeer{};
    src.seqlo = segment.seq;
    src.seqhi = segment.seq + segment.payload + 1;
    if (segment.flags & kTcpSyn) {
        ++src.seqhi;
        src.wscale = tcp_window_scale(segment);
    } else {
        // Picked up mid-stream: the scales are unknown, the checks loose.
        src.wscale = kWscaleUnknown;
        dst.wscale = kWscaleUnknown;
    }
    src.max_win = std::max<uint16_t>(segment.window, 1);
    if (const unsigned shift = src.wscale & kWscaleMask) {
        src.max_win = static_cast<uint16_t>(div_round_up(src.max_win, shift));
    }
    if (segment.flags & kTcpFin) ++src.seqhi;
    dst.seqhi = 1;
    dst.max_win = 1;
    src.state = kTcpSynSent;
    dst.state = kTcpClosed;
}

void tcp_update(TcpPeer (&peers)[2], bool reply, const TcpSegment& segment, TcpUpdate& out) {
    TcpPeer& src = peers[reply ? 1 : 0];  // sent the segment
    TcpPeer& dst = peers[reply ? 0 : 1];  // receives it
    const uint16_t flags = segment.flags;
    out = TcpUpdate{};
    if (tcp_invalid_flags(flags)) return;

    if ((flags & (kTcpSyn | kTcpAck)) == kTcpSyn) {
        if (tcp_may_reopen(peers)) {
            // Both sides closed and a new SYN: the 4-tuple is reused.
            src.state = dst.state = kTcpClosed;
            out.result = CtUpdate::reopen;
            return;
        }
        if (src.state <= kTcpSynSent) {
            // A retransmitted SYN (or the first SYN from the replier of a
            // simultaneous open): still a new connection.
            src.state = kTcpSynSent;
            out = {CtUpdate::valid_new, true, TimeoutClass::tcp_syn_sent};
            return;
        }
    }

    unsigned sws = 0, dws = 0;
    if ((src.wscale & kWscaleKnown) && (dst.wscale & kWscaleKnown) && !(flags & kTcpSyn)) {
        sws = src.wscale & kWscaleMask;
        dws = dst.wscale & kWscaleMask;
    } else if ((src.wscale & kWscaleUnknown) && (dst.wscale & kWscaleUnknown) && !(flags & kTcpSyn)) {
        sws = dws = kMaxWscale;
    }

    uint32_t seq = segment.seq;
    const uint32_t orig_seq = seq;
    uint32_t ack = segment.ack;
    uint16_t win = segment.window;
    uint32_t end = seq + segment.payload + ((flags & kTcpSyn) ? 1 : 0) + ((flags & kTcpFin) ? 1 : 0);
    bool check_ackskew = true;

    if (src.state < kTcpSynSent) {
        // The first segment from this side.
        if ((flags & kTcpSyn) && (dst.wscale & kWscaleKnown)) {
            src.wscale = tcp_window_scale(segment);
            if (src.wscale & kWscaleKnown) {
                // Remove the scale from the window the SYN announced.
                sws = src.wscale & kWscaleMask;
                win = static_cast<uint16_t>(div_round_up(win, sws));
                dws = dst.wscale & kWscaleMask;
            } else {
                // No scaling after all: the other side's window is unscaled.
                dst.max_win = static_cast<uint16_t>(dst.max_win << (dst.wscale & kWscaleMask));
                dst.wscale = 0;
            }
        }
        src.seqlo = seq;
        src.state = kTcpSynSent;
        // Slide the window (seqhi may have been set on a connection picked up
        // after its establishment); be lenient with the ack then.
        const uint32_t room = std::max<uint32_t>(1, uint32_t{dst.max_win} << dws);
        if (src.seqhi == 1 || seq_geq(end + room, src.seqhi)) {
            src.seqhi = end + room;
            check_ackskew = false;
        }
        if (win > src.max_win) src.max_win = win;
    }

    if (!(flags & kTcpAck)) {
        ack = dst.seqlo;  // nothing acknowledged: pass the ack check
    } else if (ack == 0 && (flags & (kTcpAck | kTcpRst)) == (kTcpAck | kTcpRst)) {
        ack = dst.seqlo;  // stacks that reset without an ack number
    }
    if (seq == end) {
        // No data: ease the sequence checks.
        seq = src.seqlo;
        end = seq;
    }

    const int32_t ackskew = check_ackskew ? static_cast<int32_t>(dst.seqlo - ack) : 0;
    const uint32_t dst_window = uint32_t{dst.max_win} << dws;
    const bool reset_in_sequence = !(flags & kTcpRst) || orig_seq == src.seqlo || orig_seq == src.seqlo + 1 ||
                                   orig_seq + 1 == src.seqlo;
    if (seq_geq(src.seqhi, end)                          // the data ends inside the receiver's window
        && seq_geq(seq, src.seqlo - dst_window)          // a retransmission at most a window back
        && ackskew >= -kMaxAckWindow                     // acks at most a window backwards
        && ackskew <= (kMaxAckWindow << sws)             // ... and at most a window forward
        && reset_in_sequence) {                          // a RST exactly at (or one off) seqlo
        learn(src, dst, win, end, ack, sws);
        if ((flags & kTcpFin) && src.state < kTcpClosing) src.state = kTcpClosing;
        if (flags & kTcpAck) {
            if (dst.state == kTcpSynSent) dst.state = kTcpEstablished;
            else if (dst.state == kTcpClosing) dst.state = kTcpFinWait2;
        }
        if (flags & kTcpRst) src.state = dst.state = kTcpTimeWait;
        out = {CtUpdate::valid, true, class_of(src, dst)};
        return;
    }

    if ((dst.state < kTcpSynSent || dst.state >= kTcpFinWait2 || src.state >= kTcpFinWait2) &&
        seq_geq(src.seqhi + kMaxAckWindow, end) && seq_geq(seq, src.seqlo - kMaxAckWindow)) {
        // Within a window of the expected sequence but not of the strict
        // checks: SYNs shotgunned before the peer answered, a connection
        // picked up after establishment, or stray segments after a close.
        // Accepted without refreshing the timeout, so a flood of them cannot
        // keep the connection alive.
        learn(src, dst, win, end, ack, sws);
        if ((flags & kTcpFin) && src.state < kTcpClosing) src.state = kTcpClosing;
        if (flags & kTcpRst) src.state = dst.state = kTcpTimeWait;
        out.result = CtUpdate::valid;
        return;
    }
    return;  // invalid
}

}  // namespace flowpath
