#!/usr/bin/python3
"""Root integration test of the control plane: a real agent on veth pairs in network namespaces, programmed over
its real Unix socket.

Run: MPLSGATE_BIN_DIR=.build/release /usr/bin/python3 Tests/Integration/test_control.py   (scripts/test.sh does)
MPLSGATE_SOAK_SECONDS (default 60) sets the length of the update-under-traffic run.

Checks: every kind of bad input gets a JSON-RPC error with a stable code naming the element, the FIB is untouched
(same generation and digest) and the server keeps serving; resync is exclusive, chunked, and discarded when its
client goes away; the state file brings the FIB back after SIGTERM, kill -9 and corruption; losing the controller
never flushes the FIB; mplsgatectl's exit codes; and 10k packets/s through the agent while commits alternate between
two generations: no loss, no frame with a (label, MAC) pair of neither generation, no gap above 50 ms.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import check, run_lab_suite, ROOT, Agent, Sink, RPC, send, sh, binary  # noqa: E402

from scapy.all import Ether, wrpcap  # noqa: E402

CONFIG = os.path.join(ROOT, "examples/config.json")
FIB = os.path.join(ROOT, "examples/fib.json")
CASES = json.load(open(os.path.join(ROOT, "Tests/Fixtures/cases.json")))["cases"]
SWAP = next(c for c in CASES if c["name"] == "swap ttl 2 -> 1, tc kept")   # label 100 on core0 -> core0




def ilm_swap(label, out, via):
    return {"op": "replace", "kind": "ilm", "entry": {"label": label, "op": "swap", "out": [out], "via": via}}


def expect_error(rpc, method, params, code, element=None, what="", reason=None):
    before = rpc.result("info")
    r = rpc.call(method, params)
    err = r.get("error") or {}
    after = rpc.result("info")
    ok = err.get("code") == code and (element is None or element in (err.get("data") or {}).get("element", ""))
    ok = ok and (reason is None or (err.get("data") or {}).get("reason") == reason)
    ok = ok and before["generation"] == after["generation"] and before["digest"] == after["digest"]
    check(ok, f"{what or method}: error {err.get('code')} ({err.get('message', '')[:90]}), FIB untouched")


def raw_error(path, payload, code, what):
    """Sends raw bytes on a fresh connection; expects one error line with `code`."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    s.sendall(payload)
    buf = b""
    while b"\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    s.close()
    try:
        r = json.loads(buf.split(b"\n")[0])
    except Exception:
        r = {}
    check((r.get("error") or {}).get("code") == code, f"{what}: error {(r.get('error') or {}).get('code')}")


