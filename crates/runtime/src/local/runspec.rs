//! From a deployment and its bundle to exactly what a replica runs: program, arguments,
//! environment, working directory, where it listens, and the limits the gateway applies.

use std::path::Path;
use std::time::Duration;

use ironfaas_spec::duration::{format_duration, parse_duration};
use ironfaas_spec::provider::InvokeLimits;
use ironfaas_spec::template::{Listen, Mode};
use ironfaas_spec::wire::FunctionDeployment;
use ironfaas_store::manifest::Manifest;

use super::LocalConfig;
use super::command::Resolver;
use crate::sandbox::{Limits, NETWORK_ANNOTATION, wants_network};
use ironfaas_spec::names::FunctionRef;

/// The annotation naming the readiness path (OpenFaaS' name).
pub(crate) const READY_PATH_ANNOTATION: &str = "com.openfaas.ready.http.path";
/// The annotation setting a replica's process limit (the pids cgroup).
pub(crate) const PIDS_ANNOTATION: &str = "com.ironfaas.pids";
/// The readiness path when none is set; every ironfaas template answers it.
const DEFAULT_READY_PATH: &str = "/_/health";
/// Variables passed on from the platform's own environment.
const INHERITED: &[&str] = &["PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ"];

/// Everything needed to start one replica of one version of a function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RunSpec {
    /// The executable.
    pub program: std::path::PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// The complete environment, but for the per-replica variables.
    pub env: Vec<(String, String)>,
    /// The working directory: the bundle root.
    pub cwd: std::path::PathBuf,
    /// Where the replica listens.
    pub listen: Listen,
    /// The readiness probe's path.
    pub ready_path: String,
    /// Limits the gateway applies to calls.
    pub limits: InvokeLimits,
    /// The function.
    pub function: FunctionRef,
    /// The secrets it declares (files under /var/openfaas/secrets).
    pub secrets: Vec<String>,
    /// Memory, CPU and process limits of each replica.
    pub resources: Limits,
    /// Whether replicas may use the network.
    pub network: bool,
    /// Whether replicas get a private writable work dir (`readOnlyRootFilesystem: false`).
    pub writable: bool,
    /// Whether the program honours `IRONFAAS_START_FD` (the template's runtime, started with
    /// the template's own command).
    pub start_fd: bool,
}

fn env_value<'a>(d: &'a FunctionDeployment, manifest: &'a Manifest, key: &str) -> Option<&'a str> {
    d.spec
        .env_vars
        .get(key)
        .or_else(|| manifest.environment.get(key))
        .map(String::as_str)
        .filter(|v| !v.trim().is_empty())
}

