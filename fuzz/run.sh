#!/usr/bin/env bash
# Fuzz the profile, site and ruleset parsers and the importer with cargo-fuzz (libFuzzer). The machine's toolchain is
# stable; RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its -Z flags. Usage: fuzz/run.sh [SECONDS [TARGET...]]
# A run that takes over 10 s on one input counts as a crash (-timeout=10): slow is a bug too.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-120}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
mkdir -p corpus/profile corpus/site corpus/audit_nft corpus/audit_iptables corpus/import
cp ../tests/import/*.txt corpus/import/
[ -d ../../shared/seeds ] && cp ../../shared/seeds/*.txt corpus/import/
cp ../tests/audit/*.json corpus/audit_nft/
cp ../tests/audit/*.rules corpus/audit_iptables/
cp ../catalog/*.toml ../tests/errors/*.toml corpus/profile/
for d in ../tests/golden/*/; do cp "$d/site.toml" "corpus/site/$(basename "$d").toml"; done
cp ../tests/errors/site-*.toml corpus/site/
# Hostile inputs that once cost exponential or quadratic time (benches/gen_hostile.py --small).
cp seeds/jump-bomb.rules corpus/audit_iptables/
cp seeds/pipes.txt seeds/bullets.txt corpus/import/
cp seeds/errors.toml corpus/profile/
cp seeds/multibyte-json-error.json corpus/audit_nft/
shift || true
targets=("${@:-profile site audit_nft audit_iptables import}")
for target in ${targets[@]}; do
    RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "corpus/$target" -- \
        -max_total_time="$secs" -max_len=65536 -timeout=10 2>&1 | tee "/tmp/portolan-fuzz-$target.log" | tail -n 3
done
