//! What went wrong with a stack file: every problem found, each with its place and a fix.

use std::fmt;
use std::path::{Path, PathBuf};

use super::model::SourcePos;

/// One problem in a stack file or in a file it refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file the problem is in (the stack file, or an environment file).
    pub file: PathBuf,
    /// The line, from 1; 0 when the problem has no single place.
    pub line: usize,
    /// The column in characters, from 1; 0 when the problem has no single place.
    pub column: usize,
    /// The function concerned, if any.
    pub function: Option<String>,
    /// The field concerned, as a dotted path (`limits.memory`, `provider.name`), if any.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub fix: Option<String>,
}

impl Diagnostic {
    /// A problem at `pos` in `file`, with no function, field or fix yet.
    pub(crate) fn new(file: &Path, pos: SourcePos, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.to_path_buf(),
            line: pos.line,
            column: pos.column,
            function: None,
            field: None,
            message: message.into(),
            fix: None,
        }
    }

    /// Names the function concerned.
    pub(crate) fn function(mut self, name: impl Into<String>) -> Self {
        self.function = Some(name.into());
        self
    }

    /// Names the field concerned.
    pub(crate) fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Says how to fix the problem.
    pub(crate) fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Everything that may come from the YAML is escaped: the file (an `environment_file`
        // entry), the function (a key) and the field (a key path), as well as the message.
        write_one_line(f, &self.file.display().to_string())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        f.write_str(": ")?;
        if let Some(function) = &self.function {
            f.write_str("function '")?;
            write_one_line(f, function)?;
            f.write_str(if self.field.is_some() { "', " } else { "': " })?;
        }
        if let Some(field) = &self.field {
            f.write_str("field '")?;
            write_one_line(f, field)?;
            f.write_str("': ")?;
        }
        write_one_line(f, &self.message)?;
        if let Some(fix) = &self.fix {
            f.write_str("\n  fix: ")?;
            write_one_line(f, fix)?;
        }
        Ok(())
    }
}

/// Writes `text` with control characters (newlines, terminal escapes from the YAML) escaped,
/// so that each diagnostic stays on its lines.
fn write_one_line(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    for c in text.chars() {
        if c.is_control() {
            write!(f, "{}", c.escape_default())?;
        } else {
            write!(f, "{c}")?;
        }
    }
    Ok(())
}

/// What kind of failure a [`StackError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackErrorKind {
    /// The stack file does not exist.
    NotFound,
    /// The stack file exists but could not be read (permissions, not UTF-8, ...).
    Unreadable,
    /// The stack file was read but is not a valid stack.
    Invalid,
    /// `--filter` matched no function.
    NoMatch,
}

/// Why a stack file could not be found, read or used; lists every problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackError {
    /// The stack file (or the folder searched for one).
    pub path: PathBuf,
    /// What kind of failure this is.
    pub kind: StackErrorKind,
    /// The problems, in file order; never empty.
    pub diagnostics: Vec<Diagnostic>,
}

impl StackError {
    /// An error of `kind` about `path` made of `diagnostics`, sorted by file and position
    /// (the stack file's own problems first).
    pub(crate) fn new(path: &Path, kind: StackErrorKind, mut diagnostics: Vec<Diagnostic>) -> Self {
        diagnostics.sort_by(|a, b| {
            let key = |d: &Diagnostic| (d.file != path, d.file.clone(), d.line, d.column);
            key(a).cmp(&key(b))
        });
        StackError {
            path: path.to_path_buf(),
            kind,
            diagnostics,
        }
    }

    /// An error of `kind` with a single diagnostic about `path` as a whole.
    pub(crate) fn whole_file(
        path: &Path,
        kind: StackErrorKind,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        let diagnostic = Diagnostic::new(path, SourcePos::default(), message).fix(fix);
        StackError::new(path, kind, vec![diagnostic])
    }

    /// Whether the stack file does not exist (as opposed to existing and being wrong).
    pub fn is_not_found(&self) -> bool {
        self.kind == StackErrorKind::NotFound
    }
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, diagnostic) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{diagnostic}")?;
        }
        Ok(())
    }
}

impl std::error::Error for StackError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_place_context_message_and_fix() {
        let d = Diagnostic::new(
            Path::new("stack.yml"),
            SourcePos { line: 7, column: 5 },
            "unknown lang `pyhton3`",
        )
        .function("hello")
        .field("lang")
        .fix("use `python3`");
        assert_eq!(
            d.to_string(),
            "stack.yml:7:5: function 'hello', field 'lang': unknown lang `pyhton3`\n  \
             fix: use `python3`"
        );
        let whole = Diagnostic::new(Path::new("/p"), SourcePos::default(), "gone\n\u{1b}[31m");
        assert_eq!(whole.to_string(), "/p: gone\\n\\u{1b}[31m");
    }

    #[test]
    fn escapes_control_characters_in_every_part() {
        // A function key "pr\t\trw" reached the terminal raw in the function's context (found
        // by the stack_yml fuzz target); a key or env file path can carry terminal escapes too.
        let d = Diagnostic::new(
            Path::new("env/\u{1b}[2J.yml"),
            SourcePos { line: 3, column: 1 },
            "bad",
        )
        .function("pr\t\trw")
        .field("environment.\u{1b}[31m")
        .fix("rename\r");
        assert_eq!(
            d.to_string(),
            "env/\\u{1b}[2J.yml:3:1: function 'pr\\t\\trw', field 'environment.\\u{1b}[31m': bad\n  \
             fix: rename\\r"
        );
        let only_function =
            Diagnostic::new(Path::new("s.yml"), SourcePos::default(), "m").function("a\nb");
        assert_eq!(only_function.to_string(), "s.yml: function 'a\\nb': m");
    }

    #[test]
    fn sorts_stack_file_first_then_by_position() {
        let file = Path::new("stack.yml");
        let at = |f: &str, line| Diagnostic::new(Path::new(f), SourcePos { line, column: 1 }, "x");
        let err = StackError::new(
            file,
            StackErrorKind::Invalid,
            vec![at("a.env.yml", 1), at("stack.yml", 9), at("stack.yml", 2)],
        );
        let order: Vec<_> = err
            .diagnostics
            .iter()
            .map(|d| (d.file.display().to_string(), d.line))
            .collect();
        assert_eq!(
            order,
            [
                ("stack.yml".to_string(), 2),
                ("stack.yml".to_string(), 9),
                ("a.env.yml".to_string(), 1)
            ]
        );
        assert!(!err.is_not_found());
    }
}
