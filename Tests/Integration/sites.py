#!/usr/bin/python3
"""One tenant segment across three data centres: a multipoint VNI (RFC 4762 VPLS at the RFC 9014 gateway).

    DC1: h1a ── vtep1a ─┐                                          ┌─ PE2 ── vtep2 ── h2   (+ tenant B: b2)
         h1b ── vtep1b ─┼─ u1 (underlay bridge) ── PE1 ══ P ══════┤
         (tenant B: b1 behind vtep1b)                              └─ PE3 ── vtep3 ── h3

Every VTEP is a Linux VXLAN device with head-end replication: no `remote`, no `group`, one
`bridge fdb append 00:00:00:00:00:00 ... dst` per other VTEP of its data centre and one for its PE. Four MPLSGate
agents (PE1, PE2, PE3 and the P router) start with empty FIBs and are programmed only through their control sockets.

Tenant A is VNI 6000 (hosts 10.60.0.0/24), tenant B VNI 6001 (10.61.0.0/24, in DC1 and DC2). Each PE's multipoint
VNI lists its local VTEPs and the two other data centres as sites, one pseudowire each (control word on):

    PEx → site dcy: push [16000+y (transport), 3000+10y+x (dcy's label for PWs from dcx)]; tenant B 4000+10y+x
    P: swap 16000+y → 17000+y toward PEy; PEy pops 17000+y, then popToMultipoint 3000+10y+x (site dcx)

Used by scripts/demo.sh --sites 3 and Tests/Integration/test_sites.py.
"""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Netns, veth, Agent, binary, sh, RPC, teardown  # noqa: E402

VNI_A, VNI_B = 6000, 6001
HOST_MTU = 1450
# Per data centre: the PE's VTEP address, its VTEPs (name -> underlay address), the tenant A/B hosts behind each.
DC = {
    1: {"pe": "192.0.2.1", "vteps": {"vtep1a": "192.0.2.11", "vtep1b": "192.0.2.12"}},
    2: {"pe": "198.51.100.1", "vteps": {"vtep2": "198.51.100.11"}},
    3: {"pe": "203.0.113.1", "vteps": {"vtep3": "203.0.113.11"}},
}
# Hosts: name -> (VTEP, tenant VNI, address, MAC)
HOSTS = {
    "h1a": ("vtep1a", VNI_A, "10.60.0.11", "02:60:00:00:00:1a"),
    "h1b": ("vtep1b", VNI_A, "10.60.0.12", "02:60:00:00:00:1b"),
    "h2": ("vtep2", VNI_A, "10.60.0.2", "02:60:00:00:00:02"),
    "h3": ("vtep3", VNI_A, "10.60.0.3", "02:60:00:00:00:03"),
    "b1": ("vtep1b", VNI_B, "10.61.0.1", "02:61:00:00:00:01"),
    "b2": ("vtep2", VNI_B, "10.61.0.2", "02:61:00:00:00:02"),
}
TENANT_A = ["h1a", "h1b", "h2", "h3"]


def mac(kind, n):
    """Fixed MACs: PE dc/core ports, P's ports, VTEP underlays."""
    return {"pe-dc": "02:0%d:00:00:00:01", "pe-core": "02:0%d:00:00:00:02", "p": "02:0f:00:00:00:0%d",
            "vtep": "02:%d:00:00:00:aa"}[kind] % n


def dc_of(vtep):
    return next(x for x, d in DC.items() if vtep in d["vteps"])


def log(msg):
    print(f"sites: {msg}", flush=True)


def loss(out):
    """(transmitted, received) from ping's summary, (0, 0) without one."""
    m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def copies(s):
    """Flood copies each PE made, over both tenants' VNIs."""
    return {x: sum(s.macs(x, v)["counters"]["copies"] for v in (VNI_A, VNI_B)) for x in DC}


