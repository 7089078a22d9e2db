//! The stack.yml schema (compat §5.2) as data, and the shape check run over a parsed
//! [`Node`] tree: unknown keys (with a suggestion), duplicate keys and wrong kinds of value.

use std::path::Path;

use serde_saphyr::Spanned;

use super::error::Diagnostic;
use super::model::SourcePos;
use super::suggest::closest;
use super::tree::Node;

/// What a field's value must look like.
pub(crate) enum Kind {
    /// A single value (string, number or boolean), taken as its text.
    Text,
    /// A list of single values.
    TextList,
    /// A mapping of names to single values.
    TextMap,
    /// A mapping with known fields.
    Section(&'static Section),
    /// A list of mappings with known fields.
    SectionList(&'static Section),
    /// A mapping of function names to function entries.
    Functions(&'static Section),
}

/// A known field: its name, the kind of its value, and an example to show when it is wrong.
pub(crate) struct Field {
    name: &'static str,
    kind: Kind,
    example: &'static str,
}

/// A mapping with known fields.
pub(crate) struct Section {
    /// Where an unknown key is, for messages ("at the top level", "in `provider`").
    place: &'static str,
    fields: &'static [Field],
    /// Whether `x-` keys (anchor holders) are allowed.
    extensions: bool,
}

impl Section {
    /// The example of the field at `path` (keys from this section down), when it names one.
    pub(crate) fn example_at(&self, path: &[String]) -> Option<&'static str> {
        let (first, rest) = path.split_first()?;
        let field = self.fields.iter().find(|f| f.name == first)?;
        match (&field.kind, rest) {
            (Kind::Section(section) | Kind::SectionList(section), [_, ..]) => {
                section.example_at(rest)
            }
            (Kind::Functions(section), [_, rest @ ..]) if !rest.is_empty() => {
                section.example_at(rest)
            }
            _ => Some(field.example),
        }
    }
}

const fn field(name: &'static str, kind: Kind, example: &'static str) -> Field {
    Field {
        name,
        kind,
        example,
    }
}

/// A whole stack file.
pub(crate) const STACK: Section = Section {
    place: "at the top level",
    fields: &[
        field("version", Kind::Text, "version: 1.0"),
        field(
            "provider",
            Kind::Section(&PROVIDER),
            "provider: {name: openfaas}",
        ),
        field(
            "functions",
            Kind::Functions(&FUNCTION),
            "functions: {hello: {lang: python3-http, handler: ./hello, image: hello:0.1}}",
        ),
        field(
            "configuration",
            Kind::Section(&CONFIGURATION),
            "configuration: {templates: [{name: python3-http}]}",
        ),
    ],
    extensions: true,
};

const PROVIDER: Section = Section {
    place: "in `provider`",
    fields: &[
        field("name", Kind::Text, "name: openfaas"),
        field("gateway", Kind::Text, "gateway: http://127.0.0.1:8080"),
        // Docker Swarm's network; old stack files still carry it and faas-cli ignores it.
        field("network", Kind::Text, "network: func_functions"),
    ],
    extensions: false,
};

const CONFIGURATION: Section = Section {
    place: "in `configuration`",
    fields: &[
        field(
            "templates",
            Kind::SectionList(&TEMPLATE),
            "templates: [{name: python3-http}]",
        ),
        field("copy", Kind::TextList, "copy: [./common]"),
    ],
    extensions: false,
};

const TEMPLATE: Section = Section {
    place: "in a `configuration.templates` entry",
    fields: &[
        field("name", Kind::Text, "name: python3-http"),
        field(
            "source",
            Kind::Text,
            "source: https://github.com/openfaas/python-flask-template",
        ),
    ],
    extensions: false,
};

const RESOURCES: Section = Section {
    place: "in resources (memory, cpu)",
    fields: &[
        field("memory", Kind::Text, "memory: 128Mi"),
        field("cpu", Kind::Text, "cpu: 500m"),
    ],
    extensions: false,
};

const FUNCTION: Section = Section {
    place: "in a function",
    fields: &[
        field("lang", Kind::Text, "lang: python3-http"),
        field("handler", Kind::Text, "handler: ./hello"),
        field("image", Kind::Text, "image: hello:0.1"),
        field("fprocess", Kind::Text, "fprocess: python3 index.py"),
        field(
            "environment",
            Kind::TextMap,
            "environment: {LOG_LEVEL: info}",
        ),
        field(
            "environment_file",
            Kind::TextList,
            "environment_file: [env.yml]",
        ),
        field("secrets", Kind::TextList, "secrets: [api-key]"),
        field(
            "labels",
            Kind::TextMap,
            "labels: {com.openfaas.scale.min: \"1\"}",
        ),
        field("annotations", Kind::TextMap, "annotations: {topic: orders}"),
        field(
            "limits",
            Kind::Section(&RESOURCES),
            "limits: {memory: 128Mi, cpu: 500m}",
        ),
        field(
            "requests",
            Kind::Section(&RESOURCES),
            "requests: {memory: 64Mi, cpu: 100m}",
        ),
        field(
            "constraints",
            Kind::TextList,
            "constraints: [\"node.platform.os == linux\"]",
        ),
        field(
            "readonly_root_filesystem",
            Kind::Text,
            "readonly_root_filesystem: true",
        ),
        field("namespace", Kind::Text, "namespace: openfaas-fn"),
        field("skip_build", Kind::Text, "skip_build: true"),
        field("build_args", Kind::TextMap, "build_args: {GO111MODULE: on}"),
        field("build_options", Kind::TextList, "build_options: [dev]"),
        field(
            "build_secrets",
            Kind::TextMap,
            "build_secrets: {pipconf: ~/.config/pip/pip.conf}",
        ),
        field(
            "platforms",
            Kind::Text,
            "platforms: linux/amd64,linux/arm64",
        ),
    ],
    extensions: false,
};

/// An environment file named in `environment_file`.
pub(crate) const ENV_FILE: Section = Section {
    place: "in an environment file",
    fields: &[field(
        "environment",
        Kind::TextMap,
        "environment: {LOG_LEVEL: info}",
    )],
    extensions: false,
};

/// The result of a shape check.
pub(crate) struct ShapeReport {
    /// Every problem found.
    pub(crate) diagnostics: Vec<Diagnostic>,
    /// Whether a value has the wrong kind, so that the typed parse would fail.
    pub(crate) wrong_kind: bool,
}

/// Checks `root` (a whole document) against `section`, reporting problems in `file`.
pub(crate) fn check(root: &Spanned<Node>, section: &Section, file: &Path) -> ShapeReport {
    let mut checker = Checker {
        file,
        path: Vec::new(),
        report: ShapeReport {
            diagnostics: Vec::new(),
            wrong_kind: false,
        },
    };
    match &root.value {
        Node::Map(entries) => checker.section(entries, section),
        Node::Null => {}
        other => checker.wrong_kind(
            root.referenced.into(),
            format!(
                "the file must be a mapping of keys to values, not {}",
                other.describe()
            ),
            section.fields.first().map_or("", |f| f.example),
        ),
    }
    checker.report
}

struct Checker<'a> {
    file: &'a Path,
    /// The keys leading to the node being checked.
    path: Vec<String>,
    report: ShapeReport,
}

impl Checker<'_> {
    /// A diagnostic at `pos` with the function and field named by the current path.
    fn diagnostic(&self, pos: SourcePos, message: impl Into<String>) -> Diagnostic {
        let mut d = Diagnostic::new(self.file, pos, message);
        let (function, field) = context(&self.path);
        d.function = function;
        d.field = field;
        d
    }

