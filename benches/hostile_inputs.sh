#!/usr/bin/env bash
# Hostile inputs: each must take well under 1 s and memory within a small multiple of its
# size on a 2-core machine (release build). Prints wall time, peak memory and input size.
#   audit   an iptables-save of 20 chains, each jumping twice to the next (was 14 s)
#   import  one line of 200,000 `|` in a table (was 22 s), a 6 MB bullet list (was 1 GB)
#   check   a 1 MB profile with ~16,000 errors (was 36 s)
# Usage: benches/hostile_inputs.sh   (needs python3 and GNU time: apt-get install -y time)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x /usr/bin/time ] || { echo "needs GNU time: apt-get install -y time" >&2; exit 2; }
cargo build -q --release --locked -p portolan
bin=target/release/portolan
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
python3 benches/gen_hostile.py "$dir"
run() {
    local what="$1" input="$2"
    shift 2
    /usr/bin/time -f '%e %M' -o "$dir/time" "$bin" "$@" >/dev/null 2>"$dir/err" || true
    read -r wall kb < <(tail -n 1 "$dir/time")
    local bytes
    bytes=$(stat -c %s "$input")
    printf '%-34s %8s KiB in %7.2f s wall %8.1f MiB peak (%5.1fx input)\n' "$what" \
        "$((bytes / 1024))" "$wall" "$(echo "$kb / 1024" | bc -l)" "$(echo "$kb * 1024 / $bytes" | bc -l)"
}
run "audit: jump bomb (iptables-save)" "$dir/jump-bomb.rules" \
    audit --profile intra2net --ruleset "$dir/jump-bomb.rules" --ruleset-format iptables-save
run "import: 200,000 pipes on a line" "$dir/pipes.txt" import "$dir/pipes.txt"
run "import: 6 MB bullet list" "$dir/bullets.txt" import "$dir/bullets.txt" -o "$dir/draft.toml"
run "check: 1 MB profile, many errors" "$dir/errors.toml" check "$dir/errors.toml"
grep -o 'and [0-9]* more diagnostic(s)' "$dir/err" || true
