//! Hands files back to the user who ran `sudo hc-trace`.
//!
//! Capturing usually needs root, but the captures are the user's: a root-owned
//! pcapng in their home directory could not be renamed or deleted by them, and
//! a root-owned directory would even stop the next unprivileged run from
//! writing into it.

use std::path::Path;

/// Gives `path` to the user and group sudo recorded (SUDO_UID / SUDO_GID).
///
/// Does nothing unless we are root and both variables hold numbers: without
/// sudo the files are already the caller's, and a half-set or garbled
/// environment is no reason to guess an owner.
pub fn give_to_invoking_user(path: &Path) -> std::io::Result<()> {
    if !crate::system::is_root() {
        return Ok(());
    }
    match invoking_user(
        std::env::var("SUDO_UID").ok().as_deref(),
        std::env::var("SUDO_GID").ok().as_deref(),
    ) {
        Some((uid, gid)) => std::os::unix::fs::chown(path, Some(uid), Some(gid)),
        None => Ok(()),
    }
}

/// The (uid, gid) pair to hand files to, when both variables are present and numeric.
///
/// Kept apart from the environment so the parsing can be tested without
/// changing the process-wide environment under other tests.
fn invoking_user(uid: Option<&str>, gid: Option<&str>) -> Option<(u32, u32)> {
    let uid = uid?.trim().parse().ok()?;
    let gid = gid?.trim().parse().ok()?;
    Some((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_ids_are_needed_and_must_be_numbers() {
        assert_eq!(invoking_user(Some("1000"), Some("100")), Some((1000, 100)));
        assert_eq!(invoking_user(Some("1000"), None), None);
        assert_eq!(invoking_user(None, Some("100")), None);
        assert_eq!(invoking_user(Some("alice"), Some("100")), None);
        assert_eq!(invoking_user(Some("-1"), Some("100")), None);
        assert_eq!(invoking_user(Some(""), Some("")), None);
    }

    #[test]
    fn a_missing_file_is_only_an_error_when_there_is_someone_to_give_it_to() {
        let missing = Path::new("/nonexistent/hc-trace/ownership-test");
        let r = give_to_invoking_user(missing);
        let acting = crate::system::is_root()
            && invoking_user(
                std::env::var("SUDO_UID").ok().as_deref(),
                std::env::var("SUDO_GID").ok().as_deref(),
            )
            .is_some();
        assert_eq!(r.is_err(), acting);
    }
}
