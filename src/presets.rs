//! Provider presets: the mail providers mailvault knows by name
//! (`presets/providers.toml`, compiled in), and the server addresses they give for
//! a user name (`--provider NAME`, `preset = "NAME"` in job files). Pure parsing
//! and look-up, but for [`lookup`], which also reads the site's own presets file
//! that `MAILVAULT_PRESETS` names.

use serde::Deserialize;

use crate::net::{Endpoint, Scheme};

/// The presets file, as shipped.
pub const BUILTIN: &str = include_str!("../presets/providers.toml");

#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum PresetError {
    #[error("presets file: {0}")]
    Parse(String),
    #[error("presets file: provider {name:?}: {what}")]
    Invalid { name: String, what: String },
    #[error("no provider preset {name:?}; known: {known}")]
    Unknown { name: String, known: String },
    #[error("MAILVAULT_PRESETS={path}: {what}")]
    SiteFile { path: String, what: String },
    #[error("{address:?}: with a provider preset give the user name (pop3:USER for its POP3), or a whole imaps://USER@HOST address; never a password")]
    BadAddress { address: String },
    #[error("provider {name:?} offers no {protocol} (only {offered})")]
    NoProtocol {
        name: String,
        protocol: &'static str,
        offered: &'static str,
    },
}

/// How a preset's server is secured.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Tls {
    /// TLS from the first byte (993, 995).
    Implicit,
    /// STARTTLS / STLS on the plain port.
    Starttls,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub host: String,
    pub port: u16,
    pub tls: Tls,
}

/// How users sign in over IMAP and POP3.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum AuthKind {
    Oauth2,
    AppPassword,
    Password,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OAuth2 {
    pub authorization: String,
    pub token: String,
    #[serde(default)]
    pub device: Option<String>,
    pub scopes: Vec<String>,
    /// Scopes of the client-credentials grant (app-only access).
    #[serde(default)]
    pub app_scopes: Vec<String>,
    /// What `{tenant}` in the endpoints becomes when no tenant is given.
    #[serde(default)]
    pub tenant_default: Option<String>,
}

impl OAuth2 {
    /// `endpoint` with `{tenant}` replaced by `tenant` or the default.
    pub fn with_tenant(&self, endpoint: &str, tenant: Option<&str>) -> String {
        let t = tenant.or(self.tenant_default.as_deref()).unwrap_or("common");
        endpoint.replace("{tenant}", t)
    }
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    /// Bytes a day the provider lets IMAP download.
    #[serde(default)]
    pub download_per_day: Option<u64>,
    /// Bytes a day the provider lets IMAP upload (APPEND).
    #[serde(default)]
    pub upload_per_day: Option<u64>,
    #[serde(default)]
    pub note: String,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Folders {
    #[serde(default)]
    pub all_mail: Option<String>,
    #[serde(default)]
    pub trash: Option<String>,
    #[serde(default)]
    pub spam: Option<String>,
    #[serde(default)]
    pub sent: Option<String>,
    #[serde(default)]
    pub archive: Option<String>,
    #[serde(default)]
    pub skip_on_pull: Vec<String>,
    #[serde(default)]
    pub note: String,
}

/// One provider.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub title: String,
    pub imap: Server,
    #[serde(default)]
    pub pop3: Option<Server>,
    pub auth: Vec<AuthKind>,
    #[serde(default)]
    pub oauth2: Option<OAuth2>,
    /// Simultaneous IMAP connections per account the provider allows.
    #[serde(default)]
    pub max_connections: Option<u32>,
    /// What mailvault opens for one account by default.
    pub connections: u32,
    #[serde(default)]
    pub quota: Quota,
    #[serde(default)]
    pub folders: Folders,
}

/// Which protocol an address is wanted for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Imap,
    Pop3,
}

