//! Record kinds in search: `kind:`, an event's `location:` and start, a
//! file's name and path under `filename:`, a chat's conversation under
//! `in:`; each checked against the ids it must return, in both search
//! modes. Then `kind:` on real data: the SpamAssassin mail and part of the
//! ChitChat corpus in one index.

#[path = "../benches/common/chitchat.rs"]
mod chitchat;
mod common;

use sealdex::backends::Tree;
use sealdex::decrypt::PassThrough;
use sealdex::source::{
    Changes, Cursor, FetchError, MessageRef, Page, RawMessage, SourceError, SyncToken,
};
use sealdex::{
    Body, ContentKind, Credential, DecryptError, Decryptor, Index, Message, SearchOptions,
    SecretKey, Source,
};

fn cred() -> Credential {
    Credential::AppKey(SecretKey::from_bytes([0x5a; 32]))
}

use common::{both, both_modes_config as config};

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

// ---------------------------------------------------------------------------
// A small index of every kind.

/// One record of a kind, as an app or a calendar/drive backend hands it
/// over: JSON in the raw bytes, read by [`AppDecryptor`].
#[derive(serde::Serialize, serde::Deserialize)]
struct Item {
    kind: String,
    date: Option<i64>,
    #[serde(default)]
    end: Option<i64>,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    location: String,
    /// A file's path: it goes where attachment names go.
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    media_type: Option<String>,
    /// A mail's folder, a chat's conversation, an event's calendar.
    folder: String,
}

/// Reads an [`Item`], as a client's own decryption layer would produce it.
struct AppDecryptor;

impl Decryptor for AppDecryptor {
    fn decrypt(&self, raw: &RawMessage) -> Result<Message, DecryptError> {
        let it: Item = serde_json::from_slice(&raw.bytes)
            .map_err(|e| DecryptError::Malformed(e.to_string()))?;
        let kind: ContentKind = it.kind.parse().map_err(DecryptError::Malformed)?;
        Ok(Message {
            id: raw.id.clone(),
            date: it.date,
            from: it.from,
            to: it.to,
            subject: it.subject,
            body: Body::Text(it.body),
            folders: vec![it.folder],
            attachments: it.path.into_iter().collect(),
            kind,
            end: it.end,
            location: it.location,
            media_type: it.media_type,
            ..Message::default()
        })
    }
}

const DAY: i64 = 86_400;
/// 2024-03-01 00:00 UTC.
const MARCH: i64 = 1_709_251_200;

fn items() -> Vec<(&'static str, Item)> {
    let item = |kind: &str, date: i64, folder: &str| Item {
        kind: kind.into(),
        date: Some(date),
        end: None,
        from: String::new(),
        to: String::new(),
        subject: String::new(),
        body: String::new(),
        location: String::new(),
        path: None,
        media_type: None,
        folder: folder.into(),
    };
    vec![
        ("mail-1", {
            let mut i = item("mail", MARCH + DAY, "INBOX");
            i.from = "Alice <alice@example.org>".into();
            i.subject = "Offsite in Berlin".into();
            i.body = "The offsite is in Berlin this year; see the agenda.".into();
            i.path = Some("agenda.pdf".into());
            i
        }),
        ("event-1", {
            // Starts on March 3rd, ends on March 5th.
            let mut i = item("event", MARCH + 2 * DAY + 9 * 3600, "Work calendar");
            i.end = Some(MARCH + 4 * DAY + 17 * 3600);
            i.from = "Alice <alice@example.org>".into();
            i.to = "Bob <bob@example.org>\nCarol <carol@example.org>".into();
            i.subject = "Offsite".into();
            i.body = "Three days of planning".into();
            i.location = "Hotel Adlon, Unter den Linden 77, Berlin".into();
            i
        }),
        ("event-2", {
            let mut i = item("event", MARCH + 10 * DAY, "Personal");
            i.subject = "Dentist".into();
            i.location = "Rue de Rivoli 12, Paris".into();
            i
        }),
        ("file-1", {
            let mut i = item("file", MARCH - 20 * DAY, "Reports");
            i.subject = "q3-summary.pdf".into();
            i.path = Some("Documents/Reports/2024/q3-summary.pdf".into());
            i.media_type = Some("application/pdf".into());
            i.body = "Quarterly summary: revenue grew in Berlin and Paris.".into();
            i
        }),
        ("file-2", {
            let mut i = item("file", MARCH - 30 * DAY, "Photos");
            i.subject = "berlin.jpeg".into();
            i.path = Some("Pictures/Trips/berlin.jpeg".into());
            i.media_type = Some("image/jpeg".into());
            i
        }),
        ("chat-1", {
            let mut i = item("chat", MARCH + 5 * DAY, "Family");
            i.from = "Mum".into();
            i.body = "Are you back from Berlin?".into();
            i
        }),
        ("chat-2", {
            let mut i = item("chat", MARCH + 6 * DAY, "Team standup");
            i.from = "Bob".into();
            i.body = "Offsite photos are in the shared folder".into();
            i
        }),
    ]
}