class Sites:
    def __init__(self, bum_a=10000, workdir=None, learning_a=None):
        self.bum_a = bum_a
        self.learning_a = learning_a
        self.dir = workdir or tempfile.mkdtemp(prefix="mplsgate-sites-")
        self.ns = {}
        self.agents = {}
        self.vtep_mac = {}

    # -- topology ---------------------------------------------------------------------------------------------
    def build(self):
        names = list(HOSTS) + ["vtep1a", "vtep1b", "vtep2", "vtep3", "u1", "pe1", "pe2", "pe3", "p"]
        for n in names:
            self.ns[n] = Netns(n)
        ns = self.ns
        # The tenant segments and underlays are IPv4 only: no IPv6 link-local chatter (router solicitations, MLD
        # reports from hosts and VTEP bridges) to blur the counts the tests compare.
        for n in list(HOSTS) + ["vtep1a", "vtep1b", "vtep2", "vtep3"]:
            for k in ("all", "default"):
                ns[n].run("sysctl", "-qw", f"net.ipv6.conf.{k}.disable_ipv6=1")
        # DC1's underlay: both VTEPs and PE1's dc port on one bridge.
        ns["u1"].run("ip", "link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0")
        ns["u1"].run("ip", "link", "set", "br0", "up")
        for i, (vtep, addr) in enumerate(sorted((v, a) for d in DC.values() for v, a in d["vteps"].items())):
            self.vtep_mac[vtep] = "02:5%d:00:00:00:aa" % i
            x = dc_of(vtep)
            if x == 1:
                veth(ns[vtep], "under", ns["u1"], f"u1-{vtep}", mac_a=self.vtep_mac[vtep])
                ns["u1"].run("ip", "link", "set", f"u1-{vtep}", "master", "br0")
            else:
                veth(ns[vtep], "under", ns[f"pe{x}"], f"pe{x}-dc", mac_a=self.vtep_mac[vtep], mac_b=mac("pe-dc", x))
            ns[vtep].run("ip", "addr", "add", f"{addr}/24", "dev", "under")
        veth(ns["pe1"], "pe1-dc", ns["u1"], "u1-pe1", mac_a=mac("pe-dc", 1))
        ns["u1"].run("ip", "link", "set", "u1-pe1", "master", "br0")
        for x in DC:
            # The PE's VTEP address lives on its host too, so ARP for it is answered by the host stack.
            ns[f"pe{x}"].run("ip", "addr", "add", f"{DC[x]['pe']}/24", "dev", f"pe{x}-dc")
            veth(ns[f"pe{x}"], f"pe{x}-core", ns["p"], f"p{x}", mac_a=mac("pe-core", x), mac_b=mac("p", x))
        # Tenant segments on the Linux VTEPs: one bridge and one VXLAN device per VNI, head-end replication.
        for vtep in ("vtep1a", "vtep1b", "vtep2", "vtep3"):
            x = dc_of(vtep)
            local = DC[x]["vteps"][vtep]
            peers = [a for v, a in DC[x]["vteps"].items() if v != vtep] + [DC[x]["pe"]]
            for vni in sorted({HOSTS[h][1] for h in HOSTS if HOSTS[h][0] == vtep}):
                n = VNI_A if vni == VNI_A else VNI_B
                dev, br = f"vx{n}", f"br{n}"
                v = ns[vtep]
                v.run("ip", "link", "add", dev, "type", "vxlan", "id", str(vni), "dstport", "4789", "local", local,
                      "dev", "under")
                v.run("ip", "link", "set", dev, "mtu", str(HOST_MTU))
                v.run("ip", "link", "add", br, "type", "bridge", "stp_state", "0", "forward_delay", "0")
                v.run("ip", "link", "set", br, "mtu", str(HOST_MTU))
                v.run("ip", "link", "set", dev, "master", br)
                for dst in (peers if vni == VNI_A else [DC[x]["pe"]]):
                    v.run("bridge", "fdb", "append", "00:00:00:00:00:00", "dev", dev, "dst", dst)
                for d in (dev, br):
                    v.run("ip", "link", "set", d, "up")
        for h, (vtep, vni, addr, hmac) in HOSTS.items():
            veth(ns[h], "eth0", ns[vtep], f"to-{h}", mac_a=hmac, mtu=HOST_MTU)
            ns[vtep].run("ip", "link", "set", f"to-{h}", "master", f"br{vni}")
            ns[h].run("ip", "addr", "add", f"{addr}/24", "dev", "eth0")
        return self

    def configs(self):
        def port(name, iface, m, role, **kw):
            d = {"name": name, "interface": iface, "mac": m, "role": role}
            d.update(kw)
            return d
        c = {f"pe{x}": {"version": 1, "ports": [port("dc", f"pe{x}-dc", mac("pe-dc", x), "dc", vteps=[DC[x]["pe"]]),
                                                port("core", f"pe{x}-core", mac("pe-core", x), "core")]} for x in DC}
        c["p"] = {"version": 1, "ports": [port(f"dc{x}", f"p{x}", mac("p", x), "core") for x in DC]}
        return c

    def fibs(self):
        out = {}
        for x in DC:
            nhs = [{"name": "to-p", "port": "core", "mac": mac("p", x)}]
            nhs += [{"name": f"to-{v}", "port": "dc", "mac": self.vtep_mac[v]} for v in DC[x]["vteps"]]
            vnis, ilm = [], [{"label": 17000 + x, "op": "pop", "ttlMode": "pipe"}]
            for vni, base, bum in ((VNI_A, 3000, self.bum_a), (VNI_B, 4000, 10000)):
                vteps = [{"address": a, "via": f"to-{v}"} for v, a in DC[x]["vteps"].items()
                         if any(HOSTS[h][0] == v and HOSTS[h][1] == vni for h in HOSTS)]
                sites = [{"name": f"dc{y}", "push": [16000 + y, base + 10 * y + x], "via": "to-p", "controlWord": True}
                         for y in DC if y != x]
                mp = {"localVtep": DC[x]["pe"], "vteps": vteps, "sites": sites, "bumPerSecond": bum}
                if vni == VNI_A and self.learning_a:
                    mp["learning"] = self.learning_a
                vnis.append({"vni": vni, "multipoint": mp})
                ilm += [{"label": base + 10 * x + y, "op": "popToMultipoint", "vni": vni, "site": f"dc{y}",
                         "controlWord": True} for y in DC if y != x]
            out[f"pe{x}"] = {"version": 1, "nextHops": nhs, "vni": vnis, "ilm": ilm}
        out["p"] = {"version": 1,
                    "nextHops": [{"name": f"to-pe{x}", "port": f"dc{x}", "mac": mac("pe-core", x)} for x in DC],
                    "ilm": [{"label": 16000 + x, "op": "swap", "out": [17000 + x], "via": f"to-pe{x}"} for x in DC]}
        return out

    def static_macs(self, x):
        """PEx's static MACs for tenant A: its own hosts at their VTEPs, the others at their data centres."""
        ops = []
        for h in TENANT_A:
            vtep, vni, _, hmac = HOSTS[h]
            y = dc_of(vtep)
            place = {"vtep": DC[y]["vteps"][vtep]} if y == x else {"site": f"dc{y}"}
            ops.append({"op": "add", "kind": "mac", "entry": {"vni": vni, "mac": hmac, **place}})
        return ops

    def path(self, name):
        return os.path.join(self.dir, name)

    # -- agents -----------------------------------------------------------------------------------------------
    def start_agents(self):
        for name, cfg in self.configs().items():
            f = self.path(f"{name}-config.json")
            json.dump(cfg, open(f, "w"), indent=1)
            a = Agent(self.ns[name], f, None, instance=name, state_dir=self.dir,
                      extra=("--cpus", "none", "--wait", "poll", "--frames", "2048", "--ring-size", "512"))
            if not a.started(timeout=20):
                raise RuntimeError(f"agent {name} did not start: {a.log[-3:]}")
            self.agents[name] = a

    def ctl(self, name, *args, check=True):
        r = subprocess.run([binary("mplsgatectl"), "--socket", self.path(f"{name}.sock"), *args], capture_output=True,
                           text=True, timeout=60)
        if check and r.returncode != 0:
            raise RuntimeError(f"mplsgatectl {' '.join(args)} on {name}: {r.stderr.strip()}")
        return r

    def program(self):
        for name, fib in self.fibs().items():
            f = self.path(f"{name}-fib.json")
            json.dump(fib, open(f, "w"), indent=1)
            self.ctl(name, "resync", f)

    def install_macs(self):
        for x in DC:
            rpc = RPC(self.path(f"pe{x}.sock"))
            rpc.result("apply", {"operations": self.static_macs(x)})
            rpc.close()

    def macs(self, x, vni=VNI_A):
        return json.loads(self.ctl(f"pe{x}", "--json", "show", "macs", str(vni)).stdout)["vnis"][0]

    def ping(self, src, dst, count=3, interval="0.2", wait="1"):
        r = self.ns[src].run("ping", "-c", str(count), "-i", interval, "-W", wait, HOSTS[dst][2], capture=True,
                             check=False, timeout=count * 2 + 30)
        return r.stdout

    # Every tenant A host to every other, and tenant B's two both ways.
    PAIRS = [(a, b) for a in TENANT_A for b in TENANT_A if a != b] + [("b1", "b2"), ("b2", "b1")]

    def ping_pairs(self, count=3):
        """Pings every pair of PAIRS; returns the pairs that lost a reply ("a->b got/sent")."""
        bad = []
        for a, b in Sites.PAIRS:
            sent, got = loss(self.ping(a, b, count=count))
            if sent == 0 or got < sent:
                bad.append(f"{a}->{b} {got}/{sent}")
        return bad

    def rx_packets(self, host):
        return int(self.ns[host].run("cat", "/sys/class/net/eth0/statistics/rx_packets", capture=True).stdout)

    def teardown(self):
        teardown(self.agents.values(), self.ns.values(), self.dir)


