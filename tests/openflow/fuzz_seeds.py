#!/usr/bin/python3
"""Writes the seed corpora of the OpenFlow fuzz targets (tests/fuzz/corpus/
openflow_*) from the messages ovs-ofctl sent (tests/unit/
openflow_ofctl_vectors.inc) and a few hand-built switch messages.

Usage: fuzz_seeds.py   (run from anywhere; rewrites the seed files)
"""

import os
import re
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
VECTORS = os.path.join(ROOT, "tests/unit/openflow_ofctl_vectors.inc")
CORPUS = os.path.join(ROOT, "tests/fuzz/corpus")


def msg(mtype, body, xid=1, version=4):
    return struct.pack("!BBHI", version, mtype, 8 + len(body), xid) + body


def write(target, name, data):
    directory = os.path.join(CORPUS, target)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name + ".bin"), "wb") as f:
        f.write(data)


def main():
    vectors = []
    for line in open(VECTORS):
        m = re.match(r'\{"([^"]*)", "([^"]*)", "([0-9a-f]+)"\},', line)
        if m:
            vectors.append((m.group(1), bytes.fromhex(m.group(3))))
    hello = msg(0, struct.pack("!HHI", 1, 8, 1 << 4))
    stream = hello
    for i, (command, data) in enumerate(vectors):
        name = f"{i:03d}_{re.sub('[^a-z]+', '_', command)}"
        mtype = data[1]
        stream += data
        if mtype == 14:
            write("openflow_flow_mod", name, data)
            match_len = struct.unpack("!H", data[50:52])[0]
            end = 48 + (match_len + 7) // 8 * 8
            write("openflow_match", name + "_match", b"\x00" + data[48:end])
            write("openflow_match", name + "_instructions", b"\x03" + data[end:])
            if len(data) > end + 8 and data[end:end + 2] == b"\x00\x04":
                write("openflow_match", name + "_actions", b"\x01" + data[end + 8:])
        elif mtype == 13:
            write("openflow_packet_out", name, data)
            actions_len = struct.unpack("!H", data[16:18])[0]
            write("openflow_match", name + "_actions", b"\x02" + data[24:24 + actions_len])
        elif mtype == 18:
            write("openflow_multipart", name, data)
        write("openflow_session", name, b"\x05" + hello + data + msg(20, b""))
    write("openflow_session", "all", b"\x37" + stream + msg(20, b""))
    write("openflow_session", "service", b"\x80" + stream)

    port = struct.pack("!I4x6s2x16sIIIIIIII", 1, b"\x02\0\0\0\0\x01", b"p1", 0, 4, 0, 0, 0, 0, 10**7, 10**7)
    in_port_match = struct.pack("!HHIII", 1, 12, 0x80000004, 1, 0)
    controls = {
        "hello_bitmap": hello,
        "hello_old": msg(0, b"", version=1),
        "hello_elements": msg(0, struct.pack("!HHI", 1, 8, 0x12) + struct.pack("!HH4x", 9, 5), version=6),
        "error": msg(1, struct.pack("!HH", 1, 1) + hello),
        "echo": msg(2, b"ping"),
        "features_reply": msg(6, struct.pack("!QIBB2xII", 1, 0, 254, 0, 7, 0)),
        "set_config": msg(9, struct.pack("!HH", 0, 128)),
        "set_async": msg(28, struct.pack("!6I", 3, 0, 7, 7, 15, 0)),
        "role_request": msg(24, struct.pack("!I4xQ", 2, 5)),
        "table_mod": msg(17, struct.pack("!B3xI", 0, 0)),
        "queue_get_config": msg(22, struct.pack("!I4x", 1)),
        "packet_in": msg(10, struct.pack("!IHBBQ", 0xffffffff, 4, 1, 0, 9) + in_port_match + b"\0\0" + b"abcd"),
        "flow_removed": msg(11, struct.pack("!QHBBIIHHQQ", 1, 100, 2, 0, 1, 2, 0, 0, 3, 4) + in_port_match),
        "port_status": msg(12, struct.pack("!B7x", 2) + port),
    }
    for name, data in controls.items():
        write("openflow_control", name, data)
        write("openflow_session", "control_" + name, b"\x11" + hello + data)
    replies = {
        "port_desc_reply": msg(19, struct.pack("!HH4x", 13, 0) + port),
        "port_stats_reply": msg(19, struct.pack("!HH4x", 4, 0) + struct.pack("!I4x12QII", 1, *range(12), 5, 6)),
        "table_stats_reply": msg(19, struct.pack("!HH4x", 3, 0) + struct.pack("!B3xIQQ", 0, 1, 2, 3)),
        "aggregate_reply": msg(19, struct.pack("!HH4x", 2, 0) + struct.pack("!QQI4x", 1, 2, 3)),
    }
    for name, data in replies.items():
        write("openflow_multipart", name, data)


if __name__ == "__main__":
    main()
