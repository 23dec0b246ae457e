#!/usr/bin/python3
"""Root integration test of the live agent: sender -> mplsgate run (XDP + AF_XDP) -> receiver over veth pairs in
network namespaces this test creates and always deletes.

Run: MPLSGATE_BIN_DIR=.build/release /usr/bin/python3 Tests/Integration/test_agent.py   (scripts/test.sh does)

Every fixture of Tests/Fixtures/cases.json (built independently with scapy) is sent on its ingress port's peer:
forwarded frames must arrive on the right peer byte for byte, in order; frames the XDP program steers and the
pipeline drops must show up in the agent's drop counters under their reason; frames the program does not steer
must reach the host stack instead. Then: host-stack reachability while forwarding, sequence-numbered traffic with
no loss, zero-copy refusal on veth, stale-program replacement after kill -9, and clear start-up errors.
"""
import ipaddress
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import check, run_lab_suite, ROOT, veth, Agent, Sink, send, sh, binary  # noqa: E402

from scapy.all import Ether, Dot1Q, IP, IPv6, UDP, wrpcap, Raw  # noqa: E402

CONFIG = os.path.join(ROOT, "examples/config.json")
FIB = os.path.join(ROOT, "examples/fib.json")
# Cases that need next hops down (liveness) are the protection tests' (test_protection.py), not these.
CASES = [c for c in json.load(open(os.path.join(ROOT, "Tests/Fixtures/cases.json")))["cases"] if "down" not in c]
PORTS = json.load(open(CONFIG))["ports"]




def steered(port, frame):
    """What the XDP program must do with `frame` on `port` (written from the issue's rules, not from the C)."""
    role = port["role"]
    e = Ether(frame)
    etype = e.type
    payload = e.payload
    if etype == 0x8100 and isinstance(payload, Dot1Q):
        etype = payload.type
        payload = payload.payload
    if etype == 0x8847:
        return True       # every role: core forwards, dc/vrf count it as a guard drop
    if frame[0] & 1:
        return False
    if role == "core":
        # BFD control (UDP to 3784) addressed to one of the port's addresses; the rest is the host's.
        ours = [ipaddress.ip_address(a) for a in port.get("bfdAddresses", [])]
        if etype == 0x0800 and len(bytes(payload)) >= 20:
            ip = IP(bytes(payload))
            return (ip.proto == 17 and ip.frag == 0 and ip.flags.MF == 0 and ip.ihl >= 5
                    and len(bytes(payload)) >= ip.ihl * 4 + 8 and UDP(bytes(payload)[ip.ihl * 4:]).dport == 3784
                    and ipaddress.ip_address(ip.dst) in ours)
        if etype == 0x86DD and len(bytes(payload)) >= 48:
            ip6 = IPv6(bytes(payload))
            return ip6.nh == 17 and UDP(bytes(payload)[40:]).dport == 3784 and ipaddress.ip_address(ip6.dst) in ours
        return False
    if etype == 0x0800 and len(bytes(payload)) >= 20:
        ip = IP(bytes(payload))
        if role == "vrf":
            return ip.dst not in port.get("addresses", [])
        return (ip.proto == 17 and ip.frag == 0 and ip.ihl >= 5 and len(bytes(payload)) >= ip.ihl * 4 + 8
                and UDP(bytes(payload)[ip.ihl * 4:]).dport == port.get("vxlanPort", 4789)
                and ip.dst in port.get("vteps", []))
    if etype == 0x86DD and len(bytes(payload)) >= 40:
        ip6 = IPv6(bytes(payload))
        dst = ipaddress.IPv6Address(ip6.dst)
        if dst.is_multicast:
            return False
        if role == "vrf":
            return not dst.is_link_local and ip6.dst not in port.get("addresses", [])
        ours = any(ipaddress.ip_address(v) == dst for v in port.get("vteps", []) if ":" in v)
        return ip6.nh == 17 and len(bytes(payload)) >= 48 and UDP(bytes(payload)[40:]).dport == port.get("vxlanPort", 4789) and ours
    return False


