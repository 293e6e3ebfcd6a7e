//! Where an instance's file goes and how it is written: `<root>/<Study UID>/
//! <Series UID>/<SOP Instance UID>.dcm`, through a temp file in the same
//! directory, fsynced, renamed over the target and the directory fsynced, so a
//! reader or a crash sees the old file or the new one, never half of one.
//!
//! UIDs become path components only after [`check_uid`]: digits and dots,
//! at most 64 characters, no empty component. Nothing a sender puts in a UID
//! can climb out of the root.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Longest UID (PS3.5 9.1).
pub const UID_MAX_LEN: usize = 64;

/// Why a UID cannot name a file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name} {value:?} is not a valid UID (digits and dots, at most 64 characters)")]
pub struct BadUid {
    /// Which UID.
    pub name: &'static str,
    /// The value, cut to 80 characters.
    pub value: String,
}

/// Ok when `uid` is a well-formed UID: 1–64 characters, digits and dots, no empty component.
pub fn check_uid(name: &'static str, uid: &str) -> Result<(), BadUid> {
    let ok = !uid.is_empty()
        && uid.len() <= UID_MAX_LEN
        && uid.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && uid.split('.').all(|c| !c.is_empty());
    if ok {
        Ok(())
    } else {
        Err(BadUid {
            name,
            value: uid.chars().take(80).collect(),
        })
    }
}

/// The file of one instance under `root`, after checking each UID.
pub fn instance_path(
    root: &Path,
    study_uid: &str,
    series_uid: &str,
    sop_instance_uid: &str,
) -> Result<PathBuf, BadUid> {
    check_uid("Study Instance UID", study_uid)?;
    check_uid("Series Instance UID", series_uid)?;
    check_uid("SOP Instance UID", sop_instance_uid)?;
    Ok(root
        .join(study_uid)
        .join(series_uid)
        .join(format!("{sop_instance_uid}.dcm")))
}

/// Creates `dir` and any missing parents, making each new directory entry
/// durable (fsync of its parent): a success status must survive a power loss
/// together with the study and series directories it was written into.
fn create_dirs_durably(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dirs_durably(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        // Another association created it meanwhile.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e),
    }
    match dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => File::open(parent)?.sync_all(),
        None => Ok(()),
    }
}

/// Writes `bytes` to `path` atomically and durably (creating its directories).
/// A file already there is replaced whole.
pub fn write_atomically(path: &Path, parts: &[&[u8]]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "path without a directory"))?;
    create_dirs_durably(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("instance");
    // Unique per write: two associations storing the same instance at once must not share a temp file.
    let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::now_v7().simple()));
    let written = (|| {
        let mut f = File::create(&tmp)?;
        for part in parts {
            f.write_all(part)?;
        }
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    // The rename is durable only once the directory entry is.
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_uids_name_files() {
        for bad in [
            "",
            "..",
            "1..2",
            ".1",
            "1.",
            "1/2",
            "1.2\\3",
            "a.b",
            &"1".repeat(65),
            "1.2\0",
        ] {
            assert!(check_uid("UID", bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_uid("UID", "1.2.840.10008.5.1.4.1.1.2").is_ok());
        let p = instance_path(Path::new("/data"), "1.2", "1.2.3", "1.2.3.4").unwrap();
        assert_eq!(p, Path::new("/data/1.2/1.2.3/1.2.3.4.dcm"));
        assert!(instance_path(Path::new("/data"), "1.2", "../../etc", "1").is_err());
    }

    #[test]
    fn writes_then_replaces_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.2").join("1.2.3").join("4.dcm");
        write_atomically(&path, &[b"fir", b"st"]).unwrap();
        write_atomically(&path, &[b"second"]).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "temp files left behind");
    }
}
