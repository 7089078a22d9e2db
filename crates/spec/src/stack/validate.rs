//! Checks a parsed stack against the rules of compat §5 and builds the validated [`Stack`],
//! collecting every problem rather than stopping at the first.

use std::collections::BTreeMap;
use std::io;
use std::path::{Component, Path, PathBuf};

use serde_saphyr::Spanned;

use super::env_file;
use super::error::Diagnostic;
use super::load::LoadOptions;
use super::model::{Configuration, SourcePos, Stack, StackFunction, StackProvider, TemplateSource};
use super::quantity::{QuantityError, parse_cpu_millis, parse_memory};
use super::raw::{
    RawConfiguration, RawFunction, RawMap, RawProvider, RawResources, RawStack, texts,
};
use super::suggest::closest;
use super::tree::Node;
use crate::names::{normalize_image, validate_name};
use crate::scaling::{LABEL_MAX as SCALE_MAX, LABEL_MIN as SCALE_MIN};
use crate::wire::FunctionResources;

/// The provider name stack files must use.
const PROVIDER_NAME: &str = "openfaas";
/// The only stack file version there is.
const VERSION: &str = "1.0";

/// Validates `raw` (parsed from `file`, whose shape is `tree`) into a [`Stack`], or returns
/// every problem found.
pub(crate) fn stack(
    raw: RawStack,
    tree: &Node,
    file: &Path,
    options: &LoadOptions,
) -> Result<Stack, Vec<Diagnostic>> {
    if matches!(tree, Node::Null) {
        let d = Diagnostic::new(file, SourcePos::default(), "the stack file is empty")
            .fix("add `provider` and `functions` sections, or create one with `ironfaas new`");
        return Err(vec![d]);
    }
    let mut v = Validator {
        file,
        dir: file.parent().unwrap_or(Path::new("")),
        options,
        diagnostics: Vec::new(),
    };
    let key_pos = |key: &str| tree.key_pos(&[key]).unwrap_or_default();
    if let Some(version) = &raw.version {
        v.version(version);
    }
    let provider = v.provider(raw.provider, key_pos("provider"));
    let functions = raw.functions.map(|f| f.value.0).unwrap_or_default();
    if functions.is_empty() {
        v.push(
            Diagnostic::new(file, key_pos("functions"), "the stack has no functions")
                .field("functions")
                .fix(
                    "add one under `functions:`, e.g. `hello: {lang: python3-http, handler: \
                     ./hello, image: hello:0.1}`, or create it with `ironfaas new hello`",
                ),
        );
    }
    let functions = functions
        .into_iter()
        .map(|(name, function)| v.function(name, function))
        .collect();
    let configuration = v.configuration(raw.configuration);
    if !v.diagnostics.is_empty() {
        return Err(v.diagnostics);
    }
    Ok(Stack {
        path: file.to_path_buf(),
        version: raw.version.map(|v| v.value.trim().to_string()),
        provider,
        functions,
        configuration,
    })
}

struct Validator<'a> {
    file: &'a Path,
    /// The stack file's folder, which handler and environment file paths are relative to.
    dir: &'a Path,
    options: &'a LoadOptions,
    diagnostics: Vec<Diagnostic>,
}

