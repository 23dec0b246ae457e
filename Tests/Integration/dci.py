#!/usr/bin/python3
"""The data-centre interconnect: two Linux VXLAN data centres joined by an MPLS core of three MPLSGate agents.

    h1 ── vtep1 (Linux vxlan, VNI 5000) ── PE1 ══ w1 ══ P ══ w2 ══ PE2 ── vtep2 (Linux vxlan, VNI 5000) ── h2
          10.0.0.1/24   192.0.2.11 → 192.0.2.1 (PE1's VTEP)      198.51.100.1 (PE2's VTEP) ← 198.51.100.11   10.0.0.2/24

w1 and w2 are "wires": a Linux bridge in the middle of each core link, where captures are taken (frames an XDP program
redirects to AF_XDP, and frames AF_XDP sends, bypass tcpdump on MPLSGate's own interfaces).

Nine network namespaces with unique names; every MPLSGate agent is started with an empty FIB and programmed only
through its control socket with mplsgatectl. One Ethernet pseudowire per direction (RFC 4448, control word by
default), transport labels swapped at P:

    eastbound  h1→h2: PE1 VNI 5000 pushes [16002, 1001]; P swaps 16002→17002; PE2 pops 17002, 1001 → VXLAN to vtep2
    westbound  h2→h1: PE2 VNI 5000 pushes [16001, 2001]; P swaps 16001→17001; PE1 pops 17001, 2001 → VXLAN to vtep1

Used by scripts/demo.sh (the README's first command) and Tests/Integration/test_dci.py.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Netns, veth, Agent, binary, sh, teardown  # noqa: E402

MAC = {
    "h1": "02:10:00:00:00:01", "h2": "02:20:00:00:00:01",
    "vtep1-u": "02:11:00:00:00:01", "pe1-dc": "02:01:00:00:00:01", "pe1-core": "02:01:00:00:00:02",
    "p-west": "02:03:00:00:00:01", "p-east": "02:03:00:00:00:02",
    "pe2-core": "02:02:00:00:00:02", "pe2-dc": "02:02:00:00:00:01", "vtep2-u": "02:22:00:00:00:01",
}
PE1_VTEP, VTEP1 = "192.0.2.1", "192.0.2.11"
PE2_VTEP, VTEP2 = "198.51.100.1", "198.51.100.11"
VNI = 5000
LABELS = {"east_transport": 16002, "east_transport_p": 17002, "east_service": 1001,
          "west_transport": 16001, "west_transport_p": 17001, "west_service": 2001}
CORE_MTU = 1500
HOST_MTU = 1450


def log(msg):
    print(f"dci: {msg}", flush=True)


class DCI:
    def __init__(self, control_word=True, workdir=None):
        self.cw = control_word
        self.dir = workdir or tempfile.mkdtemp(prefix="mplsgate-dci-")
        self.ns = {}
        self.agents = {}
        self.ctl_log = []

    # -- topology ---------------------------------------------------------------------------------------------
    def build(self):
        for n in ("h1", "vtep1", "pe1", "w1", "p", "w2", "pe2", "vtep2", "h2"):
            self.ns[n] = Netns(n)
        ns = self.ns
        # hosts to their VTEP bridges
        veth(ns["h1"], "h1", ns["vtep1"], "vtep1-h", mac_a=MAC["h1"], mtu=HOST_MTU)
        veth(ns["h2"], "h2", ns["vtep2"], "vtep2-h", mac_a=MAC["h2"], mtu=HOST_MTU)
        # VTEP underlays to the PEs' dc ports (the kernel's VXLAN stack sends on these: tx checksum offload off)
        veth(ns["vtep1"], "vtep1-u", ns["pe1"], "pe1-dc", mac_a=MAC["vtep1-u"], mac_b=MAC["pe1-dc"])
        veth(ns["vtep2"], "vtep2-u", ns["pe2"], "pe2-dc", mac_a=MAC["vtep2-u"], mac_b=MAC["pe2-dc"])
        # the core, each link through a bridge in a "wire" namespace where it can be captured
        veth(ns["pe1"], "pe1-core", ns["w1"], "w1-pe1", mac_a=MAC["pe1-core"], mtu=CORE_MTU)
        veth(ns["w1"], "w1-p", ns["p"], "p-west", mac_b=MAC["p-west"], mtu=CORE_MTU)
        veth(ns["p"], "p-east", ns["w2"], "w2-p", mac_a=MAC["p-east"], mtu=CORE_MTU)
        veth(ns["w2"], "w2-pe2", ns["pe2"], "pe2-core", mac_b=MAC["pe2-core"], mtu=CORE_MTU)
        for w, ports in (("w1", ("w1-pe1", "w1-p")), ("w2", ("w2-p", "w2-pe2"))):
            ns[w].run("ip", "link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0")
            for port in ports:
                ns[w].run("ip", "link", "set", port, "master", "br0")
            ns[w].run("ip", "link", "set", "br0", "up")
        ns["h1"].run("ip", "addr", "add", "10.0.0.1/24", "dev", "h1")
        ns["h2"].run("ip", "addr", "add", "10.0.0.2/24", "dev", "h2")
        for side, vtep, local, remote in (("1", ns["vtep1"], VTEP1, PE1_VTEP), ("2", ns["vtep2"], VTEP2, PE2_VTEP)):
            under = f"vtep{side}-u"
            vtep.run("ip", "addr", "add", f"{local}/24", "dev", under)
            vtep.run("ip", "link", "add", "br0", "type", "bridge")
            vtep.run("ip", "link", "add", "vx0", "type", "vxlan", "id", str(VNI), "dstport", "4789", "local", local,
                     "remote", remote, "dev", under)
            vtep.run("ip", "link", "set", "vx0", "mtu", str(HOST_MTU))
            vtep.run("ip", "link", "set", "vx0", "master", "br0")
            vtep.run("ip", "link", "set", f"vtep{side}-h", "master", "br0")
            vtep.run("ip", "link", "set", "br0", "mtu", str(HOST_MTU))
            for dev in ("vx0", "br0"):
                vtep.run("ip", "link", "set", dev, "up")
        # The PEs' VTEP addresses live on their hosts too, so ARP for them is answered by the host stack.
        ns["pe1"].run("ip", "addr", "add", f"{PE1_VTEP}/24", "dev", "pe1-dc")
        ns["pe2"].run("ip", "addr", "add", f"{PE2_VTEP}/24", "dev", "pe2-dc")
        return self

    def configs(self):
        def port(name, iface, role, **kw):
            d = {"name": name, "interface": iface, "mac": MAC[iface], "role": role}
            d.update(kw)
            return d
        return {
            "pe1": {"version": 1, "ports": [port("dc", "pe1-dc", "dc", vteps=[PE1_VTEP]), port("core", "pe1-core", "core")]},
            "p": {"version": 1, "ports": [port("west", "p-west", "core"), port("east", "p-east", "core")]},
            "pe2": {"version": 1, "ports": [port("dc", "pe2-dc", "dc", vteps=[PE2_VTEP]), port("core", "pe2-core", "core")]},
        }

    def fibs(self, west_service=None):
        """The three FIBs. `west_service` overrides the westbound service label (make-before-break test)."""
        L = dict(LABELS)
        if west_service:
            L["west_service"] = west_service
        cw = self.cw
        pe1 = {"version": 1,
               "nextHops": [{"name": "to-p", "port": "core", "mac": MAC["p-west"]},
                            {"name": "to-vtep1", "port": "dc", "mac": MAC["vtep1-u"]}],
               "vni": [{"vni": VNI, "push": [L["east_transport"], L["east_service"]], "controlWord": cw, "via": "to-p",
                        "allowedVteps": [VTEP1]}],
               "ilm": [{"label": L["west_transport_p"], "op": "pop", "ttlMode": "pipe"},
                       {"label": L["west_service"], "op": "popToVXLAN", "vni": VNI, "controlWord": cw,
                        "localVtep": PE1_VTEP, "remoteVtep": VTEP1, "via": "to-vtep1"}]}
        p = {"version": 1,
             "nextHops": [{"name": "to-pe1", "port": "west", "mac": MAC["pe1-core"]},
                          {"name": "to-pe2", "port": "east", "mac": MAC["pe2-core"]}],
             "ilm": [{"label": L["east_transport"], "op": "swap", "out": [L["east_transport_p"]], "via": "to-pe2"},
                     {"label": L["west_transport"], "op": "swap", "out": [L["west_transport_p"]], "via": "to-pe1"}]}
        pe2 = {"version": 1,
               "nextHops": [{"name": "to-p", "port": "core", "mac": MAC["p-east"]},
                            {"name": "to-vtep2", "port": "dc", "mac": MAC["vtep2-u"]}],
               "vni": [{"vni": VNI, "push": [L["west_transport"], L["west_service"]], "controlWord": cw, "via": "to-p",
                        "allowedVteps": [VTEP2]}],
               "ilm": [{"label": L["east_transport_p"], "op": "pop", "ttlMode": "pipe"},
                       {"label": L["east_service"], "op": "popToVXLAN", "vni": VNI, "controlWord": cw,
                        "localVtep": PE2_VTEP, "remoteVtep": VTEP2, "via": "to-vtep2"}]}
        return {"pe1": pe1, "p": p, "pe2": pe2}

    def path(self, name):
        return os.path.join(self.dir, name)

    # -- agents -----------------------------------------------------------------------------------------------
    def start_agent(self, name, timeout=20):
        cfg = self.path(f"{name}-config.json")
        json.dump(self.configs()[name], open(cfg, "w"), indent=1)
        a = Agent(self.ns[name], cfg, None, instance=name, state_dir=self.dir,
                  extra=("--cpus", "none", "--wait", "poll", "--frames", "2048", "--ring-size", "512"))
        if not a.started(timeout=timeout):
            raise RuntimeError(f"agent {name} did not start: {a.log[-3:]}")
        self.agents[name] = a
        return a

    def start_agents(self):
        for n in ("pe1", "p", "pe2"):
            self.start_agent(n)

    def ctl(self, name, *args, check=True):
        r = subprocess.run([binary("mplsgatectl"), "--socket", self.path(f"{name}.sock"), *args], capture_output=True,
                           text=True, timeout=60)
        self.ctl_log.append((name, args, r.returncode))
        if check and r.returncode != 0:
            raise RuntimeError(f"mplsgatectl {' '.join(args)} on {name}: {r.stderr.strip()}")
        return r

    def program(self, west_service=None, only=None):
        for name, fib in self.fibs(west_service).items():
            if only and name not in only:
                continue
            f = self.path(f"{name}-fib.json")
            json.dump(fib, open(f, "w"), indent=1)
            self.ctl(name, "resync", f)

    # -- traffic and captures ----------------------------------------------------------------------------------
    def ping(self, count=5, interval="0.2", extra=()):
        r = self.ns["h1"].run("ping", "-c", str(count), "-i", interval, "-W", "1", *extra, "10.0.0.2", capture=True,
                              check=False, timeout=count * 2 + 30)
        return r.stdout

    def capture(self, ns, iface, path, count=None, seconds=None, bpf=None):
        args = ["tcpdump", "-i", iface, "-U", "-w", path, "-s", "0"]
        if count:
            args += ["-c", str(count)]
        if bpf:
            args += [bpf]
        return self.ns[ns].popen(*args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def decode_args(self):
        kind = "pwethcw" if self.cw else "pwethnocw"
        return ["-d", f"mpls.label=={LABELS['east_service']},{kind}", "-d", f"mpls.label=={LABELS['west_service']},{kind}",
                "-d", "mpls.label==2002," + kind, "-d", "tcp.port==5201,data"]

    def teardown(self):
        teardown(self.agents.values(), self.ns.values(), self.dir)


def demo(keep=False, control_word=True):
    d = DCI(control_word=control_word)
    try:
        log("building 9 namespaces: h1 - vtep1 (Linux VXLAN) - PE1 - w1 - P - w2 - PE2 - vtep2 (Linux VXLAN) - h2")
        d.build()
        log("starting three MPLSGate agents (poll mode, empty FIBs)")
        d.start_agents()
        log(f"programming them over their control sockets with mplsgatectl (control word {'on' if control_word else 'off'})")
        d.program()
        for n in ("pe1", "p", "pe2"):
            print(f"--- {n}: mplsgatectl show fib")
            print(d.ctl(n, "show", "fib").stdout.rstrip())
        core = d.path("core.pcap")
        cap = d.capture("w1", "w1-pe1", core, count=40)
        time.sleep(0.5)
        log("ping h1 -> h2 (10.0.0.2) across VXLAN -> MPLS -> VXLAN")
        out = d.ping(count=5)
        print(out.rstrip())
        log("iperf3 h1 -> h2, 3 seconds")
        srv = d.ns["h2"].popen("iperf3", "-s", "-1", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        r = d.ns["h1"].run("iperf3", "-c", "10.0.0.2", "-t", "3", "-f", "m", capture=True, check=False, timeout=60)
        print("\n".join(l for l in r.stdout.splitlines() if "sender" in l or "receiver" in l))
        srv.wait(timeout=10)
        cap.wait(timeout=10) if cap.poll() is not None else (cap.send_signal(signal.SIGINT), cap.wait(timeout=10))
        for n in ("pe1", "p", "pe2"):
            print(f"--- {n}: mplsgatectl show counters ilm / vni")
            print(d.ctl(n, "show", "counters", "ilm").stdout.rstrip())
            if n != "p":
                print(d.ctl(n, "show", "counters", "vni").stdout.rstrip())
        print("--- one frame on the core link PE1 -> P (captured in w1), decoded by tshark")
        r = subprocess.run(["tshark", "-r", core, "-c", "40", "-Y", "icmp || tcp", *d.decode_args(), "-O", "eth,mpls,pwethcw,ip",
                            "-V"], capture_output=True, text=True)
        frames = r.stdout.split("\n\n")
        print(next((f for f in frames if "MultiProtocol Label Switching" in f), r.stdout[:3000]).rstrip()[:4000])
        ok = " 0% packet loss" in out
        log("done: " + ("h1 and h2 share one L2 segment across the MPLS core" if ok else "ping failed"))
        if keep:
            log("--keep: the namespaces stay up: " + " ".join(n.name for n in d.ns.values()))
            log(f"agents' sockets are in {d.dir}; e.g. mplsgatectl --socket {d.path('pe1.sock')} show counters")
            log("press Ctrl-C to tear everything down")
            signal.pause()
        return 0 if ok else 1
    finally:
        d.teardown()


if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(demo(keep="--keep" in args, control_word="--no-cw" not in args))
