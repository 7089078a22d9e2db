//! `GET /metrics`: the gateway's metrics in the Prometheus text format.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use ironfaas_spec::names::FunctionRef;

use crate::Gateway;
use crate::metrics::{ServiceGauges, escape};

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
    let mut queue_lines = String::new();
    if let Some(queue) = &gw.queue {
        let depth = queue.depth().await.unwrap_or_default();
        queue_lines.push_str("# HELP ironfaas_queue_depth Asynchronous calls by state\n# TYPE ironfaas_queue_depth gauge\n");
        for (f, d) in &depth {
            let label = escape(&f.to_string());
            for (state, n) in [
                ("queued", d.queued),
                ("running", d.running),
                ("retrying", d.retrying),
                ("dead", d.dead),
            ] {
                queue_lines.push_str(&format!(
                    "ironfaas_queue_depth{{function_name=\"{label}\",state=\"{state}\"}} {n}\n"
                ));
            }
        }
        queue_lines.push_str("# HELP queue_worker_pending_messages Asynchronous calls waiting (OpenFaaS Pro's name)\n# TYPE queue_worker_pending_messages gauge\n");
        for (f, d) in &depth {
            queue_lines.push_str(&format!(
                "queue_worker_pending_messages{{function_name=\"{}\",queue_name=\"faas-request\"}} {}\n",
                escape(&f.to_string()),
                d.queued + d.retrying
            ));
        }
        gw.async_stats.render(&mut queue_lines);
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        gw.metrics.render(&services, &queue_lines),
    )
}
