//! Loading whole stack files: the happy path and each kind of mistake.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::*;
use crate::wire::FunctionResources;

/// A project folder with a stack file, handler folders and environment files.
struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new() -> Self {
        Project {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn file(&self, rel: &str, contents: &str) -> PathBuf {
        let path = self.path(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&path, contents).expect("write");
        path
    }

    fn folder(&self, rel: &str) {
        std::fs::create_dir_all(self.path(rel)).expect("mkdir");
    }

    fn load(&self, stack: &str) -> Result<Stack, StackError> {
        let path = self.file("stack.yml", stack);
        load(&path, &options())
    }

    /// Loads `stack`, which must be invalid, and returns its diagnostics.
    fn problems(&self, stack: &str) -> Vec<Diagnostic> {
        let err = self.load(stack).expect_err("the stack should be refused");
        assert_eq!(err.kind, StackErrorKind::Invalid, "{err}");
        for d in &err.diagnostics {
            assert!(!d.message.contains('\n') && !fix(d).contains('\n'), "{d:?}");
            assert!(!d.message.is_empty() && !fix(d).is_empty(), "{d:?}");
        }
        err.diagnostics
    }
}

fn options() -> LoadOptions {
    LoadOptions {
        env: Box::new(|name| match name {
            "REGISTRY" => Some("registry.example.no".to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }),
        envsubst: true,
        known_langs: Some(
            ["python3-http", "node20", "binary", "go"]
                .map(String::from)
                .to_vec(),
        ),
        check_handlers: true,
    }
}

/// The only diagnostic whose message contains `needle`.
fn one<'a>(problems: &'a [Diagnostic], needle: &str) -> &'a Diagnostic {
    let found: Vec<_> = problems
        .iter()
        .filter(|d| d.message.contains(needle))
        .collect();
    assert_eq!(found.len(), 1, "{needle:?} in {problems:#?}");
    found[0]
}

fn at(d: &Diagnostic) -> (usize, usize) {
    (d.line, d.column)
}

fn fix(d: &Diagnostic) -> &str {
    d.fix.as_deref().unwrap_or_default()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const FULL: &str = r#"version: 1.0
provider:
  name: openfaas
  gateway: http://127.0.0.1:8080
x-defaults: &defaults
  lang: python3-http
  labels:
    com.openfaas.scale.min: 1
functions:
  gdpr-delete:
    <<: *defaults
    handler: ./gdpr-delete
    image: ${REGISTRY}/team/gdpr-delete:1.2
    fprocess: python3 index.py
    environment:
      LOG_LEVEL: info
      DRY_RUN: true
      RETRIES: 5
      RATIO: 1.0
    environment_file:
      - env/common.yml
    secrets:
      - db-password
      - api-key
    labels:
      com.openfaas.scale.min: 1
      com.openfaas.scale.max: 5
    annotations:
      topic: gdpr.requests
    limits:
      memory: 128Mi
      cpu: 500m
    requests:
      memory: 64Mi
      cpu: "0.1"
    constraints:
      - "node.platform.os == linux"
    readonly_root_filesystem: true
    namespace: team-a
    build_args:
      GO111MODULE: on
    build_options: [dev]
    build_secrets:
      pipconf: ~/.config/pip/pip.conf
    platforms: linux/amd64,linux/arm64
  csv-worker:
    lang: Dockerfile
    handler: ./csv-worker
    image: csv-worker
    skip_build: true
configuration:
  templates:
    - name: python3-http
      source: https://github.com/openfaas/python-flask-template#1.0
    - name: node20
  copy:
    - ./common
"#;

#[test]
fn loads_a_full_stack_with_every_field() {
    let p = Project::new();
    p.folder("gdpr-delete");
    p.file("env/common.yml", "environment:\n  REGION: eu-north-1\n");
    let mut options = options();
    // csv-worker is skip_build with `lang: Dockerfile`: refused, so check it separately.
    let path = p.file("stack.yml", &FULL.replace("    lang: Dockerfile\n", ""));
    options.check_handlers = true;
    let stack = load(&path, &options).unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(stack.path, path);
    assert_eq!(stack.version.as_deref(), Some("1.0"));
    assert_eq!(
        stack.provider,
        StackProvider {
            name: "openfaas".into(),
            gateway: Some("http://127.0.0.1:8080".into())
        }
    );
    assert_eq!(
        stack.configuration,
        Configuration {
            templates: vec![
                TemplateSource {
                    name: "python3-http".into(),
                    source: Some("https://github.com/openfaas/python-flask-template#1.0".into()),
                },
                TemplateSource {
                    name: "node20".into(),
                    source: None
                },
            ],
            copy: vec!["./common".into()],
        }
    );
    let names: Vec<_> = stack.functions.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["gdpr-delete", "csv-worker"]);

    let f = &stack.functions[0];
    let expected = StackFunction {
        name: "gdpr-delete".into(),
        lang: "python3-http".into(),
        handler: "./gdpr-delete".into(),
        image: "registry.example.no/team/gdpr-delete:1.2".into(),
        fprocess: Some("python3 index.py".into()),
        environment: map(&[
            ("LOG_LEVEL", "info"),
            ("DRY_RUN", "true"),
            ("RETRIES", "5"),
            ("RATIO", "1.0"),
            ("REGION", "eu-north-1"),
        ]),
        environment_file: vec!["env/common.yml".into()],
        secrets: vec!["db-password".into(), "api-key".into()],
        labels: map(&[
            ("com.openfaas.scale.min", "1"),
            ("com.openfaas.scale.max", "5"),
        ]),
        annotations: map(&[("topic", "gdpr.requests")]),
        limits: Some(FunctionResources {
            memory: "128Mi".into(),
            cpu: "500m".into(),
            ..Default::default()
        }),
        requests: Some(FunctionResources {
            memory: "64Mi".into(),
            cpu: "0.1".into(),
            ..Default::default()
        }),
        constraints: vec!["node.platform.os == linux".into()],
        readonly_root_filesystem: true,
        namespace: Some("team-a".into()),
        skip_build: false,
        build_args: map(&[("GO111MODULE", "on")]),
        build_options: vec!["dev".into()],
        build_secrets: map(&[("pipconf", "~/.config/pip/pip.conf")]),
        platforms: Some("linux/amd64,linux/arm64".into()),
        position: SourcePos {
            line: 10,
            column: 3,
        },
    };
    assert_eq!(f, &expected);

    let skipped = &stack.functions[1];
    assert!(skipped.skip_build);
    assert_eq!(skipped.lang, "");
    assert_eq!(skipped.image, "csv-worker:latest");
    assert!(skipped.limits.is_none() && skipped.labels.is_empty());
}

