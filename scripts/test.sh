#!/usr/bin/env bash
# The test command (README, CI): installs what the tests need on a fresh Debian machine, then
# checks formatting, lints, licences and sources of dependencies, and runs every test,
# including the kernel tests in network namespaces (they need root).
#
# Kernel tests that cannot run fail loudly; with PORTOLAN_SKIP_KERNEL_TESTS=1 they are skipped
# on purpose, and the closing line counts them as skipped, never as passed.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v nft >/dev/null || need+=(nftables)
command -v iptables-restore >/dev/null || need+=(iptables)
command -v ipset >/dev/null || need+=(ipset)
command -v ip >/dev/null || need+=(iproute2)
command -v ping >/dev/null || need+=(iputils-ping)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v fakeroot >/dev/null || need+=(fakeroot)
command -v chromium >/dev/null || need+=(chromium fonts-dejavu-core)
# The Aerleon cross-check of the vendor targets makes a virtual environment (python3 -m venv).
python3 -c 'import ensurepip' 2>/dev/null || need+=(python3-venv)
if ((${#need[@]})); then
    if [ "$(id -u)" -ne 0 ]; then
        echo "test.sh: missing ${need[*]}; run as root (or install them) so the kernel tests can run" >&2
        exit 1
    fi
    echo "test.sh: installing ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
fi

# firewalld's own offline checker validates the firewalld target. The daemon must never run
# here (it would take over this host's firewall): its unit is masked before the package comes.
if ! command -v firewall-offline-cmd >/dev/null; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "test.sh: missing firewall-offline-cmd (firewalld); run as root so it can be installed" >&2
        exit 1
    fi
    mkdir -p /etc/systemd/system
    [ -e /etc/systemd/system/firewalld.service ] || ln -s /dev/null /etc/systemd/system/firewalld.service
    echo "test.sh: installing firewalld (masked, for firewall-offline-cmd only)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq firewalld >/dev/null \
        || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq firewalld >/dev/null; }
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# Licences (no GPL code linked), banned crates (libnftnl wrappers) and sources (crates.io
# only); then advisories, against the current RustSec database where GitHub is reachable and
# against the committed snapshot where it is not (scripts/advisories.sh says which).
command -v cargo-deny >/dev/null || cargo install cargo-deny --locked --quiet
cargo deny --locked check licenses bans sources
command -v git >/dev/null || { apt-get install -y -qq git >/dev/null; }
./scripts/advisories.sh
# The declared minimum Rust version (rust-version in Cargo.toml) must build everything:
# `cargo check` of every target with that toolchain (installed by rustup if missing), in
# its own target directory.
msrv=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
[[ $msrv == *.*.* ]] || msrv="$msrv.0" # rustup names releases 1.88.0
if [ "${PORTOLAN_SKIP_MSRV:-}" = 1 ]; then
    echo "test.sh: SKIPPED the build with Rust $msrv (PORTOLAN_SKIP_MSRV=1)" >&2
else
    command -v rustup >/dev/null || {
        echo "test.sh: the build with the minimum Rust $msrv needs rustup (or PORTOLAN_SKIP_MSRV=1)" >&2
        exit 1
    }
    rustup toolchain list | grep -q "^$msrv-" ||
        rustup toolchain install "$msrv" --profile minimal --no-self-update
    cargo "+$msrv" check --workspace --all-targets --locked --quiet --target-dir target/msrv
    echo "test.sh: everything builds with the minimum Rust $msrv"
fi

# The Python tools some tests check outputs with, from PyPI (the tests never reach the
# network themselves). Without the registry they are skipped, loudly, and counted.
export PORTOLAN_TOOL_VENV="$PWD/target/tool-venv"
if ! ./scripts/tool-venv.sh "$PORTOLAN_TOOL_VENV"; then
    echo "test.sh: cannot install the tool environment from PyPI: the Aerleon and cloud tool checks are SKIPPED" >&2
    export PORTOLAN_SKIP_TOOL_TESTS=1
fi

# ansible-core and ansible-lint for the Ansible collection's test, from PyPI likewise.
export PORTOLAN_ANSIBLE_VENV="$PWD/target/ansible-venv"
if ! ./scripts/ansible-venv.sh "$PORTOLAN_ANSIBLE_VENV"; then
    echo "test.sh: cannot install ansible-core and ansible-lint from PyPI: the Ansible test is SKIPPED" >&2
    export PORTOLAN_SKIP_ANSIBLE_TESTS=1
fi

log="$(mktemp)"
skipped_log="$(mktemp)"
trap 'rm -f "$log" "$skipped_log"' EXIT
export PORTOLAN_SKIPPED_LOG="$skipped_log"
set +e
cargo test --workspace --locked --no-fail-fast "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line over all test binaries; kernel tests skipped on purpose count as skipped.
extra=$(sort -u "$skipped_log" | grep -c . || true)
awk -v extra="$extra" '
    /^test result:/ { p += $4; f += $6; s += $8 }
    END { printf "tests: %d passed, %d failed, %d skipped\n", p - extra, f, s + extra }' "$log"
exit "$status"
