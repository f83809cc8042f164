//! A stored version's compiled code: this host's compiled cache, else the artifact another
//! host of the fleet compiled for the same engine settings, else compiled here and shared.
//!
//! A shared artifact is native code run in every host that loads it, so it is sealed: an
//! HMAC-SHA256 tag under a key derived from the fleet's secrets key, over the engine key, the
//! component's digest and the artifact. A host without the secrets key neither shares nor
//! loads artifacts (it compiles for itself); one that cannot open an artifact (altered, moved
//! to another digest, another fleet's key) compiles and shares its own.

use activity_runtime::{ActivityComponent, ActivitySpec, CompiledFrom, ComponentDigest};
use ring::hmac;

use crate::{Registry, RegistryError};

/// Length of the tag in front of a sealed artifact.
const TAG_LEN: usize = 32;

/// What the tag covers: the engine key, the digest and the artifact's SHA-256.
fn message(engine: &str, digest: &ComponentDigest, artifact: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    let mut message = Vec::with_capacity(engine.len() + digest.as_str().len() + 34);
    for part in [engine.as_bytes(), &[0], digest.as_str().as_bytes(), &[0]] {
        message.extend_from_slice(part);
    }
    message.extend_from_slice(&sha2::Sha256::digest(artifact));
    message
}

/// The tag, then the artifact.
fn seal(key: &hmac::Key, engine: &str, digest: &ComponentDigest, artifact: &[u8]) -> Vec<u8> {
    let mut sealed = Vec::with_capacity(TAG_LEN + artifact.len());
    sealed.extend_from_slice(hmac::sign(key, &message(engine, digest, artifact)).as_ref());
    sealed.extend_from_slice(artifact);
    sealed
}

/// The artifact in `sealed`, if its tag is this key's for `engine` and `digest`.
fn open(
    key: &hmac::Key,
    engine: &str,
    digest: &ComponentDigest,
    mut sealed: Vec<u8>,
) -> Option<Vec<u8>> {
    if sealed.len() < TAG_LEN {
        return None;
    }
    let artifact = sealed.split_off(TAG_LEN);
    // `ring` compares the tags in constant time.
    hmac::verify(key, &message(engine, digest, &artifact), &sealed).ok()?;
    Some(artifact)
}

impl Registry {
    /// Loads component `digest` from the store as `spec`'s activity: its file checked
    /// against its digest, the code from a compiled cache or compiled (and then shared).
    pub(crate) async fn compile_stored(
        &self,
        spec: &ActivitySpec,
        digest: &ComponentDigest,
    ) -> Result<ActivityComponent, RegistryError> {
        let stored = |message: String| RegistryError::Stored {
            name: spec.activity_type.clone(),
            digest: digest.clone(),
            message,
        };
        let d = digest.clone();
        let bytes = self
            .blocking(move |s| s.blob(&d))
            .await?
            .ok_or_else(|| stored("its component file is missing".into()))?;
        if ComponentDigest::of(&bytes) != *digest {
            return Err(stored(
                "its component file does not hash to its digest (torn or altered); \
                 deploy the same component again to repair it"
                    .into(),
            ));
        }
        let shared = match self.runtime.is_cached(digest) {
            true => None,
            false => self.shared_artifact(digest).await,
        };
        let component = self
            .runtime
            .load_shared(spec.clone(), &bytes, shared)
            .await
            .map_err(|e| stored(e.to_string()))?;
        if component.compiled_from() == CompiledFrom::Compiled {
            self.share(&component).await;
        }
        Ok(component)
    }

    /// The key artifacts are sealed with, and the name they are stored under: the engine's
    /// key and an id of the sealing key, so that hosts with another key (another fleet on
    /// the same database, a host misconfigured) keep artifacts of their own instead of
    /// replacing each other's.
    fn artifacts_key(&self) -> Option<(&hmac::Key, String)> {
        let (_, key) = self.access.as_ref()?;
        let key = key.as_deref()?.artifacts();
        let id = hmac::sign(key, b"key id");
        let scope = format!(
            "{}.{}",
            self.runtime.engine_key(),
            hex::encode(&id.as_ref()[..8])
        );
        Some((key, scope))
    }

    /// The artifact another host shared for `digest`, if one opens with this host's key.
    async fn shared_artifact(&self, digest: &ComponentDigest) -> Option<Vec<u8>> {
        let (key, engine) = self.artifacts_key()?;
        let (e, d) = (engine.clone(), digest.clone());
        match self.blocking(move |s| s.artifact(&e, &d)).await {
            Ok(Some(sealed)) => {
                let opened = open(key, &engine, digest, sealed);
                if opened.is_none() {
                    tracing::warn!(%digest, "a shared compiled artifact does not open with this host's secrets key (altered, or sealed with another key); compiling");
                }
                opened
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(%digest, error = %e, "cannot read the shared compiled artifact; compiling");
                None
            }
        }
    }

    /// Shares `component`'s compiled code with the other hosts of the store. Best effort: a
    /// host that finds none compiles for itself.
    pub(crate) async fn share(&self, component: &ActivityComponent) {
        let Some((key, engine)) = self.artifacts_key() else {
            return;
        };
        let digest = component.digest().clone();
        let artifact = match component.serialized() {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(%digest, error = %e, "cannot share the compiled component");
                return;
            }
        };
        let sealed = seal(key, &engine, &digest, &artifact);
        let d = digest.clone();
        if let Err(e) = self
            .blocking(move |s| s.put_artifact(&engine, &d, &sealed))
            .await
        {
            tracing::warn!(%digest, error = %e, "cannot share the compiled component");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_artifact_opens_only_for_its_key_engine_and_digest() {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &[7; 32]);
        let other_key = hmac::Key::new(hmac::HMAC_SHA256, &[8; 32]);
        let digest = ComponentDigest::of(b"one");
        let other_digest = ComponentDigest::of(b"two");
        let sealed = seal(&key, "e1", &digest, b"code");
        assert_eq!(
            open(&key, "e1", &digest, sealed.clone()).as_deref(),
            Some(&b"code"[..])
        );
        assert!(open(&other_key, "e1", &digest, sealed.clone()).is_none());
        assert!(open(&key, "e2", &digest, sealed.clone()).is_none());
        assert!(open(&key, "e1", &other_digest, sealed.clone()).is_none());
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert!(open(&key, "e1", &digest, altered).is_none());
        assert!(open(&key, "e1", &digest, sealed[..TAG_LEN - 1].to_vec()).is_none());
    }
}
