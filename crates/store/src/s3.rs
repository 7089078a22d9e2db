//! The S3 (and MinIO) backend of the function store, and store locations as URLs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{ClientOptions, ObjectStore, RetryConfig};

use crate::error::{ErrorContext, S3Context, StoreError};
use crate::store::{FunctionStore, UploadTuning};

/// The smallest part S3 accepts in a multipart upload (all parts but the last).
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;

/// The region used when none is given (what MinIO expects by default).
pub const DEFAULT_REGION: &str = "us-east-1";

/// How to reach a function store in an S3 bucket (AWS S3, MinIO or another S3 server).
#[derive(Clone)]
pub struct S3Config {
    /// The bucket (must exist).
    pub bucket: String,
    /// The key prefix the store lives under (`""` for the bucket's root).
    pub prefix: String,
    /// The endpoint URL, e.g. `http://127.0.0.1:9000` for a local MinIO; `None` for AWS.
    pub endpoint: Option<String>,
    /// The region; [`DEFAULT_REGION`] when `None`.
    pub region: Option<String>,
    /// The access key id.
    pub access_key_id: Option<String>,
    /// The secret access key.
    pub secret_access_key: Option<String>,
    /// A session token, for temporary credentials.
    pub session_token: Option<String>,
    /// Whether a plain `http://` endpoint is allowed (a local MinIO); off by default.
    pub allow_http: bool,
    /// Virtual-hosted-style requests (`BUCKET.host`) instead of path-style (`host/BUCKET`, the
    /// default, which MinIO needs).
    pub virtual_hosted_style: bool,
    /// Bundles larger than this are uploaded in parts of this size (at least [`MIN_PART_SIZE`]).
    pub part_size: usize,
    /// How many parts are uploaded at once; memory per upload is about
    /// `(upload_concurrency + 1) * part_size`.
    pub upload_concurrency: usize,
    /// How long to wait for a connection.
    pub connect_timeout: Duration,
    /// How long one request (e.g. one part) may take.
    pub timeout: Duration,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .field("allow_http", &self.allow_http)
            .field("virtual_hosted_style", &self.virtual_hosted_style)
            .field("part_size", &self.part_size)
            .field("upload_concurrency", &self.upload_concurrency)
            .finish_non_exhaustive()
    }
}

fn truthy(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on"
    )
}

impl S3Config {
    /// A configuration for `bucket` with the defaults: no prefix, AWS endpoint, no
    /// credentials yet (see [`S3Config::with_env`] and [`S3Config::with_credentials`]).
    pub fn new(bucket: impl Into<String>) -> S3Config {
        S3Config {
            bucket: bucket.into(),
            prefix: String::new(),
            endpoint: None,
            region: None,
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
            allow_http: false,
            virtual_hosted_style: false,
            part_size: 8 * 1024 * 1024,
            upload_concurrency: 2,
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(300),
        }
    }

