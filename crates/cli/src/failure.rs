//! How a command fails: a message in plain words and an exit code scripts can rely on.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | the operation failed (a build step, a deploy, a call answered with an error) |
//! | 2 | invalid input: command-line usage or a stack file that does not validate |
//! | 3 | the gateway could not be reached |

use std::fmt;

/// A command's failure.
#[derive(Debug)]
pub struct Failure {
    /// The process exit code.
    pub code: u8,
    /// What went wrong and what to do.
    pub message: String,
}

impl Failure {
    /// The operation failed (exit code 1).
    pub fn failed(message: impl Into<String>) -> Self {
        Failure {
            code: 1,
            message: message.into(),
        }
    }

    /// The input is invalid (exit code 2).
    pub fn input(message: impl Into<String>) -> Self {
        Failure {
            code: 2,
            message: message.into(),
        }
    }

    /// The gateway is unreachable (exit code 3).
    pub fn unreachable(message: impl Into<String>) -> Self {
        Failure {
            code: 3,
            message: message.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// What commands return.
pub type CmdResult<T = ()> = Result<T, Failure>;
