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
)

if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} Debian packages already installed"
  exit 0
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture; answer "no" without a prompt.
echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
