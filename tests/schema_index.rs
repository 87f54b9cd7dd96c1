//! The index schema is exactly `schemas/index-v3.json` (tantivy's own serialised
//! form; `index-v2.json` is the one before, without `facet`, and `index-v1.json`
//! the one before that, without `placement`). `MAILVAULT_BLESS=1` prints the
//! current one. An index of an older version is rebuilt when opened for writing.

use mailvault::index::MessageIndex;

#[test]
fn index_schema_matches_declaration() {
    let built = MessageIndex::schema_json();
    if std::env::var("MAILVAULT_BLESS").is_ok() {
        println!("{}", serde_json::to_string_pretty(&built).unwrap());
    }
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/index-v3.json")).unwrap();
    let declared: serde_json::Value = serde_json::from_str(&text).expect("index-v3.json parses");
    assert_eq!(
        built, declared,
        "schema changed: that is index format v4 (MAILVAULT_BLESS=1 prints it)"
    );
}
