//! The manifest inside every bundle: which template built it and how to start it.

use std::collections::BTreeMap;
use std::path::Path;

use ironfaas_spec::template::{Listen, Mode};
use serde::{Deserialize, Serialize};

/// The manifest's file name at the bundle root.
pub const MANIFEST_FILE: &str = "ironfaas-bundle.json";

/// The manifest format this build writes and reads.
pub const FORMAT: u32 = 1;

/// What the runtime needs to know to start a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The manifest format version.
    pub format: u32,
    /// The function it was built for.
    pub function: String,
    /// The template (`lang`) it was built from.
    pub template: String,
    /// How the process serves requests.
    pub mode: Mode,
    /// Where an HTTP-mode process listens.
    pub listen: Listen,
    /// The start command, run from the bundle root.
    pub fprocess: String,
    /// The template's default environment.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// When the bundle was built (RFC 3339).
    #[serde(default)]
    pub built_at: String,
    /// The template's runtime honours `IRONFAAS_START_FD` (see the template's `start_fd`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub start_fd: bool,
}

/// Why a manifest could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file is missing or unreadable.
    #[error(
        "cannot read the bundle manifest {path}: {source}; rebuild the function with `ironfaas build`"
    )]
    Read {
        /// The manifest path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a valid manifest.
    #[error(
        "the bundle manifest {path} is invalid: {message}; rebuild the function with `ironfaas build`"
    )]
    Invalid {
        /// The manifest path.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl Manifest {
    /// Writes the manifest into `dir` (a bundle's root, before packing).
    pub fn write_to(&self, dir: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(dir.join(MANIFEST_FILE), json)
    }

    /// Reads the manifest of an unpacked bundle at `dir`.
    pub fn read_from(dir: &Path) -> Result<Manifest, ManifestError> {
        let path = dir.join(MANIFEST_FILE);
        let shown = path.display().to_string();
        let bytes = std::fs::read(&path).map_err(|source| ManifestError::Read {
            path: shown.clone(),
            source,
        })?;
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|e| ManifestError::Invalid {
                path: shown.clone(),
                message: e.to_string(),
            })?;
        if manifest.format != FORMAT {
            return Err(ManifestError::Invalid {
                path: shown,
                message: format!(
                    "format {} is not supported by this ironfaas (which reads format {FORMAT})",
                    manifest.format
                ),
            });
        }
        Ok(manifest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_format_check() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Manifest {
            format: FORMAT,
            function: "f".into(),
            template: "python3-http".into(),
            mode: Mode::Http,
            listen: Listen::Unix,
            fprocess: "python3 index.py".into(),
            environment: BTreeMap::new(),
            built_at: String::new(),
            start_fd: true,
        };
        m.write_to(dir.path()).unwrap();
        assert_eq!(Manifest::read_from(dir.path()).unwrap(), m);
        m.format = 99;
        m.write_to(dir.path()).unwrap();
        let err = Manifest::read_from(dir.path()).unwrap_err().to_string();
        assert!(err.contains("format 99 is not supported"), "{err}");
    }

    #[test]
    fn missing_manifest_says_rebuild() {
        let dir = tempfile::tempdir().unwrap();
        let err = Manifest::read_from(dir.path()).unwrap_err().to_string();
        assert!(err.contains("ironfaas build"), "{err}");
    }
}