    /// Parses `s3://BUCKET[/PREFIX][?endpoint=URL&region=R&allow_http=true&virtual_hosted_style=true]`.
    /// Credentials are never taken from a URL: use the environment or the fields.
    pub fn from_url(url: &str) -> Result<S3Config, StoreError> {
        let bad = |why: &str| {
            StoreError::Config(format!(
                "'{url}' is not an S3 store URL ({why}); write s3://BUCKET/PREFIX, optionally \
                 followed by ?endpoint=URL&region=REGION&allow_http=true"
            ))
        };
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| bad("it does not start with s3://"))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
        if bucket.is_empty() {
            return Err(bad("the bucket name is missing"));
        }
        let mut config = S3Config::new(bucket).with_prefix(prefix);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, "true"));
            match key {
                "endpoint" => config.endpoint = Some(value.to_string()),
                "region" => config.region = Some(value.to_string()),
                "allow_http" => config.allow_http = truthy(value),
                "virtual_hosted_style" => config.virtual_hosted_style = truthy(value),
                "access_key_id" | "secret_access_key" | "session_token" => {
                    return Err(bad(&format!(
                        "{key} must not be in a URL, where it would leak into logs; set \
                         AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY instead"
                    )));
                }
                other => {
                    return Err(bad(&format!(
                        "unknown option '{other}'; known: endpoint, region, allow_http, \
                         virtual_hosted_style"
                    )));
                }
            }
        }
        Ok(config)
    }

    /// Under the key prefix `prefix`.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> S3Config {
        self.prefix = prefix.into();
        self
    }

    /// At the endpoint `endpoint` (e.g. `http://127.0.0.1:9000`).
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> S3Config {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// With the access key `access_key_id` and its secret.
    pub fn with_credentials(
        mut self,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
    ) -> S3Config {
        self.access_key_id = Some(access_key_id.into());
        self.secret_access_key = Some(secret_access_key.into());
        self
    }

    /// Fills what is not set yet from the process environment: `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` (else `AWS_DEFAULT_REGION`),
    /// `AWS_ENDPOINT_URL_S3` (else `AWS_ENDPOINT_URL`), `AWS_ALLOW_HTTP`,
    /// `AWS_VIRTUAL_HOSTED_STYLE_REQUEST`.
    pub fn with_env(self) -> S3Config {
        self.with_env_from(|name| std::env::var(name).ok())
    }

    /// [`S3Config::with_env`] with variables read through `lookup`.
    pub fn with_env_from(mut self, lookup: impl Fn(&str) -> Option<String>) -> S3Config {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let credentials_unset = self.access_key_id.is_none() && self.secret_access_key.is_none();
        if credentials_unset {
            self.access_key_id = get("AWS_ACCESS_KEY_ID");
            self.secret_access_key = get("AWS_SECRET_ACCESS_KEY");
            if self.session_token.is_none() {
                self.session_token = get("AWS_SESSION_TOKEN");
            }
        }
        if self.region.is_none() {
            self.region = get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION"));
        }
        if self.endpoint.is_none() {
            self.endpoint = get("AWS_ENDPOINT_URL_S3").or_else(|| get("AWS_ENDPOINT_URL"));
        }
        if !self.allow_http {
            self.allow_http = get("AWS_ALLOW_HTTP").is_some_and(|v| truthy(&v));
        }
        if !self.virtual_hosted_style {
            self.virtual_hosted_style =
                get("AWS_VIRTUAL_HOSTED_STYLE_REQUEST").is_some_and(|v| truthy(&v));
        }
        self
    }

    /// The endpoint for messages.
    fn endpoint_text(&self) -> String {
        match &self.endpoint {
            Some(endpoint) => endpoint.clone(),
            None => format!(
                "AWS S3 ({})",
                self.region.as_deref().unwrap_or(DEFAULT_REGION)
            ),
        }
    }

    /// The store's location for messages: `s3://bucket/prefix at endpoint`.
    fn location(&self) -> String {
        let prefix = self.prefix.trim_matches('/');
        let path = if prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{prefix}", self.bucket)
        };
        format!("{path} at {}", self.endpoint_text())
    }

    fn validate(&self) -> Result<(), StoreError> {
        let config = |m: String| Err(StoreError::Config(m));
        let bucket_ok = (3..=63).contains(&self.bucket.len())
            && self
                .bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !bucket_ok {
            return config(format!(
                "'{}' is not a valid bucket name: use 3 to 63 lower-case letters, digits, '-' \
                 and '.'",
                self.bucket
            ));
        }
        if let Err(e) = ObjectPath::parse(self.prefix.trim_matches('/')) {
            return config(format!(
                "'{}' is not a valid key prefix ({e}); use path segments like 'ironfaas/store'",
                self.prefix
            ));
        }
        match (&self.access_key_id, &self.secret_access_key) {
            (Some(_), Some(_)) => {}
            (None, None) => {
                return config(format!(
                    "no S3 credentials for {}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
                     (or the store's access key and secret key)",
                    self.location()
                ));
            }
            (Some(_), None) => {
                return config(
                    "an S3 access key without its secret: set AWS_SECRET_ACCESS_KEY too".into(),
                );
            }
            (None, Some(_)) => {
                return config(
                    "an S3 secret key without its access key: set AWS_ACCESS_KEY_ID too".into(),
                );
            }
        }
        if let Some(endpoint) = &self.endpoint {
            if endpoint.starts_with("http://") {
                if !self.allow_http {
                    return config(format!(
                        "the S3 endpoint {endpoint} is plain HTTP, which is refused unless \
                         allowed: for a local MinIO set AWS_ALLOW_HTTP=true (or allow_http=true \
                         in the store URL or config), otherwise use https://"
                    ));
                }
            } else if !endpoint.starts_with("https://") {
                return config(format!(
                    "the S3 endpoint '{endpoint}' is not a URL: write http://HOST:PORT or \
                     https://HOST"
                ));
            }
        }
        if self.part_size < MIN_PART_SIZE {
            return config(format!(
                "part size {} is below S3's minimum of {MIN_PART_SIZE} bytes",
                self.part_size
            ));
        }
        if self.upload_concurrency == 0 {
            return config("upload concurrency must be at least 1".into());
        }
        Ok(())
    }
}

