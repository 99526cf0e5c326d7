//! `sealdex index`: check the sources, create or open the index, index each
//! source with progress, answer other processes meanwhile, and stop cleanly
//! on Ctrl-C.
//!
//! Order matters: every path is opened (and a single file sniffed) before
//! the index is created, so a typo leaves nothing behind. Ctrl-C cancels
//! through the pipeline's `Control`: the batch being written finishes, its
//! checkpoint lands, and the next run resumes after it. A second Ctrl-C
//! exits at once, which loses at most that batch (the store is crash-safe).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sealdex::decrypt::PassThrough;
use sealdex::pipeline::{Control, IndexOptions, Phase, Progress};
use sealdex::{Decryptor, Error, Index, IndexConfig, KdfParams, Source, Store};

use crate::fail::{self, FOUND, Fail};
use crate::term;

/// `sealdex index`.
#[derive(clap::Args, Debug)]
pub struct IndexArgs {
    /// Mailboxes to index: Maildirs, mbox files, directory trees of RFC 822
    /// files, single RFC 822 files, or IMAP accounts as
    /// imap://USER@HOST[:PORT] (STARTTLS; plain text only to a loopback
    /// address) or imaps://USER@HOST[:PORT]; and calendars: iCalendar (.ics)
    /// files or folders of them (told by extension and content). The IMAP
    /// password comes from $SEALDEX_IMAP_PASSWORD or a prompt.
    #[arg(required_unless_present = "drive")]
    paths: Vec<PathBuf>,
    /// A PEM file of CA certificates to trust besides the system's, for an
    /// IMAP server with a self-signed certificate.
    #[cfg(feature = "imap")]
    #[arg(long, value_name = "FILE")]
    imap_ca: Option<PathBuf>,
    /// A folder of documents to index as drive files (text, Markdown,
    /// HTML, PDF, DOCX, ODT; other types are skipped with a reason).
    /// Repeatable.
    #[arg(long, value_name = "DIR")]
    drive: Vec<PathBuf>,
    /// Messages per batch (a checkpoint after each).
    #[arg(long, default_value_t = 512)]
    batch: usize,
    /// An OpenPGP secret key file (armored or binary, as `gpg
    /// --export-secret-keys` writes it) to decrypt PGP/MIME and inline PGP
    /// mail with; repeat for several. A protected key's passphrase comes
    /// from $SEALDEX_OPENPGP_PASSPHRASE or a prompt. The file is read,
    /// never copied into the index.
    #[cfg(feature = "openpgp")]
    #[arg(long = "openpgp-key", value_name = "FILE")]
    openpgp_keys: Vec<PathBuf>,
}

/// The decryptor for this run: OpenPGP when keys were given, else the
/// plaintext one. Keys are loaded (and unlocked) before anything else, so a
/// wrong passphrase leaves nothing behind.
fn decryptor(args: &IndexArgs) -> Result<Box<dyn Decryptor>, Fail> {
    #[cfg(feature = "openpgp")]
    if !args.openpgp_keys.is_empty() {
        let keys = crate::creds::openpgp_keys(&args.openpgp_keys)?;
        return Ok(Box::new(sealdex::decrypt::openpgp::OpenPgp::new(keys)));
    }
    let _ = args;
    Ok(Box::new(PassThrough::default()))
}

/// The IMAP source for an `imap://` or `imaps://` argument, logged in
/// already (a wrong password fails here, before an index is created), or
/// `None` for a local path.
#[cfg(feature = "imap")]
fn imap_source(arg: &Path, ca: Option<&Path>) -> Result<Option<Box<dyn Source>>, Fail> {
    use sealdex::backends::imap::{Account, Imap};
    let Some(url) = arg
        .to_str()
        .filter(|s| s.starts_with("imap://") || s.starts_with("imaps://"))
    else {
        return Ok(None);
    };
    let account = Account::parse(url).map_err(|e| Fail::msg(e.message().to_owned()))?;
    let auth = crate::creds::imap_password(&account)?;
    let mut imap = Imap::new(account, auth);
    if let Some(ca) = ca {
        imap = imap.with_ca_file(ca);
    }
    imap.connect()
        .map_err(|e| Fail::msg(format!("{url}: {e}")))?;
    Ok(Some(Box::new(imap)))
}

/// Whether an index exists in `dir` (its keyring is there).
fn exists(dir: &Path) -> bool {
    dir.join("keyring").is_file()
}

