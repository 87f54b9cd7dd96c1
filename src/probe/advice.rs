//! From what a probe found to what to use: IMAP when it is offered securely (it
//! keeps folders and flags, and leaves the mailbox as other devices see it); POP3
//! only when it is all there is; never POP3 with deletion where IMAP clients read
//! the same mailbox; warnings for untrusted, expiring or missing TLS; the
//! connections and options for a pull or a migration, and the time a full pull
//! takes at the measured rate. Pure.

use chrono::{DateTime, Utc};

use super::report::{Advice, LoginReport, PortState, Protocol, Service, TlsMode};

/// A certificate this close to its end is worth a warning.
const EXPIRY_WARNING_DAYS: i64 = 14;
/// Connections when nothing says otherwise (mailvault's default).
const DEFAULT_CONNECTIONS: u32 = 4;

/// What the advice is made from.
pub struct Facts<'a> {
    pub host: &'a str,
    pub services: &'a [Service],
    pub login: Option<&'a LoginReport>,
    /// The user name asked about (`--login`).
    pub user: Option<&'a str>,
    /// A provider preset's connection count for this host, when one matches.
    pub preset_connections: Option<u32>,
    pub now: DateTime<Utc>,
}

/// The service to pull from: secure implicit TLS first, then STARTTLS, then (with
/// a warning) one whose certificate is not trusted.
fn best(services: &[Service], protocol: Protocol) -> Option<&Service> {
    let of = |s: &&Service| s.protocol == protocol && s.open();
    let rank = |s: &Service| match (s.secure(), s.tls_mode, s.tls.is_some()) {
        (true, TlsMode::Implicit, _) => 0,
        (true, TlsMode::Starttls, _) => 1,
        (false, _, true) => 2,
        (false, _, false) => 3,
    };
    services.iter().filter(of).min_by_key(|s| rank(s))
}

/// Advice for `f`.
pub fn advise(f: &Facts<'_>) -> Advice {
    let mut a = Advice::default();
    let imap = best(f.services, Protocol::Imap);
    let pop3 = best(f.services, Protocol::Pop3);
    let chosen = match (imap, pop3) {
        (Some(i), _) => {
            a.notes.push(
                "IMAP keeps folders and flags, reads without changing the mailbox, and every device that \
                 reads this mailbox goes on seeing it as before."
                    .into(),
            );
            Some(i)
        }
        (None, Some(p)) => {
            a.notes.push(
                "POP3, because it is all this server offers: it has one folder (the inbox) and no flags; \
                 mailvault keeps every message byte-exact all the same."
                    .into(),
            );
            Some(p)
        }
        (None, None) => {
            a.warnings.push(format!(
                "Neither IMAP nor POP3 answered on {}: check the host name and ports (--imaps-port, …) and \
                 whether a firewall is in the way.",
                f.host
            ));
            None
        }
    };
    if pop3.is_some() {
        a.warnings.push(
            "Never use POP3 with deletion (--delete-after-archive) on a mailbox that IMAP clients (phones, \
             webmail, Outlook) also read: the mail vanishes from those devices."
                .into(),
        );
    }
    if let Some(s) = chosen {
        a.protocol = Some(s.protocol);
        tls_advice(s, f, &mut a);
        address_and_options(s, f, &mut a);
    }
    if let Some(l) = f.login.filter(|l| l.ok) {
        login_advice(l, &mut a);
    }
    a
}

fn tls_advice(s: &Service, f: &Facts<'_>, a: &mut Advice) {
    let what = format!("{} on port {}", protocol_name(s.protocol), s.port);
    match &s.tls {
        None => a.warnings.push(format!(
            "{what} offers no TLS: the password and the mail would cross the network in clear. Use it only on a \
             network you trust (--insecure-plaintext)."
        )),
        Some(t) if !t.verified => a.warnings.push(format!(
            "{what}: the certificate is not trusted ({}). Fix the server, or check the certificate's fingerprint \
             with its administrator and pin it: --tls-pin {}.",
            t.problem.as_deref().unwrap_or("unknown reason"),
            t.certificate.as_ref().map_or("sha256:…", |c| c.fingerprint.as_str())
        )),
        Some(t) => {
            if let Some(c) = &t.certificate {
                let days = c.days_left(f.now);
                if days < EXPIRY_WARNING_DAYS {
                    a.warnings
                        .push(format!("{what}: the certificate expires in {days} day(s)."));
                }
            }
        }
    }
}

fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Imap => "IMAP",
        Protocol::Pop3 => "POP3",
    }
}

