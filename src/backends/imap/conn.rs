//! Connecting to an IMAP server: the account URL, TLS through rustls,
//! STARTTLS, plain text only to a loopback address, LOGIN or AUTHENTICATE,
//! and the mapping of the client's errors to typed [`SourceError`]s.
//!
//! # Why the connection is set up here and not by the `imap` crate
//!
//! The `imap` crate's own TLS features build a rustls configuration we
//! cannot extend (no extra root for a self-signed server) and connect
//! without a timeout. So the crate is used without TLS features, as an IMAP
//! protocol engine over any `Read + Write`: this module opens the TCP
//! connection with a timeout, runs the rustls handshake (the system's roots
//! plus an optional CA file, the ring provider) and hands the stream over.
//!
//! # Credentials
//!
//! [`Auth`] holds the password or bearer token in a [`Zeroizing`] string
//! and prints as `<redacted>`; no error built here includes it. The `imap`
//! crate formats it into the command it writes (LOGIN) or base64-encodes it
//! (AUTHENTICATE) in buffers of its own, which we cannot zeroize: that copy
//! lives as long as one command.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use imap::{Authenticator, Client, Session};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use zeroize::Zeroizing;

use crate::source::{SourceError, SourceErrorKind};

/// How the connection is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    /// TLS from the first byte (`imaps://`, port 993 by default).
    Tls,
    /// STARTTLS when the server offers it (`imap://`, port 143 by default).
    /// A server that does not offer it is refused, unless it is on a
    /// loopback address, where plain text is allowed: nothing leaves the
    /// machine.
    StartTls,
}

/// An IMAP account: where the server is, who logs in, and how the
/// connection is protected. Holds no secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    host: String,
    port: u16,
    user: String,
    security: Security,
}

impl Account {
    /// An account at `host:port` for `user`.
    pub fn new(
        host: impl Into<String>,
        port: u16,
        user: impl Into<String>,
        security: Security,
    ) -> Self {
        Account {
            host: host.into().to_ascii_lowercase(),
            port,
            user: user.into(),
            security,
        }
    }

    /// Parses `imap://USER@HOST[:PORT]` or `imaps://USER@HOST[:PORT]`.
    /// A `@` inside the user name is written `%40`
    /// (`imaps://alice%40example.org@imap.example.org`); an IPv6 host is
    /// bracketed (`imap://me@[::1]:1143`). A password in the URL is
    /// refused: it would end up in the shell history and the process list.
    ///
    /// ```
    /// use sealdex::backends::imap::{Account, Security};
    ///
    /// let a = Account::parse("imaps://alice%40example.org@imap.example.org")?;
    /// assert_eq!(a.user(), "alice@example.org");
    /// assert_eq!((a.host(), a.port(), a.security()), ("imap.example.org", 993, Security::Tls));
    /// assert!(Account::parse("imap://alice:hunter2@example.org").is_err());
    /// # Ok::<(), sealdex::SourceError>(())
    /// ```
    pub fn parse(url: &str) -> Result<Self, SourceError> {
        let bad = |why: &str| {
            SourceError::new(
                SourceErrorKind::Other,
                format!("not an IMAP URL ({why}): expected imap://USER@HOST[:PORT] or imaps://…"),
            )
        };
        let (security, rest) = if let Some(r) = url.strip_prefix("imaps://") {
            (Security::Tls, r)
        } else if let Some(r) = url.strip_prefix("imap://") {
            (Security::StartTls, r)
        } else {
            return Err(bad("the scheme is neither imap:// nor imaps://"));
        };
        let rest = rest.trim_end_matches('/');
        let (user, hostport) = rest.rsplit_once('@').ok_or_else(|| bad("no USER@"))?;
        if user.contains(':') {
            return Err(SourceError::new(
                SourceErrorKind::Other,
                "the IMAP URL holds a password: remove it, and give the password in \
                 SEALDEX_IMAP_PASSWORD or at the prompt",
            ));
        }
        let user = percent_decode(user).ok_or_else(|| bad("bad %-escape in the user name"))?;
        if user.is_empty() {
            return Err(bad("empty user name"));
        }
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, tail) = v6.split_once(']').ok_or_else(|| bad("unclosed ["))?;
            let port = match tail.strip_prefix(':') {
                Some(p) => Some(p),
                None if tail.is_empty() => None,
                None => return Err(bad("junk after the IPv6 address")),
            };
            (h, port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() || host.contains(['/', '?', '#', ' ']) {
            return Err(bad("bad host"));
        }
        let port = match port {
            Some(p) => p.parse::<u16>().map_err(|_| bad("bad port"))?,
            None if security == Security::Tls => 993,
            None => 143,
        };
        Ok(Account::new(host, port, user, security))
    }