#[test]
fn dockerfile_lang_is_refused_even_when_capitalised() {
    let p = Project::new();
    p.folder("gdpr-delete");
    p.file("env/common.yml", "environment: {}\n");
    let problems = p.problems(FULL);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let d = one(&problems, "ironfaas builds bundles, not container images");
    assert_eq!(at(d), (47, 11));
    assert_eq!(d.function.as_deref(), Some("csv-worker"));
    assert_eq!(d.field.as_deref(), Some("lang"));
    assert!(fix(d).contains("lang: binary"), "{d}");
}

#[test]
fn deployment_carries_every_api_field() {
    let p = Project::new();
    p.folder("gdpr-delete");
    p.file("env/common.yml", "environment:\n  REGION: eu-north-1\n");
    let stack = p
        .load(&FULL.replace("    lang: Dockerfile\n", ""))
        .unwrap_or_else(|e| panic!("{e}"));
    let f = &stack.functions[0];
    let body = f.deployment("python3 index.py".into());
    assert_eq!(body.service, "gdpr-delete");
    assert_eq!(body.spec.image, "registry.example.no/team/gdpr-delete:1.2");
    assert_eq!(body.spec.namespace, "team-a");
    assert_eq!(body.spec.env_process, "python3 index.py");
    assert_eq!(body.spec.env_vars, f.environment);
    assert_eq!(body.spec.constraints, f.constraints);
    assert_eq!(body.spec.secrets, ["db-password", "api-key"]);
    assert_eq!(body.spec.label("com.openfaas.scale.max"), Some("5"));
    assert_eq!(body.spec.annotation("topic"), Some("gdpr.requests"));
    assert_eq!(body.spec.limits, f.limits);
    assert_eq!(body.spec.requests, f.requests);
    assert!(body.spec.read_only_root_filesystem);

    let bare = stack.functions[1].deployment(String::new());
    assert_eq!(bare.spec.labels, None);
    assert_eq!(bare.spec.annotations, None);
    assert_eq!(bare.spec.namespace, "");
    let json = serde_json::to_value(&bare).expect("json");
    assert_eq!(
        json,
        serde_json::json!({"service": "csv-worker", "image": "csv-worker:latest"})
    );
}

