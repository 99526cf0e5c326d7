//! Where the passphrase or key comes from, and the checks on a new one.
//!
//! In order: `--key-file` (exactly 32 raw bytes), `$SEALDEX_PASSPHRASE`, or
//! a prompt on the terminal. OpenPGP secret keys (`index --openpgp-key`)
//! are unlocked with `$SEALDEX_OPENPGP_PASSPHRASE` or a prompt per key. A new passphrase (a new index, `passwd`) is
//! asked twice on a terminal, an empty one is refused however it came, and
//! a weak one draws a warning from zxcvbn's estimate, which knows the
//! dictionary words, names, keyboard walks and dates that guessing tools
//! try first. A warning rather than a refusal: the passphrase is the
//! user's, and the Argon2id cost already slows every guess.

use std::io::IsTerminal;
use std::path::Path;

use sealdex::{Credential, SecretKey};
use zeroize::Zeroizing;

use crate::fail::Fail;
use crate::term;

fn read_key_file(path: &Path) -> Result<Credential, Fail> {
    let bytes = Zeroizing::new(
        std::fs::read(path)
            .map_err(|e| Fail::msg(format!("cannot read the key file {}: {e}", path.display())))?,
    );
    SecretKey::from_slice(&bytes)
        .map(Credential::AppKey)
        .ok_or_else(|| {
            Fail::msg(format!(
                "{}: a key file holds exactly 32 raw bytes, this one {}",
                path.display(),
                bytes.len()
            ))
        })
}

fn prompt(what: &str) -> Result<Zeroizing<String>, Fail> {
    if !std::io::stdin().is_terminal() {
        return Err(Fail::msg(format!(
            "no {} given: set SEALDEX_PASSPHRASE or pass --key-file (there is no terminal to ask on)",
            what.to_lowercase()
        )));
    }
    rpassword::prompt_password(format!("{what}: "))
        .map(Zeroizing::new)
        .map_err(|e| Fail::msg(format!("cannot read the passphrase from the terminal: {e}")))
}

/// The credential of an existing index.
pub fn existing(key_file: Option<&Path>) -> Result<Credential, Fail> {
    if let Some(k) = key_file {
        return read_key_file(k);
    }
    if let Ok(p) = std::env::var("SEALDEX_PASSPHRASE") {
        return Ok(Credential::passphrase(p));
    }
    Ok(Credential::Passphrase(prompt("Passphrase")?))
}

/// A credential that will create or re-wrap an index: from `key_file`, from
/// `env` (the variable's name), or asked twice on the terminal. Refuses an
/// empty passphrase and warns about a weak one.
pub fn new(key_file: Option<&Path>, env: &str, what: &str) -> Result<Credential, Fail> {
    if let Some(k) = key_file {
        return read_key_file(k);
    }
    let p = match std::env::var(env) {
        Ok(p) => Zeroizing::new(p),
        Err(_) => {
            let a = prompt(what)?;
            check(&a)?;
            let b = prompt(&format!("{what} again"))?;
            if *a != *b {
                return Err(Fail::msg(
                    "the two passphrases differ; nothing was created or changed",
                ));
            }
            a
        }
    };
    check(&p)?;
    Ok(Credential::Passphrase(p))
}

/// Refuses an empty passphrase; warns on stderr about a weak one.
fn check(p: &str) -> Result<(), Fail> {
    if p.trim().is_empty() {
        return Err(Fail::msg(
            "an empty passphrase would protect nothing; choose one (or use --key-file)",
        ));
    }
    let estimate = zxcvbn::zxcvbn(p, &["sealdex", "mail", "index"]);
    if (estimate.score() as u8) < 3 {
        let mut advice = String::new();
        if let Some(f) = estimate.feedback() {
            if let Some(w) = f.warning() {
                advice.push_str(&format!(" {w}."));
            }
            for s in f.suggestions() {
                advice.push_str(&format!(" {s}"));
            }
        }
        term::note(&format!(
            "warning: this passphrase is weak (strength {} of 4; about 10^{:.0} guesses would find it).{advice} \
             Anyone with a copy of the index can try guesses offline.",
            estimate.score() as u8,
            estimate.guesses_log10()
        ));
    }
    Ok(())
}