fn small_index(dir: &std::path::Path) -> Index {
    let index = Index::create(dir, &cred(), config()).unwrap();
    let mut src = common::Mem {
        name: "app".into(),
        messages: items()
            .into_iter()
            .map(|(id, it)| RawMessage {
                id: id.into(),
                bytes: serde_json::to_vec(&it).unwrap(),
                ..RawMessage::default()
            })
            .collect(),
    };
    let report = index
        .index(&mut src, &AppDecryptor, &Default::default())
        .unwrap();
    assert_eq!(report.failed, 0);
    index.wait_for_inverted().unwrap();
    index
}

#[test]
fn each_kind_is_searched_by_its_own_fields_in_both_modes() {
    let tmp = tempfile::tempdir().unwrap();
    let index = small_index(&tmp.path().join("i"));
    let expect = |q: &str, want: &[&str]| {
        let got = sorted(both(&index, q));
        let want = sorted(want.iter().map(|s| s.to_string()).collect());
        assert_eq!(got, want, "{q}");
    };
    // kind: keeps one kind; negated and combined like any filter.
    expect("kind:mail", &["mail-1"]);
    expect("kind:event", &["event-1", "event-2"]);
    expect("kind:FILE", &["file-1", "file-2"]);
    expect("kind:chat", &["chat-1", "chat-2"]);
    expect(
        "berlin -kind:mail",
        &["event-1", "file-1", "file-2", "chat-1"],
    );
    expect("kind:event OR kind:chat offsite", &["event-1", "chat-2"]);
    // A bare word searches every field, the location too.
    expect(
        "berlin",
        &["mail-1", "event-1", "file-1", "file-2", "chat-1"],
    );
    // location: only an event's location.
    expect("location:berlin", &["event-1"]);
    expect("location:\"unter den linden\"", &["event-1"]);
    expect("location:par", &["event-2"]);
    expect("location:agenda", &[]);
    // An event's date is its start: the three-day offsite is on March 3rd.
    expect("kind:event after:2024-03-03", &["event-1", "event-2"]);
    expect("kind:event after:2024-03-04", &["event-2"]);
    expect("kind:event before:2024-03-04", &["event-1"]);
    // Attendees are in to:, the organizer in from:.
    expect("to:carol", &["event-1"]);
    expect("from:alice kind:event", &["event-1"]);
    // filename: a file's name and each component of its path; a mail's
    // attachment names.
    expect("filename:q3-summary.pdf", &["file-1"]);
    expect("filename:reports", &["file-1"]);
    expect("filename:documents", &["file-1"]);
    expect("filename:2024", &["file-1"]);
    expect("filename:\"reports 2024\"", &["file-1"]);
    expect("filename:trips", &["file-2"]);
    expect("filename:jpeg", &["file-2"]);
    expect("filename:pdf", &["mail-1", "file-1"]);
    expect("filename:pdf kind:file", &["file-1"]);
    expect("filename:\"pictures/trips/berlin.jpeg\"", &["file-2"]);
    // A chat's conversation is its folder.
    expect("in:family", &["chat-1"]);
    expect("in:\"team standup\"", &["chat-2"]);
    expect("in:\"Team Standup\" photos", &["chat-2"]);
    expect("in:\"work calendar\"", &["event-1"]);
    // Hits say what they are: the record read back has its kind's fields.
    let r = index
        .search("location:adlon", &SearchOptions::default())
        .unwrap();
    let hit = &r.hits[0];
    assert_eq!(hit.record.kind, ContentKind::Event);
    assert_eq!(hit.record.end, Some(MARCH + 4 * DAY + 17 * 3600));
    let r = index
        .search("filename:trips", &SearchOptions::default())
        .unwrap();
    assert_eq!(r.hits[0].record.media_type.as_deref(), Some("image/jpeg"));
}