def demo(keep=False):
    s = Sites()
    try:
        log("building 15 namespaces: DC1 (two Linux VTEPs on one underlay with PE1), DC2, DC3, and P")
        s.build()
        log("starting four MPLSGate agents (PE1, PE2, PE3, P; poll mode, empty FIBs)")
        s.start_agents()
        log("programming them over their control sockets with mplsgatectl (multipoint VNIs 6000 and 6001)")
        s.program()
        print("--- pe1: mplsgatectl show vni / labels")
        print(s.ctl("pe1", "show", "vni").stdout.rstrip())
        print(s.ctl("pe1", "show", "labels").stdout.rstrip())
        ok = True
        for a, b in Sites.PAIRS:
            out = s.ping(a, b, count=2)
            good = " 0% packet loss" in out
            ok = ok and good
            log(f"ping {a} -> {b} ({HOSTS[b][2]}): {'ok' if good else 'LOST'}")
        log("installing static MACs on the PEs, then ping h1a -> h2 again: known unicast, no more flooding")
        s.install_macs()
        out = s.ping("h1a", "h2", count=5)
        ok = ok and " 0% packet loss" in out
        print(s.ctl("pe1", "show", "macs").stdout.rstrip())
        log("done: " + ("one segment across three data centres" if ok else "some pings failed"))
        if keep:
            log("--keep: the namespaces stay up: " + " ".join(n.name for n in s.ns.values()))
            log(f"agents' sockets are in {s.dir}; e.g. mplsgatectl --socket {s.path('pe1.sock')} show macs")
            log("press Ctrl-C to tear everything down")
            signal.pause()
        return 0 if ok else 1
    finally:
        s.teardown()


if __name__ == "__main__":
    sys.exit(demo(keep="--keep" in sys.argv[1:]))