pub fn run(args: &IndexArgs, dir: &Path, key_file: Option<&Path>) -> Result<ExitCode, Fail> {
    // The keys, then every source: nothing is created for a path that is
    // not there, a login that fails or a key that does not unlock. Mail
    // (local or IMAP) is read with the OpenPGP keys when given.
    let mail: Arc<dyn Decryptor> = Arc::from(decryptor(args)?);
    let mut sources: Vec<Opened<'_>> = Vec::new();
    for path in &args.paths {
        #[cfg(feature = "imap")]
        if let Some(source) = imap_source(path, args.imap_ca.as_deref())? {
            sources.push(Opened {
                path,
                source,
                decryptor: Arc::clone(&mail),
                what: "mail",
            });
            continue;
        }
        sources.push(open_mail_or_calendar(path, &mail)?);
    }
    for path in &args.drive {
        sources.push(open_drive(path)?);
    }
    let index = Arc::new(open_or_create(dir, key_file)?);
    let server = crate::remote::Server::start(Arc::clone(&index), dir);

    let control = Control::new();
    {
        let control = control.clone();
        let pressed = std::sync::atomic::AtomicBool::new(false);
        // Fails only if a handler is already set, which this command never does twice.
        let _ = ctrlc::set_handler(move || {
            if pressed.swap(true, std::sync::atomic::Ordering::SeqCst) {
                term::note(
                    "interrupted again: stopping now; the next run resumes from the last checkpoint",
                );
                std::process::exit(fail::INTERRUPTED.into());
            }
            term::note(
                "interrupted: finishing the batch being written (Ctrl-C again to stop at once)…",
            );
            control.cancel();
        });
    }

    let options = IndexOptions {
        batch_messages: args.batch.max(1),
        ..IndexOptions::default()
    };
    let mut any_failed = false;
    let mut empty: Vec<(&str, String)> = Vec::new();
    for Opened {
        path,
        mut source,
        decryptor,
        what,
    } in sources
    {
        let name = source.name().to_owned();
        let before = index.store().checkpoint(&name)?.unwrap_or_default();
        if let Some(cp) = index.store().checkpoint(&name)?
            && cp.cursor.is_some()
            && !cp.synced
        {
            term::note(&format!(
                "{}: resuming an interrupted run; {} message(s) already done",
                path.display(),
                cp.done
            ));
        }
        let mut reporter = Reporter::new(path);
        let result = index.index_with(
            source.as_mut(),
            decryptor.as_ref(),
            &options,
            &control,
            &mut |p| reporter.update(p),
        );
        reporter.finish();
        let report = match result {
            Ok(r) => r,
            Err(Error::Cancelled) => {
                drop(server);
                let kept = index.store().manifest()?.documents;
                let paths: Vec<String> = args
                    .paths
                    .iter()
                    .map(|p| p.display().to_string())
                    .chain(
                        args.drive
                            .iter()
                            .map(|d| format!("--drive {}", d.display())),
                    )
                    .collect();
                return Err(Fail::Interrupted(format!(
                    "interrupted: the index keeps {kept} message(s), everything up to the last \
                     checkpoint; run `sealdex index {}` again to resume where this run stopped",
                    paths.join(" ")
                )));
            }
            Err(e) => return Err(e.into()),
        };
        any_failed |= report.failed > 0;
        term::note(&format!(
            "{}: stored {}, deleted {}, failed {} in {:.1}s",
            path.display(),
            report.stored,
            report.deleted,
            report.failed,
            report.elapsed.as_secs_f64()
        ));
        // A first full listing that stored nothing: an empty folder, or a
        // tree of files none of which is mail. (Later runs only apply
        // changes, where storing nothing is the normal case.)
        if !before.synced && before.done == 0 && report.stored == 0 {
            empty.push((
                what,
                if report.failed > 0 {
                    format!(
                        "{} ({} file(s), none of them {what}: `sealdex failures` says why)",
                        path.display(),
                        report.failed
                    )
                } else {
                    path.display().to_string()
                },
            ));
        }
    }
    drop(server);
    if any_failed {
        term::note(
            "failed messages are recorded and retried on later runs; `sealdex failures` lists them with reasons",
        );
    }
    if !empty.is_empty() {
        let what = if empty.iter().all(|(w, _)| *w == empty[0].0) {
            empty[0].0
        } else {
            "messages, events or documents"
        };
        let paths: Vec<String> = empty.into_iter().map(|(_, p)| p).collect();
        return Err(Fail::msg(format!(
            "no {what} found in {}",
            paths.join(", ")
        )));
    }
    Ok(ExitCode::from(FOUND))
}

/// A source to index, with the decryptor that reads what it fetches and
/// what it holds, for messages.
struct Opened<'a> {
    path: &'a Path,
    source: Box<dyn Source>,
    decryptor: Arc<dyn Decryptor>,
    what: &'static str,
}