def matches(got, exp):
    want = bytes.fromhex(exp["bytes"])
    if len(got) != len(want):
        return False
    g, w = bytearray(got), bytearray(want)
    for off, n in exp["mask"]:
        g[off:off + n] = b"\0" * n
        w[off:off + n] = b"\0" * n
    return g == w


def config_with(tmp, name, port, key, value):
    """examples/config.json with one field of one port changed, written to tmp/name."""
    cfg = json.load(open(CONFIG))
    cfg["ports"][port][key] = value
    path = os.path.join(tmp, name)
    json.dump(cfg, open(path, "w"))
    return path


def run_fixtures(a, p, tmp):
    print("fixtures through the live agent, byte for byte")
    agent = Agent(a, CONFIG, FIB)
    if not check(agent.started(), "agent starts: " + " | ".join(agent.log[-2:])):
        return
    check(all(f"({port['role']}, copy)" in agent.log[-1] for port in PORTS), "auto bind falls back to copy on veth")
    # The documented start line, byte for byte (docs/agent.md; scripts parse it): the logging library must not
    # change it.
    state = os.path.join(agent.state_dir, "agent")
    expected = (r"mplsgate: forwarding since \d+\.\d{3}: core0=mg-core0\(core, copy\) core1=mg-core1\(core, copy\) "
                r"dc0=mg-dc0\(dc, copy\) vrf0=mg-vrf0\(vrf, copy\); generation 1 from " + re.escape(FIB)
                + r", 34 entries, 1 worker\(s\), wait poll; control socket " + re.escape(state + ".sock")
                + r"; state file " + re.escape(state + ".state") + r"; pid " + str(agent.proc.pid) + "$")
    check(re.fullmatch(expected, agent.log[-1]) is not None, f"the start line is exactly the documented one: {agent.log[-1]}")
    sinks = {port["name"]: Sink(p, "p-" + port["name"], out=os.path.join(tmp, f"out-{port['name']}.pcap")) for port in PORTS}
    expected_out = {port["name"]: [] for port in PORTS}
    drops, redirect, passed, skipped = {}, {}, {}, 0
    for port in PORTS:
        frames = []
        for c in CASES:
            if c["port"] != port["name"]:
                continue
            frame = bytes.fromhex(c["input"])
            if len(frame) < 14 or len(frame) > 1518:
                skipped += 1      # AF_PACKET cannot send a frame without a whole Ethernet header, nor one
                continue          # above the veth MTU (XDP on veth caps it near 3.5 KB; the test uses 1500)
            frames.append(Ether(frame))
            if steered(port, frame):
                redirect[port["name"]] = redirect.get(port["name"], 0) + 1
                if c["verdict"] == "forward":
                    expected_out[c["expect"][0]["port"]].append(c)
                elif c["verdict"] == "flood":
                    # Multipoint VNI: one copy per place, each on its egress port, in place order.
                    for e in c["copies"]:
                        expected_out[e["port"]].append({"name": c["name"] + " (copy)", "expect": [e]})
                else:
                    drops[c["reason"]] = drops.get(c["reason"], 0) + 1
            else:
                passed[port["name"]] = passed.get(port["name"], 0) + 1
                if c["verdict"] != "drop":
                    check(False, f"{c['name']}: forward case not steered by the XDP program")
        if not frames:
            continue
        pcap = os.path.join(tmp, f"in-{port['name']}.pcap")
        wrpcap(pcap, frames)
        r = send(p, "p-" + port["name"], pcap, rate=2000)
        check(r["sent"] == len(frames), f"{port['name']}: sent {len(frames)} fixture frames")
    covered = [c["name"] for outs in expected_out.values() for c in outs]
    for op in ("swap", "push", "PHP", "pop to IPv4", "pop to IPv6", "FTN", "VXLAN -> MPLS", "MPLS -> VXLAN", "multipoint flood"):
        check(any(op in n for n in covered), f"forwarded fixtures include '{op}'")
    time.sleep(0.5)
    for s in sinks.values():
        s.result()
    rc, counters, log = agent.stop()
    check(rc == 0 and counters is not None, f"agent stops cleanly on SIGTERM (exit {rc})")
    check(any("XDP programs detached" in line for line in log), "agent reports its programs detached")
    for port in PORTS:
        r = a.run("ip", "link", "show", port["interface"], capture=True)
        check("xdp" not in r.stdout, f"{port['interface']}: no XDP program left attached")
    print(f"  ({skipped} fixture frames shorter than an Ethernet header or longer than the 1500-byte veth MTU "
          "were not sent)")
    from scapy.all import rdpcap
    for port in PORTS:
        got = [bytes(f) for f in rdpcap(os.path.join(tmp, f"out-{port['name']}.pcap"))]
        want = expected_out[port["name"]]
        ok = len(got) == len(want) and all(any(matches(g, e) for e in c["expect"]) for g, c in zip(got, want))
        if not ok:
            for i, c in enumerate(want):
                g = got[i].hex() if i < len(got) else None
                if g is None or not any(matches(got[i], e) for e in c["expect"]):
                    print(f"        first mismatch: {c['name']}\n        got  {g}\n        want {c['expect'][0]['bytes']}")
                    break
        check(ok, f"{port['name']}: {len(got)} frames out, {len(want)} expected, byte for byte in order")
    if counters is None:
        return
    for name, n in sorted(drops.items()):
        check(counters["drops"].get(name) == n, f"drop counter {name} = {counters['drops'].get(name)}, expected {n}")
    unexpected = {k: v for k, v in counters["drops"].items() if v and k not in drops}
    check(not unexpected, f"no other drop counters ({unexpected})")
    for port in PORTS:
        x = counters["ports"][port["name"]]["xdp"]
        check(x["redirected"] == redirect.get(port["name"], 0),
              f"{port['name']}: XDP steered {x['redirected']}, expected {redirect.get(port['name'], 0)}")
        check(x["passed"] >= passed.get(port["name"], 0),
              f"{port['name']}: XDP passed {x['passed']} to the host, at least {passed.get(port['name'], 0)} expected")
        check(x["noSocket"] == 0, f"{port['name']}: no frame found queue 0 without a socket")
    c0 = counters["ports"]["core0"]
    check(c0["rings"]["rxPackets"] == c0["rxPackets"], "ring RX count equals pipeline RX count on core0")
    ttl = counters["drops"].get("ttlExpired", 0)
    check(ttl > 0, f"TTL expiry dropped and counted ({ttl})")
    check(counters["drops"].get("mplsNotEnabled", 0) >= 1, "labeled frames on dc/vrf ports dropped by the guard")


