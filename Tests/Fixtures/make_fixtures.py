#!/usr/bin/python3
"""Builds MPLSGate's table-driven test fixtures and the demo capture, independently of MPLSGate, with scapy.

Every expected output frame below is written from the RFCs and DESIGN.md §3 as scapy layers; nothing is recorded
from MPLSGate's output. Run: /usr/bin/python3 Tests/Fixtures/make_fixtures.py  (writes Tests/Fixtures/cases.json and
examples/sample.pcapng). The FIB and ports are examples/config.json and examples/fib.json.
"""
import json, os, struct, sys
from scapy.all import Ether, Dot1Q, IP, IPv6, UDP, TCP, ICMP, Raw, ARP, IPOption_RR, Padding
from scapy.contrib.mpls import MPLS
from scapy.layers.vxlan import VXLAN
from scapy.contrib.bfd import BFD

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Ports (examples/config.json)
MAC = {"core0": "02:00:00:00:00:01", "core1": "02:00:00:00:00:02", "dc0": "02:00:00:00:00:03", "vrf0": "02:00:00:00:00:04"}
# Next hops (examples/fib.json): name -> (port, mac)
NH = {"p1": ("core0", "02:aa:00:00:00:01"), "p2": ("core1", "02:aa:00:00:00:02"), "p3": ("core1", "02:aa:00:00:00:03"),
      "small": ("core0", "02:aa:00:00:00:04"), "jumbo": ("core1", "02:aa:00:00:00:05"),
      "vtep-nh": ("dc0", "02:bb:00:00:00:01"), "vtep-nh2": ("dc0", "02:bb:00:00:00:02"), "ce1": ("vrf0", "02:cc:00:00:00:01")}
PEER = "02:ee:00:00:00:99"          # whoever sends to us
VTEP_REMOTE_MAC = "02:bb:00:00:00:01"

cases = []


def L(label, ttl=64, s=0, tc=0):
    return MPLS(label=label, cos=tc, s=s, ttl=ttl)


def inner_frame(payload_len=18, dst="aa:bb:cc:00:00:02", src="aa:bb:cc:00:00:01"):
    """A tenant frame carried over a pseudowire or VXLAN."""
    return Ether(dst=dst, src=src) / IP(src="10.10.0.1", dst="10.10.0.2", ttl=63) / UDP(sport=1234, dport=5678) / Raw(b"x" * payload_len)


def ip4(dst="203.0.113.5", ttl=64, tos=0, src="192.168.1.10", payload=None, **kw):
    return IP(src=src, dst=dst, ttl=ttl, tos=tos, id=7, **kw) / (payload if payload is not None else UDP(sport=4000, dport=5000) / Raw(b"p" * 10))


def ip6(dst="2001:db8:100::5", hlim=64, tc=0, src="2001:db8:200::10"):
    return IPv6(src=src, dst=dst, hlim=hlim, tc=tc) / UDP(sport=4000, dport=5000) / Raw(b"q" * 10)


def on(port, frame_payload, etype=None, vlan=None):
    """A frame arriving on `port` from a peer."""
    e = Ether(dst=MAC[port], src=PEER)
    if vlan is not None:
        e = e / Dot1Q(vlan=vlan)
    return e / frame_payload


def out(nh, payload, vlan=None, etype=None):
    """A frame as MPLSGate must send it via next hop `nh`."""
    port, mac = NH[nh]
    e = Ether(dst=mac, src=MAC[port], type=etype) if etype else Ether(dst=mac, src=MAC[port])
    if vlan is not None:
        e = Ether(dst=mac, src=MAC[port]) / Dot1Q(vlan=vlan, type=etype) if etype else Ether(dst=mac, src=MAC[port]) / Dot1Q(vlan=vlan)
    return e / payload


def fwd(name, port, inp, expects, truncate=None):
    """expects: list of (nh-port, frame, mask) alternatives (ECMP); mask: [(offset, length)] bytes to ignore."""
    c = {"name": name, "port": port, "input": bytes(inp).hex(), "verdict": "forward",
         "expect": [{"port": p, "bytes": bytes(f).hex(), "mask": m} for (p, f, m) in expects]}
    if truncate is not None:
        c["truncate"] = truncate
    cases.append(c)


def one(nh, frame, mask=()):
    return [(NH[nh][0], frame, list(mask))]


def drop(name, port, inp, reason):
    cases.append({"name": name, "port": port, "input": bytes(inp).hex(), "verdict": "drop", "reason": reason})


def down(names):
    """Marks the case just added as run with these next hops down (liveness; replay and the live test skip it)."""
    cases[-1]["down"] = names


ETH = 14
MPLS_T = 0x8847

# ---- swap ---------------------------------------------------------------------------------------------------------
payload = ip4()
for ttl in (0, 1):
    drop(f"swap ttl {ttl} expires", "core0", on("core0", L(100, ttl=ttl, s=1) / payload), "ttlExpired")
fwd("swap ttl 2 -> 1, tc kept", "core0", on("core0", L(100, ttl=2, s=1, tc=5) / payload),
    one("p1", out("p1", L(200, ttl=1, s=1, tc=5) / payload)), truncate=ETH + 4)
fwd("swap ttl 64, S=0 kept, label below untouched", "core0", on("core0", L(100, ttl=64, s=0, tc=2) / L(999, ttl=9, s=1) / payload),
    one("p1", out("p1", L(200, ttl=63, s=0, tc=2) / L(999, ttl=9, s=1) / payload)))
fwd("swap label in the second ILM page to 1048575", "core0", on("core0", L(200000, ttl=10, s=1) / payload),
    one("p1", out("p1", L(1048575, ttl=9, s=1) / payload)))
fwd("swap + push: out stack of 2", "core0", on("core0", L(101, ttl=30, s=1, tc=1) / payload),
    one("p2", out("p2", L(201, ttl=29, tc=1) / L(301, ttl=29, s=1, tc=1) / payload)))
fwd("swap to 8 labels", "core0", on("core0", L(114, ttl=20, s=1) / payload),
    one("p2", out("p2", MPLS(label=2001, s=0, ttl=19) / MPLS(label=2002, s=0, ttl=19) / MPLS(label=2003, s=0, ttl=19)
                  / MPLS(label=2004, s=0, ttl=19) / MPLS(label=2005, s=0, ttl=19) / MPLS(label=2006, s=0, ttl=19)
                  / MPLS(label=2007, s=0, ttl=19) / MPLS(label=2008, s=1, ttl=19) / payload)))
