// The MTU (--mtu): which frames a port takes and how large a packet buffer
// must be to hold one. DPDK-free, so the unit tests check it without an EAL.
#pragma once

#include <cstdint>

namespace flowpath {

/// Ethernet header: two MACs and the ethertype.
inline constexpr uint32_t kMtuEthernetHeader = 14;
/// One 802.1Q or 802.1ad tag.
inline constexpr uint32_t kMtuVlanTag = 4;
/// VLAN tags a frame may carry on top of the MTU (as many as the flow key
/// holds: a QinQ frame of a full MTU still fits).
inline constexpr uint32_t kMtuVlanTags = 2;
/// The frame check sequence some devices write into the buffer.
inline constexpr uint32_t kMtuCrc = 4;
/// Packet buffers' data room is a multiple of this: NICs size their rx
/// buffers in kilobytes and round a buffer down.
inline constexpr uint32_t kMtuRoomAlign = 1024;
/// The smallest data room (DPDK's default, RTE_MBUF_DEFAULT_DATAROOM).
inline constexpr uint32_t kMtuMinRoom = 2048;

/// The longest frame a port takes under `mtu`: header, two tags, payload.
constexpr uint32_t max_frame_length(uint32_t mtu) {
    return mtu + kMtuEthernetHeader + kMtuVlanTags * kMtuVlanTag;
}

/// Bytes of data room (headroom excluded) that hold a whole frame of `mtu`
/// in one buffer, with room for a device that writes the CRC: a frame
/// within the MTU is never chained.
constexpr uint32_t frame_room(uint32_t mtu) {
    const uint32_t need = max_frame_length(mtu) + kMtuCrc;
    const uint32_t aligned = (need + kMtuRoomAlign - 1) / kMtuRoomAlign * kMtuRoomAlign;
    return aligned < kMtuMinRoom ? kMtuMinRoom : aligned;
}

/// Whether a received frame's L2 payload (the bytes after the Ethernet
/// header and up to two VLAN tags, 802.1Q or 802.1ad) is larger than `mtu`.
/// `frame_len` is the whole frame's length, `data`/`available` its first
/// contiguous bytes. The tags are read only for a frame longer than
/// mtu + 14 bytes, so the common case touches no packet byte.
inline bool exceeds_mtu(const uint8_t* data, uint32_t available, uint32_t frame_len, uint32_t mtu) {
    if (frame_len <= mtu + kMtuEthernetHeader) return false;
    if (frame_len > max_frame_length(mtu)) return true;
    uint32_t header = kMtuEthernetHeader;
    for (uint32_t tag = 0; tag < kMtuVlanTags; ++tag) {
        const uint32_t tpid_at = 12 + tag * kMtuVlanTag;
        if (tpid_at + 2 > available) break;
        const uint32_t tpid = uint32_t{data[tpid_at]} << 8 | data[tpid_at + 1];
        if (tpid != 0x8100 && tpid != 0x88a8) break;
        header += kMtuVlanTag;
    }
    return frame_len - header > mtu;
}

}  // namespace flowpath
