//! Options anywhere on a query's line: `sealdex search linux --json`.
//!
//! clap either stops taking options once a list of positional words starts
//! (which turned `search linux --limit 5` into a search for `linux 5`), or
//! reads every `-word` as short flags (`-draft` as `-d -r -a …`). Neither
//! fits a query language whose exclusions start with `-`. So before clap
//! sees the line, the words after `search` or `count` are sorted here: a
//! word that is one of the subcommand's own options (`--json`, `--limit 5`,
//! `--limit=5`, `-v`) stays an option, any `--name` stays one too (so a
//! misspelt option is an error rather than query text), and everything
//! else, `-draft` included, is query text. The query words are handed to
//! clap after a `--`, in their order, where nothing is an option. A `--`
//! on the line itself ends the options: what follows is query text even if
//! it looks like one (`sealdex search -- --json`).

use std::ffi::OsString;

/// The subcommands whose positional words form a query.
const QUERY_COMMANDS: &[&str] = &["search", "count"];

/// Rewrites `args` (with the program name first) so that the query words of
/// `search` and `count` follow a `--`; other command lines are unchanged.
pub fn normalise(args: Vec<OsString>, cmd: &clap::Command) -> Vec<OsString> {
    let mut cmd = cmd.clone();
    cmd.build();
    // Find the subcommand: skip the global options and their values.
    let mut i = 1;
    while i < args.len() {
        let Some(a) = args[i].to_str() else {
            return args;
        };
        if a == "--" || !a.starts_with('-') {
            break;
        }
        if takes_value(&cmd, a) {
            i += 1;
        }
        i += 1;
    }
    let Some(name) = args.get(i).and_then(|a| a.to_str()) else {
        return args;
    };
    if !QUERY_COMMANDS.contains(&name) {
        return args;
    }
    let Some(sub) = cmd.find_subcommand(name) else {
        return args;
    };
    let mut options: Vec<OsString> = args[..=i].to_vec();
    let mut words: Vec<OsString> = Vec::new();
    let mut rest = args[i + 1..].iter();
    while let Some(a) = rest.next() {
        let Some(s) = a.to_str() else {
            words.push(a.clone());
            continue;
        };
        if s == "--" {
            words.extend(rest.by_ref().cloned());
            break;
        }
        if is_option(sub, s) {
            options.push(a.clone());
            if takes_value(sub, s)
                && let Some(v) = rest.next()
            {
                options.push(v.clone());
            }
        } else {
            words.push(a.clone());
        }
    }
    options.push("--".into());
    options.extend(words);
    options
}

/// Whether `s` is an option of `cmd`: any `--long` (unknown ones then fail
/// in clap, with its suggestion), or a cluster of known short flags.
fn is_option(cmd: &clap::Command, s: &str) -> bool {
    if s.starts_with("--") {
        return s.len() > 2;
    }
    let Some(shorts) = s.strip_prefix('-') else {
        return false;
    };
    !shorts.is_empty()
        && shorts.chars().all(|c| {
            cmd.get_arguments().any(|a| a.get_short() == Some(c))
                || (c == 'h' && !cmd.is_disable_help_flag_set())
        })
}

/// Whether option word `s` takes its value from the next word (`--limit 5`;
/// not `--limit=5`, not a flag).
fn takes_value(cmd: &clap::Command, s: &str) -> bool {
    if s.contains('=') {
        return false;
    }
    let arg = if let Some(long) = s.strip_prefix("--") {
        cmd.get_arguments().find(|a| a.get_long() == Some(long))
    } else {
        let last = s.chars().last();
        cmd.get_arguments()
            .find(|a| a.get_short().is_some() && a.get_short() == last)
    };
    arg.is_some_and(|a| !a.is_positional() && a.get_action().takes_values())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn norm(line: &str) -> String {
        let args: Vec<OsString> = line.split(' ').map(OsString::from).collect();
        normalise(args, &crate::Cli::command())
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn options_come_out_of_the_query() {
        assert_eq!(
            norm("sealdex search linux --json"),
            "sealdex search --json -- linux"
        );
        assert_eq!(
            norm("sealdex search linux --limit 5 kernel"),
            "sealdex search --limit 5 -- linux kernel"
        );
        assert_eq!(
            norm("sealdex --dir /x search -draft foo --limit=2 -v"),
            "sealdex --dir /x search --limit=2 -v -- -draft foo"
        );
        assert_eq!(
            norm("sealdex search a -- --json -v"),
            "sealdex search -- a --json -v"
        );
        assert_eq!(
            norm("sealdex count is:unread --mode forward"),
            "sealdex count --mode forward -- is:unread"
        );
        // Other commands are left alone.
        assert_eq!(norm("sealdex stats --json"), "sealdex stats --json");
    }
}