stack16 = None
for i in range(16):
    l = MPLS(label=1001 + i, s=1 if i == 15 else 0, ttl=99)
    stack16 = l if stack16 is None else stack16 / l
fwd("swap to 16 labels", "core0", on("core0", L(108, ttl=100, s=1) / payload), one("jumbo", out("jumbo", stack16 / payload)))
fwd("swap out to a VLAN-tagged next hop", "core0", on("core0", L(109, ttl=5, s=1) / payload),
    one("p3", out("p3", L(209, ttl=4) / L(309, ttl=4, s=1) / payload, vlan=100, etype=MPLS_T)))
fwd("swap to explicit null (label 0) out", "core0", on("core0", L(113, ttl=5, s=1) / payload),
    one("p1", out("p1", L(0, ttl=4, s=1) / payload)))
fwd("VLAN-tagged input is accepted, tag removed", "core0", on("core0", L(100, ttl=9, s=1) / payload, vlan=7),
    one("p1", out("p1", L(200, ttl=8, s=1) / payload)))
tiny = IP(src="192.168.1.10", dst="203.0.113.5", ttl=9, id=7, proto=253) / Padding(b"\x00" * 22)
fwd("64-byte frame (60 + FCS): Ethernet padding kept after the labels", "core0",
    on("core0", L(100, ttl=9, s=1) / tiny), one("p1", out("p1", L(200, ttl=8, s=1) / tiny)))
big = ip4(payload=UDP(sport=1, dport=2) / Raw(b"j" * (9000 - 14 - 4 - 20 - 8)))
fwd("9000-byte frame swapped to 16 labels on a jumbo next hop", "core1",
    on("core1", L(108, ttl=100, s=1) / big), one("jumbo", out("jumbo", stack16 / big)))
drop("MTU exceeded after the rewrite", "core0", on("core0", L(111, ttl=9, s=1) / ip4(proto=253, payload=Raw(b"m" * 80))), "mtuExceeded")
fwd("MTU exactly met is forwarded", "core0", on("core0", L(111, ttl=9, s=1) / ip4(proto=253, payload=Raw(b"m" * 76))),
    one("small", out("small", L(211, ttl=8, s=1) / ip4(proto=253, payload=Raw(b"m" * 76)))))
drop("unknown label", "core0", on("core0", L(4242, ttl=9, s=1) / payload), "unknownLabel")
drop("ILM drop entry", "core0", on("core0", L(112, ttl=9, s=1) / payload), "fibDrop")
fwd("ECMP: swap via a group takes one of its members", "core0", on("core0", L(110, ttl=9, s=1) / payload),
    one("p1", out("p1", L(210, ttl=8, s=1) / payload)) + one("p2", out("p2", L(210, ttl=8, s=1) / payload)))

# A swap sends the labels below on untouched: a stack without S=1 before the frame's end or within 32 entries
# (Pipeline.maxLabelDepth) is dropped, never sent on for the next router to read the payload as labels.
cut2 = bytes(L(999, ttl=9, s=1))[:2]
drop("swap, stack cut inside the second label", "core0", on("core0", L(100, ttl=9, s=0) / Raw(cut2)), "noBottomOfStack")
drop("swap, stack cut inside the last label", "core0",
     on("core0", L(100, ttl=9, s=0) / L(500, ttl=9) / L(600, ttl=9) / Raw(bytes(L(700, ttl=9, s=1))[:3])), "noBottomOfStack")
drop("swap, stack ends at the frame's end with S=0", "core0", on("core0", L(100, ttl=9, s=0) / L(500, ttl=9)), "noBottomOfStack")
deep33 = L(100, ttl=9, s=0)
for i in range(32):
    deep33 = deep33 / L(500 + i, ttl=9, s=0)
drop("swap, a 33-entry stack without S=1", "core0", on("core0", deep33 / payload), "noBottomOfStack")
deep32_below = None
for i in range(31):
    l = L(500 + i, ttl=9, s=1 if i == 30 else 0)
    deep32_below = l if deep32_below is None else deep32_below / l
fwd("swap, a 32-entry stack with S=1 on the last entry", "core0", on("core0", L(100, ttl=9, s=0) / deep32_below / payload),
    one("p1", out("p1", L(200, ttl=8, s=0) / deep32_below / payload)))
drop("ECMP swap, stack cut inside the second label", "core0", on("core0", L(110, ttl=9, s=0) / Raw(cut2)), "noBottomOfStack")
drop("ECMP swap, a 33-entry stack without S=1", "core0",
     on("core0", L(110, ttl=9, s=0) / deep33.payload / payload), "noBottomOfStack")

# ---- PHP ------------------------------------------------------------------------------------------------------------
fwd("PHP (out [3]) with MPLS below: pop, uniform TTL to the exposed label", "core0",
    on("core0", L(102, ttl=20, s=0) / L(555, ttl=200, s=1, tc=3) / payload),
    one("p1", out("p1", L(555, ttl=19, s=1, tc=3) / payload)))
drop("PHP expecting MPLS below, but S=1", "core0", on("core0", L(102, ttl=20, s=1) / payload), "bosMismatch")
drop("PHP to MPLS, stack cut inside the second label", "core0", on("core0", L(102, ttl=20, s=0) / Raw(cut2)),
     "noBottomOfStack")
drop("PHP to MPLS, stack cut inside the last label", "core0",
     on("core0", L(102, ttl=20, s=0) / L(555, ttl=9) / Raw(bytes(L(556, ttl=9, s=1))[:3])), "noBottomOfStack")
drop("PHP to MPLS, a 33-entry stack without S=1", "core0",
     on("core0", L(102, ttl=20, s=0) / deep33.payload / payload), "noBottomOfStack")
fwd("PHP to IPv4, uniform: IP TTL = label TTL - 1", "core0", on("core0", L(103, ttl=20, s=1) / ip4(ttl=64)),
    one("ce1", out("ce1", ip4(ttl=19))))
fwd("PHP to IPv6, pipe: hop limit - 1", "core0", on("core0", L(115, ttl=20, s=1) / ip6(hlim=64)),
    one("ce1", out("ce1", ip6(hlim=63))))
