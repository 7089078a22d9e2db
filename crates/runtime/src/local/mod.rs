//! The local provider: each replica is a process on this machine, started from the function's
//! unpacked bundle. Desired state is persisted in the data dir and restored on start.

mod bundles;
mod command;
mod deploy;
mod function;
mod logs;
mod readiness;
mod record;
mod remove;
mod runspec;
mod scale;
mod secrets;
mod slot;
mod update;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ironfaas_spec::names::{DEFAULT_NAMESPACE, FunctionRef};
use ironfaas_spec::provider::{FunctionRoute, LogRequest, LogStream, Provider, ProviderError};
use ironfaas_spec::wire::{FunctionDeployment, FunctionStatus, ProviderInfo, Secret, VersionInfo};
use ironfaas_store::FunctionStore;
use ironfaas_store::manifest::Manifest;

use self::bundles::BundleCache;
use self::command::Resolver;
use self::function::Function;
use self::record::{FunctionRecord, RecordStore};
use self::runspec::RunSpec;
use self::secrets::SecretStore;
use self::slot::SlotContext;
use crate::sandbox::{SandboxSupport, UidAllocator};

/// Settings of the local provider.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// The data dir: records, unpacked bundles, sockets.
    pub data_dir: PathBuf,
    /// Where replica Unix sockets go.
    pub run_dir: PathBuf,
    /// The `ironfaas` executable, run as `ironfaas watchdog` for fork-mode functions.
    pub watchdog_exe: PathBuf,
    /// How long a replica may take to answer its readiness probe.
    pub ready_timeout: Duration,
    /// How long a replica has to exit after SIGTERM before SIGKILL.
    pub stop_grace: Duration,
    /// The gateway's upstream timeout: no function's exec_timeout may be longer.
    pub max_exec_timeout: Duration,
    /// Replicas run sandboxed with this support; `None` runs them as plain processes.
    pub sandbox: Option<Arc<SandboxSupport>>,
    /// With the sandbox: what a function scaled to zero keeps ready for its next start.
    pub spare: SpareMode,
}

/// What a sandboxed function scaled to zero keeps ready for its next start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpareMode {
    /// Nothing: the next start makes the sandbox.
    Off,
    /// One replica whose sandbox is built and whose program waits to start.
    On,
    /// Like `On`, and for templates with `start_fd` (python3-http, node) the program has
    /// started too and waits before it loads the function's code.
    Warm,
}

impl LocalConfig {
    /// Defaults for a data dir: 60 s to become ready, 10 s to stop, 60 s upstream timeout.
    pub fn new(data_dir: &Path, watchdog_exe: PathBuf) -> LocalConfig {
        LocalConfig {
            data_dir: data_dir.to_path_buf(),
            run_dir: slot::run_dir_for(data_dir),
            watchdog_exe,
            ready_timeout: Duration::from_secs(60),
            stop_grace: Duration::from_secs(10),
            max_exec_timeout: Duration::from_secs(60),
            sandbox: None,
            spare: SpareMode::On,
        }
    }

    /// A short name for this platform instance, the same across restarts on the same data
    /// dir: it keeps cgroups of two platforms on one machine apart.
    pub fn instance(&self) -> String {
        let hash = self
            .data_dir
            .as_os_str()
            .as_encoded_bytes()
            .iter()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
            });
        format!("{:08x}", hash as u32)
    }

    /// The PATH replicas get and their start commands are looked up on: the platform's own,
    /// or the system folders when sandboxed (a function's uid cannot reach e.g. /root).
    pub fn function_path(&self) -> String {
        if self.sandbox.is_some() {
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string()
        } else {
            std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into())
        }
    }

    #[cfg(test)]
    fn for_tests(data_dir: &Path) -> LocalConfig {
        LocalConfig::new(data_dir, PathBuf::from("/usr/bin/ironfaas-test-watchdog"))
    }
}

type FunctionMap = HashMap<String, HashMap<String, Arc<Function>>>;

/// Runs functions as local processes.
pub struct LocalProvider {
    config: Arc<LocalConfig>,
    store: FunctionStore,
    bundles: BundleCache,
    records: RecordStore,
    resolver: Resolver,
    functions: RwLock<FunctionMap>,
    ids: Arc<AtomicU64>,
    secrets: Arc<SecretStore>,
    uids: Option<Arc<UidAllocator>>,
}

