//! The REST API's wire contract (SPEC §11, `docs/API.md`): what travels
//! between the server (`orchestrator_rest`) and its clients (`ui_cli`,
//! `mcp_server`), so both sides use one declaration.
//!
//! - [`ErrorBody`]: `{"error": {"code", "message"}}`, the body of every error.
//! - [`Page`]: `{"items": [...], "next_cursor": ...}`, every list.
//!
//! May depend on `serde` and, behind the `openapi` and `jsonschema` features,
//! `utoipa` and `schemars`; nothing of the server or of any backend. Clients stay tolerant of newer servers:
//! no type here denies unknown fields.

use serde::{Deserialize, Serialize};

/// The error body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "jsonschema", derive(schemars::JsonSchema))]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// Code and message of an error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "jsonschema", derive(schemars::JsonSchema))]
pub struct ErrorDetail {
    /// `bad_request`, `unauthorized`, `forbidden`, `not_found`, `conflict`,
    /// `payload_too_large`, `unsupported_media_type`, `too_many_requests`,
    /// `unavailable`, `internal`.
    pub code: String,
    /// What went wrong.
    pub message: String,
}

impl ErrorBody {
    /// The body of an error with `code` and `message`.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error: ErrorDetail {
                code: code.into(),
                message: message.into(),
            },
        }
    }
}

/// A page of a list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}
