//! The `sealdex` command: index mailboxes into an encrypted store, check it,
//! and change its passphrase.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use sealdex::decrypt::PassThrough;
use sealdex::pipeline::{Control, IndexOptions, Progress};
use sealdex::{
    Credential, Error, Index, IndexConfig, InvertedStatus, KdfParams, Order, PageCursor,
    SearchMode, SearchOptions, SecretKey, Store,
};

mod demo;
mod group;
#[cfg(feature = "mediator")]
mod mediator;
mod output;

/// Encrypted, on-device full-text search for end-to-end-encrypted mail.
#[derive(Parser)]
#[command(name = "sealdex", version, about, long_about = None)]
struct Cli {
    /// Index directory [default: $SEALDEX_DIR, else the platform data directory]
    #[arg(long, global = true, env = "SEALDEX_DIR")]
    dir: Option<PathBuf>,

    /// Unlock with a file holding a 32-byte key instead of a passphrase.
    /// Without it the passphrase comes from $SEALDEX_PASSPHRASE or a prompt.
    #[arg(long, global = true)]
    key_file: Option<PathBuf>,

    /// Log more (-v: debug, -vv: trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum OrderArg {
    Newest,
    Relevance,
}

#[derive(Subcommand)]
enum Command {
    /// Index a Maildir, an mbox file or a directory tree of RFC 822 files,
    /// creating the index if there is none. Interrupted runs resume.
    Index {
        /// Mailboxes to index.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Messages per batch.
        #[arg(long, default_value_t = 512)]
        batch: usize,
    },
    /// Show what the index holds.
    Stats {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Authenticate every record; exits non-zero on any failure.
    Verify,
    /// Search the index. Prints one line per hit, newest first.
    Search {
        /// Print one JSON object per hit.
        #[arg(long)]
        json: bool,
        /// Hits per page.
        #[arg(long, default_value_t = 20, conflicts_with = "all")]
        limit: usize,
        /// Print every hit.
        #[arg(long)]
        all: bool,
        /// Result order.
        #[arg(long, value_enum, default_value_t = OrderArg::Newest)]
        order: OrderArg,
        /// Continue after the cursor a previous page printed.
        #[arg(long)]
        cursor: Option<String>,
        /// Cache budget in MiB (records beyond it are streamed from disk).
        #[arg(long, default_value_t = 512)]
        cache_mb: usize,
        /// Search mode: `auto` uses the inverted index when it is current
        /// and the forward scan otherwise; `forward` and `inverted` force one
        /// (the results are the same).
        #[arg(long, default_value = "auto")]
        mode: SearchMode,
        /// The query, e.g. `from:alice "quarterly report" -draft after:2024-01-01`.
        #[arg(required = true, num_args = 1.., allow_hyphen_values = true)]
        query: Vec<String>,
    },
    /// Build a throw-away index from the bundled sample mailbox and run a few
    /// searches on it. No passphrase, no network, nothing left behind.
    Demo,
    /// Change the passphrase (or key). The new one comes from
    /// $SEALDEX_NEW_PASSPHRASE, --new-key-file, or a prompt.
    Passwd {
        /// Switch to a 32-byte key file.
        #[arg(long)]
        new_key_file: Option<PathBuf>,
    },
    /// Device group keys for multi-device sync (new, derive, id).
    #[command(subcommand)]
    Group(group::GroupCommand),
    /// Run the multi-device relay (the mediator).
    #[cfg(feature = "mediator")]
    Mediator(mediator::MediatorArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sealdex: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        // html5ever warns about every odd tag in real mail; only our own
        // warnings are worth a user's attention at the default level.
        0 => "sealdex=warn",
        1 => "sealdex=debug,info",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn index_dir(cli: &Cli) -> Result<PathBuf, Error> {
    if let Some(d) = &cli.dir {
        return Ok(d.clone());
    }
    directories::ProjectDirs::from("org", "sealdex", "sealdex")
        .map(|p| p.data_dir().to_owned())
        .ok_or_else(|| Error::NotFound {
            path: PathBuf::from("(no home directory: pass --dir or set SEALDEX_DIR)"),
        })
}

fn read_key_file(path: &Path) -> Result<Credential, Error> {
    let bytes = zeroize::Zeroizing::new(std::fs::read(path).map_err(|e| Error::Io {
        path: path.to_owned(),
        source: e,
    })?);
    SecretKey::from_slice(&bytes)
        .map(Credential::AppKey)
        .ok_or_else(|| Error::Io {
            path: path.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "a key file holds exactly 32 raw bytes, this one {}",
                    bytes.len()
                ),
            ),
        })
}

fn prompt(what: &str) -> Result<String, Error> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::Io {
            path: PathBuf::from("<stdin>"),
            source: std::io::Error::other(format!(
                "no {what} given: set SEALDEX_PASSPHRASE or pass --key-file (there is no terminal to ask on)"
            )),
        });
    }
    rpassword::prompt_password(format!("{what}: ")).map_err(|e| Error::Io {
        path: PathBuf::from("<tty>"),
        source: e,
    })
}

