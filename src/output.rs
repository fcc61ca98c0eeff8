//! Writing a file the user named (`export -o`, `replay --report`, `report -o`,
//! `diff -o`): the path is the user's, so whatever is already there stays theirs.
//!
//! - **A new file** is written to a temporary file beside it and renamed into place, so a
//!   reader never sees half of it; it is created with mode 666 less the umask, as the shell's
//!   `>` would.
//! - **An existing regular file** keeps its identity: the path is followed through symlinks
//!   (the link stays a link, its target gets the content), the mode and owner are kept, a
//!   file that cannot be written is refused, and a file with other hard links is written in
//!   place (a rename would break the links). The content is made in full before the file is
//!   touched, so a failure while making it leaves the file as it was.
//! - **Anything else that exists** (a FIFO, `/dev/stdout`, a process substitution, a
//!   device) is written through, as the shell would: a FIFO's reader gets the content, and a
//!   full device reports its error. A directory or a socket is refused.
//!
//! Known limit: the rename of an existing file drops extended attributes and ACLs.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::Error;

/// Symlinks followed before giving up (the kernel's own limit is 40).
const MAX_LINKS: usize = 40;

/// Check, before any work is done, that `path` can be written: its directory exists, and
/// what is there (if anything) is a file, FIFO or device that may be written.
pub fn check(path: &Path) -> Result<(), Error> {
    let fail = |source| Error::WriteFile {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::metadata(path) {
        Ok(meta) => match Kind::of(&meta) {
            Kind::Directory | Kind::Socket => Err(fail(Kind::of(&meta).refusal())),
            // Opening a FIFO for writing waits for its reader: not done here.
            Kind::Other => Ok(()),
            Kind::Regular => OpenOptions::new()
                .write(true)
                .open(path)
                .map(drop)
                .map_err(fail),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let target = resolve_dangling(path).map_err(fail)?;
            parent_dir(&target).map(drop).map_err(fail)
        }
        Err(e) => Err(fail(e)),
    }
}

/// Write `bytes` to `path` (see the module documentation for what happens to what is there).
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    write_with(path, |out| out.write_all(bytes))
}

/// Write what `produce` writes to `path` (see the module documentation). `produce` gets a
/// buffered writer; an error it returns leaves an existing file untouched.
pub fn write_with<F>(path: &Path, produce: F) -> Result<(), Error>
where
    F: FnOnce(&mut dyn Write) -> io::Result<()>,
{
    write_inner(path, produce).map_err(|source| Error::WriteFile {
        path: path.to_path_buf(),
        source,
    })
}

fn write_inner<F>(path: &Path, produce: F) -> io::Result<()>
where
    F: FnOnce(&mut dyn Write) -> io::Result<()>,
{
    // The kernel follows the links (also /proc's magic ones: /dev/stdout on a pipe).
    match std::fs::metadata(path) {
        Ok(meta) => match Kind::of(&meta) {
            Kind::Directory | Kind::Socket => Err(Kind::of(&meta).refusal()),
            Kind::Other => {
                let file = OpenOptions::new().write(true).open(path)?;
                let mut out = BufWriter::new(file);
                produce(&mut out)?;
                out.flush()
            }
            // The file itself, wherever links lead, is replaced (a link stays a link).
            Kind::Regular => replace_existing(&std::fs::canonicalize(path)?, &meta, produce),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            create_new(&resolve_dangling(path)?, produce)
        }
        Err(e) => Err(e),
    }
}

/// What is at a path, as far as writing it goes.
#[derive(Clone, Copy)]
enum Kind {
    Regular,
    Directory,
    Socket,
    /// A FIFO or a device: written through.
    Other,
}

impl Kind {
    fn of(meta: &Metadata) -> Kind {
        if meta.is_file() {
            return Kind::Regular;
        }
        if meta.is_dir() {
            return Kind::Directory;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt;
            if meta.file_type().is_socket() {
                return Kind::Socket;
            }
        }
        Kind::Other
    }

    fn refusal(self) -> io::Error {
        match self {
            Kind::Directory => io::Error::other("it is a directory"),
            _ => io::Error::other("it is a socket, not a file"),
        }
    }
}

/// Where a new file at `path` goes: `path` itself, or, when it is a dangling symlink, the
/// file the link names (the link is written through, as the shell's `>` does).
fn resolve_dangling(path: &Path) -> io::Result<PathBuf> {
    let mut at = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match std::fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let link = std::fs::read_link(&at)?;
                at = match at.parent() {
                    Some(dir) if link.is_relative() => dir.join(link),
                    _ => link,
                };
            }
            Ok(_) => return Ok(at),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(at),
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("too many levels of symbolic links"))
}

/// The directory a new file goes into; it must exist (a typo in `-o` is an error, not a new
/// folder).
fn parent_dir(path: &Path) -> io::Result<&Path> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if dir.is_dir() {
        Ok(dir)
    } else {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no directory {}", dir.display()),
        ))
    }
}