    fn wrong_kind(&mut self, pos: SourcePos, message: String, example: &str) {
        let d = self
            .diagnostic(pos, message)
            .fix(format!("write it like `{example}`"));
        self.report.diagnostics.push(d);
        self.report.wrong_kind = true;
    }

    /// Reports a key seen before in the same mapping; returns whether it was.
    fn duplicate(&mut self, seen: &[&Spanned<String>], key: &Spanned<String>, what: &str) -> bool {
        let Some(first) = seen.iter().find(|k| k.value == key.value) else {
            return false;
        };
        let d = self
            .diagnostic(
                key.referenced.into(),
                format!("duplicate {what} `{}`", key.value),
            )
            .fix(format!(
                "a key may appear only once in a mapping; it is first at line {}: remove or \
                 rename one of them",
                first.referenced.line()
            ));
        self.report.diagnostics.push(d);
        true
    }

    fn section(&mut self, entries: &[(Spanned<String>, Spanned<Node>)], section: &Section) {
        let mut seen = Vec::new();
        for (key, value) in entries {
            if self.duplicate(&seen, key, "field") {
                continue;
            }
            seen.push(key);
            if section.extensions && key.value.starts_with("x-") {
                continue;
            }
            match section.fields.iter().find(|f| f.name == key.value) {
                Some(field) => {
                    self.path.push(key.value.clone());
                    self.value(value, field);
                    self.path.pop();
                }
                None => self.unknown(key, section),
            }
        }
    }

