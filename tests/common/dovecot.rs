//! A private Dovecot for protocol tests: an unprivileged instance on 127.0.0.1 with
//! free ports (IMAP, IMAPS, POP3, POP3S), state in a temp dir, a generated CA and
//! server certificate, users in a passwd-file, and mail loaded fast by writing
//! maildir files. Stopped when dropped. It never reads /etc/dovecot.
//!
//! When Dovecot is missing the test fails, saying how to install it: these tests
//! are never skipped silently.

use std::net::TcpListener;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// The system user the mail belongs to when the tests run as root.
const MAIL_USER: &str = "mailvault-test";

pub struct Dovecot {
    pub dir: PathBuf,
    _tmp: tempfile::TempDir,
    pub imap: u16,
    pub imaps: u16,
    pub pop3: u16,
    pub pop3s: u16,
    conf: PathBuf,
    uid: u32,
    gid: u32,
    pub storage: Storage,
}

/// How an instance stores mail, and its hierarchy separator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    /// maildir, `/` separator (what `load` writes directly).
    Maildir,
    /// mdbox (Dovecot's multi-message files), `.` separator.
    MdboxDot,
    /// maildir with the personal folders under the prefix `INBOX.` and `.` as
    /// separator (NAMESPACE says so), as Courier and many hosting providers have
    /// them. Loaded with [`Dovecot::load`] by `/`-separated names relative to the
    /// prefix.
    MaildirInboxDot,
}

impl Storage {
    fn mail_location(self, dir: &Path) -> String {
        match self {
            Storage::Maildir => format!("maildir:{}/mail/%u", dir.display()),
            Storage::MdboxDot => format!("mdbox:{}/mail/%u", dir.display()),
            Storage::MaildirInboxDot => format!("maildir:{}/mail/%u", dir.display()),
        }
    }
    pub fn separator(self) -> &'static str {
        match self {
            Storage::Maildir => "/",
            Storage::MdboxDot | Storage::MaildirInboxDot => ".",
        }
    }
    pub fn prefix(self) -> &'static str {
        match self {
            Storage::MaildirInboxDot => "INBOX.",
            Storage::Maildir | Storage::MdboxDot => "",
        }
    }
    /// The server's name of a folder given `/`-separated and relative to the
    /// personal namespace (INBOX in any case spelling is INBOX, also as a parent).
    pub fn server_name(self, folder: &str) -> String {
        let folder = match folder.split_once('/') {
            Some((top, rest)) if top.eq_ignore_ascii_case("INBOX") => format!("INBOX/{rest}"),
            _ if folder.eq_ignore_ascii_case("INBOX") => return "INBOX".to_string(),
            _ => folder.to_string(),
        };
        format!("{}{}", self.prefix(), folder.replace('/', self.separator()))
    }
}

/// `N` distinct free ports on 127.0.0.1 for a server another process will bind.
///
/// They are taken below Linux's ephemeral range (32768–60999), from a sequence
/// that starts at a place of this process's own: a port handed out here and not
/// yet bound by its server can then not be taken by a `bind(0)` of another test
/// thread (a proxy's listener) or by an outgoing connection, nor handed out here
/// twice (seen as Dovecot's "duplicate listener" and as a Garage node answering
/// another cluster's `node connect`). Each is checked free by binding it.
pub fn free_ports<const N: usize>() -> [u16; N] {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 10_000;
    const SPAN: u32 = 22_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(2_654_435_761) % SPAN;
    let mut held = Vec::with_capacity(N);
    for _ in 0..SPAN {
        if held.len() == N {
            break;
        }
        let port = LOW + (start + NEXT.fetch_add(1, Ordering::SeqCst)) % SPAN;
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port as u16)) {
            held.push(l);
        }
    }
    assert_eq!(held.len(), N, "no {N} free ports in {LOW}..{}", LOW + SPAN);
    std::array::from_fn(|i| held[i].local_addr().unwrap().port())
}

