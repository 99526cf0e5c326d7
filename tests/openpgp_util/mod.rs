//! Real GnuPG for the OpenPGP tests and benchmark (issue 13): keys made in
//! a temporary `GNUPGHOME`, messages encrypted (and signed) by `gpg`, and
//! the RFC 3156 PGP/MIME and inline PGP wrappings a mail client puts around
//! its output.
//!
//! `gpg` must be on `PATH` (Debian: `apt-get install gnupg`; `.ci/run`
//! installs it): without it [`Gpg::new`] panics with that advice, so a test
//! that needs it fails loudly rather than passing without running.

#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// A throw-away GnuPG home, its agent stopped when dropped.
pub struct Gpg {
    home: tempfile::TempDir,
}

/// A key made by [`Gpg::gen_key`].
#[derive(Clone, Debug)]
pub struct Key {
    /// The user id's address.
    pub email: String,
    /// The primary key's fingerprint.
    pub fpr: String,
    /// The encryption subkey's fingerprint.
    pub sub_fpr: String,
    /// Its passphrase.
    pub passphrase: String,
}

impl Key {
    /// The encryption subkey's key id (what a PKESK names).
    pub fn sub_key_id(&self) -> &str {
        &self.sub_fpr[self.sub_fpr.len() - 16..]
    }
    /// The primary key's key id (what a signature by it names).
    pub fn key_id(&self) -> &str {
        &self.fpr[self.fpr.len() - 16..]
    }
}

/// How `gpg` compresses before encrypting.
#[derive(Clone, Copy, Debug)]
pub enum Compress {
    /// GnuPG's choice (ZLIB or ZIP, from the recipient's preferences).
    Default,
    /// `--compress-algo bzip2`.
    Bzip2,
    /// `-z 0`: no compression packet.
    None,
}

