#!/usr/bin/env bash
# Import a 10 MB document (the seed tables, the invented test documents and the corpus repeated, with
# noise lines between them) and print wall time and peak memory. Usage: benches/import_large.sh [MB]
set -euo pipefail
cd "$(dirname "$0")/.."
mb="${1:-10}"
[ -x /usr/bin/time ] || { echo "needs GNU time: apt-get install -y time" >&2; exit 2; }
cargo build -q --release
dir=${KEEP_DIR:-$(mktemp -d)}
[ -n "${KEEP_DIR:-}" ] || trap 'rm -rf "$dir"' EXIT
docs=(tests/import/*.txt tests/import/corpus/*.txt)
[ -d ../shared/seeds ] && docs+=(../shared/seeds/*.txt)
: > "$dir/big.txt"
i=0
while [ "$(stat -c %s "$dir/big.txt")" -lt $((mb * 1024 * 1024)) ]; do
    for d in "${docs[@]}"; do cat "$d" >> "$dir/big.txt"; done
    for k in $(seq 1 200); do echo "$((k * 7 + i)) | TCP | In/Out | noise row $i.$k to host$k.example.net |" >> "$dir/big.txt"; done
    i=$((i + 1))
done
/usr/bin/time -f '%e %M' -o "$dir/time" target/release/portolan import "$dir/big.txt" -o "$dir/draft.toml" --report "$dir/report.txt"
read -r wall kb < <(tail -n 1 "$dir/time")
printf 'import of %s MiB: %s s wall, %d MiB peak, draft %s lines\n' "$(( $(stat -c %s "$dir/big.txt") / 1024 / 1024 ))" "$wall" "$((kb / 1024))" "$(wc -l < "$dir/draft.toml")"
