#!/usr/bin/python3
"""Commits at scale: fill a live agent with N entries of one kind (ILM, VNI, IPv4 FTN /24s or IPv6 FTN /56–/64s) through one chunked resync, then
time M one-entry `replace` applies, then resync all N into the full FIB with 1 % changed and run applies of
10,000 `replace` operations (ten; two when N < 100,000), with the state file on (the default) and off. Reports, per kind and state mode:
the resync's entries/s and longest reply, the commits' p50/p99/max latency (client round trip), the agent's bytes
written per commit (`wchar` from /proc, which also counts the ~60-byte replies and a few
`info` replies; and the journal's own growth), the engine's own commit time and
grace-period wait (`info` → `commitStats`), and the agent's resident memory.

Run (root): MPLSGATE_BIN_DIR=.build/release /usr/bin/python3 Benchmarks/control/commit.py [N] [M] [KIND...]
MPLSGATE_COMMIT_TRAFFIC_PPS=10000 offers that many frames/s of label 16 through the agent while commits are timed.
(Benchmarks/control/run.sh builds first.) The agent and the client share this machine's cores.
"""
import ipaddress
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "Tests", "Integration"))
from harness import Netns, veth, Agent, RPC, binary  # noqa: E402
import common  # noqa: E402
from common import proc_field  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
M = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
KINDS = sys.argv[3:] or ["ilm", "vni", "ftn", "ftn6"]
# Frames per second of labeled traffic through the agent while the commits are timed (0: idle).
TRAFFIC_PPS = int(os.environ.get("MPLSGATE_COMMIT_TRAFFIC_PPS", "0"))
CHUNK = 10_000
CONFIG = {"version": 1, "ports": [
    {"name": "core0", "interface": "mg-core0", "mac": "02:00:00:00:00:01", "role": "core"},
    {"name": "dc0", "interface": "mg-dc0", "mac": "02:00:00:00:00:02", "role": "dc", "vteps": ["192.0.2.1"]}]}
NH = {"name": "p1", "port": "core0", "mac": "02:aa:00:00:00:01"}


def entry(kind, i, variant=0):
    """Entry i of a kind, pre-serialised; `variant` changes its labels (for replaces)."""
    if kind == "ilm":
        return f'{{"label":{16 + i},"op":"swap","out":[{17 + (i + variant) % 1000}],"via":"p1"}}'
    if kind == "vni":
        return f'{{"vni":{1 + i},"push":[16001,{1000 + (i + variant) % 1000}],"via":"p1","allowedVteps":["192.0.2.2"]}}'
    if kind == "ftn":
        return (f'{{"prefix":"{10 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}.0/24","push":[{16001 + (i + variant) % 1000}],'
                f'"via":"p1"}}')
    # ftn6: IPv6 /56, /60 and /64 in turn under 2001:db8::/32 (a 4-bit tag per length keeps them distinct).
    length = (56, 60, 64)[i % 3]
    high = (0x20010DB8 << 32) | ((i % 3 + 1) << 28) | (i << (64 - length))
    return (f'{{"prefix":"{ipaddress.IPv6Address(high << 64)}/{length}","push":[{16001 + (i + variant) % 1000}],'
            f'"via":"p1"}}')


def percentile(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p))]


def start_traffic(p, tmp):
    """A sender offering TRAFFIC_PPS frames/s of label 16 (entry 0 of the ILM runs) on the agent's core port."""
    from scapy.all import Ether, IP, UDP, Raw, wrpcap
    from scapy.contrib.mpls import MPLS
    pcap = os.path.join(tmp, "traffic.pcap")
    wrpcap(pcap, [Ether(dst="02:00:00:00:00:01", src="02:ee:00:00:00:99") / MPLS(label=16, s=1, ttl=64)
                  / IP(src="10.0.0.1", dst="10.0.0.2") / UDP() / Raw(b"x" * 20)])
    return p.popen(binary("mplsgate-traffic"), "send", "--iface", "p-core0", "--pcap", pcap, "--count",
                   str(TRAFFIC_PPS * 3600), "--rate", str(TRAFFIC_PPS), stdout=subprocess.DEVNULL)


