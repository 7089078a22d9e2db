//! The custom route table: path prefixes that lead to functions (`com.ironfaas.route`),
//! longest prefix first, rebuilt from the provider after every change.

use std::sync::Arc;

use arc_swap::ArcSwap;
use ironfaas_spec::names::FunctionRef;
use ironfaas_spec::provider::Provider;
use ironfaas_spec::routes::{ROUTE_ANNOTATION, match_prefix, parse_routes};
use ironfaas_spec::wire::FunctionDeployment;
use serde::Serialize;

/// One route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Route {
    /// The path prefix.
    pub prefix: String,
    /// The function's name.
    pub function: String,
    /// Its namespace.
    pub namespace: String,
}

/// Every route, longest prefix first.
#[derive(Default)]
pub(crate) struct RouteTable {
    routes: ArcSwap<Vec<Route>>,
}

impl RouteTable {
    /// The function and the path it sees for `path`, by the longest matching prefix.
    pub fn lookup<'a>(&self, path: &'a str) -> Option<(FunctionRef, &'a str)> {
        let routes = self.routes.load();
        routes.iter().find_map(|r| {
            match_prefix(&r.prefix, path)
                .map(|rest| (FunctionRef::new(&r.function, &r.namespace), rest))
        })
    }

    /// The routes now.
    pub fn all(&self) -> Vec<Route> {
        self.routes.load().as_ref().clone()
    }

    /// Rebuilds the table from the functions the provider has.
    pub async fn refresh(&self, provider: &dyn Provider) {
        let mut routes = Vec::new();
        for namespace in provider.namespaces().await.unwrap_or_default() {
            for status in provider.list(&namespace).await.unwrap_or_default() {
                let Some(value) = status.spec.annotation(ROUTE_ANNOTATION) else {
                    continue;
                };
                for prefix in parse_routes(value).unwrap_or_default() {
                    routes.push(Route {
                        prefix,
                        function: status.name.clone(),
                        namespace: namespace.clone(),
                    });
                }
            }
        }
        routes.sort_by(|a, b| {
            b.prefix
                .len()
                .cmp(&a.prefix.len())
                .then(a.prefix.cmp(&b.prefix))
        });
        self.routes.store(Arc::new(routes));
    }

    /// Checks a deployment's routes: well formed, and not taken by another function.
    pub fn check(&self, d: &FunctionDeployment) -> Result<(), String> {
        let Some(value) = d.spec.annotation(ROUTE_ANNOTATION) else {
            return Ok(());
        };
        let prefixes = parse_routes(value)
            .map_err(|e| format!("function {}: annotation {ROUTE_ANNOTATION}: {e}", d.service))?;
        let me = FunctionRef::new(&d.service, &d.spec.namespace);
        for prefix in prefixes {
            if let Some(taken) =
                self.routes.load().iter().find(|r| {
                    r.prefix == prefix && FunctionRef::new(&r.function, &r.namespace) != me
                })
            {
                return Err(format!(
                    "route {prefix} of function {} is taken by function {}.{}; remove it there first or \
                     choose another prefix",
                    d.service, taken.function, taken.namespace
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironfaas_spec::wire::FunctionSpec;

    fn table(routes: &[(&str, &str)]) -> RouteTable {
        let t = RouteTable::default();
        let mut v: Vec<Route> = routes
            .iter()
            .map(|(p, f)| Route {
                prefix: p.to_string(),
                function: f.to_string(),
                namespace: "openfaas-fn".into(),
            })
            .collect();
        v.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        t.routes.store(Arc::new(v));
        t
    }

    #[test]
    fn longest_prefix_wins() {
        let t = table(&[("/api", "all"), ("/api/v2/transform", "transform")]);
        assert_eq!(
            t.lookup("/api/v2/transform/x"),
            Some((FunctionRef::parse("transform"), "/x"))
        );
        assert_eq!(
            t.lookup("/api/v1"),
            Some((FunctionRef::parse("all"), "/v1"))
        );
        assert_eq!(t.lookup("/other"), None);
    }

    #[test]
    fn conflicts_are_refused() {
        let t = table(&[("/api/v2/transform", "transform")]);
        let d = |name: &str, route: &str| FunctionDeployment {
            service: name.into(),
            spec: FunctionSpec {
                namespace: "openfaas-fn".into(),
                annotations: Some([(ROUTE_ANNOTATION.to_string(), route.to_string())].into()),
                ..Default::default()
            },
        };
        assert!(
            t.check(&d("other", "/api/v2/transform"))
                .unwrap_err()
                .contains("taken by function transform")
        );
        assert!(
            t.check(&d("transform", "/api/v2/transform")).is_ok(),
            "a function may keep its own route"
        );
        assert!(
            t.check(&d("other", "/metrics"))
                .unwrap_err()
                .contains("shadow")
        );
        assert!(t.check(&d("other", "/api/v3")).is_ok());
    }
}
