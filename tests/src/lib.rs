//! The integration-test harness: one DynamoDB Local (and one moto server, for Secrets Manager)
//! per test process, on free loopback ports, and uniquely named tables per test so tests run in
//! parallel.
//!
//! When `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL_SECRETS_MANAGER` are set (as
//! `scripts/services.sh run` does), those are used. Otherwise the harness starts the servers
//! from the cache that `scripts/tools.sh` fills, under a small watchdog shell that stops them
//! when this process exits.

pub mod bench;
pub mod delay_proxy;

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use predebit_store::{tables, DynamoClient, DynamoStore, SecretsClient, TableNames};

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind a loopback port")
        .local_addr()
        .expect("addr")
        .port()
}

fn wait_for(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} did not answer on 127.0.0.1:{port} within 60 s");
}

/// Starts `command` (a shell snippet) under a watchdog that kills it when this process exits.
// The watchdog outlives every test by design; it exits on its own once this process is gone.
#[allow(clippy::zombie_processes)]
fn spawn_guarded(command: &str, log: &str) {
    let parent = std::process::id();
    let script = format!(
        "{command} >{log} 2>&1 </dev/null & child=$!; \
         while kill -0 {parent} 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 0.5; done; \
         kill $child 2>/dev/null"
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sh");
}

fn ensure_tools(which: &str) {
    let status = Command::new(repo_root().join("scripts/tools.sh"))
        .arg(which)
        .status()
        .expect("run scripts/tools.sh");
    assert!(status.success(), "scripts/tools.sh {which} failed");
}

/// The DynamoDB Local endpoint the tests use (started on first use unless the environment names one).
pub fn dynamodb_endpoint() -> &'static str {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT.get_or_init(|| {
        if let Ok(url) = std::env::var("AWS_ENDPOINT_URL_DYNAMODB") {
            return url;
        }
        ensure_tools("ddb");
        let port = free_port();
        let dir = repo_root().join(".cache/dynamodb-local");
        let log = std::env::temp_dir().join(format!("predebit-ddb-{port}.log"));
        spawn_guarded(
            &format!(
                "cd {} && exec java -Xmx512m -Djava.library.path=DynamoDBLocal_lib -jar DynamoDBLocal.jar -inMemory -disableTelemetry -port {port}",
                dir.display()
            ),
            &log.display().to_string(),
        );
        wait_for(port, "DynamoDB Local");
        format!("http://127.0.0.1:{port}")
    })
}

/// The Secrets Manager (moto) endpoint the tests use (started on first use unless the
/// environment names one).
pub fn secrets_endpoint() -> &'static str {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT.get_or_init(|| {
        if let Ok(url) = std::env::var("AWS_ENDPOINT_URL_SECRETS_MANAGER") {
            return url;
        }
        ensure_tools("venv");
        let port = free_port();
        let bin = repo_root().join(".cache/venv/bin/moto_server");
        let log = std::env::temp_dir().join(format!("predebit-moto-{port}.log"));
        spawn_guarded(
            &format!("exec {} -H 127.0.0.1 -p {port}", bin.display()),
            &log.display().to_string(),
        );
        wait_for(port, "moto");
        format!("http://127.0.0.1:{port}")
    })
}

/// The local AgentCore Payments service (`scripts/agentcore_local`) the tests use (started on
/// first use unless the environment names one).
pub fn agentcore_endpoint() -> &'static str {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT.get_or_init(|| {
        if let Ok(url) = std::env::var("AWS_ENDPOINT_URL_BEDROCK_AGENTCORE") {
            return url;
        }
        ensure_tools("agentcore");
        let port = free_port();
        let python = repo_root().join(".cache/venv-agentcore/bin/python");
        let server = repo_root().join("scripts/agentcore_local/server.py");
        let log = std::env::temp_dir().join(format!("predebit-agentcore-{port}.log"));
        spawn_guarded(
            &format!(
                "exec {} {} --host 127.0.0.1 --port {port}",
                python.display(),
                server.display()
            ),
            &log.display().to_string(),
        );
        wait_for(port, "the local AgentCore Payments service");
        format!("http://127.0.0.1:{port}")
    })
}

/// An `aws-sdk-bedrockagentcore` client on the local AgentCore Payments service, with the
/// timeouts and retries the functions use.
pub async fn agentcore_client() -> aws_sdk_bedrockagentcore::Client {
    let config = base_config()
        .endpoint_url(agentcore_endpoint())
        .load()
        .await;
    aws_sdk_bedrockagentcore::Client::from_conf(
        aws_sdk_bedrockagentcore::config::Builder::from(&config)
            .timeout_config(predebit_store::config::timeouts())
            .retry_config(predebit_store::config::retries())
            .build(),
    )
}

/// The SDK loader every test client starts from: fixed region and dummy credentials.
pub fn base_config() -> aws_config::ConfigLoader {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "local",
            "local",
            None,
            None,
            "predebit-tests",
        ))
}

/// A DynamoDB client for the local server; `customize` may add interceptors.
pub async fn dynamodb_client_with(
    customize: impl FnOnce(aws_sdk_dynamodb::config::Builder) -> aws_sdk_dynamodb::config::Builder,
) -> DynamoClient {
    let config = base_config().endpoint_url(dynamodb_endpoint()).load().await;
    DynamoClient::from_conf(customize(aws_sdk_dynamodb::config::Builder::from(&config)).build())
}

/// A DynamoDB client for `endpoint` with predebit's own timeouts and retries (the production
/// configuration, so an attempt timeout is followed by the SDK's re-send).
pub async fn dynamodb_client_at(
    endpoint: &str,
    customize: impl FnOnce(aws_sdk_dynamodb::config::Builder) -> aws_sdk_dynamodb::config::Builder,
) -> DynamoClient {
    let config = base_config()
        .endpoint_url(endpoint)
        .timeout_config(predebit_store::config::timeouts())
        .retry_config(predebit_store::config::retries())
        .load()
        .await;
    DynamoClient::from_conf(customize(aws_sdk_dynamodb::config::Builder::from(&config)).build())
}

/// A DynamoDB client for the local server.
pub async fn dynamodb_client() -> DynamoClient {
    dynamodb_client_with(|b| b).await
}

/// A Secrets Manager client for the local moto server.
pub async fn secrets_client() -> SecretsClient {
    let config = base_config().endpoint_url(secrets_endpoint()).load().await;
    SecretsClient::new(&config)
}

/// Table names no other test uses.
pub fn unique_tables(test: &str) -> TableNames {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let slug: String = test
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(40)
        .collect();
    TableNames::with_prefix(&format!("t{}-{n}-{slug}", std::process::id()))
}

/// A store over fresh tables on DynamoDB Local.
pub async fn fresh_store(test: &str) -> DynamoStore {
    fresh_store_with(test, dynamodb_client().await).await
}

/// A store over fresh tables, using the given client.
pub async fn fresh_store_with(test: &str, client: DynamoClient) -> DynamoStore {
    let names = unique_tables(test);
    tables::create_all(&client, &names)
        .await
        .expect("create tables on DynamoDB Local");
    DynamoStore::new(client, names)
}

/// Counts the HTTP requests (retries included) a DynamoDB client sends; tests assert counts.
#[derive(Debug, Clone, Default)]
pub struct RequestCounter(std::sync::Arc<AtomicU64>);

impl RequestCounter {
    /// Requests sent so far.
    pub fn sent(&self) -> usize {
        self.0.load(Ordering::SeqCst) as usize
    }
}

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}