def run_host_stack_and_sequence(a, p, tmp):
    print("host stack stays reachable while forwarding; sequence-numbered traffic")
    a.run("ip", "addr", "add", "198.51.100.1/24", "dev", "mg-vrf0")
    p.run("ip", "addr", "add", "198.51.100.2/24", "dev", "p-vrf0")
    a.run("ip", "addr", "add", "10.99.0.1/30", "dev", "mg-core0")
    p.run("ip", "addr", "add", "10.99.0.2/30", "dev", "p-core0")
    agent = Agent(a, CONFIG, FIB)
    if not check(agent.started(), "agent starts"):
        return
    swap = next(c for c in CASES if c["name"] == "swap ttl 2 -> 1, tc kept")
    frame = bytes.fromhex(swap["input"]) + b"\0" * 16          # room for the sequence trailer
    pcap = os.path.join(tmp, "swap.pcap")
    wrpcap(pcap, [Ether(frame)])
    sink = Sink(p, "p-core0", extra=("--stream-only",), idle=1)
    pinger = p.popen("ping", "-c", "20", "-i", "0.05", "-W", "1", "198.51.100.1", stdout=subprocess.PIPE)
    pinger2 = p.popen("ping", "-c", "20", "-i", "0.05", "-W", "1", "10.99.0.1", stdout=subprocess.PIPE)
    r = send(p, "p-core0", pcap, count=20000, rate=20000, stream=7)
    res = sink.result()
    agent.proc.send_signal(signal.SIGUSR1)
    live = json.loads(agent.proc.stdout.readline())
    check(live["entries"]["ilm 100"]["packets"] == 20000 and agent.proc.poll() is None,
          "SIGUSR1 prints the counters and the agent keeps running")
    out1, _ = pinger.communicate(timeout=30)
    out2, _ = pinger2.communicate(timeout=30)
    check(" 0% packet loss" in out1, "ping to the vrf port's host address while forwarding: 0% loss")
    check(" 0% packet loss" in out2, "ping to a core port's host address while forwarding: 0% loss")
    s = res["streams"].get("7", {})
    check(r["sent"] == 20000, f"generator sent 20000 at {r['pps']:.0f} pps")
    check(s.get("received") == 20000 and s.get("missing") == 0 and s.get("reordered") == 0 and s.get("duplicates") == 0,
          f"sink: {s}")
    check(res["byKey"] == {"label=200 mac=02:aa:00:00:00:01": 20000}, f"every frame swapped to label 200 via p1: {res['byKey']}")
    rc, counters, _ = agent.stop()
    check(counters and counters["entries"]["ilm 100"]["packets"] == 20000 + 0,
          f"ILM 100 counter = {counters and counters['entries']['ilm 100']['packets']}")
    for ns, dev, addr in ((a, "mg-vrf0", "198.51.100.1/24"), (p, "p-vrf0", "198.51.100.2/24"),
                          (a, "mg-core0", "10.99.0.1/30"), (p, "p-core0", "10.99.0.2/30")):
        ns.run("ip", "addr", "del", addr, "dev", dev)


