//! The test documents of `tests/data/documents/` (made by `make.sh` there with
//! LibreOffice, pandoc, Ghostscript and zip): shared by `tests/attachment_text.rs`
//! and `benches/attachment_text.rs`.

/// Each test document, its declared type, and the word its body text carries.
pub const DOCUMENTS: &[(&str, &str, &str)] = &[
    ("contract.pdf", "application/pdf", "quillorbit"),
    ("invoice.pdf", "application/pdf", "emberlattice"),
    (
        "report.docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "marbletusk",
    ),
    (
        "budget.xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "fennelgrid",
    ),
    (
        "roadmap.pptx",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "copperlynx",
    ),
    ("minutes.odt", "application/vnd.oasis.opendocument.text", "saffronkite"),
    (
        "stock.ods",
        "application/vnd.oasis.opendocument.spreadsheet",
        "tundrabell",
    ),
    (
        "review.odp",
        "application/vnd.oasis.opendocument.presentation",
        "velvetcomet",
    ),
    ("letter.rtf", "application/rtf", "amberquokka"),
    ("page.html", "text/html", "cobaltheron"),
    ("notes.txt", "text/plain", "juniperwick"),
    ("contacts.csv", "text/csv", "lanternmoss"),
    ("bundle.zip", "application/zip", "harborvinyl"),
];

/// The directory holding them.
pub fn dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/documents")
}
