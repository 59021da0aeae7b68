#!/usr/bin/env bash
# Audit benchmark: generated rulesets of 1,000, 10,000 and 100,000 rules (mixed IPv4/IPv6
# addresses and prefixes, port ranges, user chains, named and anonymous sets, negations),
# in nft JSON and iptables-save form, audited against the three seed plans (built-in demo
# sites), then a chain-heavy ruleset of each size (hundreds of user chains that jump on to
# each other, `gen_ruleset.py ... chains`) against the Intra2net plan. Prints wall time and
# peak memory (GNU time) for each.
# Usage: benches/audit_scale.sh [SIZES...]   (needs python3 and /usr/bin/time)
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("${@:-1000 10000 100000}")
[ -x /usr/bin/time ] || { echo "needs GNU time: apt-get install -y time" >&2; exit 2; }
cargo build -q --release
bin=target/release/portolan
summarize() {
    python3 -c '
import json,sys,collections
r=json.load(open(sys.argv[1]))
c=collections.Counter(f["verdict"] for f in r["flows"])
cond=c["allowed-unless"]+c["allowed-if"]
print("%d/%d/%d/%d/%d, %d excess%s" % (c["allowed"],c["partial"],c["blocked"],c["unknown"],cond,len(r["excess"])+r["excess_more"]," (incomplete)" if r["excess_incomplete"] else ""))' "$1"
}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
printf '%-8s %-28s %-11s %9s %10s %s\n' rules format profile "wall s" "peak MiB" "verdicts (allowed/partial/blocked/unknown/conditional), excess lines"
for n in ${sizes[@]}; do
    python3 benches/gen_ruleset.py "$n" nft-json "$dir/r.json"
    python3 benches/gen_ruleset.py "$n" iptables-save "$dir/r.rules"
    for fmt in nft-json iptables-save; do
        for p in intra2net seppmail clearswift; do
            if [ "$fmt" = nft-json ]; then
                args=(--ruleset "$dir/r.json")
            else
                args=(--ruleset "$dir/r.rules" --ipset "$dir/r.rules.ipset")
            fi
            /usr/bin/time -f '%e %M' -o "$dir/time" "$bin" audit --profile "$p" "${args[@]}" --format json > "$dir/out.json" || true
            read -r wall kb < <(tail -n 1 "$dir/time")
            summary=$(summarize "$dir/out.json")
            printf '%-8s %-28s %-11s %9s %10d %s\n' "$n" "$fmt" "$p" "$wall" "$((kb / 1024))" "$summary"
        done
    done
    python3 benches/gen_ruleset.py "$n" nft-json "$dir/c.json" 7 chains
    python3 benches/gen_ruleset.py "$n" iptables-save "$dir/c.rules" 7 chains
    for fmt in nft-json iptables-save; do
        if [ "$fmt" = nft-json ]; then
            args=(--ruleset "$dir/c.json")
        else
            args=(--ruleset "$dir/c.rules" --ipset "$dir/c.rules.ipset")
        fi
        /usr/bin/time -f '%e %M' -o "$dir/time" "$bin" audit --profile intra2net "${args[@]}" --format json > "$dir/out.json" || true
        read -r wall kb < <(tail -n 1 "$dir/time")
        summary=$(summarize "$dir/out.json")
        printf '%-8s %-28s %-11s %9s %10d %s\n' "$n" "$fmt (chain-heavy)" intra2net "$wall" "$((kb / 1024))" "$summary"
    done
done
