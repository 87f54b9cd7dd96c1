//! The index schema (declared in `schemas/index-v6.json`, checked by
//! `tests/schema_index.rs`) and the analyzers its fields use.

use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions, FAST, INDEXED, STORED,
};
use tantivy::tokenizer::{AsciiFoldingFilter, LowerCaser, RawTokenizer, RemoveLongFilter, TextAnalyzer};

use super::tokenizer::WordTokenizer;

/// Analyzer of the full-text fields: words (CJK as character pairs), lower-cased,
/// accents folded (so `café` finds `cafe` and `Café`).
pub const WORDS: &str = "mv_words";
/// Analyzer of whole-value fields: the value lower-cased.
pub const EXACT: &str = "mv_exact";

/// Every field, by role.
#[derive(Clone, Copy, Debug)]
pub struct Fields {
    pub id: Field,
    pub from: Field,
    pub to: Field,
    pub cc: Field,
    pub bcc: Field,
    pub subject: Field,
    pub body: Field,
    pub filename: Field,
    /// Text inside attachments (module `crate::extract`): searched by free
    /// words and by `att:`.
    pub attachment: Field,
    pub mime: Field,
    pub date: Field,
    pub size: Field,
    /// The Message-ID (stored: threading reads it back).
    pub msgid: Field,
    /// In-Reply-To's and References' ids.
    pub refs: Field,
    /// The thread's key ([`crate::thread::key`]): `thread:KEY`.
    pub thread: Field,
    /// Stored only: the ids the message names as its ancestors, oldest first
    /// (what threading needs of it, read back when its thread changes).
    pub ancestry: Field,
    /// Indexed only, and only for a message without reference headers: its
    /// subject as threading compares it ([`crate::thread::base_subject`]).
    pub base_subject: Field,
    pub list: Field,
    pub folder: Field,
    pub account: Field,
    pub flag: Field,
    pub has: Field,
    /// Stored only: each placement's account and folder, joined by
    /// [`PLACEMENT_SEPARATOR`], so results tie folders to their accounts.
    pub placement: Field,
    /// Facets counted for a result set (module `facets`): `/place/ACCOUNT/FOLDER`,
    /// `/year/YYYY`, `/domain/SENDER-DOMAIN`, `/has/attachment`; and what text
    /// extraction made of the attachments, `/extraction/OUTCOME/KIND-OR-REASON`.
    pub facet: Field,
    /// Fast only: the first 8 bytes of the id, big-endian — the tie-break of
    /// every sort ([`order_key`]), so that results have one order wherever the
    /// message is indexed (one index or any shard of several).
    pub order: Field,
}

/// The [`Fields::order`] value of a message.
pub fn order_key(id: &crate::model::MessageId) -> u64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&id.0[..8]);
    u64::from_be_bytes(first)
}

/// Between account and folder in the stored `placement` field (a control
/// character no account or folder name holds).
pub const PLACEMENT_SEPARATOR: char = '\u{1f}';

fn text(tokenizer: &str, record: IndexRecordOption, stored: bool) -> TextOptions {
    let o = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(tokenizer)
            .set_index_option(record),
    );
    if stored {
        o.set_stored()
    } else {
        o
    }
}

/// A full-text field (positions kept, for phrases).
fn words(stored: bool) -> TextOptions {
    text(WORDS, IndexRecordOption::WithFreqsAndPositions, stored)
}

/// A whole-value field.
fn exact(stored: bool) -> TextOptions {
    text(EXACT, IndexRecordOption::Basic, stored)
}

/// Builds the v6 schema (v5 plus the fast `order` field; v5 was v4 plus
/// `thread`, `ancestry` and `base_subject`, and `msgid` stored; v4 was v3 plus
/// the `attachment` text field; v3 was v2 plus the `facet` field; v2 was v1 plus
/// the stored `placement` field).
pub fn build() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let num: NumericOptions = NumericOptions::from(INDEXED | FAST | STORED);
    let fields = Fields {
        id: b.add_text_field("id", exact(true)),
        from: b.add_text_field("from", words(true)),
        to: b.add_text_field("to", words(true)),
        cc: b.add_text_field("cc", words(false)),
        bcc: b.add_text_field("bcc", words(false)),
        subject: b.add_text_field("subject", words(true)),
        body: b.add_text_field("body", words(false)),
        filename: b.add_text_field("filename", words(true)),
        attachment: b.add_text_field("attachment", words(false)),
        mime: b.add_text_field("mime", exact(false)),
        date: b.add_i64_field("date", num.clone()),
        size: b.add_u64_field("size", num),
        msgid: b.add_text_field("msgid", exact(true)),
        refs: b.add_text_field("refs", exact(false)),
        // Fast too: `search --threads` groups every match by it.
        thread: b.add_text_field("thread", exact(true).set_fast(None)),
        ancestry: b.add_text_field("ancestry", tantivy::schema::STORED),
        base_subject: b.add_text_field("base_subject", exact(false)),
        list: b.add_text_field("list", words(false)),
        folder: b.add_text_field("folder", exact(true)),
        account: b.add_text_field("account", exact(true)),
        flag: b.add_text_field("flag", exact(true)),
        has: b.add_text_field("has", exact(false)),
        placement: b.add_text_field("placement", tantivy::schema::STORED),
        facet: b.add_facet_field("facet", tantivy::schema::FacetOptions::default()),
        order: b.add_u64_field("order", NumericOptions::default().set_fast()),
    };
    (b.build(), fields)
}

/// Registers our analyzers on an index.
pub fn register_tokenizers(index: &tantivy::Index) {
    let words = words_analyzer();
    let exact = TextAnalyzer::builder(RawTokenizer::default())
        .filter(LowerCaser)
        .build();
    index.tokenizers().register(WORDS, words);
    index.tokenizers().register(EXACT, exact);
}

/// The words analyzer on its own (query side).
pub fn words_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(WordTokenizer::default())
        .filter(RemoveLongFilter::limit(64))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}