    /// The server's host name or address.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// How the connection is protected.
    pub fn security(&self) -> Security {
        self.security
    }

    /// The canonical URL, `imap://user@host:port` (a `@` in the user name
    /// escaped): the source's name, so records and checkpoints follow the
    /// account and not how it was typed.
    pub fn url(&self) -> String {
        let scheme = match self.security {
            Security::Tls => "imaps",
            Security::StartTls => "imap",
        };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!(
            "{scheme}://{}@{host}:{}",
            self.user.replace('%', "%25").replace('@', "%40"),
            self.port
        )
    }
}

/// `%XX` escapes decoded, as UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// How to log in. The secret is zeroized on drop and never printed.
#[derive(Clone)]
pub enum Auth {
    /// A password: AUTHENTICATE PLAIN where the server offers it, LOGIN
    /// otherwise.
    Password(Zeroizing<String>),
    /// An OAuth 2.0 bearer token the app obtained: XOAUTH2 where the server
    /// offers it (Gmail, Outlook), OAUTHBEARER (RFC 7628) otherwise.
    Bearer(Zeroizing<String>),
}

impl Auth {
    /// A password.
    pub fn password(p: impl Into<String>) -> Self {
        Auth::Password(Zeroizing::new(p.into()))
    }

    /// An OAuth 2.0 access token.
    pub fn bearer(token: impl Into<String>) -> Self {
        Auth::Bearer(Zeroizing::new(token.into()))
    }
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Password(_) => f.write_str("Auth::Password(<redacted>)"),
            Auth::Bearer(_) => f.write_str("Auth::Bearer(<redacted>)"),
        }
    }
}

/// The SASL PLAIN, XOAUTH2 and OAUTHBEARER initial responses: sent for
/// the server's first, empty, challenge. A later challenge is a bearer
/// token's refusal (a JSON error) that the client must acknowledge before
/// the server says NO: with an empty response (XOAUTH2), or `%x01`
/// (OAUTHBEARER, RFC 7628 section 3.2.3). The secret is not sent again.
struct Sasl {
    initial: Zeroizing<Vec<u8>>,
    after_refusal: &'static [u8],
}

impl Authenticator for Sasl {
    type Response = Zeroizing<Vec<u8>>;
    fn process(&self, challenge: &[u8]) -> Self::Response {
        if challenge.is_empty() {
            self.initial.clone()
        } else {
            Zeroizing::new(self.after_refusal.to_vec())
        }
    }
}

/// The TLS, timeout and extension settings of a connection.
#[derive(Clone, Debug)]
pub(super) struct Settings {
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
    /// Use CONDSTORE and QRESYNC when the server offers them.
    pub condstore: bool,
}

/// The stream under the IMAP client: plain TCP (loopback only) or rustls.
pub(super) enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// What the server offers after login, as far as the source cares.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Caps {
    /// CONDSTORE (RFC 7162): HIGHESTMODSEQ tells an unchanged mailbox.
    pub condstore: bool,
    /// QRESYNC (RFC 7162), enabled: `CHANGEDSINCE … VANISHED`.
    pub qresync: bool,
    /// LIST-STATUS (RFC 5819): every mailbox's status in one command.
    pub list_status: bool,
}

/// A logged-in session.
pub(super) type ImapSession = Session<Stream>;

