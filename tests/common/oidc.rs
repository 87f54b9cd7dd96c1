//! A real OpenID provider for the OAuth2 tests: `oidc-provider` (npm, installed by
//! `scripts/test.sh` from `tests/oidc/package-lock.json` into a cache outside the
//! clone) run by Node.js on 127.0.0.1 and a free port, with a chosen access-token
//! lifetime; and a player of its sign-in pages (the user's browser, over HTTP).
//! The provider exits with the test process (it watches its stdin).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use super::dovecot::free_ports;

pub struct Oidc {
    pub issuer: String,
    pub port: u16,
    child: Child,
    _stdin: ChildStdin,
    log: PathBuf,
    _tmp: tempfile::TempDir,
}

/// The node_modules directory holding oidc-provider.
fn modules() -> PathBuf {
    let dir = std::env::var_os("MAILVAULT_OIDC_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/mailvault-oidc/node_modules")
        });
    assert!(
        dir.join("oidc-provider/package.json").exists(),
        "oidc-provider is not installed at {}; `bash scripts/test.sh` installs it (or: mkdir -p ~/.cache/mailvault-oidc && \
         cp tests/oidc/package*.json ~/.cache/mailvault-oidc/ && (cd ~/.cache/mailvault-oidc && npm ci))",
        dir.display()
    );
    dir
}

impl Oidc {
    /// Starts a provider whose access tokens live `access_ttl` seconds.
    pub fn start(access_ttl: u64) -> Oidc {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("oidc.log");
        let [port] = free_ports::<1>();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc/server.mjs");
        let mut child = Command::new("node")
            .arg(&script)
            .arg(port.to_string())
            .arg(access_ttl.to_string())
            .env("MAILVAULT_OIDC_MODULES", modules())
            .stdin(Stdio::piped())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs (Node.js 20 or later is needed: apt-get install nodejs)");
        let stdin = child.stdin.take().unwrap();
        let o = Oidc {
            issuer: format!("http://127.0.0.1:{port}"),
            port,
            child,
            _stdin: stdin,
            log,
            _tmp: tmp,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !o.log().contains("listening") {
            assert!(Instant::now() < deadline, "oidc-provider did not start: {}", o.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        o
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Lines of the log that contain `what` (`token refresh_token ok`, …).
    pub fn count(&self, what: &str) -> usize {
        self.log().lines().filter(|l| l.contains(what)).count()
    }

    /// Revokes a token at the provider's revocation endpoint (RFC 7009), as the
    /// public client `mailvault` that holds it.
    pub fn revoke(&self, token: &str) {
        let status = http()
            .post(format!("{}/token/revocation", self.issuer))
            .form(&[("client_id", "mailvault"), ("token", token)])
            .send()
            .unwrap()
            .status();
        assert!(status.is_success(), "revocation answered {status}");
    }

    /// Dovecot configuration lines for an oauth2 passdb that introspects tokens
    /// at this provider (as its confidential client `dovecot`); its settings file
    /// is kept in the provider's directory, readable by Dovecot's auth process.
    pub fn dovecot_conf(&self) -> String {
        use std::os::unix::fs::PermissionsExt;
        let dir = self._tmp.path();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let file = dir.join("oauth2.conf.ext");
        std::fs::write(
            &file,
            format!(
                "introspection_mode = post\nintrospection_url = http://dovecot:dovecot-secret-for-tests@127.0.0.1:{}/token/introspection\n\
                 username_attribute = sub\nactive_attribute = active\nactive_value = true\nforce_introspection = yes\n",
                self.port
            ),
        )
        .unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        format!(
            "auth_mechanisms = plain login xoauth2 oauthbearer\n\
             passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = {}\n}}\n",
            file.display()
        )
    }
}

impl Drop for Oidc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http() -> reqwest::blocking::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// One HTML form: where it posts, and its named inputs with their values.
struct Form {
    action: String,
    fields: Vec<(String, String)>,
}

/// The attribute `name` of one HTML tag.
fn attr(tag: &str, name: &str) -> Option<String> {
    let at = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let end = tag[at..].find('"')? + at;
    Some(tag[at..end].replace("&amp;", "&"))
}

/// The first form that posts, with its inputs (buttons named `abort` left out).
fn first_form(html: &str) -> Option<Form> {
    let start = html.find("<form")?;
    let head_end = html[start..].find('>')? + start;
    let action = attr(&html[start..head_end], "action")?;
    let body_end = html[head_end..].find("</form>").map_or(html.len(), |e| e + head_end);
    let mut fields = Vec::new();
    for piece in html[head_end..body_end].split("<input").skip(1) {
        let tag = &piece[..piece.find('>').unwrap_or(piece.len())];
        if let Some(name) = attr(tag, "name") {
            fields.push((name, attr(tag, "value").unwrap_or_default()));
        }
    }
    Some(Form { action, fields })
}

/// Plays the user at the provider's pages, starting at `url`: the device page
/// (enters `user_code`), the confirmation, the login page (signs in as `user`) and
/// the consent page, following redirects. Stops at a page without a form (the
/// device flow's success page) or at a redirect to `stop_at` (a browser sign-in's
/// loopback), which it then visits, as the browser would, and returns.
pub fn play_user(url: &str, user: &str, user_code: Option<&str>, stop_at: Option<&str>) -> String {
    let client = http();
    let origin = {
        let rest = url.split_once("://").unwrap().1;
        format!("http://{}", &rest[..rest.find('/').unwrap_or(rest.len())])
    };
    let absolute = |loc: &str| {
        if loc.starts_with('/') {
            format!("{origin}{loc}")
        } else {
            loc.to_string()
        }
    };
    let mut req = client.get(url);
    for _ in 0..20 {
        let resp = req.send().unwrap();
        if let Some(loc) = resp.headers().get("location") {
            let next = absolute(loc.to_str().unwrap());
            if stop_at.is_some_and(|s| next.starts_with(s)) {
                return client.get(&next).send().unwrap().text().unwrap();
            }
            req = client.get(&next);
            continue;
        }
        let html = resp.text().unwrap();
        let Some(form) = first_form(&html) else {
            return html;
        };
        let fields: Vec<(String, String)> = form
            .fields
            .into_iter()
            .map(|(k, v)| {
                let v = match k.as_str() {
                    "user_code" if v.is_empty() => user_code.expect("a device page asks for the code").to_string(),
                    "login" => user.to_string(),
                    "password" => "any password".to_string(),
                    _ => v,
                };
                (k, v)
            })
            .collect();
        req = client.post(absolute(&form.action)).form(&fields);
    }
    panic!("the sign-in pages did not end within 20 steps");
}

/// Reads a child's stderr until a line containing `marker`, returning every line
/// read (bounded in time by the caller's process timeout).
pub fn read_until(reader: &mut BufReader<std::process::ChildStderr>, marker: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for _ in 0..200 {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 {
            break;
        }
        let done = line.contains(marker);
        lines.push(line.trim_end().to_string());
        if done {
            break;
        }
    }
    lines
}