impl Gpg {
    /// A new empty home. Panics, saying what to install, when `gpg` is
    /// missing.
    pub fn new() -> Gpg {
        let found = Command::new("gpg")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            found,
            "gpg (GnuPG) is not on PATH: the OpenPGP tests make their keys and messages with it; \
             install it (Debian: apt-get install gnupg; .ci/run does)"
        );
        let home = tempfile::Builder::new()
            .prefix("sealdex-gpg")
            .tempdir_in("/tmp")
            .expect("a temporary GNUPGHOME");
        // A cheap passphrase protection (the agent calibrates its S2K to
        // 100 ms otherwise, paid at every signature): these keys are
        // throw-away, and the tests measure nothing of GnuPG.
        std::fs::write(home.path().join("gpg-agent.conf"), "s2k-calibration 1\n").unwrap();
        Gpg { home }
    }

    /// The home directory.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("gpg");
        c.arg("--homedir")
            .arg(self.home.path())
            .args([
                "--batch",
                "--no-tty",
                "--quiet",
                "--pinentry-mode",
                "loopback",
                "--trust-model",
                "always",
            ])
            .env_remove("GNUPGHOME");
        c
    }

    /// Runs gpg with `args`, `input` on its standard input; returns its
    /// standard output. Panics with its standard error on failure.
    pub fn run(&self, args: &[&str], input: &[u8]) -> Vec<u8> {
        let mut child = self
            .cmd()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("gpg starts");
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().expect("gpg runs");
        writer.join().unwrap();
        assert!(
            out.status.success(),
            "gpg {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Makes a key: a primary of `primary` (`ed25519`, `rsa3072`) for
    /// signing and an encryption subkey of `sub` (`cv25519`, `rsa3072`),
    /// protected by `passphrase`.
    pub fn gen_key(&self, name: &str, primary: &str, sub: &str, passphrase: &str) -> Key {
        let email = format!("{}@example.org", name.to_lowercase());
        let uid = format!("{name} <{email}>");
        self.run(
            &[
                "--passphrase",
                passphrase,
                "--quick-gen-key",
                &uid,
                primary,
                "sign,cert",
                "never",
            ],
            b"",
        );
        let fpr = self.fingerprints(&email)[0].clone();
        self.run(
            &[
                "--passphrase",
                passphrase,
                "--quick-add-key",
                &fpr,
                sub,
                "encr",
                "never",
            ],
            b"",
        );
        let fprs = self.fingerprints(&email);
        assert_eq!(fprs.len(), 2, "{name}: a primary key and one subkey");
        Key {
            email,
            fpr,
            sub_fpr: fprs[1].clone(),
            passphrase: passphrase.to_owned(),
        }
    }

    /// The fingerprints of a key and its subkeys, primary first.
    fn fingerprints(&self, email: &str) -> Vec<String> {
        let out = self.run(&["--with-colons", "--list-keys", email], b"");
        String::from_utf8_lossy(&out)
            .lines()
            .filter(|l| l.starts_with("fpr:"))
            .filter_map(|l| l.split(':').nth(9).map(str::to_owned))
            .collect()
    }

    /// `gpg --export-secret-keys`, armored or binary.
    pub fn export_secret(&self, key: &Key, armor: bool) -> Vec<u8> {
        let mut args = vec!["--passphrase", &key.passphrase, "--export-secret-keys"];
        if armor {
            args.push("--armor");
        }
        args.push(&key.fpr);
        self.run(&args, b"")
    }

    /// Imports a secret key exported by [`Gpg::export_secret`].
    pub fn import_secret(&self, key: &Key, exported: &[u8]) {
        self.run(&["--passphrase", &key.passphrase, "--import"], exported);
    }

    /// Encrypts `data` to `to` (armored unless `binary`), signed by
    /// `signer` when given.
    pub fn encrypt(
        &self,
        data: &[u8],
        to: &[&Key],
        signer: Option<&Key>,
        compress: Compress,
        binary: bool,
    ) -> Vec<u8> {
        let mut args: Vec<String> = vec!["--encrypt".into()];
        if !binary {
            args.push("--armor".into());
        }
        for k in to {
            args.extend(["--recipient".into(), k.fpr.clone()]);
        }
        if let Some(s) = signer {
            args.extend([
                "--sign".into(),
                "--local-user".into(),
                s.fpr.clone(),
                "--passphrase".into(),
                s.passphrase.clone(),
            ]);
        }
        match compress {
            Compress::Default => {}
            Compress::Bzip2 => args.extend(["--compress-algo".into(), "bzip2".into()]),
            Compress::None => args.extend(["-z".into(), "0".into()]),
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run(&args, data)
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .arg("--homedir")
            .arg(self.home.path())
            .args(["--kill", "gpg-agent"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A message split into its header fields (each with its folded lines and
/// line end) and its body; an mbox `From ` line first is dropped.
pub struct Split<'a> {
    /// Header fields, in order.
    pub fields: Vec<&'a [u8]>,
    /// The line end of the blank line between header and body.
    pub blank: &'a [u8],
    /// The body.
    pub body: &'a [u8],
}

impl Split<'_> {
    /// The fields whose name is one of `names` (case-insensitive), or not.
    pub fn fields_named(&self, names: &[&str], keep: bool) -> Vec<&[u8]> {
        self.fields
            .iter()
            .copied()
            .filter(|f| {
                let name = f.split(|&b| b == b':').next().unwrap_or_default();
                let named = names
                    .iter()
                    .any(|n| name.eq_ignore_ascii_case(n.as_bytes()));
                named == keep
            })
            .collect()
    }

    /// The value of the first field named `name`, unfolded, trimmed.
    pub fn value(&self, name: &str) -> Option<String> {
        let f = self.fields_named(&[name], true).into_iter().next()?;
        let colon = f.iter().position(|&b| b == b':')?;
        Some(
            String::from_utf8_lossy(&f[colon + 1..])
                .replace(['\r', '\n'], "")
                .trim()
                .to_owned(),
        )
    }
}

/// Splits an RFC 822 message (test data: well-formed enough).
pub fn split(raw: &[u8]) -> Split<'_> {
    let mut rest = raw;
    if rest.starts_with(b"From ") {
        let nl = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |p| p + 1);
        rest = &rest[nl..];
    }
    let mut fields: Vec<&[u8]> = Vec::new();
    let mut pos = 0;
    loop {
        let line_end = rest[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |p| pos + p + 1);
        let line = &rest[pos..line_end];
        if line.is_empty() {
            return Split {
                fields,
                blank: b"",
                body: b"",
            };
        }
        if line == b"\n" || line == b"\r\n" {
            return Split {
                fields,
                blank: line,
                body: &rest[line_end..],
            };
        }
        let continuation = line[0] == b' ' || line[0] == b'\t';
        match fields.last_mut() {
            Some(last) if continuation => {
                let start = last.as_ptr() as usize - rest.as_ptr() as usize;
                *last = &rest[start..line_end];
            }
            _ => fields.push(line),
        }
        pos = line_end;
    }
}

/// The header fields a PGP/MIME entity carries as protected headers.
pub const PROTECTED: &[&str] = &["Subject", "From", "To", "Cc", "Date", "Message-ID"];

fn is_mime_field(f: &[u8]) -> bool {
    let lower = f.to_ascii_lowercase();
    lower.starts_with(b"content-") || lower.starts_with(b"mime-version:")
}

/// Wraps a message as RFC 3156 PGP/MIME: its MIME fields and body become
/// the encrypted entity (with `protected`, also the fields of
/// [`PROTECTED`], and the outer subject becomes `...`), the other fields
/// stay outside. `ciphertext` encrypts the entity.
pub fn pgp_mime(raw: &[u8], protected: bool, encrypt: impl FnOnce(&[u8]) -> Vec<u8>) -> Vec<u8> {
    let s = split(raw);
    let mut entity = Vec::new();
    for f in s.fields.iter().filter(|f| is_mime_field(f)) {
        entity.extend_from_slice(f);
    }
    if protected {
        for f in s.fields_named(PROTECTED, true) {
            entity.extend_from_slice(f);
        }
    }
    entity.extend_from_slice(if s.blank.is_empty() { b"\n" } else { s.blank });
    entity.extend_from_slice(s.body);
    let ciphertext = encrypt(&entity);
    let mut out = Vec::new();
    for f in s.fields.iter().filter(|f| !is_mime_field(f)) {
        if protected && f.to_ascii_lowercase().starts_with(b"subject:") {
            out.extend_from_slice(b"Subject: ...\n");
        } else {
            out.extend_from_slice(f);
        }
    }
    out.extend_from_slice(
        b"MIME-Version: 1.0\n\
          Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\";\n \
          boundary=\"------------sealdex-pgp-mime\"\n\
          \n\
          This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)\n\
          --------------sealdex-pgp-mime\n\
          Content-Type: application/pgp-encrypted\n\
          Content-Description: PGP/MIME version identification\n\
          \n\
          Version: 1\n\
          \n\
          --------------sealdex-pgp-mime\n\
          Content-Type: application/octet-stream; name=\"encrypted.asc\"\n\
          Content-Description: OpenPGP encrypted message\n\
          Content-Disposition: inline; filename=\"encrypted.asc\"\n\
          \n",
    );
    out.extend_from_slice(&ciphertext);
    out.extend_from_slice(b"\n--------------sealdex-pgp-mime--\n");
    out
}

/// Whether a message can go inline: one text/plain part (or no MIME at
/// all) in ASCII without a transfer encoding, so that the body gpg
/// encrypts is the text a reader sees.
pub fn inline_ok(raw: &[u8]) -> bool {
    let s = split(raw);
    let ct = s
        .value("Content-Type")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let cte = s
        .value("Content-Transfer-Encoding")
        .unwrap_or_default()
        .to_ascii_lowercase();
    (ct.is_empty() || ct.starts_with("text/plain"))
        && (cte.is_empty() || cte == "7bit" || cte == "8bit")
        && s.body.is_ascii()
        && !s.body.is_empty()
}

/// Replaces the body of a message (see [`inline_ok`]) with the armored
/// block `encrypt` makes of it, as a client sending inline PGP does.
pub fn inline(raw: &[u8], encrypt: impl FnOnce(&[u8]) -> Vec<u8>) -> Vec<u8> {
    let s = split(raw);
    let mut out = Vec::new();
    for f in &s.fields {
        out.extend_from_slice(f);
    }
    out.extend_from_slice(if s.blank.is_empty() { b"\n" } else { s.blank });
    out.extend_from_slice(&encrypt(s.body));
    out
}