drop("PHP to IPv4 expecting S=1, got S=0", "core0", on("core0", L(103, ttl=20, s=0) / L(1, ttl=1, s=1) / ip4()), "bosMismatch")

# ---- pop, pop to IP ---------------------------------------------------------------------------------------------
for ttl in (0, 1):
    drop(f"pop ttl {ttl} expires", "core0", on("core0", L(104, ttl=ttl) / L(100, ttl=50, s=1) / payload), "ttlExpired")
fwd("pop (uniform) then swap: TTL 2 -> exposed 1 -> swap expires", "core0",
    on("core0", L(104, ttl=3) / L(100, ttl=50, s=1) / payload),
    one("p1", out("p1", L(200, ttl=1, s=1) / payload)))
drop("pop (uniform) ttl 2 then swap sees ttl 1", "core0", on("core0", L(104, ttl=2) / L(100, ttl=50, s=1) / payload), "ttlExpired")
fwd("pop (pipe) keeps the exposed label's TTL", "core0", on("core0", L(116, ttl=3) / L(100, ttl=50, s=1) / payload),
    one("p1", out("p1", L(200, ttl=49, s=1) / payload)))
drop("pop with S=1 (nothing to look up)", "core0", on("core0", L(104, ttl=9, s=1) / payload), "bosMismatch")
for ttl in (0, 1):
    drop(f"pop to IP ttl {ttl} expires", "core0", on("core0", L(105, ttl=ttl, s=1) / ip4()), "ttlExpired")
fwd("pop to IPv4 uniform, ttl 2: IP TTL 1", "core0", on("core0", L(105, ttl=2, s=1) / ip4(ttl=64)),
    one("ce1", out("ce1", ip4(ttl=1))), truncate=ETH + 4 + 20)
fwd("pop to IPv4 pipe: IP TTL 64 -> 63, label TTL ignored", "core0", on("core0", L(106, ttl=2, s=1) / ip4(ttl=64)),
    one("ce1", out("ce1", ip4(ttl=63))))
drop("pop to IPv4 pipe with IP TTL 1", "core0", on("core0", L(106, ttl=9, s=1) / ip4(ttl=1)), "ttlExpired")
drop("pop to IP with S=0", "core0", on("core0", L(105, ttl=9, s=0) / L(100, ttl=9, s=1) / ip4()), "bosMismatch")
fwd("pop to IPv6 into VRF blue (uniform) -> FTN push via ECMP", "core0",
    on("core0", L(107, ttl=40, s=1) / ip6(hlim=64, tc=0xB8)),
    one("p1", out("p1", L(16003, ttl=39, s=1, tc=5) / ip6(hlim=39, tc=0xB8)))
    + one("p2", out("p2", L(16003, ttl=39, s=1, tc=5) / ip6(hlim=39, tc=0xB8))))
drop("pop to IPv4 with a malformed IP header", "core0", on("core0", L(105, ttl=9, s=1) / Raw(b"\x65" + b"\x00" * 30)), "malformed")

# ---- special labels -------------------------------------------------------------------------------------------
fwd("explicit null (0) at the top with S=1: IPv4 in the port's VRF (default) -> FTN", "core0",
    on("core0", L(0, ttl=30, s=1) / ip4(dst="198.18.1.1", ttl=64, tos=0x20)),
    one("p1", out("p1", L(16005, ttl=29, s=1, tc=1) / ip4(dst="198.18.1.1", ttl=29, tos=0x20))))
fwd("explicit null (0) at the top with S=0: pop, look up the next", "core0",
    on("core0", L(0, ttl=30, s=0) / L(100, ttl=9, s=1) / payload), one("p1", out("p1", L(200, ttl=8, s=1) / payload)))
drop("explicit null with TTL 1", "core0", on("core0", L(0, ttl=1, s=1) / ip4(dst="198.18.1.1")), "ttlExpired")
drop("IPv6 explicit null (2) with no IPv6 route", "core0", on("core0", L(2, ttl=30, s=1) / ip6()), "noRoute")
drop("explicit null with no route", "core0", on("core0", L(0, ttl=30, s=1) / ip4(dst="192.0.2.99")), "noRoute")
for lab, reason in ((1, "oam"), (13, "oam"), (14, "oam"), (3, "illegalLabel"), (4, "reservedLabel"), (5, "reservedLabel"),
                    (6, "reservedLabel"), (8, "reservedLabel"), (9, "reservedLabel"), (10, "reservedLabel"),
                    (11, "reservedLabel"), (12, "reservedLabel"), (15, "reservedLabel")):
    drop(f"special label {lab} at the top", "core0", on("core0", L(lab, ttl=9, s=0) / L(100, ttl=9, s=1) / payload), reason)
    drop(f"special label {lab} below a pop", "core0", on("core0", L(104, ttl=9) / L(lab, ttl=9, s=0) / L(100, ttl=9, s=1) / payload), reason)
drop("explicit null (0) below a pop is popped too, then IPv4 routed: no route", "core0",
     on("core0", L(104, ttl=9) / L(0, ttl=9, s=1) / ip4(dst="192.0.2.99")), "noRoute")
fwd("ELI (7) + entropy label at the top are popped", "core0",
    on("core0", L(7, ttl=0, s=0) / L(777777, ttl=0, s=0) / L(100, ttl=9, s=1) / payload),
    one("p1", out("p1", L(200, ttl=8, s=1) / payload)))
fwd("ELI + EL below a pop", "core0",
    on("core0", L(104, ttl=9) / L(7, ttl=0) / L(12345, ttl=0) / L(100, ttl=9, s=1) / payload),
    one("p1", out("p1", L(200, ttl=7, s=1) / payload)))
drop("ELI with S=1", "core0", on("core0", L(7, ttl=0, s=1) / payload), "bosMismatch")
drop("label 3 on the wire below", "core0", on("core0", L(104, ttl=9) / L(3, ttl=9, s=1) / payload), "illegalLabel")

# ---- port guard and non-MPLS ---------------------------------------------------------------------------------
for port in ("dc0", "vrf0"):
    drop(f"labeled frame on {port} (MPLS not enabled)", port, on(port, L(100, ttl=9, s=1) / payload), "mplsNotEnabled")
