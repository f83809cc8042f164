//! Who may call the API, and the secrets activities use without holding them: API keys with
//! roles (stored hashed) and secrets (stored sealed), in the registry store so every host of
//! a fleet shares them.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::StoreError;

/// What a caller may do. `admin` may do everything; the others are below it and beside each
/// other: a `deployer` changes what runs, an `invoker` runs it, both read.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, keys and secrets included.
    Admin,
    /// Deploy, roll out, roll back, remove, verify; read.
    Deployer,
    /// Start and cancel workflows, invoke activities; read.
    Invoker,
    /// Read only.
    Reader,
}

impl Role {
    /// Every role, strongest first.
    pub const ALL: [Role; 4] = [Role::Admin, Role::Deployer, Role::Invoker, Role::Reader];

    /// The role's name as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Deployer => "deployer",
            Role::Invoker => "invoker",
            Role::Reader => "reader",
        }
    }

    /// True when this role may do what `need` names.
    pub fn allows(self, need: Need) -> bool {
        match need {
            Need::Public | Need::Read => true,
            Need::Invoke => matches!(self, Role::Admin | Role::Invoker),
            Need::Deploy => matches!(self, Role::Admin | Role::Deployer),
            Need::Admin => self == Role::Admin,
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?}: admin, deployer, invoker or reader"))
    }
}

/// What a route needs from its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Nothing: health, readiness, metrics, the API's description.
    Public,
    /// Any key.
    Read,
    /// `invoker` or `admin`.
    Invoke,
    /// `deployer` or `admin`.
    Deploy,
    /// `admin`.
    Admin,
}

/// An API key as stored and listed: never its token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiKey {
    /// Stable id (`key_` and 16 hex digits), also the token's prefix.
    pub id: String,
    /// Who or what holds it.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// Activity types it may act on (routes under `/api/v1/activities/{name}`); empty: all.
    #[serde(default)]
    pub activities: Vec<String>,
    /// Invokes and workflow starts it may make per minute; unset: the host's default.
    #[serde(default)]
    pub per_minute: Option<u32>,
    /// CPU milliseconds its invokes may use per minute, summed over the fleet; unset: no
    /// limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_ms_per_minute: Option<u64>,
    /// Key-value stores its deploys may grant (names, `prefix*`, `*`). Unset: every store
    /// for a key of all activity types, none for a key limited to some.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_value_stores: Option<Vec<String>>,
    /// Secrets its deploys may grant, likewise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<Vec<String>>,
    /// Milliseconds since the Unix epoch of its creation.
    pub created_at_ms: u64,
    /// The caller who created it.
    pub created_by: String,
    /// When it was revoked; a revoked key is refused.
    #[serde(default)]
    pub revoked_at_ms: Option<u64>,
}

impl ApiKey {
    /// True when this key may act on activity type `name`.
    pub fn covers(&self, name: &str) -> bool {
        self.activities.is_empty() || self.activities.iter().any(|a| a == name)
    }

    /// What this key's deploys may grant: the stores and secrets it names; unset, all for a
    /// key of every activity type and none for a key limited to some.
    pub fn grant_scope(&self) -> activity_runtime::GrantPolicy {
        let default = || {
            if self.activities.is_empty() {
                vec!["*".to_string()]
            } else {
                Vec::new()
            }
        };
        activity_runtime::GrantPolicy {
            key_value_stores: self.key_value_stores.clone().unwrap_or_else(default),
            secrets: self.secrets.clone().unwrap_or_else(default),
            max_execution_ms: None,
        }
    }
}

/// A new key's token: `ahk_` + id digits + `_` + 32 random bytes in hex. Only its sha256 is
/// stored ([`token_hash`]): 256 random bits need no slow hash.
pub fn new_token() -> Result<(String, String), StoreError> {
    let rng = SystemRandom::new();
    let mut id = [0u8; 8];
    let mut secret = [0u8; 32];
    rng.fill(&mut id)
        .and_then(|_| rng.fill(&mut secret))
        .map_err(|_| StoreError::Database("no system randomness".into()))?;
    let id = hex::encode(id);
    Ok((
        format!("key_{id}"),
        format!("ahk_{id}_{}", hex::encode(secret)),
    ))
}