def run_lifecycle(a, p, tmp):
    print("lifecycle and clear errors")
    # zero-copy on veth fails clearly
    agent = Agent(a, CONFIG, FIB, extra=("--bind", "zerocopy"))
    ok = agent.started(timeout=10)
    check(not ok and agent.proc.returncode == 1 and any("does not support zero-copy" in l for l in agent.log),
          f"--bind zerocopy on veth fails clearly: {agent.log[-1:]}")
    # kill -9 leaves the program attached; a restart replaces it and forwards
    agent = Agent(a, CONFIG, FIB)
    check(agent.started(), "agent starts")
    agent.proc.send_signal(signal.SIGKILL)
    agent.proc.wait(timeout=10)
    r = a.run("ip", "link", "show", "mg-core0", capture=True)
    check("xdp" in r.stdout, "after kill -9 the XDP program is still attached (stale)")
    agent = Agent(a, CONFIG, FIB)
    check(agent.started(), "restart after kill -9 succeeds")
    check(any("replaced the XDP program left attached" in l for l in agent.log), "the stale program is replaced, and said so")
    swap = next(c for c in CASES if c["name"] == "swap ttl 2 -> 1, tc kept")
    pcap = os.path.join(tmp, "one.pcap")
    wrpcap(pcap, [Ether(bytes.fromhex(swap["input"]))])
    sink = Sink(p, "p-core0")
    send(p, "p-core0", pcap, count=10)
    time.sleep(0.3)
    check(sink.result()["frames"] == 10, "the restarted agent forwards")
    # busy polling forwards too
    agent.stop()
    agent = Agent(a, CONFIG, FIB, extra=("--wait", "busy", "--cpus", "none"))
    check(agent.started(), "agent starts with --wait busy")
    sink = Sink(p, "p-core0")
    send(p, "p-core0", pcap, count=10)
    time.sleep(0.3)
    check(sink.result()["frames"] == 10, "--wait busy forwards")
    # a second agent on the same interfaces is refused, the first keeps running
    # (its own instance, so its own socket and state file: the state file's lock is test_control.py's)
    second = Agent(a, CONFIG, FIB, instance="second")
    check(not second.started(timeout=10) and any("already served by another mplsgate" in l for l in second.log),
          f"a second agent on the same interface is refused: {second.log[-1:]}")
    check(agent.proc.poll() is None, "the first agent is unaffected")
    agent.stop()
    # queue count mismatch
    agent = Agent(a, CONFIG, FIB, extra=("--workers", "2"))
    check(not agent.started(timeout=10) and any("queue count mismatch" in l for l in agent.log),
          f"--workers 2 on single-queue veths fails clearly: {agent.log[-1:]}")
    # missing interface
    agent = Agent(a, config_with(tmp, "missing.json", port=1, key="interface", value="mg-missing"), FIB)
    check(not agent.started(timeout=10) and any("mg-missing (port core1) does not exist" in l for l in agent.log),
          f"a missing interface is named: {agent.log[-1:]}")
    # a config MAC that is not the interface's is called out at start
    agent = Agent(a, config_with(tmp, "othermac.json", port=0, key="mac", value="02:00:00:00:00:77"), FIB)
    check(agent.started() and any("is not mg-core0's MAC" in l for l in agent.log), "a MAC mismatch is called out")
    agent.stop()
    # a foreign XDP program is not replaced without --force
    src = os.path.join(tmp, "pass.bpf.c")
    open(src, "w").write('#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\nSEC("xdp") int other_prog(struct xdp_md *c) { return XDP_PASS; }\nchar LICENSE[] SEC("license") = "GPL";\n')
    obj = os.path.join(tmp, "pass.bpf.o")
    sh("clang", "-O2", "-g", "-target", "bpf", f"-I/usr/include/{os.uname().machine}-linux-gnu", "-c", src, "-o", obj)
    a.run("ip", "link", "set", "dev", "mg-core1", "xdpdrv", "obj", obj, "sec", "xdp")
    agent = Agent(a, CONFIG, FIB)
    check(not agent.started(timeout=10) and any("already has XDP program 'other_prog'" in l for l in agent.log),
          f"a foreign XDP program is refused: {agent.log[-1:]}")
    r = a.run("ip", "link", "show", "mg-core0", capture=True)
    check("xdp" not in r.stdout, "a failed start leaves no program behind on the other ports")
    agent = Agent(a, CONFIG, FIB, extra=("--force",))
    check(agent.started(), "--force replaces it")
    agent.stop()
    a.run("ip", "link", "set", "dev", "mg-core1", "xdpdrv", "off")
    # without privileges: a clear error, nothing attached
    unpriv = a.popen("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
                     "--bounding-set=-all", binary("mplsgate"), "run", "--config", CONFIG, "--fib", FIB,
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, err = unpriv.communicate(timeout=20)
    check(unpriv.returncode == 1 and "permission denied" in err and "CAP_BPF" in err,
          f"an unprivileged start names the capabilities it needs: {err.strip().splitlines()[-1:]}")
    # memlock too low (root without CAP_IPC_LOCK and CAP_SYS_RESOURCE): a clear error naming the fix
    low = a.popen("capsh", "--drop=cap_ipc_lock,cap_sys_resource", "--", "-c",
                  f"prlimit --memlock=65536:65536 {binary('mplsgate')} run --config {CONFIG} --fib {FIB}",
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, err = low.communicate(timeout=20)
    check(low.returncode == 1 and "memlock" in err, f"a low memlock limit is named: {err.strip().splitlines()[-1:]}")
    r = a.run("ip", "link", "show", "mg-core0", capture=True)
    check("xdp" not in r.stdout, "failed starts leave no program attached")
    # systemd readiness: READY=1 on $NOTIFY_SOCKET once forwarding (Type=notify in deploy/mplsgate@.service)
    import socket as pysocket
    note = os.path.join(tmp, "notify.sock")
    rx = pysocket.socket(pysocket.AF_UNIX, pysocket.SOCK_DGRAM)
    rx.bind(note)
    rx.settimeout(20)
    os.environ["NOTIFY_SOCKET"] = note
    agent = Agent(a, CONFIG, FIB)
    del os.environ["NOTIFY_SOCKET"]
    started = agent.started()
    try:
        msg = rx.recv(4096).decode()
    except OSError:
        msg = ""
    check(started and msg.startswith("READY=1") and "generation 1" in msg, f"sd_notify after start: {msg!r}")
    agent.stop()
    rx.close()
    # bad config is an error before anything is touched
    agent = Agent(a, os.path.join(tmp, "nonexistent.json"), FIB)
    check(not agent.started(timeout=10) and agent.proc.returncode == 1, "a missing config file is exit 1")


def main():
    return run_lab_suite("test_agent.py", "integration", [run_fixtures, run_host_stack_and_sequence, run_lifecycle])


if __name__ == "__main__":
    sys.exit(main())