fn address_and_options(s: &Service, f: &Facts<'_>, a: &mut Advice) {
    let user = f.user.unwrap_or("USER");
    let scheme = s.scheme();
    let port = if s.port == scheme.default_port() {
        String::new()
    } else {
        format!(":{}", s.port)
    };
    a.address = Some(format!("{}://{user}@{}{port}", scheme.as_str(), f.host));
    if s.protocol == Protocol::Imap {
        let n = f.preset_connections.unwrap_or(DEFAULT_CONNECTIONS);
        a.connections = Some(n);
        a.options.push(format!("--connections {n}"));
    }
    if s.tls_mode == TlsMode::Starttls && s.tls.is_some() {
        a.notes.push(format!(
            "{} port {} reaches TLS by STARTTLS; mailvault requires it and aborts before any password if it \
             is ever missing.",
            protocol_name(s.protocol),
            s.port
        ));
    }
    if s.tls.as_ref().is_some_and(|t| !t.verified) {
        let fp = s
            .tls
            .as_ref()
            .and_then(|t| t.certificate.as_ref())
            .map(|c| c.fingerprint.clone());
        a.options
            .push(format!("--tls-pin {}", fp.unwrap_or_else(|| "sha256:…".into())));
    }
    if s.protocol == Protocol::Pop3 && !s.has("UIDL") {
        a.warnings.push(
            "The POP3 server offers no UIDL: messages are recognised by their content, and a message changed \
             on the server is archived again."
                .into(),
        );
    }
}

fn login_advice(l: &LoginReport, a: &mut Advice) {
    if l.protocol == Protocol::Imap {
        if !(l.has("CONDSTORE") || l.has("QRESYNC")) {
            a.notes.push(
                "The server has no CONDSTORE/QRESYNC: each run reads every folder's flags again, so incremental \
                 runs of large mailboxes are slower."
                    .into(),
            );
        }
        if l.has("COMPRESS=DEFLATE") {
            a.notes
                .push("The server offers COMPRESS=DEFLATE (less to send over a slow link).".into());
        }
        if l.has("X-GM-EXT-1") {
            a.notes
                .push("Gmail: labels are folders; each message is stored once however many labels it has.".into());
        }
    }
    if let Some(r) = l.rate.as_ref().filter(|r| r.bytes_per_second > 0.0) {
        let secs = l.bytes as f64 / r.bytes_per_second;
        a.full_pull_seconds = Some(secs);
        a.notes.push(format!(
            "A full pull of {} message(s) ({} bytes) takes about {} at the measured {:.1} MB/s on one connection; \
             more connections pull several folders at once.",
            l.messages,
            l.bytes,
            humantime::format_duration(std::time::Duration::from_secs(secs.ceil() as u64)),
            r.bytes_per_second / 1e6
        ));
    }
    if let Some(q) = &l.quota {
        if q.limit_bytes > 0 && q.used_bytes * 10 >= q.limit_bytes * 9 {
            a.warnings.push(format!(
                "The mailbox uses {} of its {} bytes of quota: a migration target this full refuses mail.",
                q.used_bytes, q.limit_bytes
            ));
        }
    }
}