fn run_ok(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn which(prog: &str) -> Option<PathBuf> {
    for dir in [
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
        "/usr/local/sbin",
        "/usr/local/bin",
    ] {
        let p = Path::new(dir).join(prog);
        if p.exists() {
            return Some(p);
        }
    }
    None
}

/// The uid and gid of the unprivileged system user that servers the tests start
/// as root run as (made when missing).
pub fn test_user_ids() -> (u32, u32) {
    if ids_of(MAIL_USER).is_none() {
        run_ok(
            Command::new("useradd").args([
                "--system",
                "--user-group",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                MAIL_USER,
            ]),
            "useradd",
        );
    }
    ids_of(MAIL_USER).expect("the test user exists")
}

fn ids_of(user: &str) -> Option<(u32, u32)> {
    let out = Command::new("id").arg("-u").arg(user).output().ok()?;
    let uid = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    let out = Command::new("id").arg("-g").arg(user).output().ok()?;
    let gid = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    Some((uid, gid))
}

/// Generates a CA and a server certificate for localhost/127.0.0.1 signed by it.
pub fn make_certs(tls: &Path) {
    make_certs_valid_for(tls, 3);
}

/// The same, the server certificate valid for `days` (negative: expired, for the
/// tests of what an expired certificate does).
pub fn make_certs_valid_for(tls: &Path, days: i32) {
    std::fs::create_dir_all(tls).unwrap();
    let ossl = |args: &[&str], what: &str| {
        run_ok(Command::new("openssl").args(args).current_dir(tls), what);
    };
    ossl(
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "3",
            "-subj",
            "/CN=mailvault test CA",
        ],
        "openssl: CA",
    );
    ossl(
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
        "openssl: server key",
    );
    std::fs::write(
        tls.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    ossl(
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "cert.pem",
            "-days",
            &days.to_string(),
            "-extfile",
            "ext.cnf",
        ],
        "openssl: sign server certificate",
    );
    ossl(
        &[
            "genpkey",
            "-genparam",
            "-algorithm",
            "DH",
            "-pkeyopt",
            "dh_param:ffdhe2048",
            "-out",
            "dh.pem",
        ],
        "openssl: DH params",
    );
}

impl Dovecot {
    /// Starts an instance; panics with instructions when Dovecot is not installed.
    pub fn start() -> Dovecot {
        Self::start_with("")
    }

    /// Starts an instance with extra configuration lines appended.
    pub fn start_with(extra_conf: &str) -> Dovecot {
        Self::start_flavour(Storage::Maildir, extra_conf)
    }

    /// Starts an instance storing mail as `storage` says (a migration target unlike
    /// the source), with extra configuration lines appended. Only [`Storage::Maildir`]
    /// instances can be filled with [`Dovecot::load`].
    pub fn start_flavour(storage: Storage, extra_conf: &str) -> Dovecot {
        Self::start_full(storage, extra_conf, 3, [true; 4])
    }

    /// An instance for `probe`: its server certificate valid for `cert_days`
    /// (negative: expired), and only the listeners `listening` says
    /// (`[imap, imaps, pop3, pop3s]`) waited for; the extra lines turn the others
    /// off (`port = 0`, or `protocols`).
    pub fn start_probe_target(extra_conf: &str, cert_days: i32, listening: [bool; 4]) -> Dovecot {
        Self::start_full(Storage::Maildir, extra_conf, cert_days, listening)
    }