/// Connects, secures and logs in. Retryable failures (the server is
/// unreachable, a timeout) are of a retryable kind; a refused login is
/// [`SourceErrorKind::Auth`].
pub(super) fn connect(
    account: &Account,
    auth: &Auth,
    settings: &Settings,
) -> Result<(ImapSession, Caps), SourceError> {
    let where_ = format!("{}:{}", account.host, account.port);
    let addrs: Vec<SocketAddr> = (account.host.as_str(), account.port)
        .to_socket_addrs()
        .map_err(|e| SourceError::network(format!("cannot resolve {}: {e}", account.host)))?
        .collect();
    if addrs.is_empty() {
        return Err(SourceError::network(format!(
            "{} resolves to no address",
            account.host
        )));
    }
    let loopback = addrs.iter().all(|a| a.ip().is_loopback())
        || account
            .host
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    let mut last = None;
    let mut tcp = None;
    for addr in &addrs {
        match TcpStream::connect_timeout(addr, settings.timeout) {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let tcp = match tcp {
        Some(t) => t,
        None => {
            let e = last.unwrap_or_else(|| std::io::ErrorKind::AddrNotAvailable.into());
            return Err(io_error(&format!("cannot connect to {where_}"), &e));
        }
    };
    let io = |e: std::io::Error| io_error(&format!("cannot connect to {where_}"), &e);
    tcp.set_read_timeout(Some(settings.timeout)).map_err(io)?;
    tcp.set_write_timeout(Some(settings.timeout)).map_err(io)?;
    tcp.set_nodelay(true).map_err(io)?;

    let mut client = match account.security {
        Security::Tls => {
            let mut c = Client::new(tls(tcp, account, settings)?);
            greet(&mut c, &where_)?;
            c
        }
        Security::StartTls => {
            let (tcp, offered) = starttls(tcp, &where_)?;
            let stream = if offered {
                tls(tcp, account, settings)?
            } else if loopback {
                Stream::Plain(tcp)
            } else {
                return Err(SourceError::new(
                    SourceErrorKind::Other,
                    format!(
                        "{where_} offers no STARTTLS: refusing to send credentials in plain text \
                         to a host that is not on this machine (use imaps:// if the server has TLS)"
                    ),
                ));
            };
            // The greeting was read before STARTTLS; none follows it.
            let mut c = Client::new(stream);
            c.greeting_read = true;
            c
        }
    };
    let pre = client
        .capabilities()
        .map_err(|e| classify(&format!("CAPABILITY at {where_}"), e))?;
    let user = account.user.as_str();
    let login = match auth {
        Auth::Password(p) if pre.has_str("AUTH=PLAIN") => {
            let mut ir = Zeroizing::new(Vec::with_capacity(user.len() + p.len() + 2));
            ir.push(0);
            ir.extend_from_slice(user.as_bytes());
            ir.push(0);
            ir.extend_from_slice(p.as_bytes());
            client.authenticate(
                "PLAIN",
                &Sasl {
                    initial: ir,
                    after_refusal: b"",
                },
            )
        }
        Auth::Password(_) if pre.has_str("LOGINDISABLED") => {
            return Err(SourceError::auth(format!(
                "{where_} allows neither LOGIN nor AUTHENTICATE PLAIN on this connection"
            )));
        }
        Auth::Password(p) => client.login(user, p.as_str()),
        Auth::Bearer(t) => {
            let (mech, ir) = if pre.has_str("AUTH=XOAUTH2") {
                (
                    "XOAUTH2",
                    format!("user={user}\x01auth=Bearer {}\x01\x01", **t),
                )
            } else if pre.has_str("AUTH=OAUTHBEARER") {
                (
                    "OAUTHBEARER",
                    format!(
                        "n,a={},\x01host={}\x01port={}\x01auth=Bearer {}\x01\x01",
                        user.replace('=', "=3D").replace(',', "=2C"),
                        account.host,
                        account.port,
                        **t
                    ),
                )
            } else {
                return Err(SourceError::auth(format!(
                    "{where_} offers neither XOAUTH2 nor OAUTHBEARER for a bearer token"
                )));
            };
            let after_refusal: &[u8] = if mech == "OAUTHBEARER" { b"\x01" } else { b"" };
            client.authenticate(
                mech,
                &Sasl {
                    initial: Zeroizing::new(ir.into_bytes()),
                    after_refusal,
                },
            )
        }
    };
    let mut session = match login {
        Ok(s) => s,
        Err((imap::Error::No(no), _)) => {
            return Err(SourceError::auth(format!(
                "{where_} refused the login of {user}: {} (not retried: check the user name and \
                 {})",
                no.information,
                match auth {
                    Auth::Password(_) => "password",
                    Auth::Bearer(_) => "token, which may have expired: the app must get a new one",
                }
            )));
        }
        Err((imap::Error::Bad(bad), _)) => {
            return Err(SourceError::auth(format!(
                "{where_} rejected the login command for {user}: {}",
                bad.information
            )));
        }
        Err((e, _)) => return Err(classify(&format!("login at {where_}"), e)),
    };
    let post = session
        .capabilities()
        .map_err(|e| classify(&format!("CAPABILITY at {where_}"), e))?;
    let mut caps = Caps {
        condstore: settings.condstore && (post.has_str("CONDSTORE") || post.has_str("QRESYNC")),
        qresync: false,
        list_status: post.has_str("LIST-STATUS"),
    };
    if settings.condstore && post.has_str("QRESYNC") && post.has_str("ENABLE") {
        session
            .run_command_and_check_ok("ENABLE QRESYNC")
            .map_err(|e| classify(&format!("ENABLE QRESYNC at {where_}"), e))?;
        caps.qresync = true;
    }
    Ok((session, caps))
}

/// Reads the greeting; a `BYE` greeting (server shutting down, too many
/// connections) is retryable.
fn greet(c: &mut Client<Stream>, where_: &str) -> Result<(), SourceError> {
    let g = c
        .read_greeting()
        .map_err(|e| classify(&format!("greeting from {where_}"), e))?;
    if g.get(..5).is_some_and(|s| s.eq_ignore_ascii_case(b"* BYE")) {
        return Err(SourceError::transient(format!(
            "{where_} said goodbye at once: {}",
            String::from_utf8_lossy(&g).trim()
        )));
    }
    Ok(())
}

/// The plain-text start of an `imap://` connection: reads the greeting,
/// asks for the capabilities and, when STARTTLS is offered, sends it.
/// Returns the socket, ready for the TLS handshake if it was offered (or
/// for the IMAP session in plain text, loopback only), and whether it was.
///
/// The `imap` crate has no STARTTLS without its own TLS features, so these
/// two commands are written here; their responses are parsed by
/// `imap-proto`, the crate's parser. Anything the server sends after its
/// `OK` to STARTTLS and before the handshake is refused (the STARTTLS
/// command-injection attack, RFC 7817 section 3.1 style): a reader
/// buffering it would let a man in the middle slip responses into the
/// encrypted session.
fn starttls(tcp: TcpStream, where_: &str) -> Result<(TcpStream, bool), SourceError> {
    use imap_proto::{Capability, Response, Status};
    use std::io::BufRead;
    let io = |e: std::io::Error| io_error(&format!("talking to {where_}"), &e);
    let mut reader = std::io::BufReader::new(tcp);
    let mut line = Vec::new();
    // Reads one response line (no literal is expected in these responses).
    let mut next = |reader: &mut std::io::BufReader<TcpStream>| -> Result<Vec<u8>, SourceError> {
        line.clear();
        let n = (&mut *reader)
            .take(64 << 10)
            .read_until(b'\n', &mut line)
            .map_err(io)?;
        if n == 0 {
            return Err(SourceError::network(format!(
                "{where_} closed the connection"
            )));
        }
        Ok(line.clone())
    };
    let greeting = next(&mut reader)?;
    if greeting
        .get(..5)
        .is_some_and(|s| s.eq_ignore_ascii_case(b"* BYE"))
    {
        return Err(SourceError::transient(format!(
            "{where_} said goodbye at once: {}",
            String::from_utf8_lossy(&greeting).trim()
        )));
    }
    let unparsable =
        || SourceError::malformed(format!("{where_} sent a response sealdex cannot parse"));
    reader
        .get_mut()
        .write_all(b"s1 CAPABILITY\r\n")
        .map_err(io)?;
    let mut offered = false;
    loop {
        let l = next(&mut reader)?;
        match imap_proto::parser::parse_response(&l) {
            Ok((_, Response::Capabilities(caps))) => {
                offered |= caps.iter().any(
                    |c| matches!(c, Capability::Atom(a) if a.eq_ignore_ascii_case("STARTTLS")),
                );
            }
            Ok((_, Response::Done { tag, status, .. })) if tag.0 == "s1" => {
                if status != Status::Ok {
                    return Err(SourceError::other(format!("{where_} refused CAPABILITY")));
                }
                break;
            }
            Ok(_) => {}
            Err(_) => return Err(unparsable()),
        }
    }
    if !offered {
        return Ok((reader.into_inner(), false));
    }
    reader.get_mut().write_all(b"s2 STARTTLS\r\n").map_err(io)?;
    loop {
        let l = next(&mut reader)?;
        match imap_proto::parser::parse_response(&l) {
            Ok((
                _,
                Response::Done {
                    tag,
                    status,
                    information,
                    ..
                },
            )) if tag.0 == "s2" => {
                if status != Status::Ok {
                    return Err(SourceError::other(format!(
                        "{where_} refused STARTTLS: {}",
                        information.as_deref().unwrap_or("")
                    )));
                }
                break;
            }
            Ok(_) => {}
            Err(_) => return Err(unparsable()),
        }
    }
    if !reader.buffer().is_empty() {
        return Err(SourceError::other(format!(
            "{where_} sent data after accepting STARTTLS and before the TLS handshake: refused"
        )));
    }
    Ok((reader.into_inner(), true))
}

/// The rustls client configuration: the system's roots and the CA file.
fn tls_config(settings: &Settings) -> Result<Arc<rustls::ClientConfig>, SourceError> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        // A system root rustls cannot parse is skipped, as browsers do.
        let _ = roots.add(cert);
    }
    if let Some(path) = &settings.ca_file {
        add_ca_file(&mut roots, path)?;
    }
    // ring rather than aws-lc-rs: no large C build on small CI machines.
    // rustls 0.23.48 deprecates ring's provider because it has no
    // post-quantum key exchange; the classical X25519/P-256 it offers is
    // what IMAP servers negotiate today.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SourceError::other(format!("TLS configuration: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Adds every certificate of a PEM file to `roots`.
fn add_ca_file(roots: &mut rustls::RootCertStore, path: &Path) -> Result<(), SourceError> {
    let bad = |why: String| {
        SourceError::new(
            SourceErrorKind::Other,
            format!("the CA file {}: {why}", path.display()),
        )
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("holds no PEM certificate".into()));
    }
    for c in certs {
        roots.add(c).map_err(|e| bad(e.to_string()))?;
    }
    Ok(())
}

