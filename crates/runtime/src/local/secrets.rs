//! Secrets at rest: one file per secret under `<data dir>/secrets/<namespace>/<name>`, each
//! ChaCha20-Poly1305-encrypted with a key kept in `<data dir>/secrets.key` (mode 0600, made on
//! first use). Values are decrypted only to hand them to the replicas that declare them.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;
use ironfaas_spec::names::{FunctionRef, validate_secret_name};
use ironfaas_spec::provider::ProviderError;
use ironfaas_spec::wire::Secret;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

/// Encrypted secrets of every namespace.
pub(crate) struct SecretStore {
    dir: PathBuf,
    key: LessSafeKey,
    random: SystemRandom,
}

fn failed(what: &str, path: &Path, e: impl std::fmt::Display) -> ProviderError {
    ProviderError::Failed(format!("cannot {what} {}: {e}", path.display()))
}

/// Reads the key, or makes one (32 random bytes, mode 0600).
fn load_key(path: &Path, random: &SystemRandom) -> Result<Vec<u8>, ProviderError> {
    if let Ok(key) = fs::read(path) {
        if key.len() == 32 {
            return Ok(key);
        }
        return Err(ProviderError::Failed(format!(
            "the secrets key {} is damaged ({} bytes, not 32); restore it from a backup — without it \
             the stored secrets cannot be read",
            path.display(),
            key.len()
        )));
    }
    let mut key = vec![0u8; 32];
    random
        .fill(&mut key)
        .map_err(|_| ProviderError::Failed("no randomness for the secrets key".into()))?;
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| failed("create", dir, e))?;
    }
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| failed("create the secrets key", path, e))?;
    file.write_all(&key)
        .and_then(|()| file.sync_all())
        .map_err(|e| failed("write", path, e))?;
    Ok(key)
}

impl SecretStore {
    /// The store under `data_dir`.
    pub fn open(data_dir: &Path) -> Result<SecretStore, ProviderError> {
        let random = SystemRandom::new();
        let key = load_key(&data_dir.join("secrets.key"), &random)?;
        let key = UnboundKey::new(&CHACHA20_POLY1305, &key)
            .map_err(|_| ProviderError::Failed("the secrets key is unusable".into()))?;
        Ok(SecretStore {
            dir: data_dir.join("secrets"),
            key: LessSafeKey::new(key),
            random,
        })
    }

    fn path(&self, name: &str, namespace: &str) -> Result<PathBuf, ProviderError> {
        validate_secret_name(name).map_err(ProviderError::Invalid)?;
        let ns = FunctionRef::new("x", namespace);
        ironfaas_spec::names::validate_name(&ns.namespace)
            .map_err(|e| ProviderError::Invalid(format!("namespace: {e}")))?;
        Ok(self.dir.join(&ns.namespace).join(name))
    }

    /// The value of `secret`: `value`, else `rawValue` decoded from base64.
    fn value_of(secret: &Secret) -> Result<Vec<u8>, ProviderError> {
        if !secret.value.is_empty() {
            return Ok(secret.value.as_bytes().to_vec());
        }
        base64::engine::general_purpose::STANDARD
            .decode(secret.raw_value.trim())
            .map_err(|e| {
                ProviderError::Invalid(format!(
                    "rawValue of secret {} is not base64: {e}",
                    secret.name
                ))
            })
    }

