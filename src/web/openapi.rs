//! The OpenAPI 3.1 document of `/api/v1`, served at `/api/v1/openapi.json`. Written
//! out here rather than derived: it is the API's contract, reviewed as such; the
//! test suite asks the running server every path it lists.

use serde_json::{json, Value};

use super::error::Code;

/// The paths the document describes (and the router serves), with `{id}` for a
/// message id.
pub const PATHS: [&str; 4] = [
    "/api/v1/search",
    "/api/v1/messages/{id}",
    "/api/v1/messages/{id}/raw",
    "/api/v1/openapi.json",
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
                        "hits": { "type": "array", "items": { "$ref": "#/components/schemas/Hit" } }
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
                    { "name": "sort", "in": "query", "schema": { "type": "string", "enum": ["newest", "oldest", "relevance"], "default": "newest" } }
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
