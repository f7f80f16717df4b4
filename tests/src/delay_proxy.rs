//! A loopback TCP proxy in front of DynamoDB Local that can hold back one response past the
//! SDK's attempt timeout: the request has applied, its answer is lost, and the SDK re-sends the
//! same request. That is the case a ledger write must recognise as its own.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The proxy: forwards every connection to the upstream address, byte for byte.
#[derive(Clone, Debug)]
pub struct DelayProxy {
    port: u16,
    delay_next: Arc<AtomicBool>,
    delayed: Arc<AtomicU64>,
}

impl DelayProxy {
    /// Listens on a free 127.0.0.1 port and forwards to `upstream` (`host:port`). A response
    /// held back is held for `delay`. Runs on the calling tokio runtime.
    pub async fn start(upstream: String, delay: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let port = listener.local_addr().expect("addr").port();
        let proxy = Self {
            port,
            delay_next: Arc::default(),
            delayed: Arc::default(),
        };
        let shared = proxy.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                tokio::spawn(shared.clone().pipe(client, server, delay));
            }
        });
        proxy
    }

    /// The endpoint URL for an SDK client.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The next response from upstream (on any connection) is held back.
    pub fn delay_next_response(&self) {
        self.delay_next.store(true, Ordering::SeqCst);
    }

    /// How many responses were held back so far.
    pub fn delayed(&self) -> u64 {
        self.delayed.load(Ordering::SeqCst)
    }

    async fn pipe(self, client: TcpStream, server: TcpStream, delay: Duration) {
        let (mut client_read, mut client_write) = client.into_split();
        let (mut server_read, mut server_write) = server.into_split();
        let upstream = tokio::spawn(async move {
            let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
        });
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = match server_read.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if self.delay_next.swap(false, Ordering::SeqCst) {
                self.delayed.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
            }
            if client_write.write_all(&buffer[..n]).await.is_err() {
                break;
            }
        }
        upstream.abort();
    }
}
