#!/usr/bin/python3
"""Control-plane speed: program N ILM entries into a live agent through its socket, as one chunked resync and as
apply calls of 1,000 entries; report entries/s, the time until the last entry forwards, and the agent's resident
memory. Prints one JSON object per mode.

Run (root): MPLSGATE_BIN_DIR=.build/release /usr/bin/python3 Benchmarks/control/program.py [N] [CHUNK]
(Benchmarks/control/run.sh builds first.) The agent, the client and the traffic tools share this machine's cores.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "Tests", "Integration"))
from harness import Netns, veth, Agent, RPC, binary  # noqa: E402
from scapy.all import Ether, IP, UDP, Raw, wrpcap  # noqa: E402
from scapy.contrib.mpls import MPLS  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
CHUNK = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
FIRST = 16
CONFIG = {"version": 1, "ports": [
    {"name": "core0", "interface": "mg-core0", "mac": "02:00:00:00:00:01", "role": "core"},
    {"name": "core1", "interface": "mg-core1", "mac": "02:00:00:00:00:02", "role": "core"}]}
NH = {"name": "p1", "port": "core1", "mac": "02:aa:00:00:00:01"}


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def entries(n):
    # Pre-serialised: the client's JSON work is not what is measured.
    return [f'{{"label":{FIRST + i},"op":"swap","out":[{17 + (i % 1000)}],"via":"p1"}}' for i in range(n)]


def agent_pid(agent):
    # ip netns exec runs the agent as a child; the RPC info reports its pid.
    return RPC(agent.socket).result("info")["pid"]


def wait_forwarding(p, last_label, start, timeout=120):
    """Sends frames with the last label until one comes out; returns seconds from `start`."""
    pcap = os.path.join(tempfile.gettempdir(), f"mg-bench-{os.getpid()}.pcap")
    wrpcap(pcap, [Ether(dst="02:00:00:00:00:01", src="02:ee:00:00:00:99") / MPLS(label=last_label, s=1, ttl=64)
                  / IP(src="10.0.0.1", dst="10.0.0.2") / UDP() / Raw(b"x" * 20)])
    sink = p.popen(binary("mplsgate-traffic"), "sink", "--iface", "p-core1", "--count", "1", "--duration", str(timeout),
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sink.stderr.readline()
    sender = p.popen(binary("mplsgate-traffic"), "send", "--iface", "p-core0", "--pcap", pcap, "--count",
                     str(timeout * 1000), "--rate", "1000", stdout=subprocess.DEVNULL)
    out, _ = sink.communicate(timeout=timeout + 10)
    t = time.time() - start
    sender.kill()
    sender.wait()
    os.unlink(pcap)
    return t if json.loads(out.strip().splitlines()[-1])["frames"] == 1 else None


def run(mode, a, p, tmp):
    agent = Agent(a, os.path.join(tmp, "config.json"), None, extra=("--no-state", "--max-entries", str(max(N, 1000))))
    assert agent.started(), agent.log
    pid = agent_pid(agent)
    rss0 = rss_kib(pid)
    rpc = RPC(agent.socket, timeout=600)
    rpc.result("apply", {"operations": [{"op": "add", "kind": "nextHop", "entry": NH}]})
    lines = entries(N)
    nh = json.dumps(NH)
    start = time.time()
    if mode == "resync":
        sess = rpc.result("resync.begin")["session"]
        for i in range(0, N, CHUNK):
            body = '{"jsonrpc":"2.0","id":1,"method":"resync.chunk","params":{"session":"%s","nextHops":[%s],"ilm":[%s]}}\n' % (
                sess, nh if i == 0 else "", ",".join(lines[i:i + CHUNK]))
            rpc.send_raw(body.encode())
            r = rpc.read_line()
            assert "result" in r, r
        r = rpc.result("resync.end", {"session": sess})
    else:
        for i in range(0, N, 1000):
            ops = ",".join('{"op":"add","kind":"ilm","entry":%s}' % e for e in lines[i:i + 1000])
            rpc.send_raw(('{"jsonrpc":"2.0","id":1,"method":"apply","params":{"operations":[%s]}}\n' % ops).encode())
            r = rpc.read_line()
            assert "result" in r, r
    programmed = time.time() - start
    forwards = wait_forwarding(p, FIRST + N - 1, start)
    info = rpc.result("info")
    rss1 = rss_kib(pid)
    rpc.close()
    agent.stop()
    return {"mode": mode, "entries": N, "chunk": CHUNK if mode == "resync" else 1000, "seconds": round(programmed, 3),
            "entriesPerSecond": round(N / programmed), "lastEntryForwardsAfterSeconds": forwards and round(forwards, 3),
            "rssKiBBefore": rss0, "rssKiBAfter": rss1, "generation": info["generation"], "ilm": info["entries"]["ilm"]}


def main():
    with tempfile.TemporaryDirectory(prefix="mplsgate-bench-") as tmp, Netns("bagent") as a, Netns("bpeer") as p:
        json.dump(CONFIG, open(os.path.join(tmp, "config.json"), "w"))
        for port in CONFIG["ports"]:
            veth(a, port["interface"], p, "p-" + port["name"], mac_a=port["mac"])
        for mode in ("resync", "apply"):
            r = run(mode, a, p, tmp)
            print(json.dumps(r), flush=True)
            if r["ilm"] != N or r["lastEntryForwardsAfterSeconds"] is None:
                print("benchmark: not every entry was programmed and forwarding", file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
