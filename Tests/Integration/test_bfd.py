#!/usr/bin/python3
"""BFD in the forwarding path (RFC 5880, 5881): failures no link event reports, and interop with FRR's bfdd.

    A ── PE1 ══ [wire: a Linux bridge] ══ P1 ══ PE2 ── B        primary path
            ╲══════════════ P2 ══════════════╱                  backup path
    PE1 ── FRR (bfdd + zebra, its own link)

The lab of test_protection.py (four MPLSGate agents started with --fib, 10,000 sequence-numbered frames per second
each way, the last label on arrival says the path), with a BFD session on every core next hop: 100 ms × 3, IPv4 on
PE1–P1 (through the bridge), P1–PE2 and P2–PE2, IPv6 link-local on PE1–P2, and IPv4 to FRR 8.4's bfdd.

Run: MPLSGATE_BIN_DIR=.build/release /usr/bin/python3 Tests/Integration/test_bfd.py   (scripts/test.sh does)
MPLSGATE_BFD_STEADY_SECONDS (default 60) sets the length of the steady run.

(c) steady under load: 0 session downs anywhere, 0 frames lost;
(a) silent failure: P1's agent stopped (SIGSTOP) with its links up: PE1 and PE2 detect it within 3 × 100 ms and
    switch to P2; ≤ 400 ms worth of frames lost each way; after SIGCONT the sessions return and traffic reverts;
(b) the middle of a link dies: the wire bridge's port towards P1 set down: no link event at PE1, BFD detects it the
    same way;
(d) interop with FRR: the session comes up and moves to 100 ms by Poll/Final on both sides; SIGKILL of bfdd takes
    the next hop down within the detection time; FRR's `shutdown` (AdminDown) does not; stopping the agent is seen
    by FRR as a down session with diagnostic "forwarding plane reset".
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Netns, veth, Agent, RPC, binary, check, finish  # noqa: E402
import test_protection as tp  # noqa: E402  (the traffic helpers: senders, sinks, pcap readers)

RATE = tp.RATE
MAC = dict(tp.MAC, **{"w-pe1": "02:77:00:00:00:01", "w-p1": "02:77:00:00:00:02", "w-pe1b": "02:77:00:00:00:03",
                      "w-p2": "02:77:00:00:00:04", "pe1-f": "02:01:00:00:00:04", "f0": "02:0f:00:00:00:01"})
# PE1's links to P1 and P2 run through bridges (br0, br1) in the "wire" namespace: a middle that can fail, and a
# place to capture what the agents send (AF_XDP transmits bypass the ports' own packet taps).
LINKS = [("a", "a0", "pe1", "pe1-a"), ("pe1", "pe1-p1", "w", "w-pe1"), ("w", "w-p1", "p1", "p1-w"),
         ("pe1", "pe1-p2", "w", "w-pe1b"), ("w", "w-p2", "p2", "p2-w"), ("p1", "p1-e", "pe2", "pe2-p1"), ("p2", "p2-e", "pe2", "pe2-p2"),
         ("pe2", "pe2-b", "b", "b0"), ("pe1", "pe1-f", "f", "f0")]
PORTS = {"pe1": [("a", "pe1-a"), ("p1", "pe1-p1"), ("p2", "pe1-p2"), ("f", "pe1-f")], "p1": [("w", "p1-w"), ("e", "p1-e")],
         "p2": [("w", "p2-w"), ("e", "p2-e")], "pe2": [("p1", "pe2-p1"), ("p2", "pe2-p2"), ("b", "pe2-b")]}
# Each core link's two addresses (the agents' config; only PE1–FRR also has them in the kernel, for FRR's ARP).
ADDR = {"pe1-p1": "10.0.1.1", "p1-w": "10.0.1.2", "pe1-p2": "fe80::12:1", "p2-w": "fe80::12:2",
        "p1-e": "10.0.3.1", "pe2-p1": "10.0.3.2", "p2-e": "10.0.4.1", "pe2-p2": "10.0.4.2",
        "pe1-f": "10.9.0.1", "f0": "10.9.0.2"}
PEER = {"pe1-p1": "p1-w", "p1-w": "pe1-p1", "pe1-p2": "p2-w", "p2-w": "pe1-p2", "p1-e": "pe2-p1", "pe2-p1": "p1-e",
        "p2-e": "pe2-p2", "pe2-p2": "p2-e", "pe1-f": "f0"}
# MPLSGATE_BFD_INTERVAL_MS (default 100) runs the whole test at another interval (docs report 50 ms too).
MS = int(os.environ.get("MPLSGATE_BFD_INTERVAL_MS", "100"))
TIMERS = {"minTxMs": MS, "minRxMs": MS, "multiplier": 3}


def with_bfd(fibs):
    """test_protection's FIBs, with a BFD session on every next hop over a core link, plus PE1's next hop to FRR."""
    iface = {name: dict(PORTS[name]) for name in PORTS}
    for name, fib in fibs.items():
        for nh in fib["nextHops"]:
            mine = iface[name][nh["port"]]
            if mine in PEER:
                nh["bfd"] = dict(peer=ADDR[PEER[mine]], local=ADDR[mine], **TIMERS)
    fibs["pe1"]["nextHops"].append({"name": "to-frr", "port": "f", "mac": MAC["f0"],
                                    "bfd": dict(peer=ADDR["f0"], **TIMERS)})
    return fibs


class Lab(tp.Lab):
    def __init__(self, tmp, hold_down):
        self.tmp = tmp
        self.ns = {n: Netns(n) for n in ("a", "pe1", "w", "p1", "p2", "pe2", "b", "f")}
        for na, ia, nb, ib in LINKS:
            veth(self.ns[na], ia, self.ns[nb], ib, mac_a=MAC[ia], mac_b=MAC[ib])
        w = self.ns["w"]
        for br, ports in (("br0", ("w-pe1", "w-p1")), ("br1", ("w-pe1b", "w-p2"))):
            w.run("ip", "link", "add", br, "type", "bridge")
            for port in ports:
                w.run("ip", "link", "set", port, "master", br)
            w.run("ip", "link", "set", br, "up")
        self.ns["pe1"].run("ip", "addr", "add", ADDR["pe1-f"] + "/24", "dev", "pe1-f")
        self.ns["f"].run("ip", "addr", "add", ADDR["f0"] + "/24", "dev", "f0")
        self.agents = {}
        for name, fib in with_bfd(tp.fibs()).items():
            cfg = os.path.join(tmp, f"{name}-config.json")
            ports = []
            for p, i in PORTS[name]:
                port = {"name": p, "interface": i, "mac": MAC[i], "role": "core"}
                if i in ADDR:
                    port["bfdAddresses"] = [ADDR[i]]
                ports.append(port)
            json.dump({"version": 1, "ports": ports}, open(cfg, "w"))
            path = os.path.join(tmp, f"{name}-fib.json")
            json.dump(fib, open(path, "w"))
            a = Agent(self.ns[name], cfg, path, instance=name, state_dir=os.path.join(tmp, "state"),
                      extra=("--cpus", "none", "--frames", "2048", "--ring-size", "512", "--no-state",
                             "--hold-down", str(hold_down)))
            if not a.started(timeout=20):
                raise RuntimeError(f"agent {name} did not start: {a.log[-3:]}")
            self.agents[name] = a
        self.rpc = {n: RPC(a.socket) for n, a in self.agents.items()}
        for r in self.rpc.values():
            r.result("events.subscribe")
        # Requests go on connections of their own: a reply read on a subscribed one would skip its events.
        self.q = {n: RPC(a.socket) for n, a in self.agents.items()}
        self.frr = None

    def sessions(self, name):
        return self.q[name].result("bfd")["sessions"]

    def settled(self, names=("pe1", "p1", "p2", "pe2"), timeout=15, skip_peer=None):
        """Waits until every session of these agents is up at the configured interval (Poll/Final done)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            ok = all(s["state"] == "up" and not s["negotiated"]["polling"] and s["negotiated"]["txIntervalMs"] == MS
                     for n in names for s in self.sessions(n) if s["peer"] != skip_peer)
            if ok:
                return True
            time.sleep(0.1)
        return False

    def close(self):
        if self.frr:
            self.frr.stop()
        super().close()