/// Where a function store is.
#[derive(Debug, Clone)]
pub enum StoreLocation {
    /// A local directory.
    Local(PathBuf),
    /// An S3 bucket.
    S3(S3Config),
}

impl StoreLocation {
    /// Parses a directory path, `file:///dir` or `s3://BUCKET/PREFIX[?…]` (see
    /// [`S3Config::from_url`]); nothing is read from the environment here.
    pub fn parse(location: &str) -> Result<StoreLocation, StoreError> {
        if location.starts_with("s3://") {
            return S3Config::from_url(location).map(StoreLocation::S3);
        }
        if let Some(path) = location.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(StoreError::Config(format!(
                    "'{location}' is not a file URL with an absolute path; write file:///DIR \
                     (three slashes) or a plain path"
                )));
            }
            return Ok(StoreLocation::Local(PathBuf::from(path)));
        }
        if let Some((scheme, _)) = location.split_once("://") {
            return Err(StoreError::Config(format!(
                "store location '{location}' has the unsupported scheme '{scheme}'; use a \
                 directory, file:///DIR or s3://BUCKET/PREFIX"
            )));
        }
        if location.is_empty() {
            return Err(StoreError::Config(
                "the store location is empty; use a directory, file:///DIR or \
                 s3://BUCKET/PREFIX"
                    .into(),
            ));
        }
        Ok(StoreLocation::Local(PathBuf::from(location)))
    }
}

