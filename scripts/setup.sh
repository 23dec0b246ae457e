#!/usr/bin/env bash
# Installs every Debian package MPLSGate needs to build, test and run its demo.
# Idempotent: packages already present are left alone; apt-get update runs first.
set -euo pipefail

PACKAGES=(
  libpcap-dev      # CPcap: replay reads pcap/pcapng and writes pcap
  libbpf-dev       # CXDP: BPF object load, maps
  libxdp-dev       # CXDP: AF_XDP sockets (xsk.h) and program attach
  libnuma-dev      # CXDP: UMEM placement on the device's NUMA node
  clang            # bpf/: compiles the XDP steering program (-target bpf)
  llvm             # bpf/: llvm-objdump/strip for the BPF object
  tshark           # tests: the judge of wire format
  python3-scapy    # tests: builds expected frames independently of MPLSGate
  iproute2         # integration tests: netns, veth, vxlan
  ethtool          # integration tests: tx checksum offload off on veths
  iperf3           # integration tests / demo
  tcpdump          # integration tests: captures on veths
  jq               # scripts: reading JSON summaries
  iputils-ping     # integration tests: the host stack stays reachable while the agent forwards
  libcap2-bin      # integration tests: capsh drops capabilities to check the memlock error
  frr              # integration tests: FRR's bfdd and zebra, the BFD interop peer
  prometheus       # integration tests: a real Prometheus scrapes /metrics; promtool checks scrapes and deploy/ rules
  curl             # integration tests: HTTP requests to /metrics and Prometheus' API inside a namespace
  openvswitch-switch # Benchmarks/live: Open vSwitch's userspace datapath with afxdp ports, a DUT beside MPLSGate
)

if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} Debian packages already installed"
else
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # tshark asks whether non-root users may capture; answer "no" without a prompt.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "setup: done"
fi

# What the build, the tests and the agent assume of the machine (docs/agent.md, "Environment"): each hard
# requirement is checked and, when missing, named with its fix; soft ones are reported.
problems=0
need() {  # need "what" "fix" command...
  local what=$1 fix=$2; shift 2
  if ! "$@" >/dev/null 2>&1; then echo "setup: MISSING: $what -- $fix" >&2; problems=$((problems + 1)); fi
}
note() { echo "setup: note: $*"; }
need "/usr/bin/python3 with scapy (the tests call it by that path)" "apt-get install python3-scapy" \
  /usr/bin/python3 -c "import scapy.all"
need "clang that compiles BPF (bpf/steer.bpf.c)" "apt-get install clang libbpf-dev" \
  sh -c 'printf "%s\n" "#include <linux/bpf.h>" "#include <bpf/bpf_helpers.h>" \
         "SEC(\"xdp\") int p(struct xdp_md *c) { return XDP_PASS; }" \
         | clang -target bpf -O2 -I/usr/include/$(uname -m)-linux-gnu -x c -c -o /dev/null -'
need "AF_XDP sockets in the kernel (CONFIG_XDP_SOCKETS)" "use a kernel built with CONFIG_XDP_SOCKETS=y" \
  /usr/bin/python3 -c "import socket
try: socket.socket(44, socket.SOCK_RAW).close()
except PermissionError: pass  # present, but needs CAP_NET_RAW"
need "unshare, prlimit (the restricted test runs)" "apt-get install util-linux" sh -c "command -v unshare && command -v prlimit"
need "FRR's bfdd (the BFD interop test)" "apt-get install frr" test -x /usr/lib/frr/bfdd
need "prometheus and promtool (the metrics test and the alert rules)" "apt-get install prometheus" \
  sh -c "command -v prometheus && command -v promtool"
need "capsh (the restricted test runs drop capabilities)" "apt-get install libcap2-bin" command -v capsh
need "the kernel's BTF (the fast tier's refused-redirect counters, bpf/xmit_errors.bpf.c, and their tests)" \
  "use a kernel built with CONFIG_DEBUG_INFO_BTF=y" test -s /sys/kernel/btf/vmlinux
if [ "$(id -u)" -eq 0 ]; then
  ns="mgsetup-$$"
  if ip netns add "$ns" 2>/dev/null; then
    need "network namespaces with veth and VXLAN devices (the integration tests)" \
      "load the veth and vxlan modules (modprobe veth vxlan) or use a kernel with CONFIG_VETH and CONFIG_VXLAN" \
      sh -c "ip -n $ns link add v0 type veth peer name v1 && ip -n $ns link add vx0 type vxlan id 1 dstport 4789 dev v0"
    ip netns del "$ns" 2>/dev/null || true
  else
    echo "setup: MISSING: network namespaces (ip netns add) -- use a kernel with CONFIG_NET_NS and run as root" >&2
    problems=$((problems + 1))
  fi
fi
[ "$(nproc)" -ge 2 ] || note "$(nproc) CPU: the live benchmark needs 2 (generator and device under test on their own)"
thp=$(sed -n 's/.*\[\(.*\)\].*/\1/p' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || true)
[ "$thp" = never ] && note "transparent huge pages are off: large FIB tables run slower (echo madvise > /sys/kernel/mm/transparent_hugepage/enabled)"
mountpoint -q /sys/fs/bpf || note "no bpffs at /sys/fs/bpf: fine, nothing of MPLSGate needs one"
note "memlock limit $(ulimit -l) KiB$(grep -q '^CapEff:.*' /proc/self/status && capsh --has-p=cap_ipc_lock 2>/dev/null && echo ', ignored (CAP_IPC_LOCK held)' || echo ': a worker needs ports x --frames x 4 KiB of it')"
if [ "$problems" -gt 0 ]; then
  echo "setup: $problems requirement(s) missing (above)" >&2
  exit 1
fi