class FRR:
    """zebra and bfdd of FRR in the namespace, as their own instance (-N), configured through vtysh."""

    def __init__(self, ns, tmp):
        self.ns = ns
        self.name = f"mgt{os.getpid()}x{int(time.time() * 1000) % 100000}"
        self.run_dir = f"/var/run/frr/{self.name}"
        self.tmp = tmp
        for daemon in ("zebra", "bfdd"):
            self.start(daemon)

    def start(self, daemon):
        ns_log = os.path.join(self.tmp, f"frr-{daemon}.log")
        self.ns.run(f"/usr/lib/frr/{daemon}", "-N", self.name, "-d", "-f", "/dev/null", "-P", "0",
                    "--log", f"file:{ns_log}", capture=True)

    def pid(self, daemon):
        try:
            return int(open(f"{self.run_dir}/{daemon}.pid").read().strip())
        except (OSError, ValueError):
            return None

    def vtysh(self, *commands, check_rc=True):
        args = ["vtysh", "-N", self.name]
        for c in commands:
            args += ["-c", c]
        r = subprocess.run(args, capture_output=True, text=True, timeout=30)
        if check_rc and r.returncode != 0:
            raise RuntimeError(f"vtysh {commands}: {r.stdout} {r.stderr}")
        return r.stdout

    def configure(self, *extra):
        self.vtysh("configure terminal", "bfd", f"peer {ADDR['pe1-f']} local-address {ADDR['f0']} interface f0",
                   "detect-multiplier 3", f"receive-interval {MS}", f"transmit-interval {MS}", *extra)

    def peer(self):
        out = self.vtysh(f"show bfd peer {ADDR['pe1-f']} json", check_rc=False)
        try:
            return json.loads(out)
        except ValueError:
            return {}

    def stop(self):
        for daemon in ("bfdd", "zebra"):
            p = self.pid(daemon)
            if p:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        shutil.rmtree(self.run_dir, ignore_errors=True)


