#!/usr/bin/env bash
# Benchmarks for `portolan sync` and `portolan dns-proxy`, in two namespaces made here
# (198.18.0.0/15, the benchmarking range; nothing else is contacted):
#  1. one `sync --once` pass over 10,000 names served by dnsmasq: wall time, peak memory,
#     time spent writing sets (netlink; overlaps the lookups);
#  2. added latency of `dns-proxy` (p50, p99) on fresh wildcard names, each with an address
#     of its own (so every answer carries a new address into the set), against asking the
#     upstream directly and against dnsmasq's own `--nftset=` doing the same job; the three
#     are asked in turn, query by query (interleaved), so the ratio holds on a noisy machine;
#  3. 50 fresh names asked at once, 10 rounds: the slowest answer of each round (median and
#     worst), for the same three.
# Run as root: benches/dns_sync_proxy.sh [NAMES] [QUERIES]. Needs dnsmasq (dnsmasq-base) and
# GNU time. Prints one line per figure. Cleans up on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
NAMES=${1:-10000}
QUERIES=${2:-1000}
command -v dnsmasq >/dev/null || { echo "needs dnsmasq (apt-get install dnsmasq-base)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "needs GNU time (apt-get install time)" >&2; exit 2; }
cargo build --release -q -p portolan
BIN="$PWD/target/release/portolan"
C=dsc$$ S=dss$$ DIR=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; ip netns del "$C" 2>/dev/null || true; ip netns del "$S" 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT
ip netns add "$C"; ip netns add "$S"
ip link add "c$$" netns "$C" type veth peer name "s$$" netns "$S"
ip -n "$C" addr add 198.18.0.1/15 dev "c$$"; ip -n "$C" link set "c$$" up; ip -n "$C" link set lo up
ip -n "$S" addr add 198.18.0.2/15 dev "s$$"; ip -n "$S" link set "s$$" up; ip -n "$S" link set lo up

# Upstream: dnsmasq answering NAMES host records and a wildcard zone.
python3 - "$NAMES" "$QUERIES" > "$DIR/upstream.conf" <<'PY'
import sys
n, q = int(sys.argv[1]), int(sys.argv[2])
for i in range(n):
    print(f"host-record=name{i}.bench.example,198.19.{i // 250}.{i % 250 + 1}")
# Wildcard names, one address each (198.18.128.0/17), for every query of part 2 and 3.
for tag in "dpm":
    for i in range(q + 50 * 10):
        k = "dpm".index(tag) * (q + 500) + i
        print(f"host-record={tag}{i}.avcloud.bench.example,198.18.{128 + k // 250}.{k % 250 + 1}")
PY
ip netns exec "$S" dnsmasq --keep-in-foreground --no-resolv --no-hosts --port=53 --listen-address=198.18.0.2 \
    --bind-interfaces --local-ttl=300 --cache-size=0 --conf-file="$DIR/upstream.conf" --pid-file="$DIR/up.pid" 2>/dev/null &
PIDS+=($!)

# 1. sync over NAMES names.
{
  echo 'id = "bench"'; echo 'name = "bench"'; echo 'vendor = "bench"'
  echo '[[flows]]'; echo 'id = "dns"'; echo 'function = "dns"'; echo 'from = "appliance"'; echo 'to = "dns-server"'
  echo 'protocols = ["udp", "tcp"]'; echo 'ports = [53]'
  for i in $(seq 0 $((NAMES - 1))); do
    echo '[[flows]]'; echo "id = \"f$i\""; echo 'function = "bench"'; echo 'from = "appliance"'
    echo "to = \"name$i.bench.example\""; echo 'protocols = ["tcp"]'; echo 'ports = [443]'
  done
} > "$DIR/profile.toml"
printf 'profile = "profile.toml"\n[appliance]\naddresses = ["198.18.0.1"]\n[roles]\ndns-server = ["198.18.0.2"]\n' > "$DIR/site.toml"
"$BIN" render --site "$DIR/site.toml" --target nftables -o "$DIR/sync.nft" 2>/dev/null
t0=$(date +%s.%N); ip netns exec "$C" nft -f "$DIR/sync.nft"; t1=$(date +%s.%N)
sleep 1
ip netns exec "$C" /usr/bin/time -v "$BIN" sync --once --site "$DIR/site.toml" --resolver 198.18.0.2 \
    --metrics-file "$DIR/m.prom" --format json > "$DIR/sync.json" 2> "$DIR/time.txt" || true
python3 - "$DIR" "$NAMES" "$t0" "$t1" <<'PY'
import json, re, sys
d, n, t0, t1 = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
t = open(f"{d}/time.txt").read()
wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", t)
secs = (int(wall.group(1) or 0) * 3600 + int(wall.group(2)) * 60 + float(wall.group(3))) if wall else float("nan")
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1))
m = open(f"{d}/m.prom").read()
apply_s = float(re.search(r"^portolan_sync_apply_seconds ([\d.]+)", m, re.M).group(1))
ok = len(re.findall(r'result="ok"\} 1', m))
print(f"sync: ruleset with {n} DNS sets loaded in {t1 - t0:.2f} s")
print(f"sync --once over {n} names: {secs:.2f} s wall, {rss / 1024:.1f} MiB peak RSS, sets written in {apply_s:.2f} s (while resolving), {ok} names resolved ok")
PY