/// The password of an IMAP account: `$SEALDEX_IMAP_PASSWORD`, or asked on
/// the terminal. Never from the command line, where other users and the
/// shell history would see it; never stored.
#[cfg(feature = "imap")]
pub fn imap_password(
    account: &sealdex::backends::imap::Account,
) -> Result<sealdex::backends::imap::Auth, Fail> {
    use sealdex::backends::imap::Auth;
    if let Ok(p) = std::env::var("SEALDEX_IMAP_PASSWORD") {
        return Ok(Auth::Password(Zeroizing::new(p)));
    }
    if !std::io::stdin().is_terminal() {
        return Err(Fail::msg(format!(
            "no IMAP password for {}: set SEALDEX_IMAP_PASSWORD (there is no terminal to ask on)",
            account.url()
        )));
    }
    rpassword::prompt_password(format!("IMAP password for {}: ", account.url()))
        .map(|p| Auth::Password(Zeroizing::new(p)))
        .map_err(|e| {
            Fail::msg(format!(
                "cannot read the IMAP password from the terminal: {e}"
            ))
        })
}

/// Loads and unlocks the OpenPGP secret keys in `files`. A protected key's
/// passphrase is `$SEALDEX_OPENPGP_PASSPHRASE` when set (one passphrase for
/// every key), else asked on the terminal, naming the key's fingerprint.
#[cfg(feature = "openpgp")]
pub fn openpgp_keys(
    files: &[std::path::PathBuf],
) -> Result<sealdex::decrypt::openpgp::SecretKeys, Fail> {
    use sealdex::decrypt::openpgp::{KeyError, SecretKeys};
    const ENV: &str = "SEALDEX_OPENPGP_PASSPHRASE";
    let env = std::env::var(ENV).ok().map(Zeroizing::new);
    let mut keys = SecretKeys::new();
    for file in files {
        let bytes = Zeroizing::new(std::fs::read(file).map_err(|e| {
            Fail::msg(format!(
                "cannot read the OpenPGP key {}: {e}",
                file.display()
            ))
        })?);
        let mut prompt_failed: Option<Fail> = None;
        let added = keys.add_with(&bytes, &mut |fingerprint| {
            if let Some(p) = &env {
                return Some(Zeroizing::new(p.as_bytes().to_vec()));
            }
            if !std::io::stdin().is_terminal() {
                prompt_failed = Some(Fail::msg(format!(
                    "{}: the OpenPGP key {fingerprint} is protected by a passphrase: set {ENV} \
                     (there is no terminal to ask on)",
                    file.display()
                )));
                return None;
            }
            match rpassword::prompt_password(format!(
                "Passphrase for OpenPGP key {fingerprint} ({}): ",
                file.display()
            )) {
                Ok(p) => Some(Zeroizing::new(p.into_bytes())),
                Err(e) => {
                    prompt_failed = Some(Fail::msg(format!(
                        "cannot read the passphrase from the terminal: {e}"
                    )));
                    None
                }
            }
        });
        match added {
            Ok(_) => {}
            Err(_) if prompt_failed.is_some() => {
                return Err(prompt_failed.unwrap_or_else(|| Fail::msg("no passphrase")));
            }
            Err(KeyError::WrongPassphrase { fingerprint }) => {
                let from = if env.is_some() {
                    ENV
                } else {
                    "the passphrase given"
                };
                return Err(Fail::msg(format!(
                    "{}: {from} does not unlock the OpenPGP key {fingerprint}; nothing was indexed",
                    file.display()
                )));
            }
            Err(e) => return Err(Fail::msg(format!("{}: {e}", file.display()))),
        }
    }
    term::note(&format!(
        "decrypting OpenPGP mail with {} key(s): {}",
        keys.len(),
        keys.fingerprints().join(", ")
    ));
    Ok(keys)
}