drop("ARP on a core port is for the host", "core0", on("core0", ARP(pdst="192.0.2.1")), "notForUs")
drop("IPv4 on a core port is for the host", "core0", on("core0", ip4()), "notForUs")
# BFD (RFC 5881) to core0's bfdAddresses (examples/config.json): control, for the agent's protection thread.
drop("BFD: IPv4 control packet on a core port", "core0",
     on("core0", IP(src="10.255.0.2", dst="10.255.0.1", ttl=255, tos=0xC0) / UDP(sport=49152, dport=3784)
        / BFD(sta=1, detect_mult=3, my_discriminator=7, your_discriminator=0)), "control")
drop("BFD: IPv6 link-local control packet on a core port, VLAN tagged", "core0",
     on("core0", IPv6(src="fe80::2", dst="fe80::1", hlim=255) / UDP(sport=49153, dport=3784)
        / BFD(sta=3, detect_mult=3, my_discriminator=7, your_discriminator=9), vlan=7), "control")
drop("UDP to another port on a core port is for the host", "core0",
     on("core0", IP(src="10.255.0.2", dst="10.255.0.1", ttl=255) / UDP(sport=49152, dport=3785) / payload), "notForUs")
drop("0x8848 (upstream-assigned) is not looked up", "core0", Ether(dst=MAC["core0"], src=PEER, type=0x8848) / L(100, ttl=9, s=1) / payload, "notForUs")
drop("frame to another MAC", "core0", Ether(dst="02:00:00:00:00:77", src=PEER) / L(100, ttl=9, s=1) / payload, "notForUs")

# ---- FTN (IP -> MPLS) -------------------------------------------------------------------------------------------
fwd("FTN push 2, uniform: IP TTL 64 -> 63, labels TTL 63, TC from DSCP", "vrf0",
    on("vrf0", ip4(ttl=64, tos=0xB8)),
    one("p1", out("p1", L(16001, ttl=63, tc=5) / L(24001, ttl=63, s=1, tc=5) / ip4(ttl=63, tos=0xB8))),
    truncate=ETH + 20)
fwd("FTN push 1, pipe, longer prefix wins: labels TTL 200 TC 3", "vrf0",
    on("vrf0", ip4(dst="203.0.113.200", ttl=64, tos=0xB8)),
    one("p2", out("p2", L(16002, ttl=200, s=1, tc=3) / ip4(dst="203.0.113.200", ttl=63, tos=0xB8))))
fwd("FTN TTL 2 -> 1", "vrf0", on("vrf0", ip4(ttl=2)),
    one("p1", out("p1", L(16001, ttl=1) / L(24001, ttl=1, s=1) / ip4(ttl=1))))
for ttl in (0, 1):
    drop(f"FTN IP TTL {ttl} expires", "vrf0", on("vrf0", ip4(ttl=ttl)), "ttlExpired")
fwd("FTN default route, zero labels: plain IP route", "vrf0", on("vrf0", ip4(dst="192.0.2.200", ttl=10)),
    one("p2", out("p2", ip4(dst="192.0.2.200", ttl=9))))
stack16f = None
for i in range(16):
    l = MPLS(label=3001 + i, s=1 if i == 15 else 0, ttl=255)
    stack16f = l if stack16f is None else stack16f / l
fwd("FTN push 16 labels, pipe", "vrf0", on("vrf0", ip4(dst="10.1.2.3", ttl=64)),
    one("jumbo", out("jumbo", stack16f / ip4(dst="10.1.2.3", ttl=63))))
fwd("FTN IPv6 push via ECMP, uniform", "vrf0", on("vrf0", ip6(hlim=10, tc=0x20)),
    one("p1", out("p1", L(16003, ttl=9, s=1, tc=1) / ip6(hlim=9, tc=0x20)))
    + one("p2", out("p2", L(16003, ttl=9, s=1, tc=1) / ip6(hlim=9, tc=0x20))))
drop("FTN IPv6 no route", "vrf0", on("vrf0", ip6(dst="2001:db8:999::1")), "noRoute")
drop("IPv4 to the host's own address", "vrf0", on("vrf0", ip4(dst="198.51.100.1")), "notForUs")
bad = bytearray(bytes(on("vrf0", ip4())))
bad[ETH + 10] ^= 0xFF
drop("IPv4 header checksum wrong", "vrf0", bytes(bad), "badIPChecksum")
drop("IPv4 total length beyond the frame", "vrf0", on("vrf0", IP(dst="203.0.113.5", len=200) / Raw(b"z" * 10)), "malformed")
fwd("IPv4 with options is routed, options kept", "vrf0",
    on("vrf0", IP(src="192.168.1.10", dst="203.0.113.5", ttl=9, id=7, options=[IPOption_RR(routers=["1.2.3.4"])], proto=253) / Raw(b"o" * 8)),
    one("p1", out("p1", L(16001, ttl=8) / L(24001, ttl=8, s=1)
                  / IP(src="192.168.1.10", dst="203.0.113.5", ttl=8, id=7, options=[IPOption_RR(routers=["1.2.3.4"])], proto=253) / Raw(b"o" * 8))))
fwd("Ethernet padding after a short IPv4 packet is trimmed", "vrf0",
    Ether(dst=MAC["vrf0"], src=PEER, type=0x0800) / Raw(bytes(IP(src="192.168.1.10", dst="192.0.2.200", ttl=9, id=7, proto=253)) + b"\xab" * 40),
    one("p2", out("p2", IP(src="192.168.1.10", dst="192.0.2.200", ttl=8, id=7, proto=253))))

# ---- VXLAN -> MPLS ------------------------------------------------------------------------------------------------
inner = inner_frame()
def vx_in(vni, src="192.0.2.2", dst="192.0.2.1", flags=0x08, inner=inner, sport=55555, dport=4789, **ipkw):
    return on("dc0", IP(src=src, dst=dst, ttl=64, id=1, **ipkw) / UDP(sport=sport, dport=dport, chksum=0) / VXLAN(vni=vni, flags=flags) / inner)

fwd("VXLAN -> MPLS, no control word: push transport + service (S=1), TTL 255", "dc0", vx_in(5000),
    one("p1", out("p1", L(16001, ttl=255) / L(1000, ttl=255, s=1) / inner)), truncate=ETH + 20 + 8 + 8 + 14)
fwd("VXLAN -> MPLS, 3 labels + control word, TC 5 TTL 64", "dc0", vx_in(5002),
    one("p2", out("p2", L(16001, ttl=64, tc=5) / L(17001, ttl=64, tc=5) / L(1002, ttl=64, s=1, tc=5) / Raw(b"\x00" * 4) / inner)))
