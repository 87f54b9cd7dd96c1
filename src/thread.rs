//! Conversation threads (pure): Jamie Zawinski's algorithm over Message-ID,
//! In-Reply-To and References, as mail clients thread. A message's parent is
//! the last id its References name (In-Reply-To when there are none); the ids
//! before it link their own chain where nothing else has; a link that would make
//! a loop is not made. Ids named but never seen are placeholders that still join
//! their children. Only roots with no reference headers at all are grouped by
//! subject (`Re: x` with the thread of `x`), and only when that subject started
//! a thread.
//!
//! A thread is named by its root: the Message-ID at the top of the tree (a
//! placeholder's too; `#` and the message's [`Headers::fallback`] for a message
//! without one), so the name does not change when messages of the thread arrive
//! in another order, nor when the root message itself arrives after its replies
//! (it was their placeholder) — only when two threads join (a message links
//! them, or a References chain reaches further back). [`key`] turns a name into
//! the short id users see (`thread:3f2a9c01d4e5b6a7`).
//!
//! Among messages with the same Message-ID the first in the input owns it, so
//! callers give messages in one fixed order (the index: by date, then id).

use std::collections::{BTreeMap, HashMap};

/// What threading needs of one message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers {
    /// Message-ID without angle brackets (`None`: the header is missing).
    pub message_id: Option<String>,
    /// In-Reply-To's ids, in order.
    pub in_reply_to: Vec<String>,
    /// References' ids, in order (oldest first).
    pub references: Vec<String>,
    pub subject: String,
    /// Seconds since the epoch (for the order within a thread).
    pub date: i64,
    /// What names the thread when this message is its root and has no
    /// Message-ID (the archive's id of the message): unique and stable.
    pub fallback: String,
}

impl Headers {
    /// The ids this message names as its ancestors, oldest first, its parent last.
    pub fn ancestry(&self) -> Vec<&str> {
        let mut chain: Vec<&str> = self.references.iter().map(String::as_str).collect();
        if let Some(parent) = self.in_reply_to.last() {
            if chain.last() != Some(&parent.as_str()) && !chain.contains(&parent.as_str()) {
                chain.push(parent);
            }
        }
        chain
    }
}

const REPLY_PREFIXES: &[&str] = &[
    "re:", "re :", "fwd:", "fw:", "aw:", "sv:", "vs:", "antw:", "wg:", "tr:", "rif:",
];

/// `s` without leading list tags (`[usrp-users] `).
fn strip_tags(mut s: &str) -> &str {
    while let Some(rest) = s.strip_prefix('[') {
        match rest.find(']') {
            Some(end) => s = rest[end + 1..].trim_start(),
            None => break,
        }
    }
    s
}

/// `s` without one leading reply or forward prefix, if it has one.
fn strip_prefix(s: &str) -> Option<&str> {
    REPLY_PREFIXES
        .iter()
        .find(|p| s.get(..p.len()).is_some_and(|head| head.eq_ignore_ascii_case(p)))
        .map(|p| s[p.len()..].trim_start())
}

/// The subject without reply and forward prefixes (`Re:`, `Fwd:`, `AW:`, …) and
/// list tags (`[list]`), lower-cased, white space collapsed.
pub fn base_subject(s: &str) -> String {
    let mut s = strip_tags(s.trim());
    while let Some(rest) = strip_prefix(s) {
        s = strip_tags(rest);
    }
    s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// Whether the subject, list tags aside, starts with a reply or forward prefix.
fn is_reply_subject(s: &str) -> bool {
    strip_prefix(strip_tags(s.trim())).is_some()
}

/// One node of the tree: a message (by its index in the input) or a placeholder
/// for an id only named.
#[derive(Clone, Debug, Default)]
struct Node {
    message: Option<usize>,
    parent: Option<usize>,
    children: Vec<usize>,
}

/// The threads of `messages`: for each message (by its index), its thread's root
/// id (see the module doc); and each thread's messages by date.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Threads {
    /// Each message's thread, by the message's index in the input.
    pub of: Vec<String>,
    /// Each thread's messages, oldest first (ties by input order).
    pub members: BTreeMap<String, Vec<usize>>,
}

