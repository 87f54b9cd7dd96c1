//! The POP3 source (issue 5). So far the pure protocol layer: status lines, CAPA,
//! UIDL/LIST answers with RFC 1939 validation, and streaming dot-unstuffing.

pub mod proto;
