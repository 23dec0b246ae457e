#!/usr/bin/env bash
# Runs a command the way a fresh machine and a service with default limits see it (docs/agent.md, "Environment"):
#
#   scripts/restricted.sh [--limits] COMMAND [ARG...]
#
# - always: its own mount namespace with /sys/fs/bpf unmounted (a fresh machine has no bpffs, and `ip netns exec`
#   remounts /sys anyway), so nothing may depend on a bpffs;
# - with --limits also: CAP_IPC_LOCK and CAP_SYS_RESOURCE dropped from the bounding set and RLIMIT_MEMLOCK at
#   8 MiB (the default), so root behaves like a service without those capabilities (as root, `ulimit -l` alone
#   changes nothing: CAP_IPC_LOCK ignores the limit).
# The command's exit status is returned.
set -euo pipefail
limits=0
if [ "${1:-}" = "--limits" ]; then limits=1; shift; fi
[ $# -ge 1 ] || { sed -n 2,12p "$0"; exit 2; }
if [ "$limits" = 1 ]; then
  exec unshare --mount --propagation private -- /bin/sh -c '
    umount -l /sys/fs/bpf 2>/dev/null || true
    exec prlimit --memlock=8388608:8388608 capsh --drop=cap_ipc_lock,cap_sys_resource -- -c "exec \"\$0\" \"\$@\"" "$@"' \
    restricted "$@"
fi
exec unshare --mount --propagation private -- /bin/sh -c '
  umount -l /sys/fs/bpf 2>/dev/null || true
  exec "$@"' restricted "$@"
