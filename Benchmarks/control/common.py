"""What the control-plane benchmarks share (program.py, commit.py)."""
import json
import time


def proc_field(pid, name, field):
    """A numeric field of /proc/PID/NAME (status: "VmRSS:" in KiB; io: "wchar:" in bytes)."""
    for line in open(f"/proc/{pid}/{name}"):
        if line.startswith(field):
            return int(line.split()[1])
    return 0


def resync(rpc, kind, chunks, next_hop):
    """One resync of pre-serialised chunks (each the JSON value of the `kind` section), `next_hop` sent with the
    first. Returns (seconds, longest reply, seconds of resync.end, its reply)."""
    start = time.time()
    longest = 0.0
    sess = rpc.result("resync.begin")["session"]
    for i, chunk in enumerate(chunks):
        body = '{"jsonrpc":"2.0","id":1,"method":"resync.chunk","params":{"session":"%s","nextHops":[%s],"%s":%s}}\n' % (
            sess, json.dumps(next_hop) if i == 0 else "", kind, chunk)
        t = time.time()
        rpc.send_raw(body.encode())
        r = rpc.read_line()
        longest = max(longest, time.time() - t)
        assert "result" in r, r
    t = time.time()
    end = rpc.result("resync.end", {"session": sess})
    end_seconds = time.time() - t
    return time.time() - start, max(longest, end_seconds), end_seconds, end