    fn write(&self, path: &Path, value: &[u8]) -> Result<(), ProviderError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .map_err(|_| ProviderError::Failed("no randomness for a nonce".into()))?;
        let mut sealed = value.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::empty(),
                &mut sealed,
            )
            .map_err(|_| ProviderError::Failed("cannot encrypt the secret".into()))?;
        let dir = path.parent().unwrap_or(&self.dir);
        fs::create_dir_all(dir).map_err(|e| failed("create", dir, e))?;
        fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| failed("protect", &self.dir, e))?;
        let tmp = path.with_extension("new");
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| failed("write", &tmp, e))?;
        file.write_all(&nonce)
            .and_then(|()| file.write_all(&sealed))
            .and_then(|()| file.sync_all())
            .map_err(|e| failed("write", &tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| failed("store", path, e))
    }

    /// Creates a secret; it must not exist.
    pub fn create(&self, secret: &Secret) -> Result<(), ProviderError> {
        let path = self.path(&secret.name, &secret.namespace)?;
        if path.exists() {
            return Err(ProviderError::Conflict(format!(
                "secret {} already exists; update it (ironfaas secret update) or remove it first",
                secret.name
            )));
        }
        self.write(&path, &Self::value_of(secret)?)
    }

    /// Replaces a secret's value; it must exist.
    pub fn update(&self, secret: &Secret) -> Result<(), ProviderError> {
        let path = self.path(&secret.name, &secret.namespace)?;
        if !path.exists() {
            return Err(ProviderError::Missing(format!(
                "secret {} not found",
                secret.name
            )));
        }
        self.write(&path, &Self::value_of(secret)?)
    }

    /// Deletes a secret; it must exist.
    pub fn delete(&self, name: &str, namespace: &str) -> Result<(), ProviderError> {
        let path = self.path(name, namespace)?;
        fs::remove_file(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                ProviderError::Missing(format!("secret {name} not found"))
            }
            _ => failed("delete", &path, e),
        })
    }

    /// The secrets of a namespace (names only), sorted.
    pub fn list(&self, namespace: &str) -> Result<Vec<Secret>, ProviderError> {
        let ns = FunctionRef::new("x", namespace).namespace;
        let mut names: Vec<String> = match fs::read_dir(self.dir.join(&ns)) {
            Ok(entries) => entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| validate_secret_name(n).is_ok() && !n.ends_with(".new"))
                .collect(),
            Err(_) => Vec::new(),
        };
        names.sort();
        Ok(names
            .into_iter()
            .map(|name| Secret {
                name,
                namespace: ns.clone(),
                ..Secret::default()
            })
            .collect())
    }

    /// Whether a secret exists.
    pub fn exists(&self, name: &str, namespace: &str) -> bool {
        self.path(name, namespace).is_ok_and(|p| p.is_file())
    }

    /// The decrypted value of a secret.
    pub fn read(&self, name: &str, namespace: &str) -> Result<Vec<u8>, ProviderError> {
        let path = self.path(name, namespace)?;
        let bytes = fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                ProviderError::Invalid(format!("unable to find secret: {name}"))
            }
            _ => failed("read", &path, e),
        })?;
        if bytes.len() < NONCE_LEN {
            return Err(ProviderError::Failed(format!(
                "secret {name} is damaged; set it again"
            )));
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| ProviderError::Failed("damaged nonce".into()))?;
        let mut sealed = sealed.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::empty(), &mut sealed)
            .map_err(|_| {
                ProviderError::Failed(format!(
                    "secret {name} cannot be decrypted with this data dir's key; set it again"
                ))
            })?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(name: &str, value: &str) -> Secret {
        Secret {
            name: name.into(),
            value: value.into(),
            ..Secret::default()
        }
    }

    #[test]
    fn create_read_update_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = SecretStore::open(dir.path()).unwrap();
        store.create(&secret("db-password", "s3cret")).unwrap();
        assert!(matches!(
            store.create(&secret("db-password", "x")),
            Err(ProviderError::Conflict(_))
        ));
        assert_eq!(store.read("db-password", "").unwrap(), b"s3cret");
        store.update(&secret("db-password", "n3w")).unwrap();
        assert_eq!(store.read("db-password", "openfaas-fn").unwrap(), b"n3w");
        let raw = Secret {
            name: "bin".into(),
            raw_value: "AAEC".into(),
            ..Secret::default()
        };
        store.create(&raw).unwrap();
        assert_eq!(store.read("bin", "").unwrap(), vec![0, 1, 2]);
        let names: Vec<String> = store
            .list("")
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["bin", "db-password"]);
        store.delete("bin", "").unwrap();
        assert!(matches!(
            store.delete("bin", ""),
            Err(ProviderError::Missing(_))
        ));
        assert!(matches!(
            store.update(&secret("nope", "x")),
            Err(ProviderError::Missing(_))
        ));
    }

    #[test]
    fn values_are_encrypted_at_rest_and_the_key_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let store = SecretStore::open(dir.path()).unwrap();
        store
            .create(&secret("api-key", "very-visible-plaintext"))
            .unwrap();
        let on_disk = fs::read(dir.path().join("secrets/openfaas-fn/api-key")).unwrap();
        assert!(!on_disk.windows(8).any(|w| w == b"very-vis"));
        let mode = fs::metadata(dir.path().join("secrets.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        let reopened = SecretStore::open(dir.path()).unwrap();
        assert_eq!(
            reopened.read("api-key", "").unwrap(),
            b"very-visible-plaintext"
        );
    }

    #[test]
    fn bad_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = SecretStore::open(dir.path()).unwrap();
        for bad in ["../escape", "a/b", ".."] {
            assert!(
                matches!(
                    store.create(&secret(bad, "x")),
                    Err(ProviderError::Invalid(_))
                ),
                "{bad}"
            );
        }
        assert!(
            store
                .read("missing", "")
                .unwrap_err()
                .to_string()
                .contains("unable to find secret: missing")
        );
    }
}