/// Runs the TLS handshake on `tcp`, verifying the server's certificate
/// for the account's host.
fn tls(mut tcp: TcpStream, account: &Account, settings: &Settings) -> Result<Stream, SourceError> {
    let config = tls_config(settings)?;
    let name = ServerName::try_from(account.host.clone())
        .map_err(|_| SourceError::other(format!("{} is not a valid TLS name", account.host)))?;
    let mut conn = rustls::ClientConnection::new(config, name)
        .map_err(|e| SourceError::other(format!("TLS: {e}")))?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).map_err(|e| {
            io_error(
                &format!("TLS handshake with {}:{}", account.host, account.port),
                &e,
            )
        })?;
    }
    Ok(Stream::Tls(Box::new(rustls::StreamOwned::new(conn, tcp))))
}

/// A socket or TLS failure as a [`SourceError`]: a certificate that does
/// not verify is not retried (running again will not fix it); timeouts and
/// dropped connections are.
pub(super) fn io_error(context: &str, e: &std::io::Error) -> SourceError {
    if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return SourceError::new(
            SourceErrorKind::Other,
            format!(
                "{context}: TLS failed: {tls} (not retried; for a server with a self-signed \
                 certificate, pass its CA with --imap-ca)"
            ),
        );
    }
    use std::io::ErrorKind as K;
    let kind = match e.kind() {
        K::TimedOut | K::WouldBlock => SourceErrorKind::Timeout,
        // A socket that ends mid-response is a lost connection, not bad data.
        K::UnexpectedEof | K::InvalidData => SourceErrorKind::Network,
        k => match SourceErrorKind::from(k) {
            SourceErrorKind::Other | SourceErrorKind::NotFound | SourceErrorKind::Malformed => {
                SourceErrorKind::Network
            }
            other => other,
        },
    };
    SourceError::new(kind, format!("{context}: {e}"))
}