const MINIMAL: &str = "provider:\n  name: openfaas\nfunctions:\n  hello:\n    lang: go\n    \
                       handler: ./hello\n    image: hello:0.1\n";

#[test]
fn text_loads_as_its_file_would() {
    let p = Project::new();
    p.folder("hello");
    let path = p.file("stack.yml", MINIMAL);
    let mut options = options();
    options.check_handlers = true;
    let from_file = load(&path, &options).unwrap_or_else(|e| panic!("{e}"));
    let from_text = load_text(MINIMAL, &path, &options).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(from_file, from_text);
    let err = load_text("functions: [", &path, &options).expect_err("bad YAML");
    assert_eq!(
        (err.kind, err.path.as_path()),
        (StackErrorKind::Invalid, path.as_path())
    );
}

#[test]
fn scalars_in_maps_are_taken_as_their_text() {
    let p = Project::new();
    p.folder("hello");
    let stack = p
        .load(&format!(
            "version: 1.0\n{MINIMAL}    environment:\n      A: true\n      B: 5\n      C: 1.0\n      \
             D: 0x1F\n      E: ~\n      F: 1e3\n      G: .nan\n    labels:\n      \
             com.openfaas.scale.zero: false\n    annotations:\n      n: 010\n    build_args:\n      \
             V: 1.10\n"
        ))
        .unwrap_or_else(|e| panic!("{e}"));
    let f = &stack.functions[0];
    assert_eq!(
        f.environment,
        map(&[
            ("A", "true"),
            ("B", "5"),
            ("C", "1.0"),
            ("D", "0x1F"),
            ("E", ""),
            ("F", "1e3"),
            ("G", ".nan"),
        ])
    );
    assert_eq!(f.labels, map(&[("com.openfaas.scale.zero", "false")]));
    assert_eq!(f.annotations, map(&[("n", "010")]));
    assert_eq!(f.build_args, map(&[("V", "1.10")]));
    assert_eq!(stack.version.as_deref(), Some("1.0"));
}

#[test]
fn duplicate_keys_are_all_reported_where_they_repeat() {
    let p = Project::new();
    p.folder("hello");
    let problems = p.problems(
        "provider:\n  name: openfaas\nfunctions:\n  hello:\n    lang: go\n    handler: ./hello\n    \
         image: hello:0.1\n    lang: go\n    environment:\n      A: 1\n      A: 2\n  hello:\n    \
         lang: go\n",
    );
    assert_eq!(problems.len(), 3, "{problems:#?}");
    let field = one(&problems, "duplicate field `lang`");
    assert_eq!(at(field), (8, 5));
    assert_eq!(field.function.as_deref(), Some("hello"));
    assert!(fix(field).contains("first at line 5"), "{field}");
    let var = one(&problems, "duplicate key `A`");
    assert_eq!(at(var), (11, 7));
    assert_eq!(var.field.as_deref(), Some("environment"));
    let function = one(&problems, "duplicate function `hello`");
    assert_eq!(at(function), (12, 3));
    assert!(fix(function).contains("first at line 4"));
}

#[test]
fn unknown_fields_suggest_the_closest_known_one() {
    let p = Project::new();
    p.folder("hello");
    let problems = p.problems(
        "provider:\n  name: openfaas\n  gatway: http://gw\nx-anchors: {}\nfuction: 1\nfunctions:\n  \
         hello:\n    lang: go\n    handler: ./hello\n    image: hello:0.1\n    enviroment:\n      \
         A: b\n    limits:\n      memroy: 1Gi\n    frobnicate: yes\n",
    );
    assert_eq!(problems.len(), 5, "{problems:#?}");
    let gateway = one(&problems, "`gatway`");
    assert_eq!(at(gateway), (3, 3));
    assert!(gateway.message.contains("did you mean `gateway`?"));
    let top = one(&problems, "`fuction`");
    assert_eq!(at(top), (5, 1));
    assert!(
        top.message
            .contains("at the top level; did you mean `functions`?")
    );
    assert!(fix(top).contains("`x-`"));
    let env = one(&problems, "`enviroment`");
    assert_eq!(at(env), (11, 5));
    assert_eq!(
        env.message,
        "unknown field `enviroment` in function `hello`; did you mean `environment`?"
    );
    assert_eq!(fix(env), "rename it to `environment`");
    let memory = one(&problems, "`memroy`");
    assert_eq!(
        (memory.function.as_deref(), memory.field.as_deref()),
        (Some("hello"), Some("limits"))
    );
    let far = one(&problems, "`frobnicate`");
    assert!(fix(far).contains("known fields here are lang, handler, image"));
}