# 2. proxy latency.
{
  echo 'id = "proxybench"'; echo 'name = "bench"'; echo 'vendor = "bench"'
  echo '[[flows]]'; echo 'id = "dns"'; echo 'function = "dns"'; echo 'from = "appliance"'; echo 'to = "dns-server"'
  echo 'protocols = ["udp", "tcp"]'; echo 'ports = [53]'
  echo '[[flows]]'; echo 'id = "wild"'; echo 'function = "bench"'; echo 'from = "appliance"'
  echo 'to = "*.avcloud.bench.example"'; echo 'protocols = ["tcp"]'; echo 'ports = [443]'
} > "$DIR/profile.toml"
"$BIN" render --site "$DIR/site.toml" --target nftables 2>/dev/null | ip netns exec "$C" nft -f -
ip netns exec "$C" "$BIN" dns-proxy --site "$DIR/site.toml" --listen 198.18.0.1:5353 --upstream 198.18.0.2 --rate 1000000 2>/dev/null &
PIDS+=($!)
ip netns exec "$C" dnsmasq --keep-in-foreground --no-resolv --no-hosts --port=5354 --listen-address=198.18.0.1 \
    --bind-interfaces --cache-size=0 --server=198.18.0.2 --pid-file="$DIR/nfts.pid" \
    --nftset=/avcloud.bench.example/4#inet#portolan#wild_avcloud.bench.example_v4 2>/dev/null &
PIDS+=($!)
sleep 1
ip netns exec "$C" python3 - "$QUERIES" <<'PY'
import socket, struct, sys, time
n = int(sys.argv[1])
def query(name, qid):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\x00" + struct.pack(">HH", 1, 1)
rows = [("upstream directly", ("198.18.0.2", 53), "d"),
        ("portolan dns-proxy", ("198.18.0.1", 5353), "p"),
        ("dnsmasq --nftset", ("198.18.0.1", 5354), "m")]
socks = {}
for label, _, _ in rows:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    socks[label] = s
lat = {label: [] for label, _, _ in rows}
failed = {label: 0 for label, _, _ in rows}
# Interleaved: query i of each, in turn.
for i in range(n):
    for label, addr, tag in rows:
        s = socks[label]
        t = time.perf_counter()
        s.sendto(query(f"{tag}{i}.avcloud.bench.example", i & 0xffff), addr)
        try:
            s.recvfrom(1500)
            lat[label].append((time.perf_counter() - t) * 1000)
        except socket.timeout:
            failed[label] += 1
def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))] if v else float("nan")
base = (pct(lat["upstream directly"], 0.5), pct(lat["upstream directly"], 0.99))
for label, _, _ in rows:
    p50, p99 = pct(lat[label], 0.5), pct(lat[label], 0.99)
    extra = "" if label == "upstream directly" else f"  (adds {p50 - base[0]:.2f} ms at p50, {p99 - base[1]:.2f} ms at p99)"
    print(f"{label:20s} {n} fresh wildcard names: p50 {p50:.2f} ms, p99 {p99:.2f} ms, {failed[label]} unanswered{extra}")
# 50 at once, 10 rounds, interleaved by round.
slowest = {label: [] for label, _, _ in rows}
for r in range(10):
    for label, addr, tag in rows:
        ss = []
        t = time.perf_counter()
        for j in range(50):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(3)
            s.sendto(query(f"{tag}{n + r * 50 + j}.avcloud.bench.example", j), addr)
            ss.append(s)
        worst = 0.0
        for s in ss:
            try:
                s.recvfrom(1500)
                worst = max(worst, (time.perf_counter() - t) * 1000)
            except socket.timeout:
                worst = float("inf")
            s.close()
        slowest[label].append(worst)
for label, _, _ in rows:
    v = sorted(slowest[label])
    print(f"{label:20s} 50 fresh names at once: slowest answer median {v[len(v) // 2]:.2f} ms, worst {v[-1]:.2f} ms (10 rounds)")
PY
