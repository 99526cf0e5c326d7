//! `sealdex completions SHELL` and `sealdex man`: generated from the clap
//! definitions, so they always match the commands and options of this
//! binary.

use std::process::ExitCode;

use crate::fail::{FOUND, Fail};

pub fn completions(shell: clap_complete::Shell, mut cmd: clap::Command) -> Result<ExitCode, Fail> {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "sealdex", &mut buf);
    write_all(&buf)
}

pub fn man(cmd: clap::Command) -> Result<ExitCode, Fail> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut buf)
        .map_err(|e| Fail::msg(format!("cannot render the man page: {e}")))?;
    write_all(&buf)
}

fn write_all(bytes: &[u8]) -> Result<ExitCode, Fail> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|_| Fail::Closed)?;
    Ok(ExitCode::from(FOUND))
}
