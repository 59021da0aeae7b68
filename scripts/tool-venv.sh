#!/usr/bin/env bash
# The Python tools the tests check portolan's outputs with, from PyPI, in one virtual
# environment made here (the tests themselves never reach the network):
#   aerleon (cross-check of the vendor targets), cfn-lint, checkov, azure-mgmt-network.
# Usage: scripts/tool-venv.sh [DIR]   (default: $PORTOLAN_TOOL_VENV, else target/tool-venv)
# Idempotent: an environment made for the same pinned list is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-${PORTOLAN_TOOL_VENV:-$PWD/target/tool-venv}}
tools=(aerleon==1.18.0 cfn-lint==1.58.0 checkov==3.3.30 azure-mgmt-network==33.1.0)
stamp="$dir/portolan-tools"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "${tools[*]}" ]; then
    exit 0
fi
rm -rf "$dir"
python3 -m venv "$dir"
"$dir/bin/pip" install -q --disable-pip-version-check "${tools[@]}"
echo "${tools[*]}" > "$stamp"
echo "tool-venv.sh: ${tools[*]} in $dir" >&2
