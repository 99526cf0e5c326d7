//! `sealdex search` and `sealdex count`.
//!
//! The query is the words left over once options are taken out, joined by
//! spaces, so options may come anywhere: `sealdex search linux --json`,
//! `sealdex search --limit 5 is:unread`. A word that starts with `-` is an
//! exclusion (`-draft`), unless it is one of sealdex's own options
//! (`--json`, `--limit`, `-v`, …); after `--` every word is query text,
//! `--json` included. Ripgrep's and grep's rule, and the reason a query
//! never silently swallows an option again.

use std::process::ExitCode;

use sealdex::IndexConfig;

use crate::fail::{FOUND, Fail, NOT_FOUND};
use crate::ops::{ModeArg, OrderArg, Request, Response, SearchReq};
use crate::output::{self, Style};
use crate::reader::{self, Reader};
use crate::term::{ColorChoice, Out};

/// The query words (see the module documentation for how options mix in).
#[derive(clap::Args, Debug)]
pub struct QueryArgs {
    /// The query, e.g. `from:alice "quarterly report" -draft after:2024-01-01`.
    /// Options may come before, among or after its words; after `--`
    /// everything is query text.
    // `argv.rs` moves the query's words after a `--` before clap parses.
    #[arg(required = true, value_name = "QUERY")]
    query: Vec<String>,
    /// Search mode: `auto` uses the inverted index when it is current and
    /// the forward scan otherwise; `forward` and `inverted` force one (the
    /// results are the same).
    #[arg(long, value_enum, default_value_t = ModeArg::Auto)]
    mode: ModeArg,
    /// Cache budget in MiB (records beyond it are streamed from disk).
    #[arg(long, default_value_t = 512)]
    cache_mb: usize,
}

impl QueryArgs {
    fn text(&self) -> String {
        self.query.join(" ")
    }

    fn config(&self) -> IndexConfig {
        IndexConfig {
            cache_bytes: self.cache_mb.saturating_mul(1 << 20),
            ..IndexConfig::default()
        }
    }
}

/// `sealdex search`.
#[derive(clap::Args, Debug)]
pub struct SearchArgs {
    #[command(flatten)]
    q: QueryArgs,
    /// One JSON object per hit, then a summary object with the total and
    /// the next page's cursor.
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
    /// Colour the output: `auto` on a terminal unless NO_COLOR is set.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    color: ColorChoice,
}

/// `sealdex count`.
#[derive(clap::Args, Debug)]
pub struct CountArgs {
    #[command(flatten)]
    q: QueryArgs,
}

pub fn search(
    args: &SearchArgs,
    dir: &std::path::Path,
    key_file: Option<&std::path::Path>,
) -> Result<ExitCode, Fail> {
    let text = args.q.text();
    // A bad query is reported before anything is unlocked.
    crate::ops::parse(&text)?;
    let cred = crate::creds::existing(key_file)?;
    let reader = Reader::open(dir, cred, args.q.config())?;
    let req = Request::Search(SearchReq {
        query: text.clone(),
        order: args.order,
        limit: (!args.all).then_some(args.limit),
        cursor: args.cursor.clone(),
        mode: args.q.mode,
    });
    let Response::Search(page) = reader.ask(&req).map_err(|f| f.with_query(&text))? else {
        return Err(reader::unexpected());
    };
    let style = Style {
        json: args.json,
        colour: !args.json && args.color.enabled(),
        width: crate::term::stdout_width(),
        summary: true,
    };
    output::print_page(&mut Out::new(), &page, &style)?;
    Ok(ExitCode::from(if page.total > 0 {
        FOUND
    } else {
        NOT_FOUND
    }))
}

pub fn count(
    args: &CountArgs,
    dir: &std::path::Path,
    key_file: Option<&std::path::Path>,
) -> Result<ExitCode, Fail> {
    let text = args.q.text();
    crate::ops::parse(&text)?;
    let cred = crate::creds::existing(key_file)?;
    let reader = Reader::open(dir, cred, args.q.config())?;
    let req = Request::Count(SearchReq {
        query: text.clone(),
        order: OrderArg::Newest,
        limit: Some(0),
        cursor: None,
        mode: args.q.mode,
    });
    let Response::Count(n) = reader.ask(&req).map_err(|f| f.with_query(&text))? else {
        return Err(reader::unexpected());
    };
    let mut out = Out::new();
    out.line(&n.to_string())?;
    out.flush()?;
    Ok(ExitCode::from(if n > 0 { FOUND } else { NOT_FOUND }))
}
