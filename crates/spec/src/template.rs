//! A function template's `template.yml`: how its functions are built and how they run.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// How a function's process serves requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The start command is a long-lived HTTP server; requests are proxied to it.
    #[default]
    Http,
    /// The start command runs once per request: body on stdin, stdout streamed back as it comes.
    Streaming,
    /// The start command runs once per request: stdout is buffered; a failure gives a 500.
    Serializing,
}

impl Mode {
    /// Parses the `mode` setting (`http`, `streaming`, `serializing`).
    pub fn parse(text: &str) -> Option<Mode> {
        match text.trim() {
            "http" => Some(Mode::Http),
            "streaming" => Some(Mode::Streaming),
            "serializing" => Some(Mode::Serializing),
            _ => None,
        }
    }

    /// Whether a process is started per request (and a watchdog serves HTTP for it).
    pub fn forks(self) -> bool {
        !matches!(self, Mode::Http)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Http => "http",
            Mode::Streaming => "streaming",
            Mode::Serializing => "serializing",
        })
    }
}

/// How an HTTP-mode process is told where to listen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Listen {
    /// On the Unix socket path given in `IRONFAAS_SOCKET`.
    Unix,
    /// On `127.0.0.1:$PORT`.
    #[default]
    Tcp,
}

/// One build step: a command run from the build directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildStep {
    /// Run the step only when this path (relative to the build directory) exists.
    #[serde(default)]
    pub if_exists: Option<String>,
    /// The command and its arguments (no shell).
    pub run: Vec<String>,
}

/// The parsed `template.yml` of a template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateConfig {
    /// The template's name (its `lang`).
    pub language: String,
    /// The default start command.
    #[serde(default)]
    pub fprocess: String,
    /// Where the handler folder goes inside the bundle (`.` for the bundle root).
    #[serde(default = "default_handler_folder")]
    pub handler_folder: String,
    /// Shown by `ironfaas new`.
    #[serde(default)]
    pub welcome_message: String,
    /// How the process serves requests.
    #[serde(default)]
    pub mode: Mode,
    /// Where an HTTP-mode process listens.
    #[serde(default)]
    pub listen: Listen,
    /// Default environment of every function built from the template.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// Build steps, in order.
    #[serde(default)]
    pub build: Vec<BuildStep>,
    /// Package sets for `build_options` (faas-cli compatible; ironfaas passes them on).
    #[serde(default)]
    pub build_options: Vec<BuildOption>,
    /// faas-cli's `mount_ssh`; accepted and ignored.
    #[serde(default)]
    pub mount_ssh: bool,
    /// The template's runtime honours `IRONFAAS_START_FD`: when the variable is set, it gets
    /// ready to load the function (interpreter started, its own modules imported), then
    /// waits for one byte on that descriptor before it loads the function's code and listens
    /// (and exits at end of file). `serve --spare-sandbox warm` keeps such a spare waiting.
    #[serde(default)]
    pub start_fd: bool,
}

/// A named set of packages (faas-cli `build_options`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildOption {
    /// The option's name.
    pub name: String,
    /// Its packages.
    #[serde(default)]
    pub packages: Vec<String>,
}

fn default_handler_folder() -> String {
    "function".to_string()
}

/// Why a template.yml was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: invalid template.yml: {message}")]
pub struct TemplateError {
    /// Which template file.
    pub origin: String,
    /// What is wrong.
    pub message: String,
}

impl TemplateConfig {
    /// Parses a template.yml; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<TemplateConfig, TemplateError> {
        let err = |message: String| TemplateError {
            origin: origin.to_string(),
            message,
        };
        let config: TemplateConfig =
            serde_saphyr::from_str(text).map_err(|e| err(e.to_string()))?;
        if config.fprocess.split_whitespace().next().is_none() {
            return Err(err("`fprocess` (the start command) is empty".into()));
        }
        let folder = config.handler_folder.trim_end_matches('/');
        if folder.starts_with('/') || folder.split('/').any(|part| part == "..") {
            return Err(err(format!(
                "handler_folder '{}' must be a relative path inside the bundle",
                config.handler_folder
            )));
        }
        if let Some(step) = config.build.iter().find(|s| s.run.is_empty()) {
            return Err(err(format!("a build step has an empty `run` ({step:?})")));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_template() {
        let yml = "language: python3-http\nfprocess: python3 index.py\nhandler_folder: function\n\
                   mode: http\nlisten: unix\nenvironment:\n  PYTHONUNBUFFERED: \"1\"\nbuild:\n  \
                   - if_exists: function/requirements.txt\n    run: [pip, install]\n";
        let t = TemplateConfig::parse(yml, "t").unwrap();
        assert_eq!(t.mode, Mode::Http);
        assert_eq!(t.listen, Listen::Unix);
        assert_eq!(t.environment["PYTHONUNBUFFERED"], "1");
        assert_eq!(
            t.build[0].if_exists.as_deref(),
            Some("function/requirements.txt")
        );
    }

    #[test]
    fn defaults() {
        let t = TemplateConfig::parse("language: x\nfprocess: ./handler\n", "t").unwrap();
        assert_eq!(
            (t.mode, t.listen, t.handler_folder.as_str()),
            (Mode::Http, Listen::Tcp, "function")
        );
    }

    #[test]
    fn refuses_bad_templates() {
        assert!(
            TemplateConfig::parse("language: x\n", "t").is_err(),
            "empty fprocess"
        );
        let e = TemplateConfig::parse("language: x\nfprocess: a\nmode: fast\n", "t").unwrap_err();
        assert!(e.to_string().starts_with("t: invalid template.yml"), "{e}");
        let bad_folder = "language: x\nfprocess: a\nhandler_folder: ../up\n";
        assert!(TemplateConfig::parse(bad_folder, "t").is_err());
    }

    #[test]
    fn modes() {
        assert_eq!(Mode::parse("streaming"), Some(Mode::Streaming));
        assert_eq!(Mode::parse("nope"), None);
        assert!(Mode::Serializing.forks() && !Mode::Http.forks());
    }
}
