//! Filling a test mailbox fast: MULTIAPPEND (RFC 3502) with LITERAL+
//! (RFC 7888), for tests/imap.rs and benches/imap.rs.
//!
//! One `APPEND` per message costs a round trip for the literal's
//! continuation and one transaction on the server each: about 150
//! messages/s from a loopback Dovecot on the 2-core CI machine, 40 s for
//! the SpamAssassin corpus. MULTIAPPEND puts many messages into one mailbox
//! in one command and one transaction, and LITERAL+ (`{N+}`) lets the client
//! send every literal without waiting for the server's go-ahead. Dovecot
//! offers both, and UIDPLUS (RFC 4315): its `APPENDUID` response code says
//! which UIDs the messages got, in order, so a test knows each message's
//! id on the server.
//!
//! The `imap` crate has no MULTIAPPEND and writes commands as `&str`, and
//! the corpus has 8-bit bytes, so this speaks the protocol directly: it
//! writes the command and reads response lines up to the tagged one. The
//! responses a LOGIN and an APPEND get carry no literal, so reading lines
//! is enough; anything but a tagged `OK` is an error naming the response.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::net::TcpStream;

/// A logged-in plain-text connection (loopback only) for filling mailboxes.
pub struct Appender {
    reader: BufReader<TcpStream>,
    writer: BufWriter<TcpStream>,
    tag: u32,
}

/// Most bytes of messages in one MULTIAPPEND: bounds what the server
/// buffers for one transaction.
const BATCH_BYTES: usize = 8 << 20;

impl Appender {
    /// Connects to `addr` (`host:port`, loopback) and logs in.
    pub fn login(addr: &str, user: &str, password: &str) -> Result<Appender, String> {
        let tcp = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        let mut a = Appender {
            reader: BufReader::new(tcp.try_clone().map_err(|e| e.to_string())?),
            writer: BufWriter::with_capacity(1 << 20, tcp),
            tag: 0,
        };
        let greeting = a.line()?;
        if !greeting.starts_with("* OK") {
            return Err(format!("greeting: {greeting}"));
        }
        let cmd = format!("LOGIN {} {}", quoted(user), quoted(password));
        a.command(cmd.as_bytes(), &[])?;
        Ok(a)
    }

    fn line(&mut self) -> Result<String, String> {
        let mut l = String::new();
        let n = self.reader.read_line(&mut l).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the server closed the connection".into());
        }
        Ok(l.trim_end().to_string())
    }

    /// Sends `head`, then each literal of `literals` (`(prefix, bytes)`:
    /// the text before the literal, then the literal itself, sent with
    /// LITERAL+), then CRLF; returns the tagged `OK` line.
    fn command(&mut self, head: &[u8], literals: &[(&[u8], &[u8])]) -> Result<String, String> {
        self.tag += 1;
        let tag = format!("f{}", self.tag);
        let io = |e: std::io::Error| e.to_string();
        self.writer.write_all(tag.as_bytes()).map_err(io)?;
        self.writer.write_all(b" ").map_err(io)?;
        self.writer.write_all(head).map_err(io)?;
        for (prefix, bytes) in literals {
            self.writer.write_all(prefix).map_err(io)?;
            write!(self.writer, "{{{}+}}\r\n", bytes.len()).map_err(io)?;
            self.writer.write_all(bytes).map_err(io)?;
        }
        self.writer.write_all(b"\r\n").map_err(io)?;
        self.writer.flush().map_err(io)?;
        loop {
            let l = self.line()?;
            if let Some(rest) = l.strip_prefix(&format!("{tag} ")) {
                return if rest.starts_with("OK") {
                    Ok(rest.to_string())
                } else {
                    Err(format!("{tag}: {rest}"))
                };
            }
        }
    }

    /// Runs a command without literals (CREATE, DELETE, …) and requires OK.
    pub fn run(&mut self, cmd: &str) -> Result<String, String> {
        self.command(cmd.as_bytes(), &[])
    }

    /// Appends `messages` to `mailbox`, in order, with `flags` (such as
    /// `(\\Seen)`, or empty), with MULTIAPPEND in batches of about 8 MB;
    /// returns the mailbox's UIDVALIDITY and the UID of each message (from
    /// `APPENDUID`).
    pub fn append_all(
        &mut self,
        mailbox: &str,
        flags: &str,
        messages: &[&[u8]],
    ) -> Result<(u32, Vec<u32>), String> {
        let prefix = format!(" {flags} ");
        let prefix = if flags.is_empty() {
            " "
        } else {
            prefix.as_str()
        };
        let mut uidvalidity = 0;
        let mut uids = Vec::with_capacity(messages.len());
        let mut start = 0;
        while start < messages.len() {
            let mut end = start;
            let mut bytes = 0;
            while end < messages.len()
                && (end == start || bytes + messages[end].len() <= BATCH_BYTES)
            {
                bytes += messages[end].len();
                end += 1;
            }
            let head = format!("APPEND {}", quoted(mailbox));
            let literals: Vec<(&[u8], &[u8])> = messages[start..end]
                .iter()
                .map(|m| (prefix.as_bytes(), *m))
                .collect();
            let ok = self.command(head.as_bytes(), &literals)?;
            let (uv, got) = appenduid(&ok).ok_or_else(|| format!("no APPENDUID in {ok}"))?;
            if got.len() != end - start {
                return Err(format!(
                    "APPENDUID names {} UIDs for {} messages",
                    got.len(),
                    end - start
                ));
            }
            uidvalidity = uv;
            uids.extend(got);
            start = end;
        }
        Ok((uidvalidity, uids))
    }

    /// Logs out.
    pub fn logout(mut self) {
        let _ = self.run("LOGOUT");
    }
}

/// An IMAP quoted string.
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `OK [APPENDUID 38505 3955:3957,3960] …`: the UIDVALIDITY and the UIDs,
/// ranges expanded in order.
fn appenduid(ok: &str) -> Option<(u32, Vec<u32>)> {
    let rest = ok.split("[APPENDUID ").nth(1)?;
    let rest = rest.split(']').next()?;
    let (uv, set) = rest.split_once(' ')?;
    let mut uids = Vec::new();
    for part in set.split(',') {
        match part.split_once(':') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
                uids.extend(a.min(b)..=a.max(b));
            }
            None => uids.push(part.parse().ok()?),
        }
    }
    Some((uv.parse().ok()?, uids))
}