impl LocalProvider {
    /// Opens the provider on its data dir and restarts every persisted function (without
    /// waiting for them to become ready).
    pub async fn open(
        config: LocalConfig,
        store: FunctionStore,
    ) -> Result<Arc<LocalProvider>, String> {
        let _ = std::fs::remove_dir_all(&config.run_dir);
        std::fs::create_dir_all(&config.run_dir)
            .map_err(|e| format!("cannot create {}: {e}", config.run_dir.display()))?;
        let uids = if config.sandbox.is_some() {
            // Sandboxed functions run as their own uid: they must be able to walk to their
            // bundle and socket (but list nothing: 0711).
            for dir in [&config.data_dir, &config.run_dir] {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711))
                    .map_err(|e| format!("cannot set the mode of {}: {e}", dir.display()))?;
            }
            let uids =
                UidAllocator::open(&config.data_dir.join("uids")).map_err(|e| e.to_string())?;
            Some(Arc::new(uids))
        } else {
            None
        };
        let secrets = Arc::new(SecretStore::open(&config.data_dir).map_err(|e| e.to_string())?);
        let provider = Arc::new(LocalProvider {
            bundles: BundleCache::new(config.data_dir.join("bundles"), store.clone()),
            records: RecordStore::new(config.data_dir.join("functions")),
            config: Arc::new(config),
            store,
            resolver: Resolver::default(),
            functions: RwLock::new(HashMap::new()),
            ids: Arc::new(AtomicU64::new(1)),
            secrets,
            uids,
        });
        for record in provider.records.load_all() {
            match record {
                Ok(record) => provider.restore(record).await,
                Err(e) => {
                    tracing::error!("cannot restore a function, its record is unreadable: {e}")
                }
            }
        }
        Ok(provider)
    }

    async fn restore(&self, record: FunctionRecord) {
        let key = FunctionRef::new(
            &record.deployment.service,
            &record.deployment.spec.namespace,
        );
        let prepared = match record.digest.parse() {
            Ok(digest) => self.prepare(&record.deployment, &digest).await,
            Err(e) => Err(ProviderError::Failed(e.to_string())),
        };
        match prepared {
            Ok(run) => {
                // A record from a version without a ceiling on replicas may ask for more.
                let replicas = record.replicas.min(ironfaas_spec::scaling::MAX_REPLICAS);
                let function = Function::new(key.clone(), record, run, &self.log_dir());
                let run = function.run();
                function.add_slots(replicas, &run, &self.slot_context(&function));
                self.insert(function);
                tracing::info!("restored function {key} with {replicas} replica(s)");
            }
            Err(e) => tracing::error!("cannot restore function {key}: {e}; deploy it again"),
        }
    }

    /// Fetches and unpacks the bundle and works out how to run it.
    async fn prepare(
        &self,
        d: &FunctionDeployment,
        digest: &ironfaas_store::Digest,
    ) -> Result<RunSpec, ProviderError> {
        let dir = self
            .bundles
            .ensure(digest)
            .await
            .map_err(ProviderError::Failed)?;
        let manifest =
            Manifest::read_from(&dir).map_err(|e| ProviderError::Failed(e.to_string()))?;
        RunSpec::build(d, &manifest, &dir, &self.config, &self.resolver)
            .map_err(|e| ProviderError::Invalid(format!("function {}: {e}", d.service)))
    }

    /// Where function logs are kept.
    fn log_dir(&self) -> PathBuf {
        self.config.data_dir.join("logs")
    }

    fn slot_context(&self, function: &Arc<Function>) -> SlotContext {
        let weak = Arc::downgrade(function);
        SlotContext {
            config: Arc::clone(&self.config),
            ids: Arc::clone(&self.ids),
            logs: Arc::clone(&function.logs),
            function: function.key.to_string(),
            secrets: Arc::clone(&self.secrets),
            uids: self.uids.clone(),
            publish: Arc::new(move || {
                if let Some(function) = weak.upgrade() {
                    function.publish();
                }
            }),
        }
    }

    fn get(&self, key: &FunctionRef) -> Option<Arc<Function>> {
        let functions = self.functions.read().unwrap_or_else(|p| p.into_inner());
        functions.get(&key.namespace)?.get(&key.name).cloned()
    }

    fn insert(&self, function: Arc<Function>) {
        let mut functions = self.functions.write().unwrap_or_else(|p| p.into_inner());
        functions
            .entry(function.key.namespace.clone())
            .or_default()
            .insert(function.key.name.clone(), function);
    }

    /// Whether a function scaled down to zero keeps a spare: with the sandbox, unless spares
    /// are off.
    fn keeps_spares(&self) -> bool {
        self.config.sandbox.is_some() && self.config.spare != SpareMode::Off
    }

    /// Saves `record` durably (two fsyncs) on a blocking thread, so the replicas this change
    /// started get the runtime's workers meanwhile (a start from zero does not wait for it).
    async fn persist(
        &self,
        key: &FunctionRef,
        record: &FunctionRecord,
    ) -> Result<(), ProviderError> {
        let (records, owned_key, owned) = (self.records.clone(), key.clone(), record.clone());
        let saved = tokio::task::spawn_blocking(move || records.save(&owned_key, &owned))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
        saved.map_err(|e| {
            ProviderError::Failed(format!(
                "cannot save function {key} in {}: {e}",
                self.config.data_dir.display()
            ))
        })
    }

    /// Stops every replica (the functions stay deployed and start again on the next open).
    pub async fn shutdown(&self) {
        let all: Vec<Arc<Function>> = {
            let functions = self.functions.read().unwrap_or_else(|p| p.into_inner());
            functions
                .values()
                .flat_map(|m| m.values().cloned())
                .collect()
        };
        let slots = all.iter().flat_map(|f| f.take_all()).collect();
        function::stop_all(slots).await;
    }
}

