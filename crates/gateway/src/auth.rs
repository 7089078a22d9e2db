//! Basic authentication (compat §1.2): every `/system/*` and `/ui/*` call, and calls of
//! functions that ask for it (annotation `com.ironfaas.auth: basic`), need the admin's
//! credentials. Passwords are compared in constant time; failed attempts are logged without
//! the password and limited per client address (per /64 network for IPv6, where one client
//! holds many addresses).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};

use crate::body::GatewayBody;
use crate::proxy::message;

/// Failed attempts a client may make per window before it is turned away.
const MAX_FAILURES: u32 = 10;
/// The window of [`MAX_FAILURES`].
const WINDOW: Duration = Duration::from_secs(60);
/// Client addresses whose failures are remembered at most: when full, those whose window has
/// passed are forgotten, and while it is still full a new address is not tracked (so many
/// addresses cannot grow the gateway's memory).
const MAX_TRACKED: usize = 100_000;

/// The key failures are counted under: the address, or for IPv6 its /64 network.
fn client_key(client: IpAddr) -> IpAddr {
    match client.to_canonical() {
        IpAddr::V6(v6) => {
            let network = u128::from(v6) & !u128::from(u64::MAX);
            IpAddr::V6(network.into())
        }
        v4 => v4,
    }
}

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
        let client = client_key(client);
        {
            let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((count, since)) = failures.get(&client)
                && *count >= MAX_FAILURES
                && since.elapsed() < WINDOW
            {
                return Verdict::Refused(message(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many failed logins from this address; wait a minute and try again\n"
                        .into(),
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
            if failures.len() >= MAX_TRACKED && !failures.contains_key(&client) {
                failures.retain(|_, (_, since)| since.elapsed() < WINDOW);
            }
            if failures.len() >= MAX_TRACKED && !failures.contains_key(&client) {
                return Verdict::Refused(unauthorized());
            }
            let entry = failures.entry(client).or_insert((0, Instant::now()));
            if entry.1.elapsed() >= WINDOW {
                *entry = (0, Instant::now());
            }
            entry.0 += 1;
        }
        Verdict::Refused(unauthorized())
    }
}

/// The 401 asking for basic credentials.
fn unauthorized() -> Response<GatewayBody> {
    let mut refused = message(StatusCode::UNAUTHORIZED, "invalid credentials\n".into());
    refused.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"Restricted\""),
    );
    refused
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
    fn an_ipv6_network_is_one_client() {
        let a = auth();
        for i in 0..MAX_FAILURES {
            let ip: IpAddr = format!("2001:db8:1:2::{i:x}").parse().unwrap();
            let _ = a.check(&headers("admin", "guess"), ip);
        }
        let same_network: IpAddr = "2001:db8:1:2:ffff::1".parse().unwrap();
        let Verdict::Refused(r) = a.check(&headers("admin", "s3cret"), same_network) else {
            panic!("not limited")
        };
        assert_eq!(r.status(), 429);
        let next_network: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(matches!(
            a.check(&headers("admin", "s3cret"), next_network),
            Verdict::Allowed
        ));
        let mapped: IpAddr = "::ffff:10.0.0.9".parse().unwrap();
        assert_eq!(client_key(mapped), "10.0.0.9".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn failures_from_many_addresses_stay_bounded() {
        let a = auth();
        for i in 0..(MAX_TRACKED as u32 + 500) {
            let ip = IpAddr::V4((0x0a00_0000 + i).into());
            let Verdict::Refused(r) = a.check(&headers("admin", "guess"), ip) else {
                panic!("a wrong password passed")
            };
            assert_eq!(r.status(), 401);
        }
        assert_eq!(a.failures.lock().unwrap().len(), MAX_TRACKED);
        // Once their window has passed, they make room for new addresses.
        for (_, since) in a.failures.lock().unwrap().values_mut() {
            *since -= WINDOW;
        }
        let late: IpAddr = "192.168.0.1".parse().unwrap();
        let _ = a.check(&headers("admin", "guess"), late);
        let failures = a.failures.lock().unwrap();
        assert_eq!((failures.len(), failures[&late].0), (1, 1));
    }

    #[test]
    fn comparison_is_exact() {
        assert!(same(b"abc", b"abc") && !same(b"abc", b"abd") && !same(b"abc", b"ab"));
    }
}