/// The stored form of a token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A secret as stored: its value sealed with the host's secrets key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedSecret {
    /// Its name, as grants (`secrets`) and the guest's `wasi:config` key spell it.
    pub name: String,
    /// Hosts (patterns as in `allowed_hosts`) its value may be sent to.
    pub hosts: Vec<String>,
    /// Nonce and ciphertext (ChaCha20-Poly1305), hex.
    pub sealed: String,
    /// Milliseconds since the Unix epoch it was set.
    pub set_at_ms: u64,
    /// The caller who set it.
    pub set_by: String,
}

/// A secret as listed: never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SecretView {
    /// Its name.
    pub name: String,
    /// Hosts its value may be sent to.
    pub hosts: Vec<String>,
    /// When it was set (ms since the Unix epoch).
    pub set_at_ms: u64,
    /// Who set it.
    pub set_by: String,
}

impl From<&SealedSecret> for SecretView {
    fn from(s: &SealedSecret) -> Self {
        Self {
            name: s.name.clone(),
            hosts: s.hosts.clone(),
            set_at_ms: s.set_at_ms,
            set_by: s.set_by.clone(),
        }
    }
}

/// Why a secret cannot be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// No secrets key is configured.
    #[error("no secrets key: set ACTIVITY_HOST_SECRETS_KEY or registry.secrets_key_file (32 bytes, hex)")]
    NoKey,
    /// The key is not 32 bytes of hex.
    #[error("the secrets key must be 64 hex digits (32 bytes)")]
    BadKey,
    /// A stored value does not open with this key.
    #[error("secret {0:?} does not open with this host's secrets key")]
    Unsealable(String),
}

/// The key secrets are sealed with (ChaCha20-Poly1305, from `ring`), and the key derived
/// from it that authenticates the compiled artifacts hosts share (HMAC-SHA256).
pub struct SecretsKey {
    aead: LessSafeKey,
    artifacts: ring::hmac::Key,
}

impl std::fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretsKey(..)")
    }
}

impl SecretsKey {
    /// The key from 64 hex digits.
    pub fn from_hex(text: &str) -> Result<Self, SecretError> {
        let bytes = hex::decode(text.trim()).map_err(|_| SecretError::BadKey)?;
        let key = UnboundKey::new(&CHACHA20_POLY1305, &bytes).map_err(|_| SecretError::BadKey)?;
        // A key of its own for artifacts: the secrets key as an HMAC key over a label.
        let label = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &bytes),
            b"activity-host compiled artifacts v1",
        );
        Ok(Self {
            aead: LessSafeKey::new(key),
            artifacts: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, label.as_ref()),
        })
    }

    /// The key that authenticates shared compiled artifacts.
    pub(crate) fn artifacts(&self) -> &ring::hmac::Key {
        &self.artifacts
    }

    /// Seals `value` for secret `name` (the name is bound in as associated data, so a sealed
    /// value cannot be moved to another name).
    pub fn seal(&self, name: &str, value: &str) -> Result<String, SecretError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SecretError::BadKey)?;
        let mut data = value.as_bytes().to_vec();
        self.aead
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(name.as_bytes()),
                &mut data,
            )
            .map_err(|_| SecretError::BadKey)?;
        Ok(format!("{}{}", hex::encode(nonce), hex::encode(data)))
    }

    /// Opens what [`SecretsKey::seal`] sealed.
    pub fn open(&self, name: &str, sealed: &str) -> Result<String, SecretError> {
        let fail = || SecretError::Unsealable(name.to_string());
        let bytes = hex::decode(sealed).map_err(|_| fail())?;
        if bytes.len() < NONCE_LEN {
            return Err(fail());
        }
        let (nonce, data) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| fail())?;
        let mut data = data.to_vec();
        let plain = self
            .aead
            .open_in_place(nonce, Aad::from(name.as_bytes()), &mut data)
            .map_err(|_| fail())?;
        String::from_utf8(plain.to_vec()).map_err(|_| fail())
    }
}

