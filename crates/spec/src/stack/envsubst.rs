//! `$VAR` / `${VAR:-default}` substitution, run over a stack file's text before YAML parsing
//! (as faas-cli does with drone/envsubst).
//!
//! Supported forms: `$VAR`, `${VAR}`, `${VAR:-default}` (default when unset or empty),
//! `${VAR-default}` (default when unset), `${VAR:=default}` and `${VAR=default}` (the same as
//! `:-` and `-`: nothing is assigned), and `$$` for a literal `$`. Defaults may themselves hold
//! substitutions. Unset variables become "". A `$` not followed by a name or `{` stays as it is.
//! Newlines are never added or removed except inside substituted values, so YAML error
//! positions found later still match the file.

use std::fmt;

/// Why a text could not be substituted; `line` and `column` (1-based) point at the `$`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {reason}")]
pub struct SubstError {
    /// The line of the offending `$`.
    pub line: usize,
    /// The column (in characters) of the offending `$`.
    pub column: usize,
    /// What is wrong with the expression.
    pub reason: SubstErrorReason,
}

/// What is wrong with a `${...}` expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubstErrorReason {
    /// `${` is never closed by `}`.
    Unterminated(String),
    /// `${}` or a `${` not followed by a variable name.
    InvalidName(String),
    /// An operator ironfaas does not implement, such as `${#VAR}` or `${VAR/a/b}`.
    Unsupported(String),
}

impl SubstErrorReason {
    /// A suggestion for how to fix the expression.
    pub fn fix(&self) -> &'static str {
        match self {
            SubstErrorReason::Unterminated(_) => {
                "close it with `}`, or write `$$` for a literal `$`"
            }
            SubstErrorReason::InvalidName(_) => {
                "variable names are letters, digits and '_', not starting with a digit, \
                 e.g. `${DOCKER_USER}`; write `$$` for a literal `$`"
            }
            SubstErrorReason::Unsupported(_) => {
                "use $VAR, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:=default} or \
                 ${VAR=default}; write `$$` for a literal `$`"
            }
        }
    }
}

impl fmt::Display for SubstErrorReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubstErrorReason::Unterminated(expr) => write!(f, "`{expr}` is not closed by `}}`"),
            SubstErrorReason::InvalidName(expr) => {
                write!(f, "`{expr}` does not name a variable")
            }
            SubstErrorReason::Unsupported(expr) => {
                write!(f, "`{expr}` uses a substitution ironfaas does not support")
            }
        }
    }
}

/// Replaces variables in `text` with the values `lookup` returns (see the module docs).
pub fn substitute(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, SubstError> {
    let mut scanner = Scanner {
        chars: text.char_indices().peekable(),
        text,
        line: 1,
        column: 1,
        lookup: &lookup,
    };
    scanner.expand(None)
}

/// Where a `${` started, to report it if it is never closed.
#[derive(Clone, Copy)]
struct Start {
    offset: usize,
    line: usize,
    column: usize,
}

struct Scanner<'a, F> {
    chars: std::iter::Peekable<std::str::CharIndices<'a>>,
    text: &'a str,
    line: usize,
    column: usize,
    lookup: &'a F,
}

