//! Retry policies of functions, read from their annotations through the provider and kept a
//! few seconds, so enqueueing does not ask the provider every time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ironfaas_spec::names::FunctionRef;
use ironfaas_spec::provider::{Provider, ProviderError};
use ironfaas_spec::retry::RetryPolicy;

/// How long a policy is reused.
const FRESH_FOR: Duration = Duration::from_secs(2);

/// A short-lived cache of retry policies.
#[derive(Default)]
pub(crate) struct Policies {
    cache: Mutex<HashMap<FunctionRef, (RetryPolicy, Instant)>>,
}

impl Policies {
    /// The policy of `function`; an invalid annotation falls back to the defaults (it was
    /// refused at deploy time already when it came through the API).
    pub async fn get(
        &self,
        provider: &dyn Provider,
        function: &FunctionRef,
    ) -> Result<RetryPolicy, ProviderError> {
        if let Some((policy, at)) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(function)
            && at.elapsed() < FRESH_FOR
        {
            return Ok(policy.clone());
        }
        let status = provider.status(function).await?;
        let policy = RetryPolicy::from_spec(&status.spec).unwrap_or_default();
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(function.clone(), (policy.clone(), Instant::now()));
        Ok(policy)
    }
}