fwd("VXLAN with every reserved bit set is accepted (RFC 7348: ignored)", "dc0",
    on("dc0", IP(src="192.0.2.2", dst="192.0.2.1", ttl=64, id=1) / UDP(sport=55555, dport=4789, chksum=0)
       / Raw(b"\xff\xff\xff\xff" + (5000).to_bytes(3, "big") + b"\xff") / inner),
    one("p1", out("p1", L(16001, ttl=255) / L(1000, ttl=255, s=1) / inner)))
drop("VXLAN with the I flag clear", "dc0", vx_in(5000, flags=0x00), "vxlanNoIFlag")
drop("VXLAN from a VTEP not allowed for the VNI", "dc0", vx_in(5000, src="192.0.2.3"), "vtepNotAllowed")
fwd("VXLAN from a second allowed VTEP", "dc0", vx_in(5002, src="192.0.2.3"),
    one("p2", out("p2", L(16001, ttl=64, tc=5) / L(17001, ttl=64, tc=5) / L(1002, ttl=64, s=1, tc=5) / Raw(b"\x00" * 4) / inner)))
drop("VXLAN with an unknown VNI", "dc0", vx_in(4242), "unknownVNI")
drop("VXLAN to another address is for the host", "dc0", vx_in(5000, dst="192.0.2.77"), "notForUs")
drop("VXLAN on another UDP port is for the host", "dc0", vx_in(5000, dport=8472), "notForUs")
drop("underlay fragment (MF set)", "dc0", vx_in(5000, flags=0x08, **{"flags": 0}) if False else
     on("dc0", IP(src="192.0.2.2", dst="192.0.2.1", ttl=64, id=1, flags="MF") / UDP(sport=5, dport=4789, chksum=0) / VXLAN(vni=5000) / inner),
     "underlayFragment")
drop("underlay non-first fragment", "dc0",
     on("dc0", IP(src="192.0.2.2", dst="192.0.2.1", ttl=64, id=1, frag=100, proto=17) / Raw(b"f" * 40)), "underlayFragment")
fwd("underlay IPv4 with options", "dc0",
    on("dc0", IP(src="192.0.2.2", dst="192.0.2.1", ttl=64, id=1, options=[IPOption_RR(routers=["1.2.3.4"])])
       / UDP(sport=5, dport=4789, chksum=0) / VXLAN(vni=5000) / inner),
    one("p1", out("p1", L(16001, ttl=255) / L(1000, ttl=255, s=1) / inner)))
bad = bytearray(bytes(vx_in(5000)))
bad[ETH + 10] ^= 0x01
drop("underlay IPv4 checksum wrong", "dc0", bytes(bad), "badIPChecksum")
drop("VXLAN inner frame shorter than Ethernet", "dc0", vx_in(5000, inner=Raw(b"\x01" * 10)), "tooShort")
inner6 = inner_frame(dst="aa:bb:cc:00:00:06")
fwd("VXLAN over IPv6 underlay -> MPLS with control word via ECMP", "dc0",
    on("dc0", IPv6(src="2001:db8::2", dst="2001:db8::1", hlim=64) / UDP(sport=5, dport=4789) / VXLAN(vni=5001) / inner6),
    one("p1", out("p1", L(16002, ttl=255) / L(1001, ttl=255, s=1) / Raw(b"\x00" * 4) / inner6))
    + one("p2", out("p2", L(16002, ttl=255) / L(1001, ttl=255, s=1) / Raw(b"\x00" * 4) / inner6)))
drop("VXLAN over IPv6 from a VTEP not allowed", "dc0",
     on("dc0", IPv6(src="2001:db8::9", dst="2001:db8::1", hlim=64) / UDP(sport=5, dport=4789) / VXLAN(vni=5001) / inner6),
     "vtepNotAllowed")
fwd("VXLAN -> MPLS with a 9000-byte frame is refused by a 1500 MTU next hop", "dc0", vx_in(5000), one("p1", out("p1", L(16001, ttl=255) / L(1000, ttl=255, s=1) / inner)))
cases.pop()  # (placeholder above replaced by the real MTU case below)
jumbo_inner = Ether(dst="aa:bb:cc:00:00:02", src="aa:bb:cc:00:00:01") / IP(src="10.10.0.1", dst="10.10.0.2") / Raw(b"J" * 1500)
drop("VXLAN -> MPLS over the next hop's MTU is dropped, never fragmented", "dc0", vx_in(5000, inner=jumbo_inner), "mtuExceeded")

# ---- MPLS -> VXLAN --------------------------------------------------------------------------------------------------
SPORT = [(ETH + 20, 2)]                 # UDP source port: hash of the inner frame (checked for range by the tests)
def vx_out4(vni, inner, dst="192.0.2.2", ttl=64):
    return out("vtep-nh", IP(src="192.0.2.1", dst=dst, ttl=ttl, id=0, flags="DF") / UDP(sport=49152, dport=4789, chksum=0)
               / VXLAN(vni=vni, flags=0x08) / inner)
fwd("MPLS -> VXLAN (IPv4 underlay), no control word", "core0", on("core0", L(1000, ttl=64, s=1) / inner),
    one("vtep-nh", vx_out4(5000, inner), SPORT), truncate=ETH + 4 + 14)
fwd("MPLS -> VXLAN with control word stripped, outer TTL 32", "core0",
    on("core0", L(1002, ttl=64, s=1) / Raw(b"\x00\x00\x00\x00") / inner),
    one("vtep-nh", vx_out4(5002, inner, dst="192.0.2.3", ttl=32), SPORT), truncate=ETH + 4 + 4 + 14)
fwd("MPLS -> VXLAN under a transport label popped first", "core0",
    on("core0", L(104, ttl=64) / L(1000, ttl=64, s=1) / inner), one("vtep-nh", vx_out4(5000, inner), SPORT))
drop("pseudowire control word with first nibble 1", "core0",
     on("core0", L(1002, ttl=64, s=1) / Raw(b"\x10\x00\x00\x00") / inner), "badControlWord")
fwd("no control word: the inner frame is never stripped, even if it starts with 0", "core0",
    on("core0", L(1000, ttl=64, s=1) / inner_frame(dst="00:bb:cc:00:00:02")),
    one("vtep-nh", vx_out4(5000, inner_frame(dst="00:bb:cc:00:00:02")), SPORT))
