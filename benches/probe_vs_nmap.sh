#!/usr/bin/env bash
# Benchmark: `portolan probe` against `nmap -sT -Pn -T4` and against the floor of one timeout,
# on the same 1,000 TCP targets inside two network namespaces made here (100 addresses in
# 198.18.0.0/15, the benchmarking range, x 10 ports: 4 open, 3 refused, 3 silently dropped).
# Also the default-options run (no --timeout: 3 s with the adaptive handshake wait).
# Run as root: benches/probe_vs_nmap.sh. Prints one line per figure. Cleans up on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v nmap >/dev/null || { echo "needs nmap (apt-get install nmap)" >&2; exit 2; }
cargo build --release -q -p portolan
BIN="$PWD/target/release/portolan"
C=pbc$$ S=pbs$$ DIR=$(mktemp -d)
cleanup() { ip netns del "$C" 2>/dev/null || true; ip netns del "$S" 2>/dev/null || true; kill "${SRV:-0}" 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT
ip netns add "$C"; ip netns add "$S"
ip link add "c$$" netns "$C" type veth peer name "s$$" netns "$S"
ip -n "$C" addr add 198.18.0.1/15 dev "c$$"; ip -n "$C" link set "c$$" up; ip -n "$C" link set lo up
ip -n "$S" link set "s$$" up; ip -n "$S" link set lo up
ADDRS=()
for i in $(seq 1 100); do ip -n "$S" addr add "198.18.1.$i/15" dev "s$$"; ADDRS+=("198.18.1.$i"); done
# Dropped ports: 20008-20010. Refused: 20005-20007 (nothing listens). Open: 20001-20004.
ip netns exec "$S" nft add table inet b
ip netns exec "$S" nft add chain inet b in '{ type filter hook input priority 0; policy accept; }'
ip netns exec "$S" nft add rule inet b in tcp dport 20008-20010 drop
ip netns exec "$S" python3 - "${ADDRS[@]}" <<'PY' &
import socket, sys, select
socks = []
for a in sys.argv[1:]:
    for p in range(20001, 20005):
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((a, p)); s.listen(128); s.setblocking(False); socks.append(s)
print("ready", flush=True)
while True:
    r, _, _ = select.select(socks, [], [], 1)
    for s in r:
        try: s.accept()[0].close()
        except OSError: pass
PY
SRV=$!
sleep 2
{
  echo 'id = "bench"'; echo 'name = "bench"'; echo 'vendor = "bench"'
  echo '[roles.bench]'; echo 'description = "targets"'
  echo '[[flows]]'; echo 'id = "targets"'; echo 'function = "bench"'; echo 'from = "appliance"'; echo 'to = "bench"'
  echo 'protocols = ["tcp"]'; echo 'ports = [20001, 20002, 20003, 20004, 20005, 20006, 20007, 20008, 20009, 20010]'; echo 'app = "tcp"'
} > "$DIR/profile.toml"
{
  echo 'profile = "profile.toml"'; echo '[appliance]'; echo 'addresses = ["198.18.0.1"]'
  printf '[roles]\nbench = ['; printf '"%s",' "${ADDRS[@]}" | sed 's/,$//'; echo ']'
} > "$DIR/site.toml"
ip netns exec "$C" ping -q -c1 -W1 198.18.1.1 >/dev/null || true   # warm up the neighbour cache path

t0=$(date +%s.%N)
ip netns exec "$C" "$BIN" probe --site "$DIR/site.toml" --timeout 1s --all-ports --concurrency 1000 --per-destination 10 --format json -o "$DIR/out.json" || true
t1=$(date +%s.%N)
ip netns exec "$C" nmap -sT -Pn -T4 -n -p 20001-20010 "198.18.1.1-100" -oG "$DIR/nmap.txt" >/dev/null
t2=$(date +%s.%N)
# The same targets (--all-ports: every port of the merged range) with the default timing
# options: --timeout 3s with the adaptive handshake wait, --concurrency 256, --per-destination 32.
ip netns exec "$C" "$BIN" probe --site "$DIR/site.toml" --all-ports --format json -o "$DIR/default.json" || true
t3=$(date +%s.%N)
python3 - "$DIR/out.json" "$DIR/nmap.txt" "$t0" "$t1" "$t2" "$t3" "$DIR/default.json" <<'PY'
import json, sys, re
doc = json.load(open(sys.argv[1]))
t0, t1, t2, t3 = map(float, sys.argv[3:7])
default = json.load(open(sys.argv[7]))
print(f"targets:                 {doc['summary']['probes']} (100 addresses x 10 ports)")
print(f"portolan verdicts:       {doc['summary']['by_verdict']}")
nm = open(sys.argv[2]).read()
print(f"nmap verdicts:           open={nm.count('/open/')} closed={nm.count('/closed/')} filtered={nm.count('/filtered/')}")
p, n, floor = t1 - t0, t2 - t1, 1.0
print(f"floor (one timeout):     {floor:.2f} s")
print(f"portolan probe:          {p:.2f} s  ({p/floor:.2f}x the floor)")
print(f"nmap -sT -Pn -T4:        {n:.2f} s  ({n/floor:.2f}x the floor; portolan is {n/p:.1f}x faster)")
d = t3 - t2
print(f"portolan, default options: {d:.2f} s  (--timeout 3s, adaptive handshake wait; {default['summary']['by_verdict']}; nmap/portolan = {n/d:.2f})")
PY