    fn start_full(storage: Storage, extra_conf: &str, cert_days: i32, listening: [bool; 4]) -> Dovecot {
        let dovecot = which("dovecot").unwrap_or_else(|| {
            panic!(
                "Dovecot is not installed, and these tests need a real one. Install it with \
                 `apt-get install dovecot-imapd dovecot-pop3d` (bash scripts/test.sh does it when run as root)"
            )
        });
        let root = unsafe { libc::geteuid() } == 0;
        let (uid, gid, internal) = if root {
            let (u, g) = test_user_ids();
            (u, g, None)
        } else {
            let name = std::env::var("USER")
                .unwrap_or_else(|_| run_ok(&mut Command::new("whoami"), "whoami").trim().to_string());
            let (u, g) = ids_of(&name).expect("own ids");
            (u, g, Some(name))
        };
        // Unix socket paths must stay short: a temp dir right under /tmp.
        let tmp = tempfile::Builder::new().prefix("mvd").tempdir_in("/tmp").unwrap();
        let dir = tmp.path().to_path_buf();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        for d in ["run", "state", "mail", "home"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        for d in ["mail", "home"] {
            chown(dir.join(d), Some(uid), Some(gid)).unwrap();
        }
        make_certs_valid_for(&dir.join("tls"), cert_days);
        std::fs::write(dir.join("users"), "").unwrap();
        let [imap, imaps, pop3, pop3s] = free_ports::<4>();
        let template = include_str!("dovecot.conf.in");
        let (internal_user, login_user) = match &internal {
            None => ("dovecot".to_string(), "dovenull".to_string()),
            Some(n) => (n.clone(), n.clone()),
        };
        // Extra lines may use the same placeholders (@DIR@ for paths in the state dir).
        let conf_text = format!("{template}{extra_conf}")
            .replace("@DIR@", &dir.to_string_lossy())
            .replace("@NAME@", &dir.file_name().unwrap().to_string_lossy())
            .replace("@UID@", &uid.to_string())
            .replace("@GID@", &gid.to_string())
            .replace("@INTERNAL_USER@", &internal_user)
            .replace("@LOGIN_USER@", &login_user)
            .replace("@IMAP@", &imap.to_string())
            .replace("@IMAPS@", &imaps.to_string())
            .replace("@POP3@", &pop3.to_string())
            .replace("@POP3S@", &pop3s.to_string())
            .replace("@MAIL_LOCATION@", &storage.mail_location(&dir))
            .replace("@SEPARATOR@", storage.separator())
            .replace("@PREFIX@", storage.prefix());
        let conf = dir.join("dovecot.conf");
        std::fs::write(&conf, conf_text).unwrap();
        // Dovecot forks into the background: no inherited pipes, or we wait forever.
        let err_file = std::fs::File::create(dir.join("start.err")).unwrap();
        let st = Command::new(&dovecot)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err_file)
            .status()
            .expect("dovecot runs");
        let d = Dovecot {
            dir,
            _tmp: tmp,
            imap,
            imaps,
            pop3,
            pop3s,
            conf,
            uid,
            gid,
            storage,
        };
        assert!(st.success(), "dovecot failed to start: {}", d.log());
        let deadline = Instant::now() + Duration::from_secs(20);
        let waited = [imap, imaps, pop3, pop3s].into_iter().zip(listening);
        for port in waited.filter(|w| w.1).map(|w| w.0) {
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "dovecot did not listen on {port}: {}",
                    d.log()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        d
    }

    pub fn log(&self) -> String {
        let start = std::fs::read_to_string(self.dir.join("start.err")).unwrap_or_default();
        start + &std::fs::read_to_string(self.dir.join("dovecot.log")).unwrap_or_default()
    }

    /// The CA certificate that signed the server certificate.
    pub fn ca_pem(&self) -> PathBuf {
        self.dir.join("tls/ca.pem")
    }

    pub fn add_user(&self, user: &str, password: &str) {
        self.add_users(&[user], password);
    }

    /// Adds users (one write), and returns once Dovecot knows them all.
    pub fn add_users(&self, users: &[&str], password: &str) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.join("users"))
            .unwrap();
        for user in users {
            writeln!(f, "{user}:{{PLAIN}}{password}").unwrap();
        }
        drop(f);
        for user in users {
            self.wait_for_user(user, password);
        }
    }

    fn wait_for_user(&self, user: &str, password: &str) {
        // Dovecot's auth process may go on using the users file it read within
        // the same second for a moment: wait until it knows the new user, so a
        // login right after does not fail (seen as AUTHENTICATIONFAILED).
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ok = Command::new(which("doveadm").expect("doveadm"))
                .arg("-c")
                .arg(&self.conf)
                .args(["auth", "test", "-x", "service=imap", user, password])
                .output()
                .is_ok_and(|o| o.status.success());
            if ok {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "Dovecot does not know user {user} 10 s after adding it"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn doveadm(&self, args: &[&str]) -> String {
        let mut c = Command::new(which("doveadm").expect("doveadm"));
        c.arg("-c").arg(&self.conf).args(args);
        run_ok(&mut c, &format!("doveadm {}", args.join(" ")))
    }

    /// Creates `folder` unless it exists (INBOX always does).
    fn ensure_mailbox(&self, user: &str, folder: &str) {
        if folder.eq_ignore_ascii_case("INBOX") {
            return;
        }
        let list = self.doveadm(&["mailbox", "list", "-u", user]);
        if !list.lines().any(|l| l.trim() == folder) {
            self.doveadm(&["mailbox", "create", "-u", user, folder]);
        }
    }

    /// Delivers one message into `folder` (created if missing) through Dovecot
    /// itself (`doveadm save`), whatever the storage; INTERNALDATE is the time of
    /// delivery.
    pub fn save(&self, user: &str, folder: &str, raw: &[u8]) {
        use std::io::Write;
        self.ensure_mailbox(user, folder);
        let mut child = Command::new(which("doveadm").expect("doveadm"))
            .arg("-c")
            .arg(&self.conf)
            .args(["save", "-u", user, "-m", folder])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(raw).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "doveadm save: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Creates a folder (if missing) and returns its maildir; `folder` is
    /// `/`-separated, relative to the personal namespace.
    pub fn folder_path(&self, user: &str, folder: &str) -> PathBuf {
        assert!(
            matches!(self.storage, Storage::Maildir | Storage::MaildirInboxDot),
            "only maildir instances are loaded file by file"
        );
        let folder = self.storage.server_name(folder);
        let folder = folder.as_str();
        self.ensure_mailbox(user, folder);
        let p = PathBuf::from(self.doveadm(&["mailbox", "path", "-u", user, folder]).trim());
        for sub in ["cur", "new", "tmp"] {
            let d = p.join(sub);
            if !d.exists() {
                std::fs::create_dir_all(&d).unwrap();
            }
        }
        self.chown_tree(&self.dir.join("mail"));
        p
    }

    fn chown_tree(&self, p: &Path) {
        for e in walkdir::WalkDir::new(p).into_iter().filter_map(|e| e.ok()) {
            let _ = chown(e.path(), Some(self.uid), Some(self.gid));
        }
    }

    /// Puts messages into a folder as maildir files (in order: UIDs follow it), with
    /// maildir flag letters and an mtime that becomes INTERNALDATE.
    pub fn load(&self, user: &str, folder: &str, messages: &[(Vec<u8>, &str, SystemTime)]) {
        let p = self.folder_path(user, folder);
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        for (raw, flags, mtime) in messages {
            let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // As Dovecot's own delivery names files: with the physical (S=) and
            // CRLF (W=) sizes, so RFC822.SIZE does not need a read of the file.
            let bare_lf = raw
                .iter()
                .enumerate()
                .filter(|(i, b)| **b == b'\n' && (*i == 0 || raw[i - 1] != b'\r'))
                .count();
            let base = format!(
                "{:010}.M{n}P{}.testhost,S={},W={}",
                1_600_000_000 + n,
                std::process::id(),
                raw.len(),
                raw.len() + bare_lf
            );
            let tmp = p.join("tmp").join(&base);
            std::fs::write(&tmp, raw).unwrap();
            let f = std::fs::File::options().write(true).open(&tmp).unwrap();
            f.set_modified(*mtime).unwrap();
            drop(f);
            chown(&tmp, Some(self.uid), Some(self.gid)).unwrap();
            std::fs::rename(&tmp, p.join("cur").join(format!("{base}:2,{flags}"))).unwrap();
        }
    }

    /// Loads a tree of mail files (one folder per directory, files in numeric order)
    /// into `user`'s mailbox; returns the number of messages.
    pub fn load_tree(&self, user: &str, root: &Path) -> usize {
        let mut total = 0;
        let mut dirs: Vec<PathBuf> = walkdir::WalkDir::new(root)
            .into_iter()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_dir())
            .map(|e| e.into_path())
            .collect();
        dirs.sort();
        for d in dirs {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&d)
                .unwrap()
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_file() && !p.file_name().unwrap().to_string_lossy().ends_with(".txt"))
                .collect();
            if files.is_empty() {
                continue;
            }
            files.sort_by_key(|p| {
                let n = p
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .trim_end_matches('.')
                    .to_string();
                (n.parse::<u64>().unwrap_or(u64::MAX), n)
            });
            let rel = d.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let folder = if rel.is_empty() { "INBOX".to_string() } else { rel };
            let msgs: Vec<(Vec<u8>, &str, SystemTime)> = files
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    let flags = if i % 3 == 0 {
                        "S"
                    } else if i % 7 == 0 {
                        "FS"
                    } else {
                        ""
                    };
                    (
                        std::fs::read(f).unwrap(),
                        flags,
                        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000 + i as u64 * 3600),
                    )
                })
                .collect();
            total += msgs.len();
            self.load(user, &folder, &msgs);
        }
        total
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = Command::new(which("doveadm").unwrap_or_else(|| "doveadm".into()))
            .arg("-c")
            .arg(&self.conf)
            .arg("stop")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("run/master.pid")) {
            if let Ok(pid) = pid.trim().parse::<i32>() {
                unsafe {
                    libc::kill(pid, libc::SIGTERM);
                }
            }
        }
    }
}

