//! Why a store operation failed, and how object storage errors are told apart.

use std::error::Error as StdError;

use object_store::client::{HttpError, HttpErrorKind};

use crate::digest::Digest;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The image reference is not in the store.
    #[error(
        "image '{image}' is not in the function store at {location}; build it first with \
         `ironfaas build` (or `ironfaas up`) using the same data dir"
    )]
    NotFound {
        /// The image reference.
        image: String,
        /// The store's location.
        location: String,
    },
    /// A ref points at a bundle whose blob is not in the store.
    #[error(
        "bundle {digest} is not in the function store at {location} (was it garbage-collected?); \
         push the bundle again (`ironfaas build` or `ironfaas up` uploads it)"
    )]
    MissingBlob {
        /// The digest of the missing bundle.
        digest: Digest,
        /// The store's location.
        location: String,
    },
    /// A stored bundle's bytes do not match its digest.
    #[error(
        "bundle {expected} in the function store is corrupt (its content hashes to {actual}); \
         rebuild and push it again (a push replaces a corrupt copy)"
    )]
    Corrupt {
        /// The digest it is stored under.
        expected: Digest,
        /// The digest of what was read.
        actual: Digest,
    },
    /// Bytes offered to the store do not hash to the digest they were announced with.
    #[error(
        "{what} hashes to {actual} ({size} bytes), not to the expected {expected}: nothing was \
         stored; the data was truncated or changed on the way, or the digest is wrong: send it again"
    )]
    Mismatch {
        /// What was offered (the bundle file, or an upload).
        what: String,
        /// The digest it was announced with.
        expected: Digest,
        /// The digest of what arrived.
        actual: Digest,
        /// How many bytes arrived.
        size: u64,
    },
    /// An upload was larger than allowed.
    #[error(
        "upload of bundle {digest} is larger than the limit of {limit} bytes: nothing was stored; \
         make the bundle smaller or raise the upload limit"
    )]
    TooLarge {
        /// The digest the upload was announced with.
        digest: Digest,
        /// The limit in bytes.
        limit: u64,
    },
    /// The stream of an upload failed before its end.
    #[error(
        "upload of bundle {digest} broke off after {received} bytes ({message}): nothing was \
         stored; send it again"
    )]
    Interrupted {
        /// The digest the upload was announced with.
        digest: Digest,
        /// How many bytes arrived before the failure.
        received: u64,
        /// What the stream reported.
        message: String,
    },
    /// The S3 server refused the credentials.
    #[error(
        "S3 at {location} refused the credentials (access key '{access_key}'): {message}; check \
         AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the store's access key and secret key)"
    )]
    Credentials {
        /// The store's location.
        location: String,
        /// The access key that was refused.
        access_key: String,
        /// What the server said.
        message: String,
    },
    /// The credentials were accepted but may not do what was asked.
    #[error(
        "S3 at {location} denied access ({message}); give the access key s3:ListBucket, \
         s3:GetObject, s3:PutObject and s3:DeleteObject on the bucket and prefix"
    )]
    PermissionDenied {
        /// The store's location.
        location: String,
        /// What the server said.
        message: String,
    },
    /// The bucket does not exist.
    #[error(
        "bucket '{bucket}' does not exist at {endpoint}; create it (e.g. `mc mb ALIAS/{bucket}` \
         or `aws s3 mb s3://{bucket}`) or fix the bucket name in the store URL"
    )]
    BucketNotFound {
        /// The bucket name.
        bucket: String,
        /// The S3 endpoint.
        endpoint: String,
    },
    /// The S3 endpoint could not be reached.
    #[error(
        "cannot reach the S3 endpoint {endpoint} ({message}); check that the server is running \
         and that the endpoint (AWS_ENDPOINT_URL or the store's endpoint) is right"
    )]
    Unreachable {
        /// The S3 endpoint.
        endpoint: String,
        /// What failed.
        message: String,
    },
    /// The store's configuration is invalid.
    #[error("function store configuration: {0}")]
    Config(String),
    /// The backend failed.
    #[error("function store at {location}: {message}")]
    Backend {
        /// The store's location.
        location: String,
        /// What failed.
        message: String,
    },
}

/// What an error from the backend is about, for messages.
#[derive(Debug, Clone)]
pub(crate) struct ErrorContext {
    /// The store's location.
    pub location: String,
    /// For S3: the bucket, the endpoint and the access key.
    pub s3: Option<S3Context>,
}

