"""Network-namespace harness for MPLSGate's root integration tests (and later the demo and benchmarks).

Every namespace gets a unique name (prefix + pid + random), is recorded, and is deleted on exit: normal return,
exception, SIGINT/SIGTERM or SIGHUP. Veth pairs are created directly inside their namespaces, so no interface ever
appears in the root namespace. Test traffic stays on these veths.
"""
import atexit
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_live = []


def sh(*args, check=True, capture=False, input=None, timeout=120):
    r = subprocess.run(list(args), check=False, text=True, input=input, timeout=timeout,
                       stdout=subprocess.PIPE if capture else None, stderr=subprocess.PIPE if capture else None)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({r.returncode}): {r.stderr if capture else ''}")
    return r


def _cleanup():
    while _live:
        ns = _live.pop()
        ns.delete()


def _on_signal(signum, frame):
    _cleanup()
    sys.exit(128 + signum)


atexit.register(_cleanup)
for _s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(_s, _on_signal)


class Netns:
    """A network namespace with loopback up and IPv6 off (no stray ND/MLD frames). No bpffs: nothing needs one, and
    scripts/test.sh runs the tests in a mount namespace without it (docs/agent.md, "Environment")."""

    def __init__(self, role):
        self.name = f"mgt-{role}-{os.getpid()}-{random.randrange(1 << 24):06x}"
        sh("ip", "netns", "add", self.name)
        _live.append(self)
        self.procs = []
        self.run("ip", "link", "set", "lo", "up")
        for key in ("net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.default.disable_ipv6"):
            self.run("sysctl", "-qw", f"{key}=1")

    def cmd(self, *args):
        return ["ip", "netns", "exec", self.name, *args]

    def run(self, *args, check=True, capture=False, timeout=120):
        return sh(*self.cmd(*args), check=check, capture=capture, timeout=timeout)

    def popen(self, *args, **kw):
        p = subprocess.Popen(self.cmd(*args), text=True, **kw)
        self.procs.append(p)
        return p

    def delete(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
        sh("ip", "netns", "del", self.name, check=False, capture=True)
        sh("rm", "-rf", f"/tmp/{self.name}", check=False)
        if self in _live:
            _live.remove(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.delete()


def veth(ns_a, name_a, ns_b, name_b, mac_a=None, mac_b=None, mtu=1500, tx_offload=False):
    """A veth pair between two namespaces, both ends up, with the MTU given; tx checksum offload off unless asked
    (AF_XDP would otherwise see unfinished checksums from the kernel's own VXLAN/TCP)."""
    sh("ip", "link", "add", name_a, "netns", ns_a.name, "type", "veth", "peer", "name", name_b, "netns", ns_b.name)
    for ns, name, mac in ((ns_a, name_a, mac_a), (ns_b, name_b, mac_b)):
        if mac:
            ns.run("ip", "link", "set", name, "address", mac)
        ns.run("ip", "link", "set", name, "mtu", str(mtu))
        if not tx_offload:
            ns.run("ethtool", "-K", name, "tx", "off", capture=True)
        ns.run("ip", "link", "set", name, "up")


def binary(name):
    """A built product: from $MPLSGATE_BIN_DIR (the README's test command sets it to the release build), else the
    newer of .build/release and .build/debug."""
    if os.environ.get("MPLSGATE_BIN_DIR"):
        return os.path.join(os.environ["MPLSGATE_BIN_DIR"], name)
    found = [os.path.join(ROOT, d, name) for d in (".build/release", ".build/debug")]
    found = [p for p in found if os.path.exists(p)]
    if not found:
        raise RuntimeError(f"{name} is not built (swift build -c release)")
    return max(found, key=os.path.getmtime)


class Agent:
    """`mplsgate run` in a namespace; started() waits for its "forwarding since" line."""

    def __init__(self, ns, config, fib=None, extra=(), json_counters=True, instance=None, state_dir=None):
        """The socket and state file live in `state_dir` (default: a directory per namespace under /tmp), so
        tests never touch /run/mplsgate or /var/lib/mplsgate."""
        self.state_dir = state_dir or f"/tmp/{ns.name}"
        os.makedirs(self.state_dir, exist_ok=True)
        self.instance = instance or "agent"
        self.socket = os.path.join(self.state_dir, self.instance + ".sock")
        self.state_file = os.path.join(self.state_dir, self.instance + ".state")
        args = [binary("mplsgate"), "run", "--config", config, "--instance", self.instance,
                "--socket", self.socket, "--state-file", self.state_file]
        if fib:
            args += ["--fib", fib]
        if json_counters:
            args.append("--json")
        args += list(extra)
        self.ns = ns
        self.proc = ns.popen(*args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.log = []
        self.start_time = None

    def started(self, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.log.append(line.rstrip())
            if "forwarding since" in line:
                self.start_time = float(line.split("forwarding since ")[1].split(":")[0])
                return True
        self.proc.wait(timeout=5)
        self.log += self.proc.stderr.read().splitlines()
        return False

    def stop(self, sig=signal.SIGTERM):
        """Stops the agent and returns (exit code, counters JSON or None, stderr lines)."""
        self.proc.send_signal(sig)
        out, err = self.proc.communicate(timeout=20)
        self.log += err.splitlines()
        counters = None
        for line in out.splitlines():
            if line.startswith("{"):
                counters = json.loads(line)
        return self.proc.returncode, counters, self.log


class Sink:
    """mplsgate-traffic sink on an interface; result() returns its JSON report. With `idle`, the sink ends by
    itself `idle` seconds after the last frame (result() waits for that); otherwise result() stops it."""

    def __init__(self, ns, iface, out=None, extra=(), idle=None):
        self.idle = idle
        args = [binary("mplsgate-traffic"), "sink", "--iface", iface]
        args += ["--idle", str(idle)] if idle else ["--duration", "3600"]
        if out:
            args += ["--out", out]
        self.proc = ns.popen(*args, *extra, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self.proc.stderr.readline()
        if "ready" not in line:
            raise RuntimeError(f"sink on {iface} did not start: {line}{self.proc.stderr.read()}")

    def result(self, timeout=60):
        if not self.idle:
            self.proc.send_signal(signal.SIGINT)
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGINT)
            out, err = self.proc.communicate(timeout=20)
        if self.proc.returncode != 0:
            raise RuntimeError(f"sink failed: {err}")
        return json.loads(out.strip().splitlines()[-1])


def send(ns, iface, pcap, count=None, rate=None, stream=None):
    args = [binary("mplsgate-traffic"), "send", "--iface", iface, "--pcap", pcap]
    if count is not None:
        args += ["--count", str(count)]
    if rate is not None:
        args += ["--rate", str(rate)]
    if stream is not None:
        args += ["--stream", str(stream)]
    r = ns.run(*args, capture=True, timeout=600)
    return json.loads(r.stdout.strip().splitlines()[-1])


class RPC:
    """A JSON-RPC client on an agent's control socket (run inside the namespace via nsenter is not needed: Unix
    sockets are files, reachable from any network namespace)."""

    def __init__(self, path, timeout=None):
        timeout = timeout or float(os.environ.get("MPLSGATE_RPC_TIMEOUT", "30"))
        import socket as _s
        self.sock = _s.socket(_s.AF_UNIX, _s.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.next_id = 1

    def send_raw(self, data):
        self.sock.sendall(data)

    def read_line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def call(self, method, params=None):
        """Returns the whole response object (with "result" or "error")."""
        i = self.next_id
        self.next_id += 1
        req = {"jsonrpc": "2.0", "id": i, "method": method}
        if params is not None:
            req["params"] = params
        self.sock.sendall(json.dumps(req).encode() + b"\n")
        while True:
            r = self.read_line()
            if r.get("id") == i or (r.get("id") is None and "error" in r):
                return r

    def result(self, method, params=None):
        r = self.call(method, params)
        if "error" in r:
            raise RuntimeError(f"{method}: {r['error']}")
        return r["result"]

    def close(self):
        self.sock.close()


def teardown(agents, namespaces, workdir):
    """Stops every agent still running (SIGTERM, then SIGKILL after 10 s), deletes the namespaces and the work
    directory: the end of a multi-agent topology (dci.py, sites.py)."""
    for a in agents:
        if a.proc.poll() is None:
            a.proc.send_signal(signal.SIGTERM)
            try:
                a.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                a.proc.kill()
    for n in list(namespaces):
        n.delete()
    sh("rm", "-rf", workdir, check=False)


FAILURES = []


def check(cond, what):
    """Prints one check's outcome and records a failure; returns `cond`."""
    print(("  ok    " if cond else "  FAIL  ") + what, flush=True)
    if not cond:
        FAILURES.append(what)
    return cond


def finish(subject):
    """Prints the summary of every check so far; returns the exit status."""
    print(f"\n{len(FAILURES)} failure(s)" if FAILURES else f"\nall {subject} checks passed")
    for f in FAILURES:
        print("  - " + f)
    return 1 if FAILURES else 0


LAB_CONFIG = os.path.join(ROOT, "examples/config.json")


def lab_veths(a, p):
    """One veth pair per port of examples/config.json: the agent's side in `a` (the port's interface and MAC), the
    peer `p-NAME` in `p`."""
    for port in json.load(open(LAB_CONFIG))["ports"]:
        veth(a, port["interface"], p, "p-" + port["name"], mac_a=port["mac"])


def run_lab_suite(script, subject, phases):
    """Runs each phase(a, p, tmp) in order between two fresh namespaces joined by the lab veths, then prints the
    summary; returns the exit status (1 without root)."""
    if os.geteuid() != 0:
        print(f"{script} needs root (network namespaces, XDP)")
        return 1
    with tempfile.TemporaryDirectory(prefix="mplsgate-it-") as tmp, Netns("agent") as a, Netns("peer") as p:
        lab_veths(a, p)
        for phase in phases:
            phase(a, p, tmp)
    return finish(subject)