/// One message as the server reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerMessage {
    pub hash: mailvault::model::Hash32,
    /// Flags, sorted, without `\Recent`.
    pub flags: Vec<String>,
    pub internal_date: i64,
}

impl Dovecot {
    /// Everything `user` has, per (folder, UIDVALIDITY, UID), read over plain IMAP on
    /// loopback with the client library directly — an oracle independent of the
    /// puller.
    pub fn server_view(
        &self,
        user: &str,
        password: &str,
    ) -> std::collections::BTreeMap<(String, u32, u32), ServerMessage> {
        use futures::StreamExt;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let port = self.imap;
        rt.block_on(async move {
            let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            let mut client = async_imap::Client::new(tcp);
            client.read_response().await.unwrap().unwrap();
            let mut s = client.login(user, password).await.map_err(|e| e.0).unwrap();
            let names: Vec<String> = s
                .list(Some(""), Some("*"))
                .await
                .unwrap()
                .map(|n| n.unwrap())
                .filter(|n| {
                    use async_imap::imap_proto::NameAttribute;
                    let selectable = !n.attributes().iter().any(|a| match a {
                        NameAttribute::NoSelect => true,
                        NameAttribute::Extension(e) => e.eq_ignore_ascii_case("\\NonExistent"),
                        _ => false,
                    });
                    std::future::ready(selectable)
                })
                .map(|n| n.name().to_string())
                .collect()
                .await;
            let mut out = std::collections::BTreeMap::new();
            for name in names {
                let mb = s.examine(&name).await.unwrap();
                let uv = mb.uid_validity.unwrap();
                if mb.exists == 0 {
                    continue;
                }
                let items: Vec<_> = s
                    .uid_fetch("1:*", "(UID FLAGS INTERNALDATE BODY.PEEK[])")
                    .await
                    .unwrap()
                    .map(|f| f.unwrap())
                    .collect()
                    .await;
                for f in items {
                    let mut flags: Vec<String> = f
                        .flags()
                        .filter_map(|fl| {
                            use async_imap::types::Flag;
                            Some(match fl {
                                Flag::Seen => "\\Seen".to_string(),
                                Flag::Answered => "\\Answered".to_string(),
                                Flag::Flagged => "\\Flagged".to_string(),
                                Flag::Deleted => "\\Deleted".to_string(),
                                Flag::Draft => "\\Draft".to_string(),
                                Flag::Custom(c) => c.to_string(),
                                _ => return None,
                            })
                        })
                        .collect();
                    flags.sort();
                    // Keyed by the decoded name (modified UTF-7 has its own tests).
                    let decoded = mailvault::plan::mutf7::decode(&name).unwrap_or_else(|_| name.clone());
                    out.insert(
                        (decoded, uv, f.uid.unwrap()),
                        ServerMessage {
                            hash: mailvault::model::Hash32::of(f.body().unwrap()),
                            flags,
                            internal_date: f.internal_date().unwrap().timestamp(),
                        },
                    );
                }
            }
            s.logout().await.unwrap();
            out
        })
    }
}

