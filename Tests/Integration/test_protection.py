#!/usr/bin/python3
"""Link protection without a controller: link events (rtnetlink), backup paths and their revert, in namespaces.

    A ── PE1 ══ P1 ══ PE2 ── B          primary path, each direction
            ╲══ P2 ══╱                   backup path (its own labels: PE1 and PE2 write backupOut while on it)

Four MPLSGate agents (PE1, P1, P2, PE2) started with --fib and never programmed again. A and B each send 10,000
sequence-numbered frames per second (mplsgate-traffic) and each receive the other's; the last label on arrival says
which path a frame took (B: 900 primary, 901 backup; A: 910, 911). Westbound (B→A), P1 is the point of local repair
when its link to PE1 dies: its next hop to PE1 has a U-turn backup to PE2, which sends the frame over P2.

Run: MPLSGATE_BIN_DIR=.build/release /usr/bin/python3 Tests/Integration/test_protection.py   (scripts/test.sh does)
MPLSGATE_FLAP_SECONDS (default 60) sets the length of each flapping run.

(a) PE1's primary port set down (admin), and separately its peer end (carrier loss): ≤ 500 frames lost each way
    (50 ms at 10 kpps), also measured from the agents' event records (netlink receive → liveness store);
(b) the revert after the hold-down: 0 lost and 0 reordered among frames sent after it;
(c) a two-member ECMP group loses a member: only that member's flows see a gap;
(d) flaps (down 200 ms, up 800 ms): with a 2 s hold-down PE1 stays on the backup throughout, with 0.5 s it reverts
    on every up; the worker's send errors stay 0, the down port's kernel tx_dropped stays within one batch per flap
    (what a sendto holds when the device goes down under it: docs/deployment.md), and frames sent = received +
    counted drops (every agent's and every interface's).
"""
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Netns, veth, Agent, RPC, binary, check, finish, sh  # noqa: E402

from scapy.all import Ether, Raw, wrpcap  # noqa: E402
from scapy.contrib.mpls import MPLS  # noqa: E402

RATE = 10000
MAC = {"a0": "02:0a:00:00:00:01", "pe1-a": "02:01:00:00:00:01", "pe1-p1": "02:01:00:00:00:02",
       "pe1-p2": "02:01:00:00:00:03", "p1-w": "02:11:00:00:00:01", "p1-e": "02:11:00:00:00:02",
       "p2-w": "02:12:00:00:00:01", "p2-e": "02:12:00:00:00:02", "pe2-p1": "02:02:00:00:00:02",
       "pe2-p2": "02:02:00:00:00:03", "pe2-b": "02:02:00:00:00:01", "b0": "02:0b:00:00:00:01"}
LINKS = [("a", "a0", "pe1", "pe1-a"), ("pe1", "pe1-p1", "p1", "p1-w"), ("pe1", "pe1-p2", "p2", "p2-w"),
         ("p1", "p1-e", "pe2", "pe2-p1"), ("p2", "p2-e", "pe2", "pe2-p2"), ("pe2", "pe2-b", "b", "b0")]


def nh(name, port, iface_peer, backup=None):
    d = {"name": name, "port": port, "mac": MAC[iface_peer]}
    if backup:
        d["backup"] = backup
    return d


def swap(label, out, via, backup_out=None):
    d = {"label": label, "op": "swap", "out": out, "via": via}
    if backup_out:
        d["backupOut"] = backup_out
    return d


