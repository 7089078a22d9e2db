//! `PUT /system/functions`: a rolling update. New replicas start beside the old ones; only
//! when all of them answer does traffic move and the old ones drain. A new version that never
//! becomes ready is stopped and the old one keeps serving.

use std::sync::Arc;

use ironfaas_spec::provider::ProviderError;
use ironfaas_spec::wire::FunctionDeployment;

use super::function::{await_ready, stop_all};
use super::{LocalProvider, checked_ref};

impl LocalProvider {
    pub(super) async fn update_function(
        &self,
        mut d: FunctionDeployment,
    ) -> Result<(), ProviderError> {
        let policy = self.validate(&mut d)?;
        let key = checked_ref(&d.service, &d.spec.namespace)?;
        let function = self
            .get(&key)
            .ok_or_else(|| ProviderError::NotFound(key.clone()))?;
        let _change = function.changes.lock().await;
        if !self.get(&key).is_some_and(|f| Arc::ptr_eq(&f, &function)) {
            return Err(ProviderError::NotFound(key));
        }
        let digest = self.resolve_image(&d.spec.image).await?;
        let run = Arc::new(self.prepare(&d, &digest).await?);
        let replicas = function.record().replicas.clamp(policy.min, policy.max);
        let fresh = function.add_slots(replicas, &run, &self.slot_context(&function));
        tracing::info!("updating {key} to {digest} with {replicas} replica(s)");
        let is_fresh = |s: &Arc<super::slot::Slot>| fresh.iter().any(|n| Arc::ptr_eq(n, s));
        if let Err(why) = await_ready(
            &fresh,
            self.config.ready_timeout + std::time::Duration::from_secs(5),
        )
        .await
        {
            stop_all(function.take_slots(is_fresh)).await;
            return Err(ProviderError::Failed(format!(
                "the new version of {key} did not become ready, so it was rolled back and the \
                 previous version keeps serving: {why}"
            )));
        }
        let mut old = function.take_slots(|s| !is_fresh(s));
        // A spare of the previous version must not start later.
        old.extend(function.take_spare());
        if replicas == 0 && self.keeps_spares() {
            function.keep_spare(&run, &self.slot_context(&function));
        }
        function.set_run(run);
        function.protect(&d);
        let record = function.update_record(|r| {
            r.deployment = d;
            r.digest = digest.to_string();
            r.replicas = replicas;
        });
        self.persist(&key, &record).await?;
        tokio::spawn(stop_all(old));
        Ok(())
    }
}