// ---- pulling from a test server and comparing the archive with it ----

use std::collections::BTreeMap;
use std::process::Output;

use mailvault::archive::{Archive, PlacementFilter};
use mailvault::model::SourceKey;

/// The password of every test user.
pub const TEST_PASSWORD: &str = "s3cret-Pa55word";
const PW: &str = TEST_PASSWORD;

/// `mailvault pull` of `user` over IMAPS with the test CA; the password in an env var.
pub fn pull(archive: &Path, d: &Dovecot, user: &str, extra: &[&str]) -> Output {
    pull_command(archive, &format!("imaps://{user}@127.0.0.1:{}", d.imaps), d, extra)
        .output()
        .unwrap()
}

/// The `mailvault pull URL` command with the test CA and password.
pub fn pull_command(archive: &Path, url: &str, d: &Dovecot, extra: &[&str]) -> Command {
    let ca = d.ca_pem();
    let mut args = vec![
        "pull",
        url,
        "--password-env",
        "MV_TEST_PW",
        "--tls-ca",
        ca.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let mut c = super::cmd(archive, &args);
    c.env("MV_TEST_PW", PW);
    c
}

/// The first `n` messages of the bundled demo sample, in file order.
pub fn sample_messages(n: usize) -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(super::demo_sample())
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file() && !e.file_name().to_string_lossy().ends_with(".md"))
        .map(|e| e.into_path())
        .collect();
    files.sort();
    files.into_iter().take(n).map(|p| std::fs::read(p).unwrap()).collect()
}

