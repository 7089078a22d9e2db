//! `POST /system/functions`: create a function and wait until its replicas answer.

use std::time::SystemTime;

use ironfaas_spec::names::normalize_image;
use ironfaas_spec::provider::ProviderError;
use ironfaas_spec::scaling::ScalePolicy;
use ironfaas_spec::timestamp::format_rfc3339;
use ironfaas_spec::wire::FunctionDeployment;
use ironfaas_store::{Digest, StoreError};

use super::function::{Function, await_ready};
use super::record::FunctionRecord;
use super::{LocalProvider, checked_ref};

impl LocalProvider {
    /// Checks a deployment and fills in its defaults; returns its scale policy.
    pub(super) fn validate(
        &self,
        d: &mut FunctionDeployment,
    ) -> Result<ScalePolicy, ProviderError> {
        let key = checked_ref(&d.service, &d.spec.namespace)?;
        d.spec.namespace = key.namespace;
        d.spec.image =
            normalize_image(&d.spec.image).map_err(|e| ProviderError::Invalid(e.to_string()))?;
        if let Some(secret) = d
            .spec
            .secrets
            .iter()
            .find(|s| !self.secrets.exists(s, &d.spec.namespace))
        {
            return Err(ProviderError::Invalid(format!(
                "unable to find secret: {secret} (create it with `ironfaas secret create {secret}`)"
            )));
        }
        ScalePolicy::from_labels(d.spec.labels.as_ref())
            .map_err(|e| ProviderError::Invalid(format!("function {}: {e}", d.service)))
    }

    /// The digest an image points at in the function store.
    pub(super) async fn resolve_image(&self, image: &str) -> Result<Digest, ProviderError> {
        self.store.resolve(image).await.map_err(|e| match e {
            StoreError::NotFound { .. } => ProviderError::Invalid(e.to_string()),
            other => ProviderError::Failed(other.to_string()),
        })
    }

    pub(super) async fn deploy_function(
        &self,
        mut d: FunctionDeployment,
    ) -> Result<(), ProviderError> {
        let policy = self.validate(&mut d)?;
        let key = checked_ref(&d.service, &d.spec.namespace)?;
        if self.get(&key).is_some() {
            return Err(ProviderError::AlreadyExists(key));
        }
        let digest = self.resolve_image(&d.spec.image).await?;
        let run = self.prepare(&d, &digest).await?;
        let record = FunctionRecord {
            deployment: d,
            digest: digest.to_string(),
            created_at: format_rfc3339(SystemTime::now()),
            replicas: policy.min,
        };
        let function = Function::new(key.clone(), record.clone(), run, &self.log_dir());
        {
            let mut map = self.functions.write().unwrap_or_else(|p| p.into_inner());
            let namespace = map.entry(key.namespace.clone()).or_default();
            if namespace.contains_key(&key.name) {
                return Err(ProviderError::AlreadyExists(key));
            }
            namespace.insert(key.name.clone(), function.clone());
        }
        let _change = function.changes.lock().await;
        if let Err(e) = self.persist(&key, &record).await {
            self.forget(&key);
            return Err(e);
        }
        let run = function.run();
        let slots = function.add_slots(policy.min, &run, &self.slot_context(&function));
        tracing::info!(
            "deploying {key} ({}) with {} replica(s)",
            record.digest,
            policy.min
        );
        await_ready(
            &slots,
            self.config.ready_timeout + std::time::Duration::from_secs(5),
        )
        .await
        .map_err(|why| {
            ProviderError::Failed(format!(
                "function {key} is deployed but not ready: {why}\nironfaas keeps restarting it; \
                     fix the function and deploy it again, or remove it"
            ))
        })
    }

    /// Drops a function from the map.
    pub(super) fn forget(
        &self,
        key: &ironfaas_spec::names::FunctionRef,
    ) -> Option<std::sync::Arc<Function>> {
        let mut map = self.functions.write().unwrap_or_else(|p| p.into_inner());
        map.get_mut(&key.namespace)?.remove(&key.name)
    }
}