/// Opens and checks the S3 store of `config`.
pub(crate) async fn open(config: S3Config) -> Result<FunctionStore, StoreError> {
    config.validate()?;
    let location = config.location();
    let access_key = config.access_key_id.clone().unwrap_or_default();
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(&config.bucket)
        .with_region(config.region.as_deref().unwrap_or(DEFAULT_REGION))
        .with_access_key_id(&access_key)
        .with_secret_access_key(config.secret_access_key.as_deref().unwrap_or_default())
        .with_allow_http(config.allow_http)
        .with_virtual_hosted_style_request(config.virtual_hosted_style)
        .with_client_options(
            ClientOptions::new()
                .with_allow_http(config.allow_http)
                .with_connect_timeout(config.connect_timeout)
                .with_timeout(config.timeout),
        )
        .with_retry(RetryConfig {
            max_retries: 3,
            retry_timeout: Duration::from_secs(30),
            ..RetryConfig::default()
        });
    if let Some(endpoint) = &config.endpoint {
        builder = builder.with_endpoint(endpoint.trim_end_matches('/'));
    }
    if let Some(token) = &config.session_token {
        builder = builder.with_token(token);
    }
    let ctx = ErrorContext {
        location: location.clone(),
        s3: Some(S3Context {
            bucket: config.bucket.clone(),
            endpoint: config.endpoint_text(),
            access_key,
        }),
    };
    let s3 = builder.build().map_err(|e| {
        StoreError::Config(format!(
            "cannot set up the S3 client for {location}: {}",
            crate::error::chain_text(&e)
        ))
    })?;
    let prefix = config.prefix.trim_matches('/');
    let inner: Arc<dyn ObjectStore> = if prefix.is_empty() {
        Arc::new(s3)
    } else {
        Arc::new(PrefixStore::new(s3, prefix))
    };
    // One cheap request proves the endpoint, the credentials and the bucket.
    inner
        .list_with_delimiter(None)
        .await
        .map_err(|e| ctx.error(e))?;
    Ok(FunctionStore {
        inner,
        ctx,
        tuning: UploadTuning {
            part_size: config.part_size,
            concurrency: config.upload_concurrency,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let c = S3Config::from_url(
            "s3://fns/team/store?endpoint=http://127.0.0.1:9000&region=eu-1&allow_http=true",
        )
        .unwrap();
        assert_eq!(c.bucket, "fns");
        assert_eq!(c.prefix, "team/store");
        assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(c.region.as_deref(), Some("eu-1"));
        assert!(c.allow_http);
        let c = S3Config::from_url("s3://fns").unwrap();
        assert_eq!((c.bucket.as_str(), c.prefix.as_str()), ("fns", ""));
        for bad in [
            "s3://",
            "s3:///x",
            "s3://b/p?secret_access_key=x",
            "s3://b?colour=red",
        ] {
            let err = S3Config::from_url(bad).unwrap_err();
            assert!(err.to_string().contains("s3://BUCKET/PREFIX"), "{err}");
        }
    }

    #[test]
    fn parses_locations() {
        assert!(matches!(
            StoreLocation::parse("/var/lib/x").unwrap(),
            StoreLocation::Local(p) if p == std::path::Path::new("/var/lib/x")
        ));
        assert!(matches!(
            StoreLocation::parse("file:///srv/store").unwrap(),
            StoreLocation::Local(p) if p == std::path::Path::new("/srv/store")
        ));
        assert!(matches!(
            StoreLocation::parse("s3://b/p").unwrap(),
            StoreLocation::S3(c) if c.bucket == "b"
        ));
        for bad in ["file://relative", "gs://b/p", ""] {
            assert!(
                matches!(StoreLocation::parse(bad), Err(StoreError::Config(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn env_fills_only_what_is_unset() {
        let env = |name: &str| {
            Some(
                match name {
                    "AWS_ACCESS_KEY_ID" => "env-key",
                    "AWS_SECRET_ACCESS_KEY" => "env-secret",
                    "AWS_DEFAULT_REGION" => "eu-west-3",
                    "AWS_ENDPOINT_URL" => "http://minio:9000",
                    "AWS_ALLOW_HTTP" => "true",
                    _ => return None,
                }
                .to_string(),
            )
        };
        let c = S3Config::new("b").with_env_from(env);
        assert_eq!(c.access_key_id.as_deref(), Some("env-key"));
        assert_eq!(c.secret_access_key.as_deref(), Some("env-secret"));
        assert_eq!(c.region.as_deref(), Some("eu-west-3"));
        assert_eq!(c.endpoint.as_deref(), Some("http://minio:9000"));
        assert!(c.allow_http);
        let c = S3Config::new("b")
            .with_credentials("mine", "my-secret")
            .with_endpoint("https://s3.example")
            .with_env_from(env);
        assert_eq!(c.access_key_id.as_deref(), Some("mine"));
        assert_eq!(c.secret_access_key.as_deref(), Some("my-secret"));
        assert_eq!(c.endpoint.as_deref(), Some("https://s3.example"));
        assert!(!format!("{c:?}").contains("my-secret"));
    }

    #[tokio::test]
    async fn configuration_errors_say_how_to_fix() {
        let base = || {
            S3Config::new("fns")
                .with_credentials("k", "s")
                .with_endpoint("http://127.0.0.1:1")
        };
        let cases: Vec<(S3Config, &str)> = vec![
            (base(), "AWS_ALLOW_HTTP=true"),
            (
                S3Config {
                    allow_http: true,
                    access_key_id: None,
                    secret_access_key: None,
                    ..base()
                },
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
            ),
            (
                S3Config {
                    bucket: "Bad_Bucket".into(),
                    ..base()
                },
                "not a valid bucket name",
            ),
            (base().with_endpoint("minio:9000"), "http://HOST:PORT"),
            (
                S3Config {
                    allow_http: true,
                    part_size: 1024,
                    ..base()
                },
                "minimum",
            ),
        ];
        for (config, want) in cases {
            let err = FunctionStore::s3(config).await.unwrap_err();
            assert!(matches!(err, StoreError::Config(_)), "{err}");
            assert!(err.to_string().contains(want), "{err} lacks {want}");
        }
    }
}
