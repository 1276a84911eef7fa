#!/usr/bin/python3
"""End-to-end tests of connection tracking through the real binary: a
stateful firewall over net_pcap ports (handshakes from the allowed side
pass, the other side's new connections drop, established replies pass,
ct_mark set at commit and matched on replies, zones kept apart, invalid
segments dropped), ct-dump's format and ct-flush [zone=N], the stats-json
conntrack keys, and expiry.

Ordering: a worker takes up to 32 frames per rx burst, polls its ports in
turn (p0, p1, p2, then again), and runs every pass of a burst before the
next. Within one burst the packets of a megaflow go through the ct action
together, as in Open vSwitch's batches (a SYN-ACK in the SYN's burst would
find no connection yet). So each step of a conversation is put in a burst
of its own: the step's frame, then filler frames (dropped, no ct) up to 32,
and the ports' files are laid out so that round r reads step r of p0, then
of p1, then of p2. Across the slow path the worker keeps arrival order for
the tracker itself (docs/slowpath.md).

Usage: conntrack_test.py BUILD_DIR
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fptest import Flowpath, TestRun, WorkDir, read_pcap, wait_until, write_pcap  # noqa: E402

from scapy.all import ICMP, IP, TCP, UDP, Ether, Raw  # noqa: E402

BUILD = os.path.abspath(sys.argv[1])
WORK_DIR = WorkDir("flowpath_ct_")
WORK = WORK_DIR.root
path = WORK_DIR.path
write = WORK_DIR.write
BURST = 32

INSIDE, OUTSIDE, OUTSIDE2, ZONE2_HOST = "10.0.0.1", "10.1.0.2", "10.1.0.3", "10.2.0.1"
MAC_IN, MAC_OUT, MAC_Z2 = "02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:03"

# Inside (p0) may open TCP and UDP connections to the outside (p1): TCP ones
# are committed with mark 1, UDP to port 53 with mark 2, other UDP with mark
# 3. From the outside only established traffic of mark 1 (TCP) or 2 (UDP)
# comes back. p2 is tracked in zone 2: it may open UDP, nothing else.
RULES = """\
table=0,priority=100,in_port=p0,ip,actions=ct(zone=1,table=1)
table=0,priority=100,in_port=p1,ip,actions=ct(zone=1,table=1)
table=0,priority=100,in_port=p2,ip,actions=ct(zone=2,table=2)
table=1,priority=100,in_port=p0,ct_state=+trk+new,tcp,actions=ct(commit,zone=1,exec(set_field:1->ct_mark)),output:p1
table=1,priority=100,in_port=p0,ct_state=+trk+new,udp,tp_dst=53,actions=ct(commit,zone=1,exec(set_field:2->ct_mark)),output:p1
table=1,priority=90,in_port=p0,ct_state=+trk+new,udp,actions=ct(commit,zone=1,exec(set_field:3->ct_mark)),output:p1
table=1,priority=100,in_port=p0,ct_state=+trk+est,actions=output:p1
table=1,priority=100,in_port=p1,ct_state=+trk+est,ct_mark=1,tcp,actions=output:p0
table=1,priority=100,in_port=p1,ct_state=+trk+est,ct_mark=2,udp,actions=output:p0
table=1,priority=1,actions=drop
table=2,priority=100,ct_state=+trk+new,udp,actions=ct(commit,zone=2),output:p1
table=2,priority=100,ct_state=+trk+est,actions=output:p1
table=2,priority=1,actions=drop
"""


def tcp(src, dst, sport, dport, flags, seq, ack=0, payload=b"", smac=MAC_IN, dmac=MAC_OUT):
    return bytes(Ether(src=smac, dst=dmac) / IP(src=src, dst=dst) /
                 TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=ack, window=8192) / Raw(payload))


def udp(src, dst, sport, dport, payload, smac=MAC_IN, dmac=MAC_OUT):
    return bytes(Ether(src=smac, dst=dmac) / IP(src=src, dst=dst) / UDP(sport=sport, dport=dport) / Raw(payload))


def filler(n):
    # Not IP: no rule matches it, so it is dropped in table 0 (no_match)
    # without going near the tracker.
    return bytes(Ether(src="02:00:00:00:00:ff", dst="02:00:00:00:00:fe", type=0x88b5) / Raw(b"filler%04d" % n))


def bursts(steps):
    """One port's file: each step (a frame, or None for nothing) alone in a
    burst, padded with fillers."""
    frames = []
    for n, frame in enumerate(steps):
        if frame is not None:
            frames.append(frame)
        while len(frames) % BURST:
            frames.append(filler(n))
    return frames


# The conversation, round by round: (p0, p1, p2) frames of each round.
A, B, C, Z = INSIDE, OUTSIDE, OUTSIDE2, ZONE2_HOST
SYN = tcp(A, B, 40000, 80, "S", 1000)
SYN_ACK = tcp(B, A, 80, 40000, "SA", 5000, 1001, smac=MAC_OUT, dmac=MAC_IN)
ACK = tcp(A, B, 40000, 80, "A", 1001, 5001)
DATA = tcp(A, B, 40000, 80, "PA", 1001, 5001, b"GET / HTTP")
REPLY = tcp(B, A, 80, 40000, "PA", 5001, 1011, b"HTTP/1.1 200 OK\r\n\r\n", smac=MAC_OUT, dmac=MAC_IN)
# From the outside: a connection it opens itself, and a segment of the
# inside's connection far outside its window (invalid).
OUTSIDE_SYN = tcp(C, A, 50000, 22, "S", 777, smac=MAC_OUT, dmac=MAC_IN)
OUT_OF_WINDOW = tcp(B, A, 80, 40000, "A", 5001 + 50_000_000, 1011, b"x" * 10, smac=MAC_OUT, dmac=MAC_IN)
DNS = udp(A, B, 5353, 53, b"query")
DNS_REPLY = udp(B, A, 53, 5353, b"answer", smac=MAC_OUT, dmac=MAC_IN)
NTP = udp(A, B, 6000, 123, b"ntp?")
NTP_REPLY = udp(B, A, 123, 6000, b"ntp!", smac=MAC_OUT, dmac=MAC_IN)  # mark 3: no rule lets it in
# Zone 2: the same tuple as the inside's established TCP reply is new there,
# and p2's own UDP connection is committed in zone 2.
ZONE2_ACK = tcp(B, A, 80, 40000, "A", 5021, 1011, smac=MAC_Z2, dmac=MAC_IN)
ZONE2_UDP = udp(Z, B, 7000, 53, b"zone two", smac=MAC_Z2, dmac=MAC_OUT)
ICMP_IN = bytes(Ether(src=MAC_IN, dst=MAC_OUT) / IP(src=A, dst=B) / ICMP(type=8, id=9, seq=1) / Raw(b"ping"))

ROUNDS = [
    (SYN, SYN_ACK, None),
    (ACK, None, None),
    (DATA, REPLY, ZONE2_ACK),
    (DNS, OUTSIDE_SYN, ZONE2_UDP),
    (NTP, DNS_REPLY, None),
    (ICMP_IN, NTP_REPLY, None),
    (None, OUT_OF_WINDOW, None),
]
EXPECTED = {
    "p0": [SYN_ACK, REPLY, DNS_REPLY],
    "p1": [SYN, ACK, DATA, DNS, ZONE2_UDP, NTP],
    "p2": [],
}
DUMP = sorted([
    "tcp,orig=(src=10.0.0.1,dst=10.1.0.2,sport=40000,dport=80),reply=(src=10.1.0.2,dst=10.0.0.1,sport=80,"
    "dport=40000),zone=1,mark=1,protoinfo=(state=ESTABLISHED)",
    "udp,orig=(src=10.0.0.1,dst=10.1.0.2,sport=5353,dport=53),reply=(src=10.1.0.2,dst=10.0.0.1,sport=53,"
    "dport=5353),zone=1,mark=2",
    "udp,orig=(src=10.0.0.1,dst=10.1.0.2,sport=6000,dport=123),reply=(src=10.1.0.2,dst=10.0.0.1,sport=123,"
    "dport=6000),zone=1,mark=3",
    "udp,orig=(src=10.2.0.1,dst=10.1.0.2,sport=7000,dport=53),reply=(src=10.1.0.2,dst=10.2.0.1,sport=53,"
    "dport=7000),zone=2",
])


def per_flow(frames):
    """The frames of each flow (addresses, protocol, ports), in order."""
    flows = {}
    for frame in frames:
        ip = Ether(frame)[IP]
        flows.setdefault((ip.src, ip.dst, ip.proto, ip.sport, ip.dport), []).append(frame)
    return flows


def ctl_ok(fp, *command):
    reply = fp.ctl(*command)
    assert reply.returncode == 0, f"{command}: {reply.stderr}"
    return reply.stdout


def firewall(name, extra=()):
    """flowpath with the firewall rules and the conversation on p0..p2."""
    per_port = list(zip(*ROUNDS))
    ports = []
    for i, steps in enumerate(per_port):
        write_pcap(path(f"{name}_in{i}.pcap"), bursts(steps))
        ports += ["--port", f"p{i}=net_pcap{i},rx_pcap={path(f'{name}_in{i}.pcap')},"
                            f"tx_pcap={path(f'{name}_out{i}.pcap')}"]
    fp = Flowpath(BUILD, WORK, ports + ["--rules", write("firewall.rules", RULES), *extra], name=name).start()
    fp.wait_ready()
    total = sum(len(bursts(steps)) for steps in per_port)
    # Everything received and nothing left in flight.
    wait_until("every frame", lambda: sum(p["rx_packets"] for p in fp.live_stats()["ports"]) == total)
    time.sleep(0.3)
    return fp


def stop(fp):
    ctl_ok(fp, "exit")
    assert fp.wait() == 0, fp.stderr
    return fp.stats()


def test_stateful_firewall_forwards_only_what_it_should():
    fp = firewall("fw")
    try:
        stats = fp.live_stats()
    finally:
        final = stop(fp)
    for i in range(3):
        got = read_pcap(path(f"fw_out{i}.pcap"))
        want = EXPECTED[f"p{i}"]
        # The frames exactly, each flow's in order (the contract promises no
        # order between flows: one held behind its megaflow's earlier
        # packets at the slow path may leave after a later flow's).
        assert sorted(got) == sorted(want) and per_flow(got) == per_flow(want), (
            f"p{i}: got {len(got)} frames, want {len(want)}:\n" + "\n".join(Ether(f).summary() for f in got))
    ct = final["conntrack"]
    assert ct["created"] == 4, ct
    assert ct["connections"] == 4 and ct["expired"] == 0 and ct["refused"] == 0, ct
    # Invalid: the out-of-window segment alone (the ICMP echo is new, not
    # committed: no rule commits ICMP).
    assert ct["invalid"] == 1, ct
    assert stats["conntrack"]["created"] == 4, stats["conntrack"]
    worker = final["workers"][0]
    assert worker["recirculations"] > 0, worker
    # Every frame sent or dropped, counted.
    rx = sum(p["rx_packets"] for p in final["ports"])
    tx = sum(p["tx_packets"] for p in final["ports"])
    assert rx == tx + sum(final["drops"].values()), final


def test_ct_dump_format_and_flush_by_zone():
    fp = firewall("dump")
    try:
        lines = sorted(ctl_ok(fp, "ct-dump").splitlines())
        assert lines == DUMP, "\n".join(lines)
        zone2 = ctl_ok(fp, "ct-dump", "zone=2").splitlines()
        assert zone2 == [DUMP[-1]], zone2
        assert ctl_ok(fp, "ct-dump", "zone=3") == ""
        bad = fp.ctl("ct-dump", "zone=x")
        assert bad.returncode == 1 and "zone" in bad.stderr, bad
        ctl_ok(fp, "ct-flush", "zone=2")
        assert ctl_ok(fp, "ct-dump", "zone=2") == ""
        assert sorted(ctl_ok(fp, "ct-dump").splitlines()) == DUMP[:3]
        ctl_ok(fp, "ct-flush")
        assert ctl_ok(fp, "ct-dump") == ""
        # Flushed connections are freed by their worker soon after.
        wait_until("flushed connections to be freed", lambda: fp.live_stats()["conntrack"]["connections"] == 0)
        ct = fp.live_stats()["conntrack"]
        assert ct["flushed"] == 4 and ct["created"] == 4, ct
    finally:
        stop(fp)


def test_connections_expire_by_their_timeout():
    fp = firewall("expire", ["--ct-timeout-udp-first", "1", "--ct-timeout-udp-single", "1",
                             "--ct-timeout-udp-multiple", "1"])
    try:
        # Under load the first dump may come after the 1 s timeout: that the
        # three UDP connections existed shows in `created` (and in the dump
        # when it is in time).
        udp_lines = [line for line in ctl_ok(fp, "ct-dump").splitlines() if line.startswith("udp")]
        assert len(udp_lines) <= 3, udp_lines
        assert fp.live_stats()["conntrack"]["created"] == 4, fp.live_stats()["conntrack"]
        wait_until("UDP connections to expire",
                   lambda: not any(line.startswith("udp") for line in ctl_ok(fp, "ct-dump").splitlines()))
        wait_until("expired connections to be freed", lambda: fp.live_stats()["conntrack"]["expired"] == 3)
        ct = fp.live_stats()["conntrack"]
        assert ct["connections"] == 1 and ct["created"] == 4, ct  # the TCP one (24 h)
    finally:
        stop(fp)


def test_limit_refuses_new_connections():
    fp = firewall("limit", ["--ct-max-connections", "2"])
    try:
        ct = fp.live_stats()["conntrack"]
        assert ct["created"] == 2 and ct["refused"] == 2 and ct["connections"] == 2, ct
    finally:
        stop(fp)


def test_fork_sends_each_packet_through_both_passes_in_turn():
    # ct(table=3) followed by an output forks: a copy of the packet goes
    # through table 3 (which marks it), then the packet itself leaves. As
    # Open vSwitch translates each packet, each packet's two copies leave
    # before the next packet's, also while table 3's megaflow is still at
    # the slow path (the packet waits at the fork for its copy).
    rules = write("fork.rules", "table=0,in_port=p0,udp,actions=ct(zone=5,table=3),output:p1\n"
                                "table=3,udp,actions=mod_nw_tos:32,output:p1\n")
    plain = [udp(A, B, 4000, 9000, b"packet %d" % n) for n in range(3)]
    marked = [bytes(Ether(src=MAC_IN, dst=MAC_OUT) / IP(src=A, dst=B, tos=32) / UDP(sport=4000, dport=9000) /
                    Raw(b"packet %d" % n)) for n in range(3)]
    write_pcap(path("fork_in.pcap"), plain)
    fp = Flowpath(BUILD, WORK, ["--port", f"p0=net_pcap0,rx_pcap={path('fork_in.pcap')}",
                                "--port", f"p1=net_pcap1,tx_pcap={path('fork_out.pcap')}",
                                "--rules", rules, "--exit-when-idle", "300"], name="fork")
    assert fp.run() == 0, fp.stderr
    got = read_pcap(path("fork_out.pcap"))
    want = [marked[0], plain[0], marked[1], plain[1], marked[2], plain[2]]
    assert got == want, "\n".join(Ether(f).summary() + f" tos={Ether(f)[IP].tos}" for f in got)
    assert fp.stats()["workers"][0]["recirculations"] == 3


def test_recirculation_loop_ends_too_deep():
    rules = write("loop.rules", "table=0,ip,actions=ct(table=0)\n")
    write_pcap(path("loop_in.pcap"), [DNS, NTP])
    fp = Flowpath(BUILD, WORK, ["--port", f"p0=net_pcap0,rx_pcap={path('loop_in.pcap')}",
                                "--port", "p1=net_null0,no-rx=1", "--rules", rules, "--exit-when-idle", "300"],
                  name="loop")
    assert fp.run() == 0, fp.stderr
    stats = fp.stats()
    # Six recirculations each (Open vSwitch's MAX_RECIRC_DEPTH), then dropped.
    assert stats["drops"]["too_deep"] == 2 and stats["workers"][0]["recirculations"] == 12, stats


def test_ctl_help_lists_the_conntrack_commands():
    import subprocess
    text = subprocess.run([os.path.join(BUILD, "flowpath-ctl"), "--help"], capture_output=True, text=True).stdout
    assert "ct-dump [zone=N]" in text and "ct-flush [zone=N]" in text, text


if __name__ == "__main__":
    run = TestRun()
    run.case(test_stateful_firewall_forwards_only_what_it_should)
    run.case(test_ct_dump_format_and_flush_by_zone)
    run.case(test_connections_expire_by_their_timeout)
    run.case(test_limit_refuses_new_connections)
    run.case(test_fork_sends_each_packet_through_both_passes_in_turn)
    run.case(test_recirculation_loop_ends_too_deep)
    run.case(test_ctl_help_lists_the_conntrack_commands)
    run.finish()