def bfd_downs(events):
    return [e for e in events if e.get("type") == "bfd" and e.get("state") in ("down", "init")]


def first_switch_ns(events, hop):
    t = [int(e["bfdDetectedNs"]) for e in events if e.get("type") == "nextHop" and e.get("nextHop") == hop
         and e.get("state") in ("backup", "down") and "bfdDetectedNs" in e]
    return min(t) if t else None


def hop_state(lab, name, hop):
    return next(h for h in lab.q[name].result("nextHops")["nextHops"] if h["name"] == hop)


def case_c(lab, tmp, seconds):
    for n in lab.rpc:
        lab.events(n)
    downs0 = {n: sum(int(s["counters"]["downs"]) for s in lab.sessions(n)) for n in lab.rpc}
    at_b, at_a, sent_a, sent_b, _ = tp.run_both_ways(lab, tmp, seconds, lambda: time.sleep(seconds))
    events = {n: lab.events(n) for n in lab.rpc}
    downs = {n: sum(int(s["counters"]["downs"]) for s in lab.sessions(n)) - downs0[n] for n in lab.rpc}
    east, west = tp.losses(at_b, 1, sent_a), tp.losses(at_a, 2, sent_b)
    check(all(v == 0 for v in downs.values()) and not any(bfd_downs(e) for e in events.values()),
          f"(c) {seconds} s steady at {RATE} frames/s each way: session downs {downs} (all 0)")
    check(east == 0 and west == 0 and {l for l, *_ in at_b} == {900},
          f"(c) steady: lost A→B {east} of {sent_a}, B→A {west} of {sent_b} (0), all on the primary path")
    sessions = lab.sessions("pe1")
    check(all(int(s["counters"]["packetsIn"]) > 5 * seconds for s in sessions),
          f"(c) PE1's sessions received {[s['counters']['packetsIn'] for s in sessions]} packets in the run")


def revert_all(lab, timeout=8):
    """The lab runs with --hold-down 0 (not revertive): once the sessions are back, the operator brings every next
    hop off its backup (mplsgatectl revert). Returns how many it reverted, or None if some stayed down."""
    # Like an operator, wait until the whole path is back (every session up at its interval): reverting PE1 while
    # P1's own session towards PE2 is still coming up would send the traffic into P1's nextHopDown drops.
    if not lab.settled(timeout=timeout):
        return None
    deadline = time.time() + timeout
    reverted = 0
    rpcs = lab.q
    while time.time() < deadline:
        pending = [(n, h) for n in rpcs for h in rpcs[n].result("nextHops")["nextHops"] if h["state"] != "up"]
        if not pending:
            return reverted
        for n, h in pending:
            if "heldBy" not in h:
                r = subprocess.run([binary("mplsgatectl"), "--socket", lab.agents[n].socket, "revert", h["name"]],
                                   capture_output=True, text=True)
                reverted += r.returncode == 0
        time.sleep(0.1)
    return None