def run(kind, state, a, p, tmp):
    extra = ["--max-entries", str(max(N, 1000))]
    if not state:
        extra.append("--no-state")
    state_dir = os.path.join(tmp, f"{kind}-{state}")
    agent = Agent(a, os.path.join(tmp, "config.json"), None, extra=extra, state_dir=state_dir)
    assert agent.started(), agent.log
    rpc = RPC(agent.socket, timeout=600)
    pid = rpc.result("info")["pid"]
    rss0 = proc_field(pid, "status", "VmRSS:")
    lines = [entry(kind, i) for i in range(N)]
    start = time.time()
    chunks = ["[" + ",".join(lines[i:i + CHUNK]) + "]" for i in range(0, N, CHUNK)]
    resync_seconds, longest, end_seconds, _ = common.resync(rpc, kind.rstrip("6"), chunks, NH)
    del chunks
    del lines
    # The resync is a snapshot for the state writer: wait until it is on disk before timing commits.
    durable_after = None
    if state:
        g = rpc.result("info")["generation"]
        while rpc.result("info").get("durableGeneration", 0) < g:
            time.sleep(0.05)
        durable_after = round(time.time() - start, 3)
    time.sleep(0.2)
    rss1 = proc_field(pid, "status", "VmRSS:")
    journal0 = (rpc.result("info").get("stateFileWrites") or {}).get("journalBytes", 0)
    wchar0 = proc_field(pid, "io", "wchar:")
    sender = start_traffic(p, tmp) if TRAFFIC_PPS else None
    latencies = []
    step = 7919
    for k in range(M):
        i = (k * step) % N
        body = ('{"jsonrpc":"2.0","id":1,"method":"apply","params":{"operations":[{"op":"replace","kind":"%s","entry":%s}]}}\n'
                % (kind.rstrip("6"), entry(kind, i, variant=1 + k)))
        t = time.perf_counter()
        rpc.send_raw(body.encode())
        r = rpc.read_line()
        latencies.append(time.perf_counter() - t)
        assert "result" in r, r
    if sender:
        sender.kill()
        sender.wait()
    info = rpc.result("info")
    if state:
        while info.get("durableGeneration", 0) < info["generation"]:
            time.sleep(0.05)
            info = rpc.result("info")
    wchar1 = proc_field(pid, "io", "wchar:")
    rss2 = proc_field(pid, "status", "VmRSS:")
    full = resync_full(rpc, kind)
    applies = apply_10k(rpc, kind, count=10 if N >= 100_000 else 2)
    rss3 = proc_field(pid, "status", "VmRSS:")
    rpc.close()
    code, _, _ = agent.stop()
    ms = [x * 1000 for x in latencies]
    return {"kind": kind, "stateFile": state, "entries": N, "resyncSeconds": round(resync_seconds, 3),
            "resyncEntriesPerSecond": round(N / resync_seconds), "resyncEndSeconds": round(end_seconds, 3),
            "resyncDurableAfterSeconds": durable_after,
            "longestReplySeconds": round(longest, 3), "commits": M,
            "commitMs": {"p50": round(percentile(ms, 0.5), 3), "p99": round(percentile(ms, 0.99), 3),
                         "max": round(max(ms), 3)},
            "bytesWrittenPerCommit": round((wchar1 - wchar0) / M),
            "journalBytesPerCommit": round(((info.get("stateFileWrites") or {}).get("journalBytes", 0) - journal0) / M), "commitStats": info.get("commitStats"),
            "stateFileWrites": info.get("stateFileWrites"),
            "rssMiB": {"start": round(rss0 / 1024), "afterResync": round(rss1 / 1024), "afterCommits": round(rss2 / 1024),
                       "afterFullResyncAndApplies": round(rss3 / 1024)},
            "fullFIBResync": full, "applies10k": applies,
            "generation": info["generation"], "exit": code, "trafficPps": TRAFFIC_PPS}


def resync_full(rpc, kind):
    """A resync of all N entries into the full FIB with 1 % of them changed (a controller reconnecting)."""
    lines = [entry(kind, i, variant=1 if i % 100 == 0 else 0) for i in range(N)]
    chunks = ["[" + ",".join(lines[i:i + CHUNK]) + "]" for i in range(0, N, CHUNK)]
    del lines
    seconds, _, end_seconds, _ = common.resync(rpc, kind.rstrip("6"), chunks, NH)
    return {"entriesPerSecond": round(N / seconds), "seconds": round(seconds, 3), "resyncEndSeconds": round(end_seconds, 3)}


def apply_10k(rpc, kind, count=10):
    """`count` applies of 10,000 `replace` operations each (objects) into the full FIB: entries/s over all of them."""
    size = min(10_000, N)
    bodies = []
    for a in range(count):
        ops = ",".join('{"op":"replace","kind":"%s","entry":%s}' % (kind.rstrip("6"), entry(kind, (a * size + j) % N, variant=2))
                       for j in range(size))
        bodies.append(('{"jsonrpc":"2.0","id":1,"method":"apply","params":{"operations":[%s]}}\n' % ops).encode())
    start = time.perf_counter()
    for body in bodies:
        rpc.send_raw(body)
        r = rpc.read_line()
        assert "result" in r, r
    seconds = time.perf_counter() - start
    return {"entriesPerSecond": round(size * count / seconds), "applies": count, "entriesPerApply": size}


def main():
    with tempfile.TemporaryDirectory(prefix="mplsgate-bench-") as tmp, Netns("bagent") as a, Netns("bpeer") as p:
        json.dump(CONFIG, open(os.path.join(tmp, "config.json"), "w"))
        for port in CONFIG["ports"]:
            veth(a, port["interface"], p, "p-" + port["name"], mac_a=port["mac"])
        for kind in KINDS:
            for state in (True, False):
                print(json.dumps(run(kind, state, a, p, tmp)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
