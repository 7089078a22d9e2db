//! Keep-alive HTTP/1 connections to replicas, pooled per backend. A connection goes back to
//! its pool when the response body has been read to the end.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, RwLock, Weak};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use ironfaas_spec::provider::{Backend, Endpoint};

use crate::body::UpstreamBody;

/// Idle connections kept per backend.
const MAX_IDLE: usize = 512;

/// A connection's request sender.
pub(crate) type Sender = SendRequest<UpstreamBody>;

/// The idle connections of one backend.
pub(crate) struct Pool {
    endpoint: Endpoint,
    backend: Weak<Backend>,
    idle: Mutex<Vec<Sender>>,
}

/// Why a request could not be sent to a replica.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    /// No connection could be opened.
    #[error("cannot connect to {endpoint}: {source}")]
    Connect {
        /// Where.
        endpoint: String,
        /// Why.
        source: io::Error,
    },
    /// The exchange failed.
    #[error("{0}")]
    Http(#[from] hyper::Error),
}

impl Pool {
    fn new(backend: &Arc<Backend>) -> Self {
        Pool {
            endpoint: backend.endpoint.clone(),
            backend: Arc::downgrade(backend),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Gives a connection back after its response was read completely.
    pub fn put(&self, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(sender);
        }
    }

    fn take_idle(&self) -> Option<Sender> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(sender) = idle.pop() {
            if !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    }

    async fn connect(&self) -> Result<Sender, SendError> {
        let connect_err = |source| SendError::Connect {
            endpoint: self.endpoint.to_string(),
            source,
        };
        let builder = hyper::client::conn::http1::Builder::new();
        match &self.endpoint {
            Endpoint::Tcp(addr) => {
                let stream = tokio::net::TcpStream::connect(addr)
                    .await
                    .map_err(connect_err)?;
                let _ = stream.set_nodelay(true);
                let (sender, conn) = builder.handshake(TokioIo::new(stream)).await?;
                tokio::spawn(conn);
                Ok(sender)
            }
            Endpoint::Unix(path) => {
                let stream = tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(connect_err)?;
                let (sender, conn) = builder.handshake(TokioIo::new(stream)).await?;
                tokio::spawn(conn);
                Ok(sender)
            }
        }
    }

    /// Sends `req` on an idle connection, or a new one; a request that a stale idle connection
    /// could not take is sent again on a fresh connection.
    pub async fn send(
        &self,
        mut req: Request<UpstreamBody>,
    ) -> Result<(Response<Incoming>, Sender), SendError> {
        loop {
            let (mut sender, reused) = match self.take_idle() {
                Some(sender) => (sender, true),
                None => (self.connect().await?, false),
            };
            if sender.ready().await.is_err() {
                if reused {
                    continue;
                }
                // A fresh connection that is not ready: the replica hung up at once.
                sender = self.connect().await?;
                sender.ready().await?;
            }
            match sender.try_send_request(req).await {
                Ok(response) => return Ok((response, sender)),
                Err(mut e) => match e.take_message() {
                    Some(unsent) if reused => req = unsent,
                    _ => return Err(SendError::Http(e.into_error())),
                },
            }
        }
    }
}

/// The pools of all backends, by backend id.
#[derive(Default)]
pub(crate) struct Pools {
    pools: RwLock<HashMap<u64, Arc<Pool>>>,
}

impl Pools {
    /// The pool of `backend`.
    pub fn get(&self, backend: &Arc<Backend>) -> Arc<Pool> {
        if let Some(pool) = self
            .pools
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&backend.id)
        {
            return Arc::clone(pool);
        }
        let mut pools = self.pools.write().unwrap_or_else(|p| p.into_inner());
        Arc::clone(
            pools
                .entry(backend.id)
                .or_insert_with(|| Arc::new(Pool::new(backend))),
        )
    }

    /// Drops the pools of backends that no longer exist.
    pub fn prune(&self) {
        let mut pools = self.pools.write().unwrap_or_else(|p| p.into_inner());
        pools.retain(|_, pool| pool.backend.strong_count() > 0);
    }
}
