//! Whether this kernel lets an unprivileged process create a user namespace, as bubblewrap
//! does for every replica (it runs as the function's uid, never as root).

use std::fs;

/// The most user namespaces a user may create; `0` turns them off.
const MAX_USER_NAMESPACES: &str = "/proc/sys/user/max_user_namespaces";
/// Debian's and older Ubuntu's switch for unprivileged user namespaces (absent elsewhere).
const UNPRIVILEGED_USERNS_CLONE: &str = "/proc/sys/kernel/unprivileged_userns_clone";
/// Ubuntu 23.10+: `1` gives unprivileged user namespaces no capabilities unless an AppArmor
/// profile allows them.
const APPARMOR_RESTRICT: &str = "/proc/sys/kernel/apparmor_restrict_unprivileged_userns";

/// The settings that allow unprivileged user namespaces here, else which one forbids them and
/// how to change it.
pub fn user_namespaces() -> Result<String, String> {
    let read = |path: &str| fs::read_to_string(path).ok();
    verdict(
        read(MAX_USER_NAMESPACES).as_deref(),
        read(UNPRIVILEGED_USERNS_CLONE).as_deref(),
        read(APPARMOR_RESTRICT).as_deref(),
    )
}

/// The verdict from the three files' contents (`None`: the file does not exist).
fn verdict(
    max: Option<&str>,
    clone: Option<&str>,
    apparmor: Option<&str>,
) -> Result<String, String> {
    let max = max.ok_or_else(|| {
        format!(
            "this kernel has no user namespaces ({MAX_USER_NAMESPACES} does not exist): \
             bubblewrap needs a kernel built with CONFIG_USER_NS (every distribution kernel is)"
        )
    })?;
    let max = max.trim();
    if max == "0" {
        return Err(
            "user namespaces are turned off (user.max_user_namespaces=0): `sysctl -w \
             user.max_user_namespaces=15000`, and the same line in /etc/sysctl.d/ to keep it"
                .into(),
        );
    }
    let mut found = format!("user.max_user_namespaces={max}");
    if let Some(clone) = clone.map(str::trim) {
        if clone == "0" {
            return Err("unprivileged user namespaces are turned off \
                 (kernel.unprivileged_userns_clone=0): `sysctl -w \
                 kernel.unprivileged_userns_clone=1`, and the same line in /etc/sysctl.d/ to \
                 keep it"
                .into());
        }
        found.push_str(&format!(", kernel.unprivileged_userns_clone={clone}"));
    }
    if apparmor.map(str::trim) == Some("1") {
        return Err("AppArmor restricts unprivileged user namespaces \
             (kernel.apparmor_restrict_unprivileged_userns=1): bubblewrap works only with an \
             AppArmor profile that allows `userns` for /usr/bin/bwrap (Ubuntu ships one as \
             bwrap-userns-restrict), or with `sysctl -w \
             kernel.apparmor_restrict_unprivileged_userns=0`"
            .into());
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mainline_kernels_allow_them_by_default() {
        assert_eq!(
            verdict(Some("20000\n"), None, None).unwrap(),
            "user.max_user_namespaces=20000"
        );
        assert_eq!(
            verdict(Some("20000\n"), Some("1\n"), Some("0\n")).unwrap(),
            "user.max_user_namespaces=20000, kernel.unprivileged_userns_clone=1"
        );
    }

    #[test]
    fn each_switch_that_forbids_them_is_named_with_its_fix() {
        let err = verdict(Some("0\n"), None, None).unwrap_err();
        assert!(
            err.contains("sysctl -w user.max_user_namespaces=15000"),
            "{err}"
        );
        let err = verdict(Some("100"), Some("0\n"), None).unwrap_err();
        assert!(err.contains("kernel.unprivileged_userns_clone=1"), "{err}");
        let err = verdict(Some("100"), None, Some("1\n")).unwrap_err();
        assert!(err.contains("AppArmor"), "{err}");
        let err = verdict(None, None, None).unwrap_err();
        assert!(err.contains("CONFIG_USER_NS"), "{err}");
    }
}
