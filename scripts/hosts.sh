#!/usr/bin/env bash
# Test hosts on one machine: N network namespaces (dlc-h0, dlc-h1, ...; 10.77.0.10+i) joined by
# veth pairs to a bridge (dlc-br, 10.77.0.1), each link rate-limited both ways with tc's tbf.
#
#   scripts/hosts.sh up N [--gbps G]     make them (replacing any from before); G: link rate
#   scripts/hosts.sh down                remove them
#   scripts/hosts.sh mpirun-args         the mpirun options that start one rank per host
#   scripts/hosts.sh probe ADDRESS       succeeds when the host answers over its link
#
# This kernel has no netem, so latency stays with `diloco train --wan-latency-ms`. mpirun reaches
# the hosts without sshd through scripts/netns-rsh (`ip netns exec` with a hostname of its own,
# h0, h1, ..., so that `--islands host` makes one island per namespace). Needs root.
set -euo pipefail

readonly bridge=dlc-br subnet=10.77.0 prefix=dlc-h
here=$(cd "$(dirname "$0")" && pwd)

host_address() { echo "$subnet.$((10 + $1))"; }

down() {
  for ns in $(ip netns list | awk '{print $1}' | grep "^$prefix[0-9]*$" || true); do
    ip link del "$ns" 2>/dev/null || true  # the root end; its peer goes with it
    ip netns del "$ns"
  done
  ip link del "$bridge" 2>/dev/null || true
}

# Token bucket on an interface's egress: rate G Gbit/s, a burst of 1 ms of traffic (at least
# 64 KiB, so that one TSO segment passes) and at most 50 ms queued before drops.
shape() {  # netns-or-empty interface gbps
  local exec=() burst
  [[ -n $1 ]] && exec=(ip netns exec "$1")
  burst=$(awk -v g="$3" 'BEGIN { b = g * 1e9 / 8 / 1000; print (b < 65536 ? 65536 : int(b)) }')
  "${exec[@]}" tc qdisc replace dev "$2" root tbf rate "${3}gbit" burst "$burst" latency 50ms
}

up() {  # n gbps
  local n=$1 gbps=$2 i ns
  [[ $n =~ ^[0-9]+$ && $n -ge 1 && $n -le 200 ]] ||
    { echo "hosts.sh: up N: N must be 1 to 200, got '$n'" >&2; exit 2; }
  [[ -z $gbps || $(awk -v g="$gbps" 'BEGIN { print (g ~ /^[0-9]+(\.[0-9]+)?$/ && g > 0) }') == 1 ]] ||
    { echo "hosts.sh: --gbps '$gbps': expected a positive rate in Gbit/s" >&2; exit 2; }
  down
  ip link add "$bridge" type bridge
  ip addr add "$subnet.1/24" dev "$bridge"
  ip link set "$bridge" up
  for ((i = 0; i < n; i++)); do
    ns=$prefix$i
    ip netns add "$ns"
    ip link add "$ns" type veth peer name eth0 netns "$ns"
    ip link set "$ns" master "$bridge" up
    ip -n "$ns" addr add "$(host_address "$i")/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
    ip -n "$ns" route add default via "$subnet.1"
    if [[ -n $gbps ]]; then
      shape "$ns" eth0 "$gbps"  # the host's upload
      shape "" "$ns" "$gbps"    # its download
    fi
  done
  echo "hosts.sh: $n hosts ${prefix}0..$prefix$((n - 1)) at $(host_address 0).., links ${gbps:-unlimited}${gbps:+ Gbit/s}"
}

# A TCP connection to a port where nothing listens: "refused" comes back over a working link,
# silence (or no route) over a cut one.
probe() {
  local why
  why=$(timeout 1 bash -c "exec 3<>/dev/tcp/$1/9" 2>&1) && return 0
  [[ $why == *refused* ]]
}

mpirun_args() {
  local hosts=() ns
  for ns in $(ip netns list | awk '{print $1}' | grep "^$prefix[0-9]*$" | sort -V); do
    hosts+=("$(host_address "${ns#"$prefix"}")")
  done
  [[ ${#hosts[@]} -gt 0 ]] || { echo "hosts.sh: no hosts are up (hosts.sh up N)" >&2; exit 1; }
  local IFS=,
  # routed direct: every daemon talks to mpirun itself, so none needs to reach another's sshd;
  # TCP only, and only on the bridge's subnet, so that no byte goes around the links.
  echo "--mca plm_rsh_agent $here/netns-rsh --mca routed direct --mca btl tcp,self" \
       "--mca btl_tcp_if_include $subnet.0/24 --mca oob_tcp_if_include $subnet.0/24" \
       "-H ${hosts[*]}"
}

case ${1:-} in
  up)
    [[ $# -ge 2 ]] || { echo "hosts.sh: up N [--gbps G]" >&2; exit 2; }
    n=$2; gbps=""
    shift 2
    while [[ $# -gt 0 ]]; do
      case $1 in
        --gbps) [[ $# -ge 2 ]] || { echo "hosts.sh: --gbps needs a value" >&2; exit 2; }
                gbps=$2; shift 2 ;;
        *) echo "hosts.sh: unknown option $1" >&2; exit 2 ;;
      esac
    done
    up "$n" "$gbps" ;;
  down) down ;;
  mpirun-args) mpirun_args ;;
  probe) [[ $# -eq 2 ]] || { echo "hosts.sh: probe ADDRESS" >&2; exit 2; }
         probe "$2" ;;
  *) sed -n '4,7p' "$0" | sed 's/^# *//' >&2; exit 2 ;;
esac