def failure_case(lab, tmp, what, fail, repair, expect_pe2=True):
    """Runs traffic both ways; `fail()` 2 s in, `repair()` 3 s later, then the operator's revert. Checks detection
    at PE1 (and PE2), losses, and that a revert is refused while BFD still holds the next hop down."""
    for n in lab.rpc:
        lab.events(n)
    marks = {}

    def during():
        time.sleep(2)
        marks["fail"] = time.monotonic_ns()
        fail()
        time.sleep(1)
        r = subprocess.run([binary("mplsgatectl"), "--socket", lab.agents["pe1"].socket, "revert", "to-p1"],
                           capture_output=True, text=True)
        marks["refused"] = (r.returncode, r.stderr.strip())
        time.sleep(2)
        repair()
        marks["reverted"] = revert_all(lab)
        time.sleep(3)
        return {n: lab.events(n) for n in lab.rpc}
    at_b, at_a, sent_a, sent_b, ev = tp.run_both_ways(lab, tmp, 9, during)
    east, west = tp.losses(at_b, 1, sent_a), tp.losses(at_a, 2, sent_b)
    result = {}
    for name, hop in (("pe1", "to-p1"), ("pe2", "to-p1")):
        if name == "pe2" and not expect_pe2:
            continue
        t = first_switch_ns(ev[name], hop)
        ms = None if t is None else (t - marks["fail"]) / 1e6
        result[name] = ms
        check(ms is not None and ms <= 3 * MS + 50,
              f"({what}) {name.upper()} detected it by BFD and switched {hop} after {ms if ms is None else round(ms)} ms "
              f"(≤ 3 × {MS} ms, + 50 ms of scheduling)")
    check(not any(e.get("type") == "port" for e in ev["pe1"]), f"({what}) PE1 saw no link event")
    code, message = marks["refused"]
    check(code == 1 and "held down: BFD session to" in message,
          f"({what}) mplsgatectl revert while BFD holds it down: exit {code}, {message}")
    reverts = [e for e in ev["pe1"] if e.get("type") == "nextHop" and e.get("nextHop") == "to-p1"
               and e.get("reason") == "reverted by the operator"]
    check(marks["reverted"] and reverts,
          f"({what}) not revertive (--hold-down 0): back on the primary only by the operator's revert "
          f"({marks['reverted']} next hops reverted)")
    check(east <= RATE * 0.4 and {900, 901} <= {l for l, *_ in at_b},
          f"({what}) A→B lost {east} of {sent_a} (≤ 400 ms worth, {int(RATE * 0.4)}), took the backup and came back")
    check(west <= RATE * 0.4 and 911 in {l for l, *_ in at_a},
          f"({what}) B→A lost {west} of {sent_b} (≤ 400 ms worth), took the backup")
    check(lab.settled(timeout=10), f"({what}) every session is up at {MS} ms again after the repair")
    result.update(east=east, west=west)
    return result