def run_bad_input(a, p, tmp):
    print("bad input on the control socket")
    agent = Agent(a, CONFIG, FIB)
    if not check(agent.started(), "agent starts with the example FIB"):
        return
    rpc = RPC(agent.socket)
    info = rpc.result("info")
    check(info["generation"] == 1 and info["entries"]["ilm"] == 24 and len(info["ports"]) == 4,
          f"info: generation {info['generation']}, {info['entries']}, ports {[x['name'] + ':' + x['state'] for x in info['ports']]}")
    g = info["generation"]
    raw_error(agent.socket, b'{"jsonrpc":"2.0","id":1,"method":\n', -32700, "malformed JSON")
    raw_error(agent.socket, b'{"jsonrpc":"2.0","id":1,"method":"in\xff\xfeo"}\n', -32700, "invalid UTF-8")
    raw_error(agent.socket, b"[" * 5000 + b"]" * 5000 + b"\n", -32600 if False else -32700, "nesting 5000 deep")
    raw_error(agent.socket, b'[{"jsonrpc":"2.0","id":1,"method":"info"}]\n', -32600, "a batch array")
    raw_error(agent.socket, b'{"jsonrpc":"1.0","id":1,"method":"info"}\n', -32600, "jsonrpc 1.0")
    expect_error(rpc, "nope", {}, -32601, what="unknown method")
    expect_error(rpc, "apply", {"operations": {"op": "add"}}, -32602, "operations", "operations not an array")
    expect_error(rpc, "apply", {"operations": [], "bogus": 1}, -32602, "bogus", "an unknown parameter")
    expect_error(rpc, "apply", {"operations": [{"op": "add", "kind": "ilm", "entry": {"label": "100", "op": "swap"}}]},
                 -32003, "operations[0].entry", "a label given as a string", reason="type")
    expect_error(rpc, "apply", {"operations": [ilm_swap(100, 5, "p1")]}, -32003, "operations[0] (ilm 100)",
                 "a reserved out label", reason="reserved")
    expect_error(rpc, "apply", {"operations": [{"op": "add", "kind": "ilm", "entry": {"label": 15, "op": "pop"}}]},
                 -32003, "operations[0] (ilm 15)", "a reserved incoming label", reason="reserved")
    expect_error(rpc, "apply", {"operations": [{"op": "add", "kind": "ilm", "entry": {"label": 1048576, "op": "pop"}}]},
                 -32003, "operations[0] (ilm 1048576)", "a label above 2^20-1", reason="range")
    expect_error(rpc, "apply", {"operations": [ilm_swap(100, 300, "p1"), ilm_swap(101, 301, "nowhere")]},
                 -32003, "operations[1] (ilm 101)", "a dangling reference (after a valid change)",
                 reason="reference")
    expect_error(rpc, "apply", {"operations": [{"op": "delete", "kind": "nextHop", "key": "p1"}]}, -32006,
                 "operations[0] (nextHop p1)", "deleting a referenced next hop")
    expect_error(rpc, "apply", {"operations": [{"op": "add", "kind": "nextHop", "entry": {"name": "p1", "port": "core0", "mac": "02:aa:00:00:00:01"}}]},
                 -32004, "operations[0] (nextHop p1)", "adding an existing next hop")
    expect_error(rpc, "apply", {"operations": [{"op": "delete", "kind": "ilm", "key": 4242}]}, -32005,
                 "operations[0] (ilm 4242)", "deleting a missing entry")
    expect_error(rpc, "apply", {"expectedGeneration": g + 5, "operations": [ilm_swap(100, 300, "p1")]}, -32002,
                 "expectedGeneration", "a stale expected generation")
    expect_error(rpc, "apply", {"operations": [ilm_swap(100, 300, "p1")] * 100001}, -32007, None, "too many operations")
    # An oversized message: an error, the connection closed, the server fine.
    big = RPC(agent.socket)
    try:
        big.send_raw(b'{"jsonrpc":"2.0","id":1,"method":"info","params":{"x":"' + b"a" * (33 << 20) + b'"}}\n')
        r = big.read_line()
        check((r.get("error") or {}).get("code") == -32600 and "limit" in r["error"]["message"], "a 33 MiB message is refused")
    except (BrokenPipeError, ConnectionResetError, ConnectionError):
        check(False, "a 33 MiB message got an error reply before the close")
    big.close()
    # A client that disconnects mid-request, one that stalls (never reads), one half-open.
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(agent.socket)
    s.sendall(b'{"jsonrpc":"2.0","id":1,"method":"ap')
    s.close()
    stalled = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stalled.connect(agent.socket)
    stalled.sendall(b'{"jsonrpc":"2.0","id":1,"method":"dump","params":{"kind":"ilm","limit":100000}}\n' * 200)
    half = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    half.connect(agent.socket)
    half.sendall(b'{"jsonrpc":"2.0","id":1,"method":"info"}\n')
    half.shutdown(socket.SHUT_WR)
    t0 = time.time()
    check(rpc.result("info")["generation"] == g and time.time() - t0 < 1.0,
          "stalled, half-open and vanished clients do not delay another")
    stalled.close()
    half.close()
    # A client that asks and leaves before the answers: the agent meets EPIPE, not SIGPIPE.
    for _ in range(5):
        gone = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        gone.connect(agent.socket)
        gone.sendall(b'{"jsonrpc":"2.0","id":1,"method":"dump","params":{"kind":"ilm"}}\n' * 500)
        gone.close()
    time.sleep(0.5)
    check(agent.proc.poll() is None and rpc.result("info")["generation"] == g, "clients that leave before their replies do not hurt the agent")
    # A disallowed uid (socket opened to everyone for the test; the peer check still refuses).
    os.chmod(agent.socket, 0o666)
    # The refused peer first sends a request (which may meet a closed socket), then reads the one error line.
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c",
                        "import socket,sys;s=socket.socket(socket.AF_UNIX);s.connect(sys.argv[1])\n"
                        "try: s.sendall(b'{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"info\"}\\n')\n"
                        "except OSError: pass\nprint(s.recv(4096).decode())",
                        agent.socket], capture_output=True, text=True, timeout=20)
    check('"code":-32009' in r.stdout, f"uid 65534 is refused by the peer check: {r.stdout.strip()[:100]}")
    check(agent.proc.poll() is None and rpc.result("info")["generation"] == g, "the agent survives a peer that vanishes mid-reply")
    os.chmod(agent.socket, 0o660)
    # Resync: exclusive, discarded when its client goes away.
    owner = RPC(agent.socket)
    sess = owner.result("resync.begin")["session"]
    owner.result("resync.chunk", {"session": sess, "nextHops": [{"name": "p1", "port": "core0", "mac": "02:aa:00:00:00:01"}]})
    expect_error(rpc, "apply", {"operations": [ilm_swap(100, 300, "p1")]}, -32001, None, "apply while another client resyncs")
    expect_error(rpc, "resync.begin", {}, -32001, None, "a second resync")
    expect_error(rpc, "resync.chunk", {"session": sess, "ilm": []}, -32001, "session", "a chunk on someone else's session")
    owner.close()
    time.sleep(0.3)
    check(rpc.result("info")["resyncOpen"] is False, "a resync whose client disconnects is discarded")
    check(rpc.result("info")["entries"]["ilm"] == 24, "the discarded resync changed nothing")
    expect_error(rpc, "resync.end", {"session": sess}, -32008, "session", "ending an abandoned session")
    # An invalid resync changes nothing; a good one replaces exactly.
    sess = rpc.result("resync.begin")["session"]
    rpc.result("resync.chunk", {"session": sess, "ilm": [{"label": 100, "op": "swap", "out": [200], "via": "nowhere"}]})
    r = rpc.call("resync.end", {"session": sess})
    check((r.get("error") or {}).get("code") == -32003 and rpc.result("info")["generation"] == g,
          "an invalid resync is refused at end and changes nothing")
    fib = json.load(open(FIB))
    sess = rpc.result("resync.begin", {"expectedGeneration": g})["session"]
    for kind in ("nextHops", "ecmpGroups", "ilm", "vni", "ftn", "macs"):
        items = fib.get(kind, [])
        if kind == "ilm":
            items = [e for e in items if e["label"] != 112]      # drop one entry
        for i in range(0, len(items), 5):
            rpc.result("resync.chunk", {"session": sess, kind: items[i:i + 5]})
    r = rpc.result("resync.end", {"session": sess})
    check(r["generation"] == g + 1 and r["deleted"] == 1 and r["added"] == 0 and r["replaced"] == 0,
          f"a chunked resync deletes exactly what it omits: {r}")
    # The compact form (columns and rows, null for an absent field) means the same entries.
    info = rpc.result("info")
    sess = rpc.result("resync.begin")["session"]
    for kind in ("nextHops", "ecmpGroups", "ilm", "vni", "ftn", "macs"):
        items = [e for e in fib.get(kind, []) if kind != "ilm" or e["label"] != 112]
        rpc.result("resync.chunk", {"session": sess, kind: compact(items)})
    r = rpc.result("resync.end", {"session": sess})
    check(r == {"generation": g + 1, "added": 0, "replaced": 0, "deleted": 0} and rpc.result("info")["digest"] == info["digest"],
          f"a resync in the compact form finds the same FIB: {r}")
    rows = compact([ilm_swap(60, 300, "p1")["entry"], ilm_swap(61, 301, "p1")["entry"]])
    gen = rpc.result("apply", {"operations": [{"op": "add", "kind": "ilm", **rows}]})["generation"]
    check(rpc.result("dump", {"kind": "ilm", "limit": 2})["entries"][1] == {"label": 61, "op": "swap", "out": [301], "via": "p1", "ttlMode": "uniform"},
          "apply adds the rows of a compact operation")
    bad = compact([ilm_swap(62, 302, "p1")["entry"], ilm_swap(63, 5, "p1")["entry"]])
    expect_error(rpc, "apply", {"operations": [{"op": "add", "kind": "ilm", **bad}]}, -32003,
                 "operations[0].rows[1] (ilm 63).out[0]", "a bad row is named by its operation and row")
    r = rpc.result("apply", {"operations": [{"op": "delete", "kind": "ilm", "keys": [60, 61]}]})
    check(r["applied"] == 2 and r["generation"] == gen + 1, f"delete takes a list of keys: {r}")
    g = r["generation"]
    # Events: a subscriber hears about a commit made on another connection.
    sub = RPC(agent.socket)
    sub.result("events.subscribe")
    gen = rpc.result("apply", {"operations": [ilm_swap(100, 200, "p1")]})["generation"]
    ev = sub.read_line()
    check(ev.get("method") == "event" and ev["params"] == {"type": "generation", "generation": gen, "digest": rpc.result("info")["digest"]},
          f"events.subscribe: {ev}")
    sub.close()
    g = gen
    dump = rpc.result("dump", {"kind": "ilm", "limit": 5})
    check(len(dump["entries"]) == 5 and dump["next"] == 5 and dump["entries"][0]["label"] == 100, "dump pages")
    ctl = [binary("mplsgatectl"), "--socket", agent.socket]
    r = subprocess.run(ctl + ["apply", "/nonexistent"], capture_output=True, text=True)
    check(r.returncode == 2, f"mplsgatectl: a missing file is exit 2 ({r.returncode})")
    bad = os.path.join(tmp, "bad.json")
    json.dump({"operations": [ilm_swap(100, 5, "p1")]}, open(bad, "w"))
    r = subprocess.run(ctl + ["apply", bad], capture_output=True, text=True)
    check(r.returncode == 1 and "operations[0] (ilm 100)" in r.stderr, f"mplsgatectl: a refused apply is exit 1: {r.stderr.strip()}")
    r = subprocess.run([binary("mplsgatectl"), "--socket", os.path.join(tmp, "nope.sock"), "info"], capture_output=True, text=True)
    check(r.returncode == 3, f"mplsgatectl: no agent is exit 3 ({r.returncode})")
    before = rpc.result("info")
    r = subprocess.run(ctl + ["resync", FIB, "--compact", "--chunk", "7"], capture_output=True, text=True)
    after = rpc.result("info")
    check(r.returncode == 0 and after["digest"] != before["digest"] and after["entries"]["ilm"] == len(json.load(open(FIB))["ilm"]),
          f"mplsgatectl resync --compact puts the FIB document back: {r.stdout.strip() or r.stderr.strip()}")
    r = subprocess.run(ctl + ["show", "labels", "--json"], capture_output=True, text=True)
    check(r.returncode == 0 and len(json.loads(r.stdout)["ilm"]) == len(json.load(open(FIB))["ilm"]),
          "mplsgatectl show labels --json")
    agent.stop()


