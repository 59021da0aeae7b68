#!/usr/bin/env bash
# ansible-core and ansible-lint from PyPI, in one virtual environment made here, for the
# Ansible collection's test (crates/cli/tests/ansible.rs; the test itself never reaches the
# network).
# Usage: scripts/ansible-venv.sh [DIR]   (default: $PORTOLAN_ANSIBLE_VENV, else target/ansible-venv)
# Idempotent: an environment made for the same pinned list is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-${PORTOLAN_ANSIBLE_VENV:-$PWD/target/ansible-venv}}
tools=(ansible-core==2.19.14 ansible-lint==26.10.1)
stamp="$dir/portolan-tools"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "${tools[*]}" ]; then
    exit 0
fi
rm -rf "$dir"
python3 -m venv "$dir"
"$dir/bin/pip" install -q --disable-pip-version-check "${tools[@]}"
echo "${tools[*]}" > "$stamp"
echo "ansible-venv.sh: ${tools[*]} in $dir" >&2
