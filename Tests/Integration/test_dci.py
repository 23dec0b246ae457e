#!/usr/bin/python3
"""The data-centre interconnect as a CI test (root): the topology of dci.py (scripts/demo.sh), then the checks of the
DCI issue: 100 pings without loss, iperf3 both ways, the planned label stacks and TTLs on both core links, valid
VXLAN on both VTEP links (tshark: no malformed frame, no expert error), ARP for a PE's VTEP answered by its host, and
resilience: a controller dropping mid-resync, PE1 killed and restarted without a controller, a core link going down
and up, a make-before-break service-label change, and P's whole FIB resynced under a 1,000 pps ping.

Run: MPLSGATE_BIN_DIR=.build/release /usr/bin/python3 Tests/Integration/test_dci.py   (scripts/test.sh does)
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import check, finish, RPC  # noqa: E402
from dci import DCI, MAC, LABELS, PE1_VTEP, VNI  # noqa: E402





def loss(out):
    m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def tshark(d, path, *args):
    return subprocess.run(["tshark", "-r", path, "-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
                           *d.decode_args(), *args], capture_output=True, text=True, timeout=120).stdout


def stacks(d, path):
    """{(eth.dst, labels, ttls, bottom flags)} of the MPLS frames in a capture."""
    out = tshark(d, path, "-Y", "mpls", "-T", "fields", "-e", "eth.dst", "-e", "mpls.label", "-e", "mpls.ttl",
                 "-e", "mpls.bottom", "-e", "pwethcw")
    seen = set()
    for line in out.splitlines():
        f = line.split("\t")
        # eth.dst lists the outer and the inner destination: the outer one is the core next hop.
        seen.add((f[0].split(",")[0],) + tuple(f[1:4]) + ("cw" if len(f) > 4 and f[4] else "",))
    return seen


def bad_frames(d, path):
    return tshark(d, path, "-Y", "_ws.malformed || _ws.expert.severity >= error", "-T", "fields", "-e", "frame.number").split()


def main():
    if os.geteuid() != 0:
        print("test_dci.py needs root")
        return 1
    d = DCI(control_word=True)
    try:
        print("the interconnect: build, start three agents, program them with mplsgatectl")
        d.build()
        d.start_agents()
        d.program()
        caps = {"w1": d.path("w1.pcap"), "w2": d.path("w2.pcap"), "vtep1": d.path("vtep1.pcap"), "vtep2": d.path("vtep2.pcap")}
        procs = [d.capture("w1", "w1-pe1", caps["w1"], bpf="mpls"), d.capture("w2", "w2-pe2", caps["w2"], bpf="mpls"),
                 d.capture("vtep1", "vtep1-u", caps["vtep1"], bpf="udp port 4789"),
                 d.capture("vtep2", "vtep2-u", caps["vtep2"], bpf="udp port 4789")]
        time.sleep(1)
        out = d.ping(count=100, interval="0.01")
        sent, got = loss(out)
        check(sent == 100 and got == 100, f"100 pings h1 -> h2: {got} replies")
        srv = d.ns["h2"].popen("iperf3", "-s", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        for direction, extra in (("h1 -> h2", ()), ("h2 -> h1", ("-R",))):
            r = d.ns["h1"].run("iperf3", "-c", "10.0.0.2", "-t", "2", "-J", *extra, capture=True, check=False, timeout=60)
            try:
                bits = json.loads(r.stdout)["end"]["sum_received"]["bits_per_second"]
            except Exception:
                bits = 0
            check(bits > 1e6, f"iperf3 TCP {direction}: {bits / 1e6:.0f} Mbit/s")
        srv.kill()
        srv.wait()
        time.sleep(0.5)
        for p in procs:
            p.send_signal(signal.SIGINT)
            p.wait(timeout=10)
        cw = "cw"
        want_w1 = {(MAC["p-west"], f"{LABELS['east_transport']},{LABELS['east_service']}", "255,255", "0,1", cw),
                   (MAC["pe1-core"], f"{LABELS['west_transport_p']},{LABELS['west_service']}", "254,255", "0,1", cw)}
        want_w2 = {(MAC["pe2-core"], f"{LABELS['east_transport_p']},{LABELS['east_service']}", "254,255", "0,1", cw),
                   (MAC["p-east"], f"{LABELS['west_transport']},{LABELS['west_service']}", "255,255", "0,1", cw)}
        got_w1, got_w2 = stacks(d, caps["w1"]), stacks(d, caps["w2"])
        check(got_w1 == want_w1, f"core link PE1-P: every frame is Ethernet / transport / service (S=1) / CW with the planned labels and TTLs: {sorted(got_w1)}")
        check(got_w2 == want_w2, f"core link P-PE2: {sorted(got_w2)}")
        inner = tshark(d, caps["w1"], "-Y", "pwethcw && eth.src == " + MAC["h1"], "-T", "fields", "-e", "eth.dst")
        check(MAC["h2"] in inner, "the pseudowire carries h1's Ethernet frames to h2's MAC")
        for name in ("w1", "w2", "vtep1", "vtep2"):
            bad = bad_frames(d, caps[name])
            check(not bad, f"{name}: tshark reports no malformed frame and no expert error ({len(bad)})")
        for name in ("vtep1", "vtep2"):
            vnis = set(tshark(d, caps[name], "-Y", "vxlan", "-T", "fields", "-e", "vxlan.vni").split())
            # checksum status: 1 good, 3 not present (UDP checksum 0 over IPv4, RFC 7348)
            n = len(tshark(d, caps[name], "-Y", "vxlan && ip.checksum.status == 1 && (udp.checksum.status == 1 || udp.checksum.status == 3)",
                           "-T", "fields", "-e", "frame.number").split())
            total = len(tshark(d, caps[name], "-Y", "vxlan", "-T", "fields", "-e", "frame.number").split())
            check(vnis == {str(VNI)} and total > 0 and n == total,
                  f"{name}: {total} VXLAN frames, VNI {vnis}, IP checksums good and UDP checksums good or zero ({n})")
        # ARP for a PE's VTEP address is the PE host's to answer.
        d.ns["vtep1"].run("ip", "neigh", "flush", "dev", "vtep1-u")
        d.ns["vtep1"].run("ping", "-c", "1", "-W", "1", PE1_VTEP, check=False, capture=True)
        neigh = d.ns["vtep1"].run("ip", "neigh", "show", PE1_VTEP, capture=True).stdout
        check(MAC["pe1-dc"] in neigh, f"ARP for PE1's VTEP address is answered by its host stack: {neigh.strip()}")

        print("resilience")
        # (a) the controller's connection drops mid-resync
        pinger = d.ns["h1"].popen("ping", "-c", "300", "-i", "0.01", "-W", "1", "10.0.0.2", stdout=subprocess.PIPE)
        rpc = RPC(d.path("pe1.sock"))
        gen = rpc.result("info")["generation"]
        sess = rpc.result("resync.begin")["session"]
        rpc.result("resync.chunk", {"session": sess, "nextHops": [{"name": "x", "port": "core", "mac": "02:00:00:00:00:99"}]})
        rpc.sock.close()
        out, _ = pinger.communicate(timeout=60)
        sent, got = loss(out)
        info = RPC(d.path("pe1.sock")).result("info")
        check(sent == 300 and got == 300 and info["generation"] == gen and not info["resyncOpen"],
              f"(a) the controller drops mid-resync: {got}/300 replies, FIB unchanged")
        # (b) PE1 killed and restarted with no controller
        check(info["durableGeneration"] == info["generation"], "PE1's state file holds its FIB")
        pinger = d.ns["h1"].popen("ping", "-D", "-i", "0.01", "-W", "1", "10.0.0.2", stdout=subprocess.PIPE)
        time.sleep(1)
        pe1 = d.agents["pe1"]
        pe1.proc.send_signal(signal.SIGKILL)
        pe1.proc.wait()
        killed = time.time()
        time.sleep(0.5)
        restarted = d.start_agent("pe1")
        start = restarted.start_time
        time.sleep(2)
        pinger.send_signal(signal.SIGINT)
        out, _ = pinger.communicate(timeout=30)
        replies = [float(m.group(1)) for m in re.finditer(r"^\[(\d+\.\d+)\] \d+ bytes from", out, re.M)]
        before = [t for t in replies if t <= killed]
        after = [t for t in replies if t > killed]
        first = after[0] if after else None
        gap = (first - before[-1]) if first and before else None
        check(first is not None and gap is not None and gap >= 0.4 and first - start <= 1.0,
              f"(b) after kill -9 and a restart without controller: no replies for {gap and round(gap, 3)} s, then the first "
              f"{round(first - start, 4) if first else None} s after the agent's logged start (<= 1.0)")
        # (c) a core link goes down and up; a subscriber to PE1's events hears both
        events = RPC(d.path("pe1.sock"))
        events.result("events.subscribe")
        d.ns["pe1"].run("ip", "link", "set", "pe1-core", "down")
        out = d.ping(count=3, interval="0.2")
        check(loss(out)[1] == 0, "(c) with PE1's core link down, pings fail")
        d.ns["pe1"].run("ip", "link", "set", "pe1-core", "up")
        t0 = time.time()
        back = None
        while time.time() - t0 < 15:
            if loss(d.ping(count=1, interval="0.2"))[1] == 1:
                back = time.time() - t0
                break
        out = d.ping(count=50, interval="0.01")
        check(back is not None and loss(out)[1] == 50,
              f"(c) the link comes back up and forwarding resumes by itself ({back and round(back, 2)} s), 50/50 replies")
        states = []
        events.sock.settimeout(5)
        try:
            while len(states) < 2:
                ev = events.read_line()
                if ev.get("method") == "event" and ev["params"].get("type") == "port":
                    states.append((ev["params"]["port"], ev["params"]["state"]))
        except OSError:
            pass
        events.close()
        check(states == [("core", "down"), ("core", "up")], f"(c) events.subscribe reported the link going down and up: {states}")
        # (d) make-before-break change of the westbound service label 2001 -> 2002
        pinger = d.ns["h1"].popen("ping", "-c", "600", "-i", "0.01", "-W", "1", "10.0.0.2", stdout=subprocess.PIPE)
        time.sleep(0.5)
        new = d.fibs(west_service=2002)
        pw = next(e for e in new["pe1"]["ilm"] if e["label"] == 2002)
        ops = d.path("pe1-add-2002.json")
        json.dump({"operations": [{"op": "add", "kind": "ilm", "entry": pw}]}, open(ops, "w"))
        d.ctl("pe1", "apply", ops)
        time.sleep(0.5)
        ops = d.path("pe2-vni-2002.json")
        json.dump({"operations": [{"op": "replace", "kind": "vni", "entry": new["pe2"]["vni"][0]}]}, open(ops, "w"))
        d.ctl("pe2", "apply", ops)
        time.sleep(0.5)
        d.program(west_service=2002, only=("pe1",))
        out, _ = pinger.communicate(timeout=60)
        labels = json.loads(d.ctl("pe1", "--json", "show", "labels").stdout)["ilm"]
        have = {e["label"] for e in labels}
        check(loss(out) == (600, 600) and 2002 in have and 2001 not in have,
              f"(d) make-before-break service label change: {loss(out)[1]}/600 replies; PE1 now has {sorted(have)}")
        # (e) P's whole FIB resynced under a 1,000 pps ping, alternately with and without one unused entry, so every
        # resync is a commit (a resync equal to the FIB creates no generation) while the labels in use stay
        p_fib = d.fibs(west_service=2002)["p"]
        variant = dict(p_fib, ilm=p_fib["ilm"] + [{"label": 99999, "op": "swap", "out": [99999], "via": "to-pe2"}])
        fib_paths = [d.path("p-fib-variant.json"), d.path("p-fib-base.json")]
        json.dump(variant, open(fib_paths[0], "w"))
        json.dump(p_fib, open(fib_paths[1], "w"))
        pinger = d.ns["h1"].popen("ping", "-c", "3000", "-i", "0.001", "-W", "1", "10.0.0.2", stdout=subprocess.PIPE)
        gen = RPC(d.path("p.sock")).result("info")["generation"]
        resyncs = 0
        while pinger.poll() is None and resyncs < 20:
            d.ctl("p", "resync", fib_paths[resyncs % 2])
            resyncs += 1
            time.sleep(0.1)
        out, _ = pinger.communicate(timeout=60)
        gen2 = RPC(d.path("p.sock")).result("info")["generation"]
        check(loss(out) == (3000, 3000) and gen2 == gen + resyncs,
              f"(e) {resyncs} resyncs of P's whole FIB under a 1,000 pps ping: {loss(out)[1]}/3000 replies, generation {gen} -> {gen2}")
    finally:
        d.teardown()
    return finish("interconnect")


if __name__ == "__main__":
    sys.exit(main())