drop("pseudowire label with TTL 1 is VCCV (OAM)", "core0", on("core0", L(1000, ttl=1, s=1) / inner), "oam")
drop("pseudowire label with TTL 0", "core0", on("core0", L(1000, ttl=0, s=1) / inner), "ttlExpired")
drop("pseudowire label with S=0", "core0", on("core0", L(1000, ttl=9, s=0) / L(5, ttl=9, s=1) / inner), "bosMismatch")
fwd("MPLS -> VXLAN over IPv6 underlay (UDP checksum computed)", "core0",
    on("core0", L(1001, ttl=64, s=1) / Raw(b"\x00" * 4) / inner),
    one("vtep-nh", out("vtep-nh", IPv6(src="2001:db8::1", dst="2001:db8::2", hlim=64) / UDP(sport=49152, dport=4789)
                       / VXLAN(vni=5001, flags=0x08) / inner), [(ETH + 40, 2), (ETH + 40 + 6, 2)]))

# ---- malformed / truncated -----------------------------------------------------------------------------------------
drop("empty frame", "core0", b"", "tooShort")
drop("13-byte frame", "core0", bytes(on("core0", Raw(b"")))[:13], "tooShort")
drop("Ethernet header only, MPLS type", "core0", bytes(Ether(dst=MAC["core0"], src=PEER, type=0x8847)), "tooShort")

# ---- protection: next hops down (liveness), backups, group second choices ------------------------------------------
# examples/fib.json: p1 (core0) has backup p2 (core1); small (core0) has backup the group core-ecmp [p1, p2]; p3 has
# none. ILM 100 writes backupOut [250] while p1 is down; VNI 5000 and FTN 203.0.113.0/24 push their backupPush.
fwd("protection: swap while its next hop is down takes the backup with backupOut", "core0",
    on("core0", L(100, ttl=9, s=1, tc=4) / payload), one("p2", out("p2", L(250, ttl=8, s=1, tc=4) / payload)))
down(["p1"])
drop("protection: primary and backup both down", "core0", on("core0", L(100, ttl=9, s=1) / payload), "nextHopDown")
down(["p1", "p2"])
drop("protection: a down next hop without a backup", "core0", on("core0", L(109, ttl=5, s=1) / payload), "nextHopDown")
down(["p3"])
fwd("protection: ECMP member down, its flows go to the second choice", "core0", on("core0", L(110, ttl=9, s=1) / payload),
    one("p2", out("p2", L(210, ttl=8, s=1) / payload)))
down(["p1"])
fwd("protection: PHP to MPLS while its next hop is down (no backup labels: the label below goes on)", "core0",
    on("core0", L(102, ttl=20, s=0) / L(555, ttl=200, s=1, tc=3) / payload),
    one("p2", out("p2", L(555, ttl=19, s=1, tc=3) / payload)))
down(["p1"])
fwd("protection: a next hop whose backup is a group", "core0",
    on("core0", L(111, ttl=9, s=1) / ip4(proto=253, payload=Raw(b"m" * 40))),
    one("p1", out("p1", L(211, ttl=8, s=1) / ip4(proto=253, payload=Raw(b"m" * 40))))
    + one("p2", out("p2", L(211, ttl=8, s=1) / ip4(proto=253, payload=Raw(b"m" * 40)))))
down(["small"])
fwd("protection: a backup group's down member is replaced by its second choice", "core0",
    on("core0", L(111, ttl=9, s=1) / ip4(proto=253, payload=Raw(b"m" * 40))),
    one("p2", out("p2", L(211, ttl=8, s=1) / ip4(proto=253, payload=Raw(b"m" * 40)))))
down(["small", "p1"])
fwd("protection: VXLAN -> MPLS while the next hop is down pushes backupPush", "dc0", vx_in(5000),
    one("p2", out("p2", L(16501, ttl=255) / L(1000, ttl=255, s=1) / inner)))
down(["p1"])
fwd("protection: FTN push while the next hop is down pushes backupPush", "vrf0", on("vrf0", ip4(ttl=64, tos=0xB8)),
    one("p2", out("p2", L(16601, ttl=63, tc=5) / L(24001, ttl=63, s=1, tc=5) / ip4(ttl=63, tos=0xB8))))
down(["p1"])

# ---- multipoint VNI 6000 (RFC 4762 at the RFC 9014 gateway): sites dc2 (p1, control word) and dc3 (p2), local VTEPs
# 192.0.2.2 (vtep-nh) and 192.0.2.3 (vtep-nh2); static MACs 06:02 at dc2, 06:03 at dc3, 06:11 at .2, 06:12 at .3.
def flood(name, port, inp, copies):
    """A broadcast/multicast/unknown-unicast frame: one copy per place across the split horizon, in place order."""
    cases.append({"name": name, "port": port, "input": bytes(inp).hex(), "verdict": "flood",
                  "copies": [{"port": p, "bytes": bytes(f).hex(), "mask": list(m)} for (p, f, m) in copies]})
def mp_inner(dst, src="aa:bb:cc:00:06:11"):
    return Ether(dst=dst, src=src) / IP(src="10.60.0.1", dst="10.60.0.2", ttl=63) / UDP(sport=1234, dport=5678) / Raw(b"m" * 18)
def to_dc2(inner):
    return ("core0", out("p1", L(16001, ttl=255) / L(2002, ttl=255, s=1) / Raw(b"\x00" * 4) / inner), [])
def to_dc3(inner):
    return ("core1", out("p2", L(16002, ttl=255) / L(2003, ttl=255, s=1) / inner), [])
def to_vtep(inner, nh, dst):
    return ("dc0", out(nh, IP(src="192.0.2.1", dst=dst, ttl=64, id=0, flags="DF") / UDP(sport=49152, dport=4789, chksum=0)
                       / VXLAN(vni=6000, flags=0x08) / inner), SPORT)
def from_dc2(inner):
    return on("core0", L(2102, ttl=64, s=1) / Raw(b"\x00" * 4) / inner)
def from_dc3(inner):
    return on("core1", L(2103, ttl=64, s=1) / inner)
i = mp_inner("aa:bb:cc:00:06:02")
fwd("multipoint: known unicast from a local VTEP to its site (control word)", "dc0", vx_in(6000, inner=i), [to_dc2(i)],
    truncate=ETH + 20 + 8 + 8 + 14)