def wire_format(lab, tmp):
    """tshark, on the bridges in front of PE1's ports and on FRR's end, judges what the agents send: BFD version 1,
    TTL / hop limit 255, UDP source port 49152–65535, the C bit, no malformed packet or expert error."""
    caps = {}
    procs = []
    for ns, iface, filt in (("w", "br0", "udp port 3784"), ("w", "br1", "udp port 3784"), ("f", "f0", "udp port 3784")):
        path = os.path.join(tmp, f"bfd-{iface}.pcap")
        caps[iface] = path
        procs.append(lab.ns[ns].popen("tshark", "-q", "-i", iface, "-a", "duration:2", "-f", filt, "-w", path,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    for p in procs:
        p.wait(timeout=30)
    for iface, src in (("br0", ADDR["pe1-p1"]), ("br1", ADDR["pe1-p2"]), ("f0", ADDR["pe1-f"])):
        ttl = "ipv6.hlim" if ":" in src else "ip.ttl"
        addr = "ipv6.src" if ":" in src else "ip.src"
        r = subprocess.run(["tshark", "-r", caps[iface], "-Y", f"bfd && {addr} == {src}", "-T", "fields", "-e", ttl,
                            "-e", "udp.srcport", "-e", "bfd.version", "-e", "bfd.sta", "-e", "bfd.flags.c",
                            "-e", "udp.checksum.status", "-o", "udp.check_checksum:TRUE"],
                           capture_output=True, text=True)
        rows = [l.split("\t") for l in r.stdout.splitlines() if l.strip()]
        bad = subprocess.run(["tshark", "-r", caps[iface], "-Y", "_ws.malformed || _ws.expert.severity >= error",
                              "-o", "udp.check_checksum:TRUE"], capture_output=True, text=True).stdout.strip()
        good = [row for row in rows if row[0] == "255" and 49152 <= int(row[1]) <= 65535 and row[2] == "1"
                and int(row[3], 0) == 3 and row[4] in ("1", "True") and row[5] == "1"]
        check(rows and len(good) == len(rows) and not bad,
              f"tshark on {iface}: {len(rows)} BFD packets from {src}, {len(good)} with TTL 255, source port "
              f"49152–65535, version 1, state Up, C bit, good UDP checksum; malformed/expert errors: {bad or 'none'}"
              + ("" if len(good) == len(rows) else f"; first: {rows[:1]}"))


def case_d(lab, tmp):
    frr = lab.frr
    # Up, then both sides at the configured interval by Poll/Final.
    deadline = time.time() + 20
    peer, ours = {}, None
    while time.time() < deadline:
        peer = frr.peer()
        ours = next((s for s in lab.sessions("pe1") if s["peer"] == ADDR["f0"]), None)
        if (peer.get("status") == "up" and peer.get("remote-transmit-interval") == MS
                and peer.get("remote-receive-interval") == MS and ours and ours["state"] == "up"
                and not ours["negotiated"]["polling"] and ours["negotiated"]["txIntervalMs"] == MS
                and ours["negotiated"]["detectionTimeMs"] == 3 * MS):
            break
        time.sleep(0.2)
    check(peer.get("status") == "up" and ours is not None and ours["state"] == "up",
          f"(d) FRR session up: FRR says {peer.get('status')}, MPLSGate says {ours and ours['state']}")
    check(peer.get("remote-transmit-interval") == MS and peer.get("remote-receive-interval") == MS
          and ours is not None and int(ours["counters"]["pollsCompleted"]) >= 1
          and ours["negotiated"]["txIntervalMs"] == MS and ours["negotiated"]["detectionTimeMs"] == 3 * MS,
          f"(d) moved to {MS} ms by Poll/Final: FRR sees our {peer.get('remote-transmit-interval')}/"
          f"{peer.get('remote-receive-interval')} ms, we run tx {ours and ours['negotiated']['txIntervalMs']} ms, "
          f"detect {ours and ours['negotiated']['detectionTimeMs']} ms after {ours and ours['counters']['pollsCompleted']} poll(s)")
    check(hop_state(lab, "pe1", "to-frr")["state"] == "up", "(d) the next hop to FRR is up")

    # SIGKILL of bfdd: silence; the next hop goes down within the detection time.
    lab.events("pe1")
    t0 = time.monotonic_ns()
    os.kill(frr.pid("bfdd"), signal.SIGKILL)
    deadline = time.time() + 3
    down_at = None
    while time.time() < deadline and down_at is None:
        time.sleep(0.05)
        down_at = first_switch_ns(lab.events("pe1"), "to-frr")
    ms = None if down_at is None else round((down_at - t0) / 1e6)
    check(ms is not None and ms <= 3 * MS + 50, f"(d) SIGKILL of bfdd: next hop to FRR down after {ms} ms (≤ 3 × {MS} + 50)")

    # bfdd back, then FRR's `shutdown` (AdminDown): not a path failure.
    frr.start("bfdd")
    time.sleep(0.5)
    frr.configure()
    check(lab.settled(names=("pe1",), timeout=15), f"(d) bfdd restarted: the session is up at {MS} ms again")
    time.sleep(1.5)  # the hold-down of a protected... (to-frr has none: back at once) and FRR's own poll
    check(hop_state(lab, "pe1", "to-frr")["state"] == "up", "(d) the next hop to FRR is back up")
    lab.events("pe1")
    frr.configure("shutdown")
    time.sleep(1.0)
    ours = next(s for s in lab.sessions("pe1") if s["peer"] == ADDR["f0"])
    ev = lab.events("pe1")
    check(ours["state"] == "down" and ours["remoteState"] == "adminDown" and frr.peer().get("status") == "shutdown",
          f"(d) FRR shutdown: our session {ours['state']} (peer {ours['remoteState']}), FRR {frr.peer().get('status')}")
    check(hop_state(lab, "pe1", "to-frr")["state"] == "up" and first_switch_ns(ev, "to-frr") is None,
          "(d) AdminDown is not a path failure: the next hop to FRR stays up (RFC 5882 §3.2)")
    frr.configure("no shutdown")
    check(lab.settled(names=("pe1",), timeout=15), "(d) no shutdown: up again")

    # A commit that removes the next hop takes its session out of service: AdminDown (diagnostic 7), which FRR
    # shows as the peer's administrative down, not a failure; adding it back brings the session up again.
    spec = next(n for n in json.load(open(os.path.join(tmp, "pe1-fib.json")))["nextHops"] if n["name"] == "to-frr")
    lab.q["pe1"].result("apply", {"operations": [{"op": "delete", "kind": "nextHop", "key": "to-frr"}]})
    deadline = time.time() + 3
    while time.time() < deadline:
        peer = frr.peer()
        if peer.get("status") == "down":
            break
        time.sleep(0.05)
    check(peer.get("status") == "down" and peer.get("remote-diagnostic") == "administratively down",
          f"(d) next hop deleted: FRR's session {peer.get('status')}, remote diagnostic '{peer.get('remote-diagnostic')}'")
    lab.q["pe1"].result("apply", {"operations": [{"op": "add", "kind": "nextHop", "entry": spec}]})
    check(lab.settled(names=("pe1",), timeout=15) and frr.peer().get("status") == "up",
          "(d) next hop added back: the session is up again on both sides")

    # Stopping the agent: FRR sees Down, Forwarding Plane Reset, at once (not a detection timeout).
    t0 = time.monotonic()
    rc, _, log = lab.agents["pe1"].stop()
    peer = {}
    while time.monotonic() - t0 < 2:
        peer = frr.peer()
        if peer.get("status") == "down":
            break
        time.sleep(0.02)
    waited = round((time.monotonic() - t0) * 1000)
    check(rc == 0 and peer.get("status") == "down" and peer.get("remote-diagnostic") == "forwarding plane reset",
          f"(d) agent stopped (exit {rc}): FRR's session {peer.get('status')}, remote diagnostic "
          f"'{peer.get('remote-diagnostic')}' after ≤ {waited} ms (never AdminDown)")


def main():
    if os.geteuid() != 0:
        print("test_bfd.py needs root (network namespaces, XDP)")
        return 1
    if not os.path.exists("/usr/lib/frr/bfdd"):
        print("test_bfd.py needs FRR (Debian package frr; scripts/setup.sh installs it)")
        return 1
    seconds = int(os.environ.get("MPLSGATE_BFD_STEADY_SECONDS", "60"))
    with tempfile.TemporaryDirectory(prefix="mplsgate-bfd-") as tmp:
        lab = Lab(tmp, hold_down=0)
        try:
            lab.frr = FRR(lab.ns["f"], tmp)
            lab.frr.configure()
            check(lab.settled(skip_peer=ADDR["f0"], timeout=20), f"every MPLSGate session is up at {MS} ms × 3")
            states = {n: [(s["peer"], s["nextHops"]) for s in lab.sessions(n)] for n in lab.rpc}
            check(len(lab.sessions("p1")) == 2 and any(len(h) == 2 for _, h in states["p1"]),
                  f"P1's next hops to PE2 (to-pe2, uturn) share one session: {states['p1']}")
            wire_format(lab, tmp)
            print(f"(c) {seconds} s steady")
            case_c(lab, tmp, seconds)
            print("(a) silent failure: P1's agent stopped (SIGSTOP)")
            p1 = lab.agents["p1"].proc.pid
            a = failure_case(lab, tmp, "a", lambda: os.kill(p1, signal.SIGSTOP), lambda: os.kill(p1, signal.SIGCONT))
            print("(b) the middle of PE1–P1 dies: the wire bridge's port towards P1 down")
            b = failure_case(lab, tmp, "b", lambda: lab.ns["w"].run("ip", "link", "set", "w-p1", "down"),
                             lambda: lab.ns["w"].run("ip", "link", "set", "w-p1", "up"), expect_pe2=False)
            print(f"detection and loss: (a) {a}, (b) {b}")
            print("(d) interop with FRR 8.4 bfdd")
            case_d(lab, tmp)
        finally:
            lab.close()
    return finish("BFD")


if __name__ == "__main__":
    sys.exit(main())