/// The S3 side of [`ErrorContext`].
#[derive(Debug, Clone)]
pub(crate) struct S3Context {
    pub bucket: String,
    pub endpoint: String,
    pub access_key: String,
}

/// The error and every source below it, joined, without repeating nested messages.
pub(crate) fn chain_text(e: &(dyn StdError + 'static)) -> String {
    let mut text = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        let t = inner.to_string();
        if !text.contains(&t) {
            text.push_str(": ");
            text.push_str(&t);
        }
        cur = inner.source();
    }
    text
}

/// The S3 error code (`<Code>…</Code>`) in an error's text, if any.
fn s3_code(text: &str) -> Option<&str> {
    let start = text.find("<Code>")? + "<Code>".len();
    let len = text[start..].find("</Code>")?;
    Some(&text[start..start + len])
}

/// The S3 error message (`<Message>…</Message>`) in an error's text, if any.
fn s3_message(text: &str) -> Option<&str> {
    let start = text.find("<Message>")? + "<Message>".len();
    let len = text[start..].find("</Message>")?;
    Some(&text[start..start + len])
}

/// The innermost error below `e` (for a failed connection: what the OS said).
fn root_cause(e: &(dyn StdError + 'static)) -> String {
    let mut cur = e;
    while let Some(inner) = cur.source() {
        cur = inner;
    }
    cur.to_string()
}

fn is_connect_error(e: &(dyn StdError + 'static)) -> bool {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(inner) = cur {
        if let Some(http) = inner.downcast_ref::<HttpError>()
            && http.kind() == HttpErrorKind::Connect
        {
            return true;
        }
        cur = inner.source();
    }
    false
}

/// Whether `e` says the object is missing (and not the whole bucket).
pub(crate) fn is_missing_object(e: &object_store::Error) -> bool {
    matches!(e, object_store::Error::NotFound { .. })
        && s3_code(&chain_text(e)) != Some("NoSuchBucket")
}

impl ErrorContext {
    /// A [`StoreError`] for a backend failure, told apart by cause where the cause is known.
    pub(crate) fn error(&self, e: object_store::Error) -> StoreError {
        let text = chain_text(&e);
        let code = s3_code(&text);
        let short = || match (code, s3_message(&text)) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(code), None) => code.to_string(),
            _ => text.clone(),
        };
        if let Some(s3) = &self.s3 {
            match code {
                Some("NoSuchBucket") => {
                    return StoreError::BucketNotFound {
                        bucket: s3.bucket.clone(),
                        endpoint: s3.endpoint.clone(),
                    };
                }
                Some(
                    "InvalidAccessKeyId"
                    | "NotSignedUp"
                    | "SignatureDoesNotMatch"
                    | "InvalidToken"
                    | "ExpiredToken"
                    | "AuthorizationHeaderMalformed",
                ) => {
                    return StoreError::Credentials {
                        location: self.location.clone(),
                        access_key: s3.access_key.clone(),
                        message: short(),
                    };
                }
                _ => {}
            }
            match &e {
                object_store::Error::PermissionDenied { .. } => {
                    return StoreError::PermissionDenied {
                        location: self.location.clone(),
                        message: short(),
                    };
                }
                object_store::Error::Unauthenticated { .. } => {
                    return StoreError::Credentials {
                        location: self.location.clone(),
                        access_key: s3.access_key.clone(),
                        message: short(),
                    };
                }
                _ => {}
            }
            if is_connect_error(&e) {
                return StoreError::Unreachable {
                    endpoint: s3.endpoint.clone(),
                    message: root_cause(&e),
                };
            }
        }
        StoreError::Backend {
            location: self.location.clone(),
            message: text,
        }
    }

    /// A [`StoreError::Backend`] with a message of our own.
    pub(crate) fn other(&self, message: impl std::fmt::Display) -> StoreError {
        StoreError::Backend {
            location: self.location.clone(),
            message: message.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_s3_codes() {
        let body = "Server returned non-2xx status code: 403 Forbidden: <?xml version=\"1.0\"?>\
                    <Error><Code>InvalidAccessKeyId</Code><Message>no such key</Message></Error>";
        assert_eq!(s3_code(body), Some("InvalidAccessKeyId"));
        assert_eq!(s3_message(body), Some("no such key"));
        assert_eq!(s3_code("plain"), None);
    }
}
