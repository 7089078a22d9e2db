//! The validated stack: what a stack.yml describes once it has been read, substituted, parsed
//! and checked.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::wire::{FunctionDeployment, FunctionResources, FunctionSpec};

/// A line and column (both 1-based, columns in characters) in a source file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SourcePos {
    /// The line, from 1; 0 when the position is unknown.
    pub line: usize,
    /// The column in characters, from 1; 0 when the position is unknown.
    pub column: usize,
}

impl From<serde_saphyr::Location> for SourcePos {
    fn from(location: serde_saphyr::Location) -> Self {
        SourcePos {
            line: location.line() as usize,
            column: location.column() as usize,
        }
    }
}

/// A stack file (`stack.yaml`/`stack.yml`) after validation.
#[derive(Debug, Clone, PartialEq)]
pub struct Stack {
    /// The file it was read from.
    pub path: PathBuf,
    /// The `version` field, `1.0` when present.
    pub version: Option<String>,
    /// The `provider` section.
    pub provider: StackProvider,
    /// The functions, in file order.
    pub functions: Vec<StackFunction>,
    /// The `configuration` section.
    pub configuration: Configuration,
}

/// The `provider` section of a stack file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackProvider {
    /// Always `openfaas`.
    pub name: String,
    /// The gateway URL, as written.
    pub gateway: Option<String>,
}

/// The `configuration` section of a stack file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Configuration {
    /// Templates to pull before building.
    pub templates: Vec<TemplateSource>,
    /// Extra project paths copied into every function's build context.
    pub copy: Vec<String>,
}

/// One entry of `configuration.templates`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateSource {
    /// The template (language) name.
    pub name: String,
    /// Where to pull it from (a Git URL, `#ref` pins); none means the template store.
    pub source: Option<String>,
}

/// One entry of `functions`, validated and with its environment files merged in.
#[derive(Debug, Clone, PartialEq)]
pub struct StackFunction {
    /// The function's name (its key under `functions`).
    pub name: String,
    /// The template; `dockerfile` is never accepted. Empty only when `skip_build` is set.
    pub lang: String,
    /// The handler folder as written (relative to the stack file's folder); empty only when
    /// `skip_build` is set.
    pub handler: String,
    /// The image (bundle) reference, normalised (`:latest` added when no tag is given).
    pub image: String,
    /// The start command overriding the template's.
    pub fprocess: Option<String>,
    /// Environment variables: inline `environment` overridden by each `environment_file` in turn.
    pub environment: BTreeMap<String, String>,
    /// The environment files, as written.
    pub environment_file: Vec<String>,
    /// Names of secrets to mount.
    pub secrets: Vec<String>,
    /// Labels, including the `com.openfaas.scale.*` policy.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// Resource limits (`memory`, `cpu`).
    pub limits: Option<FunctionResources>,
    /// Resource requests (`memory`, `cpu`).
    pub requests: Option<FunctionResources>,
    /// Placement constraints.
    pub constraints: Vec<String>,
    /// Whether the root filesystem is read-only.
    pub readonly_root_filesystem: bool,
    /// The namespace to deploy to; none means the provider's default.
    pub namespace: Option<String>,
    /// Whether to skip building (the image already exists).
    pub skip_build: bool,
    /// Build arguments.
    pub build_args: BTreeMap<String, String>,
    /// Named package sets from the template's `build_options`.
    pub build_options: Vec<String>,
    /// Build secrets: id to file path.
    pub build_secrets: BTreeMap<String, String>,
    /// Target platforms for publishing, e.g. `linux/amd64,linux/arm64`.
    pub platforms: Option<String>,
    /// Where the function's key is in the stack file.
    pub position: SourcePos,
}

impl StackFunction {
    /// The body of `POST`/`PUT /system/functions` deploying this function with `env_process`
    /// (the YAML `fprocess`, or the template's when that is absent).
    pub fn deployment(&self, env_process: String) -> FunctionDeployment {
        let non_empty = |map: &BTreeMap<String, String>| (!map.is_empty()).then(|| map.clone());
        FunctionDeployment {
            service: self.name.clone(),
            spec: FunctionSpec {
                image: self.image.clone(),
                namespace: self.namespace.clone().unwrap_or_default(),
                env_process,
                env_vars: self.environment.clone(),
                constraints: self.constraints.clone(),
                secrets: self.secrets.clone(),
                labels: non_empty(&self.labels),
                annotations: non_empty(&self.annotations),
                limits: self.limits.clone(),
                requests: self.requests.clone(),
                read_only_root_filesystem: self.readonly_root_filesystem,
            },
        }
    }
}
