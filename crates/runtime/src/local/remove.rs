//! `DELETE /system/functions`: stop routing at once, drain and stop every replica, forget it.

use ironfaas_spec::names::FunctionRef;
use ironfaas_spec::provider::ProviderError;

use super::LocalProvider;
use super::function::stop_all;

impl LocalProvider {
    pub(super) async fn remove_function(&self, key: &FunctionRef) -> Result<(), ProviderError> {
        let function = self
            .forget(key)
            .ok_or_else(|| ProviderError::NotFound(key.clone()))?;
        let _change = function.changes.lock().await;
        self.records.delete(key).map_err(|e| {
            ProviderError::Failed(format!("cannot delete the record of {key}: {e}"))
        })?;
        stop_all(function.take_all()).await;
        function.logs.delete();
        tracing::info!("removed {key}");
        Ok(())
    }
}