def run_large_resync(a, p, tmp):
    """A resync of 100,000 entries compiles on the builder thread: meanwhile another client is answered (info shows
    the compile and the generation before it; writes are busy), and the owner's reply comes when it is published."""
    agent = Agent(a, CONFIG, FIB)
    assert agent.started(), agent.log
    owner, other = RPC(agent.socket), RPC(agent.socket)
    g = owner.result("info")["generation"]
    n = 100_000
    sess = owner.result("resync.begin")["session"]
    lab = json.load(open(FIB))
    nh = lab["nextHops"] + lab["ecmpGroups"]
    for start in range(0, n, 50_000):
        rows = [[20_000 + i, "swap", [300_000 + i], "p1"] for i in range(start, start + 50_000)]
        owner.result("resync.chunk", {"session": sess, "nextHops": lab["nextHops"] if start == 0 else [],
                                      "ecmpGroups": lab["ecmpGroups"] if start == 0 else [],
                                      "ilm": {"columns": ["label", "op", "out", "via"], "rows": rows}})
    owner.send_raw(json.dumps({"jsonrpc": "2.0", "id": 99, "method": "resync.end", "params": {"session": sess}}).encode() + b"\n")
    seen, busy, answered = None, {}, 0
    for _ in range(20_000):
        info = other.result("info")
        answered += 1
        if info.get("compiling"):
            seen = info
            busy = other.call("apply", {"operations": []})
            break
    reply = owner.read_line()
    check(seen is not None and seen["generation"] == g and seen["compiling"]["what"] == f"a resync of {n + len(nh)} entries",
          f"another client is answered while the resync compiles ({answered} info replies): {seen and seen['compiling']}")
    check((busy.get("error") or {}).get("code") == -32001 and "being compiled" in busy["error"]["message"]
          or (busy.get("result") or {}).get("generation") == g + 1,
          f"a write during the compile is busy, not queued (or it came after the publish): {busy}")
    r = reply.get("result", {})
    check(reply.get("id") == 99 and r.get("generation") == g + 1 and r.get("added") == n,
          f"the owner's resync.end reply comes when the build is published: {reply}")
    info = other.result("info")
    check(info["entries"]["ilm"] == n and info["compiling"] is None and info["compiles"]["onBuilderThread"] >= 1,
          f"after the compile: {info['entries']}, {info['compiles']}")
    check(other.result("apply", {"operations": [ilm_swap(20_000, 200, "p1")]})["generation"] == g + 2,
          "writes are served again once it is published")
    owner.close()
    other.close()
    agent.stop()


