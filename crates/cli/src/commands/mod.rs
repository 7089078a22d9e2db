//! Every `ironfaas` command, one file each.

mod build;
mod deploy;
mod describe;
mod doctor;
mod invoke;
mod list;
mod login;
mod logs;
mod new;
mod push;
mod queue;
mod reference;
mod remove;
mod routes;
mod scale;
mod secret;
mod serve;
mod store;
mod template;
mod up;
mod version;
mod watchdog;
mod worker;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use ironfaas_spec::duration::parse_duration;
use ironfaas_spec::names::FunctionRef;
use ironfaas_spec::stack::{LoadOptions, Stack, find_stack_file, load};

use crate::client::Client;
use crate::failure::{CmdResult, Failure};
use crate::settings;
use crate::templates::Templates;

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the platform: the gateway and the local provider, until Ctrl-C or SIGTERM.
    Serve(serve::ServeArgs),
    /// Build and deploy the stack; start the platform here if no gateway answers.
    Up(up::UpArgs),
    /// Build the stack's functions into bundles in the function store.
    Build(build::BuildArgs),
    /// Asynchronous calls: depth per function, one call's state, dead letters, replay.
    Queue(queue::QueueArgs),
    /// Make asynchronous calls from a NATS queue in a separate process (scale-out).
    Worker(worker::WorkerArgs),
    /// Upload the stack's built bundles to the gateway's function store (or to --store).
    Push(push::PushArgs),
    /// The gateway's function store: list, remove, gc.
    Store(store::StoreArgs),
    /// Deploy the stack's functions (or one image) to the gateway.
    Deploy(deploy::DeployArgs),
    /// Call a function: the request body is read from stdin.
    Invoke(invoke::InvokeArgs),
    /// List deployed functions.
    #[command(alias = "ls")]
    List(list::ListArgs),
    /// Keep the gateway's credentials for the commands that follow.
    Login(login::LoginArgs),
    /// Forget the credentials kept for a gateway.
    Logout(login::LogoutArgs),
    /// Show a function's output (its replicas' stdout and stderr).
    Logs(logs::LogsArgs),
    /// Show one function in detail.
    Describe(describe::DescribeArgs),
    /// Remove a function, or every function of the stack.
    #[command(alias = "rm", alias = "delete")]
    Remove(remove::RemoveArgs),
    /// Create a function from a template and add it to the stack file.
    New(new::NewArgs),
    /// Work with templates.
    Template(template::TemplateArgs),
    /// List the custom routes (annotation com.ironfaas.route) and their functions.
    Routes(routes::RoutesArgs),
    /// Secrets functions read as files: create, update, list, remove.
    Secret(secret::SecretArgs),
    /// Set a function's number of replicas.
    Scale(scale::ScaleArgs),
    /// Show the CLI's version and the gateway's.
    Version(version::VersionArgs),
    /// Check what the platform needs and what helps on this machine, each with its fix.
    Doctor(doctor::DoctorArgs),
    /// Run a command per request over HTTP (used inside replicas of fork-mode functions).
    #[command(hide = true)]
    Watchdog,
    /// Print the configuration reference in Markdown (docs/configuration.md).
    #[command(hide = true)]
    Reference,
}

impl Command {
    /// Whether the command runs the platform (and so logs at info level).
    pub fn runs_platform(&self) -> bool {
        matches!(self, Command::Serve(_) | Command::Up(_))
    }

    /// Runs the command.
    pub async fn run(self) -> CmdResult {
        match self {
            Command::Serve(args) => serve::run(args).await,
            Command::Up(args) => up::run(args).await,
            Command::Build(args) => build::run(args).await,
            Command::Deploy(args) => deploy::run(args).await,
            Command::Push(args) => push::run(args).await,
            Command::Queue(args) => queue::run(args).await,
            Command::Worker(args) => worker::run(args).await,
            Command::Store(args) => store::run(args).await,
            Command::Invoke(args) => invoke::run(args).await,
            Command::List(args) => list::run(args).await,
            Command::Describe(args) => describe::run(args).await,
            Command::Logs(args) => logs::run(args).await,
            Command::Login(args) => login::login(args).await,
            Command::Logout(args) => login::logout(args).await,
            Command::Remove(args) => remove::run(args).await,
            Command::Scale(args) => scale::run(args).await,
            Command::Secret(args) => secret::run(args).await,
            Command::Routes(args) => routes::run(args).await,
            Command::New(args) => new::run(args).await,
            Command::Template(args) => template::run(args).await,
            Command::Version(args) => version::run(args).await,
            Command::Doctor(args) => doctor::run(args).await,
            Command::Watchdog => watchdog::run().await,
            Command::Reference => reference::run().await,
        }
    }
}

