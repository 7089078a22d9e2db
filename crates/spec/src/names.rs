//! Name rules: function and namespace names, `name.namespace` references, image references.

use std::fmt;

/// The namespace functions live in when none is given (OpenFaaS' default).
pub const DEFAULT_NAMESPACE: &str = "openfaas-fn";

/// The longest name a function or namespace may have (a DNS-1123 label).
pub const MAX_NAME_LEN: usize = 63;

/// Why a function or namespace name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is empty.
    #[error("the name is empty; use lower-case letters, digits and '-', e.g. 'resize-image'")]
    Empty,
    /// The name is longer than 63 characters.
    #[error("'{0}' is {len} characters long; names may have at most 63", len = .0.len())]
    TooLong(String),
    /// The name has a character outside `a-z0-9-` or starts/ends with `-`.
    #[error(
        "'{0}' is not a valid name: use lower-case letters, digits and '-', starting and ending \
         with a letter or digit (a DNS label, e.g. 'resize-image')"
    )]
    Invalid(String),
}

/// Checks that `name` is a DNS-1123 label: `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`, at most 63 long.
pub fn validate_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong(name.to_string()));
    }
    let bytes = name.as_bytes();
    let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-';
    if !bytes.iter().all(|&b| allowed(b)) || bytes[0] == b'-' || bytes[bytes.len() - 1] == b'-' {
        return Err(NameError::Invalid(name.to_string()));
    }
    Ok(())
}

/// Checks a secret name: letters, digits, `-`, `_` and `.`, at most 253 long, not `.`/`..`
/// (it becomes a file name under `/var/openfaas/secrets/`).
pub fn validate_secret_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{name}' is not a valid secret name: use letters, digits, '-', '_' and '.' (no '/' or '..'), e.g. db-password"
        ))
    }
}

/// A function identified by name and namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FunctionRef {
    /// The function's name.
    pub name: String,
    /// The function's namespace.
    pub namespace: String,
}

impl FunctionRef {
    /// A reference to `name` in `namespace`, or in the default namespace when it is empty.
    pub fn new(name: impl Into<String>, namespace: impl Into<String>) -> Self {
        let namespace = namespace.into();
        FunctionRef {
            name: name.into(),
            namespace: if namespace.is_empty() {
                DEFAULT_NAMESPACE.to_string()
            } else {
                namespace
            },
        }
    }

    /// Parses the wire form `name` or `name.namespace` (the namespace is after the last `.`).
    pub fn parse(id: &str) -> Self {
        match id.rsplit_once('.') {
            Some((name, ns)) => FunctionRef::new(name, ns),
            None => FunctionRef::new(id, ""),
        }
    }

    /// Checks both the name and the namespace against the name rules.
    pub fn validate(&self) -> Result<(), NameError> {
        validate_name(&self.name)?;
        validate_name(&self.namespace)
    }
}

impl fmt::Display for FunctionRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.name, self.namespace)
    }
}

/// Why an image reference was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{0}' is not a valid image reference: use [registry/]repository[:tag], e.g. \
     'registry.example.no/team/resize:1.2' (letters, digits and . _ - / : only, at most \
     {max} characters with the tag)",
    max = MAX_IMAGE_LEN
)]
pub struct ImageRefError(pub String);

/// The longest image reference, its tag included.
pub const MAX_IMAGE_LEN: usize = 255;

/// Normalises an image reference: trims it, checks its characters and appends `:latest`
/// when it carries no tag (as faas-cli does). A `@sha256:...` digest reference is kept as is.
/// The result is at most [`MAX_IMAGE_LEN`] long, so normalising it again gives it back.
pub fn normalize_image(image: &str) -> Result<String, ImageRefError> {
    let image = image.trim();
    let ok = !image.is_empty()
        && !image.starts_with(['/', ':', '.', '-'])
        && !image.ends_with(['/', ':'])
        && !image.contains("//")
        && !image.contains("..")
        && image
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/:@".contains(&b));
    if !ok {
        return Err(ImageRefError(image.to_string()));
    }
    if image.contains('@') {
        return Ok(image.to_string());
    }
    let last_segment = image.rsplit('/').next().unwrap_or(image);
    let normalized = if last_segment.contains(':') {
        image.to_string()
    } else {
        format!("{image}:latest")
    };
    if normalized.len() > MAX_IMAGE_LEN {
        return Err(ImageRefError(image.to_string()));
    }
    Ok(normalized)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_dns_labels() {
        for ok in ["a", "hello", "resize-image", "f1", "0abc", &"a".repeat(63)] {
            assert_eq!(validate_name(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn refuses_bad_names() {
        assert_eq!(validate_name(""), Err(NameError::Empty));
        assert!(matches!(
            validate_name(&"a".repeat(64)),
            Err(NameError::TooLong(_))
        ));
        for bad in ["Hello", "-a", "a-", "a_b", "a.b", "a b", "ä"] {
            assert!(
                matches!(validate_name(bad), Err(NameError::Invalid(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn secret_names() {
        assert!(
            validate_secret_name("db-password").is_ok() && validate_secret_name("a.b_c").is_ok()
        );
        for bad in ["", ".", "..", "a/b", "../x", "a b"] {
            assert!(validate_secret_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_name_dot_namespace() {
        assert_eq!(
            FunctionRef::parse("echo"),
            FunctionRef::new("echo", DEFAULT_NAMESPACE)
        );
        assert_eq!(
            FunctionRef::parse("echo.team"),
            FunctionRef::new("echo", "team")
        );
        assert_eq!(FunctionRef::parse("a.b.c"), FunctionRef::new("a.b", "c"));
        assert_eq!(FunctionRef::parse("echo").to_string(), "echo.openfaas-fn");
    }

    #[test]
    fn normalized_images_fit_the_length_limit() {
        // 250 characters passed the limit, then ':latest' took the result past it, so the
        // normalised image was refused when read back (found by the api_json fuzz target).
        let long = "r".repeat(250);
        assert!(normalize_image(&long).is_err(), "{long}:latest is 257 long");
        let fits = "r".repeat(MAX_IMAGE_LEN - ":latest".len());
        let normalized = normalize_image(&fits).expect("fits with its tag");
        assert_eq!(normalized.len(), MAX_IMAGE_LEN);
        assert_eq!(normalize_image(&normalized), Ok(normalized.clone()));
        let tagged = format!("{}:1", "r".repeat(MAX_IMAGE_LEN - 2));
        assert_eq!(normalize_image(&tagged), Ok(tagged.clone()));
        let err = normalize_image(&format!("{tagged}0")).expect_err("256 long");
        assert!(err.to_string().contains("at most 255 characters"), "{err}");
    }

    #[test]
    fn normalizes_images() {
        assert_eq!(normalize_image("fn").as_deref(), Ok("fn:latest"));
        assert_eq!(normalize_image("fn:1.2").as_deref(), Ok("fn:1.2"));
        assert_eq!(
            normalize_image("reg:5000/team/fn").as_deref(),
            Ok("reg:5000/team/fn:latest")
        );
        assert_eq!(
            normalize_image(" reg.no/fn:v2 ").as_deref(),
            Ok("reg.no/fn:v2")
        );
        for bad in ["", "a b", "../x", "/abs", "x/", "a//b", "x:"] {
            assert!(normalize_image(bad).is_err(), "{bad}");
        }
    }
}