def run_persistence(a, p, tmp):
    print("persistence, restarts and a lost controller")
    state_dir = os.path.join(tmp, "state")
    agent = Agent(a, CONFIG, FIB, state_dir=state_dir)
    check(agent.started(), "agent starts")
    rpc = RPC(agent.socket)
    r = rpc.result("apply", {"operations": [ilm_swap(100, 300, "p1")], "durable": True})
    g = r["generation"]
    check(rpc.result("info")["durableGeneration"] >= g, "apply with durable: true replies once the state file has it")
    rpc.close()  # the controller goes away
    pcap = os.path.join(tmp, "swap.pcap")
    wrpcap(pcap, [Ether(bytes.fromhex(SWAP["input"]))])
    sink = Sink(p, "p-core0")
    send(p, "p-core0", pcap, count=10)
    time.sleep(0.3)
    check(sink.result()["byKey"] == {"label=300 mac=02:aa:00:00:00:01": 10}, "after the controller left, the FIB stays")
    agent.stop()
    # Restart with no --fib and no controller: the state file.
    agent = Agent(a, CONFIG, None, state_dir=state_dir)
    check(agent.started() and f"generation {g} from" in agent.log[-1] and "agent.state" in agent.log[-1],
          f"a restart loads the state file: {agent.log[-1][:160]}")
    sink = Sink(p, "p-core0")
    send(p, "p-core0", pcap, count=10)
    time.sleep(0.3)
    check(sink.result()["byKey"] == {"label=300 mac=02:aa:00:00:00:01": 10}, "and forwards before any controller connects")
    rpc = RPC(agent.socket)
    g2 = rpc.result("apply", {"operations": [ilm_swap(100, 400, "p1")], "durable": True})["generation"]
    rpc.close()
    agent.proc.send_signal(signal.SIGKILL)
    agent.proc.wait()
    agent = Agent(a, CONFIG, None, state_dir=state_dir)
    check(agent.started() and f"generation {g2} from" in agent.log[-1], "after kill -9 the restart loads the last state")
    agent.stop()
    # Corrupt the newest copy: reported, and the previous one is used.
    path = os.path.join(state_dir, "agent.state")
    data = bytearray(open(path, "rb").read())
    data[-5] ^= 0xFF
    open(path, "wb").write(bytes(data))
    agent = Agent(a, CONFIG, None, state_dir=state_dir)
    ok = agent.started()
    check(ok and any("checksum mismatch" in l for l in agent.log) and "agent.state.prev" in agent.log[-1],
          f"a corrupt state file is reported and the previous one used: {agent.log[-2:] if agent.log else ''}")
    # The first commit after that replaces the corrupt file and keeps the good .prev.
    rpc = RPC(agent.socket)
    rpc.result("apply", {"operations": [ilm_swap(100, 500, "p1")], "durable": True})
    rpc.close()
    check(state_file_intact(path) and state_file_intact(path + ".prev"),
          "after a start from .prev, the first commit keeps a loadable .prev (both copies verify)")
    agent.stop()
    # A config the state file does not fit (its next hops name ports this one lacks): the agent starts empty and
    # leaves the state files alone until a commit, so the operator can fix the config and get the FIB back.
    files = {f: open(os.path.join(state_dir, f), "rb").read() for f in ("agent.state", "agent.state.prev", "agent.state.journal")}
    small = os.path.join(tmp, "small-config.json")
    config = json.load(open(CONFIG))
    config["ports"] = [p for p in config["ports"] if p["name"] == "core0"]
    json.dump(config, open(small, "w"))
    agent = Agent(a, small, None, state_dir=state_dir)
    ok = agent.started()
    agent.stop()
    check(ok and any("does not fit this config" in l for l in agent.log)
          and all(open(os.path.join(state_dir, f), "rb").read() == b for f, b in files.items()),
          "an agent whose config the state file does not fit starts empty and leaves the state files untouched")
    agent = Agent(a, CONFIG, None, state_dir=state_dir)
    check(agent.started() and "generation" in agent.log[-1] and " 0 entries" not in agent.log[-1],
          f"and with the right config the FIB comes back: {agent.log[-1][:200] if agent.log else ''}")
    agent.stop()


