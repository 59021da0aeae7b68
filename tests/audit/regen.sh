#!/bin/sh
# Regenerate the nft JSON fixtures from their .nft sources with the real nft (as root):
# each is loaded into a throwaway network namespace and listed back with `nft -j`.
set -eu
cd "$(dirname "$0")"
ns="portolan-regen-$$"
ip netns add "$ns"
trap 'ip netns del "$ns"' EXIT
for f in *.nft; do
	ip netns exec "$ns" nft flush ruleset
	ip netns exec "$ns" nft -f "$f"
	ip netns exec "$ns" nft -j list ruleset > "${f%.nft}.json"
	echo "wrote ${f%.nft}.json"
done