impl Preset {
    /// The address of `user`'s mailbox over `protocol`.
    pub fn endpoint(&self, protocol: Protocol, user: &str) -> Result<Endpoint, PresetError> {
        let server = match protocol {
            Protocol::Imap => &self.imap,
            Protocol::Pop3 => self.pop3.as_ref().ok_or_else(|| PresetError::NoProtocol {
                name: self.name.clone(),
                protocol: "POP3",
                offered: "IMAP",
            })?,
        };
        let scheme = match (protocol, server.tls) {
            (Protocol::Imap, Tls::Implicit) => Scheme::Imaps,
            (Protocol::Imap, Tls::Starttls) => Scheme::Imap,
            (Protocol::Pop3, Tls::Implicit) => Scheme::Pop3s,
            (Protocol::Pop3, Tls::Starttls) => Scheme::Pop3,
        };
        Ok(Endpoint {
            scheme,
            user: user.to_string(),
            host: server.host.clone(),
            port: server.port,
        })
    }

    /// The address `address` means at this provider: `USER` for its IMAP server,
    /// `pop3:USER` for its POP3 server (`imap:USER` too). A full address
    /// (`imaps://USER@HOST…`) is taken as it is, the preset then giving only its
    /// limits (job files written that way keep their meaning).
    pub fn endpoint_for(&self, address: &str) -> Result<Endpoint, PresetError> {
        if address.contains("://") {
            return Endpoint::parse(address).map_err(|e| PresetError::BadAddress {
                address: format!("{address}: {e}"),
            });
        }
        let (protocol, user) = match address.split_once(':') {
            Some((p, user)) if p.eq_ignore_ascii_case("pop3") => (Protocol::Pop3, user),
            Some((p, user)) if p.eq_ignore_ascii_case("imap") => (Protocol::Imap, user),
            _ => (Protocol::Imap, address),
        };
        if user.is_empty() || user.contains(':') || user.contains('/') {
            return Err(PresetError::BadAddress {
                address: address.to_string(),
            });
        }
        self.endpoint(protocol, user)
    }

    fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.name.as_str()).chain(self.aliases.iter().map(String::as_str))
    }

    fn check(&self) -> Result<(), PresetError> {
        let bad = |what: &str| PresetError::Invalid {
            name: self.name.clone(),
            what: what.to_string(),
        };
        if self.imap.host.is_empty() || self.imap.port == 0 {
            return Err(bad("imap needs a host and a port"));
        }
        if self.auth.is_empty() {
            return Err(bad("auth lists no way to sign in"));
        }
        if self.auth.contains(&AuthKind::Oauth2) != self.oauth2.is_some() {
            return Err(bad("auth has \"oauth2\" exactly when an oauth2 table is given"));
        }
        if self.connections == 0 || self.max_connections.is_some_and(|m| self.connections > m) {
            return Err(bad("connections must be at least 1 and at most max_connections"));
        }
        Ok(())
    }
}

/// Every preset of a presets file.
#[derive(Clone, Debug)]
pub struct Presets {
    pub providers: Vec<Preset>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    provider: Vec<Preset>,
}

impl Presets {
    /// Parses and checks a presets file: every field known, names unique across
    /// names and aliases.
    pub fn parse(text: &str) -> Result<Presets, PresetError> {
        let file: File = toml::from_str(text).map_err(|e| PresetError::Parse(e.to_string()))?;
        let mut seen = std::collections::HashSet::new();
        for p in &file.provider {
            p.check()?;
            for n in p.names() {
                if !seen.insert(n.to_ascii_lowercase()) {
                    return Err(PresetError::Invalid {
                        name: p.name.clone(),
                        what: format!("the name {n:?} is used twice"),
                    });
                }
            }
        }
        Ok(Presets {
            providers: file.provider,
        })
    }

