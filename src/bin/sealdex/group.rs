//! `sealdex group`: make, derive and identify device group keys (issue 14).

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use sealdex::sync::SyncError;
use sealdex::sync::keys::{GroupKey, GroupKeys};
use zeroize::Zeroizing;

/// Device group keys: the key all devices of one account share.
#[derive(Subcommand)]
pub enum GroupCommand {
    /// Write a random 32-byte device group key to FILE (mode 0600), to hand
    /// to the account's other devices out of band.
    New {
        /// Where to write the key; must not exist.
        #[arg(long)]
        out: PathBuf,
    },
    /// Derive the device group key from the account's secret (1 to 64 raw
    /// bytes in FILE), as every device of the account can alone.
    Derive {
        /// File holding the account secret, raw bytes.
        #[arg(long)]
        account_secret_file: PathBuf,
        /// Where to write the key; must not exist.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the device group id (64 lowercase hex digits): the public name
    /// the relay knows the group by.
    Id {
        /// File holding the 32-byte device group key.
        #[arg(long)]
        group_key: PathBuf,
    },
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> SyncError {
    move |source| SyncError::Io { context, source }
}

/// Runs one `group` subcommand.
pub fn run(cmd: &GroupCommand) -> Result<(), SyncError> {
    match cmd {
        GroupCommand::New { out } => write_key(out, &GroupKey::random()?),
        GroupCommand::Derive {
            account_secret_file,
            out,
        } => {
            let secret = Zeroizing::new(
                std::fs::read(account_secret_file)
                    .map_err(io(format!("reading {}", account_secret_file.display())))?,
            );
            write_key(out, &GroupKey::derive_from_account_secret(&secret)?)
        }
        GroupCommand::Id { group_key } => {
            let keys = GroupKeys::derive(&read_group_key(group_key)?)?;
            println!("{}", keys.group_id().to_hex());
            Ok(())
        }
    }
}

/// Reads a 32-byte group key file.
pub fn read_group_key(path: &Path) -> Result<GroupKey, SyncError> {
    let bytes =
        Zeroizing::new(std::fs::read(path).map_err(io(format!("reading {}", path.display())))?);
    GroupKey::from_slice(&bytes)
}

fn write_key(out: &Path, key: &GroupKey) -> Result<(), SyncError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(out).map_err(io(format!(
        "creating {} (it must not exist)",
        out.display()
    )))?;
    f.write_all(key.expose())
        .and_then(|()| f.sync_all())
        .map_err(io(format!("writing {}", out.display())))
}

/// The exit code for a sync command's result, printing its error.
pub fn exit_code(r: Result<(), SyncError>) -> std::process::ExitCode {
    match r {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sealdex: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