/// A temporary file beside `path`, hidden, removed unless persisted.
fn temp_beside(path: &Path, mode: u32) -> io::Result<tempfile::NamedTempFile> {
    let dir = parent_dir(path)?;
    let name = path
        .file_name()
        .map_or_else(|| "output".into(), |n| n.to_string_lossy().into_owned());
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".partial");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // The umask applies, as for any new file.
        builder.permissions(std::fs::Permissions::from_mode(mode));
    }
    #[cfg(not(unix))]
    let _ = mode;
    builder.tempfile_in(dir)
}

/// Fill `file` with what `produce` writes, then make it durable.
fn fill<F>(file: &File, produce: F) -> io::Result<()>
where
    F: FnOnce(&mut dyn Write) -> io::Result<()>,
{
    let mut out = BufWriter::new(file);
    produce(&mut out)?;
    out.flush()?;
    drop(out);
    file.sync_all()
}

fn create_new<F>(path: &Path, produce: F) -> io::Result<()>
where
    F: FnOnce(&mut dyn Write) -> io::Result<()>,
{
    let temp = temp_beside(path, 0o666)?;
    fill(temp.as_file(), produce)?;
    temp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

fn replace_existing<F>(path: &Path, meta: &Metadata, produce: F) -> io::Result<()>
where
    F: FnOnce(&mut dyn Write) -> io::Result<()>,
{
    // A file the user may not write is refused, as `>` would refuse it (even though the
    // directory would let a rename replace it).
    let existing = OpenOptions::new().write(true).open(path)?;
    if !has_other_links(meta)
        && let Ok(temp) = temp_beside(path, 0o600)
        && same_mode_and_owner(temp.as_file(), meta).is_ok()
    {
        fill(temp.as_file(), produce)?;
        temp.persist(path).map_err(|e| e.error)?;
        return Ok(());
    }
    // In place: hard links, a directory we may not write, an owner we cannot give a new
    // file. The content is made first, so a failure to make it changes nothing.
    let mut made = tempfile::tempfile()?;
    fill(&made, produce)?;
    io::Seek::seek(&mut made, io::SeekFrom::Start(0))?;
    existing.set_len(0)?;
    let mut out = BufWriter::new(&existing);
    io::copy(&mut made, &mut out)?;
    out.flush()?;
    drop(out);
    existing.sync_all()
}

#[cfg(unix)]
fn has_other_links(meta: &Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    meta.nlink() > 1
}

#[cfg(not(unix))]
fn has_other_links(_meta: &Metadata) -> bool {
    false
}

/// Give the replacement the mode (exactly, not less the umask) and owner of the original.
#[cfg(unix)]
fn same_mode_and_owner(file: &File, meta: &Metadata) -> io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt, fchown};
    let own = file.metadata()?;
    if own.uid() != meta.uid() || own.gid() != meta.gid() {
        fchown(file, Some(meta.uid()), Some(meta.gid()))?;
    }
    file.set_permissions(std::fs::Permissions::from_mode(meta.mode() & 0o7777))
}

#[cfg(not(unix))]
fn same_mode_and_owner(file: &File, meta: &Metadata) -> io::Result<()> {
    file.set_permissions(meta.permissions())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_files_go_only_into_existing_directories_and_leave_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("r.json");
        write_bytes(&ok, b"{}").unwrap();
        assert_eq!(std::fs::read(&ok).unwrap(), b"{}");
        let err = write_bytes(&dir.path().join("missing/r.json"), b"x").unwrap_err();
        assert!(format!("{}", crate::error::Chain(&err)).contains("no directory"));
        let err = write_bytes(dir.path(), b"x").unwrap_err();
        assert_eq!(
            format!("{}", crate::error::Chain(&err)),
            format!("cannot write {}: it is a directory", dir.path().display())
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_failure_while_producing_leaves_the_file_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("r.json");
        std::fs::write(&file, b"before").unwrap();
        let err = write_with(&file, |out| {
            out.write_all(b"half")?;
            Err(io::Error::other("the export failed"))
        })
        .unwrap_err();
        assert!(format!("{}", crate::error::Chain(&err)).ends_with("the export failed"));
        assert_eq!(std::fs::read(&file).unwrap(), b"before");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn links_modes_and_hard_links_are_kept() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target.json");
        std::fs::write(&target, b"old").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
        let link = dir.path().join("link.json");
        symlink("target.json", &link).unwrap();
        write_bytes(&link, b"new").unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        assert_eq!(std::fs::metadata(&target).unwrap().mode() & 0o777, 0o600);

        let hard = dir.path().join("hard.json");
        std::fs::hard_link(&target, &hard).unwrap();
        let ino = std::fs::metadata(&target).unwrap().ino();
        write_bytes(&target, b"linked").unwrap();
        assert_eq!(std::fs::read(&hard).unwrap(), b"linked");
        assert_eq!(std::fs::metadata(&target).unwrap().ino(), ino);

        let dangling = dir.path().join("dangling.json");
        symlink("made.json", &dangling).unwrap();
        write_bytes(&dangling, b"made").unwrap();
        assert!(std::fs::symlink_metadata(&dangling).unwrap().is_symlink());
        assert_eq!(
            std::fs::read(dir.path().join("made.json")).unwrap(),
            b"made"
        );
    }
}
