#!/usr/bin/python3
"""MAC learning across three data centres (issue 18), on the topology of sites.py with no static MAC installed:
every host pings every other once the PEs learned from the traffic; then 10 s of DC1 <-> DC2 unicast leaves the DC3
host's received count and every PE's flood copies unchanged; a MAC made to flap between two sites is frozen as a
duplicate after its 6th move (and the agent logs it); a VM moves from DC2 to DC3 (same MAC and IP, a gratuitous
ARP) while a DC1 host pings it at 100 pps: replies resume within 1 s and PE1 shows it at the new site; a tenant-A
host sends 10,000 random source MACs: PE1 stops learning at A's limit while tenant B learns 100 new MACs and loses
no ping, and A's earlier MACs still forward as known unicast (no flood copies).

Run: MPLSGATE_BIN_DIR=.build/release /usr/bin/python3 Tests/Integration/test_learning.py   (scripts/test.sh does)
"""
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import check, finish, Netns, veth, RPC  # noqa: E402
from sites import Sites, loss, copies, HOSTS, VNI_A, VNI_B, DC, HOST_MTU  # noqa: E402

LIMIT_A = 1000
FLAPPER = "02:66:00:00:00:66"

# Raw frames on eth0: a gratuitous ARP, broadcasts from one source MAC, or N broadcasts from new source MACs.
SEND = r"""
import socket, struct, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(('eth0', 0))
mode = sys.argv[1]
if mode == 'garp':
    mac, ip = bytes.fromhex(sys.argv[2].replace(':', '')), socket.inet_aton(sys.argv[3])
    arp = struct.pack('!HHBBH6s4s6s4s', 1, 0x0800, 6, 4, 1, mac, ip, b'\0' * 6, ip)
    for _ in range(3):
        s.send(b'\xff' * 6 + mac + b'\x08\x06' + arp + b'\0' * 18)
        time.sleep(0.01)
elif mode == 'from':
    mac = bytes.fromhex(sys.argv[2].replace(':', ''))
    s.send(b'\xff' * 6 + mac + b'\x88\xb5' + b'flap' * 12)
else:   # many N PREFIX PPS: N broadcasts, each from a new locally administered MAC PREFIX:nn:nn:nn
    n, prefix, pps = int(sys.argv[2]), bytes.fromhex(sys.argv[3].replace(':', '')), int(sys.argv[4])
    t0 = time.time()
    for i in range(n):
        s.send(b'\xff' * 6 + prefix + i.to_bytes(6 - len(prefix), 'big') + b'\x88\xb5' + b'many' * 12)
        if i % 100 == 99:
            time.sleep(max(0.0, t0 + (i + 1) / pps - time.time()))
    print(n)
"""




def learned(m):
    return {e["mac"]: e for e in m["macs"] if e["type"] == "learned"}


def place(e):
    return ("site " + e["site"]) if "site" in e else ("vtep " + e.get("vtep", "?"))


