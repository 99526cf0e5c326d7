//! `sealdex group new | derive | id`: key files and the printed group id.

use std::process::Command;

use sealdex::sync::keys::{GroupKey, GroupKeys};

fn sealdex(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sealdex"))
        .args(args)
        .env_remove("SEALDEX_DIR")
        .output()
        .expect("run sealdex")
}

#[test]
fn new_writes_a_private_random_key_and_id_prints_its_group_id() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.key");
    let b = dir.path().join("b.key");
    for p in [&a, &b] {
        let out = sealdex(&["group", "new", "--out", p.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let ka = std::fs::read(&a).unwrap();
    assert_eq!(ka.len(), 32);
    assert_ne!(ka, std::fs::read(&b).unwrap(), "two new keys must differ");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&a).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    // Never overwrites.
    let again = sealdex(&["group", "new", "--out", a.to_str().unwrap()]);
    assert!(!again.status.success());
    assert_eq!(std::fs::read(&a).unwrap(), ka);

    let id = sealdex(&["group", "id", "--group-key", a.to_str().unwrap()]);
    assert!(id.status.success());
    let expected = GroupKeys::derive(&GroupKey::from_slice(&ka).unwrap())
        .unwrap()
        .group_id()
        .to_hex();
    assert_eq!(
        String::from_utf8(id.stdout).unwrap(),
        format!("{expected}\n")
    );
}

#[test]
fn derive_is_deterministic_from_the_account_secret() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, b"the account's private key bytes").unwrap();
    let mut keys = Vec::new();
    for name in ["x.key", "y.key"] {
        let out_path = dir.path().join(name);
        let out = sealdex(&[
            "group",
            "derive",
            "--account-secret-file",
            secret.to_str().unwrap(),
            "--out",
            out_path.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        keys.push(std::fs::read(&out_path).unwrap());
    }
    assert_eq!(keys[0], keys[1]);
    let lib = GroupKey::derive_from_account_secret(b"the account's private key bytes").unwrap();
    assert_eq!(&keys[0][..], lib.expose());
    // A wrong-size key file is refused with a clear message.
    let bad = dir.path().join("bad.key");
    std::fs::write(&bad, b"short").unwrap();
    let out = sealdex(&["group", "id", "--group-key", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("32 bytes"));
}