#[test]
fn provider_version_and_functions_are_checked() {
    let p = Project::new();
    let problems = p.problems("version: 2.0\nprovider:\n  name: faas\nfunctions: {}\n");
    assert_eq!(problems.len(), 3, "{problems:#?}");
    let version = one(&problems, "`version` must be 1.0, not `2.0`");
    assert_eq!(at(version), (1, 10));
    let faas = one(&problems, "retired in 2019");
    assert_eq!(at(faas), (3, 9));
    assert_eq!(faas.field.as_deref(), Some("provider.name"));
    assert_eq!(fix(faas), "write `name: openfaas`");
    let none = one(&problems, "no functions");
    assert_eq!(at(none), (4, 1));

    let problems = p.problems("functions:\n");
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert_eq!(at(one(&problems, "no functions")), (1, 1));
    let provider = one(&problems, "`provider` section is missing");
    assert!(fix(provider).contains("provider: {name: openfaas}"));

    let problems = p.problems("provider:\n  gateway: http://gw\nfunctions: {a: {}}\n");
    assert_eq!(at(one(&problems, "`provider.name` is missing")), (2, 3));

    let problems = p.problems("# nothing yet\n");
    assert_eq!(problems.len(), 1);
    assert!(fix(one(&problems, "the stack file is empty")).contains("ironfaas new"));
}

#[test]
fn function_fields_are_validated_all_at_once() {
    let p = Project::new();
    p.folder("ok");
    p.file("notadir", "x");
    let problems = p.problems(
        "provider:\n  name: openfaas\nfunctions:\n  Bad_Name:\n    lang: go\n    handler: ./ok\n    \
         image: ok\n  no-lang:\n    handler: ./ok\n  typo:\n    lang: pyhton3-http\n    handler: \
         ./missing\n    image: 'bad image'\n  file-handler:\n    lang: go\n    handler: ./notadir\n    \
         image: x:1\n    namespace: Team\n    secrets: [ok, ../etc, 'a/b', '']\n",
    );
    let by_field = |function: &str, field: &str| -> Vec<&Diagnostic> {
        problems
            .iter()
            .filter(|d| {
                d.function.as_deref() == Some(function) && d.field.as_deref() == Some(field)
            })
            .collect()
    };

    let name = one(&problems, "invalid function name");
    assert_eq!(at(name), (4, 3));
    assert!(
        name.message.contains("'Bad_Name' is not a valid name"),
        "{name}"
    );

    let [lang] = by_field("no-lang", "lang")[..] else {
        panic!("{problems:#?}")
    };
    assert_eq!(at(lang), (8, 3));
    assert!(fix(lang).contains("lang: python3-http"));
    assert_eq!(by_field("no-lang", "image").len(), 1);
    assert_eq!(by_field("no-lang", "handler").len(), 0);

    let unknown = one(&problems, "unknown lang `pyhton3-http`");
    assert_eq!(at(unknown), (11, 11));
    assert!(unknown.message.contains("python3-http, node20, binary, go"));
    assert!(fix(unknown).starts_with("did you mean `lang: python3-http`?"));
    assert!(fix(unknown).contains("./template/pyhton3-http/"));

    let missing = one(&problems, "handler folder `./missing` does not exist");
    assert_eq!(at(missing), (12, 14));
    assert!(
        missing
            .message
            .ends_with(&format!("{})", p.path("missing").display()))
    );
    let image = one(&problems, "'bad image' is not a valid image reference");
    assert_eq!(at(image), (13, 12));

    let file = one(&problems, "handler `./notadir` is a file");
    assert_eq!(file.function.as_deref(), Some("file-handler"));
    let namespace = one(&problems, "invalid namespace");
    assert_eq!(at(namespace), (18, 16));
    let secrets = by_field("file-handler", "secrets");
    let secret_cols: Vec<_> = secrets.iter().map(|d| at(d)).collect();
    assert_eq!(secret_cols, [(19, 19), (19, 27), (19, 34)]);
    assert!(secrets[2].message.contains("empty"));

    assert_eq!(problems.len(), 11, "{problems:#?}");
    let err = p.load("provider: {name: openfaas}\nfunctions:\n  typo:\n    lang: pyhton3-http\n");
    let text = err.expect_err("invalid").to_string();
    assert!(
        text.contains("stack.yml:4:11: function 'typo', field 'lang': unknown lang"),
        "{text}"
    );
    assert!(text.contains("\n  fix: did you mean"), "{text}");
}

