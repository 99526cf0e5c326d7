//! The `sealdex` command: index mailboxes into an encrypted store, search
//! it, show what it holds, check it, and change its passphrase.
//!
//! One file per command (`index.rs`, `search.rs`, `show.rs`, `stats.rs`,
//! `demo.rs`, `docs.rs`); what they share: `term.rs` (what reaches the
//! terminal), `fail.rs` (failures and exit codes), `creds.rs` (passphrases),
//! `ops.rs` and `reader.rs` (read requests, answered here or by the process
//! holding the index, `remote.rs`), `output.rs` (how hits print).
//!
//! Exit codes, as ripgrep's: 0 something found, 1 nothing found, 2 error
//! (see `fail.rs`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

mod argv;
mod creds;
mod demo;
mod docs;
mod fail;
mod group;
mod import;
mod index;
#[cfg(feature = "mediator")]
mod mediator;
mod ops;
mod output;
mod reader;
mod remote;
mod search;
mod show;
mod stats;
#[cfg(feature = "mediator")]
mod sync;
mod term;
mod upgrade;

use fail::Fail;

/// Encrypted, on-device full-text search for end-to-end-encrypted mail.
#[derive(Parser)]
#[command(name = "sealdex", version, about, long_about = None)]
pub struct Cli {
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

#[derive(Subcommand)]
enum Command {
    /// Index Maildirs, mbox files, directory trees of RFC 822 files or
    /// single messages, iCalendar files and folders, and (--drive) folders
    /// of documents, creating the index if there is none. Interrupted
    /// runs resume; other sealdex processes can search meanwhile.
    Index(index::IndexArgs),
    /// Search the index: one line per hit, newest first.
    Search(search::SearchArgs),
    /// Print how many messages match a query.
    Count(search::CountArgs),
    /// Show one message: date, from, to, subject, folders, flags,
    /// attachments and the cleaned body.
    Show(show::ShowArgs),
    /// Show what the index holds.
    Stats(stats::JsonArg),
    /// List the messages that could not be indexed, with the reason.
    Failures(stats::JsonArg),
    /// Authenticate every record; exits 1 if any fails.
    Verify,
    /// Convert an index in an older store format to the current one: it
    /// is rebuilt beside itself, then swapped in (a crash at any point
    /// leaves the old index or the new one, complete).
    Upgrade {
        /// The index directory (default: --dir).
        path: Option<PathBuf>,
    },
    /// Apply ops from JSON Lines (one op per line; README.md, "Importing
    /// ops"), creating the index if there is none. A bad line is reported
    /// with its number and skipped; the exit code is 2 if any line failed.
    Import {
        /// The source the records belong to (their ids are unique within it).
        #[arg(long, default_value = "import")]
        source: String,
        /// Lines applied per batch: each batch is durable once applied.
        #[arg(long, default_value_t = 1000)]
        batch: usize,
        /// The file to read, or `-` for standard input.
        input: String,
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
    /// Print a shell completion script (see the README for where to put it).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on stdout.
    Man,
    /// Device group keys for multi-device sync (new, derive, id).
    #[command(subcommand)]
    Group(group::GroupCommand),
    /// Run the multi-device relay (the mediator).
    #[cfg(feature = "mediator")]
    Mediator(mediator::MediatorArgs),
    /// Share this index with the account's other devices through a
    /// mediator: the leader crawls, the others receive (issue 15).
    #[cfg(feature = "mediator")]
    Sync(sync::SyncArgs),
}

fn main() -> ExitCode {
    let args = argv::normalise(std::env::args_os().collect(), &Cli::command());
    let cli = Cli::parse_from(args);
    init_logging(cli.verbose);
    run(cli).unwrap_or_else(Fail::report)
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        // html5ever warns about every odd tag in real mail; only our own
        // warnings are worth a user's attention at the default level.
        0 => "sealdex=warn",
        1 => "sealdex=debug,info",
        // rpgp (OpenPGP) logs key ids and packet layouts at debug: kept
        // out even of -vv, which is for sealdex's own tracing.
        _ => "trace,pgp=info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn index_dir(cli: &Cli) -> Result<PathBuf, Fail> {
    if let Some(d) = &cli.dir {
        return Ok(d.clone());
    }
    directories::ProjectDirs::from("org", "sealdex", "sealdex")
        .map(|p| p.data_dir().to_owned())
        .ok_or_else(|| Fail::msg("no home directory: pass --dir or set SEALDEX_DIR"))
}

fn run(cli: Cli) -> Result<ExitCode, Fail> {
    match &cli.command {
        Command::Demo => return demo::run(),
        Command::Completions { shell } => return docs::completions(*shell, Cli::command()),
        Command::Man => return docs::man(Cli::command()),
        _ => {}
    }
    match &cli.command {
        Command::Group(cmd) => return Ok(group::exit_code(group::run(cmd))),
        #[cfg(feature = "mediator")]
        Command::Mediator(args) => return Ok(group::exit_code(mediator::run(args))),
        _ => {}
    }
    let dir = index_dir(&cli)?;
    let key_file = cli.key_file.as_deref();
    match &cli.command {
        Command::Index(args) => return index::run(args, &dir, key_file),
        #[cfg(feature = "mediator")]
        Command::Sync(args) => return sync::run(args, &dir, key_file),
        Command::Import {
            source,
            batch,
            input,
        } => return index::import(&dir, key_file, source, input, *batch),
        // These check the query before asking for a passphrase.
        Command::Search(args) => return search::search(args, &dir, key_file),
        Command::Count(args) => return search::count(args, &dir, key_file),
        _ => {}
    }
    let cred = creds::existing(key_file)?;
    match &cli.command {
        Command::Show(args) => show::show(args, &dir, cred),
        Command::Stats(args) => stats::stats(args, &dir, cred),
        Command::Failures(args) => stats::failures(args, &dir, cred),
        Command::Verify => stats::verify(&dir, cred),
        Command::Upgrade { path } => upgrade::run(path.as_deref().unwrap_or(&dir), cred),
        Command::Passwd { new_key_file } => stats::passwd(&dir, cred, new_key_file.as_deref()),
        Command::Index(_)
        | Command::Import { .. }
        | Command::Search(_)
        | Command::Count(_)
        | Command::Demo
        | Command::Completions { .. }
        | Command::Man
        | Command::Group(_) => unreachable!("handled above"),
        #[cfg(feature = "mediator")]
        Command::Mediator(_) | Command::Sync(_) => unreachable!("handled above"),
    }
}