fn checked_ref(name: &str, namespace: &str) -> Result<FunctionRef, ProviderError> {
    let key = FunctionRef::new(name, namespace);
    key.validate()
        .map_err(|e| ProviderError::Invalid(format!("function name: {e}")))?;
    Ok(key)
}

#[async_trait::async_trait]
impl Provider for LocalProvider {
    fn info(&self) -> ProviderInfo {
        ProviderInfo {
            provider: "ironfaas-local".into(),
            orchestration: "process".into(),
            version: VersionInfo {
                release: env!("CARGO_PKG_VERSION").into(),
                ..VersionInfo::default()
            },
        }
    }

    async fn deploy(&self, deployment: FunctionDeployment) -> Result<(), ProviderError> {
        self.deploy_function(deployment).await
    }

    async fn update(&self, deployment: FunctionDeployment) -> Result<(), ProviderError> {
        self.update_function(deployment).await
    }

    async fn remove(&self, function: &FunctionRef) -> Result<(), ProviderError> {
        self.remove_function(function).await
    }

    async fn scale(&self, function: &FunctionRef, replicas: u64) -> Result<(), ProviderError> {
        self.scale_function(function, replicas).await
    }

    async fn status(&self, function: &FunctionRef) -> Result<FunctionStatus, ProviderError> {
        self.get(function)
            .map(|f| f.status())
            .ok_or_else(|| ProviderError::NotFound(function.clone()))
    }

    async fn list(&self, namespace: &str) -> Result<Vec<FunctionStatus>, ProviderError> {
        let namespace = if namespace.is_empty() {
            DEFAULT_NAMESPACE
        } else {
            namespace
        };
        let functions: Vec<Arc<Function>> = {
            let map = self.functions.read().unwrap_or_else(|p| p.into_inner());
            map.get(namespace)
                .map(|m| m.values().cloned().collect())
                .unwrap_or_default()
        };
        let mut statuses: Vec<FunctionStatus> = functions.iter().map(|f| f.status()).collect();
        statuses.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(statuses)
    }

    async fn namespaces(&self) -> Result<Vec<String>, ProviderError> {
        let map = self.functions.read().unwrap_or_else(|p| p.into_inner());
        let mut namespaces: Vec<String> = map
            .iter()
            .filter(|(_, fns)| !fns.is_empty())
            .map(|(ns, _)| ns.clone())
            .collect();
        if !namespaces.iter().any(|n| n == DEFAULT_NAMESPACE) {
            namespaces.push(DEFAULT_NAMESPACE.to_string());
        }
        namespaces.sort();
        Ok(namespaces)
    }

    async fn logs(&self, request: LogRequest) -> Result<LogStream, ProviderError> {
        let function = self
            .get(&request.function)
            .ok_or_else(|| ProviderError::NotFound(request.function.clone()))?;
        Ok(function.logs.stream(request))
    }

    async fn list_secrets(&self, namespace: &str) -> Result<Vec<Secret>, ProviderError> {
        self.secrets.list(namespace)
    }

    async fn create_secret(&self, secret: Secret) -> Result<(), ProviderError> {
        self.secrets.create(&secret)
    }

    async fn update_secret(&self, secret: Secret) -> Result<(), ProviderError> {
        self.secrets.update(&secret)
    }

    async fn delete_secret(&self, name: &str, namespace: &str) -> Result<(), ProviderError> {
        let key = FunctionRef::new("x", namespace);
        let users: Vec<String> = {
            let map = self.functions.read().unwrap_or_else(|p| p.into_inner());
            map.get(&key.namespace)
                .map(|fns| {
                    fns.values()
                        .filter(|f| f.record().deployment.spec.secrets.iter().any(|s| s == name))
                        .map(|f| f.key.name.clone())
                        .collect()
                })
                .unwrap_or_default()
        };
        if !users.is_empty() {
            return Err(ProviderError::Conflict(format!(
                "secret {name} is used by {}; remove it from their secrets first",
                users.join(", ")
            )));
        }
        self.secrets.delete(name, namespace)
    }

    fn route(&self, name: &str, namespace: &str) -> Option<Arc<FunctionRoute>> {
        let map = self.functions.read().unwrap_or_else(|p| p.into_inner());
        map.get(namespace)?.get(name).map(|f| Arc::clone(&f.route))
    }
}

#[cfg(test)]
mod tests;
