#!/usr/bin/python3
"""/metrics, checked by the real thing: a Prometheus server (Debian's `prometheus`) scrapes the agent every second
inside the agent's network namespace, and promtool checks what the agent serves.

The lab of test_agent.py (examples/config.json + examples/fib.json, the agent on four veths, peers in a second
namespace), with `--metrics 127.0.0.1:PORT --metrics-entries ilm`:
  - GET /metrics: 200, Content-Type text/plain; version=0.0.4 whatever Accept says; 404 elsewhere; listening only on
    the address given; `promtool check metrics` passes on a scrape;
  - Prometheus scrapes it (target up), and increase(mplsgate_port_tx_packets_total{port="core0"}[D]) over a
    constant-rate send of D seconds matches the sink's received count within 2 %;
  - scraped every 100 ms during 1,000 commits/s (the ILM entry the traffic uses replaced each time, so its slot
    retires every commit) with traffic: no counter ever goes down; the commit histogram and the request counters
    count the commits.

Run: MPLSGATE_BIN_DIR=.build/release /usr/bin/python3 Tests/Integration/test_metrics.py   (scripts/test.sh does)
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Netns, Agent, RPC, Sink, lab_veths, binary, check, finish, ROOT  # noqa: E402

from scapy.all import Ether, Raw, wrpcap  # noqa: E402
from scapy.contrib.mpls import MPLS  # noqa: E402

PORT = 9417
PROM = 9090
CONFIG = os.path.join(ROOT, "examples/config.json")
FIB = os.path.join(ROOT, "examples/fib.json")
CORE0 = json.load(open(CONFIG))["ports"][0]


def curl(ns, url, *extra):
    """(status, content type, body) of a GET inside the namespace."""
    r = ns.run("curl", "-s", "-o", "-", "-w", "\n%{http_code} %{content_type}", *extra, url, capture=True, check=False)
    body, _, meta = r.stdout.rpartition("\n")
    code, _, ctype = meta.partition(" ")
    return int(code or 0), ctype, body


def prom_query(ns, query, at=None):
    args = ["--data-urlencode", f"query={query}"]
    if at is not None:
        args += ["--data-urlencode", f"time={at:.3f}"]
    r = ns.run("curl", "-s", "-G", f"http://127.0.0.1:{PROM}/api/v1/query", *args, capture=True, check=False)
    try:
        return json.loads(r.stdout)["data"]["result"]
    except (ValueError, KeyError):
        return None


def parse(text):
    """{(name, labels): value} of every sample of an exposition."""
    out = {}
    for line in text.split("\n"):
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$", line)
        if m:
            out[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return out


def is_counter(name, types):
    base = re.sub(r"_(bucket|count|sum)$", "", name)
    return types.get(name) == "counter" or types.get(base) == "histogram"


def types_of(text):
    return {m.group(1): m.group(2) for m in re.finditer(r"^# TYPE (\S+) (\S+)$", text, re.M)}


def label100_pcap(path):
    wrpcap(path, [Ether(dst=CORE0["mac"], src="02:ee:00:00:00:99") / MPLS(label=100, ttl=64, s=1)
                  / Raw(b"\x45" + b"\x00" * 63)])


def serving(a, tmp):
    url = f"http://127.0.0.1:{PORT}/metrics"
    code, ctype, body = curl(a, url, "-H", "Accept: application/openmetrics-text; version=1.0.0")
    check(code == 200 and ctype == "text/plain; version=0.0.4; charset=utf-8",
          f"GET /metrics: {code}, {ctype} (text format 0.0.4 even when OpenMetrics is asked for)")
    code, _, _ = curl(a, f"http://127.0.0.1:{PORT}/other")
    check(code == 404, f"GET /other: {code}")
    code, _, _ = curl(a, url, "-X", "POST")
    check(code == 405, f"POST /metrics: {code}")
    head = a.run("curl", "-s", "-I", url, capture=True).stdout
    check(head.startswith("HTTP/1.1 200") and "content-length:" in head.lower(), f"HEAD /metrics: {head.splitlines()[:1]}")
    listen = a.run("ss", "-ltnH", capture=True).stdout
    ours = [l.split()[3] for l in listen.splitlines() if l.split()[3].endswith(f":{PORT}")]
    check(ours == [f"127.0.0.1:{PORT}"], f"listening only on the address given: {ours}")
    path = os.path.join(tmp, "scrape.txt")
    open(path, "w").write(body)
    r = subprocess.run(["promtool", "check", "metrics"], stdin=open(path), capture_output=True, text=True)
    check(r.returncode == 0, f"promtool check metrics: exit {r.returncode} {(r.stdout + r.stderr).strip()[:300]}")
    samples = parse(body)
    names = {n for n, _ in samples}
    for n in ("mplsgate_port_rx_packets_total", "mplsgate_drops_total", "mplsgate_xdp_redirected_packets_total",
              "mplsgate_fib_generation", "mplsgate_fib_durable_generation", "mplsgate_state_file_failures_total",
              "mplsgate_port_up", "mplsgate_next_hop_up", "mplsgate_worker_loops_total",
              "mplsgate_entry_packets_total", "mplsgate_commit_duration_seconds_count",
              "mplsgate_multipoint_copies_total", "mplsgate_multipoint_rate_limited_total",
              "mplsgate_multipoint_learned_macs", "mplsgate_multipoint_mac_duplicates_total"):
        check(n in names, f"the scrape has {n}")
    mp = [l for (n, l) in samples if n == "mplsgate_multipoint_flooded_packets_total"]
    check(len(mp) == 1 and 'vni="6000"' in str(mp[0]), f"one multipoint series per multipoint VNI of the lab FIB: {mp}")
    entries = [l for (n, l) in samples if n == "mplsgate_entry_packets_total"]
    check(len(entries) == sum(1 for e in json.load(open(FIB))["ilm"]),
          f"--metrics-entries ilm: one series per ILM entry ({len(entries)}), none for vni or ftn")


def prometheus_agrees(a, p, tmp):
    cfg = os.path.join(tmp, "prometheus.yml")
    open(cfg, "w").write(f"global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n"
                         f"scrape_configs:\n  - job_name: mplsgate\n    static_configs:\n"
                         f"      - targets: ['127.0.0.1:{PORT}']\n")
    prom = a.popen("prometheus", f"--config.file={cfg}", f"--storage.tsdb.path={os.path.join(tmp, 'tsdb')}",
                   f"--web.listen-address=127.0.0.1:{PROM}", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        up = None
        while time.time() < deadline:
            up = prom_query(a, 'up{job="mplsgate"}')
            if up and up[0]["value"][1] == "1":
                break
            time.sleep(0.5)
        check(bool(up) and up[0]["value"][1] == "1", f"Prometheus scrapes the agent: up = {up and up[0]['value'][1]}")
        time.sleep(3)
        seconds, rate = 20, 1000
        pcap = os.path.join(tmp, "label100.pcap")
        label100_pcap(pcap)
        sink = Sink(p, "p-core0", extra=("--stream-only",))
        start = time.time()
        sent = subprocess.run(p.cmd(binary("mplsgate-traffic"), "send", "--iface", "p-core0", "--pcap", pcap,
                                    "--count", str(seconds * rate), "--rate", str(rate), "--stream", "7"),
                              capture_output=True, text=True, timeout=120)
        end = time.time()   # the window is the send as it happened (a loaded machine may stretch it)
        time.sleep(3)       # the last scrapes of the window are in
        got = sink.result()
        received = got["streams"]["7"]["received"] if "7" in got.get("streams", {}) else 0
        window = int((end - start) * 1000)
        r = prom_query(a, f'increase(mplsgate_port_tx_packets_total{{port="core0"}}[{window}ms])', at=end)
        value = float(r[0]["value"][1]) if r else -1
        off = abs(value - received) / max(received, 1)
        check(sent.returncode == 0 and received > 0.99 * seconds * rate and off <= 0.02,
              f"increase(mplsgate_port_tx_packets_total{{port=\"core0\"}}[{window}ms]) = {value:.0f} vs the sink's "
              f"{received} ({off * 100:.2f} % apart, ≤ 2 %)")
    finally:
        prom.terminate()
        prom.wait(timeout=20)


SCRAPER = r"""
import sys, time, urllib.request
out, seconds = sys.argv[1], float(sys.argv[2])
end = time.time() + seconds
with open(out, "w") as f:
    while time.time() < end:
        t = time.time()
        body = urllib.request.urlopen("http://127.0.0.1:%s/metrics", timeout=2).read().decode()
        f.write(body.replace("\n", "\x1e") + "\n")
        time.sleep(max(0, 0.1 - (time.time() - t)))