/// Threads `messages`.
pub fn thread(messages: &[Headers]) -> Threads {
    let mut nodes: Vec<Node> = Vec::new();
    let mut by_id: HashMap<String, usize> = HashMap::new();
    let mut node_of = vec![0usize; messages.len()];
    // 1. A node per Message-ID (a repeated id: the later message gets its own).
    for (i, m) in messages.iter().enumerate() {
        let n = match m.message_id.as_deref().filter(|id| !id.is_empty()) {
            Some(id) => match by_id.get(id) {
                Some(&n) if nodes[n].message.is_none() => n,
                Some(_) => new_node(&mut nodes),
                None => {
                    let n = new_node(&mut nodes);
                    by_id.insert(id.to_string(), n);
                    n
                }
            },
            None => new_node(&mut nodes),
        };
        nodes[n].message = Some(i);
        node_of[i] = n;
    }
    // 2. Links: each ancestry chain, then the message's own parent (which wins).
    for (i, m) in messages.iter().enumerate() {
        let chain = m.ancestry();
        let mut prev: Option<usize> = None;
        for id in &chain {
            let n = *by_id.entry(id.to_string()).or_insert_with(|| new_node(&mut nodes));
            if let Some(p) = prev {
                if nodes[n].parent.is_none() && !reaches(&nodes, p, n) && p != n {
                    link(&mut nodes, p, n);
                }
            }
            prev = Some(n);
        }
        let me = node_of[i];
        if let Some(p) = prev {
            if p != me && !reaches(&nodes, p, me) {
                if let Some(old) = nodes[me].parent {
                    unlink(&mut nodes, old, me);
                }
                link(&mut nodes, p, me);
            }
        }
    }
    // 3. Roots, named by their id (a message without one: by its index).
    let root_of_node: Vec<usize> = (0..nodes.len()).map(|n| root(&nodes, n)).collect();
    let id_of_node: HashMap<usize, &str> = by_id.iter().map(|(k, &v)| (v, k.as_str())).collect();
    let name_of_root = |r: usize| -> String {
        match id_of_node.get(&r) {
            Some(id) => id.to_string(),
            None => match nodes[r].message {
                Some(i) if !messages[i].fallback.is_empty() => format!("#{}", messages[i].fallback),
                Some(i) => format!("#{i}"),
                None => format!("#{r}"),
            },
        }
    };
    let mut names: HashMap<usize, String> = HashMap::new();
    let mut of: Vec<String> = Vec::with_capacity(messages.len());
    for i in 0..messages.len() {
        let r = root_of_node[node_of[i]];
        of.push(names.entry(r).or_insert_with(|| name_of_root(r)).clone());
    }
    // 4. Subject fallback: a root message without any reference header whose
    // subject is a reply joins the thread whose root message has that base subject.
    let mut started: HashMap<String, String> = HashMap::new();
    let mut order: Vec<usize> = (0..messages.len()).collect();
    order.sort_by_key(|&i| (messages[i].date, i));
    for &i in &order {
        let m = &messages[i];
        let is_root = nodes[node_of[i]].parent.is_none();
        if is_root && !is_reply_subject(&m.subject) {
            started.entry(base_subject(&m.subject)).or_insert_with(|| of[i].clone());
        }
    }
    let mut renamed: HashMap<String, String> = HashMap::new();
    for &i in &order {
        let m = &messages[i];
        let bare = m.references.is_empty() && m.in_reply_to.is_empty();
        if bare && nodes[node_of[i]].parent.is_none() && is_reply_subject(&m.subject) {
            if let Some(t) = started.get(&base_subject(&m.subject)) {
                if *t != of[i] {
                    renamed.insert(of[i].clone(), t.clone());
                }
            }
        }
    }
    for t in of.iter_mut() {
        if let Some(to) = renamed.get(t.as_str()) {
            *t = to.clone();
        }
    }
    let mut members: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for &i in &order {
        members.entry(of[i].clone()).or_default().push(i);
    }
    Threads { of, members }
}

/// Hex digits in a thread's [`key`].
pub const KEY_LEN: usize = 16;

/// The short id of the thread named `name` (see the module doc): the first
/// [`KEY_LEN`] hex digits of its BLAKE3 hash.
pub fn key(name: &str) -> String {
    let mut k = blake3::hash(name.as_bytes()).to_hex().to_string();
    k.truncate(KEY_LEN);
    k
}

