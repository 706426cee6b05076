//! The MCP server through which AI agents drive the orchestrator (SPEC §12).
//!
//! Empty for now: the MCP issue fills it with an `rmcp` server (stdio and
//! streamable HTTP), delegated agent tokens, automation boundaries and the
//! audit log.
