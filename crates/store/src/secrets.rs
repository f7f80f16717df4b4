//! The key ring, from one Secrets Manager secret (shape: `predebit_core::keys`).
//!
//! A container fetches the secret at start (and fails to start without it), then re-reads it
//! when its copy is older than [`MAX_RING_AGE`] and when a token names a kid it does not know, so
//! a rotation never fails in-flight tokens and a kid removed from the secret is refused once the
//! copy is re-read: within [`MAX_RING_AGE`] of the removal while Secrets Manager answers.
//!
//! Fetch attempts of either kind are at least [`REFETCH_INTERVAL`] apart, and one runs at a time.
//! A failed re-read keeps the ring the container has and is retried no sooner than
//! [`REFETCH_INTERVAL`]: an outage of Secrets Manager must not stop payments, so the container
//! keeps trusting what it last read. The cost is that while the secret cannot be read a removed
//! kid stays trusted; it is refused at the first re-read that succeeds (at most
//! [`REFETCH_INTERVAL`] after Secrets Manager answers again). A new container cannot start
//! without the secret, so redeploying is the way to drop a leaked key during an outage.

use std::sync::{Arc, Mutex as SyncMutex, PoisonError};
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::error::DisplayErrorContext;
use aws_sdk_secretsmanager::Client;
use predebit_core::keys::KeyRing;
use tokio::sync::Mutex;

/// The environment variable naming the secret (name or ARN).
pub const ENV_SECRET_ID: &str = "PREDEBIT_KEYS_SECRET_ID";
/// The shortest interval between two fetch attempts (unknown kid, age, or a retry after a failure).
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(60);
/// How old a container's copy of the ring may grow before it is re-read.
pub const MAX_RING_AGE: Duration = Duration::from_secs(5 * 60);

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
    state: SyncMutex<RingState>,
    /// Held while a fetch is under way, so one runs at a time.
    fetching: Mutex<()>,
    remote: Option<(Client, String)>,
}

/// The ring in use and when it was read.
#[derive(Debug)]
struct RingState {
    ring: Arc<KeyRing>,
    /// When the ring in use was read.
    fetched_at: Instant,
    /// When the last fetch attempt (successful or not) began.
    last_attempt: Option<Instant>,
}

/// Whether to wait for a fetch another caller has under way.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// Yes: the caller needs the result (an unknown kid).
    Yes,
    /// No: the ring it has will do (a refresh by age).
    No,
}

impl KeySource {
    /// A ring that never changes.
    pub fn fixed(ring: KeyRing) -> Self {
        Self::new(ring, None, Instant::now())
    }

    /// Fetches the secret once at start; later re-reads follow the module's rules.
    pub async fn from_secrets_manager(
        client: Client,
        secret_id: String,
    ) -> Result<Self, KeySourceError> {
        let ring = fetch(&client, &secret_id).await?;
        Ok(Self::new(ring, Some((client, secret_id)), Instant::now()))
    }

    fn new(ring: KeyRing, remote: Option<(Client, String)>, now: Instant) -> Self {
        Self {
            state: SyncMutex::new(RingState {
                ring: Arc::new(ring),
                fetched_at: now,
                // The first unknown kid after start refetches at once: a rotation may have
                // happened while this container started.
                last_attempt: None,
            }),
            fetching: Mutex::new(()),
            remote,
        }
    }

    /// The ring in use, re-read first when it is older than [`MAX_RING_AGE`].
    pub async fn current(&self) -> Arc<KeyRing> {
        self.current_at(Instant::now()).await
    }

    /// [`Self::current`] as of `now` (tests move the clock forward with it).
    pub async fn current_at(&self, now: Instant) -> Arc<KeyRing> {
        let (ring, stale) = {
            let state = self.lock_state();
            let stale = now.saturating_duration_since(state.fetched_at) >= MAX_RING_AGE;
            (state.ring.clone(), stale)
        };
        if !stale {
            return ring;
        }
        self.refetch(now, Wait::No).await.unwrap_or(ring)
    }

    /// A ring that knows `kid`, re-reading the secret when the ring in use does not (at most
    /// once per [`REFETCH_INTERVAL`]).
    pub async fn with_kid(&self, kid: &str) -> Option<Arc<KeyRing>> {
        self.with_kid_at(kid, Instant::now()).await
    }

    /// [`Self::with_kid`] as of `now` (tests move the clock forward with it).
    pub async fn with_kid_at(&self, kid: &str, now: Instant) -> Option<Arc<KeyRing>> {
        let ring = self.current_at(now).await;
        if ring.has_kid(kid) {
            return Some(ring);
        }
        self.refetch(now, Wait::Yes)
            .await
            .filter(|fresh| fresh.has_kid(kid))
    }

    /// Reads the secret unless an attempt began within [`REFETCH_INTERVAL`] of `now`. Returns
    /// the ring read now or by the fetch this call waited for; `None` when nothing was read.
    async fn refetch(&self, now: Instant, wait: Wait) -> Option<Arc<KeyRing>> {
        let (client, secret_id) = self.remote.as_ref()?;
        let _fetching = match wait {
            Wait::Yes => self.fetching.lock().await,
            Wait::No => self.fetching.try_lock().ok()?,
        };
        {
            let mut state = self.lock_state();
            if let Some(last) = state.last_attempt {
                if now.saturating_duration_since(last) < REFETCH_INTERVAL {
                    // A fetch began recently (perhaps the one just waited for): use what it got.
                    return (state.fetched_at >= last).then(|| state.ring.clone());
                }
            }
            state.last_attempt = Some(now);
        }
        match fetch(client, secret_id).await {
            Ok(fresh) => {
                let fresh = Arc::new(fresh);
                let mut state = self.lock_state();
                state.ring = fresh.clone();
                state.fetched_at = now;
                Some(fresh)
            }
            Err(err) => {
                tracing::warn!(error = %err, "re-reading the keys secret failed; keeping the ring in use");
                None
            }
        }
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, RingState> {
        // The state is two plain assignments; a panic elsewhere cannot leave it half-written.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
