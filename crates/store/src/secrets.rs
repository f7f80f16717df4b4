//! The key ring, from one Secrets Manager secret (shape: `predebit_core::keys`). Fetched once per
//! container; refetched when a token names a kid the container does not know, at most once a
//! minute, so a rotation never fails in-flight tokens.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::error::DisplayErrorContext;
use aws_sdk_secretsmanager::Client;
use predebit_core::keys::KeyRing;
use tokio::sync::Mutex;

/// The environment variable naming the secret (name or ARN).
pub const ENV_SECRET_ID: &str = "PREDEBIT_KEYS_SECRET_ID";
/// The shortest interval between two refetches triggered by unknown kids.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(60);

/// Why keys could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeySourceError {
    /// Secrets Manager could not be reached or refused.
    #[error("cannot read the keys secret: {0}")]
    Unavailable(String),
    /// The secret exists but is not a valid key ring.
    #[error("the keys secret is malformed: {0}")]
    Malformed(String),
}

/// Reads and parses the secret.
pub async fn fetch(client: &Client, secret_id: &str) -> Result<KeyRing, KeySourceError> {
    let out = client
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| KeySourceError::Unavailable(format!("{}", DisplayErrorContext(&e))))?;
    let text = out
        .secret_string()
        .ok_or_else(|| KeySourceError::Malformed("the secret has no SecretString".into()))?;
    KeyRing::from_secret_json(text).map_err(|e| KeySourceError::Malformed(e.to_string()))
}

/// Creates the secret, or replaces its value when it exists (for local set-up and the demo).
pub async fn put(
    client: &Client,
    secret_id: &str,
    secret_json: &str,
) -> Result<(), KeySourceError> {
    let created = client
        .create_secret()
        .name(secret_id)
        .secret_string(secret_json)
        .send()
        .await;
    match created {
        Ok(_) => Ok(()),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_exists_exception()) =>
        {
            client
                .put_secret_value()
                .secret_id(secret_id)
                .secret_string(secret_json)
                .send()
                .await
                .map_err(|e| KeySourceError::Unavailable(format!("{}", DisplayErrorContext(&e))))?;
            Ok(())
        }
        Err(err) => Err(KeySourceError::Unavailable(format!(
            "{}",
            DisplayErrorContext(&err)
        ))),
    }
}

/// Where a key ring comes from: a fixed ring (tests, benchmarks) or Secrets Manager.
#[derive(Debug)]
pub struct KeySource {
    ring: Mutex<Arc<KeyRing>>,
    remote: Option<(Client, String)>,
    last_refetch: Mutex<Option<Instant>>,
}

impl KeySource {
    /// A ring that never changes.
    pub fn fixed(ring: KeyRing) -> Self {
        Self {
            ring: Mutex::new(Arc::new(ring)),
            remote: None,
            last_refetch: Mutex::new(None),
        }
    }

    /// Fetches the secret once; the container keeps it.
    pub async fn from_secrets_manager(
        client: Client,
        secret_id: String,
    ) -> Result<Self, KeySourceError> {
        let ring = fetch(&client, &secret_id).await?;
        Ok(Self {
            ring: Mutex::new(Arc::new(ring)),
            remote: Some((client, secret_id)),
            last_refetch: Mutex::new(None),
        })
    }

    /// The ring in use.
    pub async fn current(&self) -> Arc<KeyRing> {
        self.ring.lock().await.clone()
    }

    /// A ring that knows `kid`, refetching the secret if needed and allowed (once a minute).
    pub async fn with_kid(&self, kid: &str) -> Option<Arc<KeyRing>> {
        let ring = self.current().await;
        if ring.has_kid(kid) {
            return Some(ring);
        }
        let (client, secret_id) = self.remote.as_ref()?;
        {
            let mut last = self.last_refetch.lock().await;
            if last.is_some_and(|t| t.elapsed() < REFETCH_INTERVAL) {
                return None;
            }
            *last = Some(Instant::now());
        }
        match fetch(client, secret_id).await {
            Ok(fresh) => {
                let fresh = Arc::new(fresh);
                *self.ring.lock().await = fresh.clone();
                fresh.has_kid(kid).then_some(fresh)
            }
            Err(err) => {
                tracing::warn!(error = %err, "refetching the keys secret failed");
                None
            }
        }
    }
}