#[test]
fn langs_and_handlers_are_unchecked_when_asked() {
    let p = Project::new();
    let path = p.file(
        "stack.yml",
        "provider: {name: openfaas}\nfunctions:\n  a:\n    lang: anything\n    handler: ./nowhere\n    \
         image: a\n",
    );
    let options = LoadOptions {
        known_langs: None,
        check_handlers: false,
        ..options()
    };
    let stack = load(&path, &options).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stack.functions[0].lang, "anything");
}

#[test]
fn scale_labels_and_resources_are_checked() {
    let p = Project::new();
    p.folder("a");
    let problems = p.problems(&format!(
        "{}    labels:\n      com.openfaas.scale.min: 5\n      com.openfaas.scale.max: 2\n  \
         b:\n    lang: go\n    handler: ./a\n    image: b\n    labels:\n      \
         com.openfaas.scale.min: -1\n    limits:\n      memory: 128MB\n      cpu: half\n    \
         requests:\n      memory: 1Gi\n      cpu: 1.5m\n",
        MINIMAL.replace("hello", "a")
    ));
    assert_eq!(problems.len(), 5, "{problems:#?}");
    let order = one(
        &problems,
        "(5) is greater than `com.openfaas.scale.max` (2)",
    );
    assert_eq!(at(order), (10, 31));
    assert!(fix(order).contains("equal values turn autoscaling off"));
    let negative = one(&problems, "not `-1`");
    assert_eq!(at(negative), (16, 31));
    let memory = one(&problems, "'128MB' is not a memory size");
    assert_eq!(at(memory), (18, 15));
    assert_eq!(memory.field.as_deref(), Some("limits.memory"));
    assert_eq!(fix(memory), "write it like `memory: 128Mi`");
    assert_eq!(
        one(&problems, "'half' is not a CPU amount")
            .field
            .as_deref(),
        Some("limits.cpu")
    );
    assert_eq!(
        one(&problems, "'1.5m' is not a CPU amount")
            .field
            .as_deref(),
        Some("requests.cpu")
    );
}

#[test]
fn environment_files_override_inline_values_in_order() {
    let p = Project::new();
    p.folder("hello");
    p.file(
        "env/a.yml",
        "environment:\n  A: from-a\n  B: from-a\n  N: 1\n",
    );
    p.file("env/b.yml", "# second\nenvironment:\n  B: from-b\n");
    let stack = p
        .load(&format!(
            "{MINIMAL}    environment:\n      A: inline\n      C: inline\n    environment_file:\n      \
             - env/a.yml\n      - env/b.yml\n"
        ))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        stack.functions[0].environment,
        map(&[
            ("A", "from-a"),
            ("B", "from-b"),
            ("C", "inline"),
            ("N", "1")
        ])
    );
}

#[test]
fn environment_file_problems_name_the_file_and_line() {
    let p = Project::new();
    p.folder("hello");
    let bad = p.file("bad.yml", "environment:\n  A: 1\n  A: 2\n  B: [x]\n");
    let other = p.file("other.yml", "other: 1\n");
    let empty = p.file("empty.yml", "# nothing here\n");
    let problems = p.problems(&format!(
        "{MINIMAL}    environment_file: [missing.yml, bad.yml, other.yml, empty.yml]\n"
    ));
    assert_eq!(problems.len(), 5, "{problems:#?}");
    let missing = one(&problems, "`missing.yml` does not exist");
    assert_eq!(at(missing), (8, 24));
    assert_eq!(missing.field.as_deref(), Some("environment_file"));
    let dup = one(&problems, "duplicate key `A`");
    assert_eq!((dup.file.as_path(), at(dup)), (bad.as_path(), (3, 3)));
    assert_eq!(dup.function.as_deref(), Some("hello"));
    let nested = one(&problems, "`B` in `environment` must be a single value");
    assert_eq!((nested.file.as_path(), at(nested)), (bad.as_path(), (4, 6)));
    assert_eq!(one(&problems, "unknown field `other`").file, other);
    assert_eq!(
        one(&problems, "no top-level `environment:` mapping").file,
        empty
    );
    let err = p
        .load(&format!("{MINIMAL}    environment_file: [bad.yml]\n"))
        .expect_err("invalid");
    assert!(
        err.to_string()
            .contains("bad.yml:3:3: function 'hello', field 'environment': duplicate key `A`"),
        "{err}"
    );
}

