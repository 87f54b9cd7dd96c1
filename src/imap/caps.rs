//! What an IMAP server offers, read from its CAPABILITY atoms, for the parts of
//! mailvault that depend on it (appending, for now). Pure: no I/O.

/// What the target offers for appending.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AppendCaps {
    /// RFC 7888 LITERAL+: non-synchronizing literals of any size.
    pub literal_plus: bool,
    /// RFC 7888 LITERAL-: non-synchronizing literals up to 4,096 bytes.
    pub literal_minus: bool,
    /// RFC 3502: several messages in one APPEND (atomic).
    pub multiappend: bool,
    /// RFC 4315: APPENDUID in the tagged OK.
    pub uidplus: bool,
    /// RFC 7889 APPENDLIMIT=n: the largest message the server takes.
    pub append_limit: Option<u64>,
}

impl AppendCaps {
    /// From the CAPABILITY atoms.
    pub fn from_atoms<'a>(atoms: impl IntoIterator<Item = &'a str>) -> AppendCaps {
        let mut c = AppendCaps::default();
        for a in atoms {
            let upper = a.to_ascii_uppercase();
            match upper.as_str() {
                "LITERAL+" => c.literal_plus = true,
                "LITERAL-" => c.literal_minus = true,
                "MULTIAPPEND" => c.multiappend = true,
                "UIDPLUS" => c.uidplus = true,
                _ => {
                    if let Some(n) = upper.strip_prefix("APPENDLIMIT=") {
                        c.append_limit = n.parse().ok();
                    }
                }
            }
        }
        c
    }

    /// Whether a literal of `len` bytes may be sent without waiting for `+`.
    pub fn non_sync(&self, len: usize) -> bool {
        self.literal_plus || (self.literal_minus && len <= 4096)
    }
}
