//! YAML to the raw model: the shape check over the document tree, then the typed parse.
//! serde-saphyr's errors become [`Diagnostic`]s with their position and, found from the tree,
//! their function and field.

use std::borrow::Cow;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde_saphyr::{
    DuplicateKeyPolicy, Localizer, Location, MessageFormatter, NonFiniteFloatPolicy, SnippetMode,
    Spanned, UserMessageFormatter,
};

use super::error::Diagnostic;
use super::model::SourcePos;
use super::schema::{self, Section};
use super::tree::Node;

/// A parsed document: its tree and typed value when they could be read, and every problem.
pub(crate) struct Parsed<T> {
    /// The document's shape, when it is valid YAML.
    pub(crate) tree: Option<Spanned<Node>>,
    /// The typed value, when the shape allowed the typed parse and it succeeded.
    pub(crate) value: Option<T>,
    /// Every problem found.
    pub(crate) diagnostics: Vec<Diagnostic>,
}

/// Parses `text` (the contents of `file`) as a `T` described by `schema`.
pub(crate) fn document<T: DeserializeOwned>(
    text: &str,
    file: &Path,
    schema: &Section,
) -> Parsed<T> {
    // The tree sees duplicate keys so that the shape check can report them all, and keeps
    // `.nan`-like scalars as text, as the typed parse does for string fields.
    let tree_options = serde_saphyr::options! {
        duplicate_keys: DuplicateKeyPolicy::PassThrough,
        non_finite_float_policy: NonFiniteFloatPolicy::AsString,
        with_snippet: false,
    };
    let tree: Spanned<Node> = match serde_saphyr::from_str_with_options(text, tree_options) {
        Ok(tree) => tree,
        Err(err) => {
            let d = yaml_diagnostic(file, &err, None, schema);
            return Parsed {
                tree: None,
                value: None,
                diagnostics: vec![d],
            };
        }
    };
    let shape = schema::check(&tree, schema, file);
    let mut diagnostics = shape.diagnostics;
    if shape.wrong_kind {
        return Parsed {
            tree: Some(tree),
            value: None,
            diagnostics,
        };
    }
    // Duplicates have been reported already; let the typed parse get past them, keeping the
    // first of each (the one the duplicate's diagnostic points back to).
    let typed_options = serde_saphyr::options! {
        duplicate_keys: DuplicateKeyPolicy::FirstWins,
        with_snippet: false,
    };
    let value = match serde_saphyr::from_str_with_options(text, typed_options) {
        Ok(value) => Some(value),
        Err(err) => {
            diagnostics.push(yaml_diagnostic(file, &err, Some(&tree.value), schema));
            None
        }
    };
    Parsed {
        tree: Some(tree),
        value,
        diagnostics,
    }
}

/// A diagnostic for a serde-saphyr error, in one plain line, placed in its function and field
/// when the document's tree is known.
fn yaml_diagnostic(
    file: &Path,
    err: &serde_saphyr::Error,
    tree: Option<&Node>,
    schema: &Section,
) -> Diagnostic {
    let pos = err.location().map(SourcePos::from).unwrap_or_default();
    let message = err.render_with_options(serde_saphyr::render_options! {
        formatter: &PlainMessages,
        snippets: SnippetMode::Off,
    });
    let mut d = Diagnostic::new(file, pos, message.trim().to_string());
    let Some(tree) = tree else {
        return d.fix(match err.without_snippet() {
            serde_saphyr::Error::MultipleDocuments { .. } => {
                "a stack file holds one YAML document: remove the `---` line and what follows it"
            }
            serde_saphyr::Error::UnknownAnchor { .. } => {
                "define the anchor with `&name` before using it as `*name`, e.g. under a \
                 top-level `x-` key"
            }
            _ => {
                "fix the YAML syntax here: indent with spaces, write `key: value` pairs, and \
                 close every quote and bracket"
            }
        });
    };
    let path = tree.path_at(pos);
    let (function, field) = schema::context(&path);
    d.function = function;
    d.field = field;
    match schema.example_at(&path) {
        Some(example) => d.fix(format!("write it like `{example}`")),
        None => d.fix("compare this value with the stack.yml reference (compat §5.2)"),
    }
}

/// serde-saphyr's user-facing messages without the "at line X, column Y" suffix: the
/// diagnostic carries the position itself.
struct PlainMessages;

impl MessageFormatter for PlainMessages {
    fn localizer(&self) -> &dyn Localizer {
        &NoLocationSuffix
    }

    fn format_message<'a>(&self, err: &'a serde_saphyr::Error) -> Cow<'a, str> {
        UserMessageFormatter.format_message(err)
    }
}

struct NoLocationSuffix;

impl Localizer for NoLocationSuffix {
    fn attach_location<'a>(&self, base: Cow<'a, str>, _: Location) -> Cow<'a, str> {
        base
    }
}