/// Which stack file and functions.
#[derive(Debug, Clone, Args)]
pub struct StackArgs {
    /// The stack file (default: stack.yaml, then stack.yml).
    #[arg(short = 'f', long = "yaml", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Only functions whose name matches this glob (`*`, `?`).
    #[arg(long, value_name = "GLOB")]
    pub filter: Option<String>,
    /// Do not substitute $VAR / ${VAR:-default} in the stack file.
    #[arg(long)]
    pub no_envsubst: bool,
}

/// Which gateway.
#[derive(Debug, Clone, Args)]
pub struct GatewayArgs {
    /// The gateway URL (else provider.gateway of the stack, else $OPENFAAS_URL, else
    /// http://127.0.0.1:8080).
    #[arg(short = 'g', long, value_name = "URL", global = true)]
    pub gateway: Option<String>,
}

impl GatewayArgs {
    /// A client of the chosen gateway, with the credentials known for it.
    pub fn client(&self, stack: Option<&Stack>) -> CmdResult<Client> {
        let from_stack = stack.and_then(|s| s.provider.gateway.as_deref());
        let url = settings::gateway_url(self.gateway.as_deref(), from_stack)?;
        let data_dir = settings::data_dir(std::env::var_os("IRONFAAS_DATA_DIR").map(PathBuf::from));
        let login = crate::credentials::for_gateway(&url, &data_dir)?;
        Ok(Client::new(&url, login.as_ref()))
    }
}

/// Which data dir.
#[derive(Debug, Clone, Args)]
pub struct DataDirArgs {
    /// The data dir (else $IRONFAAS_DATA_DIR, else /var/lib/ironfaas as root, else
    /// $XDG_DATA_HOME/ironfaas or ~/.local/share/ironfaas).
    #[arg(long, env = "IRONFAAS_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

impl DataDirArgs {
    /// The chosen data dir.
    pub fn resolve(&self) -> PathBuf {
        settings::data_dir(self.data_dir.clone())
    }
}

/// A namespace flag.
#[derive(Debug, Clone, Args)]
pub struct NamespaceArgs {
    /// The namespace (default: openfaas-fn).
    #[arg(short = 'n', long, default_value = "", global = true)]
    pub namespace: String,
}

impl NamespaceArgs {
    /// `name` (or `name.namespace`) in this namespace.
    pub fn function(&self, name: &str) -> FunctionRef {
        if self.namespace.is_empty() {
            FunctionRef::parse(name)
        } else {
            FunctionRef::new(name, &self.namespace)
        }
    }
}

/// Parses a size flag (`10Mi`, `512K`, `1G`, or bytes).
pub fn size_arg(text: &str) -> Result<u64, String> {
    ironfaas_spec::stack::quantity::parse_memory(text).map_err(|e| e.to_string())
}

/// Parses a duration flag (`30s`, `1m`, `500ms`, or seconds).
pub fn duration_arg(text: &str) -> Result<Duration, String> {
    parse_duration(text).map_err(|e| e.to_string())
}

/// Loads the stack file: `templates` checks `lang`, `check_handlers` checks the handler folders.
pub fn load_stack(
    args: &StackArgs,
    templates: Option<&Templates>,
    check_handlers: bool,
) -> CmdResult<Stack> {
    let cwd = std::env::current_dir()
        .map_err(|e| Failure::failed(format!("cannot read the current folder: {e}")))?;
    let path =
        find_stack_file(args.file.as_deref(), &cwd).map_err(|e| Failure::input(e.to_string()))?;
    let options = LoadOptions {
        envsubst: !args.no_envsubst,
        known_langs: templates.map(Templates::names),
        check_handlers,
        ..LoadOptions::default()
    };
    let mut stack = load(&path, &options).map_err(|e| Failure::input(e.to_string()))?;
    if let Some(glob) = &args.filter {
        stack
            .filter(glob)
            .map_err(|e| Failure::input(e.to_string()))?;
    }
    Ok(stack)
}

/// The folder of the stack file.
pub fn stack_dir(stack: &Stack) -> PathBuf {
    stack
        .path
        .parent()
        .map(PathBuf::from)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The URL a function answers on.
pub fn function_url(base: &str, function: &FunctionRef) -> String {
    if function.namespace == ironfaas_spec::names::DEFAULT_NAMESPACE {
        format!("{base}/function/{}", function.name)
    } else {
        format!("{base}/function/{function}")
    }
}
