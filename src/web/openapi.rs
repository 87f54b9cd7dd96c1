//! The OpenAPI 3.1 document of `/api/v1`, served at `/api/v1/openapi.json`. Written
//! out here rather than derived: it is the API's contract, reviewed as such; the
//! test suite asks the running server every path it lists.

use serde_json::{json, Value};

use super::error::Code;

/// The paths the document describes (and the router serves), with `{id}` for a
/// message id and `{name}` for a hold's.
pub const PATHS: [&str; 10] = [
    "/api/v1/search",
    "/api/v1/messages/{id}",
    "/api/v1/messages/{id}/raw",
    "/api/v1/openapi.json",
    "/api/v1/messages/{id}/thread",
    "/api/v1/export",
    "/api/v1/holds",
    "/api/v1/holds/{name}",
    "/api/v1/stats",
    "/api/v1/tags",
];

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
    })
}

fn id_parameter() -> Value {
    json!({
        "name": "id", "in": "path", "required": true,
        "description": "The message's id: 64 hex digits (BLAKE3 of its bytes, keyed in an encrypted archive).",
        "schema": { "type": "string", "pattern": "^[0-9a-f]{64}$" }
    })
}

/// The whole document.
pub fn document() -> Value {
    let codes: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
    let secured = json!([{ "bearer": [] }]);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "mailvault",
            "version": "1",
            "description": "Search and read a mailvault archive. Every request but this document's carries `Authorization: Bearer mvt_…` (`mailvault token create NAME --role …`); every read is recorded in the archive's access log as `token:NAME` before it is answered. A reader with role `user` sees only the accounts granted; a message outside them is answered as one that does not exist."
        },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": { "error": {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {
                            "code": { "type": "string", "enum": codes },
                            "message": { "type": "string" }
                        }
                    } }
                },
                "Hit": {
                    "type": "object",
                    "description": "One result; the fields of `schemas/output/search-hit.v1.schema.json`, placements narrowed to the reader's accounts.",
                    "required": ["id", "date", "subject", "placements"],
                    "properties": {
                        "id": { "type": "string" },
                        "date": { "type": "string", "format": "date-time" },
                        "from": { "type": "array", "items": { "type": "string" } },
                        "to": { "type": "array", "items": { "type": "string" } },
                        "subject": { "type": "string" },
                        "folders": { "type": "array", "items": { "type": "string" } },
                        "accounts": { "type": "array", "items": { "type": "string" } },
                        "placements": { "type": "array", "items": { "type": "object", "properties": {
                            "account": { "type": "string" }, "folder": { "type": "string" } } } },
                        "flags": { "type": "array", "items": { "type": "string" } },
                        "size": { "type": "integer" },
                        "attachments": { "type": "array", "items": { "type": "string" } }
                    }
                },
                "SearchPage": {
                    "type": "object",
                    "required": ["total", "offset", "hits"],
                    "properties": {
                        "total": { "type": "integer", "description": "Messages matching, within the reader's accounts." },
                        "offset": { "type": "integer" },
                        "hits": { "type": "array", "items": { "$ref": "#/components/schemas/Hit" } },
                        "facets": { "type": "object", "description": "With facets=true.", "properties": {
                            "accounts": { "type": "array", "items": { "type": "array", "prefixItems": [{ "type": "string" }, { "type": "integer" }] } },
                            "folders": { "type": "array", "items": { "type": "array", "prefixItems": [{ "type": "string" }, { "type": "string" }, { "type": "integer" }] } },
                            "years": { "type": "array", "items": { "type": "array", "prefixItems": [{ "type": "integer" }, { "type": "integer" }] } },
                            "domains": { "type": "array", "items": { "type": "array", "prefixItems": [{ "type": "string" }, { "type": "integer" }] } },
                            "with_attachments": { "type": "integer" } } }
                    }
                },
                "Thread": {
                    "type": "object",
                    "required": ["messages"],
                    "properties": {
                        "root": { "type": ["string", "null"], "description": "The Message-ID of the conversation's first message, as this one names it." },
                        "messages": { "type": "array", "items": { "$ref": "#/components/schemas/Hit" } }
                    }
                },
                "Hold": {
                    "type": "object",
                    "required": ["name", "query", "reason", "by", "at"],
                    "properties": {
                        "name": { "type": "string" },
                        "query": { "type": "string" },
                        "reason": { "type": "string" },
                        "by": { "type": "string", "description": "Who placed it: the OS user, `web:NAME` or `token:NAME`." },
                        "at": { "type": "string", "format": "date-time" }
                    }
                },
                "TagCount": {
                    "type": "object",
                    "required": ["tag", "messages"],
                    "properties": {
                        "tag": { "type": "string" },
                        "messages": { "type": "integer", "description": "Messages carrying it that the reader may see." }
                    }
                },
                "TagChange": {
                    "type": "object",
                    "description": "Either `query` or `ids`; at least one tag to add or remove. A tag: 1 to 64 letters, digits and - _ . : / @ +, kept in lower case.",
                    "properties": {
                        "query": { "type": "string", "description": "The query language of `mailvault search`, narrowed to the reader's accounts." },
                        "ids": { "type": "array", "items": { "type": "string", "pattern": "^[0-9a-f]{64}$" } },
                        "add": { "type": "array", "items": { "type": "string" } },
                        "remove": { "type": "array", "items": { "type": "string" } }
                    }
                },
                "Tagged": {
                    "type": "object",
                    "required": ["matched", "changed"],
                    "properties": {
                        "matched": { "type": "integer" },
                        "changed": { "type": "integer", "description": "Messages whose tags changed." }
                    }
                },
                "NewHold": {
                    "type": "object",
                    "required": ["name", "query"],
                    "properties": {
                        "name": { "type": "string" },
                        "query": { "type": "string", "description": "The query language of `mailvault search`; holds may not refer to holds." },
                        "reason": { "type": "string" }
                    }
                },
                "Overview": {
                    "type": "object",
                    "required": ["folders", "jobs"],
                    "properties": {
                        "folders": { "type": "array", "items": { "type": "object", "properties": {
                            "account": { "type": "string" }, "folder": { "type": "string" },
                            "messages": { "type": "integer" }, "bytes": { "type": "integer", "description": "As received, before deduplication and compression." } } } },
                        "totals": { "type": ["object", "null"], "description": "Archive-wide (admins and auditors only).", "properties": {
                            "messages": { "type": "integer" }, "placements": { "type": "integer" },
                            "raw_bytes": { "type": "integer" }, "dedup_saved_bytes": { "type": "integer" },
                            "stored_bytes": { "type": "integer" }, "ratio": { "type": "number" },
                            "disk_bytes": { "type": "integer" } } },
                        "jobs": { "type": "array", "items": { "type": "object", "properties": {
                            "job": { "type": "string" }, "account": { "type": "string" }, "server": { "type": "string" },
                            "last_run": { "type": ["string", "null"], "format": "date-time" },
                            "result": { "type": ["string", "null"] }, "new_messages": { "type": "integer" },
                            "consecutive_failures": { "type": "integer" },
                            "next_run": { "type": ["string", "null"], "format": "date-time" },
                            "error": { "type": ["string", "null"] } } } }
                    }
                },
                "Message": {
                    "type": "object",
                    "required": ["id", "size", "placements", "headers", "attachments"],
                    "properties": {
                        "id": { "type": "string" },
                        "size": { "type": "integer" },
                        "placements": { "type": "array", "items": { "type": "object", "properties": {
                            "account": { "type": "string" }, "folder": { "type": "string" },
                            "flags": { "type": "array", "items": { "type": "string" } } } } },
                        "headers": { "type": "array", "items": { "type": "array", "prefixItems": [
                            { "type": "string" }, { "type": "string" } ] } },
                        "attachments": { "type": "array", "items": { "type": "object", "properties": {
                            "name": { "type": "string" }, "content_type": { "type": "string" },
                            "size": { "type": "integer" } } } }
                    }
                }
            }
        },
        "paths": {
            PATHS[0]: { "get": {
                "summary": "Search with the query language of `mailvault search`",
                "security": secured,
                "parameters": [
                    { "name": "q", "in": "query", "required": true, "schema": { "type": "string" } },
                    { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": super::api::MAX_LIMIT, "default": 50 } },
                    { "name": "offset", "in": "query", "schema": { "type": "integer", "minimum": 0, "maximum": super::api::MAX_OFFSET, "default": 0 } },
                    { "name": "sort", "in": "query", "schema": { "type": "string", "enum": ["newest", "oldest", "relevance"], "default": "newest" } },
                    { "name": "facets", "in": "query", "description": "Also count messages per account, folder, year, sender domain and with attachments, over every match.", "schema": { "type": "boolean", "default": false } }
                ],
                "responses": {
                    "200": { "description": "A page of results", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/SearchPage" } } } },
                    "400": error_response("The query does not parse"),
                    "401": error_response("No valid bearer token"),
                    "503": error_response("The access log cannot record the read")
                }
            } },
            PATHS[1]: { "get": {
                "summary": "A message's placements, headers and attachments",
                "security": secured,
                "parameters": [id_parameter()],
                "responses": {
                    "200": { "description": "The message", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Message" } } } },
                    "400": error_response("Not a message id"),
                    "401": error_response("No valid bearer token"),
                    "404": error_response("No such message, or not in the reader's accounts")
                }
            } },
            PATHS[2]: { "get": {
                "summary": "The message as archived, byte for byte",
                "security": secured,
                "parameters": [id_parameter()],
                "responses": {
                    "200": { "description": "The message", "content": { "message/rfc822": { "schema": { "type": "string", "format": "binary" } } } },
                    "400": error_response("Not a message id"),
                    "401": error_response("No valid bearer token"),
                    "404": error_response("No such message, or not in the reader's accounts")
                }
            } },
            PATHS[3]: { "get": {
                "summary": "This document",
                "responses": { "200": { "description": "OpenAPI 3.1" } }
            } },
            PATHS[4]: { "get": {
                "summary": "The conversation the message is part of (Message-ID, In-Reply-To, References), oldest first",
                "security": secured,
                "parameters": [id_parameter()],
                "responses": {
                    "200": { "description": "The conversation", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Thread" } } } },
                    "400": error_response("Not a message id"),
                    "401": error_response("No valid bearer token"),
                    "404": error_response("No such message, or not in the reader's accounts")
                }
            } },
            PATHS[5]: { "get": {
                "summary": "Export what a query matches, or the messages named, as one mboxrd file or one zip (streamed, oldest first)",
                "security": secured,
                "parameters": [
                    { "name": "q", "in": "query", "description": "A query (narrowed to the reader's accounts). Either q or ids.", "schema": { "type": "string" } },
                    { "name": "ids", "in": "query", "description": "Message ids, comma-separated; one the reader may not see makes the export not found.", "schema": { "type": "string" } },
                    { "name": "format", "in": "query", "description": "One mboxrd file, or one zip of `.eml` files named by date and id.", "schema": { "type": "string", "enum": ["mbox", "zip"], "default": "mbox" } }
                ],
                "responses": {
                    "200": { "description": "The messages", "content": {
                        "application/mbox": { "schema": { "type": "string", "format": "binary" } },
                        "application/zip": { "schema": { "type": "string", "format": "binary" } } } },
                    "400": error_response("Neither q nor ids, a query that does not parse, or more than the web's export limit"),
                    "401": error_response("No valid bearer token"),
                    "404": error_response("A message named is not in the reader's accounts")
                }
            } },
            PATHS[6]: {
                "get": {
                    "summary": "Every legal hold (admins and auditors)",
                    "security": secured,
                    "responses": {
                        "200": { "description": "The holds", "content": { "application/json": { "schema": { "type": "array", "items": { "$ref": "#/components/schemas/Hold" } } } } },
                        "401": error_response("No valid bearer token"),
                        "403": error_response("Not an admin or auditor")
                    }
                },
                "post": {
                    "summary": "Place a legal hold on what a query matches (admins); replaces a hold of the same name",
                    "security": secured,
                    "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/NewHold" } } } },
                    "responses": {
                        "201": { "description": "Placed" },
                        "400": error_response("A bad name or a query that does not parse"),
                        "401": error_response("No valid bearer token"),
                        "403": error_response("Not an admin"),
                        "409": error_response("Another mailvault process is writing to the archive; try again")
                    }
                }
            },
            PATHS[8]: { "get": {
                "summary": "The overview: messages and bytes per account and folder, savings, job accounts' runs",
                "security": secured,
                "responses": {
                    "200": { "description": "The overview, narrowed to the reader's accounts", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Overview" } } } },
                    "401": error_response("No valid bearer token")
                }
            } },
            PATHS[9]: {
                "get": {
                    "summary": "The tags in use, with how many of the reader's messages carry each (`tag:NAME` in a search finds them)",
                    "security": secured,
                    "responses": {
                        "200": { "description": "The tags", "content": { "application/json": { "schema": { "type": "array", "items": { "$ref": "#/components/schemas/TagCount" } } } } },
                        "401": error_response("No valid bearer token")
                    }
                },
                "post": {
                    "summary": "Add and remove tags on what a query matches or on messages by id (admins, and users within their accounts)",
                    "security": secured,
                    "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/TagChange" } } } },
                    "responses": {
                        "200": { "description": "Done", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Tagged" } } } },
                        "400": error_response("Not a tag, nothing to change, neither query nor ids, or a query that does not parse"),
                        "401": error_response("No valid bearer token"),
                        "403": error_response("An auditor"),
                        "404": error_response("A message named is not in the reader's accounts"),
                        "409": error_response("Another mailvault process is writing to the archive; try again")
                    }
                }
            },
            PATHS[7]: { "delete": {
                "summary": "Release a legal hold (admins)",
                "security": secured,
                "parameters": [{ "name": "name", "in": "path", "required": true, "schema": { "type": "string" } }],
                "responses": {
                    "204": { "description": "Released" },
                    "401": error_response("No valid bearer token"),
                    "403": error_response("Not an admin"),
                    "404": error_response("No such hold"),
                    "409": error_response("Another mailvault process is writing to the archive; try again")
                }
            } }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_lists_every_path_and_error_code() {
        let d = document();
        let listed: Vec<&String> = d["paths"].as_object().unwrap().keys().collect();
        let mut want: Vec<&str> = PATHS.to_vec();
        want.sort();
        assert_eq!(listed, want);
        let codes = &d["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"];
        assert_eq!(codes.as_array().unwrap().len(), Code::ALL.len());
    }
}
