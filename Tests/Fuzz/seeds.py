#!/usr/bin/python3
"""Seed inputs for scripts/fuzz.sh, built from the committed fixtures (Tests/Fixtures/cases.json, examples/).

    Tests/Fuzz/seeds.py pipeline|bfd|fib|capture|learn DIR

pipeline: every fixture as [ingress port index, liveness mask of the first 8 next-hop slots (0: all up), frame], and
          VXLAN frames to and from the pipeline target's learned MACs;
bfd:      the BFD fixtures as one-record inputs ([length u16 BE, time step ms, frame]), and a peer's Down → Init → Up
          with a Poll, as bare control packets;
fib:      examples/fib.json (prefixed 0x00), the same in the compact form, examples/config.json (prefixed 0x01), and
          one mistake of each kind of validation error (FIB_MISTAKES, a syntax error, a config out of range);
learn:    op sequences for the MAC learner: learning, a flapping MAC frozen and aged, the capacity, renumbered
          places, a lowered limit, flushes, the clock going back;
capture:  examples/sample.pcapng whole and cut, classic pcap files (both byte orders, nanosecond magic, an
          oversized frame, a non-Ethernet link type), and one file per kind of capture error.
"""
import json
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _ilm(fib, **fields):
    fib["ilm"][0].update(fields)


# kind of error -> a change to the lab FIB that makes it (syntax and a config error are added separately)
FIB_MISTAKES = {
    "type": lambda f: _ilm(f, label="100"),
    "missing": lambda f: f["ilm"][0].pop("label"),
    "unknownKey": lambda f: _ilm(f, colour="blue"),
    "format": lambda f: f["nextHops"][0].update(mac="02:aa:00:00:00"),
    "range": lambda f: _ilm(f, label=1 << 20),
    "empty": lambda f: f["nextHops"][0].update(name=""),
    "reserved": lambda f: _ilm(f, label=3),
    "duplicate": lambda f: f["ilm"].append(dict(f["ilm"][0])),
    "reference": lambda f: _ilm(f, via="nowhere"),
    "limit": lambda f: _ilm(f, out=list(range(100, 117))),
    "version": lambda f: f.update(version=99),
    "rule": lambda f: f["nextHops"][0].update(backup=f["nextHops"][0]["name"]),
}


