#!/usr/bin/python3
"""Control-plane speed: program N ILM entries into a live agent through its socket and report entries/s, the longest
reply (the longest step of the control thread a client waits for), the time until the last entry forwards, the
agent's resident memory (before, after, peak), and what a second client asking `info` every 2 ms waited meanwhile
(the longest control-thread step anyone else sees; large resyncs compile on a builder thread). Modes, each on a fresh agent (`--no-state`):

  resync          one chunked resync of objects (CHUNK entries per chunk)
  resync-compact  the same in the compact form (columns and rows)
  apply           apply calls of 1,000 entries
  apply-10k       apply calls of 10,000 entries in the compact form
  resync-1pct-compact  the same, the second resync in the compact form
  resync-1pct     after a resync of N, a second resync of the same N with 1 % of the entries changed (timed alone;
                  the changed entries' replies and counters follow the usual replace rules)
  ctl-encode      `mplsgatectl resync FILE` (objects, then --compact) of an N-entry FIB document against a stand-in
                  socket that answers every request at once: mplsgatectl's own read, decode and encode rate
  ip-batch        `ip -batch` adding N IPv4 /24 routes in a scratch namespace (on a veth: this kernel has no dummy
                  driver), the kernel's FIB through netlink, for comparison with MPLSGate's FTN figures

Prints one JSON object per mode.
Run (root): MPLSGATE_BIN_DIR=.build/release /usr/bin/python3 Benchmarks/control/program.py [N] [CHUNK] [MODE...]
(Benchmarks/control/run.sh builds first.) The agent, the client and the traffic tools share this machine's cores.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "Tests", "Integration"))
from harness import Netns, veth, Agent, RPC, binary  # noqa: E402
import common  # noqa: E402
from scapy.all import Ether, IP, UDP, Raw, wrpcap  # noqa: E402
from scapy.contrib.mpls import MPLS  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
CHUNK = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
MODES = sys.argv[3:] or ["resync", "resync-compact", "apply", "apply-10k", "resync-1pct", "ctl-encode", "ip-batch"]
FIRST = 16
CONFIG = {"version": 1, "ports": [
    {"name": "core0", "interface": "mg-core0", "mac": "02:00:00:00:00:01", "role": "core"},
    {"name": "core1", "interface": "mg-core1", "mac": "02:00:00:00:00:02", "role": "core"}]}
NH = {"name": "p1", "port": "core1", "mac": "02:aa:00:00:00:01"}


def rss_kib(pid, field="VmRSS:"):
    return common.proc_field(pid, "status", field)


def entries(n, variant=0):
    # Pre-serialised: the client's JSON work is not what is measured.
    return [f'{{"label":{FIRST + i},"op":"swap","out":[{17 + (i + variant) % 1000}],"via":"p1"}}' for i in range(n)]


def rows(n, start=0, variant=0):
    """Compact rows for labels start..<start+n, pre-serialised."""
    return [f'[{FIRST + i},"swap",[{17 + (i + variant) % 1000}],"p1"]' for i in range(start, start + n)]


COLUMNS = '"columns":["label","op","out","via"]'


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
    # A burst may bring more than one frame before the sink stops.
    return t if json.loads(out.strip().splitlines()[-1])["frames"] >= 1 else None


def resync(rpc, chunks):
    """One resync of the ILM chunks; returns (seconds, longest reply, end reply)."""
    seconds, longest, _, end = common.resync(rpc, "ilm", chunks, NH)
    return seconds, longest, end


class Probe(threading.Thread):
    """A second client asking `info` every 2 ms while the mode runs: its longest wait is the longest step the control
    thread took for someone else (a resync compiled on the builder thread does not count, an apply does)."""

    def __init__(self, socket_path):
        super().__init__(daemon=True)
        self.rpc = RPC(socket_path, timeout=600)
        self.waits = []
        self.stopping = False

    def run(self):
        while not self.stopping:
            t = time.time()
            self.rpc.result("info")
            self.waits.append(time.time() - t)
            time.sleep(0.002)

    def finish(self):
        self.stopping = True
        self.join()
        self.rpc.close()
        w = sorted(self.waits) or [0.0]
        return {"probeRequests": len(self.waits), "probeWaitMsP50": round(w[len(w) // 2] * 1000, 2),
                "probeWaitMsP99": round(w[min(len(w) - 1, len(w) * 99 // 100)] * 1000, 2),
                "probeWaitMsMax": round(w[-1] * 1000, 2)}


def object_chunks(variant=0):
    lines = entries(N, variant)
    return ["[" + ",".join(lines[i:i + CHUNK]) + "]" for i in range(0, N, CHUNK)]


def compact_chunks():
    return ["{%s,\"rows\":[%s]}" % (COLUMNS, ",".join(rows(min(CHUNK, N - i), i))) for i in range(0, N, CHUNK)]


def run(mode, a, p, tmp):
    agent = Agent(a, os.path.join(tmp, "config.json"), None, extra=("--no-state", "--max-entries", str(max(N, 1000))))
    assert agent.started(), agent.log
    pid = agent_pid(agent)
    rss0 = rss_kib(pid)
    rpc = RPC(agent.socket, timeout=600)
    if mode.startswith("apply"):
        rpc.result("apply", {"operations": [{"op": "add", "kind": "nextHop", "entry": NH}]})
    # (A resync sends the next hop in its first chunk: it starts from an empty FIB.)
    probe = Probe(agent.socket)
    probe.start()
    longest = 0.0
    extra = {}
    if mode in ("resync", "resync-1pct", "resync-1pct-compact"):
        chunks = object_chunks()
        programmed, longest, _ = resync(rpc, chunks)
        if mode.startswith("resync-1pct"):
            # 1 % of the entries get other labels; the rest are sent unchanged.
            if mode == "resync-1pct":
                lines = entries(N)
                changed = entries(N, variant=1)
            else:
                lines = rows(N)
                changed = rows(N, variant=1)
            for i in range(0, N, 100):
                lines[i] = changed[i]
            if mode == "resync-1pct":
                chunks = ["[" + ",".join(lines[i:i + CHUNK]) + "]" for i in range(0, N, CHUNK)]
            else:
                chunks = ["{%s,\"rows\":[%s]}" % (COLUMNS, ",".join(lines[i:i + CHUNK])) for i in range(0, N, CHUNK)]
            del lines, changed
            rss_full = rss_kib(pid)
            programmed, longest, end = resync(rpc, chunks)
            extra = {"firstResyncRssKiB": rss_full, "resyncEnd": end}
        del chunks
    elif mode == "resync-compact":
        chunks = compact_chunks()
        programmed, longest, _ = resync(rpc, chunks)
        del chunks
    else:
        per_call = 10_000 if mode == "apply-10k" else 1000
        if mode == "apply-10k":
            bodies = ['{"jsonrpc":"2.0","id":1,"method":"apply","params":{"operations":[{"op":"add","kind":"ilm",%s,"rows":[%s]}]}}\n'
                      % (COLUMNS, ",".join(rows(min(per_call, N - i), i))) for i in range(0, N, per_call)]
        else:
            lines = entries(N)
            bodies = ['{"jsonrpc":"2.0","id":1,"method":"apply","params":{"operations":[%s]}}\n'
                      % ",".join('{"op":"add","kind":"ilm","entry":%s}' % e for e in lines[i:i + per_call])
                      for i in range(0, N, per_call)]
            del lines
        start = time.time()
        for body in bodies:
            t = time.time()
            rpc.send_raw(body.encode())
            r = rpc.read_line()
            longest = max(longest, time.time() - t)
            assert "result" in r, r
        programmed = time.time() - start
        del bodies
    start = time.time() - programmed
    forwards = wait_forwarding(p, FIRST + N - 1, start) if not mode.startswith("resync-1pct") else None
    probed = probe.finish()
    info = rpc.result("info")
    rss1 = rss_kib(pid)
    peak = rss_kib(pid, "VmHWM:")
    rpc.close()
    agent.stop()
    out = {"mode": mode, "entries": N, "chunk": CHUNK if mode.startswith("resync") else (10_000 if mode == "apply-10k" else 1000),
           "seconds": round(programmed, 3), "entriesPerSecond": round(N / programmed),
           "longestReplySeconds": round(longest, 3), "lastEntryForwardsAfterSeconds": forwards and round(forwards, 3),
           "rssKiBBefore": rss0, "rssKiBAfter": rss1, "rssKiBPeak": peak, "generation": info["generation"],
           "ilm": info["entries"]["ilm"], "commitStats": info.get("commitStats"), "compiles": info.get("compiles"),
           "controlLoop": info.get("controlLoop")}
    out.update(probed)
    out.update(extra)
    return out


def ctl_encode(tmp):
    """mplsgatectl's own rate: it reads an N-entry document and sends it as chunks to a stand-in server (a thread
    here) that answers each request at once, so the agent's work is not in the time."""
    import socket as s
    path = os.path.join(tmp, "fib-1m.json")
    with open(path, "w") as f:
        f.write('{"version":1,"nextHops":[%s],"ilm":[' % json.dumps(NH))
        f.write(",".join(entries(N)))
        f.write("]}")
    sock_path = os.path.join(tmp, "stand-in.sock")
    server = s.socket(s.AF_UNIX, s.SOCK_STREAM)
    server.bind(sock_path)
    server.listen(4)
    received = [0]

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            buf = b""
            with conn:
                while True:
                    data = conn.recv(1 << 22)
                    if not data:
                        break
                    buf += data
                    while b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        # Only the envelope is read (a chunk's entries are not parsed here: not what is measured).
                        head = line[:300].decode("utf-8", "replace")
                        method = re.search(r'"method":"([^"]+)"', head).group(1)
                        rid = int(re.search(r'"id":(\d+)', head).group(1))
                        received[0] += len(line)
                        result = {"session": "1", "generation": 0, "maxEntriesPerChunk": 100000} if method == "resync.begin" \
                            else {"chunk": 0, "received": 0, "total": 0} if method == "resync.chunk" \
                            else {"generation": 1, "added": N, "replaced": 0, "deleted": 0}
                        conn.sendall(json.dumps({"jsonrpc": "2.0", "id": rid, "result": result}).encode() + b"\n")

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    out = {"mode": "ctl-encode", "entries": N, "documentBytes": os.path.getsize(path)}
    for form, extra in (("objects", []), ("compact", ["--compact"])):
        received[0] = 0
        start = time.time()
        r = subprocess.run([binary("mplsgatectl"), "--socket", sock_path, "resync", path, *extra], capture_output=True, text=True)
        seconds = time.time() - start
        assert r.returncode == 0, r.stderr
        out[form] = {"seconds": round(seconds, 3), "entriesPerSecond": round(N / seconds), "bytesSent": received[0]}
    server.close()
    os.unlink(path)
    return out