impl<F: Fn(&str) -> Option<String>> Scanner<'_, F> {
    fn bump(&mut self) -> Option<char> {
        let (_, c) = self.chars.next()?;
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn peek(&mut self) -> Option<char> {
        self.chars.peek().map(|&(_, c)| c)
    }

    fn offset(&mut self) -> usize {
        self.chars.peek().map_or(self.text.len(), |&(i, _)| i)
    }

    fn start(&mut self) -> Start {
        Start {
            offset: self.offset(),
            line: self.line,
            column: self.column,
        }
    }

    fn error(&self, start: Start, reason: fn(String) -> SubstErrorReason) -> SubstError {
        let rest = &self.text[start.offset..];
        let expr_end = rest.find(['}', '\n']).map_or(rest.len(), |i| i + 1);
        SubstError {
            line: start.line,
            column: start.column,
            reason: reason(rest[..expr_end].trim_end().to_string()),
        }
    }

    /// Expands text up to the end, or up to the `}` closing the `${` at `open`.
    fn expand(&mut self, open: Option<Start>) -> Result<String, SubstError> {
        let mut out = String::new();
        loop {
            let start = self.start();
            match self.bump() {
                None => {
                    return match open {
                        Some(open) => Err(self.error(open, SubstErrorReason::Unterminated)),
                        None => Ok(out),
                    };
                }
                Some('}') if open.is_some() => return Ok(out),
                Some('$') => self.dollar(start, &mut out)?,
                Some(c) => out.push(c),
            }
        }
    }

    /// Handles what follows a `$` at `start`.
    fn dollar(&mut self, start: Start, out: &mut String) -> Result<(), SubstError> {
        match self.peek() {
            Some('$') => {
                self.bump();
                out.push('$');
            }
            Some('{') => {
                self.bump();
                out.push_str(&self.braced(start)?);
            }
            Some(c) if c == '_' || c.is_ascii_alphabetic() => {
                let name = self.name();
                out.push_str(&(self.lookup)(&name).unwrap_or_default());
            }
            _ => out.push('$'),
        }
        Ok(())
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            let ok =
                c == '_' || c.is_ascii_alphabetic() || (!name.is_empty() && c.is_ascii_digit());
            if !ok {
                break;
            }
            name.push(c);
            self.bump();
        }
        name
    }

    /// Expands `${...}` once its `${` (at `start`) has been consumed.
    fn braced(&mut self, start: Start) -> Result<String, SubstError> {
        let name = self.name();
        let next = self.peek();
        if name.is_empty() {
            return Err(match next {
                None | Some('\n') => self.error(start, SubstErrorReason::Unterminated),
                Some('}') => self.error(start, SubstErrorReason::InvalidName),
                Some(c) if c.is_ascii_punctuation() => {
                    self.error(start, SubstErrorReason::Unsupported)
                }
                Some(_) => self.error(start, SubstErrorReason::InvalidName),
            });
        }
        let value = (self.lookup)(&name);
        match next {
            Some('}') => {
                self.bump();
                Ok(value.unwrap_or_default())
            }
            Some('-' | '=') => {
                self.bump();
                let default = self.expand(Some(start))?;
                Ok(value.unwrap_or(default))
            }
            Some(':') => {
                self.bump();
                if !matches!(self.peek(), Some('-' | '=')) {
                    return Err(self.error(start, SubstErrorReason::Unsupported));
                }
                self.bump();
                let default = self.expand(Some(start))?;
                Ok(value.filter(|v| !v.is_empty()).unwrap_or(default))
            }
            None | Some('\n') => Err(self.error(start, SubstErrorReason::Unterminated)),
            Some(c) if c.is_ascii_punctuation() => {
                Err(self.error(start, SubstErrorReason::Unsupported))
            }
            Some(_) => Err(self.error(start, SubstErrorReason::InvalidName)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "USER" => Some("alice".into()),
            "EMPTY" => Some(String::new()),
            "TAG" => Some("0.2".into()),
            _ => None,
        }
    }

    fn sub(text: &str) -> Result<String, SubstError> {
        substitute(text, env)
    }

    #[test]
    fn plain_and_braced_variables() {
        assert_eq!(sub("image: $USER/fn").as_deref(), Ok("image: alice/fn"));
        assert_eq!(sub("image: ${USER}x").as_deref(), Ok("image: alicex"));
        assert_eq!(sub("a: $USER_2").as_deref(), Ok("a: "));
        assert_eq!(sub("a: ${MISSING}.").as_deref(), Ok("a: ."));
        assert_eq!(sub("no vars here").as_deref(), Ok("no vars here"));
    }

    #[test]
    fn defaults() {
        assert_eq!(
            sub("${DOCKER_USER:-exampleco}/fn:${TAG}").as_deref(),
            Ok("exampleco/fn:0.2")
        );
        assert_eq!(sub("${EMPTY:-d}").as_deref(), Ok("d"));
        assert_eq!(sub("${EMPTY-d}").as_deref(), Ok(""));
        assert_eq!(sub("${MISSING-d}").as_deref(), Ok("d"));
        assert_eq!(sub("${USER:-d}").as_deref(), Ok("alice"));
        assert_eq!(
            sub("${EMPTY:=d}|${EMPTY=d}|${NOPE=e}").as_deref(),
            Ok("d||e")
        );
        assert_eq!(sub("${MISSING:-}").as_deref(), Ok(""));
        assert_eq!(sub("${MISSING:-a b:c}").as_deref(), Ok("a b:c"));
    }

    #[test]
    fn nested_defaults() {
        assert_eq!(sub("${MISSING:-${USER}}").as_deref(), Ok("alice"));
        assert_eq!(sub("${MISSING:-x${NOPE:-y}z}!").as_deref(), Ok("xyz!"));
        assert_eq!(sub("${USER:-${NOPE}}").as_deref(), Ok("alice"));
    }

    #[test]
    fn literal_dollars() {
        assert_eq!(sub("cost: $$5").as_deref(), Ok("cost: $5"));
        assert_eq!(sub("$${USER}").as_deref(), Ok("${USER}"));
        assert_eq!(sub("a $ b $1 $").as_deref(), Ok("a $ b $1 $"));
        assert_eq!(sub("x: $-").as_deref(), Ok("x: $-"));
    }

    #[test]
    fn newlines_are_kept() {
        let text = "a: $USER\n\nb: ${MISSING:-x}\n";
        let out = sub(text).expect("substitutes");
        assert_eq!(out, "a: alice\n\nb: x\n");
        assert_eq!(out.lines().count(), text.lines().count());
    }

    #[test]
    fn unterminated_brace_is_an_error_with_position() {
        let err = sub("a: 1\nb: x${USER\nc: 2\n").expect_err("unterminated");
        assert_eq!((err.line, err.column), (2, 5));
        assert_eq!(
            err.reason,
            SubstErrorReason::Unterminated("${USER".to_string())
        );
        let err = sub("a: ${MISSING:-abc").expect_err("unterminated default");
        assert_eq!((err.line, err.column), (1, 4));
        assert!(matches!(err.reason, SubstErrorReason::Unterminated(_)));
        let err = sub("é: ${").expect_err("bare ${");
        assert_eq!((err.line, err.column), (1, 4));
        assert!(err.to_string().contains("not closed"), "{err}");
    }

    #[test]
    fn bad_names_and_unsupported_forms() {
        let err = sub("${}").expect_err("empty name");
        assert!(matches!(err.reason, SubstErrorReason::InvalidName(_)));
        let err = sub("${1X}").expect_err("digit first");
        assert!(matches!(err.reason, SubstErrorReason::InvalidName(_)));
        let err = sub("${USER NAME}").expect_err("space in name");
        assert!(matches!(err.reason, SubstErrorReason::InvalidName(_)));
        for text in ["${#USER}", "${USER/a/b}", "${USER:?set it}", "${USER^^}"] {
            let err = sub(text).expect_err(text);
            assert!(
                matches!(err.reason, SubstErrorReason::Unsupported(_)),
                "{text}: {err:?}"
            );
            assert!(err.reason.fix().contains("${VAR:-default}"));
        }
    }
}
