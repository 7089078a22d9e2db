//! `--filter`: keeping only the functions whose names match a wildcard pattern.

use super::error::{StackError, StackErrorKind};
use super::model::Stack;

impl Stack {
    /// Keeps only the functions whose names match `glob` (`*` any run of characters, `?` one
    /// character); an error when none does.
    pub fn filter(&mut self, glob: &str) -> Result<(), StackError> {
        if !self.functions.iter().any(|f| glob_match(glob, &f.name)) {
            let names: Vec<&str> = self.functions.iter().map(|f| f.name.as_str()).collect();
            return Err(StackError::whole_file(
                &self.path,
                StackErrorKind::NoMatch,
                format!(
                    "no functions matching --filter '{glob}' were found (functions: {})",
                    names.join(", ")
                ),
                "`*` matches any run of characters and `?` exactly one, e.g. --filter 'img-*'",
            ));
        }
        self.functions.retain(|f| glob_match(glob, &f.name));
        Ok(())
    }
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters and `?` one.
fn glob_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was, and the text position it is currently matched up to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    star = Some((star_p, star_t + 1));
                    p = star_p + 1;
                    t = star_t + 1;
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(glob_match("*", ""));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("img-*", "img-resize"));
        assert!(!glob_match("img-*", "resize-img"));
        assert!(glob_match("*-img", "resize-img"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
        assert!(glob_match("f?", "f1"));
        assert!(!glob_match("f?", "f"));
        assert!(!glob_match("f?", "f12"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
        assert!(glob_match("*a*", "banana"));
    }
}