def ip_batch(tmp):
    """`ip -batch` of N IPv4 /24 routes on a veth (no dummy driver here) in a scratch namespace: the kernel's FIB,
    through netlink."""
    with Netns("bip") as ns:
        # This kernel has no dummy driver: a veth pair inside the scratch namespace stands in (routes only).
        ns.run("ip", "link", "add", "d0", "type", "veth", "peer", "name", "d1")
        ns.run("ip", "link", "set", "d0", "up")
        ns.run("ip", "link", "set", "d1", "up")
        ns.run("ip", "addr", "add", "192.0.2.1/24", "dev", "d0")
        path = os.path.join(tmp, "routes.batch")
        with open(path, "w") as f:
            for i in range(N):
                f.write(f"route add {10 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}.0/24 via 192.0.2.2 dev d0\n")
        start = time.time()
        ns.run("ip", "-batch", path, timeout=600)
        seconds = time.time() - start
        count = int(subprocess.run(ns.cmd("sh", "-c", "ip route show | wc -l"), capture_output=True, text=True).stdout)
        os.unlink(path)
    return {"mode": "ip-batch", "entries": N, "seconds": round(seconds, 3), "entriesPerSecond": round(N / seconds),
            "routesInTable": count}


def main():
    with tempfile.TemporaryDirectory(prefix="mplsgate-bench-") as tmp, Netns("bagent") as a, Netns("bpeer") as p:
        json.dump(CONFIG, open(os.path.join(tmp, "config.json"), "w"))
        for port in CONFIG["ports"]:
            veth(a, port["interface"], p, "p-" + port["name"], mac_a=port["mac"])
        for mode in MODES:
            if mode == "ip-batch":
                print(json.dumps(ip_batch(tmp)), flush=True)
                continue
            if mode == "ctl-encode":
                print(json.dumps(ctl_encode(tmp)), flush=True)
                continue
            r = run(mode, a, p, tmp)
            print(json.dumps(r), flush=True)
            if r["ilm"] != N or (not mode.startswith("resync-1pct") and r["lastEntryForwardsAfterSeconds"] is None):
                print("benchmark: not every entry was programmed and forwarding", file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