def compact(entries):
    """The compact form of a list of entries: the union of their keys as columns, one row each (null: absent)."""
    columns = sorted({k for e in entries for k in e})
    return {"columns": columns, "rows": [[e.get(c) for c in columns] for e in entries]}


def state_file_intact(path):
    """Whether `path` is a complete MPLSGate state file whose FNV-1a checksum verifies (StateFile.swift's format)."""
    try:
        data = open(path, "rb").read()
    except OSError:
        return False
    header, _, body = data.partition(b"\n")
    fields = header.split()   # a streamed snapshot pads its header with spaces
    if len(fields) not in (5, 6) or fields[:2] != [b"MPLSGATE-STATE", b"1"] or int(fields[3]) != len(body):
        return False
    h = 0xCBF29CE484222325
    for byte in body:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h == fields[4].decode()


def vm_peak_rss_mib(pid):
    """The process's peak resident set (VmHWM), MiB."""
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0


def run_hostile_clients(a, p, tmp):
    print("hostile clients: a failing state file, reply order, pipelined dumps, two agents on one state file")
    state_dir = os.path.join(tmp, "ro-state")
    os.makedirs(state_dir)
    sh("mount", "-t", "tmpfs", "-o", "size=64m", "mgtest", state_dir)
    try:
        failing_state_file(a, tmp, state_dir)
    finally:
        sh("umount", "-l", state_dir, check=False)

    agent = Agent(a, CONFIG, FIB, state_dir=os.path.join(tmp, "hostile"))
    if not check(agent.started(), "agent starts"):
        return
    rpc = RPC(agent.socket)
    g = rpc.result("info")["generation"]
    r = rpc.call("apply", {"operations": []})
    check(r.get("result", {}).get("generation") == g and rpc.result("info")["generation"] == g,
          f"an empty apply changes nothing and creates no generation: {r}")
    # Two agents on one state file: the second is refused, naming the file, before it touches an interface.
    second = Agent(a, CONFIG, None, state_dir=agent.state_dir, instance="agent")
    refused = not second.started(timeout=10)
    check(refused and second.proc.returncode == 1 and any("in use by another agent" in l for l in second.log),
          f"a second agent on the same state file is refused: {second.log[-1:]}")
    # Pipelined full-size dumps from a client that never reads: another client is served at once, and the agent
    # holds about one reply for it, not a hundred.
    labels = list(range(20000, 120000))
    sess = rpc.result("resync.begin")["session"]
    fib = json.load(open(FIB))
    for kind in ("nextHops", "ecmpGroups", "vni", "ftn"):
        rpc.result("resync.chunk", {"session": sess, kind: fib.get(kind, [])})
    for i in range(0, len(labels), 25000):
        rpc.result("resync.chunk", {"session": sess, "ilm": [{"label": l, "op": "swap", "out": [l], "via": "p1"}
                                                             for l in labels[i:i + 25000]]})
    rpc.result("resync.end", {"session": sess})
    pid = rpc.result("info")["pid"]
    rss0 = vm_peak_rss_mib(pid)
    hog = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    hog.connect(agent.socket)
    hog.sendall(b"".join(b'{"jsonrpc":"2.0","id":%d,"method":"dump","params":{"kind":"ilm","limit":100000}}\n' % i
                         for i in range(100)))
    time.sleep(0.5)
    t0 = time.time()
    other = RPC(agent.socket, timeout=30)
    try:
        other.result("info")
        waited = time.time() - t0
    except (socket.timeout, ConnectionError):
        waited = float("inf")
    other.close()
    time.sleep(2)
    rss1 = vm_peak_rss_mib(pid)
    check(waited < 2, f"a client pipelining 100 full-size dumps and never reading delays another's info {waited:.2f} s (< 2)")
    check(rss1 - rss0 < 200, f"and raises the agent's peak RSS by {rss1 - rss0:.0f} MiB ({rss0:.0f} -> {rss1:.0f}; < 200)")
    hog.close()
    time.sleep(0.3)
    check(agent.proc.poll() is None and rpc.result("info")["entries"]["ilm"] == len(labels),
          "the agent keeps serving after the hog leaves")
    agent.stop()


