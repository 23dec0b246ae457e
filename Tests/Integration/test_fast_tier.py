#!/usr/bin/python3
"""Root integration test of the fast tier (issue 19, bpf/fast_tier.h) on real veths in network namespaces this test
creates and always deletes.

Run: MPLSGATE_BIN_DIR=.build/release /usr/bin/python3 Tests/Integration/test_fast_tier.py   (scripts/test.sh does)

1. Every fixture of Tests/Fixtures/cases.json is sent on its ingress port's peer with the fast tier on and every
   peer taking redirected frames (GRO on): each forwarded frame arrives on the right peer byte for byte; the fast
   tier forwards the transit ones itself (its counters say how many); every other frame takes AF_XDP as before.
2. The same frames with --fast-path off: ports, drops and per-entry (ILM) counters are the same as in 1, so the
   counters do not depend on the tier that forwarded.
3. A tier change: a peer that stops taking redirected frames (GRO off) is noticed from the kernel's device change
   notification within 0.2 s; frames to it keep arriving, through AF_XDP; when it takes them again the fast tier
   comes back. Frames the egress device refuses after the redirect (longer than its MTU; sent before the agent
   noticed GRO off) are counted as xdpTransmitError drops of their ingress port.
4. A trace sees frames the fast tier would forward (it steps aside while a trace is armed).
5. Churn across tiers: 10,000 frames/s of one label for 60 s (MPLSGATE_SOAK_SECONDS) while 1,000 commits/s cycle
   its entry through a swap the fast tier does (via p1), a 5-label swap it leaves to AF_XDP (via p9) and a
   popToVXLAN (AF_XDP, out of dc0): every frame arrives once, on core0 or dc0, with one generation's rewrite, and
   the label's counter counts every frame; frames overtaken at a tier change are reported.
6. One generation per frame: 10,000 frames/s of a two-label stack (150 pop, 151 swap) for 20 s
   (MPLSGATE_GENERATION_SECONDS) while commits, as fast as the agent takes them, change both labels and the next
   hop's MAC together: A uniform, 151 -> 210, MAC :09; then A pipe, 151 -> 211, MAC :0a. A frame that read one
   label, or the record, from the other generation has a TTL, label and MAC that do not belong together; none may.
   Every frame is forwarded by the fast tier.
"""
import struct
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
    fast_info = rpc.result("info").get("fastTier")
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
    return counters, ilm, outputs, log, ctl.stdout, fast_info


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
    (c_on, ilm_on, out_on, log_on, show_on, info_on), (c_off, ilm_off, out_off, _, show_off, info_off) = on, off
    check(info_on and info_on["labels"] > 0 and info_on["redirectsTo"] == ["core0", "core1", "dc0", "vrf0"]
          and not info_on["syncOwed"] and info_on["labelsWithoutEntry"] == 0,
          f"info.fastTier says what the fast tier switches and where it redirects: {info_on}")
    check(info_off is None, "info.fastTier is null with --fast-path off")
    check(any("fast tier on for core0, core1; redirects to core0, core1, dc0, vrf0" in line for line in log_on),
          "the agent says which ports run the fast tier and which take its frames")
    reordered = check_outputs("on", out_on)
    check_outputs("off", out_off)
    print(f"  ({reordered} frames arrived before a fixture sent earlier: the fast tier overtakes AF_XDP)")
    fast = sum(c_on["ports"][port["name"]]["xdp"]["fastForwarded"] for port in PORTS)
    fast_rx = sum((c_on["ports"][port["name"]].get("fastTier") or {}).get("rxPackets", 0) for port in PORTS)
    check(fast >= 15, f"the fast tier forwarded {fast} fixture frames itself (swap, PHP, pops, ECMP)")
    sent_out = sum(len(v) for v in out_on.values())
    tx = sum(c_on["ports"][port["name"]]["txPackets"] for port in PORTS)
    check(fast == fast_rx and tx == sent_out,
          f"the agent's tx counters ({tx}, the fast tier's part included) count the frames the peers received ({sent_out})")
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
    # The kernel announces the change (netdev "mgmt" notifications): the agent follows within milliseconds, not at
    # its one-second check.
    p.run("ethtool", "-K", "p-" + out_port, "gro", "off")
    time.sleep(0.2)
    got = sent_and_received(50)
    f2 = fast_count()
    check(got == 50 and f2 == f1, f"peer with GRO off, 0.2 s later: 50 of 50 arrived ({got}), none through the fast "
                                  f"tier ({f2 - f1})")
    p.run("ethtool", "-K", "p-" + out_port, "gro", "on")
    time.sleep(0.2)
    got = sent_and_received(50)
    f3 = fast_count()
    check(got == 50 and f3 - f2 == 50, f"GRO on again, 0.2 s later: 50 of 50 arrived ({got}), through the fast tier "
                                       f"again ({f3 - f2})")

    # Frames the egress device refuses after the redirect are drops of the port they came in on (xdpTransmitError).
    def refused(egress="core1"):
        c = rpc.result("counters")
        return c["drops"]["xdpTransmitError"], c["ports"][swap["port"]]["dropPackets"], c["ports"][egress]["txPackets"]

    # Label 101 (examples/fib.json: swap to [201, 301] via p2, out of core1), 300 bytes, while core1's device has a
    # 200-byte MTU (the FIB's next hop says 1500, so the fast tier redirects it).
    other = "core1"
    iface = next(pt["interface"] for pt in json.load(open(CONFIG))["ports"] if pt["name"] == other)
    mtu = json.loads(a.run("ip", "-j", "link", "show", iface, capture=True).stdout)[0]["mtu"]
    frame = bytearray(bytes.fromhex(swap["input"]))
    lse = struct.unpack(">I", frame[14:18])[0]
    frame[14:18] = struct.pack(">I", 101 << 12 | (lse & 0xFFF))
    big = os.path.join(tmp, "swap-300.pcap")
    wrpcap(big, [Ether(bytes(frame) + b"\x55" * (300 - len(frame)))])
    e0, d0, t0 = refused()
    a.run("ip", "link", "set", iface, "mtu", "200")
    sink = Sink(p, "p-" + other, out=os.path.join(tmp, "refused.pcap"))
    send(p, "p-" + swap["port"], big, count=50, rate=1000)
    time.sleep(0.3)
    got = sink.result()["frames"]
    a.run("ip", "link", "set", iface, "mtu", str(mtu))
    e1, d1, t1 = refused()
    check(got == 0 and e1 - e0 == 50 and d1 - d0 == 50 and t1 == t0,
          f"300-byte frames to a device with MTU 200: {got} arrived, {e1 - e0} counted as xdpTransmitError, "
          f"{d1 - d0} as drops of {swap['port']}, {t1 - t0} as sent by {other}")
    # A peer that stops taking redirected frames: until the agent has followed, redirected frames are refused.
    p.run("ethtool", "-K", "p-" + out_port, "gro", "off")
    got = sent_and_received(50)
    e2, _, _ = refused()
    check(got + (e2 - e1) == 50, f"GRO turned off and 50 frames at once: {got} arrived, {e2 - e1} refused and counted")
    p.run("ethtool", "-K", "p-" + out_port, "gro", "on")
    time.sleep(0.5)
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


