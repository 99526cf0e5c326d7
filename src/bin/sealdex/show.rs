//! `sealdex show`: one stored message as a person reads it.

use std::path::Path;
use std::process::ExitCode;

use sealdex::{Credential, IndexConfig};

use crate::fail::{FOUND, Fail, NOT_FOUND};
use crate::ops::{Request, Response};
use crate::reader::{self, Reader};
use crate::term::{self, Out};

/// `sealdex show`.
#[derive(clap::Args, Debug)]
pub struct ShowArgs {
    /// The message's location as `search` prints it: a file's path for a
    /// directory tree (relative paths work), else `SOURCE#ID`.
    #[arg(allow_hyphen_values = true)]
    id: String,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// The location in the form the index knows: a path that exists is made
/// absolute and canonical, as the tree source names its files.
fn canonical(id: &str) -> String {
    let p = Path::new(id);
    if !id.contains('#')
        && p.exists()
        && let Ok(c) = std::fs::canonicalize(p)
    {
        return c.to_string_lossy().into_owned();
    }
    id.to_owned()
}

pub fn show(args: &ShowArgs, dir: &Path, cred: Credential) -> Result<ExitCode, Fail> {
    let reader = Reader::open(dir, cred, IndexConfig::default())?;
    let req = Request::Show {
        id: canonical(&args.id),
    };
    let Response::Show(record) = reader.ask(&req)? else {
        return Err(reader::unexpected());
    };
    match record {
        Some(r) => {
            crate::output::print_record(&mut Out::new(), &r, args.json)?;
            Ok(ExitCode::from(FOUND))
        }
        None => {
            term::note(&format!(
                "sealdex: no message {} in the index (give the location `sealdex search` prints)",
                args.id
            ));
            Ok(ExitCode::from(NOT_FOUND))
        }
    }
}