def main():
    if os.geteuid() != 0:
        print("test_learning.py needs root")
        return 1
    s = Sites(learning_a={"macLimit": LIMIT_A})
    try:
        print("three data centres, no static MACs: the PEs learn from the traffic")
        s.build()
        s.start_agents()
        s.program()
        check(not any(e["type"] == "static" for e in s.macs(1)["macs"]), "PE1 has no static MAC")

        print("every host pings every other")
        bad = s.ping_pairs()
        check(not bad, f"{len(Sites.PAIRS)} host pairs ping without loss" + (f": {bad}" if bad else ""))
        want = {HOSTS["h1a"][3]: "vtep " + DC[1]["vteps"]["vtep1a"], HOSTS["h1b"][3]: "vtep " + DC[1]["vteps"]["vtep1b"],
                HOSTS["h2"][3]: "site dc2", HOSTS["h3"][3]: "site dc3"}
        got = {m: place(e) for m, e in learned(s.macs(1)).items()}
        check(all(got.get(m) == p for m, p in want.items()), f"PE1 learned tenant A's hosts where they are: {got}")
        check({HOSTS["b1"][3], HOSTS["b2"][3]} <= set(learned(s.macs(1, VNI_B))), "PE1 learned tenant B's two hosts")
        print(s.ctl("pe1", "show", "macs", str(VNI_A)).stdout.rstrip())

        print("10 s of DC1 <-> DC2 unicast after learning floods nothing")
        for a, b in (("h1a", "h2"), ("h2", "h1a")):
            s.ns[a].run("ip", "neigh", "replace", HOSTS[b][2], "lladdr", HOSTS[b][3], "dev", "eth0", "nud", "permanent")
        # h3 forgets its neighbours, so that it sends no ARP probe of its own (whose replies it would receive).
        s.ns["h3"].run("ip", "neigh", "flush", "all")
        before_rx, before_copies = s.rx_packets("h3"), copies(s)
        out = s.ns["h1a"].run("ping", "-c", "500", "-i", "0.02", "-W", "1", HOSTS["h2"][2], capture=True, check=False,
                              timeout=60).stdout
        sent, got = loss(out)
        after_rx, after_copies = s.rx_packets("h3"), copies(s)
        check(sent == 500 and got >= 499, f"h1a -> h2: {got}/{sent} replies over 10 s")
        check(after_rx == before_rx, f"h3 received nothing meanwhile ({before_rx} -> {after_rx} frames)")
        check(after_copies == before_copies, f"no PE made a flood copy meanwhile ({before_copies} -> {after_copies})")

        print(f"a MAC flapping between DC2 and DC3 ({FLAPPER}) is frozen after its 6th move")
        for k in range(8):
            host = "h2" if k % 2 == 0 else "h3"
            s.ns[host].run("python3", "-c", SEND, "from", FLAPPER)
            time.sleep(0.1)
        e = learned(s.macs(1)).get(FLAPPER, {})
        c = s.macs(1)["counters"]
        check(e.get("duplicate") is True and place(e) == "site dc3",
              f"PE1: {FLAPPER} frozen as a duplicate at dc3, where the 5th move put it: {e}")
        check(c["duplicate"] == 1 and c["moved"] == 5, f"PE1 counted 5 moves and 1 duplicate: {c['moved']}, {c['duplicate']}")
        print(s.ctl("pe1", "show", "macs", str(VNI_A)).stdout.rstrip())

        print("VM migration: h2 moves from DC2 to DC3 (same MAC and IP) while h1a pings it at 100 pps")
        ping = s.ns["h1a"].popen("ping", "-D", "-i", "0.01", "-c", "700", "-W", "1", HOSTS["h2"][2],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        time.sleep(2.0)
        h2m = Netns("h2m")
        s.ns["h2m"] = h2m
        for k in ("all", "default"):
            h2m.run("sysctl", "-qw", f"net.ipv6.conf.{k}.disable_ipv6=1")
        s.ns["vtep2"].run("ip", "link", "del", "to-h2")
        veth(h2m, "eth0", s.ns["vtep3"], "to-h2m", mac_a=HOSTS["h2"][3], mtu=HOST_MTU)
        s.ns["vtep3"].run("ip", "link", "set", "to-h2m", "master", f"br{VNI_A}")
        h2m.run("ip", "addr", "add", f"{HOSTS['h2'][2]}/24", "dev", "eth0")
        moved_at = time.time()
        h2m.run("python3", "-c", SEND, "garp", HOSTS["h2"][3], HOSTS["h2"][2])
        out, _ = ping.communicate(timeout=60)
        stamps = [float(m.group(1)) for m in re.finditer(r"^\[(\d+\.\d+)\].*icmp_seq=", out, re.M)]
        after = [t for t in stamps if t >= moved_at]
        resumed = (after[0] - moved_at) if after else None
        check(resumed is not None and resumed <= 1.0,
              f"replies resumed {resumed if resumed is None else round(resumed, 3)} s after the gratuitous ARP "
              f"({len(after)} replies after the move)")
        e = learned(s.macs(1)).get(HOSTS["h2"][3], {})
        check(place(e) == "site dc3", f"PE1 shows h2's MAC at dc3 now: {place(e) if e else 'missing'}")
        e3 = learned(s.macs(3)).get(HOSTS["h2"][3], {})
        check(place(e3) == "vtep " + DC[3]["vteps"]["vtep3"], f"PE3 shows it behind its own VTEP: {place(e3) if e3 else 'missing'}")

        print(f"a MAC flood in tenant A (limit {LIMIT_A}) while tenant B learns and pings")
        before_b = len(learned(s.macs(1, VNI_B)))
        pinger = s.ns["b1"].popen("ping", "-c", "60", "-i", "0.05", "-W", "1", HOSTS["b2"][2],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        flood = s.ns["h1a"].popen("python3", "-c", SEND, "many", "10000", "02:aa", "5000", stdout=subprocess.PIPE)
        time.sleep(0.5)
        s.ns["b1"].run("python3", "-c", SEND, "many", "100", "02:bb", "1000", capture=True)
        flood.communicate(timeout=60)
        out, _ = pinger.communicate(timeout=60)
        time.sleep(0.2)
        a = s.macs(1)
        b = s.macs(1, VNI_B)
        sent, got = loss(out)
        check(len(learned(a)) == LIMIT_A and a["counters"]["overLimit"] > 0,
              f"PE1 VNI {VNI_A}: {len(learned(a))} learned (limit {LIMIT_A}), {a['counters']['overLimit']} over the limit")
        check(len(learned(b)) >= before_b + 100, f"PE1 VNI {VNI_B} learned tenant B's 100 new MACs ({before_b} -> {len(learned(b))})")
        check(sent == 60 and got == 60, f"tenant B's pings meanwhile: {got}/{sent}")
        check(all(m in learned(a) for m in want), "A's hosts stayed learned (never evicted)")
        for x, y in (("h1a", "h3"), ("h3", "h1a")):
            s.ns[x].run("ip", "neigh", "replace", HOSTS[y][2], "lladdr", HOSTS[y][3], "dev", "eth0", "nud", "permanent")
        c0 = copies(s)
        sent, got = loss(s.ns["h1a"].run("ping", "-c", "50", "-i", "0.02", "-W", "1", HOSTS["h3"][2], capture=True,
                                         check=False, timeout=60).stdout)
        check(got == 50 and copies(s) == c0, f"h1a -> h3 after the flood: {got}/{sent}, as known unicast (no flood copy)")

        print("flushing: one MAC (the frozen duplicate), then a site's")
        r = s.ctl("pe1", "flush-macs", str(VNI_A), "--mac", FLAPPER).stdout
        check("1 learned MAC(s) flushed" in r and FLAPPER not in learned(s.macs(1)), f"flush-macs --mac: {r.strip()}")
        n3 = sum(1 for e in learned(s.macs(1)).values() if e.get("site") == "dc3")
        r = s.ctl("pe1", "--json", "flush-macs", str(VNI_A), "--site", "dc3").stdout
        check(f'"flushed":{n3}' in r and not any(e.get("site") == "dc3" for e in learned(s.macs(1)).values()),
              f"flush-macs --site dc3 removed its {n3} MACs: {r.strip()}")
        bad = s.ctl("pe1", "flush-macs", str(VNI_A), "--site", "dc9", check=False)
        check(bad.returncode != 0 and "no site" in bad.stderr, f"an unknown site is an error: {bad.stderr.strip()}")

        print("the controller changes VNI 6000 on PE1: places reordered (MACs stay where they are), then site dc3 removed")
        loss(s.ping("h1a", "h3", count=2))
        loss(s.ping("h1b", "h2", count=2))
        before = {m: place(e) for m, e in learned(s.macs(1)).items()}
        vni = next(v for v in s.fibs()["pe1"]["vni"] if v["vni"] == VNI_A)
        vni["multipoint"]["sites"].reverse()
        vni["multipoint"]["vteps"].reverse()
        vni["multipoint"]["learning"] = {"macLimit": LIMIT_A}
        rpc = RPC(s.path("pe1.sock"))
        rpc.result("apply", {"operations": [{"op": "replace", "kind": "vni", "entry": vni}]})
        after = {m: place(e) for m, e in learned(s.macs(1)).items()}
        check(after == before, f"after reordering, {len(after)} learned MACs at the same places")
        c0 = copies(s)
        sent, got = loss(s.ping("h1a", "h3", count=5))
        check(got == 5 and copies(s) == c0, f"h1a -> h3 still known unicast ({got}/{sent}, no flood copy)")
        vni["multipoint"]["sites"] = [x for x in vni["multipoint"]["sites"] if x["name"] != "dc3"]
        rpc.result("apply", {"operations": [{"op": "replace", "kind": "vni", "entry": vni}]})
        after = {m: place(e) for m, e in learned(s.macs(1)).items()}
        gone = [m for m, p in before.items() if p == "site dc3"]
        check(gone and all(m not in after for m in gone) and all(after.get(m) == p for m, p in before.items() if p != "site dc3"),
              f"site dc3 removed: its {len(gone)} MACs went, the others stayed")
        vni["multipoint"]["sites"] = next(v for v in s.fibs()["pe1"]["vni"] if v["vni"] == VNI_A)["multipoint"]["sites"]
        rpc.result("apply", {"operations": [{"op": "replace", "kind": "vni", "entry": vni}]})
        rpc.close()

        print("PE1's core link down (its next hop to P has no backup): the MACs learned at its sites go")
        loss(s.ping("h1a", "h3", count=2))   # h3 learned at dc3 again after the flush above
        sites_before = [m for m, e in learned(s.macs(1)).items() if "site" in e]
        flushed_before = s.macs(1)["counters"]["flushed"]
        s.ns["p"].run("ip", "link", "set", "p1", "down")
        time.sleep(1.0)
        after = s.macs(1)
        left = [m for m, e in learned(after).items() if "site" in e]
        check(sites_before and not left and after["counters"]["flushed"] >= flushed_before + len(sites_before),
              f"{len(sites_before)} MACs at sites before, {len(left)} after; flushed "
              f"{flushed_before} -> {after['counters']['flushed']}")
        check(any("site" not in e for e in learned(after).values()), "the MACs at local VTEPs stay")
        s.ns["p"].run("ip", "link", "set", "p1", "up")
        time.sleep(1.0)
        sent, got = loss(s.ping("h1a", "h3", count=5))
        e = learned(s.macs(1)).get(HOSTS["h3"][3], {})
        check(got >= 3 and place(e) == "site dc3",
              f"after the link is back, h1a -> h3 pings again ({got}/{sent}) and h3 is learned at dc3 again")

        for n in ("pe1", "pe2", "pe3", "p"):
            check(s.agents[n].proc.poll() is None, f"agent {n} still running")
        _, _, log = s.agents["pe1"].stop()
        check(any("learned MAC duplicate" in l and FLAPPER in l for l in log), "PE1 logged the duplicate")
        check(any("learned MAC moved" in l and HOSTS["h2"][3] in l for l in log), "PE1 logged h2's move")
    finally:
        s.teardown()
    return finish("learning")


if __name__ == "__main__":
    sys.exit(main())
