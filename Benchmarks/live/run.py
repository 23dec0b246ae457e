#!/usr/bin/python3
"""Live forwarding on veth: MPLSGate's two tiers against a minimal C AF_XDP forwarder and a bare XDP_REDIRECT,
alternated on the same namespaces.

    Benchmarks/live/run.py [--ops swap,php,ecmp-swap,push,...] [--sizes 64,1500] [--rounds 5] [--seconds 2]

Devices under test, per operation: MPLSGate's AF_XDP tier (`--fast-path off`) and the C forwarder always; Open
vSwitch 3.1's userspace datapath with afxdp ports (a private instance, PMD on the DUT's CPU, one OpenFlow rule) for
swap, php and ecmp-swap when openvswitch-switch is installed (scripts/setup.sh installs it); for the
operations the fast tier does (swap, php, ecmp-swap) also MPLSGate's fast tier (the default, `--fast-path xdp`: the
sink's XDP program makes d1 take redirected frames) and a bare XDP_REDIRECT program from d0 to d1 (livegen
redirect: the ceiling). Those three run with d0's receive NAPI threaded and pinned to the DUT's CPU (the agent's
worker polling, not spinning), so each DUT's whole work (the XDP program, the AF_XDP copy or the fast tier's
rewrite and redirect, the worker) is on CPU 1: frames per CPU-second there compare them.

Topology (namespaces created here and always deleted):  gen:g0 <-> dut:d0 [DUT] dut:d1 <-> sink:s1

- The generator (livegen.c) transmits one frame over and over out of g0 with BPF_PROG_TEST_RUN live frames, from
  CPU 0, far faster than either DUT can take: both are measured saturated.
- The device under test runs on CPU 1: `mplsgate run --cpus 1 --wait busy` with a one-entry FIB for the
  operation, or xdpfwd.c (the same shared-UMEM, copy-mode, busy-polling AF_XDP structure, with the frame rewrite
  MPLSGate makes for that input reduced to "strip N bytes, prepend these": no parsing, lookups or counters).
- The sink s1 drops every frame in XDP; its veth counter (rx_queue_0_xdp_packets) is the forwarded count.
- Per run: Mpps at the sink, and ns per forwarded frame on the DUT's core (CPU 1 busy time from /proc/stat over
  the frames forwarded; that core also runs the kernel's copy-mode transmit, which is most of the cost).
Each operation and size runs `rounds` times per DUT, alternating which DUT goes first.

With --limits-named (scripts/test.sh runs it under `scripts/restricted.sh --limits`: memlock 8 MiB, no
CAP_IPC_LOCK), a DUT may instead refuse to start with a message naming the memlock limit; one that starts must
forward. Never "forwarded nothing".
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# Always the release build (harness.binary would take a newer debug build).
os.environ.setdefault("MPLSGATE_BIN_DIR", os.path.join(HERE, "..", "..", ".build", "release"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "Tests", "Integration"))
import harness  # noqa: E402
from harness import Netns, veth, binary, sh  # noqa: E402
from scapy.all import Ether, IP, UDP, Raw, wrpcap, rdpcap  # noqa: E402
from scapy.contrib.mpls import MPLS  # noqa: E402
from scapy.layers.vxlan import VXLAN  # noqa: E402

IN_MAC, OUT_MAC, NH_MAC, GEN_MAC = "02:00:00:00:01:01", "02:00:00:00:01:02", "02:00:00:00:02:02", "02:00:00:00:02:01"
MTU = 1600
GEN_CPU, DUT_CPU = 0, 1


def pad(p, size):
    return p / Raw(b"\x00" * (size - len(p))) if len(p) < size else p


def operations(size):
    """name -> (input port role and extras, output port role and extras, FIB document, input frame)."""
    nh = {"name": "nh", "port": "out", "mac": NH_MAC, "mtu": MTU}
    inner = lambda: Ether(src="02:00:00:00:0a:01", dst="02:00:00:00:0a:02") / IP(src="10.0.0.1", dst="10.0.0.2") / UDP()
    return {
        "swap": ({"role": "core"}, {"role": "core"},
                 {"nextHops": [nh], "ilm": [{"label": 100, "op": "swap", "out": [200], "via": "nh"}]},
                 pad(Ether(src=GEN_MAC, dst=IN_MAC) / MPLS(label=100, s=1, ttl=64) / IP(dst="10.0.0.2") / UDP(), size)),
        "push": ({"role": "vrf", "vrf": "blue"}, {"role": "core"},
                 {"nextHops": [nh], "ftn": [{"vrf": "blue", "prefix": "203.0.113.0/24", "push": [16001, 24001],
                                             "via": "nh"}]},
                 pad(Ether(src=GEN_MAC, dst=IN_MAC) / IP(src="198.51.100.7", dst="203.0.113.5", ttl=64) / UDP(), size)),
        "php": ({"role": "core"}, {"role": "core"},
                {"nextHops": [nh], "ilm": [{"label": 100, "op": "swap", "out": [3], "payload": "ipv4", "via": "nh"}]},
                pad(Ether(src=GEN_MAC, dst=IN_MAC) / MPLS(label=100, s=1, ttl=64) / IP(dst="10.0.0.2", ttl=64) / UDP(),
                    size)),
        "ecmp-swap": ({"role": "core"}, {"role": "core"},
                      {"nextHops": [nh, dict(nh, name="nh2")], "ecmpGroups": [{"name": "g", "members": ["nh", "nh2"]}],
                       "ilm": [{"label": 100, "op": "swap", "out": [200], "via": "g"}]},
                      pad(Ether(src=GEN_MAC, dst=IN_MAC) / MPLS(label=100, s=1, ttl=64) / IP(dst="10.0.0.2") / UDP(), size)),
        "pop": ({"role": "core"}, {"role": "vrf"},
                {"nextHops": [nh], "ilm": [{"label": 105, "op": "popToIP", "payload": "ipv4", "via": "nh"}]},
                pad(Ether(src=GEN_MAC, dst=IN_MAC) / MPLS(label=105, s=1, ttl=64) / IP(dst="10.0.0.2", ttl=64) / UDP(),
                    size)),
        "vxlan-to-mpls": ({"role": "dc", "vteps": ["192.0.2.1"]}, {"role": "core"},
                          {"nextHops": [nh], "vni": [{"vni": 5000, "push": [16001, 1000], "via": "nh",
                                                      "allowedVteps": ["192.0.2.2"]}]},
                          Ether(src=GEN_MAC, dst=IN_MAC) / IP(src="192.0.2.2", dst="192.0.2.1", flags="DF")
                          / UDP(sport=49152, dport=4789, chksum=0) / VXLAN(vni=5000)
                          / pad(Ether(src="02:00:00:00:0a:01", dst="02:00:00:00:0a:02", type=0x0800), size - 50)),
        "mpls-to-vxlan": ({"role": "core"}, {"role": "dc", "vteps": ["192.0.2.1"]},
                          {"nextHops": [nh], "ilm": [{"label": 1000, "op": "popToVXLAN", "vni": 5000,
                                                      "localVtep": "192.0.2.1", "remoteVtep": "192.0.2.2",
                                                      "via": "nh"}]},
                          Ether(src=GEN_MAC, dst=IN_MAC) / MPLS(label=1000, s=1, ttl=64)
                          / pad(inner(), size - 18)),
    }


def write_json(path, doc):
    import json
    with open(path, "w") as f:
        json.dump(doc, f)


def rewrite_of(work, cfg, fib, frame):
    """What MPLSGate does to this frame, as "strip N bytes, prepend P" (from `mplsgate replay`)."""
    src, out = os.path.join(work, "in.pcap"), os.path.join(work, "out.pcap")
    wrpcap(src, [frame])
    sh(binary("mplsgate"), "replay", "--config", cfg, "--fib", fib, "--in", src, "--ingress", "in", "--out", out,
       "--quiet", capture=True)
    got = rdpcap(out)
    if len(got) != 1:
        raise RuntimeError("mplsgate replay did not forward the benchmark frame")
    a, b = bytes(frame), bytes(got[0])
    common = 0
    while common < min(len(a), len(b)) and a[-1 - common] == b[-1 - common]:
        common += 1
    return len(a) - common, b[:len(b) - common].hex(), b


def cpu_busy(cpu):
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{cpu} "):
                v = [int(x) for x in line.split()[1:]]
                return sum(v) - v[3] - v[4], sum(v)  # busy, total (jiffies)
    raise RuntimeError("no such CPU")


def sink_count(sink):
    out = sink.run("ethtool", "-S", "s1", capture=True).stdout
    return int(re.search(r"rx_queue_0_xdp_packets: (\d+)", out).group(1))


def measure(gen, sink, frame_hex, seconds):
    before, (b0, t0) = sink_count(sink), cpu_busy(DUT_CPU)
    r = gen.run("taskset", "-c", str(GEN_CPU), TOOLS["livegen"], "send", "g0", frame_hex, str(seconds),
                capture=True, timeout=seconds + 30)
    after, (b1, t1) = sink_count(sink), cpu_busy(DUT_CPU)
    sent = int(r.stdout.split()[1])
    elapsed = float(r.stdout.split()[4])
    forwarded = after - before
    if forwarded == 0:
        raise RuntimeError("the device under test forwarded nothing (offered %d frames)" % sent)
    busy_ns = (b1 - b0) * 1e9 / os.sysconf("SC_CLK_TCK")
    return {"mpps": forwarded / elapsed / 1e6, "ns": busy_ns / forwarded if forwarded else float("inf"),
            "offered_mpps": sent / elapsed / 1e6, "busy": (b1 - b0) / max(1, t1 - t0)}


def retrying(start, what):
    """The kernel releases an AF_XDP socket's (interface, queue) binding shortly after its process exits, so a bind
    right after the other DUT stopped can fail with EBUSY for a few hundred ms: retry for up to 5 s."""
    deadline = time.time() + 5
    while True:
        try:
            return start()
        except RuntimeError as e:
            if "busy" not in str(e).lower() or time.time() > deadline:
                raise RuntimeError(f"{what} did not start: {e}")
            time.sleep(0.2)


FAST_OPS = ("swap", "php", "ecmp-swap")
DUT_NAMES = {"mg": "MPLSGate", "c": "C xdpfwd", "ovs": "Open vSwitch", "fast": "MPLSGate fast tier",
             "redirect": "bare XDP_REDIRECT", "redirect-rw": "XDP_REDIRECT writing the frame",
             "mg-pinned": "MPLSGate AF_XDP tier (poll)"}


# No state file: its writer (a snapshot of a large FIB takes seconds) would share the DUT's CPU with the measurement.
AGENT_EXTRA = ["--no-state"]


def start_agent(dut, cfg, fib, fast, wait="busy"):
    extra = ("--cpus", str(DUT_CPU), "--wait", wait, "--force") + (() if fast else ("--fast-path", "off")) + tuple(AGENT_EXTRA)
    agent = harness.Agent(dut, cfg, fib, extra=extra)
    if not agent.started():
        raise RuntimeError("\n".join(agent.log[-10:]))
    return agent


def run_mplsgate(dut, cfg, fib, go, fast=False, wait="busy"):
    agent = retrying(lambda: start_agent(dut, cfg, fib, fast, wait), "mplsgate")
    result = None
    try:
        result = go()
        return result
    finally:
        code, counters, log = agent.stop()
        if code != 0:
            raise RuntimeError("mplsgate exited %d: %s" % (code, "\n".join(log[-10:])))
        fast_count = sum(p["xdp"].get("fastForwarded", 0) for p in (counters or {}).get("ports", {}).values())
        if fast and result is not None and fast_count == 0:
            raise RuntimeError("the fast tier forwarded nothing (does d1 take redirected frames?): " + " | ".join(log[-3:]))
        if not fast and fast_count:
            raise RuntimeError("--fast-path off, yet the fast tier forwarded %d frames" % fast_count)


def run_redirect(dut, go, touch=False):
    dut.run(TOOLS["livegen"], "redirect-rw" if touch else "redirect", "d0", "d1")
    try:
        return go()
    finally:
        dut.run("ip", "link", "set", "d0", "xdp", "off")


# Open vSwitch's userspace datapath with AF_XDP ports (Debian's openvswitch-switch, a private instance per run:
# its own database, sockets and logs in a scratch directory; the PMD thread pinned to the DUT's CPU), one OpenFlow
# rule doing the operation's rewrite.
OVS_FLOWS = {
    "swap": ["in_port=d0,mpls,mpls_label=100,actions=set_mpls_label:200,dec_mpls_ttl,"
             f"mod_dl_src:{OUT_MAC},mod_dl_dst:{NH_MAC},output:d1"],
    "php": ["in_port=d0,mpls,mpls_label=100,actions=pop_mpls:0x0800,dec_ttl,"
            f"mod_dl_src:{OUT_MAC},mod_dl_dst:{NH_MAC},output:d1"],
    "ecmp-swap": ["in_port=d0,mpls,mpls_label=100,actions=set_mpls_label:200,dec_mpls_ttl,"
                  f"mod_dl_src:{OUT_MAC},group:1"],
}
OVS_GROUPS = {
    "ecmp-swap": [f"group_id=1,type=select,bucket=mod_dl_dst:{NH_MAC},output:d1,bucket=mod_dl_dst:{NH_MAC},output:d1"],
}


def ovs_available():
    return all(subprocess.run(["sh", "-c", f"command -v {t}"], capture_output=True).returncode == 0
               for t in ("ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-ofctl", "ovs-appctl"))


def run_ovs(dut, work, name, go):
    d = tempfile.mkdtemp(prefix="ovs-", dir=work)
    env = ["env", f"OVS_RUNDIR={d}", f"OVS_LOGDIR={d}", f"OVS_DBDIR={d}"]
    db = f"unix:{d}/db.sock"
    sh("ovsdb-tool", "create", f"{d}/conf.db", "/usr/share/openvswitch/vswitch.ovsschema", capture=True)
    sh(*env, "ovsdb-server", f"{d}/conf.db", f"--remote=punix:{d}/db.sock", f"--pidfile={d}/ovsdb.pid", "--detach",
       f"--log-file={d}/ovsdb.log", f"--unixctl={d}/ovsdb.ctl", capture=True)
    vsctl = [*env, "ovs-vsctl", f"--db={db}"]
    try:
        sh(*vsctl, "--no-wait", "init", capture=True)
        sh(*vsctl, "--no-wait", "set", "Open_vSwitch", ".", f"other_config:pmd-cpu-mask={1 << DUT_CPU:#x}", capture=True)
        dut.run(*env, "ovs-vswitchd", db, f"--pidfile={d}/vswitchd.pid", "--detach", f"--log-file={d}/vswitchd.log",
                f"--unixctl={d}/vswitchd.ctl", capture=True)
        sh(*vsctl, "add-br", "br0", "--", "set", "bridge", "br0", "datapath_type=netdev", capture=True)
        for port in ("d0", "d1"):
            sh(*vsctl, "add-port", "br0", port, "--", "set", "interface", port, "type=afxdp", "options:xdp-mode=native",
               capture=True)
        for port in ("d0", "d1"):
            err = sh(*vsctl, "get", "interface", port, "error", capture=True, check=False).stdout.strip()
            if err not in ("", "[]"):
                raise RuntimeError(f"Open vSwitch could not open {port}: {err}")
        ofctl = [*env, "ovs-ofctl", "-O", "OpenFlow13"]
        sh(*ofctl, "del-flows", "br0", capture=True)
        for g in OVS_GROUPS.get(name, []):
            sh(*ofctl, "add-group", "br0", g, capture=True)
        for f in OVS_FLOWS[name]:
            sh(*ofctl, "add-flow", "br0", f, capture=True)
        time.sleep(0.5)
        return go()
    finally:
        # `exit` answers before vswitchd has torn down (its PMD may still spin on the DUT CPU): wait for the
        # processes themselves, then kill what is left.
        pids = []
        for name in ("vswitchd", "ovsdb"):
            try:
                pids.append(int(open(f"{d}/{name}.pid").read().strip()))
            except (OSError, ValueError):
                pass
        sh(*env, "ovs-appctl", "-t", f"{d}/vswitchd.ctl", "exit", "--cleanup", check=False, capture=True)
        sh(*env, "ovs-appctl", "-t", f"{d}/ovsdb.ctl", "exit", check=False, capture=True)
        deadline = time.time() + 5
        while any(os.path.exists(f"/proc/{p}") for p in pids) and time.time() < deadline:
            time.sleep(0.05)
        for p in pids:
            try:
                os.kill(p, 9)
            except OSError:
                pass
        for port in ("d0", "d1"):
            dut.run("ip", "link", "set", port, "xdp", "off", check=False, capture=True)


def napi(dut, pinned):
    """pinned: d0's receive NAPI as a thread on the DUT's CPU (its XDP program, the AF_XDP copy or the fast tier's
    rewrite and redirect run there, beside the worker), so all of a DUT's work is on one CPU and measured there.
    Otherwise the softirq runs on the CPU that queued the frames (the generator's)."""
    dut.run("sh", "-c", f"echo {1 if pinned else 0} > /sys/class/net/d0/threaded")
    if not pinned:
        return 0
    out = sh("ps", "-eo", "pid,comm", capture=True).stdout
    pids = [line.split()[0] for line in out.splitlines() if "napi/d0-" in line]
    for pid in pids:
        sh("taskset", "-pc", str(DUT_CPU), pid, capture=True)
    if not pids:
        raise RuntimeError("d0 has no threaded NAPI to pin")
    return len(pids)


def start_c(dut, strip, prepend):
    p = dut.popen("taskset", "-c", str(DUT_CPU), TOOLS["xdpfwd"], "d0", "d1", str(strip), prepend,
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    log = []
    while not log or "ready" not in log[-1]:  # libbpf/libxdp print notes first
        line = p.stderr.readline()
        if not line:
            p.wait(timeout=5)
            raise RuntimeError("".join(log))
        log.append(line)
    return p


def run_c(dut, strip, prepend, go):
    p = retrying(lambda: start_c(dut, strip, prepend), "xdpfwd")
    try:
        return go()
    finally:
        p.terminate()
        p.communicate(timeout=10)


TOOLS = {}


def build_tools(work):
    TOOLS["livegen"] = os.path.join(work, "livegen")
    TOOLS["xdpfwd"] = os.path.join(work, "xdpfwd")
    sh("clang", "-O2", "-o", TOOLS["livegen"], os.path.join(HERE, "livegen.c"), "-lbpf")
    sh("clang", "-O2", "-o", TOOLS["xdpfwd"], os.path.join(HERE, "xdpfwd.c"), "-lxdp", "-lbpf")


def fmt(values):
    return "%.3f [%.3f–%.3f]" % (statistics.median(values), min(values), max(values)) if values else "-"


def med(values):
    return statistics.median(values) if values else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ops", default="swap,php,ecmp-swap,push,pop,vxlan-to-mpls,mpls-to-vxlan")
    ap.add_argument("--sizes", default="64,1500")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--no-fast", action="store_true", help="only the AF_XDP tier and the C forwarder")
    ap.add_argument("--no-ovs", action="store_true", help="leave Open vSwitch out")
    ap.add_argument("--duts", default="", help="only these DUTs (mg,c,ovs,fast,redirect,redirect-rw,mg-pinned); "
                                               "the lines print what ran")
    ap.add_argument("--ilm-entries", type=int, default=1,
                    help="ILM entries in the FIB of swap/php/ecmp-swap (the frame's label among them; e.g. 1000000)")
    ap.add_argument("--limits-named", action="store_true",
                    help="a DUT may refuse to start if its message names the memlock limit")
    args = ap.parse_args()
    if os.cpu_count() < 2:
        sys.exit("run.py: needs two CPUs (generator on CPU 0, device under test on CPU 1)")
    work = tempfile.mkdtemp(prefix="mg-live-")
    try:
        return run(args, work)
    finally:
        sh("rm", "-rf", work)


def run(args, work):
    build_tools(work)
    if args.ilm_entries > 1:
        AGENT_EXTRA.extend(["--fast-tier-entries", str(2 * args.ilm_entries + 16)])
    mhz = [float(l.split(":")[1]) for l in open("/proc/cpuinfo") if l.startswith("cpu MHz")]
    print(f"live benchmark: generator on CPU {GEN_CPU}, DUT on CPU {DUT_CPU} ({mhz[DUT_CPU]:.0f} MHz), "
          f"{args.rounds} rounds × {args.seconds} s per DUT, alternating")
    print("op, frame size: MPLSGate Mpps median [min–max] | C xdpfwd Mpps | ns/frame on the DUT core "
          "MPLSGate vs C | MPLSGate/C ns ratio")
    with Netns("lgen") as gen, Netns("ldut") as dut, Netns("lsink") as sink:
        veth(gen, "g0", dut, "d0", mac_a=GEN_MAC, mac_b=IN_MAC, mtu=MTU)
        veth(dut, "d1", sink, "s1", mac_a=OUT_MAC, mac_b=NH_MAC, mtu=MTU)
        sink.run(TOOLS["livegen"], "sink", "s1")
        # The generator's XDP_TX lands on d0, whose XDP program (either DUT's) takes it; g0 drops what comes back.
        gen.run(TOOLS["livegen"], "sink", "g0")
        for size in [int(s) for s in args.sizes.split(",")]:
            for name, (in_port, out_port, fib_doc, frame) in operations(size).items():
                if name not in args.ops.split(","):
                    continue
                cfg = os.path.join(work, f"{name}-config.json")
                fib = os.path.join(work, f"{name}-fib.json")
                write_json(cfg, {"version": 1, "ports": [
                    dict({"name": "in", "interface": "d0", "mac": IN_MAC, "mtu": MTU}, **in_port),
                    dict({"name": "out", "interface": "d1", "mac": OUT_MAC, "mtu": MTU}, **out_port)]})
                if args.ilm_entries > 1 and "ilm" in fib_doc:
                    # The lab entry among N-1 others (the frame's label stays the same one).
                    fib_doc = dict(fib_doc, ilm=fib_doc["ilm"] + [
                        {"label": 1000 + i, "op": "swap", "out": [17 + i % 1000], "via": "nh"}
                        for i in range(args.ilm_entries - 1)])
                write_json(fib, dict({"version": 1}, **fib_doc))
                strip, prepend, _ = rewrite_of(work, cfg, fib, frame)
                frame_hex = bytes(frame).hex()

                def go():
                    napi(dut, False)
                    return measure(gen, sink, frame_hex, args.seconds)

                def go_pinned():
                    napi(dut, True)
                    return measure(gen, sink, frame_hex, args.seconds)
                mg, c, fast, redirect, redirect_rw, mg_pinned, ovs = [], [], [], [], [], [], []
                results = {"mg": mg, "c": c, "fast": fast, "redirect": redirect, "redirect-rw": redirect_rw,
                           "mg-pinned": mg_pinned, "ovs": ovs}
                refused, skipped = {}, set()
                with_fast = name in FAST_OPS and not args.no_fast
                # Under --limits-named (memlock 8 MiB, no CAP_IPC_LOCK) Open vSwitch cannot register its UMEM; it is
                # an optional comparator, so it stays out there.
                with_ovs = not args.no_ovs and not args.limits_named and ovs_available()
                for r in range(args.rounds):
                    order = [("mg", lambda: run_mplsgate(dut, cfg, fib, go)), ("c", lambda: run_c(dut, strip, prepend, go))]
                    if with_ovs and name in OVS_FLOWS:
                        order.append(("ovs", lambda: run_ovs(dut, work, name, go)))
                    if with_fast:
                        # All on CPU 1 with d0's NAPI thread: the workers poll (a busy worker would take the CPU
                        # from the NAPI thread that feeds it).
                        order += [("fast", lambda: run_mplsgate(dut, cfg, fib, go_pinned, fast=True, wait="poll")),
                                  ("redirect", lambda: run_redirect(dut, go_pinned)),
                                  ("redirect-rw", lambda: run_redirect(dut, go_pinned, touch=True)),
                                  ("mg-pinned", lambda: run_mplsgate(dut, cfg, fib, go_pinned, wait="poll"))]
                    for who, fn in (order if r % 2 == 0 else order[::-1]):
                        if who in refused or who in skipped or (args.duts and who not in args.duts.split(",")):
                            continue
                        try:
                            results[who].append(fn())
                        except RuntimeError as e:
                            if who == "ovs":
                                # An optional comparator: say why it is missing, go on with the others.
                                print(f"{name}, {len(frame)} B: Open vSwitch skipped: {str(e).strip().splitlines()[-1]}",
                                      flush=True)
                                skipped.add("ovs")
                            elif args.limits_named and "memlock" in str(e).lower() and "did not start" in str(e):
                                refused[who] = str(e).strip().splitlines()[-1]
                            else:
                                raise
                if refused:
                    for who, message in refused.items():
                        print(f"{name}, {len(frame)} B: {DUT_NAMES[who]} refused to start, naming the limit: {message}",
                              flush=True)
                    for who, runs in results.items():
                        if runs:
                            print(f"{name}, {len(frame)} B: {DUT_NAMES[who]} {fmt([x['mpps'] for x in runs])} Mpps",
                                  flush=True)
                    continue
                ratio = [a["ns"] / b["ns"] for a, b in zip(mg, c)]
                line = (f"{name}, {len(frame)} B: MPLSGate {fmt([x['mpps'] for x in mg])} | C {fmt([x['mpps'] for x in c])}"
                        f" | ns/frame {med([x['ns'] for x in mg]):.0f} vs {med([x['ns'] for x in c]):.0f}"
                        f" | ratio {fmt(ratio)} (offered {med([x['offered_mpps'] for x in mg + c]):.1f} Mpps,"
                        f" DUT core busy {100 * med([x['busy'] for x in mg + c]):.0f} %)") if mg or c else f"{name}, {len(frame)} B:"
                if ovs:
                    line += (f" | Open vSwitch (afxdp ports, PMD on CPU {DUT_CPU}) {fmt([x['mpps'] for x in ovs])} Mpps, "
                             f"{med([x['ns'] for x in ovs]):.0f} ns/frame")
                print(line, flush=True)
                if with_fast:
                    def fps(runs):
                        return med([1e9 / x["ns"] / 1e6 for x in runs])
                    r_red = [b["ns"] / a["ns"] for a, b in zip(fast, redirect)]
                    r_af = [b["ns"] / a["ns"] for a, b in zip(fast, mg_pinned)]
                    print(f"{name}, {len(frame)} B, d0's NAPI on CPU 1, M frames per CPU-second there: fast tier "
                          f"{fps(fast):.2f} ({fmt([x['mpps'] for x in fast])} Mpps) | bare redirect {fps(redirect):.2f} "
                          f"({fmt([x['mpps'] for x in redirect])} Mpps) | redirect writing the frame's first line "
                          f"{fps(redirect_rw):.2f} | AF_XDP tier, poll {fps(mg_pinned):.2f} "
                          f"({fmt([x['mpps'] for x in mg_pinned])} Mpps) | fast/redirect {fmt(r_red)} | "
                          f"fast/AF_XDP {fmt(r_af)} | fast/redirect writing {fmt([b['ns'] / a['ns'] for a, b in zip(fast, redirect_rw)])}",
                          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
