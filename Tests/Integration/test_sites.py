#!/usr/bin/python3
"""One tenant segment across three data centres (issue 17), on the topology of sites.py (scripts/demo.sh --sites 3):
every host pings every other; one ARP broadcast from a host in each site reaches every other host exactly once
(counted on the far hosts, including the one behind DC1's other VTEP); with the static MACs installed, 10 s of
DC1 <-> DC2 unicast leaves the DC3 host's received-frame count and every PE's flood copies unchanged; iperf3 between
two sites; a broadcast storm from one tenant's host is rate-limited while the other tenant's pings lose nothing.

Run: MPLSGATE_BIN_DIR=.build/release /usr/bin/python3 Tests/Integration/test_sites.py   (scripts/test.sh does)
"""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import check, finish  # noqa: E402
from sites import Sites, loss, copies, HOSTS, TENANT_A, VNI_A, VNI_B, DC  # noqa: E402

BUM_A = 500

# One Ethernet frame on eth0 from a host: ARP who-has (broadcast), or a burst of broadcasts at a pace.
SEND = r"""
import socket, struct, sys, time
mac = bytes.fromhex(sys.argv[1].replace(':', ''))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(('eth0', 0))
if sys.argv[2] == 'arp':
    src, dst = socket.inet_aton(sys.argv[3]), socket.inet_aton(sys.argv[4])
    arp = struct.pack('!HHBBH6s4s6s4s', 1, 0x0800, 6, 4, 1, mac, src, b'\0' * 6, dst)
    s.send(b'\xff' * 6 + mac + b'\x08\x06' + arp + b'\0' * 18)
else:
    pps, seconds = int(sys.argv[3]), float(sys.argv[4])
    frame = b'\xff' * 6 + mac + b'\x88\xb5' + b'storm' * 12
    sent, t0 = 0, time.time()
    while time.time() - t0 < seconds:
        for _ in range(pps // 100):
            s.send(frame); sent += 1
        time.sleep(max(0.0, t0 + sent / pps - time.time()))
    print(sent)
"""




