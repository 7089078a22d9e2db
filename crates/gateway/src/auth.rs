//! Basic authentication (compat §1.2): every `/system/*` and `/ui/*` call, and calls of
//! functions that ask for it (annotation `com.ironfaas.auth: basic`), need the admin's
//! credentials. Passwords are compared in constant time; failed attempts are logged without
//! the password and limited per client address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};

use crate::body::GatewayBody;

/// Failed attempts a client may make per window before it is turned away.
const MAX_FAILURES: u32 = 10;
/// The window of [`MAX_FAILURES`].
const WINDOW: Duration = Duration::from_secs(60);

/// The credentials the gateway accepts.
#[derive(Clone)]
pub struct Credentials {
    /// The user name (`admin` by convention).
    pub user: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<hidden>")
            .finish()
    }
}

/// Whether two byte strings are equal, in time that depends only on their lengths.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What an authentication check decided.
pub(crate) enum Verdict {
    /// Go on.
    Allowed,
    /// Answer with this.
    Refused(Response<GatewayBody>),
}

/// The gateway's basic authentication.
pub(crate) struct Auth {
    credentials: Option<Credentials>,
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

fn answer(status: StatusCode, text: &str) -> Response<GatewayBody> {
    let mut response = Response::new(GatewayBody::full(format!("{text}\n")));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

impl Auth {
    /// Authentication with `credentials`; `None` lets every call through.
    pub fn new(credentials: Option<Credentials>) -> Self {
        Auth {
            credentials,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// The user name and password of an `Authorization: Basic …` header.
    fn presented(headers: &HeaderMap) -> Option<(String, String)> {
        let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
        let (scheme, token) = value.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(token.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, password) = text.split_once(':')?;
        Some((user.to_string(), password.to_string()))
    }

    /// Checks the credentials of a call from `client`.
    pub fn check(&self, headers: &HeaderMap, client: IpAddr) -> Verdict {
        let Some(expected) = &self.credentials else {
            return Verdict::Allowed;
        };
        {
            let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((count, since)) = failures.get(&client)
                && *count >= MAX_FAILURES
                && since.elapsed() < WINDOW
            {
                return Verdict::Refused(answer(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many failed logins from this address; wait a minute and try again",
                ));
            }
        }
        let presented = Self::presented(headers);
        let good = presented.as_ref().is_some_and(|(user, password)| {
            same(user.as_bytes(), expected.user.as_bytes())
                & same(password.as_bytes(), expected.password.as_bytes())
        });
        if good {
            return Verdict::Allowed;
        }
        if let Some((user, _)) = &presented {
            tracing::warn!("basic auth failed for user '{user}' from {client}");
            let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
            let entry = failures.entry(client).or_insert((0, Instant::now()));
            if entry.1.elapsed() >= WINDOW {
                *entry = (0, Instant::now());
            }
            entry.0 += 1;
        }
        let mut refused = answer(StatusCode::UNAUTHORIZED, "invalid credentials");
        refused.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"Restricted\""),
        );
        Verdict::Refused(refused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(user: &str, password: &str) -> HeaderMap {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {token}")).unwrap(),
        );
        h
    }

    fn auth() -> Auth {
        Auth::new(Some(Credentials {
            user: "admin".into(),
            password: "s3cret".into(),
        }))
    }

    #[test]
    fn right_credentials_pass_wrong_ones_do_not() {
        let a = auth();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(matches!(
            a.check(&headers("admin", "s3cret"), ip),
            Verdict::Allowed
        ));
        for (u, p) in [("admin", "wrong"), ("root", "s3cret"), ("admin", "s3cret ")] {
            let Verdict::Refused(r) = a.check(&headers(u, p), ip) else {
                panic!("{u}:{p} passed")
            };
            assert_eq!(r.status(), 401);
            assert_eq!(
                r.headers()[header::WWW_AUTHENTICATE],
                "Basic realm=\"Restricted\""
            );
        }
        let Verdict::Refused(r) = a.check(&HeaderMap::new(), ip) else {
            panic!("no credentials passed")
        };
        assert_eq!(r.status(), 401);
        assert!(matches!(
            Auth::new(None).check(&HeaderMap::new(), ip),
            Verdict::Allowed
        ));
    }

    #[test]
    fn repeated_failures_are_limited_per_address() {
        let a = auth();
        let attacker: IpAddr = "10.0.0.9".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            let _ = a.check(&headers("admin", "guess"), attacker);
        }
        let Verdict::Refused(r) = a.check(&headers("admin", "s3cret"), attacker) else {
            panic!("not limited")
        };
        assert_eq!(
            r.status(),
            429,
            "even the right password waits out the window"
        );
        let other: IpAddr = "10.0.0.10".parse().unwrap();
        assert!(matches!(
            a.check(&headers("admin", "s3cret"), other),
            Verdict::Allowed
        ));
    }

    #[test]
    fn comparison_is_exact() {
        assert!(same(b"abc", b"abc") && !same(b"abc", b"abd") && !same(b"abc", b"ab"));
    }
}
