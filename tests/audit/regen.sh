#!/bin/sh
# Regenerate the nft JSON fixtures from their .nft sources with the real nft (as root):
# each is loaded into a throwaway network namespace and listed back with `nft -j`.
set -eu
cd "$(dirname "$0")"
# The demo fixtures are portolan's own rendering of the built-in demo sites (sets empty:
# nothing has synced them), so the audit is checked on unresolved DNS names too.
for p in intra2net seppmail clearswift; do
	cargo run -q -- render --profile "$p" --target nftables -o "demo-$p.nft" 2>/dev/null
done
ns="portolan-regen-$$"
ip netns add "$ns"
trap 'ip netns del "$ns"' EXIT
for f in *.nft; do
	ip netns exec "$ns" nft flush ruleset
	ip netns exec "$ns" nft -f "$f"
	ip netns exec "$ns" nft -j list ruleset > "${f%.nft}.json"
	echo "wrote ${f%.nft}.json"
done
