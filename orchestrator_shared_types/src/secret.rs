//! A user's secret as the cluster keeps it (SPEC §15, §18): sealed with age
//! on the user's machine to the Ed25519 keys of the nodes the user trusts and
//! to the user's own key. The control plane stores the ciphertext only; a
//! node opens it with its own key just before it starts a container.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ids::PublicKey;

/// Record kind (in the state store's records) of a sealed secret; the key is
/// `OWNER_HEX:NAME`.
pub const RECORD: &str = "secret";

/// A secret, sealed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SealedSecret {
    /// Its name, unique per owner (a DNS label).
    pub name: String,
    /// Whose it is.
    #[schemars(with = "String")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub owner: PublicKey,
    /// The keys it is sealed to, as the owner declared them: the nodes that
    /// can open it (node ids) and the owner's own key. Only a node listed
    /// here is given an instance that needs it.
    #[schemars(with = "Vec<String>")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub recipients: Vec<PublicKey>,
    /// The ASCII-armored age file.
    pub sealed: String,
    /// When it was last set.
    pub updated_at: DateTime<Utc>,
}

impl SealedSecret {
    /// The store key of `owner`'s secret `name`.
    pub fn record_key(owner: &PublicKey, name: &str) -> String {
        format!("{owner}:{name}")
    }

    /// Checks the name and the recipients; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if !crate::validation::is_dns_label(&self.name) {
            return Err(format!(
                "name: {:?} is not 1-63 of a-z, 0-9 and '-', alphanumeric at both ends",
                self.name
            ));
        }
        if self.recipients.is_empty() {
            return Err("recipients: a secret is sealed to at least one key".to_owned());
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(k) = self.recipients.iter().find(|k| !seen.insert(**k)) {
            return Err(format!("recipients: {k} is listed twice"));
        }
        Ok(())
    }
}