// ---------------------------------------------------------------------------
// Real data: mail and chat in one index.

/// The first `n` messages a source lists, as a source of their own.
struct Firsts<S> {
    inner: S,
    left: usize,
}

impl<S: Source> Source for Firsts<S> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn list(&mut self, cursor: Option<&Cursor>, limit: usize) -> Result<Page, SourceError> {
        let mut page = self.inner.list(cursor, limit.min(self.left.max(1)))?;
        page.refs.truncate(self.left);
        self.left -= page.refs.len();
        if self.left == 0 {
            page.next = None;
        }
        page.total = None;
        Ok(page)
    }

    fn fetch(&mut self, refs: &[MessageRef]) -> Vec<Result<RawMessage, FetchError>> {
        self.inner.fetch(refs)
    }

    fn sync_token(&mut self) -> Result<SyncToken, SourceError> {
        self.inner.sync_token()
    }

    fn changes(&mut self, since: &SyncToken) -> Result<Changes, SourceError> {
        self.inner.changes(since)
    }
}

#[test]
fn kind_filters_agree_on_real_mail_and_chat() {
    let (Some(mail), Some(chat)) = (common::corpora("spamassassin"), common::corpora("chitchat"))
    else {
        return;
    };
    const CHATS: usize = 4000;
    let tmp = tempfile::tempdir().unwrap();
    let index = Index::create(&tmp.path().join("i"), &cred(), config()).unwrap();
    let mails = index
        .index(
            &mut Tree::open(&mail).unwrap(),
            &PassThrough::default(),
            &Default::default(),
        )
        .unwrap();
    let mut chats = Firsts {
        inner: chitchat::ChitChat::open(chat.join("dataset.json")).unwrap(),
        left: CHATS,
    };
    let report = index
        .index(&mut chats, &chitchat::ChatDecryptor, &Default::default())
        .unwrap();
    assert_eq!(report.failed, 0);
    index.wait_for_inverted().unwrap();
    let stored_mail = mails.stored as usize;
    let n = |q: &str| both(&index, q).len();
    assert_eq!(n("kind:mail"), stored_mail);
    assert_eq!(n("kind:chat"), CHATS);
    assert_eq!(n("kind:event OR kind:file"), 0);
    assert_eq!(n("-kind:mail"), CHATS);
    assert_eq!(n("kind:mail OR kind:chat"), stored_mail + CHATS);
    // Words both corpora use, split by kind.
    for word in ["hello", "thanks", "money", "\"how are you\"", "th"] {
        let all = n(word);
        let (m, c) = (
            n(&format!("kind:mail {word}")),
            n(&format!("kind:chat {word}")),
        );
        assert_eq!(m + c, all, "{word}");
        assert!(m > 0 && c > 0, "{word}: {m} mail, {c} chat");
    }
    assert_eq!(
        n("kind:chat after:2002-01-01 before:2003-01-01"),
        0,
        "the chats are from 2018"
    );
}