impl Validator<'_> {
    /// `relative` (as written in the stack file) resolved against the stack file's folder.
    fn resolve(&self, relative: &str) -> PathBuf {
        let relative = Path::new(relative.trim());
        let parts = relative.components().filter(|c| *c != Component::CurDir);
        self.dir.join(parts.collect::<PathBuf>())
    }

    fn push(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    fn version(&mut self, version: &Spanned<String>) {
        if version.value.trim() != VERSION {
            self.push(
                Diagnostic::new(
                    self.file,
                    version.referenced.into(),
                    format!("`version` must be {VERSION}, not `{}`", version.value),
                )
                .field("version")
                .fix(format!("write `version: {VERSION}` or remove the line")),
            );
        }
    }

    fn provider(&mut self, raw: Option<Spanned<RawProvider>>, key_pos: SourcePos) -> StackProvider {
        let fix = format!("write `provider: {{name: {PROVIDER_NAME}}}` at the top level");
        let Some(raw) = raw else {
            let d = Diagnostic::new(self.file, key_pos, "the `provider` section is missing");
            self.push(d.field("provider").fix(fix));
            return StackProvider {
                name: String::new(),
                gateway: None,
            };
        };
        let (raw, pos) = (raw.value, SourcePos::from(raw.referenced));
        let name = match raw.name {
            None => {
                let d = Diagnostic::new(self.file, pos, "`provider.name` is missing");
                self.push(d.field("provider.name").fix(fix));
                String::new()
            }
            Some(name) if name.value.trim() == PROVIDER_NAME => PROVIDER_NAME.to_string(),
            Some(name) => {
                let message = if name.value.trim() == "faas" {
                    "provider `faas` was retired in 2019 (faas-cli 0.8.x); stack files must say \
                     `openfaas`"
                        .to_string()
                } else {
                    format!(
                        "provider `{}` is not supported; ironfaas speaks the OpenFaaS API",
                        name.value
                    )
                };
                let d = Diagnostic::new(self.file, name.referenced.into(), message);
                self.push(
                    d.field("provider.name")
                        .fix(format!("write `name: {PROVIDER_NAME}`")),
                );
                name.value
            }
        };
        StackProvider {
            name,
            gateway: raw.gateway,
        }
    }

    fn configuration(&mut self, raw: Option<RawConfiguration>) -> Configuration {
        let Some(raw) = raw else {
            return Configuration::default();
        };
        let mut templates = Vec::new();
        for template in raw.templates.into_iter().flatten() {
            let pos = SourcePos::from(template.referenced);
            match template.value.name.filter(|n| !n.value.trim().is_empty()) {
                Some(name) => templates.push(TemplateSource {
                    name: name.value.trim().to_string(),
                    source: template.value.source,
                }),
                None => self.push(
                    Diagnostic::new(self.file, pos, "a template entry has no `name`")
                        .field("configuration.templates")
                        .fix("add `name: <template>`, e.g. `- name: python3-http`"),
                ),
            }
        }
        Configuration {
            templates,
            copy: raw.copy.unwrap_or_default(),
        }
    }

    fn function(&mut self, name: Spanned<String>, raw: RawFunction) -> StackFunction {
        let pos = SourcePos::from(name.referenced);
        let name = name.value;
        let mut f = FunctionCheck {
            v: self,
            name: &name,
            pos,
        };
        if let Err(err) = validate_name(&name) {
            let fix = "rename the function's key under `functions:`; names are DNS labels";
            let d = Diagnostic::new(f.v.file, pos, format!("invalid function name: {err}"));
            f.v.push(d.function(&name).fix(fix));
        }
        let skip_build = f.flag(raw.skip_build, "skip_build");
        let labels = raw.labels.unwrap_or_default();
        f.scale_labels(&labels);
        let mut environment = texts(raw.environment);
        let environment_file = raw.environment_file.unwrap_or_default();
        for entry in &environment_file {
            environment.extend(f.env_file(entry));
        }
        StackFunction {
            lang: f.lang(raw.lang, skip_build),
            handler: f.handler(raw.handler, skip_build),
            image: f.image(raw.image),
            fprocess: raw.fprocess,
            environment,
            environment_file: environment_file.into_iter().map(|e| e.value).collect(),
            secrets: f.secrets(raw.secrets.unwrap_or_default()),
            labels: texts(Some(labels)),
            annotations: texts(raw.annotations),
            limits: f.resources(raw.limits, "limits"),
            requests: f.resources(raw.requests, "requests"),
            constraints: raw.constraints.unwrap_or_default(),
            readonly_root_filesystem: f
                .flag(raw.readonly_root_filesystem, "readonly_root_filesystem"),
            namespace: f.namespace(raw.namespace),
            skip_build,
            build_args: texts(raw.build_args),
            build_options: raw.build_options.unwrap_or_default(),
            build_secrets: texts(raw.build_secrets),
            platforms: raw.platforms,
            position: pos,
            name,
        }
    }
}

/// The checks of one function's fields.
struct FunctionCheck<'v, 'a> {
    v: &'v mut Validator<'a>,
    name: &'v str,
    /// Where the function's key is.
    pos: SourcePos,
}

impl FunctionCheck<'_, '_> {
    fn error(&mut self, pos: SourcePos, field: &str, message: String, fix: String) {
        let d = Diagnostic::new(self.v.file, pos, message)
            .function(self.name)
            .field(field)
            .fix(fix);
        self.v.push(d);
    }

