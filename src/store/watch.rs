//! Noticing that the file being recorded into is no longer the file at its path: deleted,
//! moved away or replaced while `record` runs. SQLite keeps writing to the open file, so
//! every write succeeds and the session is lost without an error; the writer compares the
//! file's identity (device and inode) after each batch and at the end. (The writer holds
//! the file open, so its inode number cannot be given to a new file meanwhile.)

use std::path::{Path, PathBuf};

/// The identity of the recording file when the writer opened it.
#[derive(Debug)]
pub(super) struct Watch {
    path: PathBuf,
    identity: Option<(u64, u64)>,
}

impl Watch {
    pub(super) fn new(path: &Path) -> Self {
        Watch {
            path: path.to_path_buf(),
            identity: identity(path),
        }
    }

    /// Whether the file at the path is still the one being written (gone already when the
    /// watch began: not).
    #[cfg(unix)]
    pub(super) fn still_there(&self) -> bool {
        self.identity.is_some() && identity(&self.path) == self.identity
    }

    /// Without inode numbers there is nothing to compare.
    #[cfg(not(unix))]
    pub(super) fn still_there(&self) -> bool {
        true
    }
}

#[cfg(unix)]
fn identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn identity(_path: &Path) -> Option<(u64, u64)> {
    None
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_deleted_or_replaced_file_is_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rec.sqlite");
        std::fs::write(&path, b"x").unwrap();
        // Held open, as SQLite holds it: its inode cannot be reused by the next file.
        let _open = std::fs::File::open(&path).unwrap();
        let watch = Watch::new(&path);
        assert!(watch.still_there());
        std::fs::remove_file(&path).unwrap();
        assert!(!watch.still_there());
        std::fs::write(&path, b"x").unwrap();
        assert!(!watch.still_there(), "another file at the same path");
    }
}
