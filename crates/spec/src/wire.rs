//! OpenFaaS REST API types with their exact JSON field names (compat §1.3).
//!
//! Empty fields are left out as the Go `omitempty` tags do, and `null` is read as empty, so
//! faas-cli, the OpenFaaS UI and other clients read and write these unchanged. ironfaas adds a
//! few fields of its own to [`FunctionStatus`] (`digest`, `instances`); clients ignore them.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

/// A string map as the API carries environment, labels and annotations.
pub type StringMap = BTreeMap<String, String>;

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

fn is_zero_f64(v: &f64) -> bool {
    *v == 0.0
}

/// Writes whole numbers without a fraction (`3`, not `3.0`), as Go's encoding/json does.
fn float_like_go<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.fract() == 0.0 && v.abs() < 9_007_199_254_740_992.0 {
        s.serialize_i64(*v as i64)
    } else {
        s.serialize_f64(*v)
    }
}

fn is_false(v: &bool) -> bool {
    !*v
}

/// CPU and memory (and GPU) quantities, as Kubernetes writes them (`128Mi`, `500m`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionResources {
    /// Memory, e.g. `128Mi`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub memory: String,
    /// CPU in cores or millicores, e.g. `500m`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cpu: String,
    /// NVIDIA GPUs.
    #[serde(
        rename = "nvidia.com/gpu",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub nvidia_gpu: String,
    /// AMD GPUs.
    #[serde(
        rename = "amd.com/gpu",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub amd_gpu: String,
    /// Intel GPUs.
    #[serde(
        rename = "intel.com/gpu",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub intel_gpu: String,
}

/// What a function is: the fields the deployment request and the status share.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionSpec {
    /// The image (bundle) reference in the function store.
    #[serde(default)]
    pub image: String,
    /// The namespace; empty means the provider's default.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub namespace: String,
    /// The start command; it overrides the template's `fprocess`.
    #[serde(
        rename = "envProcess",
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub env_process: String,
    /// Environment variables for the function.
    #[serde(
        rename = "envVars",
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub env_vars: StringMap,
    /// Placement constraints (Kubernetes node selectors); the local provider ignores them.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub constraints: Vec<String>,
    /// Names of secrets to mount.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub secrets: Vec<String>,
    /// Labels, including the `com.openfaas.scale.*` policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<StringMap>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<StringMap>,
    /// Resource limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<FunctionResources>,
    /// Resource requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<FunctionResources>,
    /// Whether the function's root filesystem is read-only (`/tmp` stays writable).
    #[serde(
        rename = "readOnlyRootFilesystem",
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "is_false"
    )]
    pub read_only_root_filesystem: bool,
}

impl FunctionSpec {
    /// The value of label `key`, if set.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.as_ref()?.get(key).map(String::as_str)
    }

    /// The value of annotation `key`, if set.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }
}

/// The body of `POST`/`PUT /system/functions`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionDeployment {
    /// The function's name.
    pub service: String,
    /// Everything else about it.
    #[serde(flatten)]
    pub spec: FunctionSpec,
}

/// CPU and memory in use, when the provider can measure them (`?usage=1`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionUsage {
    /// CPU in use, in cores.
    #[serde(default)]
    pub cpu: f64,
    /// Resident memory of all replicas, in bytes.
    #[serde(rename = "totalMemoryBytes", default)]
    pub total_memory_bytes: f64,
}

/// One running replica of a function (an ironfaas extension to [`FunctionStatus`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceStatus {
    /// The replica's name, unique within the provider (`echo-3`).
    pub name: String,
    /// The operating system process id of the replica, while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Where the replica listens: `tcp://127.0.0.1:PORT` or `unix:/path/to.sock`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub endpoint: String,
    /// `starting`, `ready`, `draining` or `backoff`.
    pub state: String,
    /// When the replica's process started (RFC 3339).
    #[serde(
        rename = "startedAt",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub started_at: String,
    /// How many times this replica slot was restarted after its process ended.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub restarts: u64,
    /// How its process last ended, e.g. `exit status: 1` or `killed: out of memory (limit
    /// 128Mi)` (ironfaas).
    #[serde(rename = "lastExit", default, skip_serializing_if = "String::is_empty")]
    pub last_exit: String,
    /// Requests in flight on this replica right now.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub inflight: u64,
}

/// The answer of `GET /system/function/{name}` and one element of `GET /system/functions`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionStatus {
    /// The function's name.
    pub name: String,
    /// What it is, as deployed.
    #[serde(flatten)]
    pub spec: FunctionSpec,
    /// Completed invocations counted by the gateway; absent when 0.
    #[serde(
        rename = "invocationCount",
        default,
        skip_serializing_if = "is_zero_f64",
        serialize_with = "float_like_go"
    )]
    pub invocation_count: f64,
    /// Desired replicas; absent when 0.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub replicas: u64,
    /// Ready replicas; absent when 0.
    #[serde(
        rename = "availableReplicas",
        default,
        skip_serializing_if = "is_zero_u64"
    )]
    pub available_replicas: u64,
    /// When the function was first deployed (RFC 3339); always present.
    #[serde(rename = "createdAt", default, serialize_with = "created_at_or_zero")]
    pub created_at: String,
    /// Resource usage, when asked for and measurable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<FunctionUsage>,
    /// The sha256 digest of the bundle the function runs (ironfaas).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub digest: String,
    /// Starts from zero replicas counted by the gateway (ironfaas).
    #[serde(rename = "coldStarts", default, skip_serializing_if = "is_zero_u64")]
    pub cold_starts: u64,
    /// When the function was last called, per the gateway (RFC 3339, ironfaas).
    #[serde(
        rename = "lastInvocation",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub last_invocation: String,
    /// The replicas and their state (ironfaas).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub instances: Vec<InstanceStatus>,
}