def call_or_timeout(rpc, method, params):
    """The response, or {"error": {"message": "timed out"}} when none comes within the connection's timeout."""
    try:
        return rpc.call(method, params)
    except (socket.timeout, ConnectionError):
        return {"error": {"message": "timed out"}}


def failing_state_file(a, tmp, state_dir):
    """The state directory turns read-only under a running agent: durable requests get an error reply naming the
    generation (it stays applied), in request order with the replies after them; the writer retries, and once the
    directory is writable again the generation becomes durable by itself."""
    agent = Agent(a, CONFIG, FIB, state_dir=state_dir)
    if not check(agent.started(), "agent starts with its state file on a tmpfs"):
        return
    rpc = RPC(agent.socket, timeout=15)
    g = rpc.result("info")["generation"]
    deadline = time.time() + 5
    while rpc.result("info")["durableGeneration"] < g and time.time() < deadline:
        time.sleep(0.05)
    sh("mount", "-o", "remount,ro", state_dir)
    # The request from the hostile-client campaign, then info, on one connection in one write.
    rpc.send_raw(b'{"jsonrpc":"2.0","id":"D","method":"apply","params":{"durable":true,"operations":[]}}\n'
                 b'{"jsonrpc":"2.0","id":"I","method":"info"}\n')
    try:
        first, second = rpc.read_line(), rpc.read_line()
    except (socket.timeout, ConnectionError) as e:
        first, second = {"error": str(e)}, {}
    check(first.get("id") == "D" and first.get("result", {}).get("generation") == g and second.get("id") == "I",
          f"an empty durable apply of a durable generation is answered at once, before the next request: {first}")
    rpc.send_raw(b'{"jsonrpc":"2.0","id":"C","method":"apply","params":{"durable":true,"operations":['
                 + json.dumps(ilm_swap(100, 300, "p1")).encode() + b']}}\n'
                 b'{"jsonrpc":"2.0","id":"I2","method":"info"}\n')
    t0 = time.time()
    try:
        first, second = rpc.read_line(), rpc.read_line()
    except (socket.timeout, ConnectionError) as e:
        first, second = {"error": {"message": str(e)}}, {}
    err = first.get("error") or {}
    check(first.get("id") == "C" and err.get("code") == -32010 and (err.get("data") or {}).get("generation") == g + 1,
          f"a durable apply whose write fails gets an error reply naming its generation in {time.time() - t0:.2f} s: {err}")
    check(second.get("id") == "I2" and second.get("result", {}).get("generation") == g + 1
          and "stateFileError" in second.get("result", {}) and second["result"].get("stateFileFailures", 0) >= 1,
          "replies come in request order, and info reports the failure (the commit stays applied)")
    rpc.send_raw(b'{"jsonrpc":"2.0","id":"B","method":"apply","params":{"durable":true,"operations":[]}}\n'
                 b'{"jsonrpc":"2.0","id":"I3","method":"info"}\n')
    try:
        first, second = rpc.read_line(), rpc.read_line()
    except (socket.timeout, ConnectionError) as e:
        first, second = {"error": {"message": str(e)}}, {}
    check(first.get("id") == "B" and (first.get("error") or {}).get("code") == -32010 and second.get("id") == "I3",
          f"an empty durable apply is a barrier: one error reply while the write fails, then the next reply: "
          f"{first.get('error', {}).get('code')}, next id {second.get('id')}")
    sh("mount", "-o", "remount,rw", state_dir)
    rpc = RPC(agent.socket, timeout=15)   # a fresh connection: the old one may hold unanswered requests
    # The writer backs off while writes fail (1, 2, 4, ... 30 s): the next retry is at most 30 s away.
    deadline = time.time() + 35
    info = rpc.result("info")
    while info["durableGeneration"] < g + 1 and time.time() < deadline:
        time.sleep(0.1)
        info = rpc.result("info")
    check(info["durableGeneration"] == g + 1 and "stateFileError" not in info,
          f"the writer retries: durable generation {info['durableGeneration']} once the directory is writable again")
    r = call_or_timeout(rpc, "apply", {"durable": True, "operations": []})
    check(r.get("result", {}).get("generation") == g + 1, "and the barrier then succeeds")
    rc, _, log = agent.stop()
    check(any("not durable" in l for l in log) and any("written again" in l for l in log),
          "the agent logs the failure and the recovery")


