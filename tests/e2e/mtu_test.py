#!/usr/bin/python3
"""End-to-end tests of --mtu: jumbo frames cross flowpath byte for byte when
the MTU allows them (plain, copied to two ports, sent back by in_port, and
through a VLAN push), and frames above the MTU are dropped and counted as
too_big, whatever their size. With --mbuf-size below the frame size they
arrive as mbuf chains (net_pcap reads them so) and cross just the same,
through header rewrites and connection tracking too; a chained frame whose
headers run past its first buffer is dropped as split_headers, a truncated
or padded one handled as a whole one. Ports of different MTUs (--mtu
NAME=N): each takes and sends what its own MTU allows.

Usage: mtu_test.py BUILD_DIR
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fptest import Flowpath, TestRun, read_pcap, run_flowpath, workdir, write_pcap  # noqa: E402

BUILD = os.path.abspath(sys.argv[1])
WORK = workdir("flowpath_mtu_")
SIZES = [60, 1514, 1518, 4000, 9000]
VLAN_TAG = bytes.fromhex("8100000a")  # what mod_vlan_vid:10 pushes: TPID 0x8100, VID 10
LAST_LOG = [""]  # the last run's log


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
    LAST_LOG[:] = [fp.stderr]
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


def chained(room):
    """--mbuf-size `room` at MTU 9000: the log says frames longer are chains."""
    assert f"mbufs of {room} bytes (largest MTU 9000; longer frames are chains)" in LAST_LOG[0], LAST_LOG[0]


def test_scattered_rx_chains_cross_byte_for_byte():
    frames = [udp_frame(size, seq=i) for i, size in enumerate(SIZES)]
    for room in (1024, 2048):
        out, stats = run(f"scatter{room}", frames, "in_port=p0 actions=output:p1",
                         ["--mtu", "9000", "--mbuf-size", str(room)])
        chained(room)
        assert_same(out["p1"], frames, f"chains of {room}-byte buffers")
        assert stats["ports"][1]["tx_bytes"] == sum(SIZES)
        assert sum(stats["drops"].values()) == 0, stats["drops"]


def test_chains_through_vlan_push_copies_and_in_port():
    frames = [udp_frame(size, seq=i) for i, size in enumerate(SIZES)]
    out, stats = run("scatter_push", frames, "in_port=p0 actions=mod_vlan_vid:10,output:p1",
                     ["--mtu", "9000", "--mbuf-size", "1024"])
    chained(1024)
    assert_same(out["p1"], [pushed(f) for f in frames], "VLAN push on chains")
    assert sum(stats["drops"].values()) == 0, stats["drops"]
    tagged = [udp_frame(size + 4, tags=(7,), seq=i) for i, size in enumerate(SIZES)]
    out, stats = run("scatter_pop", tagged, "in_port=p0,dl_vlan=7 actions=strip_vlan,output:p1",
                     ["--mtu", "9000", "--mbuf-size", "1024"])
    assert_same(out["p1"], [f[:12] + f[16:] for f in tagged], "VLAN pop on chains")
    assert sum(stats["drops"].values()) == 0, stats["drops"]
    # Two outputs and in_port: the copies are whole chains, the last output
    # takes the packet; the push between them changes only the later ones.
    out, stats = run("scatter_copy", frames, "in_port=p0 actions=output:p1,mod_vlan_vid:10,output:p2,in_port",
                     ["--mtu", "9000", "--mbuf-size", "1024"], tx_ports=("p1", "p2", "p0"))
    assert_same(out["p1"], frames, "copy on p1")
    assert_same(out["p2"], [pushed(f) for f in frames], "pushed copy on p2")
    assert_same(out["p0"], [pushed(f) for f in frames], "pushed frame back on p0")
    assert sum(stats["drops"].values()) == 0, stats["drops"]


def rewritten(frame):
    """What mod_nw_src:10.9.9.9,mod_tp_dst:99,dec_ttl does to a udp_frame:
    the checksums recomputed whole (the executor updates them)."""
    from scapy.all import Ether  # noqa: imported late: slow
    pkt = Ether(frame)
    pkt["IP"].src = "10.9.9.9"
    pkt["IP"].ttl -= 1
    pkt["UDP"].dport = 99
    del pkt["IP"].chksum
    del pkt["UDP"].chksum
    return bytes(pkt)


def test_chains_through_header_rewrites_and_conntrack():
    frames = [udp_frame(size, seq=i) for i, size in enumerate(SIZES)]
    out, stats = run("scatter_set", frames,
                     "udp,in_port=p0 actions=mod_nw_src:10.9.9.9,mod_tp_dst:99,dec_ttl,output:p1",
                     ["--mtu", "9000", "--mbuf-size", "1024"])
    assert_same(out["p1"], [rewritten(f) for f in frames], "rewritten chains")
    assert sum(stats["drops"].values()) == 0, stats["drops"]
    # The tracker reads each frame whole (its UDP checksum too): every
    # frame is a new connection, none invalid; ct_state follows it.
    rules = ("table=0,udp,in_port=p0,ct_state=-trk actions=ct(commit,table=1)\n"
             "table=1,udp,ct_state=+trk+new-inv actions=output:p1")
    out, stats = run("scatter_ct", frames, rules, ["--mtu", "9000", "--mbuf-size", "1024"])
    assert_same(out["p1"], frames, "tracked chains")
    assert stats["conntrack"]["created"] == len(frames), stats["conntrack"]
    assert sum(stats["drops"].values()) == 0, stats["drops"]


def ipv6_with_extension_headers(size, ext_bytes):
    """An IPv6/UDP frame of `size` bytes behind `ext_bytes` of destination
    options headers (each at most 2048 bytes)."""
    from scapy.all import Ether, IPv6, IPv6ExtHdrDestOpt, Pad1, PadN, UDP, Raw  # noqa: imported late: slow
    pkt = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IPv6(src="2001:db8::1", dst="2001:db8::2")
    while ext_bytes > 0:
        header = min(ext_bytes, 2048)
        options, room = [], header - 2
        while room > 1:
            n = min(room, 257)
            options.append(PadN(optdata=b"\0" * (n - 2)))
            room -= n
        options += [Pad1()] * room
        pkt = pkt / IPv6ExtHdrDestOpt(options=options)
        ext_bytes -= header
    pkt = pkt / UDP(sport=1, dport=2)
    raw = bytes(pkt / Raw(b"\x5a" * (size - len(pkt))))
    assert len(raw) == size
    return raw


def test_malformed_and_split_chains():
    from scapy.all import Ether, IP, UDP, Raw  # noqa: imported late: slow
    base = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="10.0.0.1", dst="10.0.0.2")
    # Headers past the first 1024-byte buffer: dropped, counted.
    split = ipv6_with_extension_headers(3000, 1200)
    # Headers within it, behind extension headers of 800 bytes: forwarded.
    deep = ipv6_with_extension_headers(3000, 800)
    # An IP datagram cut short: the total length claims 8000 bytes of the
    # 5000 there are, so only the Ethernet fields are read, as Open vSwitch
    # does; the rewrite does not apply.
    truncated = bytes(base / UDP(sport=5, dport=6) / Raw(b"\x11" * 8000))[:5000]
    # A short datagram padded to 4000 bytes: the rewrite (and its UDP
    # checksum) ends where the datagram does.
    padded_in = bytes(base / UDP(sport=7, dport=8) / Raw(b"\x22" * 60))
    padded = padded_in + b"\x33" * (4000 - len(padded_in))
    frames = [split, deep, truncated, padded]
    rules = ("ip,in_port=p0 actions=mod_nw_src:10.9.9.9,output:p1\n"
             "ipv6,in_port=p0 actions=mod_nw_ecn:1,output:p1")
    out, stats = run("scatter_bad", frames, rules, ["--mtu", "9000", "--mbuf-size", "1024"])
    fixed = Ether(padded_in)
    fixed["IP"].src = "10.9.9.9"
    del fixed["IP"].chksum
    del fixed["UDP"].chksum
    ecn = Ether(deep)
    ecn["IPv6"].tc |= 1
    assert_same(out["p1"], [bytes(ecn), truncated, bytes(fixed) + padded[len(padded_in):]], "malformed chains")
    assert stats["drops"]["split_headers"] == 1, stats["drops"]
    assert sum(stats["drops"].values()) == 1, stats["drops"]


def test_ports_of_different_mtus():
    # p0 at 9000 (every port's), p1 at 1500 (its own, from the config file).
    sizes = [60, 1514, 1518, 4000, 9000]
    from_p0 = [udp_frame(size, seq=i) for i, size in enumerate(sizes)]
    from_p1 = [udp_frame(size, seq=10 + i) for i, size in enumerate(sizes)]
    write_pcap(path("two.p0.in.pcap"), from_p0)
    write_pcap(path("two.p1.in.pcap"), from_p1)
    with open(path("two.rules"), "w") as f:
        f.write("in_port=p0 actions=output:p1\nin_port=p1 actions=output:p0\n")
    with open(path("two.conf"), "w") as f:
        f.write(f"port = p0=net_pcap0,rx_pcap={path('two.p0.in.pcap')},tx_pcap={path('two.p0.pcap')}\n"
                f"port = p1=net_pcap1,rx_pcap={path('two.p1.in.pcap')},tx_pcap={path('two.p1.pcap')}\n"
                "mtu = 9000\nmtu = p1=1500\n")
    fp = Flowpath(BUILD, WORK, ["--config", path("two.conf"), "--rules", path("two.rules"),
                                "--exit-when-idle", "300"], name="two")
    assert fp.run() == 0, fp.stderr
    assert "port p1: MTU 1500" in fp.stderr and "port p0: MTU 9000" in fp.stderr, fp.stderr
    # p1 sends no frame above its MTU (4000 and 9000 from p0; 1518 untagged
    # is 1504 bytes of payload), and takes none: 3 dropped each way.
    assert_same(read_pcap(path("two.p1.pcap")), from_p0[:2], "p0 -> p1 at MTU 1500")
    assert_same(read_pcap(path("two.p0.pcap")), from_p1[:2], "p1 -> p0 after p1's MTU 1500")
    stats = fp.stats()
    assert stats["drops"]["too_big"] == 6, stats["drops"]
    assert stats["ports"][1]["tx_dropped"] == 3, stats["ports"]
    assert stats["ports"][0]["tx_dropped"] == 0, stats["ports"]
    # The command line wins: p1 at 9000 lets every frame cross both ways.
    fp = Flowpath(BUILD, WORK, ["--config", path("two.conf"), "--rules", path("two.rules"), "--mtu", "p1=9000",
                                "--exit-when-idle", "300"], name="two_cli")
    assert fp.run() == 0, fp.stderr
    assert_same(read_pcap(path("two.p1.pcap")), from_p0, "p0 -> p1 at MTU 9000")
    assert fp.stats()["drops"]["too_big"] == 0


def test_devices_that_cannot_chain_are_refused():
    # af_packet has no rx scatter: buffers shorter than its frames cannot be.
    code, _, err = run_flowpath(BUILD, ["--port", "p0=net_af_packet0,iface=lo", "--mbuf-size", "1024",
                                        "--rules", "-", "--ctl-socket", path("afp.ctl")])
    assert code == 2, (code, err)
    assert "port p0: device 'net_af_packet0' cannot receive a frame of MTU 1500 (1522 bytes) into buffers of " \
           "1024 bytes" in err, err
    # net_pcap preloads an infinite_rx file and cannot chain its frames then.
    write_pcap(path("loop.pcap"), [udp_frame(size, seq=i) for i, size in enumerate(SIZES)])
    code, _, err = run_flowpath(BUILD, ["--port", f"p0=net_pcap0,rx_pcap={path('loop.pcap')},infinite_rx=1",
                                        "--mtu", "9000", "--mbuf-size", "2048", "--rules", "-",
                                        "--ctl-socket", path("loop.ctl")])
    assert code == 2, (code, err)
    assert "port p0: rx_pcap " + path("loop.pcap") + " has frames longer than the packet buffers (2048 bytes)" \
        in err, err
    code, _, err = run_flowpath(BUILD, ["--port", "p0=net_null0", "--mtu", "p9=1500"])
    assert code == 2 and "mtu: no port named 'p9'" in err, (code, err)


def main():
    t = TestRun()
    t.case(test_jumbo_frames_cross_with_mtu_9000)
    t.case(test_jumbo_frames_copied_to_two_ports)
    t.case(test_jumbo_frames_back_through_in_port)
    t.case(test_jumbo_frames_through_vlan_push)
    t.case(test_default_mtu_drops_what_exceeds_1500)
    t.case(test_push_may_grow_a_full_frame_past_1514_bytes)
    t.case(test_mtu_boundary_counts_tags_not_as_payload)
    t.case(test_scattered_rx_chains_cross_byte_for_byte)
    t.case(test_chains_through_vlan_push_copies_and_in_port)
    t.case(test_chains_through_header_rewrites_and_conntrack)
    t.case(test_malformed_and_split_chains)
    t.case(test_ports_of_different_mtus)
    t.case(test_devices_that_cannot_chain_are_refused)
    t.finish()


if __name__ == "__main__":
    main()
