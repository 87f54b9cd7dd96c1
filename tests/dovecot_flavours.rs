//! The test harness itself, ahead of replay (issue 6): a Dovecot that stores mdbox
//! with `.` as hierarchy separator (a migration target unlike the maildir source)
//! starts and takes mail, and the comparison oracle finds each kind of difference
//! between two accounts — and none between an account and itself.

mod common;

use std::time::{Duration, SystemTime};

use common::dovecot::{compare_views, Dovecot, Storage, TEST_PASSWORD as PW};

#[test]
fn mdbox_target_and_the_comparison_oracle() {
    let msgs = common::dovecot::sample_messages(3);
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_100_000_000);
    let src = Dovecot::start();
    src.add_user("ann", PW);
    src.load(
        "ann",
        "Work/2001",
        &[(msgs[0].clone(), "S", at), (msgs[1].clone(), "", at)],
    );
    src.load("ann", "INBOX", &[(msgs[2].clone(), "", at)]);

    let dst = Dovecot::start_flavour(Storage::MdboxDot, "");
    dst.add_user("ann", PW);
    dst.save("ann", "Work.2001", &msgs[0]);
    dst.save("ann", "Work.2001", &msgs[0]);
    dst.save("ann", "INBOX", &msgs[2]);
    let list = dst.doveadm(&["mailbox", "list", "-u", "ann"]);
    assert!(list.lines().any(|l| l.trim() == "Work.2001"), "{list}");
    let mdbox_files = walkdir::WalkDir::new(dst.dir.join("mail/ann"))
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("m."))
        .count();
    assert!(mdbox_files >= 1, "no mdbox storage files under {}", dst.dir.display());

    let a = src.server_view("ann", PW);
    let b = dst.server_view("ann", PW);
    assert!(compare_views(&a, &a, |f| f.to_string()).is_empty());
    let diffs = compare_views(&a, &b, |f| f.replace('/', "."));
    // The ids as IMAP serves them (line ends normalised to CRLF), in UID order.
    let ids = |folder: &str| -> Vec<String> {
        a.iter()
            .filter(|((f, _, _), _)| f == folder)
            .map(|(_, m)| m.hash.to_hex())
            .collect()
    };
    let (work, inbox) = (ids("Work/2001"), ids("INBOX"));
    let expect = [
        format!("Work.2001: {} extra 1 time(s)", work[0]),
        format!("Work.2001: {} missing 1 time(s)", work[1]),
        format!("Work.2001: {} flags [\"\\\\Seen\"] / date 1100000000 differ", work[0]),
        format!("INBOX: {} flags [] / date 1100000000 differ", inbox[0]),
    ];
    assert_eq!(diffs.len(), expect.len(), "{diffs:#?}");
    for e in &expect {
        assert!(diffs.iter().any(|d| d.starts_with(e.as_str())), "{e} not in {diffs:#?}");
    }
}

/// The replay target's side of folder mapping against the mdbox/`.` Dovecot: LIST
/// gives the separator and the SPECIAL-USE holders, a mapped folder that is missing
/// (non-ASCII, nested) is created and subscribed, and the next LIST has it.
#[test]
fn replay_target_folders_are_listed_mapped_and_created() {
    use mailvault::plan::folder_map::{map_folder, Mapping};
    use mailvault::remote::{Auth, ConnectOptions};
    use mailvault::replay::target;
    use std::time::Duration;
    let dst = Dovecot::start_flavour(Storage::MdboxDot, "");
    dst.add_user("ann", PW);
    let o = ConnectOptions {
        endpoint: mailvault::net::Endpoint::parse(&format!("imaps://ann@127.0.0.1:{}", dst.imaps)).unwrap(),
        tls: mailvault::net::tls::client_config(&mailvault::net::TlsOptions {
            ca_file: Some(dst.ca_pem()),
            ..Default::default()
        })
        .unwrap(),
        insecure_plaintext: false,
        auth: Auth::Password(mailvault::net::Secret::new(PW)),
        oauth2_mechanism: Default::default(),
        compress: true,
        io_timeout: Duration::from_secs(20),
        slots: None,
        max_message_size: mailvault::remote::DEFAULT_MAX_MESSAGE_SIZE,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let server = o.endpoint.to_string();
        let mut c = mailvault::imap::connect::connect(&o).await.unwrap();
        let t = target::list(&mut c, &server, o.io_timeout).await.unwrap();
        assert_eq!(t.separator(), '.');
        assert_eq!(t.namespace.prefix, "");
        let sent = t.folders.iter().find(|f| f.special_use == "\\Sent").unwrap();
        assert_eq!(sent.name, "Sent");
        // A source "Sent Items" (no role from its server) goes to the target's \Sent.
        let m = map_folder("Sent Items", "", &Mapping::default(), &t);
        assert_eq!((m.name.as_str(), m.create), ("Sent", false));
        let m = map_folder("Réunions/Été 2001", "", &Mapping::default(), &t);
        assert_eq!((m.name.as_str(), m.create), ("Réunions.Été 2001", true));
        target::create(&mut c, &server, o.io_timeout, &m.name).await.unwrap();
        // Creating it again is not an error.
        target::create(&mut c, &server, o.io_timeout, &m.name).await.unwrap();
        let t = target::list(&mut c, &server, o.io_timeout).await.unwrap();
        assert!(t.folders.iter().any(|f| f.name == "Réunions.Été 2001"), "{t:?}");
        assert!(!map_folder("Réunions/Été 2001", "", &Mapping::default(), &t).create);
    });
    let subscribed = dst.doveadm(&["mailbox", "list", "-u", "ann", "-s"]);
    assert!(
        subscribed.lines().any(|l| l.trim() == "Réunions.Été 2001"),
        "{subscribed}"
    );
}
