//! `POST /system/scale-function/{name}`: set the desired replicas. New replicas start in the
//! background; removed ones drain first (those not ready, then the least busy, go first).

use std::sync::Arc;

use ironfaas_spec::names::FunctionRef;
use ironfaas_spec::provider::ProviderError;
use ironfaas_spec::scaling::{LABEL_MAX, ScalePolicy};

use super::LocalProvider;
use super::function::stop_all;

impl LocalProvider {
    pub(super) async fn scale_function(
        &self,
        key: &FunctionRef,
        replicas: u64,
    ) -> Result<(), ProviderError> {
        let function = self
            .get(key)
            .ok_or_else(|| ProviderError::NotFound(key.clone()))?;
        let _change = function.changes.lock().await;
        let record = function.record();
        let policy = ScalePolicy::from_labels(record.deployment.spec.labels.as_ref())
            .map_err(ProviderError::Invalid)?;
        if replicas > policy.max {
            return Err(ProviderError::Invalid(format!(
                "cannot scale {key} to {replicas} replicas: its maximum is {} (label {LABEL_MAX}); \
                 raise the label or ask for fewer",
                policy.max
            )));
        }
        let slots = function.slots();
        let current = slots.len() as u64;
        if replicas > current {
            let run = function.run();
            function.add_slots(replicas - current, &run, &self.slot_context(&function));
        } else if replicas < current {
            let mut ranked = slots;
            ranked.sort_by_key(|s| (s.is_ready(), s.inflight()));
            let victims: Vec<_> = ranked
                .into_iter()
                .take((current - replicas) as usize)
                .collect();
            let taken = function.take_slots(|s| victims.iter().any(|v| Arc::ptr_eq(v, s)));
            tokio::spawn(stop_all(taken));
            if replicas == 0 && self.keeps_spares() {
                function.keep_spare(&function.run(), &self.slot_context(&function));
            }
        }
        let record = function.update_record(|r| r.replicas = replicas);
        self.persist(key, &record).await?;
        tracing::info!("scaled {key} from {current} to {replicas} replica(s)");
        Ok(())
    }
}