i = mp_inner("aa:bb:cc:00:06:03", src="aa:bb:cc:00:06:12")
fwd("multipoint: known unicast from a local VTEP to a site without control word", "dc0", vx_in(6000, src="192.0.2.3", inner=i), [to_dc3(i)])
i = mp_inner("aa:bb:cc:00:06:12", src="aa:bb:cc:00:06:02")
fwd("multipoint: known unicast from a site's pseudowire to its local VTEP", "core0", from_dc2(i),
    [to_vtep(i, "vtep-nh2", "192.0.2.3")], truncate=ETH + 4 + 4 + 14)
i = mp_inner("aa:bb:cc:00:06:11", src="aa:bb:cc:00:06:03")
fwd("multipoint: known unicast from a site without control word to its local VTEP", "core1", from_dc3(i),
    [to_vtep(i, "vtep-nh", "192.0.2.2")])
drop("multipoint split horizon: a local VTEP's frame for another local VTEP", "dc0",
     vx_in(6000, inner=mp_inner("aa:bb:cc:00:06:12")), "splitHorizon")
drop("multipoint split horizon: a site's frame for another site", "core0",
     from_dc2(mp_inner("aa:bb:cc:00:06:03", src="aa:bb:cc:00:06:02")), "splitHorizon")
drop("multipoint: a source that is a static MAC of another place (06:02 is at dc2, this comes from dc3)", "core1",
     from_dc3(mp_inner("aa:bb:cc:00:06:11", src="aa:bb:cc:00:06:02")), "staticMACMoved")
drop("multipoint: a local VTEP's frame whose source is a static MAC of another VTEP", "dc0",
     vx_in(6000, src="192.0.2.3", inner=mp_inner("aa:bb:cc:00:06:02")), "staticMACMoved")
drop("multipoint: VXLAN from a VTEP that is not the VNI's", "dc0", vx_in(6000, src="192.0.2.9", inner=mp_inner("aa:bb:cc:00:06:02")),
     "vtepNotAllowed")
drop("multipoint: a pseudowire label whose VNI is point-to-point", "core0",
     on("core0", L(2104, ttl=64, s=1) / Raw(b"\x00" * 4) / mp_inner("aa:bb:cc:00:06:12")), "unknownVNI")
i = Ether(dst="ff:ff:ff:ff:ff:ff", src="aa:bb:cc:00:06:11") / ARP(hwsrc="aa:bb:cc:00:06:11", psrc="10.60.0.1", pdst="10.60.0.2")
flood("multipoint flood: a local VTEP's broadcast goes to every site", "dc0", vx_in(6000, inner=i), [to_dc2(i), to_dc3(i)])
i = mp_inner("aa:bb:cc:00:06:99")
flood("multipoint flood: unknown unicast from a local VTEP goes to every site", "dc0", vx_in(6000, inner=i), [to_dc2(i), to_dc3(i)])
i = mp_inner("01:00:5e:00:00:01")
flood("multipoint flood: multicast from a local VTEP goes to every site", "dc0", vx_in(6000, inner=i), [to_dc2(i), to_dc3(i)])
i = Ether(dst="ff:ff:ff:ff:ff:ff", src="aa:bb:cc:00:06:03") / ARP(hwsrc="aa:bb:cc:00:06:03", psrc="10.60.0.3", pdst="10.60.0.1")
flood("multipoint flood: a site's broadcast goes to every local VTEP, never to another site", "core1", from_dc3(i),
      [to_vtep(i, "vtep-nh", "192.0.2.2"), to_vtep(i, "vtep-nh2", "192.0.2.3")])
i = mp_inner("aa:bb:cc:00:06:98", src="aa:bb:cc:00:06:02")
flood("multipoint flood: unknown unicast from a site goes to every local VTEP", "core0", from_dc2(i),
      [to_vtep(i, "vtep-nh", "192.0.2.2"), to_vtep(i, "vtep-nh2", "192.0.2.3")])

# ---- MAC learning on VNI 6000 (RFC 4762 §4, RFC 7432 §15.1): sequences replayed with `mplsgate replay --batch N`,
# capture time as the clock. Each frame lists what must come out of it, in order ([] : nothing, e.g. a frame whose
# destination is a known MAC on its own side); `learning` overrides the VNI's learning settings in the lab FIB.
# A learn takes effect at the end of the batch that carried it; aging and the duplicate hold are applied when a batch
# starts in a later second than the last. Hosts: 0a:xx (not static MACs).
scenarios = []
def scenario(name, frames, counters, batch=1, learning=None, macs=None):
    scenarios.append({"name": name, "batch": batch, "learning": learning or {},
                      "frames": [{"second": t, "port": bytes(f).hex() and port, "input": bytes(f).hex(),
                                  "outputs": [{"port": p, "bytes": bytes(o).hex(), "mask": list(m)} for (p, o, m) in outs]}
                                 for (t, port, f, outs) in frames],
                      "counters": counters, "macs": macs})
A, B, C, D = "0a:00:00:00:00:0a", "0a:00:00:00:00:0b", "0a:00:00:00:00:0c", "0a:00:00:00:00:0d"
def vtep2(dst, src):   # from local VTEP 192.0.2.2
    return ("dc0", vx_in(6000, inner=mp_inner(dst, src=src)), mp_inner(dst, src=src))
def vtep3(dst, src):   # from local VTEP 192.0.2.3
    return ("dc0", vx_in(6000, src="192.0.2.3", inner=mp_inner(dst, src=src)), mp_inner(dst, src=src))
def dc2(dst, src):
    i = mp_inner(dst, src=src)
    return ("core0", from_dc2(i), i)
def dc3(dst, src):
    i = mp_inner(dst, src=src)
    return ("core1", from_dc3(i), i)
def at(t, frm, outs):
    port, f, i = frm
    return (t, port, f, [o(i) for o in outs])
SITES = [to_dc2, to_dc3]
def V2(i): return to_vtep(i, "vtep-nh", "192.0.2.2")
def V3(i): return to_vtep(i, "vtep-nh2", "192.0.2.3")
VTEPS = [V2, V3]

