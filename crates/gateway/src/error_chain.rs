//! An error with its causes in one line, for messages: hyper's errors say little on their own
//! ("client error (Connect)") and keep the cause (a refused connection, an untrusted
//! certificate) in their sources.

/// `e` and each of its causes, joined by ": ".
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
