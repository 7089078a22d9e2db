//! `ironfaas doctor --apply`: the kernel settings below the recommendation, written to a
//! sysctl drop-in file (so they survive a reboot) and loaded into the running kernel.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::sysctl::{TUNABLES, normalise, proc_path, raised, read};

/// The drop-in file written by default.
pub const DEFAULT_SYSCTL_FILE: &str = "/etc/sysctl.d/60-ironfaas.conf";

/// One setting to raise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Its sysctl name.
    pub name: &'static str,
    /// Its value now.
    pub from: String,
    /// What it becomes.
    pub to: String,
}

/// The settings below the recommendation on this machine (absent ones are not applicable).
pub fn changes() -> Vec<Change> {
    TUNABLES
        .iter()
        .filter_map(|tunable| {
            let from = read(tunable.name)?;
            let to = raised(tunable.recommended, &from).ok()??;
            Some(Change {
                name: tunable.name,
                from,
                to,
            })
        })
        .collect()
}

/// The drop-in's text: `existing` (the file as it is, if any) with each change set, its other
/// lines kept as they are.
pub fn drop_in(existing: Option<&str>, changes: &[Change]) -> String {
    let mut lines: Vec<String> = match existing {
        Some(text) => text.lines().map(String::from).collect(),
        None => vec![
            "# Written by `ironfaas doctor --apply`: kernel settings for a busy ironfaas \
             gateway,"
                .into(),
            "# only those that were below its recommendation. Delete a line to go back to the \
             default at the next boot."
                .into(),
        ],
    };
    for change in changes {
        let line = format!("{} = {}", change.name, change.to);
        match lines
            .iter_mut()
            .find(|l| setting_name(l) == Some(change.name))
        {
            Some(existing) => *existing = line,
            None => lines.push(line),
        }
    }
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// The name a sysctl.conf line sets (`net.core.somaxconn = 4096`, `-net.x=1`), if any.
fn setting_name(line: &str) -> Option<&str> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
        return None;
    }
    let (name, _) = line.split_once('=')?;
    Some(name.trim().trim_start_matches('-'))
}

/// Writes `text` to `path` through a temporary file beside it, so a reader never sees half.
pub fn write(path: &Path, text: &str) -> Result<(), String> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut file = tempfile::NamedTempFile::new_in(dir)
        .map_err(|e| format!("cannot write in {}: {e}", dir.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.as_file().sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let file = file.into_temp_path();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644))
        .map_err(|e| format!("cannot make {} readable: {e}", path.display()))?;
    file.persist(path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Loads `change` into the running kernel; the value it has afterwards.
pub fn load(change: &Change) -> Result<String, String> {
    let path = proc_path(change.name);
    std::fs::write(&path, &change.to).map_err(|e| {
        format!(
            "cannot set {} to {} ({}: {e}); it takes effect at the next boot, or try `sysctl -p`",
            change.name,
            change.to,
            path.display()
        )
    })?;
    let now = read(change.name).unwrap_or_default();
    if normalise(&now) == normalise(&change.to) {
        Ok(now)
    } else {
        Err(format!(
            "{} is {now} after writing {}: the kernel adjusted it",
            change.name, change.to
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(name: &'static str, to: &str) -> Change {
        Change {
            name,
            from: "1".into(),
            to: to.into(),
        }
    }

    #[test]
    fn a_new_file_holds_the_changes_under_a_header() {
        let text = drop_in(
            None,
            &[
                change("net.core.somaxconn", "4096"),
                change("net.ipv4.ip_local_port_range", "10240 65535"),
            ],
        );
        assert!(text.starts_with("# Written by `ironfaas doctor --apply`"));
        let settings: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            settings,
            [
                "net.core.somaxconn = 4096",
                "net.ipv4.ip_local_port_range = 10240 65535"
            ]
        );
    }

    #[test]
    fn an_existing_file_keeps_its_other_lines() {
        let existing = "# mine\nvm.swappiness=10\nnet.core.somaxconn = 1024\n";
        let text = drop_in(
            Some(existing),
            &[
                change("net.core.somaxconn", "4096"),
                change("net.core.rmem_max", "16777216"),
            ],
        );
        assert_eq!(
            text,
            "# mine\nvm.swappiness=10\nnet.core.somaxconn = 4096\nnet.core.rmem_max = 16777216\n"
        );
    }

    #[test]
    fn setting_lines_are_recognised() {
        assert_eq!(
            setting_name(" net.core.somaxconn=1"),
            Some("net.core.somaxconn")
        );
        assert_eq!(setting_name("-net.x = 1"), Some("net.x"));
        assert_eq!(setting_name("# net.core.somaxconn = 1"), None);
        assert_eq!(setting_name(""), None);
    }

    #[test]
    fn the_file_is_written_whole_and_readable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sysctl.d/60-ironfaas.conf");
        write(&path, "net.core.somaxconn = 4096\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "net.core.somaxconn = 4096\n"
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
    }
}
