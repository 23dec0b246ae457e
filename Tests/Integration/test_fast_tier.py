#!/usr/bin/python3
"""Root integration test of the fast tier (issue 19, bpf/fast_tier.h) on real veths in network namespaces this test
creates and always deletes.

Run: MPLSGATE_BIN_DIR=.build/release /usr/bin/python3 Tests/Integration/test_fast_tier.py   (scripts/test.sh does)

1. Every fixture of Tests/Fixtures/cases.json is sent on its ingress port's peer with the fast tier on and every
   peer taking redirected frames (GRO on): each forwarded frame arrives on the right peer byte for byte; the fast
   tier forwards the transit ones itself (its counters say how many); every other frame takes AF_XDP as before.
2. The same frames with --fast-path off: ports, drops and per-entry (ILM) counters are the same as in 1, so the
   counters do not depend on the tier that forwarded.
3. A tier change: a peer that stops taking redirected frames (GRO off) is noticed within the agent's one-second
   check; frames to it keep arriving, through AF_XDP; when it takes them again the fast tier comes back.
4. A trace sees frames the fast tier would forward (it steps aside while a trace is armed).
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import check, run_lab_suite, Agent, Sink, send, RPC, binary  # noqa: E402
from test_agent import CASES, PORTS, CONFIG, FIB, steered, matches  # noqa: E402

from scapy.all import Ether, wrpcap, rdpcap  # noqa: E402


def gro(p, on):
    for port in PORTS:
        p.run("ethtool", "-K", "p-" + port["name"], "gro", "on" if on else "off")


def fixture_frames():
    """(port name, frame, case) of every fixture the live test can send (a whole Ethernet header, ≤ the MTU)."""
    out = []
    for port in PORTS:
        for c in CASES:
            frame = bytes.fromhex(c["input"])
            if c["port"] == port["name"] and 14 <= len(frame) <= 1518:
                out.append((port, frame, c))
    return out


def run_once(a, p, tmp, tag, extra=()):
    """Starts an agent, sends every fixture, returns (counters at stop, ILM entry counters, outputs per port, log)."""
    agent = Agent(a, CONFIG, FIB, extra=list(extra), instance="fast-" + tag)
    if not check(agent.started(), f"{tag}: agent starts: " + " | ".join(agent.log[-2:])):
        return None
    sinks = {port["name"]: Sink(p, "p-" + port["name"], out=os.path.join(tmp, f"{tag}-out-{port['name']}.pcap"))
             for port in PORTS}
    by_port = {}
    for port, frame, _ in fixture_frames():
        by_port.setdefault(port["name"], []).append(Ether(frame))
    for name, frames in by_port.items():
        pcap = os.path.join(tmp, f"{tag}-in-{name}.pcap")
        wrpcap(pcap, frames)
        r = send(p, "p-" + name, pcap, rate=2000)
        check(r["sent"] == len(frames), f"{tag}: {name}: sent {len(frames)} fixture frames")
    time.sleep(0.5)
    for s in sinks.values():
        s.result()
    rpc = RPC(agent.socket)
    ilm = {}
    cursor = None
    while True:
        params = {"kind": "ilm", "limit": 1000}
        if cursor:
            params["cursor"] = cursor
        r = rpc.result("counters", params)
        for e in r["entries"]:
            ilm[e["key"]] = (e["packets"], e["bytes"])
        cursor = r.get("next")
        if not cursor:
            break
    rpc.close()
    ctl = subprocess.run(["ip", "netns", "exec", a.name, binary("mplsgatectl"), "--socket", agent.socket, "show", "ports"],
                         capture_output=True, text=True)
    rc, counters, log = agent.stop()
    check(rc == 0 and counters is not None, f"{tag}: agent stops cleanly (exit {rc})")
    outputs = {port["name"]: [bytes(f) for f in rdpcap(os.path.join(tmp, f"{tag}-out-{port['name']}.pcap"))]
               for port in PORTS}
    return counters, ilm, outputs, log, ctl.stdout


def expected_outputs():
    want = {port["name"]: [] for port in PORTS}
    for port, frame, c in fixture_frames():
        if not steered(port, frame):
            continue
        if c["verdict"] == "forward":
            want[c["expect"][0]["port"]].append(c)
        elif c["verdict"] == "flood":
            for e in c["copies"]:
                want[e["port"]].append({"name": c["name"] + " (copy)", "expect": [e]})
    return want


def check_outputs(tag, outputs):
    """Every expected frame arrived on its port byte for byte (matched as a multiset: a frame the fast tier
    forwards overtakes one still on its way through AF_XDP); returns how many arrived out of fixture order."""
    reordered = 0
    for name, want in expected_outputs().items():
        got = list(outputs[name])
        unmatched = []
        for i, c in enumerate(want):
            j = next((k for k, g in enumerate(got) if any(matches(g, e) for e in c["expect"])), None)
            if j is None:
                unmatched.append(c["name"])
                continue
            if j != 0:
                reordered += 1
            got.pop(j)
        check(not unmatched and not got,
              f"{tag}: {name}: {len(want)} frames expected, byte for byte (missing {unmatched[:3]}, {len(got)} extra)")
    return reordered


def run_sameness(a, p, tmp):
    print("fixtures with the fast tier on (every peer takes redirected frames), then off: same frames, same counters")
    gro(p, True)
    on = run_once(a, p, tmp, "on")
    off = run_once(a, p, tmp, "off", extra=["--fast-path", "off"])
    gro(p, False)
    if not on or not off:
        return
    (c_on, ilm_on, out_on, log_on, show_on), (c_off, ilm_off, out_off, _, show_off) = on, off
    check(any("fast tier on for core0, core1; redirects to core0, core1, dc0, vrf0" in line for line in log_on),
          "the agent says which ports run the fast tier and which take its frames")
    reordered = check_outputs("on", out_on)
    check_outputs("off", out_off)
    print(f"  ({reordered} frames arrived before a fixture sent earlier: the fast tier overtakes AF_XDP)")
    fast = sum(c_on["ports"][port["name"]]["xdp"]["fastForwarded"] for port in PORTS)
    fast_rx = sum((c_on["ports"][port["name"]].get("fastTier") or {}).get("rxPackets", 0) for port in PORTS)
    check(fast >= 15, f"the fast tier forwarded {fast} fixture frames itself (swap, PHP, pops, ECMP)")
    check(fast == fast_rx, f"its program's count ({fast}) is its tables' ({fast_rx})")
    check(all(c_off["ports"][port["name"]]["xdp"]["fastForwarded"] == 0 for port in PORTS),
          "with --fast-path off nothing is forwarded by the fast tier")
    for port in PORTS:
        n = port["name"]
        a_, b_ = c_on["ports"][n], c_off["ports"][n]
        same = all(a_[k] == b_[k] for k in ("rxPackets", "rxBytes", "txPackets", "txBytes", "dropPackets"))
        check(same, f"{n}: rx/tx/drop counters the same with the fast tier on and off "
                    f"({[a_[k] for k in ('rxPackets', 'txPackets', 'dropPackets')]} vs "
                    f"{[b_[k] for k in ('rxPackets', 'txPackets', 'dropPackets')]})")
        fr = (a_.get("fastTier") or {}).get("rxPackets", 0)
        check(a_["rxPackets"] == a_["rings"]["rxPackets"] + fr,
              f"{n}: every frame received counted once (AF_XDP {a_['rings']['rxPackets']} + fast tier {fr})")
    check(c_on["drops"] == c_off["drops"], "drop counters the same with the fast tier on and off")
    check(ilm_on == ilm_off and any(v[0] for v in ilm_on.values()),
          f"per-entry ILM counters the same with the fast tier on and off ({len(ilm_on)} entries)")
    check("fast tier: transit labels from core0, core1 to core0, core1, dc0, vrf0 stay in the XDP program" in show_on,
          "mplsgatectl show ports shows the tier per port pair")
    check("fast tier: off" in show_off, "mplsgatectl show ports says when the fast tier is off")


def run_tier_change(a, p, tmp):
    print("a peer that stops taking redirected frames: noticed, its frames go through AF_XDP, then back")
    swap = next(c for c in CASES if c["name"] == "swap ttl 64, S=0 kept, label below untouched")
    out_port = swap["expect"][0]["port"]
    gro(p, True)
    agent = Agent(a, CONFIG, FIB, instance="fast-change")
    if not check(agent.started(), "agent starts"):
        return
    pcap = os.path.join(tmp, "swap.pcap")
    wrpcap(pcap, [Ether(bytes.fromhex(swap["input"]))])
    rpc = RPC(agent.socket)

    def fast_count():
        ports = rpc.result("counters")["ports"]
        return sum(v["xdp"]["fastForwarded"] for v in ports.values())

    def sent_and_received(n):
        sink = Sink(p, "p-" + out_port, out=os.path.join(tmp, "change.pcap"))
        send(p, "p-" + swap["port"], pcap, count=n, rate=1000)
        time.sleep(0.3)
        return sink.result()["frames"]

    f0 = fast_count()
    got = sent_and_received(50)
    f1 = fast_count()
    check(got == 50 and f1 - f0 == 50, f"peer with GRO on: 50 of 50 arrived ({got}), all through the fast tier ({f1 - f0})")
    p.run("ethtool", "-K", "p-" + out_port, "gro", "off")
    time.sleep(2.5)
    got = sent_and_received(50)
    f2 = fast_count()
    check(got == 50 and f2 == f1, f"peer with GRO off: 50 of 50 arrived ({got}), none through the fast tier ({f2 - f1})")
    p.run("ethtool", "-K", "p-" + out_port, "gro", "on")
    time.sleep(2.5)
    got = sent_and_received(50)
    f3 = fast_count()
    check(got == 50 and f3 - f2 == 50, f"GRO on again: 50 of 50 arrived ({got}), through the fast tier again ({f3 - f2})")
    # A trace sees frames the fast tier would forward: it steps aside while the trace is armed.
    sender = p.popen(binary("mplsgate-traffic"), "send", "--iface", "p-" + swap["port"], "--pcap", pcap,
                     "--count", "2000", "--rate", "1000", stdout=subprocess.DEVNULL)
    r = rpc.call("trace", {"count": 3, "timeoutMs": 3000})
    sender.kill()
    sender.wait()
    traced = (r.get("result") or {}).get("packets") or (r.get("result") or {}).get("frames") or r.get("result")
    check(isinstance(traced, list) and len(traced) == 3 and all(t.get("decision") == "forward" for t in traced),
          f"a trace records 3 frames of a fast-tier label ({str(r)[:200]})")
    rpc.close()
    rc, _, log = agent.stop()
    gro(p, False)
    check(rc == 0, f"agent stops cleanly (exit {rc})")
    check(any(f"fast tier: {out_port}" in line and "no longer takes redirected frames" in line for line in log),
          "the agent logs the port that stopped taking redirected frames")
    check(any(f"fast tier: {out_port}" in line and "takes redirected frames now" in line for line in log),
          "and the port that takes them again")


def main():
    return run_lab_suite("test_fast_tier.py", "fast-tier", [run_sameness, run_tier_change])


if __name__ == "__main__":
    sys.exit(main())