/// Whether `s` has the shape of a thread [`key`].
pub fn is_key(s: &str) -> bool {
    s.len() == KEY_LEN && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn new_node(nodes: &mut Vec<Node>) -> usize {
    nodes.push(Node::default());
    nodes.len() - 1
}

fn link(nodes: &mut [Node], parent: usize, child: usize) {
    nodes[child].parent = Some(parent);
    nodes[parent].children.push(child);
}

fn unlink(nodes: &mut [Node], parent: usize, child: usize) {
    nodes[parent].children.retain(|&c| c != child);
    nodes[child].parent = None;
}

/// Whether `to` is `from` or one of its ancestors (linking `to` under `from`
/// would then make a loop). Bounded by the node count.
fn reaches(nodes: &[Node], from: usize, to: usize) -> bool {
    let mut at = Some(from);
    for _ in 0..=nodes.len() {
        match at {
            Some(n) if n == to => return true,
            Some(n) => at = nodes[n].parent,
            None => return false,
        }
    }
    true
}

fn root(nodes: &[Node], mut n: usize) -> usize {
    for _ in 0..=nodes.len() {
        match nodes[n].parent {
            Some(p) => n = p,
            None => break,
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(id: &str, refs: &[&str], reply_to: &[&str], subject: &str, date: i64) -> Headers {
        Headers {
            message_id: (!id.is_empty()).then(|| id.to_string()),
            in_reply_to: reply_to.iter().map(|s| s.to_string()).collect(),
            references: refs.iter().map(|s| s.to_string()).collect(),
            subject: subject.into(),
            date,
            fallback: format!("m{date}"),
        }
    }

    #[test]
    fn base_subjects_drop_reply_prefixes_and_list_tags() {
        for (s, want) in [
            ("Re: Hello", "hello"),
            ("RE: Fwd: re:  Hello   world", "hello world"),
            ("[usrp-users] Re: [usrp-users] B210 help", "b210 help"),
            ("AW: Angebot", "angebot"),
            ("Hello", "hello"),
            ("Ré: été", "ré: été"),
            ("Re: 日本語", "日本語"),
            ("[tag]", ""),
        ] {
            assert_eq!(base_subject(s), want, "{s}");
        }
        for (s, reply) in [
            ("[usrp-users] E312 wrong sample rate", false),
            ("[usrp-users] Re: E312", true),
            ("Fwd: x", true),
            ("Report", false),
        ] {
            assert_eq!(is_reply_subject(s), reply, "{s}");
        }
    }

    #[test]
    fn replies_join_their_thread_in_any_arrival_order() {
        let a = m("a", &[], &[], "Plan", 1);
        let b = m("b", &["a"], &["a"], "Re: Plan", 2);
        let c = m("c", &["a", "b"], &["b"], "Re: Plan", 3);
        let other = m("x", &[], &[], "Other", 4);
        for order in [[0, 1, 2, 3], [2, 1, 0, 3], [3, 2, 0, 1]] {
            let msgs: Vec<Headers> = order.iter().map(|&i| [&a, &b, &c, &other][i].clone()).collect();
            let t = thread(&msgs);
            let of = |id: &str| t.of[msgs.iter().position(|h| h.message_id.as_deref() == Some(id)).unwrap()].clone();
            assert_eq!(of("a"), "a");
            assert_eq!(of("b"), "a");
            assert_eq!(of("c"), "a");
            assert_eq!(of("x"), "x");
            assert_eq!(t.members.len(), 2);
        }
    }

    #[test]
    fn a_missing_ancestor_still_joins_its_descendants() {
        // `root` was never archived; both replies name it.
        let t = thread(&[
            m("b", &["root"], &["root"], "Re: q", 2),
            m("c", &["root", "b"], &[], "Re: q", 3),
            m("d", &["root"], &[], "Re: q", 4),
        ]);
        assert_eq!(t.of, ["root", "root", "root"]);
        assert_eq!(t.members["root"], [0, 1, 2]);
    }

    #[test]
    fn loops_in_references_do_not_hang_or_merge_wrongly() {
        let t = thread(&[
            m("a", &["b"], &[], "x", 1),
            m("b", &["a"], &[], "x", 2),
            m("c", &["c"], &["c"], "y", 3),
        ]);
        assert_eq!(t.of[0], t.of[1]);
        assert_eq!(t.of[2], "c");
    }

    #[test]
    fn subject_fallback_only_for_messages_without_reference_headers() {
        let t = thread(&[
            m("a", &[], &[], "Budget", 1),
            // No headers, a reply subject: joins by subject.
            m("b", &[], &[], "Re: Budget", 2),
            // Has a header naming something else: stays where its header puts it.
            m("c", &["z"], &[], "Re: Budget", 3),
            // Same subject, not a reply: its own thread.
            m("d", &[], &[], "Budget", 4),
        ]);
        assert_eq!(t.of[1], "a");
        assert_eq!(t.of[2], "z");
        assert_eq!(t.of[3], "d");
    }

    #[test]
    fn messages_without_ids_and_duplicate_ids_are_threaded_apart() {
        let t = thread(&[
            m("", &[], &[], "one", 1),
            m("", &[], &[], "two", 2),
            m("a", &[], &[], "x", 3),
            m("a", &[], &[], "x again", 4),
        ]);
        assert_eq!(t.of[0], "#m1");
        assert_eq!(t.of[1], "#m2");
        assert_eq!(t.of[2], "a");
        assert_ne!(t.of[3], "a");
    }

    #[test]
    fn keys_are_short_hex_and_differ_by_name() {
        let a = key("root@example.org");
        assert_eq!(a.len(), KEY_LEN);
        assert!(is_key(&a));
        assert_eq!(a, key("root@example.org"));
        assert_ne!(a, key("root@example.com"));
        assert!(!is_key("root@example.org"));
        assert!(!is_key(&format!("{a}0")));
    }
}
