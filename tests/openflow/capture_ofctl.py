#!/usr/bin/python3
"""Records the OpenFlow 1.3 messages that ovs-ofctl sends, as test vectors.

Runs a minimal OpenFlow 1.3 listener on 127.0.0.1 (it answers HELLO, ECHO,
FEATURES, BARRIER, TABLE_FEATURES with one well-formed table, PORT_DESC with
ports p1..p4 numbered 1..4, and every other multipart request with an empty
reply), runs each `ovs-ofctl -O OpenFlow13 COMMAND tcp:127.0.0.1:PORT ARG`
of CASES against it, and writes what ovs-ofctl sent (every message but
HELLO, the BARRIER that ends a transaction, and the TABLE_FEATURES/PORT_DESC
lookups ovs-ofctl makes first) as C++ initializers:

    {"add-flow", "ARG", "HEX"},

Usage: capture_ofctl.py OUT.inc   (tests/unit/openflow_ofctl_vectors.inc)
Needs Open vSwitch 3.1's ovs-ofctl (scripts/deps test).
"""

import socket
import struct
import subprocess
import sys
import threading

OFP13 = 4
PORTS = ["p1", "p2", "p3", "p4"]

# (command, argument); the argument is also what flowpath's rule parser
# reads for the same rule (tests/unit/openflow_codec_test.cpp checks both).
CASES = [
    ("add-flow", "priority=100,ip,nw_src=10.0.0.0/8,tcp,tp_dst=80,actions=output:p2"),
    ("add-flow", "table=1,cookie=0x1234,idle_timeout=10,hard_timeout=20,priority=7,"
                 "tcp,tcp_flags=+syn-ack,nw_ttl=3,nw_frag=no,"
                 "actions=resubmit(,2),CONTROLLER:65535,mod_nw_tos:8,mod_vlan_vid:5,goto_table:3"),
    ("add-flow", "dl_src=00:11:22:33:44:55,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,dl_vlan=5,"
                 "dl_vlan_pcp=3,actions=strip_vlan,output:p1"),
    ("add-flow", "in_port=p3,vlan_tci=0x1000/0x1000,actions=set_field:0x1005->vlan_tci,in_port,flood,all"),
    ("add-flow", "ip,nw_dst=192.168.0.0/255.255.0.255,nw_tos=32,nw_ecn=1,actions=mod_nw_ttl:9,"
                 "set_field:7->nw_ttl,dec_ttl,mod_nw_ecn:2,push_vlan:0x88a8,"
                 "set_field:10.0.0.1->ip_src,mod_nw_dst:10.0.0.2,output:p4"),
    ("add-flow", "udp,tp_src=0x1000/0xf000,udp_dst=53,actions=mod_tp_src:1,mod_tp_dst:2,"
                 "mod_dl_src:00:00:00:00:00:01,mod_dl_dst:00:00:00:00:00:02,set_field:3->in_port"),
    ("add-flow", "sctp,sctp_src=5,actions=set_field:6->sctp_dst"),
    ("add-flow", "icmp,icmp_type=8,icmp_code=0,actions=set_field:0->icmp_type"),
    ("add-flow", "arp,arp_op=1,arp_spa=10.0.0.1,arp_tpa=10.0.0.0/24,arp_sha=00:00:00:00:00:01,"
                 "arp_tha=00:00:00:00:00:00,actions=set_field:2->arp_op,set_field:10.0.0.9->arp_spa"),
    ("add-flow", "ipv6,ipv6_src=2001:db8::/32,ipv6_dst=::1,ipv6_label=0x12345,"
                 "actions=set_field:2001:db8::1->ipv6_dst,set_field:0x54321->ipv6_label"),
    ("add-flow", "icmp6,icmpv6_type=135,icmpv6_code=0,nd_target=fe80::1,nd_sll=00:00:00:00:00:07,"
                 "actions=set_field:fe80::2->nd_target,set_field:00:00:00:00:00:08->nd_sll"),
    ("add-flow", "icmp6,icmpv6_type=136,nd_tll=00:00:00:00:00:09,actions=output:p1"),
    ("add-flow", "ip,ct_state=+trk-new,ct_zone=3,ct_mark=0x5/0xff,actions=ct(commit,zone=5,table=3,"
                 "exec(set_field:0x1->ct_mark))"),
    ("add-flow", "ipv6,actions=ct(commit,exec(set_field:0x1/0xff->ct_mark)),ct_clear"),
    ("add-flow", "priority=0,actions=controller(max_len=128)"),
    ("add-flow", "priority=5,send_flow_rem,check_overlap,reset_counts,ip,actions=drop"),
    ("add-flow", "table=2,priority=9,ip,metadata=0x5/0xff,actions=output:p1,clear_actions,"
                 "write_metadata:0xa0/0xf0,goto_table:4"),
    ("add-flow", "metadata=0x7,actions=write_metadata:0x1"),
    ("add-flow", "actions=set_field:0x5->metadata,resubmit(,3),set_field:0x1ff/0xff00f->metadata,"
                 "load:0x3->OXM_OF_METADATA[62..63],goto_table:4"),
    ("add-flow", "priority=3,actions=clear_actions"),
    ("mod-flows", "ip,actions=output:p2"),
    ("mod-flows --strict", "priority=100,ip,nw_src=10.0.0.0/8,tcp,tp_dst=80,actions=output:p3"),
    ("del-flows", ""),
    ("del-flows", "cookie=0x1234/0xffffffffffffffff,table=1,tcp"),
    ("del-flows --strict", "priority=100,ip,nw_src=10.0.0.0/8,tcp,tp_dst=80"),
    ("del-flows", "out_port=2,ip"),
    ("del-flows", "metadata=0x1/0x1"),
    ("dump-flows", ""),
    ("dump-flows", "table=1,cookie=0x5/0xff,udp"),
    ("dump-flows", "metadata=0x5/0xff"),
    ("dump-aggregate", "ip"),
    ("dump-ports", ""),
    ("dump-ports", "2"),
    ("dump-tables", ""),
    ("dump-ports-desc", ""),
    ("dump-desc", ""),
    ("show", ""),
    ("get-frags", ""),
    ("packet-out", "in_port=1,packet=ffffffffffff0000000000010806000108000604000100000000000"
                   "10a0000010000000000000a000002,actions=output:2,output:table"),
    ("dump-group-features", ""),
]