fn credential(cli: &Cli) -> Result<Credential, Error> {
    if let Some(k) = &cli.key_file {
        return read_key_file(k);
    }
    if let Ok(p) = std::env::var("SEALDEX_PASSPHRASE") {
        return Ok(Credential::passphrase(p));
    }
    Ok(Credential::passphrase(prompt("Passphrase")?))
}

fn new_credential(new_key_file: Option<&Path>) -> Result<Credential, Error> {
    if let Some(k) = new_key_file {
        return read_key_file(k);
    }
    if let Ok(p) = std::env::var("SEALDEX_NEW_PASSPHRASE") {
        return Ok(Credential::passphrase(p));
    }
    let a = zeroize::Zeroizing::new(prompt("New passphrase")?);
    let b = zeroize::Zeroizing::new(prompt("New passphrase again")?);
    if *a != *b {
        return Err(Error::Io {
            path: PathBuf::from("<tty>"),
            source: std::io::Error::other("the two passphrases differ; nothing was changed"),
        });
    }
    Ok(Credential::passphrase(a.to_string()))
}

fn run(cli: Cli) -> Result<ExitCode, Error> {
    if let Command::Demo = cli.command {
        return demo::run().map(|()| ExitCode::SUCCESS);
    }
    match &cli.command {
        Command::Group(cmd) => return Ok(group::exit_code(group::run(cmd))),
        #[cfg(feature = "mediator")]
        Command::Mediator(args) => return Ok(group::exit_code(mediator::run(args))),
        _ => {}
    }
    let dir = index_dir(&cli)?;
    let cred = credential(&cli)?;
    match &cli.command {
        Command::Demo | Command::Group(_) => unreachable!("handled above"),
        #[cfg(feature = "mediator")]
        Command::Mediator(_) => unreachable!("handled above"),
        Command::Search {
            json,
            limit,
            all,
            order,
            cursor,
            cache_mb,
            mode,
            query,
        } => {
            let config = IndexConfig {
                cache_bytes: cache_mb.saturating_mul(1 << 20),
                ..IndexConfig::default()
            };
            let index = Index::open(&dir, &cred, config)?;
            let cursor = match cursor {
                Some(c) => Some(PageCursor::decode(c).ok_or_else(|| Error::Io {
                    path: PathBuf::from("--cursor"),
                    source: std::io::Error::other("not a cursor printed by sealdex search"),
                })?),
                None => None,
            };
            let options = SearchOptions {
                order: match order {
                    OrderArg::Newest => Order::Newest,
                    OrderArg::Relevance => Order::Relevance,
                },
                limit: if *all { None } else { Some(*limit) },
                cursor,
                mode: *mode,
                ..SearchOptions::default()
            };
            let results = index.search(&query.join(" "), &options)?;
            output::print_results(&results, *json, true);
            Ok(ExitCode::SUCCESS)
        }
        Command::Index { paths, batch } => {
            let (store, created) = Store::open_or_create(&dir, &cred, KdfParams::default())?;
            if created {
                eprintln!("created a new index in {}", dir.display());
            }
            let index = Index::from_store(store, IndexConfig::default())?;
            let options = IndexOptions {
                batch_messages: (*batch).max(1),
                ..IndexOptions::default()
            };
            let mut any_failed = false;
            for path in paths {
                let mut source = sealdex::backends::open_path(path).map_err(|e| Error::Source {
                    source_name: path.display().to_string(),
                    detail: e.to_string(),
                })?;
                let mut reporter = Reporter::new(path);
                let report = index.index_with(
                    source.as_mut(),
                    &PassThrough::default(),
                    &options,
                    &Control::new(),
                    &mut |p| reporter.update(p),
                )?;
                reporter.finish();
                any_failed |= report.failed > 0;
                eprintln!(
                    "{}: stored {}, deleted {}, failed {} in {:.1}s",
                    path.display(),
                    report.stored,
                    report.deleted,
                    report.failed,
                    report.elapsed.as_secs_f64()
                );
            }
            if any_failed {
                eprintln!(
                    "failed messages are recorded and retried on later runs; `sealdex stats` lists the reasons"
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Stats { json } => {
            let store = Store::open(&dir, &cred)?;
            let manifest = store.manifest()?;
            let mut by_reason: BTreeMap<String, u64> = BTreeMap::new();
            for f in store.failures()? {
                *by_reason.entry(f.reason).or_default() += 1;
            }
            let bytes = store.disk_bytes();
            let inverted_bytes = dir_bytes(&dir.join("inverted"));
            let index = Index::from_store(store, IndexConfig::default())?;
            let (inverted, inverted_docs) = match index.inverted_status()? {
                InvertedStatus::Disabled => ("disabled", None),
                InvertedStatus::Current { documents, .. } => ("current", Some(documents)),
                // Opening started a catch-up that this command does not wait for.
                InvertedStatus::Building | InvertedStatus::Behind => ("behind", None),
                InvertedStatus::Broken => ("damaged", None),
            };
            if *json {
                let v = serde_json::json!({
                    "messages": manifest.documents,
                    "failures": manifest.failures,
                    "failures_by_reason": by_reason,
                    "bytes_on_disk": bytes,
                    "inverted": inverted,
                    "inverted_documents": inverted_docs,
                    "inverted_bytes_on_disk": inverted_bytes,
                    "path": dir.display().to_string(),
                });
                println!("{v}");
            } else {
                println!("index:       {}", dir.display());
                println!("messages:    {}", manifest.documents);
                println!("failures:    {}", manifest.failures);
                for (reason, n) in &by_reason {
                    println!("  {reason:<16} {n}");
                }
                println!("on disk:     {:.1} MiB", bytes as f64 / (1 << 20) as f64);
                match inverted {
                    "current" => println!(
                        "inverted:    current, {} documents, {:.1} MiB",
                        inverted_docs.unwrap_or(0),
                        inverted_bytes as f64 / (1 << 20) as f64
                    ),
                    "behind" => println!(
                        "inverted:    behind the store (caught up by the next `sealdex index`; \
                         searches use the forward scan meanwhile)"
                    ),
                    other => println!("inverted:    {other}"),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify => {
            let store = Store::open(&dir, &cred)?;
            let report = store.verify();
            for p in &report.problems {
                eprintln!("verify: {p}");
            }
            if report.is_ok() {
                println!(
                    "ok: {} documents and {} other records authenticated",
                    report.documents_ok, report.other_ok
                );
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("verify: {} problem(s) found", report.problems.len());
                Ok(ExitCode::FAILURE)
            }
        }
        Command::Passwd { new_key_file } => {
            let store = Store::open(&dir, &cred)?;
            let new = new_credential(new_key_file.as_deref())?;
            store.change_credential(&new, KdfParams::default())?;
            eprintln!("passphrase changed");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Bytes of the files under `dir` (0 if it does not exist).
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Shows progress: a bar on a terminal, a log line every few seconds otherwise.
struct Reporter {
    bar: Option<indicatif::ProgressBar>,
    label: String,
    last_line: Instant,
}

impl Reporter {
    fn new(path: &Path) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {pos}/{len} {msg} ({eta})",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_prefix(path.display().to_string());
            bar
        });
        Reporter {
            bar,
            label: path.display().to_string(),
            last_line: Instant::now(),
        }
    }

    fn update(&mut self, p: &Progress) {
        if let Some(bar) = &self.bar {
            if let Some(t) = p.total {
                bar.set_length(t);
            }
            bar.set_position(p.done);
            bar.set_message(format!("{:.0} msg/s, {} failed", p.rate, p.failed));
        } else if self.last_line.elapsed() >= Duration::from_secs(2) {
            self.last_line = Instant::now();
            let total = p.total.map(|t| format!("/{t}")).unwrap_or_default();
            let eta = p
                .eta
                .map(|e| format!(", eta {}s", e.as_secs()))
                .unwrap_or_default();
            eprintln!(
                "{}: {:?} {}{} ({:.0} msg/s, {} failed{})",
                self.label, p.phase, p.done, total, p.rate, p.failed, eta
            );
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