def pcap_frames(path):
    """The frames of a classic little-endian pcap (the traffic tool's sink writes them), without scapy: fast."""
    data = open(path, "rb").read()
    off, out = 24, []
    while off + 16 <= len(data):
        incl = struct.unpack_from("<I", data, off + 8)[0]
        out.append(data[off + 16:off + 16 + incl])
        off += 16 + incl
    return out


def trailer_seq(frame):
    """The sequence number of the traffic tool's trailer ("MGSQ", stream, sequence), or None."""
    if len(frame) >= 30 and frame[-16:-12] == b"MGSQ":
        return struct.unpack(">Q", frame[-8:])[0]
    return None


def start_with_gro(a, p, instance):
    """An agent on the lab FIB with every peer taking redirected frames (GRO on), and its control socket; (None,
    None) when it does not start."""
    gro(p, True)
    agent = Agent(a, CONFIG, FIB, instance=instance)
    if not check(agent.started(), "agent starts"):
        gro(p, False)
        return None, None
    return agent, RPC(agent.socket)


def run_churn_across_tiers(a, p, tmp):
    seconds = int(os.environ.get("MPLSGATE_SOAK_SECONDS", "60"))
    rate = int(os.environ.get("MPLSGATE_SOAK_COMMITS_PER_SECOND", "1000"))
    print(f"churn across tiers: 10k packets/s for {seconds} s, {rate} commits/s cycling label 100 through a fast-tier "
          "swap, a 5-label swap (AF_XDP) and a popToVXLAN (AF_XDP)")
    agent, rpc = start_with_gro(a, p, "fast-churn")
    if not agent:
        return
    rpc.result("apply", {"operations": [{"op": "add", "kind": "nextHop",
                                         "entry": {"name": "p9", "port": "core0", "mac": "02:aa:00:00:00:09"}}]})
    gens = [
        {"label": 100, "op": "swap", "out": [200], "via": "p1"},
        {"label": 100, "op": "swap", "out": [300, 301, 302, 303, 304], "via": "p9"},
        {"label": 100, "op": "popToVXLAN", "vni": 5000, "localVtep": "192.0.2.1", "remoteVtep": "192.0.2.2",
         "via": "vtep-nh"},
    ]
    swap = next(c for c in CASES if c["name"] == "swap ttl 64, S=0 kept, label below untouched")
    frame = bytearray(bytes.fromhex(swap["input"]))
    frame[14:17] = bytes([0x00, 0x06, 0x41])   # label 100, TC 0, S=1 (TTL 64 stays in byte 17)
    pcap = os.path.join(tmp, "churn.pcap")
    wrpcap(pcap, [Ether(bytes(frame) + b"\0" * 16)])
    outs = {n: os.path.join(tmp, f"churn-{n}.pcap") for n in ("core0", "dc0")}
    sinks = {n: Sink(p, "p-" + n, out=outs[n], extra=("--stream-only",), idle=2) for n in outs}
    count = 10000 * seconds
    sender = p.popen(binary("mplsgate-traffic"), "send", "--iface", "p-core0", "--pcap", pcap, "--count", str(count),
                     "--rate", "10000", "--stream", "3", stdout=subprocess.PIPE)
    commits = 0
    t0 = time.time()
    while sender.poll() is None and time.time() < t0 + seconds + 5:
        rpc.result("apply", {"operations": [{"op": "replace", "kind": "ilm", "entry": gens[commits % 3]}]})
        commits += 1
        delay = t0 + commits / rate - time.time()
        if delay > 0:
            time.sleep(delay)
    elapsed = time.time() - t0
    out, _ = sender.communicate(timeout=60)
    sent = json.loads(out.strip().splitlines()[-1])["sent"]
    for sk in sinks.values():
        sk.result(timeout=120)
    ports = rpc.result("counters")["ports"]
    fast = ports["core0"]["xdp"]["fastForwarded"]
    rpc.close()
    rc, counters, _ = agent.stop()
    gro(p, False)
    seen, dup, bad, reordered = set(), 0, [], 0
    by_gen = [0, 0, 0]
    for name, path in outs.items():
        last = -1
        for f in pcap_frames(path):
            seq = trailer_seq(f)
            if seq is None:
                continue
            if seq in seen:
                dup += 1
            seen.add(seq)
            if seq < last:
                reordered += 1
            last = max(last, seq)
            dst, etype = f[0:6].hex(), f[12:14]
            if name == "core0" and etype == b"\x88\x47" and dst == "02aa00000001" and f[14:17] == bytes([0x00, 0x0c, 0x81]):
                by_gen[0] += 1      # label 200, S=1
            elif (name == "core0" and etype == b"\x88\x47" and dst == "02aa00000009" and f[14:17] == bytes([0x00, 0x12, 0xc0])
                  and f[30:33] == bytes([0x00, 0x13, 0x01])):
                by_gen[1] += 1      # labels 300..304, S=1 on 304
            elif name == "dc0" and etype == b"\x08\x00" and dst == "02bb00000001" and f[14 + 20 + 8 + 4:14 + 20 + 8 + 7] == bytes([0x00, 0x13, 0x88]):
                by_gen[2] += 1      # VXLAN, VNI 5000
            else:
                bad.append((name, f[:40].hex()))
    check(sent == count, f"sent {sent} frames")
    check(commits >= 0.8 * rate * min(elapsed, seconds), f"{commits} commits while they flowed ({commits / elapsed:.0f}/s)")
    check(len(seen) == sent and dup == 0, f"0 frames lost: {len(seen)} of {sent} arrived, {dup} twice")
    check(not bad, f"every frame carries one generation's rewrite ({len(bad)} do not: {bad[:2]})")
    check(all(by_gen), f"each generation forwarded frames: fast-tier swap {by_gen[0]}, 5-label swap {by_gen[1]}, "
                       f"popToVXLAN {by_gen[2]}")
    check(0 < fast <= by_gen[0], f"the fast tier forwarded {fast} of the {by_gen[0]} fast-tier-swap frames")
    check(rc == 0 and counters is not None and counters["entries"]["ilm 100"]["packets"] == sent,
          f"the ILM 100 counter counted every frame across {commits} replaces and both tiers: "
          f"{counters and counters['entries']['ilm 100']}")
    print(f"  ({reordered} frames arrived on a port after a later one: overtaken at a tier change)")


