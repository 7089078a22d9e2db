//! `GET /metrics`: the gateway's metrics in the Prometheus text format.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use ironfaas_spec::names::FunctionRef;

use crate::Gateway;
use crate::metrics::ServiceGauges;

pub(super) async fn metrics(State(gw): State<Arc<Gateway>>) -> impl IntoResponse {
    let mut services = Vec::new();
    for namespace in gw.provider.namespaces().await.unwrap_or_default() {
        for status in gw.provider.list(&namespace).await.unwrap_or_default() {
            let function = FunctionRef::new(&status.name, &namespace);
            let inflight = gw
                .provider
                .route(&function.name, &function.namespace)
                .map_or(0, |r| {
                    r.backends().iter().map(|b| u64::from(b.inflight())).sum()
                });
            services.push(ServiceGauges {
                label: function.to_string(),
                desired: status.replicas,
                ready: status.available_replicas,
                inflight,
            });
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        gw.metrics.render(&services, ""),
    )
}