/// Loads the Enron maildir of the shared corpus into `user`'s mailbox.
pub fn load_enron(d: &Dovecot, user: &str) -> usize {
    let Some(enron) = super::shared_corpus("enron-skilling-j") else {
        panic!("the shared corpus is needed (../shared/corpus or MAILVAULT_CORPUS)");
    };
    d.load_tree(user, &enron.join("skilling-j"))
}

/// Loads the named folders of the shared SpamAssassin corpus (e.g. `easy-ham-1`),
/// in file order, all into `user`'s INBOX — the one mailbox POP3 serves. Returns
/// the number of messages.
pub fn load_spamassassin(d: &Dovecot, user: &str, folders: &[&str]) -> usize {
    let Some(root) = super::shared_corpus("spamassassin-public-corpus") else {
        panic!("the shared corpus is needed (../shared/corpus or MAILVAULT_CORPUS)");
    };
    let mut msgs = Vec::new();
    for f in folders {
        let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(f))
            .unwrap_or_else(|e| panic!("{}: {e}", root.join(f).display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for p in files {
            let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_030_000_000 + msgs.len() as u64 * 60);
            msgs.push((std::fs::read(p).unwrap(), "", at));
        }
    }
    d.load(user, "INBOX", &msgs);
    msgs.len()
}