/// A mailbox, or (feature `calendar`) an iCalendar file or folder.
fn open_mail_or_calendar<'a>(
    path: &'a Path,
    mail: &Arc<dyn Decryptor>,
) -> Result<Opened<'a>, Fail> {
    let fail = |e: sealdex::SourceError| Fail::msg(e.message().to_owned());
    #[cfg(feature = "calendar")]
    if sealdex::backends::is_calendar(path) {
        return Ok(Opened {
            path,
            source: Box::new(sealdex::backends::Ics::open(path).map_err(fail)?),
            decryptor: Arc::new(sealdex::calendar::IcsPassThrough::default()),
            what: "calendar events",
        });
    }
    Ok(Opened {
        path,
        source: sealdex::backends::open_path(path).map_err(fail)?,
        decryptor: Arc::clone(mail),
        what: "mail",
    })
}

/// A folder of documents (feature `drive`).
fn open_drive(path: &Path) -> Result<Opened<'_>, Fail> {
    #[cfg(feature = "drive")]
    {
        let source = sealdex::backends::Drive::open(path)
            .map_err(|e| Fail::msg(format!("--drive: {}", e.message())))?;
        Ok(Opened {
            path,
            source: Box::new(source),
            decryptor: Arc::new(sealdex::backends::drive::DocumentPassThrough::default()),
            what: "documents",
        })
    }
    #[cfg(not(feature = "drive"))]
    {
        Err(Fail::msg(format!(
            "--drive {}: this sealdex was built without the `drive` feature",
            path.display()
        )))
    }
}

/// Opens the index in `dir`, or creates it under a new passphrase (asked
/// twice on a terminal, see `creds.rs`).
pub(crate) fn open_or_create(dir: &Path, key_file: Option<&Path>) -> Result<Index, Fail> {
    let (store, created) = if exists(dir) {
        let cred = crate::creds::existing(key_file)?;
        (Store::open(dir, &cred)?, false)
    } else {
        let cred = crate::creds::new(key_file, "SEALDEX_PASSPHRASE", "New passphrase")?;
        Store::open_or_create(dir, &cred, KdfParams::default())?
    };
    if created {
        term::note(&format!("created a new index in {}", dir.display()));
    }
    Ok(Index::from_store(store, IndexConfig::default())?)
}

/// `sealdex import` (`import.rs`): the input is checked before an index is
/// created, as `index` checks its paths.
pub fn import(
    dir: &Path,
    key_file: Option<&Path>,
    source: &str,
    input: &str,
    batch: usize,
) -> Result<ExitCode, Fail> {
    if input != "-" && !Path::new(input).is_file() {
        return Err(Fail::msg(format!(
            "{input}: no such file to import (give a file, or - for standard input)"
        )));
    }
    let index = open_or_create(dir, key_file)?;
    Ok(crate::import::run(&index, source, input, batch)?)
}

/// Shows progress: on a terminal a spinner while the source is listed and
/// its size unknown, then a bar; otherwise a log line every few seconds.
struct Reporter {
    bar: Option<indicatif::ProgressBar>,
    label: String,
    sized: bool,
    last_line: Instant,
}

impl Reporter {
    fn new(path: &Path) -> Self {
        let label = term::line(&path.display().to_string());
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {prefix} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar.set_prefix(label.clone());
            bar.set_message("listing…");
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Reporter {
            bar,
            label,
            sized: false,
            last_line: Instant::now(),
        }
    }

    fn update(&mut self, p: &Progress) {
        if let Some(bar) = &self.bar {
            match p.total {
                Some(t) if t > 0 => {
                    if !self.sized {
                        self.sized = true;
                        bar.set_style(
                            indicatif::ProgressStyle::with_template(
                                "{prefix} [{bar:30}] {pos}/{len} {msg} ({eta})",
                            )
                            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                            .progress_chars("=> "),
                        );
                    }
                    bar.set_length(t);
                    bar.set_position(p.done.min(t));
                    bar.set_message(format!("{:.0} msg/s, {} failed", p.rate, p.failed));
                }
                // Size unknown (changes, a source without a count): the
                // spinner counts instead of showing a bar of 0/0.
                _ => bar.set_message(format!(
                    "{} {} ({:.0} msg/s, {} failed)",
                    match p.phase {
                        Phase::Retrying => "retrying",
                        Phase::Syncing => "applying changes:",
                        Phase::Listing | Phase::Done => "indexed",
                    },
                    p.done,
                    p.rate,
                    p.failed
                )),
            }
        } else if self.last_line.elapsed() >= Duration::from_secs(2) {
            self.last_line = Instant::now();
            let total = p.total.map(|t| format!("/{t}")).unwrap_or_default();
            let eta = p
                .eta
                .map(|e| format!(", eta {}s", e.as_secs()))
                .unwrap_or_default();
            term::note(&format!(
                "{}: {:?} {}{} ({:.0} msg/s, {} failed{})",
                self.label, p.phase, p.done, total, p.rate, p.failed, eta
            ));
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