def fibs():
    """Eastbound A→B: 100 →PE1→ 201 →P1→ 202 →PE2→ 900 (backup: 301 →P2→ 302 →PE2→ 901); ECMP 120 → 220 over both
    (P1: 222 → 920, P2: 232 → 921). Westbound B→A: 110 →PE2→ 211 →P1→ 212 →PE1→ 910 (backup: 311 →P2→ 312 → 911);
    P1's U-turn while its link to PE1 is down: 211 → 213 back to PE2, which sends it as 311 over P2."""
    return {
        "pe1": {"version": 1,
                "nextHops": [nh("to-p1", "p1", "p1-w", backup="to-p2"), nh("to-p2", "p2", "p2-w"), nh("to-a", "a", "a0")],
                "ecmpGroups": [{"name": "both", "members": ["to-p1", "to-p2"]}],
                "ilm": [swap(100, [201], "to-p1", [301]), swap(120, [220], "both"),
                        swap(212, [910], "to-a"), swap(312, [911], "to-a")]},
        "p1": {"version": 1,
               "nextHops": [nh("to-pe1", "w", "pe1-p1", backup="uturn"), nh("to-pe2", "e", "pe2-p1"),
                            nh("uturn", "e", "pe2-p1")],
               "ilm": [swap(201, [202], "to-pe2"), swap(220, [222], "to-pe2"), swap(211, [212], "to-pe1", [213])]},
        "p2": {"version": 1,
               "nextHops": [nh("to-pe1", "w", "pe1-p2"), nh("to-pe2", "e", "pe2-p2")],
               "ilm": [swap(301, [302], "to-pe2"), swap(220, [232], "to-pe2"), swap(311, [312], "to-pe1")]},
        "pe2": {"version": 1,
                "nextHops": [nh("to-p1", "p1", "p1-e", backup="to-p2"), nh("to-p2", "p2", "p2-e"), nh("to-b", "b", "b0")],
                "ilm": [swap(202, [900], "to-b"), swap(302, [901], "to-b"), swap(222, [920], "to-b"),
                        swap(232, [921], "to-b"), swap(110, [211], "to-p1", [311]), swap(213, [311], "to-p2")]},
    }


PORTS = {"pe1": [("a", "pe1-a"), ("p1", "pe1-p1"), ("p2", "pe1-p2")], "p1": [("w", "p1-w"), ("e", "p1-e")],
         "p2": [("w", "p2-w"), ("e", "p2-e")], "pe2": [("p1", "pe2-p1"), ("p2", "pe2-p2"), ("b", "pe2-b")]}


class Lab:
    def __init__(self, tmp, hold_down, start_timeout=20):
        self.tmp = tmp
        self.ns = {n: Netns(n) for n in ("a", "pe1", "p1", "p2", "pe2", "b")}
        for na, ia, nb, ib in LINKS:
            veth(self.ns[na], ia, self.ns[nb], ib, mac_a=MAC[ia], mac_b=MAC[ib])
        self.agents = {}
        for name, fib in fibs().items():
            cfg = os.path.join(tmp, f"{name}-config.json")
            json.dump({"version": 1, "ports": [{"name": p, "interface": i, "mac": MAC[i], "role": "core"}
                                               for p, i in PORTS[name]]}, open(cfg, "w"))
            path = os.path.join(tmp, f"{name}-fib.json")
            json.dump(fib, open(path, "w"))
            a = Agent(self.ns[name], cfg, path, instance=name, state_dir=os.path.join(tmp, "state"),
                      extra=("--cpus", "none", "--frames", "2048", "--ring-size", "512", "--no-state",
                             "--hold-down", str(hold_down)))
            if not a.started(timeout=start_timeout):
                raise RuntimeError(f"agent {name} did not start: {a.log[-3:]}")
            self.agents[name] = a
        self.rpc = {n: RPC(a.socket) for n, a in self.agents.items()}
        for r in self.rpc.values():
            r.result("events.subscribe")

    def events(self, name):
        """Events the agent sent since the last call (subscribed at start)."""
        r = self.rpc[name]
        out = []
        r.sock.setblocking(False)
        try:
            while True:
                try:
                    chunk = r.sock.recv(1 << 20)
                except BlockingIOError:
                    break
                if not chunk:
                    break
                r.buf += chunk
        finally:
            r.sock.setblocking(True)
        while b"\n" in r.buf:
            line, r.buf = r.buf.split(b"\n", 1)
            m = json.loads(line)
            if m.get("method") == "event":
                out.append(m["params"])
        return out

    def link(self, ns, iface, up):
        self.ns[ns].run("ip", "link", "set", iface, "up" if up else "down")

    def drops(self):
        """Frames dropped and counted anywhere: every agent's pipeline drops, and every lab interface's kernel
        tx/rx drop counters. Not the agents' xdpTransmitError: frames the fast tier redirected to a device that
        refused them (a port going down), which a veth counts as well (rx_dropped)."""
        total = 0
        for r in self.rpc.values():
            total += sum(int(v) for k, v in r.result("counters")["drops"].items() if k != "xdpTransmitError")
        for na, ia, nb, ib in LINKS:
            for ns, iface in ((na, ia), (nb, ib)):
                st = json.loads(self.ns[ns].run("ip", "-s", "-j", "link", "show", iface, capture=True).stdout)[0]["stats64"]
                total += st["tx"]["dropped"] + st["rx"]["dropped"]
        return total

    def close(self):
        for a in self.agents.values():
            a.stop()
        for n in self.ns.values():
            n.delete()


