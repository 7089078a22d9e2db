//! stack.yml (compat §5): finding a stack file, `${VAR:-default}` substitution, parsing,
//! validation that reports every problem with its file, line, column and a fix, `--filter`,
//! and turning a function into its deployment request.
//!
//! ```no_run
//! use std::path::Path;
//! use ironfaas_spec::stack::{LoadOptions, find_stack_file, load};
//!
//! let path = find_stack_file(None, Path::new("."))?;
//! let mut stack = load(&path, &LoadOptions::default())?;
//! stack.filter("img-*")?;
//! for function in &stack.functions {
//!     let body = function.deployment(function.fprocess.clone().unwrap_or_default());
//!     println!("{}", body.service);
//! }
//! # Ok::<(), ironfaas_spec::stack::StackError>(())
//! ```

mod env_file;
pub mod envsubst;
mod error;
mod filter;
mod load;
mod model;
mod parse;
pub mod quantity;
mod raw;
mod schema;
mod suggest;
mod tree;
mod validate;

pub use error::{Diagnostic, StackError, StackErrorKind};
pub use load::{EnvLookup, LoadOptions, STACK_FILE_NAMES, find_stack_file, load, load_text};
pub use model::{Configuration, SourcePos, Stack, StackFunction, StackProvider, TemplateSource};

#[cfg(test)]
mod tests;