pub fn pull_json(archive: &Path, d: &Dovecot, user: &str, extra: &[&str]) -> serde_json::Value {
    let mut e = vec!["--json"];
    e.extend_from_slice(extra);
    let out = pull(archive, d, user, &e);
    assert!(
        out.status.success(),
        "pull failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The archive's live IMAP placements of `account`, keyed like the server view.
pub fn archive_view(archive: &Path, account: &str) -> BTreeMap<(String, u32, u32), ServerMessage> {
    let a = Archive::open_read_only(archive).unwrap();
    let filter = PlacementFilter {
        accounts: vec![account.to_string()],
        ..Default::default()
    };
    let mut out = BTreeMap::new();
    for p in a.placements(&filter).unwrap() {
        let SourceKey::Imap { uidvalidity, uid } = p.key.source else {
            panic!("not an IMAP placement: {:?}", p.key)
        };
        if p.record.deleted_at.is_some() {
            continue;
        }
        let mut flags = p.record.flags.names();
        flags.sort();
        out.insert(
            (p.key.mailbox.clone(), uidvalidity, uid),
            ServerMessage {
                hash: p.record.message,
                flags,
                internal_date: p.record.internal_date.unwrap(),
            },
        );
    }
    out
}

pub fn assert_same(
    server: &BTreeMap<(String, u32, u32), ServerMessage>,
    archive: &BTreeMap<(String, u32, u32), ServerMessage>,
) {
    let missing: Vec<_> = server.keys().filter(|k| !archive.contains_key(*k)).take(5).collect();
    let extra: Vec<_> = archive.keys().filter(|k| !server.contains_key(*k)).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, extra {extra:?}"
    );
    for (k, s) in server {
        assert_eq!(&archive[k], s, "{k:?}");
    }
}

/// Source folder (as the archive names it) → target folder, from a replay report's
/// rows (`sources` are `account/folder (why)`).
pub fn report_folder_map(report: &serde_json::Value) -> std::collections::HashMap<String, String> {
    let mut m = std::collections::HashMap::new();
    for f in report["folders"].as_array().unwrap() {
        for s in f["sources"].as_array().unwrap() {
            let s = s.as_str().unwrap();
            let account_folder = s.rsplit_once(" (").map_or(s, |(a, _)| a);
            let folder = account_folder.split_once('/').unwrap().1;
            m.insert(folder.to_string(), f["folder"].as_str().unwrap().to_string());
        }
    }
    m
}

/// Every difference between two accounts as [`Dovecot::server_view`] reads them:
/// each source message must appear in `map(its folder)` on the target exactly as
/// often as in the source, with the same flags and INTERNALDATE. Target folders no
/// source folder maps to must be empty of messages. Empty when they agree.
pub fn compare_views(
    source: &BTreeMap<(String, u32, u32), ServerMessage>,
    target: &BTreeMap<(String, u32, u32), ServerMessage>,
    map: impl Fn(&str) -> String,
) -> Vec<String> {
    type Bag = BTreeMap<(mailvault::model::Hash32, Vec<String>, i64), usize>;
    let bags = |v: &BTreeMap<(String, u32, u32), ServerMessage>, rename: &dyn Fn(&str) -> String| {
        let mut out: BTreeMap<String, Bag> = BTreeMap::new();
        for ((folder, _, _), m) in v {
            *out.entry(rename(folder))
                .or_default()
                .entry((m.hash, m.flags.clone(), m.internal_date))
                .or_default() += 1;
        }
        out
    };
    let want = bags(source, &map);
    let have = bags(target, &|f: &str| f.to_string());
    let mut diffs = Vec::new();
    let empty = Bag::new();
    for folder in want
        .keys()
        .chain(have.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        let (w, h) = (want.get(folder).unwrap_or(&empty), have.get(folder).unwrap_or(&empty));
        // By message first (missing / extra), then by flags and date.
        let by_hash = |b: &Bag| {
            let mut m: BTreeMap<mailvault::model::Hash32, usize> = BTreeMap::new();
            for ((hash, _, _), n) in b {
                *m.entry(*hash).or_default() += n;
            }
            m
        };
        let (wh, hh) = (by_hash(w), by_hash(h));
        for hash in wh.keys().chain(hh.keys()).collect::<std::collections::BTreeSet<_>>() {
            let (a, b) = (wh.get(hash).copied().unwrap_or(0), hh.get(hash).copied().unwrap_or(0));
            if a > b {
                diffs.push(format!("{folder}: {} missing {} time(s)", hash.to_hex(), a - b));
            } else if b > a {
                diffs.push(format!("{folder}: {} extra {} time(s)", hash.to_hex(), b - a));
            }
        }
        for (key, n) in w {
            let m = h.get(key).copied().unwrap_or(0);
            if m < *n && hh.get(&key.0).copied().unwrap_or(0) >= wh[&key.0] {
                diffs.push(format!(
                    "{folder}: {} flags {:?} / date {} differ on the target",
                    key.0.to_hex(),
                    key.1,
                    key.2
                ));
            }
        }
    }
    diffs
}

/// The main set's message files (enron + spamassassin + usrp-users), in path order.
pub fn main_set() -> Vec<PathBuf> {
    let root = super::corpus_root().expect("the shared corpus is needed (../shared/corpus or MAILVAULT_CORPUS)");
    let mut files: Vec<PathBuf> = [
        "enron-skilling-j",
        "spamassassin-public-corpus",
        "usrp-users-list-2019-2021",
    ]
    .iter()
    .flat_map(|f| walkdir::WalkDir::new(root.join(f)))
    .filter_map(Result::ok)
    .filter(|e| e.file_type().is_file())
    .map(|e| e.into_path())
    .filter(|p| !p.to_string_lossy().ends_with(".txt"))
    .collect();
    files.sort();
    files
}

/// The name (and login) of the `i`th account [`deal_main_set`] makes.
pub fn user(i: usize) -> String {
    format!("w{i:02}")
}

/// What was dealt: messages in all, and distinct message contents.
pub struct Dealt {
    pub messages: u64,
    pub distinct: u64,
}

/// Deals the main set out to `accounts` users (`w00`, `w01`, …; password
/// [`TEST_PASSWORD`]), each file into a folder named
/// after its corpus.
pub fn deal_main_set(d: &Dovecot, accounts: usize) -> Dealt {
    let users: Vec<String> = (0..accounts).map(user).collect();
    let refs: Vec<&str> = users.iter().map(String::as_str).collect();
    d.add_users(&refs, TEST_PASSWORD);
    // (account, folder) → its messages, in order.
    type Folders<'a> = BTreeMap<(usize, &'a str), Vec<(Vec<u8>, &'a str, SystemTime)>>;
    let mut per: Folders = BTreeMap::new();
    let mut ids = std::collections::HashSet::new();
    let files = main_set();
    for (i, f) in files.iter().enumerate() {
        let raw = std::fs::read(f).unwrap();
        let s = f.to_string_lossy();
        let folder = if s.contains("enron") {
            "Enron"
        } else if s.contains("spamassassin") {
            "INBOX"
        } else {
            "Lists"
        };
        ids.insert(mailvault::model::MessageId::of(&raw));
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000 + i as u64 * 60);
        per.entry((i % accounts, folder)).or_default().push((raw, "", at));
    }
    for ((u, folder), msgs) in &per {
        d.load(&user(*u), folder, msgs);
    }
    Dealt {
        messages: files.len() as u64,
        distinct: ids.len() as u64,
    }
}