def stream_pcap(path, stack, stream):
    """One frame (the label stack, an IPv4-looking payload) that mplsgate-traffic stamps with `stream`."""
    labels = None
    for i, l in enumerate(stack):
        m = MPLS(label=l, s=1 if i == len(stack) - 1 else 0, ttl=64)
        labels = m if labels is None else labels / m
    wrpcap(path, [Ether(src=MAC["a0"], dst=MAC["pe1-a"]) / labels / Raw(b"\x45" + b"\x00" * 63)])


def frames_of(path):
    """(top label, stream, sequence, arrival µs) of every frame a sink captured, in arrival order."""
    out = []
    with open(path, "rb") as f:
        data = f.read()
    o = 24
    while o + 16 <= len(data):
        sec, usec, caplen, _ = struct.unpack_from("<IIII", data, o)
        frame = data[o + 16:o + 16 + caplen]
        o += 16 + caplen
        if len(frame) < 34 or frame[-16:-12] != b"MGSQ":
            continue
        label = struct.unpack(">I", frame[14:18])[0] >> 12
        stream, seq = struct.unpack(">IQ", frame[-12:])
        out.append((label, stream, seq, sec * 1_000_000 + usec))
    return out


def sender(ns, iface, pcap, stream, count, rate=RATE):
    return ns.popen(binary("mplsgate-traffic"), "send", "--iface", iface, "--pcap", pcap, "--count", str(count),
                    "--rate", str(rate), "--stream", str(stream), stdout=subprocess.PIPE)