    /// The presets shipped with mailvault (parsed once).
    pub fn builtin() -> &'static Presets {
        static BUILT: std::sync::OnceLock<Presets> = std::sync::OnceLock::new();
        BUILT.get_or_init(|| Presets::parse(BUILTIN).expect("the shipped presets parse (tests/presets.rs)"))
    }

    /// The preset named `name` (or one of its aliases), case-insensitively.
    pub fn find(&self, name: &str) -> Result<&Preset, PresetError> {
        self.providers
            .iter()
            .find(|p| p.names().any(|n| n.eq_ignore_ascii_case(name)))
            .ok_or_else(|| PresetError::Unknown {
                name: name.to_string(),
                known: self
                    .providers
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

/// The preset named `name`: from the presets file `MAILVAULT_PRESETS` names (a
/// site's own providers, or corrections; read once) first, then the shipped ones.
pub fn lookup(name: &str) -> Result<&'static Preset, PresetError> {
    static SITE: std::sync::OnceLock<Result<Option<Presets>, PresetError>> = std::sync::OnceLock::new();
    let site = SITE.get_or_init(|| {
        let Some(path) = std::env::var_os("MAILVAULT_PRESETS") else {
            return Ok(None);
        };
        let shown = std::path::Path::new(&path).display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|e| PresetError::SiteFile {
            path: shown.clone(),
            what: e.to_string(),
        })?;
        Presets::parse(&text).map(Some).map_err(|e| PresetError::SiteFile {
            path: shown,
            what: e.to_string(),
        })
    });
    if let Some(p) = site
        .as_ref()
        .map_err(Clone::clone)?
        .as_ref()
        .and_then(|s| s.find(name).ok())
    {
        return Ok(p);
    }
    Presets::builtin().find(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str = r#"
[[provider]]
name = "x"
aliases = ["ex"]
title = "X"
imap = { host = "imap.x", port = 143, tls = "starttls" }
auth = ["password"]
connections = 2
"#;

    #[test]
    fn a_preset_gives_addresses_by_name_or_alias_and_refuses_what_it_lacks() {
        let p = Presets::parse(ONE).unwrap();
        let x = p.find("EX").unwrap();
        assert_eq!(
            x.endpoint(Protocol::Imap, "ann@x").unwrap().to_string(),
            "imap://ann@x@imap.x:143"
        );
        assert!(matches!(
            x.endpoint(Protocol::Pop3, "ann"),
            Err(PresetError::NoProtocol { .. })
        ));
        let at = |a: &str| x.endpoint_for(a).map(|e| e.to_string());
        assert_eq!(at("ann@x").unwrap(), "imap://ann@x@imap.x:143");
        assert_eq!(at("imap:ann@x").unwrap(), "imap://ann@x@imap.x:143");
        assert_eq!(
            at("imaps://ann@other.x:1993").unwrap(),
            "imaps://ann@other.x:1993",
            "a whole address: as given"
        );
        assert!(matches!(
            x.endpoint_for("pop3:ann"),
            Err(PresetError::NoProtocol { .. })
        ));
        for bad in ["ann:secret", "ftp://ann", "", "pop3:", "imap://"] {
            assert!(
                matches!(x.endpoint_for(bad), Err(PresetError::BadAddress { .. })),
                "{bad:?}"
            );
        }
        let e = p.find("y").unwrap_err().to_string();
        assert_eq!(e, "no provider preset \"y\"; known: x");
    }

    #[test]
    fn bad_presets_files_are_named() {
        let cases = [
            (ONE.replace("connections = 2", "connections = 0"), "connections must be"),
            (
                ONE.replace("auth = [\"password\"]", "auth = [\"oauth2\"]"),
                "exactly when an oauth2 table",
            ),
            (ONE.replace("title", "titel"), "unknown field `titel`"),
            (
                format!("{ONE}{}", ONE.replace("\"x\"", "\"z\"")),
                "the name \"ex\" is used twice",
            ),
            (ONE.replace("starttls", "ssl"), "unknown variant `ssl`"),
        ];
        for (text, want) in cases {
            let e = Presets::parse(&text).unwrap_err().to_string();
            assert!(e.contains(want), "{want}: {e}");
        }
    }

    #[test]
    fn tenants_fill_microsoft_endpoints() {
        let p = Presets::builtin();
        let m = p.find("microsoft").unwrap().oauth2.as_ref().unwrap();
        assert_eq!(
            m.with_tenant(&m.token, None),
            "https://login.microsoftonline.com/organizations/oauth2/v2.0/token"
        );
        assert_eq!(
            m.with_tenant(&m.token, Some("contoso.onmicrosoft.com")),
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
    }
}
