"""Minimal pcap reading and writing for the differential test.

Only frames matter here (timestamps are wall-clock and differ between runs),
so the reader returns bytes and the writer stamps frames with a counter.
Both classic byte orders and the nanosecond variant are read, since DPDK's
net_pcap writes nanosecond files and Open vSwitch writes microsecond ones.
"""

import struct

_MAGICS = {
    b"\xd4\xc3\xb2\xa1": "<",  # little-endian, microseconds
    b"\xa1\xb2\xc3\xd4": ">",  # big-endian, microseconds
    b"\x4d\x3c\xb2\xa1": "<",  # little-endian, nanoseconds
    b"\xa1\xb2\x3c\x4d": ">",  # big-endian, nanoseconds
}
LINKTYPE_ETHERNET = 1


class PcapError(Exception):
    """A pcap file that cannot be read; the message names the file."""


def parse_pcap(data, name="<pcap>"):
    """Frames of a pcap held in `data`. A record cut short at the end (a
    writer still busy) is an error, so callers never see half a frame."""
    if len(data) < 24:
        raise PcapError(f"{name}: {len(data)} bytes, shorter than a pcap header")
    endian = _MAGICS.get(data[:4])
    if endian is None:
        raise PcapError(f"{name}: not a pcap file (magic {data[:4].hex()})")
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    if linktype != LINKTYPE_ETHERNET:
        raise PcapError(f"{name}: link type {linktype}, expected Ethernet")
    frames = []
    offset = 24
    while offset < len(data):
        if offset + 16 > len(data):
            raise PcapError(f"{name}: record header cut short at offset {offset}")
        _, _, caplen, _ = struct.unpack(endian + "IIII", data[offset:offset + 16])
        offset += 16
        if offset + caplen > len(data):
            raise PcapError(f"{name}: frame cut short at offset {offset}")
        frames.append(bytes(data[offset:offset + caplen]))
        offset += caplen
    return frames


def read_pcap(path):
    """Frames (bytes) of the pcap file at `path`, in file order."""
    with open(path, "rb") as f:
        return parse_pcap(f.read(), str(path))


def pcap_bytes(frames):
    """A whole little-endian microsecond pcap file holding `frames`."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, LINKTYPE_ETHERNET)]
    for i, frame in enumerate(frames):
        # One microsecond apart, so tools that sort by time keep file order.
        out.append(struct.pack("<IIII", 1, i, len(frame), len(frame)))
        out.append(bytes(frame))
    return b"".join(out)


def write_pcap(path, frames):
    """Write `frames` to a new pcap file at `path`."""
    with open(path, "wb") as f:
        f.write(pcap_bytes(frames))
