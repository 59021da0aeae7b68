#!/usr/bin/env bash
# `cargo deny check advisories`: every crate in Cargo.lock against the RustSec advisory database.
#
# The database lives on GitHub. Where GitHub is reachable, cargo deny fetches the current one.
# Where it is not (the build machines here reach only the package registries), the check runs
# against the snapshot committed in .ci/advisory-db.tar.gz (the `crates/` tree of
# github.com/rustsec/advisory-db, CC0-1.0, commit and date in .ci/advisory-db.commit), and
# says so, with the snapshot's age.
#
#   scripts/advisories.sh                   online if possible, else the snapshot
#   scripts/advisories.sh --snapshot        the snapshot only
#   scripts/advisories.sh --refresh CLONE   replace the snapshot from a clone of advisory-db
set -euo pipefail
cd "$(dirname "$0")/.."

snapshot=.ci/advisory-db.tar.gz
stamp=.ci/advisory-db.commit

if [ "${1:-}" = "--refresh" ]; then
    clone=${2:?usage: scripts/advisories.sh --refresh PATH-TO-ADVISORY-DB-CLONE}
    date=$(git -C "$clone" log -1 --format=%cI)
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="$date" \
        -czf "$snapshot" -C "$clone" crates
    echo "$(git -C "$clone" rev-parse HEAD) $date" >"$stamp"
    echo "advisories: snapshot replaced by $(cat "$stamp")"
    exit 0
fi

if [ "${1:-}" != "--snapshot" ]; then
    # cargo deny clones the database itself; without network it fails within a second.
    if out=$(timeout 300 cargo deny --locked check advisories 2>&1); then
        echo "$out"
        echo "advisories: checked against the current RustSec database"
        exit 0
    fi
    if ! grep -q "failed to fetch advisory database" <<<"$out"; then
        echo "$out" >&2
        exit 1
    fi
    echo "advisories: the RustSec database cannot be fetched here; using the committed snapshot" >&2
fi

read -r commit date <"$stamp"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
db="$work/advisory-db-snapshot"
mkdir -p "$db"
tar -xzf "$snapshot" -C "$db"
# cargo deny reads the database's age from its git HEAD: one commit, dated like the snapshot.
git -C "$db" init -q
git -C "$db" add -A
GIT_AUTHOR_DATE=$date GIT_COMMITTER_DATE=$date \
    git -C "$db" -c user.name=snapshot -c user.email=snapshot@invalid commit -q -m "$commit"
# The same policy as deny.toml, pointed at the snapshot. Its age is reported, not refused:
# a stale database still catches every advisory it holds.
sed -e "s|^\[advisories\]|[advisories]\ndb-path = \"$work\"\ndb-urls = [\"https://github.com/rustsec/advisory-db\"]\nmaximum-db-staleness = \"P36500D\"|" \
    deny.toml >"$work/deny.toml"
# cargo deny names the directory after the URL; point that name at the snapshot.
name=$(cargo deny --locked --offline --config "$work/deny.toml" check advisories 2>&1 |
    sed -n 's|.*"-C", "'"$work"'/\(advisory-db-[0-9a-f]*\)".*|\1|p' | head -n1 || true)
if [ -n "$name" ] && [ ! -e "$work/$name" ]; then
    mv "$db" "$work/$name"
fi
db=$work/$name
[ -d "$db/crates" ] || db=$work/advisory-db-snapshot
# Proof that the snapshot is read: an advisory planted for a crate in Cargo.lock must fail the
# check. It goes in a second commit, which is then dropped again.
mkdir -p "$db/crates/serde"
cat >"$db/crates/serde/RUSTSEC-2000-0001.md" <<'ADVISORY'
```toml
[advisory]
id = "RUSTSEC-2000-0001"
package = "serde"
date = "2000-01-01"
url = "https://example.invalid/"

[versions]
patched = []
```

# planted by scripts/advisories.sh to prove the check reads the database
ADVISORY
git -C "$db" add -A
git -C "$db" -c user.name=snapshot -c user.email=snapshot@invalid commit -q -m planted
if cargo deny --locked --offline --config "$work/deny.toml" check advisories >/dev/null 2>&1; then
    echo "advisories: a planted advisory was not reported; the snapshot is not being read" >&2
    exit 1
fi
git -C "$db" reset -q --hard HEAD~1
cargo deny --locked --offline --config "$work/deny.toml" check advisories
age=$((($(date +%s) - $(date -d "$date" +%s)) / 86400))
echo "advisories: checked against the RustSec snapshot of ${date%%T*} (commit ${commit:0:12}, $age days old);" \
    "refresh it with scripts/advisories.sh --refresh CLONE where GitHub is reachable"
