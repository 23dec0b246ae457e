#!/usr/bin/python3
"""Link protection: time from the kernel's link message to the stored switch, with the lab FIB and with N more
entries on the protected next hop (a switch stores one byte per next hop, so it must not grow with entries).

    Benchmarks/protection/run.py [--entries 1000000] [--rounds 3]

Builds Tests/Integration/test_protection.py's four-agent lab twice (PE1 with its own few entries, then with N more
ILM entries all via the protected next hop), sets PE1's primary port down and up `rounds` times under 10,000 frames/s
each way, and prints per round the netlink-receive → liveness-store time at PE1 and P1 (from the agents' event
records) and the frames lost each way. The forwarding cost of the liveness check is in the pipeline A/B
(Benchmarks/ab/run.sh, docs/performance.md).
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
os.environ.setdefault("MPLSGATE_BIN_DIR", os.path.join(HERE, "..", "..", ".build", "release"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "Tests", "Integration"))
import test_protection as T  # noqa: E402


def run(entries, rounds, tmp):
    extra = [T.swap(1000 + i, [201], "to-p1", [301]) for i in range(entries)]  # labels 1000 and up: clear of the lab's
    original = T.fibs

    def fibs():
        f = original()
        f["pe1"]["ilm"] += extra
        return f
    T.fibs = fibs
    try:
        work = os.path.join(tmp, f"n{entries}")
        os.makedirs(work)
        lab = T.Lab(work, hold_down=0.5, start_timeout=300)
    finally:
        T.fibs = original
    try:
        pe1, p1, east, west = [], [], [], []
        for r in range(rounds):
            lab.events("pe1"); lab.events("p1")

            def during():
                time.sleep(1)
                lab.link("pe1", "pe1-p1", False)
                time.sleep(1)
                lab.link("pe1", "pe1-p1", True)
                time.sleep(1.5)
                return {"pe1": lab.events("pe1"), "p1": lab.events("p1")}
            at_b, at_a, sent_a, sent_b, ev = T.run_both_ways(lab, work, 4, during)
            pe1 += T.switch_times(ev["pe1"], "to-p1")
            p1 += T.switch_times(ev["p1"], "to-pe1")
            east.append(T.losses(at_b, 1, sent_a))
            west.append(T.losses(at_a, 2, sent_b))
        print(f"{entries + 4} ILM entries at PE1 ({entries} via the protected next hop): switch at PE1 "
              f"{statistics.median(pe1)} µs [{min(pe1)}–{max(pe1)}], at P1 {statistics.median(p1)} µs "
              f"[{min(p1)}–{max(p1)}]; frames lost per failure A→B {east}, B→A {west}", flush=True)
    finally:
        lab.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="mg-prot-bench-") as tmp:
        run(0, args.rounds, tmp)
        run(args.entries, args.rounds, tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