#[test]
fn wrong_kinds_of_value_are_reported_with_an_example() {
    let p = Project::new();
    p.folder("hello");
    let problems = p.problems(&format!(
        "{MINIMAL}    secrets: api-key\n    environment: [A]\n    lang: [go]\n    limits: 1Gi\n  \
         other: just-text\nconfiguration:\n  templates: [python3-http]\n"
    )
    .replace("    lang: go\n", ""));
    assert_eq!(problems.len(), 6, "{problems:#?}");
    let secrets = one(&problems, "`secrets` must be a list, not a single value");
    assert_eq!(at(secrets), (7, 14));
    assert_eq!(fix(secrets), "write it like `secrets: [api-key]`");
    assert!(fix(one(&problems, "`environment` must be a mapping")).contains("LOG_LEVEL"));
    one(&problems, "`lang` must be a single value, not a list");
    one(&problems, "`limits` must be a mapping, not a single value");
    let other = one(&problems, "a function must be a mapping");
    assert_eq!(other.function.as_deref(), Some("other"));
    let template = one(&problems, "each `templates` entry must be a mapping");
    assert_eq!(template.field.as_deref(), Some("configuration.templates"));
}

#[test]
fn yaml_errors_keep_their_position_and_context() {
    let p = Project::new();
    p.folder("hello");
    let problems = p.problems(&MINIMAL.replace("lang: go", "lang: !!bool true"));
    let [d] = &problems[..] else {
        panic!("{problems:#?}")
    };
    assert_eq!(at(d), (5, 18));
    assert_eq!(
        (d.function.as_deref(), d.field.as_deref()),
        (Some("hello"), Some("lang"))
    );
    assert_eq!(fix(d), "write it like `lang: python3-http`");
    assert!(d.message.contains("tagged scalar"), "{d}");
    assert!(!d.message.contains("line"), "{d}");

    let problems =
        p.problems("provider:\n  name: openfaas\nfunctions:\n  hello: [\n    lang: go\n");
    let [d] = &problems[..] else {
        panic!("{problems:#?}")
    };
    assert!(d.line >= 4, "{d}");
    assert!(fix(d).contains("YAML syntax"), "{d}");
    assert!(
        !d.message.contains('\n') && !d.message.contains('\u{1b}'),
        "{d}"
    );

    let problems = p.problems("provider:\n\tname: openfaas\n");
    assert_eq!(problems[0].line, 2, "{problems:#?}");

    let problems = p.problems("provider: {name: openfaas}\n---\nfunctions: {}\n");
    assert!(fix(one(&problems, "multiple")).contains("`---`"));
    let problems = p.problems("provider: {name: openfaas}\nfunctions: {a: *nope}\n");
    assert!(fix(&problems[0]).contains("`&name`"), "{problems:#?}");
}

#[test]
fn flags_accept_yaml_booleans_and_refuse_the_rest() {
    let p = Project::new();
    p.folder("hello");
    let stack = p
        .load(&format!(
            "{MINIMAL}    skip_build: no\n    readonly_root_filesystem: \"true\"\n"
        ))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!stack.functions[0].skip_build);
    assert!(stack.functions[0].readonly_root_filesystem);

    let problems = p.problems(&format!(
        "{MINIMAL}    skip_build: maybe\n    readonly_root_filesystem: 5\n"
    ));
    assert_eq!(problems.len(), 2, "{problems:#?}");
    let d = one(&problems, "`skip_build` must be true or false, not `maybe`");
    assert_eq!(at(d), (8, 17));
    assert_eq!(fix(d), "write `skip_build: true` or `skip_build: false`");
    one(
        &problems,
        "`readonly_root_filesystem` must be true or false, not `5`",
    );
}

#[test]
fn anchors_and_merge_keys_work() {
    let p = Project::new();
    p.folder("a");
    let stack = p
        .load(
            "provider: {name: openfaas}\nx-common: &common\n  lang: go\n  handler: ./a\n  environment:\n    \
             A: shared\nfunctions:\n  one:\n    <<: *common\n    image: one\n  two:\n    <<: *common\n    \
             lang: binary\n    image: two\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let [one, two] = &stack.functions[..] else {
        panic!("{stack:#?}")
    };
    assert_eq!((one.lang.as_str(), two.lang.as_str()), ("go", "binary"));
    assert_eq!(two.environment, map(&[("A", "shared")]));
}