    /// A true/false field (YAML 1.1's yes/no and on/off too, as faas-cli reads them); false
    /// when absent.
    fn flag(&mut self, raw: Option<Spanned<String>>, field: &str) -> bool {
        let Some(value) = non_empty(raw) else {
            return false;
        };
        match value.value.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "y" | "on" => true,
            "false" | "no" | "n" | "off" => false,
            _ => {
                let message = format!("`{field}` must be true or false, not `{}`", value.value);
                let fix = format!("write `{field}: true` or `{field}: false`");
                self.error(value.referenced.into(), field, message, fix);
                false
            }
        }
    }

    /// Reports that required `field` is missing from the function.
    fn missing(&mut self, field: &str, fix: String) {
        self.error(self.pos, field, format!("`{field}` is missing"), fix);
    }

    fn lang(&mut self, raw: Option<Spanned<String>>, skip_build: bool) -> String {
        let Some(raw) = non_empty(raw) else {
            if !skip_build {
                let example = match &self.v.options.known_langs {
                    Some(known) if !known.is_empty() => known[0].as_str(),
                    _ => "python3-http",
                };
                let fix = format!("add the template to build with, e.g. `lang: {example}`");
                self.missing("lang", fix);
            }
            return String::new();
        };
        let pos = SourcePos::from(raw.referenced);
        let lang = match raw.value.trim() {
            "Dockerfile" => "dockerfile",
            lang => lang,
        };
        if lang == "dockerfile" {
            self.error(
                pos,
                "lang",
                "`lang: dockerfile` is not supported: ironfaas builds bundles, not container \
                 images"
                    .to_string(),
                "use `lang: binary` and put your program (or a script that builds it) in the \
                 handler folder, or use a language template"
                    .to_string(),
            );
        } else if let Some(known) = &self.v.options.known_langs
            && !known.iter().any(|k| k == lang)
        {
            let listed = if known.is_empty() {
                "no templates are available".to_string()
            } else {
                format!("available templates: {}", known.join(", "))
            };
            let add = format!("create ./template/{lang}/ beside the stack file to add a template");
            let fix = match closest(lang, known.iter().map(String::as_str)) {
                Some(near) => format!("did you mean `lang: {near}`? Or {add}"),
                None => format!("use one of the available templates, or {add}"),
            };
            self.error(
                pos,
                "lang",
                format!("unknown lang `{lang}` ({listed})"),
                fix,
            );
        }
        lang.to_string()
    }

    fn handler(&mut self, raw: Option<Spanned<String>>, skip_build: bool) -> String {
        let Some(handler) = non_empty(raw) else {
            if !skip_build {
                let fix = format!(
                    "add the folder holding the code, e.g. `handler: ./{}`",
                    self.name
                );
                self.missing("handler", fix);
            }
            return String::new();
        };
        if self.v.options.check_handlers && !skip_build {
            let pos = SourcePos::from(handler.referenced);
            let full = self.v.resolve(&handler.value);
            let problem = match std::fs::metadata(&full) {
                Ok(meta) if meta.is_dir() => None,
                Ok(_) => Some((
                    format!(
                        "handler `{}` is a file; a handler is the folder holding the function's \
                         code",
                        handler.value
                    ),
                    "point `handler` at the folder that contains this file".to_string(),
                )),
                Err(err) if err.kind() == io::ErrorKind::NotFound => Some((
                    format!(
                        "handler folder `{}` does not exist (looked for {})",
                        handler.value,
                        full.display()
                    ),
                    "create the folder or fix the path; it is relative to the stack file's \
                     folder"
                        .to_string(),
                )),
                Err(err) => Some((
                    format!("handler folder {} cannot be read: {err}", full.display()),
                    "check the folder's permissions".to_string(),
                )),
            };
            if let Some((message, fix)) = problem {
                self.error(pos, "handler", message, fix);
            }
        }
        handler.value
    }

    fn image(&mut self, raw: Option<Spanned<String>>) -> String {
        let Some(image) = non_empty(raw) else {
            let fix = format!(
                "add the bundle's name and tag, e.g. `image: {}:0.1`",
                self.name
            );
            self.missing("image", fix);
            return String::new();
        };
        match normalize_image(&image.value) {
            Ok(normalized) => normalized,
            Err(err) => {
                let fix = format!(
                    "e.g. `image: {0}:0.1`, or with a registry \
                     `image: registry.example.no/team/{0}:0.1`",
                    self.name
                );
                self.error(image.referenced.into(), "image", err.to_string(), fix);
                image.value
            }
        }
    }

    fn namespace(&mut self, raw: Option<Spanned<String>>) -> Option<String> {
        let namespace = non_empty(raw)?;
        if let Err(err) = validate_name(namespace.value.trim()) {
            let fix = "use a namespace name such as `openfaas-fn`, or remove the line for the \
                       provider's default"
                .to_string();
            let message = format!("invalid namespace: {err}");
            self.error(namespace.referenced.into(), "namespace", message, fix);
        }
        Some(namespace.value.trim().to_string())
    }

    fn secrets(&mut self, raw: Vec<Spanned<String>>) -> Vec<String> {
        for secret in &raw {
            let name = secret.value.trim();
            let problem = if name.is_empty() {
                Some("a secret name is empty")
            } else if name.contains('/') || name.contains("..") {
                Some("secret names may not contain `/` or `..`")
            } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
                Some("secret names may not contain spaces")
            } else {
                None
            };
            if let Some(problem) = problem {
                let message = format!("{problem}: `{}`", secret.value);
                let fix = "use the name given to `ironfaas secret create`, e.g. `api-key`";
                self.error(
                    secret.referenced.into(),
                    "secrets",
                    message,
                    fix.to_string(),
                );
            }
        }
        raw.into_iter()
            .map(|s| s.value.trim().to_string())
            .collect()
    }

    fn scale_labels(&mut self, labels: &RawMap) {
        let mut bound = |key: &str| {
            let value = labels.get(key)?;
            let text = value.value.0.trim();
            match text.parse::<u64>() {
                Ok(n) => Some((n, SourcePos::from(value.referenced))),
                Err(_) => {
                    let message = format!(
                        "label `{key}` must be a whole number of replicas (0 or more), not \
                         `{text}`"
                    );
                    let fix = format!("write it like `{key}: \"1\"`");
                    self.error(value.referenced.into(), "labels", message, fix);
                    None
                }
            }
        };
        if let (Some((min, _)), Some((max, max_pos))) = (bound(SCALE_MIN), bound(SCALE_MAX))
            && min > max
        {
            let message = format!("`{SCALE_MIN}` ({min}) is greater than `{SCALE_MAX}` ({max})");
            let fix = format!(
                "make `{SCALE_MIN}` at most `{SCALE_MAX}`; equal values turn autoscaling off"
            );
            self.error(max_pos, "labels", message, fix);
        }
    }

    fn resources(&mut self, raw: Option<RawResources>, field: &str) -> Option<FunctionResources> {
        let raw = raw?;
        let memory = self.quantity(raw.memory, field, "memory", parse_memory, "128Mi");
        let cpu = self.quantity(raw.cpu, field, "cpu", parse_cpu_millis, "500m");
        (!memory.is_empty() || !cpu.is_empty()).then(|| FunctionResources {
            memory,
            cpu,
            ..FunctionResources::default()
        })
    }

    /// The text of `section.name` (e.g. `limits.memory`), reporting it when `parse` refuses it.
    fn quantity(
        &mut self,
        raw: Option<Spanned<String>>,
        section: &str,
        name: &str,
        parse: fn(&str) -> Result<u64, QuantityError>,
        example: &str,
    ) -> String {
        let Some(value) = raw else {
            return String::new();
        };
        let text = value.value.trim();
        if let Err(err) = parse(text) {
            let fix = format!("write it like `{name}: {example}`");
            let field = format!("{section}.{name}");
            self.error(value.referenced.into(), &field, err.to_string(), fix);
        }
        text.to_string()
    }

    /// The variables of one `environment_file` entry (none when it has problems).
    fn env_file(&mut self, entry: &Spanned<String>) -> BTreeMap<String, String> {
        let path = self.v.resolve(&entry.value);
        match env_file::read(self.v.file, &path, entry) {
            Ok(vars) => vars,
            Err(diagnostics) => {
                for d in diagnostics {
                    let d = Diagnostic {
                        function: Some(self.name.to_string()),
                        field: d.field.or_else(|| Some("environment_file".to_string())),
                        ..d
                    };
                    self.v.push(d);
                }
                BTreeMap::new()
            }
        }
    }
}

/// `raw` unless it is missing or blank.
fn non_empty(raw: Option<Spanned<String>>) -> Option<Spanned<String>> {
    raw.filter(|value| !value.value.trim().is_empty())
}