"""


def monotonic_under_churn(a, p, agent, tmp):
    rpc = RPC(agent.socket)
    before = parse(curl(a, f"http://127.0.0.1:{PORT}/metrics")[2])
    pcap = os.path.join(tmp, "label100.pcap")
    label100_pcap(pcap)
    seconds = 10
    traffic = p.popen(binary("mplsgate-traffic"), "send", "--iface", "p-core0", "--pcap", pcap,
                      "--count", str(seconds * 2000 + 4000), "--rate", "2000", stdout=subprocess.DEVNULL)
    scrapes = os.path.join(tmp, "scrapes.txt")
    scraper = a.popen("/usr/bin/python3", "-c", SCRAPER % PORT, scrapes, str(seconds), stdout=subprocess.DEVNULL)
    commits, start = 0, time.time()
    outs = ([200], [201])
    while time.time() - start < seconds:
        target = start + commits / 1000.0
        delay = target - time.time()
        if delay > 0:
            time.sleep(delay)
        rpc.result("apply", {"operations": [{"op": "replace", "kind": "ilm", "entry": {
            "label": 100, "op": "swap", "out": outs[commits % 2], "via": "p1", "backupOut": [250]}}]})
        commits += 1
    elapsed = time.time() - start
    scraper.wait(timeout=30)
    traffic.wait(timeout=60)
    lines = [l for l in open(scrapes).read().split("\n") if l]   # not splitlines(): it splits at \x1e too
    series = [parse(l.replace("\x1e", "\n")) for l in lines]
    types = {}
    for l in lines:
        types.update(types_of(l.replace("\x1e", "\n")))
    went_down = []
    for prev, cur in zip(series, series[1:]):
        for key, v in cur.items():
            if is_counter(key[0], types) and key in prev and v < prev[key]:
                went_down.append((key, prev[key], v))
    check(commits / elapsed >= 900, f"the churn ran at {commits / elapsed:.0f} commits/s (≥ 900)")
    check(len(series) >= 80 and not went_down,
          f"{len(series)} scrapes 100 ms apart during {commits / elapsed:.0f} commits/s with traffic: "
          f"{len(went_down)} counter decreases {went_down[:3]}")
    last = series[-1] if series else {}
    entry = last.get(("mplsgate_entry_packets_total", '{kind="ilm",key="100"}'), 0)
    first = series[0].get(("mplsgate_entry_packets_total", '{kind="ilm",key="100"}'), 0) if series else 0
    check(entry > first > 0, f"ILM 100's counter kept growing across {commits} slot retirements ({first:.0f} → {entry:.0f})")
    after = parse(curl(a, f"http://127.0.0.1:{PORT}/metrics")[2])
    n = after.get(("mplsgate_commit_duration_seconds_count", ""), 0) - before.get(("mplsgate_commit_duration_seconds_count", ""), 0)
    ok = after.get(("mplsgate_control_requests_total", '{method="apply",result="ok"}'), 0) \
        - before.get(("mplsgate_control_requests_total", '{method="apply",result="ok"}'), 0)
    check(n == commits and ok == commits, f"the commit histogram counted {n:.0f} and requests{{apply,ok}} {ok:.0f} of {commits} commits")


def main():
    if os.geteuid() != 0:
        print("test_metrics.py needs root (network namespaces, XDP)")
        return 1
    for tool in ("prometheus", "promtool", "curl"):
        if subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True).returncode != 0:
            print(f"test_metrics.py needs {tool} (scripts/setup.sh installs it)")
            return 1
    with tempfile.TemporaryDirectory(prefix="mplsgate-metrics-") as tmp, Netns("agent") as a, Netns("peer") as p:
        lab_veths(a, p)
        agent = Agent(a, CONFIG, FIB, state_dir=os.path.join(tmp, "state"),
                      extra=("--cpus", "none", "--metrics", f"127.0.0.1:{PORT}", "--metrics-entries", "ilm"))
        if not check(agent.started(), f"agent with --metrics started: {agent.log[-2:]}"):
            return finish("metrics")
        try:
            print("serving /metrics")
            serving(a, tmp)
            print("a real Prometheus scraping every second")
            prometheus_agrees(a, p, tmp)
            print("no counter goes down while the FIB churns")
            monotonic_under_churn(a, p, agent, tmp)
        finally:
            rc, _, log = agent.stop()
            check(rc == 0, f"agent stops cleanly with the metrics server running (exit {rc})")
    return finish("metrics")


if __name__ == "__main__":
    sys.exit(main())