def reply_table_features(xid):
    props = b"".join(struct.pack("!HH4x", t, 4) for t in (0, 2, 4, 6, 8, 10, 12, 14))
    tf = struct.pack("!HBB4x32sQQII", 64 + len(props), 0, 0, b"table0", 0, 0, 0, 1000000) + props
    return struct.pack("!BBHIHH4x", OFP13, 19, 16 + len(tf), xid, 12, 0) + tf


def reply_port_desc(xid):
    body = b""
    for number, name in enumerate(PORTS, 1):
        body += struct.pack("!I4x6s2x16sIIIIIIII", number, bytes([0, 0, 0, 0, 0, number]),
                            name.encode(), 0, 4, 0, 0, 0, 0, 10000000, 10000000)
    return struct.pack("!BBHIHH4x", OFP13, 19, 16 + len(body), xid, 13, 0) + body


def serve_one(conn, log):
    conn.sendall(struct.pack("!BBHIHHI", OFP13, 0, 16, 0, 1, 8, 1 << OFP13))
    buf = b""
    while True:
        data = conn.recv(65536)
        if not data:
            return
        buf += data
        while len(buf) >= 8:
            _, mtype, length, xid = struct.unpack("!BBHI", buf[:8])
            if len(buf) < length:
                break
            msg, buf = buf[:length], buf[length:]
            if mtype == 0:
                continue
            if mtype == 20:
                conn.sendall(struct.pack("!BBHI", OFP13, 21, 8, xid))
                continue
            if mtype == 2:
                conn.sendall(struct.pack("!BBHI", OFP13, 3, length, xid) + msg[8:])
                continue
            if mtype == 18:
                mp_type = struct.unpack("!H", msg[8:10])[0]
                if mp_type == 12:
                    conn.sendall(reply_table_features(xid))
                    continue
                if mp_type == 13:
                    conn.sendall(reply_port_desc(xid))
                    continue
                log.append(msg)
                body = bytes({0: 1056, 2: 24}.get(mp_type, 0))  # DESC and AGGREGATE have a fixed body
                conn.sendall(struct.pack("!BBHIHH4x", OFP13, 19, 16 + len(body), xid, mp_type, 0) + body)
                continue
            log.append(msg)
            if mtype == 5:
                conn.sendall(struct.pack("!BBHIQIBB2xII", OFP13, 6, 32, xid, 1, 0, 254, 0, 7, 0))
            elif mtype == 7:
                conn.sendall(struct.pack("!BBHIHH", OFP13, 8, 12, xid, 0, 128))


def capture(command, argument):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    log = []
    done = threading.Event()

    def serve_and_close(conn):
        with conn:
            serve_one(conn, log)

    def serve():
        # ovs-ofctl keeps one connection open while it looks port names up
        # on another: a thread each.
        workers = []
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except socket.timeout:
                continue
            workers.append(threading.Thread(target=serve_and_close, args=(conn,)))
            workers[-1].start()
        for worker in workers:
            worker.join()

    thread = threading.Thread(target=serve)
    thread.start()
    words = command.split()
    args = ["ovs-ofctl", "-O", "OpenFlow13", words[0]] + words[1:] + [f"tcp:127.0.0.1:{port}"]
    if argument:
        args.append(argument)
    result = subprocess.run(args, capture_output=True, text=True, timeout=20)
    done.set()
    thread.join()
    listener.close()
    if result.returncode != 0 and command != "dump-group-features":
        raise SystemExit(f"{' '.join(args)} failed: {result.stderr.strip()}")
    return log


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    lines = ["// Generated by tests/openflow/capture_ofctl.py from ovs-ofctl (Open vSwitch 3.1):",
             "// {ovs-ofctl command, its argument, a message it sent (hex)}."]
    for command, argument in CASES:
        for msg in capture(command, argument):
            lines.append(f'{{"{command}", "{argument}", "{msg.hex()}"}},')
    with open(sys.argv[1], "w") as out:
        out.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
