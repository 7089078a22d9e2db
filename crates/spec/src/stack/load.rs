//! Finding and loading a stack file: read, substitute variables, parse, validate.

use std::borrow::Cow;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use super::envsubst::substitute;
use super::error::{Diagnostic, StackError, StackErrorKind};
use super::model::{SourcePos, Stack};
use super::raw::RawStack;
use super::{parse, schema, validate};

/// The names looked for, in order, when no stack file is given.
pub const STACK_FILE_NAMES: [&str; 2] = ["stack.yaml", "stack.yml"];

/// Looks up a variable's value for substitution.
pub type EnvLookup = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// How to load a stack file.
pub struct LoadOptions {
    /// Looks up variables for substitution; the process environment by default.
    pub env: EnvLookup,
    /// Whether to substitute `$VAR`/`${VAR:-default}` before parsing (default true).
    pub envsubst: bool,
    /// The templates (`lang` values) available; `None` accepts any lang (nothing to check
    /// against, e.g. when only deploying).
    pub known_langs: Option<Vec<String>>,
    /// Whether each `handler` must be an existing folder (default true).
    pub check_handlers: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            env: Box::new(|name| std::env::var(name).ok()),
            envsubst: true,
            known_langs: None,
            check_handlers: true,
        }
    }
}

impl fmt::Debug for LoadOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadOptions")
            .field("envsubst", &self.envsubst)
            .field("known_langs", &self.known_langs)
            .field("check_handlers", &self.check_handlers)
            .finish_non_exhaustive()
    }
}

/// The stack file to use: `explicit` if given (it must exist), else `stack.yaml` or
/// `stack.yml` in `dir`, in that order.
pub fn find_stack_file(explicit: Option<&Path>, dir: &Path) -> Result<PathBuf, StackError> {
    if let Some(path) = explicit {
        return match path.try_exists() {
            Ok(true) => Ok(path.to_path_buf()),
            Ok(false) => Err(not_found(path)),
            Err(err) => Err(unreadable(path, &err)),
        };
    }
    for name in STACK_FILE_NAMES {
        let path = dir.join(name);
        if path.try_exists().map_err(|err| unreadable(&path, &err))? {
            return Ok(path);
        }
    }
    Err(StackError::whole_file(
        dir,
        StackErrorKind::NotFound,
        "no stack.yaml or stack.yml in this folder",
        "pass -f FILE or create one with `ironfaas new`",
    ))
}

/// Reads, substitutes, parses and validates the stack file at `path`, reporting every
/// problem found in it (and in its environment files) at once.
pub fn load(path: &Path, options: &LoadOptions) -> Result<Stack, StackError> {
    let text = std::fs::read_to_string(path).map_err(|err| match err.kind() {
        io::ErrorKind::NotFound => not_found(path),
        _ => unreadable(path, &err),
    })?;
    load_text(&text, path, options)
}

/// Substitutes, parses and validates `text` as the contents of the stack file at `path`
/// (which is not read: it names the file in errors, and handler and environment file paths
/// are relative to its folder).
pub fn load_text(text: &str, path: &Path, options: &LoadOptions) -> Result<Stack, StackError> {
    let invalid = |diagnostics| StackError::new(path, StackErrorKind::Invalid, diagnostics);
    let text = if options.envsubst {
        Cow::Owned(substitute(text, &options.env).map_err(|err| {
            let pos = SourcePos {
                line: err.line,
                column: err.column,
            };
            invalid(vec![
                Diagnostic::new(path, pos, err.reason.to_string()).fix(err.reason.fix()),
            ])
        })?)
    } else {
        Cow::Borrowed(text)
    };
    let parsed = parse::document::<RawStack>(&text, path, &schema::STACK);
    let mut diagnostics = parsed.diagnostics;
    let (Some(tree), Some(raw)) = (parsed.tree, parsed.value) else {
        return Err(invalid(diagnostics));
    };
    match validate::stack(raw, &tree.value, path, options) {
        Ok(stack) if diagnostics.is_empty() => Ok(stack),
        Ok(_) => Err(invalid(diagnostics)),
        Err(problems) => {
            diagnostics.extend(problems);
            Err(invalid(diagnostics))
        }
    }
}

fn not_found(path: &Path) -> StackError {
    StackError::whole_file(
        path,
        StackErrorKind::NotFound,
        "the stack file does not exist",
        "check the path given with -f, or create one with `ironfaas new`",
    )
}

fn unreadable(path: &Path, err: &io::Error) -> StackError {
    let fix = if err.kind() == io::ErrorKind::InvalidData {
        "save the file as UTF-8 text"
    } else {
        "check the file's permissions and that it is a regular file"
    };
    StackError::whole_file(
        path,
        StackErrorKind::Unreadable,
        format!("the file cannot be read: {err}"),
        fix,
    )
}