def main():
    kind, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    cases = json.load(open(os.path.join(ROOT, "Tests/Fixtures/cases.json")))["cases"]
    ports = [p["name"] for p in json.load(open(os.path.join(ROOT, "examples/config.json")))["ports"]]
    n = 0

    def put(data):
        nonlocal n
        with open(os.path.join(out, f"seed-{n:04d}"), "wb") as f:
            f.write(data)
        n += 1

    if kind == "pipeline":
        for c in cases:
            if "down" in c:
                continue
            put(bytes([ports.index(c["port"]), 0]) + bytes.fromhex(c["input"]))
        # VNI 6000 frames to and from the target's learned MACs 0a:00:00:00:00:01..04 (its sites, then local VTEPs):
        # the VXLAN fixture's inner Ethernet header sits at 14 + 20 + 8 + 8.
        vx = next(c for c in cases if c["name"].startswith("multipoint: known unicast from a local VTEP to its site"))
        frame = bytearray.fromhex(vx["input"])
        for dst, src in ((1, 0x11), (2, 0x11), (3, 0x11), (4, 0x11), (1, 3), (2, 4)):
            f = bytearray(frame)
            f[50:56] = bytes([0x0A, 0, 0, 0, 0, dst])
            if src < 16:
                f[56:62] = bytes([0x0A, 0, 0, 0, 0, src])
            put(bytes([ports.index(vx["port"]), 0]) + bytes(f))
    elif kind == "bfd":
        for c in cases:
            if c["name"].startswith("BFD"):
                frame = bytes.fromhex(c["input"])
                put(struct.pack(">HB", len(frame), 10) + frame)

        def packet(state, mine, yours, flags=0, tx=1_000_000, rx=1_000_000):
            return struct.pack(">BBBBIIIII", 0x20, state << 6 | flags, 3, 24, mine, yours, tx, rx, 0)
        records = [(0, packet(1, 9, 0)), (100, packet(3, 9, 7)), (100, packet(3, 9, 7, 0x20, 100_000, 100_000)),
                   (50, packet(3, 9, 7, 0x10, 100_000, 100_000)), (250, packet(0, 9, 7))]
        put(b"".join(struct.pack(">HB", len(p), step) + p for step, p in records))
    elif kind == "fib":
        put(b"\x00" + open(os.path.join(ROOT, "examples/fib.json"), "rb").read())
        put(b"\x01" + open(os.path.join(ROOT, "examples/config.json"), "rb").read())
        # The same FIB with every section in the compact form (columns and rows, null for an absent field).
        fib = json.load(open(os.path.join(ROOT, "examples/fib.json")))
        for section in ("nextHops", "ecmpGroups", "ilm", "vni", "ftn"):
            entries = fib.get(section, [])
            columns = sorted({k for e in entries for k in e})
            fib[section] = {"columns": columns, "rows": [[e.get(c) for c in columns] for e in entries]}
        put(b"\x00" + json.dumps(fib).encode())
        # One mutation of the lab FIB per kind of error (ValidationError.Kind): scripts/fuzz.sh fails unless the
        # corpus and these seeds reach every kind.
        for mutate in FIB_MISTAKES.values():
            fib = json.load(open(os.path.join(ROOT, "examples/fib.json")))
            mutate(fib)
            put(b"\x00" + json.dumps(fib).encode())
        put(b"\x00" + b'{"version": 1, "nextHops": [')                                     # syntax
        config = json.load(open(os.path.join(ROOT, "examples/config.json")))
        config["ports"][0]["mtu"] = 40                                                    # a config out of range
        put(b"\x01" + json.dumps(config).encode())
    elif kind == "learn":
        # [capacity byte] then 3-byte operations (FuzzLearn.swift): op%8 0-3 a record (VNI by bit 3, MAC x%48, place
        # y%8, clock += y>>6), 4 sweep (clock += x), 5 flush, 6 reconfigure (variant x), 7 the clock jumps.
        def rec(vni, mac, place, step=0):
            return bytes([vni << 3, mac, place | step << 6])
        put(bytes([63]) + b"".join(rec(0, m, m % 5) for m in range(10)))                       # learn ten
        put(bytes([63]) + b"".join(rec(0, 7, p % 2) for p in range(8)) + bytes([4, 200, 0]))   # flap, freeze, age
        put(bytes([2]) + b"".join(rec(v, m, 0) for v in (0, 1) for m in range(4)))             # the capacity
        put(bytes([63]) + b"".join(rec(0, m, 1) for m in range(6)) + bytes([6, 1, 0]) + rec(0, 9, 1)
            + bytes([6, 3, 0]) + rec(0, 10, 0) + bytes([5, 0, 1, 6, 0, 0]) + rec(0, 11, 0))   # renumber, limit, flush
        put(bytes([63]) + rec(0, 1, 2) + bytes([7, 0, 0]) + rec(0, 1, 3) + bytes([4, 255, 0, 6, 5, 0]) + rec(1, 2, 0))
    elif kind == "capture":
        sample = open(os.path.join(ROOT, "examples/sample.pcapng"), "rb").read()
        put(sample)
        put(sample[: len(sample) // 2])            # cut in the middle of a block
        # Classic pcap, both byte orders and the nanosecond magic, with the fixtures' frames (one oversized).
        frames = [bytes.fromhex(c["input"]) for c in cases[:8]] + [b"\x00" * 2000]
        for magic, endian in ((0xA1B2C3D4, "<"), (0xA1B2C3D4, ">"), (0xA1B23C4D, "<")):
            body = struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, 262144, 1)
            for i, f in enumerate(frames):
                body += struct.pack(endian + "IIII", 1700000000 + i, i, len(f), len(f)) + f
            put(body)
        put(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 105))   # not Ethernet
        # One file per kind of capture error (CaptureError.Kind; scripts/fuzz.sh fails unless each is reached).
        def block(btype, body):
            return struct.pack("<II", btype, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))
        shb = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
        idb = block(1, struct.pack("<HHI", 1, 0, 65535))
        frame = bytes.fromhex(cases[0]["input"])
        def epb(iface, data, caplen=None):
            pad = b"\x00" * (-len(data) % 4)
            return block(6, struct.pack("<IIIII", iface, 0, 0, len(data) if caplen is None else caplen, len(data)) + data + pad)
        put(b"\xd4\xc3")                                                     # notACapture: no magic
        put(struct.pack("<I", 0xDEADBEEF) + b"\x00" * 40)                     # libpcap: an unknown magic
        put(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
            + struct.pack("<IIII", 0, 0, 1 << 30, 1 << 30))                   # badLength: a classic record of 1 GiB
        put(struct.pack("<IIIQ", 0x0A0D0D0A, 28, 0x11223344, 0) + struct.pack("<I", 28))   # badMagic
        put(shb + struct.pack("<II", 1, 13) + b"\x00" * 5)                    # badLength: a block length of 13
        put(shb + block(1, b"\x01\x00\x00\x00"))                              # blockTooShort: an IDB of 16 bytes
        put(shb + block(1, struct.pack("<HHI", 1, 0, 65535) + struct.pack("<HHB3x", 9, 1, 40) + b"\x00" * 4))   # unsupported
        put(shb + idb + epb(3, frame))                                        # undefinedInterface
        put(shb + idb + epb(0, frame, caplen=len(frame) + 64))                # overrun
        put(shb + block(3, struct.pack("<I", len(frame)) + frame + b"\x00" * (-len(frame) % 4)))   # noInterface
    else:
        sys.exit(f"unknown kind {kind}")


if __name__ == "__main__":
    main()