def run_one_generation_per_frame(a, p, tmp):
    seconds = int(os.environ.get("MPLSGATE_GENERATION_SECONDS", "20"))
    print(f"one generation per frame: 10k packets/s for {seconds} s of labels 150 (pop) + 151 (swap), every commit "
          "changing both labels and the next hop's MAC")
    agent, rpc = start_with_gro(a, p, "fast-gen")
    if not agent:
        return

    def generation(g, op="replace"):
        mac = "02:aa:00:00:00:09" if g == 0 else "02:aa:00:00:00:0a"
        return [{"op": op, "kind": "nextHop", "entry": {"name": "g9", "port": "core0", "mac": mac}},
                {"op": op, "kind": "ilm", "entry": {"label": 150, "op": "pop", "ttlMode": "uniform" if g == 0 else "pipe"}},
                {"op": op, "kind": "ilm", "entry": {"label": 151, "op": "swap", "out": [210 if g == 0 else 211], "via": "g9"}}]
    rpc.result("apply", {"operations": generation(0, op="add")})
    # Label 150 TTL 64 S=0, label 151 TTL 200 S=1, then an IPv4 packet.
    swap = next(c for c in CASES if c["name"] == "swap ttl 64, S=0 kept, label below untouched")
    frame = bytearray(bytes.fromhex(swap["input"]))
    head = bytes(frame[:14]) + struct.pack(">II", 150 << 12 | 64, 151 << 12 | 1 << 8 | 200)
    ip = bytes.fromhex("4500001c000100004011f8c70a0000010a000002") + b"\x07" * 8
    pcap = os.path.join(tmp, "gen.pcap")
    wrpcap(pcap, [Ether(head + ip + b"\0" * 16)])
    out_path = os.path.join(tmp, "gen-core0.pcap")
    sink = Sink(p, "p-core0", out=out_path, extra=("--stream-only",), idle=2)
    count = 10000 * seconds
    sender = p.popen(binary("mplsgate-traffic"), "send", "--iface", "p-core0", "--pcap", pcap, "--count", str(count),
                     "--rate", "10000", "--stream", "4", stdout=subprocess.PIPE)
    commits, took = 0, []
    t0 = time.time()
    while sender.poll() is None and time.time() < t0 + seconds + 5:
        c0 = time.time()
        rpc.result("apply", {"operations": generation((commits + 1) % 2)})
        took.append(time.time() - c0)
        commits += 1
    out, _ = sender.communicate(timeout=60)
    sent = json.loads(out.strip().splitlines()[-1])["sent"]
    sink.result(timeout=120)
    fast = rpc.result("counters")["ports"]["core0"]["xdp"]["fastForwarded"]
    switches = rpc.result("info")["fastTier"]["generationSwitches"]
    rpc.close()
    rc, _, _ = agent.stop()
    gro(p, False)
    seen, by_gen, mixed = set(), [0, 0], []
    for f in pcap_frames(out_path):
        seq = trailer_seq(f)
        if seq is None:
            continue
        seen.add(seq)
        mac, lse = f[0:6].hex(), struct.unpack(">I", f[14:18])[0]
        view = (mac, lse >> 12, lse & 0xFF)
        if view == ("02aa00000009", 210, 62):
            by_gen[0] += 1      # pop uniform: 64 - 1 inherited, swap - 1
        elif view == ("02aa0000000a", 211, 199):
            by_gen[1] += 1      # pop pipe: 151's own 200, swap - 1
        else:
            mixed.append(view)
    took.sort()
    print(f"  {commits} commits in {seconds} s, each switching the generation: apply p50 "
          f"{took[len(took) // 2] * 1e3:.1f} ms, p99 {took[int(len(took) * 0.99)] * 1e3:.1f} ms")
    check(sent == count and len(seen) == sent, f"0 frames lost: {len(seen)} of {sent} arrived")
    check(commits >= 5 * seconds and switches >= commits, f"{commits} commits, {switches} generation switches")
    check(not mixed, f"0 mixed-generation rewrites ({len(mixed)}: {mixed[:3]})")
    check(all(by_gen), f"both generations forwarded frames: {by_gen}")
    check(fast == sent, f"the fast tier forwarded every frame ({fast} of {sent})")
    check(rc == 0, "agent stops cleanly")


def main():
    return run_lab_suite("test_fast_tier.py", "fast-tier", [run_sameness, run_tier_change, run_churn_across_tiers,
                                                            run_one_generation_per_frame])


if __name__ == "__main__":
    sys.exit(main())