#[test]
fn variables_are_substituted_before_parsing() {
    let p = Project::new();
    p.folder("hello");
    let stack = p
        .load(&format!(
            "{}    environment:\n      HOST: ${{EMPTY:-localhost}}\n      PRICE: $$5\n",
            MINIMAL.replace("hello:0.1", "${REGISTRY}/hello:${TAG:-0.2}")
        ))
        .unwrap_or_else(|e| panic!("{e}"));
    let f = &stack.functions[0];
    assert_eq!(f.image, "registry.example.no/hello:0.2");
    assert_eq!(
        f.environment,
        map(&[("HOST", "localhost"), ("PRICE", "$5")])
    );

    let problems = p.problems(&format!("{MINIMAL}    environment:\n      A: ${{OOPS\n"));
    let [d] = &problems[..] else {
        panic!("{problems:#?}")
    };
    assert_eq!(at(d), (9, 10));
    assert!(d.message.contains("`${OOPS` is not closed"), "{d}");
    assert!(fix(d).contains("`$$`"));

    let path = p.file(
        "raw.yml",
        &format!("{MINIMAL}    environment:\n      A: ${{OOPS}}\n"),
    );
    let raw = LoadOptions {
        envsubst: false,
        ..options()
    };
    let stack = load(&path, &raw).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stack.functions[0].environment, map(&[("A", "${OOPS}")]));
}

#[test]
fn filter_keeps_matching_functions() {
    let p = Project::new();
    p.folder("a");
    let text = "provider: {name: openfaas}\nfunctions:\n  img-resize: {lang: go, handler: ./a, image: \
                a}\n  img-crop: {lang: go, handler: ./a, image: b}\n  mailer: {lang: go, handler: ./a, \
                image: c}\n";
    let stack = p.load(text).unwrap_or_else(|e| panic!("{e}"));

    let mut images = stack.clone();
    images.filter("img-*").expect("matches");
    let names: Vec<_> = images.functions.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["img-resize", "img-crop"]);

    let mut one_char = stack.clone();
    one_char.filter("mai?er").expect("matches");
    assert_eq!(one_char.functions.len(), 1);

    let mut none = stack.clone();
    let err = none.filter("pdf-*").expect_err("no match");
    assert_eq!(err.kind, StackErrorKind::NoMatch);
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "{}: no functions matching --filter 'pdf-*' were found",
            stack.path.display()
        )),
        "{text}"
    );
    assert!(
        text.contains("(functions: img-resize, img-crop, mailer)"),
        "{text}"
    );
    assert_eq!(none.functions.len(), 3, "a failed filter changes nothing");
}

#[test]
fn finds_the_stack_file() {
    let p = Project::new();
    let dir = p.dir.path();
    let err = find_stack_file(None, dir).expect_err("none yet");
    assert!(err.is_not_found());
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "{}: no stack.yaml or stack.yml in this folder",
            dir.display()
        )),
        "{text}"
    );
    assert!(
        text.contains("fix: pass -f FILE or create one with `ironfaas new`"),
        "{text}"
    );

    let yml = p.file("stack.yml", "");
    assert_eq!(find_stack_file(None, dir).ok(), Some(yml.clone()));
    let yaml = p.file("stack.yaml", "");
    assert_eq!(find_stack_file(None, dir).ok(), Some(yaml));
    assert_eq!(
        find_stack_file(Some(&yml), Path::new("/nowhere")).ok(),
        Some(yml)
    );

    let missing = p.path("other.yml");
    let err = find_stack_file(Some(&missing), dir).expect_err("missing");
    assert!(err.is_not_found());
    assert!(err.to_string().contains("does not exist"));
    let err = load(&missing, &options()).expect_err("missing");
    assert!(err.is_not_found());

    let latin1 = p.file("latin1.yml", "");
    std::fs::write(&latin1, b"provider: {name: \xe9}\n").expect("write");
    let err = load(&latin1, &options()).expect_err("not UTF-8");
    assert_eq!(err.kind, StackErrorKind::Unreadable);
    assert!(err.to_string().contains("UTF-8"), "{err}");
}