/// The time OpenFaaS reports when a function has no creation time.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn created_at_or_zero<S: serde::Serializer>(value: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(if value.is_empty() { ZERO_TIME } else { value })
}

/// One line of a function's output: one line of `GET /system/logs` (NDJSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// The function's name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// The replica that wrote it.
    pub instance: String,
    /// When it was written (RFC 3339 with nanoseconds).
    pub timestamp: String,
    /// The line, without its newline.
    pub text: String,
}

/// A secret (`/system/secrets`). Lists carry only `name` and `namespace`; values are never
/// returned. `rawValue` (base64 bytes) is used when `value` is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secret {
    /// The secret's name; a function lists it in `secrets` to get it as a file.
    pub name: String,
    /// Its namespace; empty means the default.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub namespace: String,
    /// The value as text.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub value: String,
    /// The value as base64 bytes, when `value` is empty.
    #[serde(
        rename = "rawValue",
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub raw_value: String,
}

/// The body of `DELETE /system/functions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteFunctionRequest {
    /// The function to remove.
    #[serde(rename = "functionName")]
    pub function_name: String,
    /// Its namespace; empty means the default (may also come from `?namespace=`).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub namespace: String,
}

/// The body of `POST /system/scale-function/{name}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScaleServiceRequest {
    /// The function to scale.
    #[serde(rename = "serviceName", default)]
    pub service_name: String,
    /// The desired number of replicas.
    pub replicas: u64,
    /// Its namespace; empty means the default.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub namespace: String,
}

/// A component's version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// The git commit it was built from, when known.
    #[serde(default)]
    pub sha: String,
    /// The release number.
    #[serde(default)]
    pub release: String,
    /// The commit message, when known.
    #[serde(default)]
    pub commit_message: String,
}

/// What a provider says about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderInfo {
    /// The provider's name, e.g. `ironfaas-local`.
    pub provider: String,
    /// What runs the functions, e.g. `process`.
    pub orchestration: String,
    /// The provider's version.
    pub version: VersionInfo,
}

/// The answer of `GET /system/info`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayInfo {
    /// The provider behind the gateway.
    pub provider: ProviderInfo,
    /// The gateway's version.
    pub version: VersionInfo,
    /// The machine architecture, e.g. `x86_64`.
    pub arch: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deployment_reads_faas_cli_json() {
        let body = json!({
            "service": "env", "image": "ghcr.io/openfaas/alpine:latest", "namespace": "openfaas-fn",
            "envProcess": "env", "envVars": {"a": "b"}, "constraints": null, "secrets": [],
            "labels": {"com.openfaas.scale.min": "2"}, "annotations": null,
            "limits": {"memory": "128Mi"}, "requests": null, "readOnlyRootFilesystem": true,
            "registryAuth": "", "network": ""
        });
        let d: FunctionDeployment = serde_json::from_value(body).unwrap();
        assert_eq!(d.service, "env");
        assert_eq!(d.spec.env_process, "env");
        assert_eq!(d.spec.env_vars["a"], "b");
        assert!(d.spec.constraints.is_empty());
        assert_eq!(d.spec.label("com.openfaas.scale.min"), Some("2"));
        assert_eq!(d.spec.limits.as_ref().unwrap().memory, "128Mi");
        assert!(d.spec.read_only_root_filesystem);
        // Written back, it has the same names (and leaves out what ironfaas ignores).
        let again = serde_json::to_value(&d).unwrap();
        assert_eq!(again["envProcess"], "env");
        assert_eq!(again["readOnlyRootFilesystem"], true);
        assert!(again.get("registryAuth").is_none() && again.get("annotations").is_none());
    }

    #[test]
    fn status_omits_zero_fields_but_keeps_created_at() {
        let s = FunctionStatus {
            name: "env".into(),
            spec: FunctionSpec {
                image: "i".into(),
                ..Default::default()
            },
            ..Default::default()
        };
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(
            v,
            json!({"name": "env", "image": "i", "createdAt": "0001-01-01T00:00:00Z"})
        );
        let s = FunctionStatus {
            replicas: 2,
            available_replicas: 1,
            invocation_count: 3.0,
            ..s
        };
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(serde_json::to_string(&v["invocationCount"]).unwrap(), "3");
        assert_eq!(v["replicas"], 2);
        assert_eq!(v["availableReplicas"], 1);
    }

    #[test]
    fn wire_names_are_exact() {
        let d = DeleteFunctionRequest {
            function_name: "f".into(),
            namespace: String::new(),
        };
        assert_eq!(
            serde_json::to_value(&d).unwrap(),
            json!({"functionName": "f"})
        );
        let s: ScaleServiceRequest =
            serde_json::from_value(json!({"serviceName": "f", "replicas": 3})).unwrap();
        assert_eq!((s.service_name.as_str(), s.replicas), ("f", 3));
        let r = FunctionResources {
            nvidia_gpu: "1".into(),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"nvidia.com/gpu": "1"})
        );
    }
}
