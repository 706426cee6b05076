//! The signing client of the REST API, from `orchestrator_api` (see
//! [`orchestrator_api::client`] for why it is blocking `ureq`).

pub use orchestrator_api::client::*;