/// Storage of keys and secrets. Implementations block; callers run them off the async
/// threads.
pub trait AccessStore: Send + Sync + 'static {
    /// Stores a new key under the hash of its token.
    fn add_key(&self, hash: &str, key: &ApiKey) -> Result<(), StoreError>;
    /// Every key, revoked ones included, oldest first.
    fn keys(&self) -> Result<Vec<ApiKey>, StoreError>;
    /// The key whose token hashes to `hash`.
    fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, StoreError>;
    /// Marks key `id` revoked at `at_ms`; false when there is no such key.
    fn revoke_key(&self, id: &str, at_ms: u64) -> Result<bool, StoreError>;
    /// Stores (or replaces) a secret.
    fn put_secret(&self, secret: &SealedSecret) -> Result<(), StoreError>;
    /// Every secret, by name.
    fn secrets(&self) -> Result<Vec<SealedSecret>, StoreError>;
    /// Forgets a secret; false when there was none.
    fn remove_secret(&self, name: &str) -> Result<bool, StoreError>;
}

impl crate::Registry {
    /// Reads the secrets again and hands their values to the runtime's egress (on start,
    /// after a change through this host, and on every reconcile). A secret that does not
    /// open with this host's key is left out, with a warning naming it.
    pub async fn reload_secrets(&self) {
        let Some((store, key)) = self.access.clone() else {
            return;
        };
        let sealed = match tokio::task::spawn_blocking(move || store.secrets()).await {
            Ok(Ok(sealed)) => sealed,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot read secrets");
                return;
            }
            Err(_) => return,
        };
        let mut opened = std::collections::BTreeMap::new();
        for secret in sealed {
            let value = match key.as_deref().map(|k| k.open(&secret.name, &secret.sealed)) {
                Some(Ok(value)) => value,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "secret left out");
                    continue;
                }
                None => {
                    tracing::warn!(
                        secret = secret.name.as_str(),
                        "secret left out: this host has no secrets key"
                    );
                    continue;
                }
            };
            opened.insert(
                secret.name,
                activity_runtime::egress::Secret {
                    value,
                    hosts: secret.hosts,
                },
            );
        }
        self.runtime.egress().set_secrets(opened);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_allow_what_they_name() {
        use Need::*;
        let table = [
            (Role::Admin, [true, true, true, true, true]),
            (Role::Deployer, [true, true, false, true, false]),
            (Role::Invoker, [true, true, true, false, false]),
            (Role::Reader, [true, true, false, false, false]),
        ];
        for (role, allowed) in table {
            for (need, ok) in [Public, Read, Invoke, Deploy, Admin]
                .into_iter()
                .zip(allowed)
            {
                assert_eq!(role.allows(need), ok, "{role:?} {need:?}");
            }
        }
        assert_eq!("deployer".parse::<Role>(), Ok(Role::Deployer));
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_name() {
        let key = SecretsKey::from_hex(&"11".repeat(32)).unwrap();
        let sealed = key.seal("WEBHOOK", "s3cr3t-value").unwrap();
        assert!(!sealed.contains(&hex::encode("s3cr3t-value")));
        assert_eq!(key.open("WEBHOOK", &sealed).unwrap(), "s3cr3t-value");
        assert!(key.open("OTHER", &sealed).is_err());
        let other = SecretsKey::from_hex(&"22".repeat(32)).unwrap();
        assert!(other.open("WEBHOOK", &sealed).is_err());
        assert!(SecretsKey::from_hex("abcd").is_err());
        // Two seals of one value differ (fresh nonce).
        assert_ne!(sealed, key.seal("WEBHOOK", "s3cr3t-value").unwrap());
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (id, token) = new_token().unwrap();
        let (id2, token2) = new_token().unwrap();
        assert_ne!(token, token2);
        assert_ne!(id, id2);
        assert!(token.starts_with(&format!("ahk_{}_", &id[4..])));
        assert_eq!(token_hash(&token).len(), 64);
        assert_ne!(token_hash(&token), token_hash(&token2));
    }
}