scenario("an unknown source floods at once and is learned at the end of its batch; then it is known unicast", [
    at(0, vtep2(BCAST := "ff:ff:ff:ff:ff:ff", A), SITES),
    at(0, dc2(A, B), [V2]),                      # A learned behind VTEP .2; B learned behind dc2
    at(0, vtep2(B, A), [to_dc2]),                # B known at dc2
], {"learned": 2, "learnedMACs": 2, "unicast": 2, "flooded": 1})
scenario("within one batch the learn is not yet visible: the second frame still floods", [
    at(0, vtep2(BCAST, A), SITES),
    at(0, dc2(A, B), [V2, V3]),
    at(0, vtep3(B, C), [to_dc2]),                # batch 2: B learned at the end of batch 1
], {"learned": 3, "learnedMACs": 3, "unicast": 1, "flooded": 2}, batch=2)
scenario("a site's source is learned behind that site; split horizon applies to learned MACs", [
    at(0, dc3(BCAST, C), VTEPS),
    at(0, vtep2(C, A), [to_dc3]),
    at(0, dc2(C, B), []),                        # C is at dc3: a site's frame for another site is split horizon
], {"learned": 3, "unicast": 1, "flooded": 1, "splitHorizon": 1})
scenario("group source MACs are never learned", [
    at(0, vtep2(BCAST, "01:00:5e:00:00:07"), SITES),
    at(0, dc2("01:00:5e:00:00:07", B), [V2, V3]),
], {"learned": 1, "learnedMACs": 1, "flooded": 2})
scenario("a move takes effect at once: A from VTEP .2 to dc3 and back to VTEP .3", [
    at(0, vtep2(BCAST, A), SITES),
    at(1, dc3(BCAST, A), VTEPS),                 # moved to dc3
    at(2, vtep2(A, B), [to_dc3]),
    at(3, vtep3(BCAST, A), SITES),               # moved to VTEP .3
    at(4, dc2(A, D), [V3]),
], {"learned": 3, "moved": 2, "learnedMACs": 3})
flap = []
for k in range(7):                               # A between dc2 and dc3 every second: moves 1..6
    flap.append(at(k, dc2(BCAST, A) if k % 2 == 0 else dc3(BCAST, A), VTEPS))
flap.append(at(8, vtep2(A, B), [to_dc3]))        # frozen at dc3, where the 5th move put it
flap.append(at(9, dc2(BCAST, A), VTEPS))         # seen at dc2 again: still frozen, no move
flap.append(at(10, vtep2(A, B), [to_dc3]))
flap.append(at(70, dc2(BCAST, A), VTEPS))        # hold (60 s) over at 66: free again, this is a move
flap.append(at(71, vtep2(A, B), [to_dc2]))
scenario("more than moveLimit moves within the window freeze the MAC where it was (RFC 7432 §15.1)", flap,
         {"learned": 2, "moved": 6, "duplicate": 1}, learning={"moveLimit": 5, "moveWindowSeconds": 180, "holdSeconds": 60})
scenario("aging: a MAC not refreshed for agingSeconds disappears; a refreshed one stays", [
    at(0, vtep2(BCAST, A), SITES),
    at(0, vtep2(BCAST, C), SITES),
    at(20, vtep2(BCAST, C), SITES),              # C refreshed at 20
    at(25, dc2(C, B), [V2]),
    at(31, dc2(A, B), [V2, V3]),                 # A (last seen 0) aged out at 30: floods
    at(32, dc2(C, B), [V2]),                     # C (last seen 20) still known
], {"learned": 3, "refreshed": 3, "aged": 1}, learning={"agingSeconds": 30})
scenario("the VNI's MAC limit: further sources are not learned and their frames flood", [
    at(0, vtep2(BCAST, A), SITES),
    at(0, vtep2(BCAST, B), SITES),
    at(0, vtep2(BCAST, C), SITES),               # over the limit of 2
    at(1, dc2(C, D), [V2, V3]),                  # C unknown: floods
    at(1, dc2(A, D), [V2]),                      # A still known
], {"learned": 2, "overLimit": 1, "learnedMACs": 2}, learning={"macLimit": 2})   # C; then the VNI is full: D is not posted
scenario("learning off: sources are neither learned nor checked", [
    at(0, vtep2(BCAST, A), SITES),
    at(1, dc2(A, B), [V2, V3]),
    at(2, dc3(BCAST, "aa:bb:cc:00:06:02"), VTEPS),   # a static MAC of dc2 from dc3: not checked
], {"flooded": 3}, learning={"enabled": False})

os.makedirs(os.path.join(ROOT, "Tests", "Fixtures"), exist_ok=True)
with open(os.path.join(ROOT, "Tests", "Fixtures", "learning.json"), "w") as f:
    json.dump({"generatedBy": "Tests/Fixtures/make_fixtures.py (scapy)", "vni": 6000, "scenarios": scenarios}, f, indent=1)
    f.write("\n")
with open(os.path.join(ROOT, "Tests", "Fixtures", "cases.json"), "w") as f:
    json.dump({"generatedBy": "Tests/Fixtures/make_fixtures.py (scapy)", "cases": cases}, f, indent=1)
    f.write("\n")

# ---- the demo capture: every case's input, on its ingress interface (pcapng, one interface per port) --------------
ports = ["core0", "core1", "dc0", "vrf0"]
def block(btype, body):
    pad = (-len(body)) % 4
    total = 12 + len(body) + pad
    return struct.pack("<II", btype, total) + body + b"\x00" * pad + struct.pack("<I", total)
def opt(code, value):
    return struct.pack("<HH", code, len(value)) + value + b"\x00" * ((-len(value)) % 4)
shb = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + opt(4, b"make_fixtures.py") + opt(0, b""))
idbs = b"".join(block(1, struct.pack("<HHI", 1, 0, 65535) + opt(2, p.encode()) + opt(0, b"")) for p in ports)
epbs = b""
t = 1_764_000_000 * 1_000_000
for i, c in enumerate(c for c in cases if "down" not in c):
    data = bytes.fromhex(c["input"])
    ts = t + i * 1000
    epbs += block(6, struct.pack("<IIIII", ports.index(c["port"]), ts >> 32, ts & 0xFFFFFFFF, len(data), len(data)) + data)
with open(os.path.join(ROOT, "examples", "sample.pcapng"), "wb") as f:
    f.write(shb + idbs + epbs)
print(f"{len(cases)} cases: {sum(c['verdict'] == 'forward' for c in cases)} forward, "
      f"{sum(c['verdict'] == 'drop' for c in cases)} drop, {sum(c['verdict'] == 'flood' for c in cases)} flood", file=sys.stderr)
