#!/usr/bin/python3
"""End-to-end tests of --mtu: jumbo frames cross flowpath byte for byte when
the MTU allows them (plain, copied to two ports, sent back by in_port, and
through a VLAN push), and frames above the MTU are dropped and counted as
too_big, whatever their size.

Usage: mtu_test.py BUILD_DIR
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fptest import Flowpath, TestRun, read_pcap, workdir, write_pcap  # noqa: E402

BUILD = os.path.abspath(sys.argv[1])
WORK = workdir("flowpath_mtu_")
SIZES = [60, 1514, 1518, 4000, 9000]
VLAN_TAG = bytes.fromhex("8100000a")  # what mod_vlan_vid:10 pushes: TPID 0x8100, VID 10


def path(name):
    return os.path.join(WORK, name)


def udp_frame(size, tags=(), seq=0):
    """An IPv4/UDP frame of exactly `size` bytes (VLAN tags `tags` after the
    MACs), its payload counting bytes so that a misplaced one shows."""
    from scapy.all import Dot1AD, Dot1Q, Ether, IP, UDP, Raw  # noqa: imported late: slow
    pkt = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    for i, tag in enumerate(tags):
        pkt = pkt / (Dot1AD(vlan=tag) if i == 0 and len(tags) > 1 else Dot1Q(vlan=tag))
    pkt = pkt / IP(src="10.0.0.1", dst=f"10.0.1.{seq % 250 + 1}") / UDP(sport=1000 + seq, dport=2000)
    room = size - len(pkt)
    assert room >= 0, f"{size} bytes cannot hold the headers"
    raw = bytes(pkt / Raw(bytes(i % 251 for i in range(room))))
    assert len(raw) == size
    return raw


def stats_of(fp, outputs):
    """The run's statistics, checked to balance: every packet received left
    by each of its `outputs` or was dropped once."""
    stats = fp.stats()
    rx = sum(p["rx_packets"] for p in stats["ports"])
    tx = sum(p["tx_packets"] for p in stats["ports"])
    drops = sum(stats["drops"].values())
    assert tx == (rx - drops) * outputs, f"counters do not add up: rx {rx}, tx {tx}, drops {drops}"
    return stats


def run(name, frames, rules, args, tx_ports=("p1",)):
    """Runs flowpath with p0 reading `frames` and each of `tx_ports` writing
    a pcap (p0 too); returns (outputs by port name, stats)."""
    write_pcap(path(f"{name}.in.pcap"), frames)
    with open(path(f"{name}.rules"), "w") as f:
        f.write(rules + "\n")
    ports = ["--port", f"p0=net_pcap0,rx_pcap={path(name + '.in.pcap')},tx_pcap={path(name + '.p0.pcap')}"]
    for i, port in enumerate(tx_ports, start=1):
        if port != "p0":
            ports += ["--port", f"{port}=net_pcap{i},tx_pcap={path(name + '.' + port + '.pcap')}"]
    fp = Flowpath(BUILD, WORK, ports + ["--rules", path(f"{name}.rules"), "--exit-when-idle", "300"] + args,
                  name=name)
    assert fp.run() == 0, fp.stderr
    outputs = {port: read_pcap(path(f"{name}.{port}.pcap")) for port in set(tx_ports) | {"p0"}}
    return outputs, stats_of(fp, len(tx_ports))


def assert_same(got, want, what):
    assert len(got) == len(want), f"{what}: {len(got)} frames out of {len(want)} ({[len(f) for f in got]})"
    for sent, out in zip(want, got):
        assert sent == out, f"{what}: the {len(sent)}-byte frame differs ({len(out)} bytes came out)"


def pushed(frame):
    return frame[:12] + VLAN_TAG + frame[12:]


def test_jumbo_frames_cross_with_mtu_9000():
    frames = [udp_frame(size, seq=i) for i, size in enumerate(SIZES)]
    out, stats = run("plain", frames, "in_port=p0 actions=output:p1", ["--mtu", "9000"])
    assert_same(out["p1"], frames, "p0 -> p1")
    assert out["p0"] == []
    assert stats["ports"][1]["tx_bytes"] == sum(SIZES)
    assert stats["drops"]["too_big"] == 0 and stats["drops"]["bad_packet"] == 0, stats["drops"]


def test_jumbo_frames_copied_to_two_ports():
    frames = [udp_frame(size, seq=i) for i, size in enumerate(SIZES)]
    out, stats = run("copy", frames, "in_port=p0 actions=output:p1,output:p2", ["--mtu", "9000"],
                     tx_ports=("p1", "p2"))
    assert_same(out["p1"], frames, "copy on p1")
    assert_same(out["p2"], frames, "frame on p2")
    assert sum(stats["drops"].values()) == 0, stats["drops"]


def test_jumbo_frames_back_through_in_port():
    frames = [udp_frame(size, seq=i) for i, size in enumerate(SIZES)]
    out, stats = run("back", frames, "actions=in_port", ["--mtu", "9000"], tx_ports=("p0",))
    assert_same(out["p0"], frames, "p0 -> p0")
    assert sum(stats["drops"].values()) == 0, stats["drops"]


def test_jumbo_frames_through_vlan_push():
    frames = [udp_frame(size, seq=i) for i, size in enumerate(SIZES)]
    out, stats = run("push", frames, "in_port=p0 actions=mod_vlan_vid:10,output:p1", ["--mtu", "9000"])
    assert_same(out["p1"], [pushed(f) for f in frames], "VLAN push")
    assert stats["ports"][1]["tx_bytes"] == sum(SIZES) + 4 * len(SIZES)
    assert sum(stats["drops"].values()) == 0, stats["drops"]


def test_default_mtu_drops_what_exceeds_1500():
    # 1518 bytes untagged is 1504 bytes of payload; with a tag it is 1500.
    frames = [udp_frame(size, seq=i) for i, size in enumerate(SIZES)] + [udp_frame(1518, tags=(7,), seq=9)]
    out, stats = run("default", frames, "in_port=p0 actions=output:p1", [])
    assert_same(out["p1"], [frames[0], frames[1], frames[5]], "MTU 1500")
    assert stats["drops"]["too_big"] == 3, stats["drops"]
    assert stats["drops"]["bad_packet"] == 0, stats["drops"]
    assert stats["ports"][0]["rx_packets"] == len(frames)


def test_push_may_grow_a_full_frame_past_1514_bytes():
    # The tag is not payload: a 1514-byte frame leaves as 1518 bytes.
    frames = [udp_frame(size, seq=i) for i, size in enumerate(SIZES)]
    out, stats = run("push1500", frames, "in_port=p0 actions=mod_vlan_vid:10,output:p1", ["--mtu", "1500"])
    assert_same(out["p1"], [pushed(frames[0]), pushed(frames[1])], "VLAN push at MTU 1500")
    assert stats["drops"]["too_big"] == 3, stats["drops"]


def test_mtu_boundary_counts_tags_not_as_payload():
    keep = [udp_frame(4014, seq=1), udp_frame(4018, tags=(5,), seq=2), udp_frame(4022, tags=(5, 6), seq=3),
            udp_frame(64, seq=4)]
    over = [udp_frame(4015, seq=5), udp_frame(4019, tags=(5,), seq=6), udp_frame(4023, tags=(5, 6), seq=7),
            udp_frame(4026, tags=(5, 6, 7), seq=8)]
    frames = [f for pair in zip(keep, over) for f in pair]
    out, stats = run("edge", frames, "in_port=p0 actions=output:p1", ["--mtu", "4000"])
    assert_same(out["p1"], keep, "MTU 4000")
    assert stats["drops"]["too_big"] == len(over), stats["drops"]


def main():
    t = TestRun()
    t.case(test_jumbo_frames_cross_with_mtu_9000)
    t.case(test_jumbo_frames_copied_to_two_ports)
    t.case(test_jumbo_frames_back_through_in_port)
    t.case(test_jumbo_frames_through_vlan_push)
    t.case(test_default_mtu_drops_what_exceeds_1500)
    t.case(test_push_may_grow_a_full_frame_past_1514_bytes)
    t.case(test_mtu_boundary_counts_tags_not_as_payload)
    t.finish()


if __name__ == "__main__":
    main()