def main():
    if os.geteuid() != 0:
        print("test_sites.py needs root")
        return 1
    s = Sites(bum_a=BUM_A)
    try:
        print("three data centres: build, start four agents, program them with mplsgatectl")
        s.build()
        s.start_agents()
        s.program()
        fib = s.ctl("pe1", "show", "vni").stdout
        check("multipoint" in fib and "dc2" in fib and "dc3" in fib, "PE1 shows VNI 6000 as multipoint with sites dc2, dc3")

        print("every host pings every other (tenant A across three sites, tenant B across two)")
        bad = s.ping_pairs()
        check(not bad, f"{len(Sites.PAIRS)} host pairs ping without loss" + (f": {bad}" if bad else ""))

        print("one ARP broadcast from a host in each site reaches every other host exactly once")
        for i, src in enumerate(["h1a", "h2", "h3"]):
            target = f"10.60.0.{200 + i}"
            hexip = "0x%08x" % int.from_bytes(bytes(int(o) for o in target.split(".")), "big")
            caps = {}
            for h in TENANT_A:
                if h != src:
                    path = s.path(f"arp-{src}-{h}.pcap")
                    caps[h] = (path, s.ns[h].popen("tcpdump", "-i", "eth0", "-n", "-U", "-w", path, f"arp and arp[24:4] = {hexip}",
                                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            time.sleep(1.0)
            s.ns[src].run("python3", "-c", SEND, HOSTS[src][3], "arp", HOSTS[src][2], target)
            time.sleep(1.5)
            counts = {}
            for h, (path, p) in caps.items():
                p.send_signal(signal.SIGINT)
                p.wait(timeout=10)
                r = subprocess.run(["tcpdump", "-r", path, "-n"], capture_output=True, text=True)
                counts[h] = len([l for l in r.stdout.splitlines() if l.strip()])
            check(all(n == 1 for n in counts.values()), f"ARP from {src}: received once by each of {sorted(counts)}: {counts}")

        print("static MACs installed; 10 s of DC1 <-> DC2 unicast floods nothing")
        s.install_macs()
        m = s.macs(1)
        static = [e for e in m["macs"] if e["type"] == "static"]
        check(len(static) == 4 and {e["mac"] for e in static} == {HOSTS[h][3] for h in TENANT_A},
              "show macs lists PE1's four static MACs (beside what it learned)")
        for a, b in (("h1a", "h2"), ("h2", "h1a")):
            s.ns[a].run("ip", "neigh", "replace", HOSTS[b][2], "lladdr", HOSTS[b][3], "dev", "eth0", "nud", "permanent")
        before_rx, before_copies = s.rx_packets("h3"), copies(s)
        before_unicast = s.macs(1)["counters"]["unicast"]
        out = s.ns["h1a"].run("ping", "-c", "500", "-i", "0.02", "-W", "1", HOSTS["h2"][2], capture=True, check=False,
                              timeout=60).stdout
        sent, got = loss(out)
        after_rx, after_copies = s.rx_packets("h3"), copies(s)
        check(sent == 500 and got >= 499, f"h1a -> h2: {got}/{sent} replies over 10 s")
        check(after_rx == before_rx, f"h3 received nothing meanwhile ({before_rx} -> {after_rx} frames)")
        check(after_copies == before_copies, f"no PE made a flood copy meanwhile ({before_copies} -> {after_copies})")
        check(s.macs(1)["counters"]["unicast"] >= before_unicast + 500, "PE1 counted the requests as known unicast")

        print("iperf3 h1a -> h2 across the core")
        srv = s.ns["h2"].popen("iperf3", "-s", "-1", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        r = s.ns["h1a"].run("iperf3", "-c", HOSTS["h2"][2], "-t", "3", "-f", "m", capture=True, check=False, timeout=60)
        srv.wait(timeout=15)
        rate = [float(l.split()[6]) for l in r.stdout.splitlines() if "receiver" in l and len(l.split()) > 7]
        check(rate and rate[0] > 5, f"iperf3 h1a -> h2: {rate[0] if rate else '?'} Mbit/s")

        print(f"a broadcast storm in tenant A (limit {BUM_A}/s per worker) while tenant B pings")
        before = s.macs(1)
        pinger = s.ns["b1"].popen("ping", "-c", "80", "-i", "0.05", "-W", "1", HOSTS["b2"][2],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        storm = s.ns["h1a"].run("python3", "-c", SEND, HOSTS["h1a"][3], "storm", "5000", "3", capture=True, timeout=60)
        out, _ = pinger.communicate(timeout=60)
        after = s.macs(1)
        sent, got = loss(out)
        flooded = after["counters"]["flooded"] - before["counters"]["flooded"]
        limited = after["counters"]["rateLimited"] - before["counters"]["rateLimited"]
        made = after["counters"]["copies"] - before["counters"]["copies"]
        print(f"  storm: {storm.stdout.strip()} frames sent; PE1 VNI {VNI_A}: {flooded} flooded, {limited} rate-limited, "
              f"{made} copies")
        check(limited > 0 and flooded - limited <= BUM_A * 4 + 100, "PE1 rate-limited the storm to about its limit")
        check(made == 2 * (flooded - limited), "each admitted flood was copied to both sites")
        check(sent == 80 and got == 80, f"tenant B's pings meanwhile: {got}/{sent}")
        check(s.macs(1, VNI_B)["counters"]["rateLimited"] == 0, "tenant B's VNI was never rate-limited")

        for n in ("pe1", "pe2", "pe3", "p"):
            a = s.agents[n]
            check(a.proc.poll() is None, f"agent {n} still running")
    finally:
        s.teardown()
    return finish("three-site")


if __name__ == "__main__":
    sys.exit(main())