/// An error of the `imap` crate as a typed [`SourceError`]. Never includes
/// the bytes of a response (they may be message content), only the server's
/// human-readable text of a `NO`, `BAD` or `BYE`.
pub(super) fn classify(context: &str, e: imap::Error) -> SourceError {
    match e {
        imap::Error::Io(io) => io_error(context, &io),
        imap::Error::ConnectionLost => {
            SourceError::network(format!("{context}: the server closed the connection"))
        }
        imap::Error::Bye(b) => SourceError::network(format!(
            "{context}: the server ended the session: {}",
            b.information
        )),
        imap::Error::No(no) => {
            let code = no
                .code
                .as_ref()
                .map(|c| format!("{c:?}"))
                .unwrap_or_default();
            let kind = match code.to_ascii_uppercase().as_str() {
                c if c.contains("UNAVAILABLE") || c.contains("INUSE") || c.contains("LIMIT") => {
                    SourceErrorKind::Transient
                }
                c if c.contains("NONEXISTENT") => SourceErrorKind::NotFound,
                c if c.contains("AUTHENTICATIONFAILED")
                    || c.contains("AUTHORIZATIONFAILED")
                    || c.contains("EXPIRED") =>
                {
                    SourceErrorKind::Auth
                }
                _ => SourceErrorKind::Other,
            };
            SourceError::new(
                kind,
                format!("{context}: the server said NO: {}", no.information),
            )
        }
        imap::Error::Bad(bad) => SourceError::other(format!(
            "{context}: the server said BAD: {}",
            bad.information
        )),
        imap::Error::Parse(_) | imap::Error::Unexpected(_) | imap::Error::TagMismatch(_) => {
            SourceError::malformed(format!(
                "{context}: the server sent a response sealdex cannot parse"
            ))
        }
        other => SourceError::other(format!("{context}: {}", describe(&other))),
    }
}