    fn unknown(&mut self, key: &Spanned<String>, section: &Section) {
        let names = || section.fields.iter().map(|f| f.name);
        let place = match self.path.as_slice() {
            [functions, name] if functions == "functions" => format!("in function `{name}`"),
            _ => section.place.to_string(),
        };
        let mut message = format!("unknown field `{}` {place}", key.value);
        let mut fix = match closest(&key.value, names()) {
            Some(near) => {
                message.push_str(&format!("; did you mean `{near}`?"));
                format!("rename it to `{near}`")
            }
            None => format!(
                "remove it; the known fields here are {}",
                names().collect::<Vec<_>>().join(", ")
            ),
        };
        if section.extensions {
            fix.push_str(" (keys starting with `x-` are allowed, for YAML anchors)");
        }
        let d = self.diagnostic(key.referenced.into(), message).fix(fix);
        self.report.diagnostics.push(d);
    }

    fn value(&mut self, node: &Spanned<Node>, field: &Field) {
        let pos = node.referenced.into();
        let name = field.name;
        match (&field.kind, &node.value) {
            (_, Node::Null) | (Kind::Text, Node::Scalar) => {}
            (Kind::TextList, Node::Seq(items)) => self.items(items, field),
            (Kind::TextMap, Node::Map(entries)) => self.text_map(entries, field),
            (Kind::Section(section), Node::Map(entries)) => self.section(entries, section),
            (Kind::SectionList(section), Node::Seq(items)) => {
                for item in items {
                    match &item.value {
                        Node::Map(entries) => self.section(entries, section),
                        other => self.wrong_kind(
                            item.referenced.into(),
                            format!(
                                "each `{name}` entry must be a mapping, not {}",
                                other.describe()
                            ),
                            field.example,
                        ),
                    }
                }
            }
            (Kind::Functions(section), Node::Map(entries)) => self.functions(entries, section),
            (kind, other) => {
                let wanted = match kind {
                    Kind::Text => "a single value",
                    Kind::TextList | Kind::SectionList(_) => "a list",
                    Kind::TextMap | Kind::Section(_) | Kind::Functions(_) => "a mapping",
                };
                self.wrong_kind(
                    pos,
                    format!("`{name}` must be {wanted}, not {}", other.describe()),
                    field.example,
                );
            }
        }
    }

    fn items(&mut self, items: &[Spanned<Node>], field: &Field) {
        for item in items {
            if !matches!(item.value, Node::Scalar) {
                self.wrong_kind(
                    item.referenced.into(),
                    format!(
                        "each `{}` entry must be a single value, not {}",
                        field.name,
                        item.value.describe()
                    ),
                    field.example,
                );
            }
        }
    }

    fn text_map(&mut self, entries: &[(Spanned<String>, Spanned<Node>)], field: &Field) {
        let mut seen = Vec::new();
        for (key, value) in entries {
            if self.duplicate(&seen, key, "key") {
                continue;
            }
            seen.push(key);
            if matches!(value.value, Node::Map(_) | Node::Seq(_)) {
                self.wrong_kind(
                    value.referenced.into(),
                    format!(
                        "`{}` in `{}` must be a single value, not {}",
                        key.value,
                        field.name,
                        value.value.describe()
                    ),
                    field.example,
                );
            }
        }
    }

    fn functions(&mut self, entries: &[(Spanned<String>, Spanned<Node>)], section: &Section) {
        let mut seen = Vec::new();
        for (key, value) in entries {
            self.path.push(key.value.clone());
            if !self.duplicate(&seen, key, "function") {
                seen.push(key);
                match &value.value {
                    Node::Map(fields) => self.section(fields, section),
                    other => self.wrong_kind(
                        key.referenced.into(),
                        format!(
                            "a function must be a mapping of its fields, not {}",
                            other.describe()
                        ),
                        "hello: {lang: python3-http, handler: ./hello, image: hello:0.1}",
                    ),
                }
            }
            self.path.pop();
        }
    }
}

/// The function and field a key path names: `functions.NAME.FIELD...` is function `NAME` and
/// field `FIELD...`; anything else is a field of the document.
pub(crate) fn context(path: &[String]) -> (Option<String>, Option<String>) {
    let join = |keys: &[String]| (!keys.is_empty()).then(|| keys.join("."));
    match path {
        [functions, name, rest @ ..] if functions == "functions" => {
            (Some(name.clone()), join(rest))
        }
        _ => (None, join(path)),
    }
}