def run_updates_under_traffic(a, p, tmp):
    seconds = int(os.environ.get("MPLSGATE_SOAK_SECONDS", "60"))
    rate = int(os.environ.get("MPLSGATE_SOAK_COMMITS_PER_SECOND", "1000"))
    print(f"updates under traffic: 10k packets/s for {seconds} s, {rate} commits/s alternating between two generations, "
          "state file on")
    agent = Agent(a, CONFIG, FIB)
    check(agent.started(), "agent starts")
    rpc = RPC(agent.socket)
    rpc.result("apply", {"operations": [{"op": "add", "kind": "nextHop", "entry": {"name": "p9", "port": "core0", "mac": "02:aa:00:00:00:09"}}]})
    gen_a = [ilm_swap(100, 200, "p1")]
    gen_b = [ilm_swap(100, 300, "p9")]
    pcap = os.path.join(tmp, "swap-seq.pcap")
    wrpcap(pcap, [Ether(bytes.fromhex(SWAP["input"]) + b"\0" * 16)])
    sink = Sink(p, "p-core0", extra=("--stream-only",), idle=2)
    count = 10000 * seconds
    sender = p.popen(binary("mplsgate-traffic"), "send", "--iface", "p-core0", "--pcap", pcap, "--count", str(count),
                     "--rate", "10000", "--stream", "3", stdout=subprocess.PIPE)
    commits = 0
    t0 = time.time()
    t_end = t0 + seconds
    while sender.poll() is None and time.time() < t_end + 5:
        rpc.result("apply", {"operations": gen_b if commits % 2 == 0 else gen_a})
        commits += 1
        delay = t0 + commits / rate - time.time()   # paced at `rate`, never bursting to catch up
        if delay > 0:
            time.sleep(delay)
    elapsed = time.time() - t0
    out, _ = sender.communicate(timeout=60)
    sent = json.loads(out.strip().splitlines()[-1])["sent"]
    res = sink.result(timeout=120)
    s = res["streams"].get("3", {})
    keys = res["byKey"]
    allowed = {"label=200 mac=02:aa:00:00:00:01", "label=300 mac=02:aa:00:00:00:09"}
    check(sent == count, f"sent {sent} frames")
    check(commits >= 0.8 * rate * min(elapsed, seconds), f"{commits} commits while they flowed ({commits / elapsed:.0f}/s)")
    info = rpc.result("info")
    deadline = time.time() + 5
    while info["durableGeneration"] < info["generation"] and time.time() < deadline:
        time.sleep(0.05)
        info = rpc.result("info")
    check(info["durableGeneration"] == info["generation"] and info["stateFileWrites"]["journalRecords"] >= commits * 0.9,
          f"and every one reached the state file's journal: {info['stateFileWrites']}")
    check(s.get("received") == sent and s.get("missing") == 0 and s.get("duplicates") == 0,
          f"0 frames lost: received {s.get('received')}, missing {s.get('missing')}, sink socket drops {res.get('socketDrops')}")
    check(set(keys) <= allowed and all(keys.get(k, 0) > 0 for k in allowed),
          f"every frame carries one generation's (label, MAC) pair: {keys}")
    check(s.get("maxGapMs", 1e9) <= 50, f"largest gap between deliveries {s.get('maxGapMs')} ms (<= 50)")
    rc, counters, _ = agent.stop()
    check(counters is not None and counters["entries"]["ilm 100"]["packets"] == sent,
          f"the ILM 100 counter survived {commits} replaces: {counters and counters['entries']['ilm 100']}")


def main():
    return run_lab_suite("test_control.py", "control-plane",
                         [run_bad_input, run_large_resync, run_persistence, run_hostile_clients, run_updates_under_traffic])


if __name__ == "__main__":
    sys.exit(main())