/// The text of an error variant that carries no server bytes.
fn describe(e: &imap::Error) -> String {
    match e {
        imap::Error::Validate(v) => v.to_string(),
        imap::Error::MissingStatusResponse => "the server sent no STATUS response".into(),
        imap::Error::StartTlsNotAvailable => "the server offers no STARTTLS".into(),
        _ => "IMAP client error".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let a = Account::parse("imap://bob@127.0.0.1:10143").unwrap();
        assert_eq!(
            (a.host(), a.port(), a.user(), a.security()),
            ("127.0.0.1", 10143, "bob", Security::StartTls)
        );
        assert_eq!(a.url(), "imap://bob@127.0.0.1:10143");
        let a = Account::parse("imaps://a%40b.org@[::1]").unwrap();
        assert_eq!((a.host(), a.port(), a.user()), ("::1", 993, "a@b.org"));
        assert_eq!(a.url(), "imaps://a%40b.org@[::1]:993");
        assert_eq!(Account::parse(&a.url()).unwrap(), a);
        assert_eq!(
            Account::parse("imap://x@Mail.Example.ORG").unwrap().port(),
            143
        );
        for bad in [
            "http://x@y",
            "imap://y",
            "imap://@y",
            "imap://x@",
            "imap://x@y:99999",
            "imap://x@y:z",
            "imap://x@[::1",
            "imap://x%4@y",
        ] {
            assert!(Account::parse(bad).is_err(), "{bad}");
        }
        let e = Account::parse("imap://alice:s3cret-pw@host").unwrap_err();
        assert!(!e.to_string().contains("s3cret-pw"), "{e}");
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let a = Auth::password("s3cret-pw");
        assert!(!format!("{a:?}").contains("s3cret"));
        let b = Auth::bearer("ya29.token");
        assert!(!format!("{b:?}").contains("ya29"));
    }
}