def sink(ns, iface, out):
    p = ns.popen(binary("mplsgate-traffic"), "sink", "--iface", iface, "--idle", "2", "--out", out, "--stream-only",
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = p.stderr.readline()
    if "ready" not in line:
        raise RuntimeError(f"sink on {iface}: {line}")
    return p


def result(p):
    out, _ = p.communicate(timeout=180)
    return json.loads(out.strip().splitlines()[-1])


def losses(frames, stream, sent):
    seqs = sorted({s for _, st, s, _ in frames if st == stream})
    return sent - len(seqs)


def run_both_ways(lab, tmp, seconds, during):
    """Sends A→B (stream 1) and B→A (stream 2) for `seconds` at RATE; `during()` runs meanwhile. Returns the frames
    each end received, the sent counts and whatever `during` returned."""
    count = int(RATE * seconds)
    pa, pb = os.path.join(tmp, "east.pcap"), os.path.join(tmp, "west.pcap")
    stream_pcap(pa, [100], 1)
    wrpcap(pb, [Ether(src=MAC["b0"], dst=MAC["pe2-b"]) / MPLS(label=110, s=1, ttl=64) / Raw(b"\x45" + b"\x00" * 63)])
    oa, ob = os.path.join(tmp, "at-a.pcap"), os.path.join(tmp, "at-b.pcap")
    sa, sb = sink(lab.ns["a"], "a0", oa), sink(lab.ns["b"], "b0", ob)
    ea, eb = sender(lab.ns["a"], "a0", pa, 1, count), sender(lab.ns["b"], "b0", pb, 2, count)
    what = during()
    sent_a = json.loads(ea.communicate(timeout=seconds + 60)[0].strip().splitlines()[-1])["sent"]
    sent_b = json.loads(eb.communicate(timeout=seconds + 60)[0].strip().splitlines()[-1])["sent"]
    result(sa); result(sb)
    return frames_of(ob), frames_of(oa), sent_a, sent_b, what


def switch_times(events, hop):
    return [e["switchMicroseconds"] for e in events if e.get("type") == "nextHop" and e.get("nextHop") == hop
            and "switchMicroseconds" in e]


def after_revert(frames, primary_label):
    """Frames sent after the revert: from the first primary-path frame newer than everything before it that follows
    a backup-path one (frames stranded on the port's TX ring while it was down go out when it comes back: older,
    so not the revert), those with a higher sequence number. Returns (lost, reordered) among them."""
    first = None
    seen_backup = False
    newest = -1
    for label, _, seq, _ in frames:
        if label != primary_label:
            seen_backup = True
        elif seen_backup and seq > newest:
            first = seq
            break
        newest = max(newest, seq)
    if first is None:
        return None
    later = [seq for _, _, seq, _ in frames if seq >= first]
    reordered = sum(1 for a, b in zip(later, later[1:]) if b < a)
    lost = (max(later) - first + 1) - len(set(later))
    return lost, reordered


def case_a_and_b(tmp):
    """(a) admin down of PE1's primary port, then carrier loss from the peer end; (b) the revert after 2 s."""
    lab = Lab(os.path.join(tmp, "ab"), hold_down=2)
    try:
        for what, (ns, iface) in (("admin down of PE1's primary port", ("pe1", "pe1-p1")),
                                  ("carrier loss (P1's end set down)", ("p1", "p1-w"))):
            lab.events("pe1"); lab.events("p1")

            def during():
                time.sleep(2)
                lab.link(ns, iface, False)
                time.sleep(2)
                lab.link(ns, iface, True)
                time.sleep(4)      # the 2 s hold-down, then traffic on the primary again
                return {"pe1": lab.events("pe1"), "p1": lab.events("p1")}
            at_b, at_a, sent_a, sent_b, ev = run_both_ways(lab, tmp, 8, during)
            east_lost, west_lost = losses(at_b, 1, sent_a), losses(at_a, 2, sent_b)
            check(east_lost <= 500 and set(l for l, *_ in at_b) == {900, 901},
                  f"(a) {what}: A→B lost {east_lost} of {sent_a} (≤ 500), took the backup path and came back")
            check(west_lost <= 500 and 911 in set(l for l, *_ in at_a),
                  f"(a) {what}: B→A lost {west_lost} of {sent_b} (≤ 500), repaired locally at P1 (U-turn)")
            pe1_switch = switch_times(ev["pe1"], "to-p1")
            p1_switch = switch_times(ev["p1"], "to-pe1")
            check(pe1_switch and max(pe1_switch) < 10_000 and p1_switch and max(p1_switch) < 10_000,
                  f"(a) {what}: netlink receive → liveness store {pe1_switch} µs at PE1, {p1_switch} µs at P1 (< 10 ms)")
            for direction, frames, primary in (("A→B", at_b, 900), ("B→A", at_a, 910)):
                r = after_revert(frames, primary)
                check(r == (0, 0), f"(b) {what}: after the revert {direction} lost / reordered {r} (0, 0)")
        states = lab.rpc["pe1"].result("nextHops")
        hop = next(h for h in states["nextHops"] if h["name"] == "to-p1")
        check(hop["state"] == "up" and int(hop["downs"]) == 2 and int(hop["reverts"]) == 2,
              f"nextHops: to-p1 {hop['state']}, {hop['downs']} downs, {hop['reverts']} reverts")
        r = subprocess.run([binary("mplsgatectl"), "--socket", lab.agents["pe1"].socket, "show", "next-hops"],
                           capture_output=True, text=True)
        check(r.returncode == 0 and re.search(r"to-p1 .* to-p2 +up", r.stdout) is not None,
              f"mplsgatectl show next-hops: {r.stdout.splitlines()[1:2]}")
        info = lab.rpc["pe1"].result("info")
        check(info["generation"] == 1, "no switch changed the FIB generation (controllers see no reason to resync)")
    finally:
        lab.close()


def case_c(tmp):
    """(c) ECMP over both paths: PE1's port to P1 goes down; only the flows hashed to that member see a gap."""
    lab = Lab(os.path.join(tmp, "c"), hold_down=2)
    try:
        streams = range(10, 18)
        pcaps = {}
        for s in streams:
            pcaps[s] = os.path.join(tmp, f"ecmp-{s}.pcap")
            stream_pcap(pcaps[s], [120, 1000 + 7 * s], s)
        out = os.path.join(tmp, "ecmp-at-b.pcap")
        sk = sink(lab.ns["b"], "b0", out)
        senders = [sender(lab.ns["a"], "a0", pcaps[s], s, 4000, rate=1000) for s in streams]
        time.sleep(1.5)
        lab.link("pe1", "pe1-p1", False)
        for p in senders:
            p.communicate(timeout=60)
        result(sk)
        frames = frames_of(out)
        moved, kept = [], []
        for s in streams:
            labels = [l for l, st, _, _ in frames if st == s]
            lost = 4000 - len({q for _, st, q, _ in frames if st == s})
            (moved if labels and labels[0] == 920 else kept).append((s, lost, set(labels)))
        check(moved and kept, f"(c) the flows spread over both members: {len(moved)} on P1, {len(kept)} on P2")
        check(all(lost == 0 and labels == {921} for _, lost, labels in kept),
              f"(c) flows of the surviving member lost nothing and stayed: {[(s, lost) for s, lost, _ in kept]}")
        check(all(labels == {920, 921} and lost <= 50 for _, lost, labels in moved),
              f"(c) only the dead member's flows moved, with a gap (≤ 50 ms): {[(s, lost) for s, lost, _ in moved]}")
    finally:
        lab.close()


def tx_dropped(ns, iface):
    out = ns.run("ip", "-s", "-j", "link", "show", iface, capture=True).stdout
    return json.loads(out)[0]["stats64"]["tx"]["dropped"]


def case_d(tmp, hold_down, seconds):
    """(d) flaps of PE1's primary port: down 200 ms, up 800 ms, for `seconds`."""
    lab = Lab(os.path.join(tmp, f"d{hold_down}"), hold_down=hold_down)
    try:
        lab.events("pe1")
        drop0 = tx_dropped(lab.ns["pe1"], "pe1-p1")

        def during():
            ups = 0
            t_end = time.time() + seconds
            time.sleep(1)
            while time.time() < t_end - 2:
                lab.link("pe1", "pe1-p1", False)
                time.sleep(0.2)
                lab.link("pe1", "pe1-p1", True)
                ups += 1
                time.sleep(0.8)
            time.sleep(max(0, t_end - time.time()))
            return ups
        at_b, at_a, sent_a, sent_b, ups = run_both_ways(lab, tmp, seconds, during)
        ev = [e for e in lab.events("pe1") if e.get("type") == "nextHop" and e.get("nextHop") == "to-p1"]
        reverts = sum(1 for e in ev if e["state"] == "up")
        downs = sum(1 for e in ev if e["state"] == "backup")
        if hold_down >= 1:
            # Every up lasts 0.8 s, less than the hold-down: no revert until the flapping ends.
            check(downs == 1 and reverts <= 1, f"(d) hold-down {hold_down} s, {ups} flaps: on the backup throughout "
                                               f"({downs} switch, {reverts} revert at the end)")
        else:
            check(downs == ups and reverts >= ups - 1,
                  f"(d) hold-down {hold_down} s, {ups} flaps: {downs} switches, {reverts} reverts (one per up)")
        counters = lab.rpc["pe1"].result("counters")["ports"]["p1"]
        dropped = tx_dropped(lab.ns["pe1"], "pe1-p1") - drop0
        # The worker stops sending within one batch of the netlink message; what a sendto has in hand when the device
        # goes down under it the kernel drops and counts (dev_direct_xmit), at most a batch per flap.
        check(dropped <= 64 * ups and int(counters["rings"]["sendtoErrors"]) == 0,
              f"(d) hold-down {hold_down} s: the flapping port's tx_dropped {dropped} (≤ one batch per flap, counted), "
              f"send errors {counters['rings']['sendtoErrors']} (0), ENETDOWN {counters['rings']['sendtoPortDown']}, "
              f"stranded on its TX ring {counters['rings']['txStranded']}")
        received = len({(st, s) for _, st, s, _ in at_b}) + len({(st, s) for _, st, s, _ in at_a})
        drops = lab.drops()
        check(sent_a + sent_b == received + drops,
              f"(d) hold-down {hold_down} s: sent {sent_a + sent_b} = received {received} + counted drops {drops}")
    finally:
        lab.close()


def main():
    if os.geteuid() != 0:
        print("test_protection.py needs root (network namespaces, XDP)")
        return 1
    seconds = int(os.environ.get("MPLSGATE_FLAP_SECONDS", "60"))
    with tempfile.TemporaryDirectory(prefix="mplsgate-prot-") as tmp:
        for d in ("ab", "c", "d2", "d0.5"):
            os.makedirs(os.path.join(tmp, d))
        print("link protection: (a) a primary port down, (b) the revert, both directions at 10,000 frames/s")
        case_a_and_b(tmp)
        print("(c) an ECMP member down")
        case_c(tmp)
        print(f"(d) {seconds} s of flaps (down 200 ms, up 800 ms), hold-down 2 s and 0.5 s")
        case_d(tmp, 2, seconds)
        case_d(tmp, 0.5, seconds)
    return finish("link-protection")


if __name__ == "__main__":
    sys.exit(main())
