//! The Debian package (`scripts/deb.sh`) holds what a system tool needs and installs: built
//! from the test's binary, installed with dpkg into a scratch root (its own dpkg database),
//! then the installed binary runs and checks the installed example site, and the example
//! site is a conffile.

use std::path::Path;
use std::process::Command;

#[test]
fn the_debian_package_installs_and_runs() {
    for tool in ["dpkg-deb", "dpkg", "fakeroot"] {
        let ok = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            ok,
            "{tool} is needed (apt-get install dpkg-dev fakeroot; the README's test command does)"
        );
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let tmp = tempfile::tempdir().expect("tmp");
    let out = Command::new(root.join("scripts/deb.sh"))
        .arg(tmp.path().join("out"))
        .env("BIN", env!("CARGO_BIN_EXE_portolan"))
        .env("DEB_LEVEL", "0")
        .output()
        .expect("run deb.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deb = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let contents = Command::new("dpkg-deb")
        .args(["-c", &deb])
        .output()
        .expect("dpkg-deb");
    let listing = String::from_utf8_lossy(&contents.stdout);
    for path in [
        "./usr/bin/portolan",
        "./lib/systemd/system/portolan-sync.service",
        "./lib/systemd/system/portolan-dns-proxy.service",
        "./etc/portolan/site.toml",
        "./usr/share/man/man1/portolan.1.gz",
        "./usr/share/man/man1/portolan-sync.1.gz",
        "./usr/share/bash-completion/completions/portolan",
        "./usr/share/zsh/vendor-completions/_portolan",
        "./usr/share/fish/vendor_completions.d/portolan.fish",
        "./usr/share/portolan/profile.schema.json",
        "./usr/share/portolan/site.schema.json",
    ] {
        assert!(
            listing.contains(path),
            "the package lacks {path}:\n{listing}"
        );
    }
    // A scratch root with an empty dpkg database.
    let r = tmp.path().join("root");
    for d in [
        "var/lib/dpkg/info",
        "var/lib/dpkg/updates",
        "var/lib/dpkg/triggers",
    ] {
        std::fs::create_dir_all(r.join(d)).expect("dir");
    }
    for f in ["var/lib/dpkg/status", "var/lib/dpkg/available"] {
        std::fs::write(r.join(f), "").expect("file");
    }
    let root_arg = format!("--root={}", r.display());
    let install = Command::new("dpkg")
        .args([&root_arg, "--force-depends", "--log=/dev/null", "-i", &deb])
        .output()
        .expect("dpkg -i");
    assert!(
        install.status.success(),
        "{}",
        String::from_utf8_lossy(&install.stderr)
    );
    let bin = r.join("usr/bin/portolan");
    let v = Command::new(&bin)
        .arg("--version")
        .output()
        .expect("version");
    assert!(String::from_utf8_lossy(&v.stdout).starts_with("portolan "));
    let check = Command::new(&bin)
        .arg("check")
        .arg(r.join("etc/portolan/site.toml"))
        .output()
        .expect("check");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let status = Command::new("dpkg")
        .args([&root_arg, "-s", "portolan"])
        .output()
        .expect("dpkg -s");
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.contains("Conffiles:\n /etc/portolan/site.toml"),
        "{status}"
    );
    let unit =
        std::fs::read_to_string(r.join("lib/systemd/system/portolan-sync.service")).expect("unit");
    assert!(unit.contains("ExecStart=/usr/bin/portolan sync"), "{unit}");
}
