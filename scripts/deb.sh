#!/usr/bin/env bash
# Build the Debian package of portolan from this workspace:
#   scripts/deb.sh [OUTDIR]          release build, package in OUTDIR (default target/deb)
#   BIN=path/to/portolan scripts/deb.sh OUTDIR   package an existing binary (the tests do)
# Contents: /usr/bin/portolan; the systemd units (portolan-sync, portolan-dns-proxy);
# /etc/portolan/site.toml, a commented example (a conffile); man pages and bash/zsh/fish
# completions generated from the binary itself; the JSON Schemas under /usr/share/portolan.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/deb}
if [ -z "${BIN:-}" ]; then
    cargo build --release --locked -q -p portolan
    BIN=target/release/portolan
fi
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
arch=$(dpkg --print-architecture)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root="$stage/portolan_${version}_${arch}"
install -Dm755 "$BIN" "$root/usr/bin/portolan"
for u in contrib/*.service; do
    install -Dm644 "$u" "$root/lib/systemd/system/$(basename "$u")"
done
# The units name /usr/local/bin (a hand install); the package installs to /usr/bin.
sed -i 's|/usr/local/bin/portolan|/usr/bin/portolan|g' "$root"/lib/systemd/system/*.service
install -Dm644 packaging/site.toml "$root/etc/portolan/site.toml"
mkdir -p "$root/usr/share/man/man1"
"$BIN" man | gzip -9n >"$root/usr/share/man/man1/portolan.1.gz"
for c in $("$BIN" --help | sed -n '/^Commands:/,/^$/p' | grep -E '^  [a-z][a-z-]+ ' | awk '$1 != "help" {print $1}'); do
    "$BIN" man "$c" | gzip -9n >"$root/usr/share/man/man1/portolan-$c.1.gz"
done
install -d "$root/usr/share/bash-completion/completions" "$root/usr/share/zsh/vendor-completions" \
    "$root/usr/share/fish/vendor_completions.d" "$root/usr/share/portolan"
"$BIN" completions bash >"$root/usr/share/bash-completion/completions/portolan"
"$BIN" completions zsh >"$root/usr/share/zsh/vendor-completions/_portolan"
"$BIN" completions fish >"$root/usr/share/fish/vendor_completions.d/portolan.fish"
"$BIN" schema profile >"$root/usr/share/portolan/profile.schema.json"
"$BIN" schema site >"$root/usr/share/portolan/site.schema.json"
install -Dm644 README.md "$root/usr/share/doc/portolan/README.md"
install -d "$root/DEBIAN"
cat >"$root/DEBIAN/control" <<CONTROL
Package: portolan
Version: $version
Architecture: $arch
Maintainer: portolan developers <portolan@invalid>
Depends: libc6
Recommends: nftables
Suggests: iptables, ipset
Section: net
Priority: optional
Description: turn an appliance's firewall requirements table into a working firewall
 portolan reads the ports, protocols and DNS names an appliance must reach (a profile),
 binds them to a site, renders least-privilege rules for nftables, iptables and more,
 keeps DNS-based address sets current, probes every required flow and audits existing
 rulesets.
CONTROL
echo /etc/portolan/site.toml >"$root/DEBIAN/conffiles"
mkdir -p "$out"
fakeroot dpkg-deb -Zxz -z${DEB_LEVEL:-6} --build --root-owner-group "$root" "$out" >/dev/null
echo "$out/portolan_${version}_${arch}.deb"