impl RunSpec {
    /// Works out how to run `d` from the bundle unpacked at `bundle`; the error says which
    /// setting is wrong and how to fix it.
    pub fn build(
        d: &FunctionDeployment,
        manifest: &Manifest,
        bundle: &Path,
        config: &LocalConfig,
        resolver: &Resolver,
    ) -> Result<RunSpec, String> {
        let mode = match env_value(d, manifest, "mode") {
            None => manifest.mode,
            Some(text) => Mode::parse(text).ok_or_else(|| {
                format!(
                    "environment mode='{text}' is not a mode: use http, streaming or serializing"
                )
            })?,
        };
        let exec_timeout = match env_value(d, manifest, "exec_timeout") {
            None => None,
            Some(text) => {
                let t =
                    parse_duration(text).map_err(|e| format!("environment exec_timeout: {e}"))?;
                (!t.is_zero()).then_some(t)
            }
        };
        if let Some(t) = exec_timeout.filter(|t| *t > config.max_exec_timeout) {
            return Err(format!(
                "exec_timeout {} is longer than the gateway's upstream timeout {}: calls would be cut \
                 off by the gateway first. Lower exec_timeout, or start the gateway with a longer \
                 --upstream-timeout (and read/write timeouts above that)",
                format_duration(t),
                format_duration(config.max_exec_timeout)
            ));
        }
        let max_inflight = match env_value(d, manifest, "max_inflight") {
            None => 0,
            Some(text) => text.trim().parse::<u32>().map_err(|_| {
                format!(
                    "environment max_inflight='{text}' is not a whole number ≥ 0 (0 means no limit)"
                )
            })?,
        };
        let own_command = d.spec.env_process.trim().is_empty();
        let fprocess = if own_command {
            &manifest.fprocess
        } else {
            &d.spec.env_process
        };
        let mut argv = fprocess.split_whitespace();
        let program = argv.next().ok_or_else(|| {
            "the start command is empty: set fprocess in stack.yml or the template".to_string()
        })?;
        let path_var = config.function_path();
        let resolved = resolver.resolve(program, bundle, &path_var)?;
        let command: Vec<String> = std::iter::once(resolved.display().to_string())
            .chain(argv.map(str::to_string))
            .collect();

        let mut env: Vec<(String, String)> = INHERITED
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
            .filter(|(k, _)| k != "PATH")
            .collect();
        env.push(("PATH".into(), path_var.clone()));
        env.push(("HOME".into(), "/tmp".into()));
        env.extend(
            manifest
                .environment
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        env.extend(d.spec.env_vars.iter().map(|(k, v)| (k.clone(), v.clone())));
        env.push(("fprocess".into(), command.join(" ")));
        env.push(("OPENFAAS_NAME".into(), d.service.clone()));

        let (program, args, listen) = if mode.forks() {
            let exec = exec_timeout.unwrap_or(config.max_exec_timeout);
            env.push(("mode".into(), mode.to_string()));
            env.push(("exec_timeout".into(), format!("{}ms", exec.as_millis())));
            (
                config.watchdog_exe.clone(),
                vec!["watchdog".to_string()],
                Listen::Unix,
            )
        } else {
            (resolved, command[1..].to_vec(), manifest.listen)
        };
        let ready_path = d
            .spec
            .annotation(READY_PATH_ANNOTATION)
            .filter(|p| p.starts_with('/'))
            .unwrap_or(DEFAULT_READY_PATH)
            .to_string();
        let pids = match d.spec.annotation(PIDS_ANNOTATION) {
            None => Limits::DEFAULT_PIDS,
            Some(v) => v.trim().parse().map_err(|_| {
                format!("annotation {PIDS_ANNOTATION}='{v}' must be a whole number of processes, e.g. \"64\"")
            })?,
        };
        let resources =
            Limits::from_resources(d.spec.limits.as_ref(), pids).map_err(|e| e.to_string())?;
        let network = wants_network(&d.spec);
        if !network && listen == Listen::Tcp {
            return Err(format!(
                "annotation {NETWORK_ANNOTATION}: none leaves the replica no network, but template {} \
                 listens on TCP; use a template that listens on a Unix socket (python3-http, node, \
                 bash-streaming, rust)",
                manifest.template
            ));
        }
        Ok(RunSpec {
            program,
            args,
            env,
            cwd: bundle.to_path_buf(),
            listen,
            ready_path,
            limits: InvokeLimits {
                max_inflight,
                exec_timeout,
            },
            function: FunctionRef::new(&d.service, &d.spec.namespace),
            secrets: d.spec.secrets.clone(),
            resources,
            network,
            writable: !d.spec.read_only_root_filesystem,
            start_fd: manifest.start_fd && own_command && !mode.forks(),
        })
    }

    /// How long a draining replica may keep finishing calls.
    pub fn drain_timeout(&self, config: &LocalConfig) -> Duration {
        self.limits.exec_timeout.unwrap_or(config.max_exec_timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironfaas_spec::wire::FunctionSpec;
    use std::collections::BTreeMap;

    fn manifest(mode: Mode, fprocess: &str) -> Manifest {
        Manifest {
            format: 1,
            function: "f".into(),
            template: "t".into(),
            mode,
            listen: Listen::Unix,
            fprocess: fprocess.into(),
            environment: BTreeMap::from([("PYTHONUNBUFFERED".to_string(), "1".to_string())]),
            built_at: String::new(),
            start_fd: false,
        }
    }

    fn deployment(env: &[(&str, &str)]) -> FunctionDeployment {
        FunctionDeployment {
            service: "f".into(),
            spec: FunctionSpec {
                image: "f:latest".into(),
                env_vars: env
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                ..Default::default()
            },
        }
    }

    fn config() -> LocalConfig {
        LocalConfig::for_tests(Path::new("/tmp/unused"))
    }

    #[test]
    fn http_mode_runs_the_command_itself() {
        let spec = RunSpec::build(
            &deployment(&[("A", "b")]),
            &manifest(Mode::Http, "sh -c true"),
            Path::new("/"),
            &config(),
            &Resolver::default(),
        )
        .unwrap();
        assert!(spec.program.ends_with("sh"));
        assert_eq!(spec.args, vec!["-c", "true"]);
        assert_eq!(spec.listen, Listen::Unix);
        let get = |k: &str| {
            spec.env
                .iter()
                .rev()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("A"), Some("b"));
        assert_eq!(get("PYTHONUNBUFFERED"), Some("1"));
        assert_eq!(spec.ready_path, "/_/health");
    }

    #[test]
    fn fork_mode_runs_the_watchdog() {
        let d = deployment(&[("exec_timeout", "5s"), ("max_inflight", "3")]);
        let spec = RunSpec::build(
            &d,
            &manifest(Mode::Streaming, "cat"),
            Path::new("/"),
            &config(),
            &Resolver::default(),
        )
        .unwrap();
        assert_eq!(spec.program, config().watchdog_exe);
        assert_eq!(spec.args, vec!["watchdog"]);
        let get = |k: &str| {
            spec.env
                .iter()
                .rev()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
        };
        assert!(get("fprocess").unwrap().ends_with("/cat"));
        assert_eq!(get("mode").as_deref(), Some("streaming"));
        assert_eq!(get("exec_timeout").as_deref(), Some("5000ms"));
        assert_eq!(
            spec.limits,
            InvokeLimits {
                max_inflight: 3,
                exec_timeout: Some(Duration::from_secs(5))
            }
        );
    }

    #[test]
    fn bad_settings_are_explained() {
        let m = manifest(Mode::Http, "sh");
        let cfg = config();
        let r = Resolver::default();
        let err = |env: &[(&str, &str)]| {
            RunSpec::build(&deployment(env), &m, Path::new("/"), &cfg, &r).unwrap_err()
        };
        assert!(
            err(&[("exec_timeout", "2h")]).contains("longer than the gateway's upstream timeout")
        );
        assert!(err(&[("exec_timeout", "soon")]).contains("exec_timeout"));
        assert!(err(&[("max_inflight", "-1")]).contains("max_inflight"));
        assert!(err(&[("mode", "turbo")]).contains("mode='turbo'"));
        let mut d = deployment(&[]);
        d.spec.env_process = "no-such-binary-anywhere".into();
        assert!(
            RunSpec::build(&d, &m, Path::new("/"), &cfg, &r)
                .unwrap_err()
                .contains("not found on PATH")
        );
    }
}