/// The port state of a connection error's kind.
pub fn state_of(e: &std::io::Error) -> PortState {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => PortState::Closed,
        std::io::ErrorKind::TimedOut => PortState::Timeout,
        _ => PortState::Error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::report::{Rate, TlsReport};

    fn service(protocol: Protocol, port: u16, mode: TlsMode, tls: Option<bool>, caps: &[&str]) -> Service {
        Service {
            protocol,
            port,
            tls_mode: mode,
            state: PortState::Open,
            error: None,
            greeting: None,
            starttls_offered: (mode == TlsMode::Starttls).then_some(tls.is_some()),
            tls: tls.map(|verified| TlsReport {
                version: "TLSv1.3".into(),
                cipher: "x".into(),
                verified,
                problem: (!verified).then(|| "it has expired".into()),
                certificate: None,
                days_left: None,
            }),
            capabilities: caps.iter().map(|c| c.to_string()).collect(),
            auth_mechanisms: Vec::new(),
        }
    }

    fn closed(protocol: Protocol, port: u16, mode: TlsMode) -> Service {
        Service {
            state: PortState::Closed,
            tls: None,
            starttls_offered: None,
            ..service(protocol, port, mode, None, &[])
        }
    }

    fn facts(services: &[Service]) -> Advice {
        advise(&Facts {
            host: "mail.example.org",
            services,
            login: None,
            user: Some("ann"),
            preset_connections: None,
            now: Utc::now(),
        })
    }

    use Protocol::{Imap, Pop3};
    use TlsMode::{Implicit, Starttls};

    #[test]
    fn the_protocol_and_address_follow_what_is_offered() {
        // (services, protocol, address, a warning containing)
        type Case = (
            Vec<Service>,
            Option<Protocol>,
            Option<&'static str>,
            Option<&'static str>,
        );
        let cases: Vec<Case> = vec![
            (
                vec![
                    service(Imap, 993, Implicit, Some(true), &[]),
                    service(Imap, 143, Starttls, Some(true), &[]),
                    service(Pop3, 995, Implicit, Some(true), &["UIDL"]),
                ],
                Some(Imap),
                Some("imaps://ann@mail.example.org"),
                Some("Never use POP3 with deletion"),
            ),
            (
                vec![
                    closed(Imap, 993, Implicit),
                    service(Imap, 143, Starttls, Some(true), &[]),
                ],
                Some(Imap),
                Some("imap://ann@mail.example.org"),
                None,
            ),
            (
                vec![
                    closed(Imap, 993, Implicit),
                    service(Pop3, 995, Implicit, Some(true), &["UIDL"]),
                ],
                Some(Pop3),
                Some("pop3s://ann@mail.example.org"),
                Some("Never use POP3 with deletion"),
            ),
            (
                vec![service(Imap, 10993, Implicit, Some(false), &[])],
                Some(Imap),
                Some("imaps://ann@mail.example.org:10993"),
                Some("not trusted (it has expired)"),
            ),
            (
                vec![service(Imap, 143, Starttls, None, &[])],
                Some(Imap),
                Some("imap://ann@mail.example.org"),
                Some("no TLS"),
            ),
            (
                vec![service(Pop3, 110, Starttls, Some(true), &[])],
                Some(Pop3),
                Some("pop3://ann@mail.example.org"),
                Some("no UIDL"),
            ),
            (
                vec![closed(Imap, 993, Implicit), closed(Pop3, 995, Implicit)],
                None,
                None,
                Some("Neither"),
            ),
        ];
        for (i, (services, protocol, address, warning)) in cases.into_iter().enumerate() {
            let a = facts(&services);
            assert_eq!(a.protocol, protocol, "case {i}");
            assert_eq!(a.address.as_deref(), address, "case {i}");
            match warning {
                Some(w) => assert!(a.warnings.iter().any(|x| x.contains(w)), "case {i}: {:?}", a.warnings),
                None => assert!(a.warnings.is_empty(), "case {i}: {:?}", a.warnings),
            }
        }
    }

    #[test]
    fn a_secure_imap_beats_an_untrusted_one_and_pins_are_suggested_only_for_the_untrusted() {
        let a = facts(&[
            service(Imap, 993, Implicit, Some(false), &[]),
            service(Imap, 143, Starttls, Some(true), &[]),
        ]);
        assert_eq!(a.address.as_deref(), Some("imap://ann@mail.example.org"));
        assert!(!a.options.iter().any(|o| o.starts_with("--tls-pin")));
        let a = facts(&[service(Imap, 993, Implicit, Some(false), &[])]);
        assert!(a.options.iter().any(|o| o.starts_with("--tls-pin")), "{:?}", a.options);
    }

    #[test]
    fn a_login_adds_the_time_of_a_full_pull_and_what_the_server_lacks() {
        let services = [service(Imap, 993, Implicit, Some(true), &[])];
        let login = LoginReport {
            protocol: Imap,
            address: "imaps://ann@mail.example.org:993".into(),
            ok: true,
            error: None,
            capabilities: vec!["IMAP4rev1".into(), "COMPRESS=DEFLATE".into()],
            folders: Vec::new(),
            messages: 1000,
            bytes: 100_000_000,
            quota: Some(crate::probe::report::Quota {
                used_bytes: 95,
                limit_bytes: 100,
            }),
            rate: Some(Rate {
                messages: 10,
                bytes: 10_000_000,
                seconds: 1.0,
                bytes_per_second: 10_000_000.0,
            }),
        };
        let a = advise(&Facts {
            host: "mail.example.org",
            services: &services,
            login: Some(&login),
            user: Some("ann"),
            preset_connections: Some(15),
            now: Utc::now(),
        });
        assert_eq!(a.full_pull_seconds, Some(10.0));
        assert_eq!(a.connections, Some(15));
        assert!(a.notes.iter().any(|n| n.contains("CONDSTORE")), "{:?}", a.notes);
        assert!(a.notes.iter().any(|n| n.contains("COMPRESS=DEFLATE")), "{:?}", a.notes);
        assert!(a.warnings.iter().any(|w| w.contains("quota")), "{:?}", a.warnings);
    }
}
