//! Sealed secrets on the wire (`/api/v1/secrets`): what `ui secret set`
//! sends, and what a listing shows.

use orchestrator_shared_types::PublicKey;
use serde::{Deserialize, Serialize};

pub use orchestrator_shared_types::secret::SealedSecret;

/// The body of `PUT /api/v1/secrets/{name}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PutSecret {
    /// The keys it is sealed to (node ids and the owner's key, hex).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub recipients: Vec<PublicKey>,
    /// The ASCII-armored age file.
    pub sealed: String,
}
