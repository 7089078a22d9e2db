//! Environment files (`environment_file` entries): YAML files with a top-level `environment`
//! mapping, merged over a function's inline `environment` (compat §5.3). Like faas-cli, no
//! variable substitution is done in them.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use serde_saphyr::Spanned;

use super::error::Diagnostic;
use super::model::SourcePos;
use super::parse;
use super::raw::{RawEnvFile, texts};
use super::schema;

/// Reads the environment file at `path`, named by `entry` in `stack_file`. Problems are
/// reported in the environment file itself, or at `entry` when it cannot be read.
pub(crate) fn read(
    stack_file: &Path,
    path: &Path,
    entry: &Spanned<String>,
) -> Result<BTreeMap<String, String>, Vec<Diagnostic>> {
    let text = std::fs::read_to_string(path).map_err(|err| {
        let (message, fix) = if err.kind() == io::ErrorKind::NotFound {
            (
                format!(
                    "environment file `{}` does not exist (looked for {})",
                    entry.value,
                    path.display()
                ),
                "create it or fix the path; it is relative to the stack file's folder",
            )
        } else {
            (
                format!("environment file {} cannot be read: {err}", path.display()),
                "check the file's permissions and that it is UTF-8 text",
            )
        };
        let d = Diagnostic::new(stack_file, entry.referenced.into(), message);
        vec![d.field("environment_file").fix(fix)]
    })?;
    let parsed = parse::document::<RawEnvFile>(&text, path, &schema::ENV_FILE);
    if !parsed.diagnostics.is_empty() {
        return Err(parsed.diagnostics);
    }
    let has_key = parsed
        .tree
        .is_some_and(|tree| tree.value.key_pos(&["environment"]).is_some());
    match parsed.value {
        Some(file) if has_key => Ok(texts(file.environment)),
        _ => {
            let message = format!(
                "environment file `{}` has no top-level `environment:` mapping",
                entry.value
            );
            let d = Diagnostic::new(path, SourcePos::default(), message);
            Err(vec![d.fix(
                "write `environment:` on the first line, then one indented `KEY: value` per \
                 variable",
            )])
        }
    }
}
