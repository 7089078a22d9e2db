//! Custom routes: path prefixes on the gateway that lead to a function (the sidecar /
//! transform pattern), declared with the annotation `com.ironfaas.route`.

/// The annotation holding a function's route prefixes, comma-separated.
pub const ROUTE_ANNOTATION: &str = "com.ironfaas.route";

/// Prefixes the gateway keeps for itself.
pub const RESERVED: &[&str] = &[
    "/system",
    "/function",
    "/async-function",
    "/metrics",
    "/healthz",
    "/ui",
];

/// Parses and checks the prefixes of a `com.ironfaas.route` value: each starts with `/`, has
/// no query, no `..`, no empty or wildcard segments, and does not shadow a reserved prefix.
/// Trailing slashes are dropped.
pub fn parse_routes(value: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for raw in value.split(',').map(str::trim).filter(|r| !r.is_empty()) {
        let prefix = raw.trim_end_matches('/');
        let fix = "write it like /api/v2/transform (several prefixes comma-separated)";
        if !raw.starts_with('/') || prefix.is_empty() {
            return Err(format!(
                "route '{raw}' must start with / and name a path below the root; {fix}"
            ));
        }
        if prefix.contains(['?', '#', '*', ' '])
            || prefix
                .split('/')
                .skip(1)
                .any(|s| s.is_empty() || s == "." || s == "..")
        {
            return Err(format!("route '{raw}' is not a plain path prefix; {fix}"));
        }
        if let Some(reserved) = RESERVED.iter().find(|r| {
            prefix == **r
                || prefix.starts_with(&format!("{r}/"))
                || r.starts_with(&format!("{prefix}/"))
        }) {
            return Err(format!(
                "route '{raw}' would shadow the gateway's own {reserved}; pick a prefix outside {}",
                RESERVED.join(", ")
            ));
        }
        if !out.iter().any(|p: &String| p == prefix) {
            out.push(prefix.to_string());
        }
    }
    Ok(out)
}

/// Whether `path` falls under `prefix`; then the rest of the path the function sees.
pub fn match_prefix<'a>(prefix: &str, path: &'a str) -> Option<&'a str> {
    let rest = path.strip_prefix(prefix)?;
    if rest.is_empty() {
        Some("/")
    } else if rest.starts_with('/') {
        Some(rest)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prefixes() {
        assert_eq!(
            parse_routes("/api/v2/transform"),
            Ok(vec!["/api/v2/transform".to_string()])
        );
        assert_eq!(
            parse_routes(" /a/ , /b,/a"),
            Ok(vec!["/a".to_string(), "/b".to_string()])
        );
    }

    #[test]
    fn refuses_reserved_and_malformed() {
        for bad in [
            "/system",
            "/system/x",
            "/function/f",
            "/metrics",
            "/ui/app",
            "/",
            "api",
            "/a/../b",
            "/a*",
            "/a?x=1",
            "/a//b",
        ] {
            assert!(parse_routes(bad).is_err(), "{bad}");
        }
        assert!(parse_routes("/system").unwrap_err().contains("shadow"));
    }

    #[test]
    fn matches_whole_segments() {
        assert_eq!(match_prefix("/api/v2", "/api/v2"), Some("/"));
        assert_eq!(match_prefix("/api/v2", "/api/v2/x?y"), Some("/x?y"));
        assert_eq!(match_prefix("/api/v2", "/api/v20"), None);
    }
}
