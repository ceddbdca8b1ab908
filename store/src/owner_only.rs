//! Files and directories only their owner can read: everything pole-ods keeps under a data
//! directory (journal, key vault, access log, projections, secrets) is 0600, every directory
//! 0700. The journal and projections hold sealed values and the vault the keys that open
//! them, so group- or world-readable copies would defeat the sealing.
//!
//! The mode is chosen when a file or directory is created (never through the process umask:
//! the workspace forbids unsafe code, and a umask would leak into every other file the
//! process writes). A file or directory that exists already, made by an older pole-ods or
//! by a library that does not let us choose its mode, is tightened when it is opened again.

use std::fs::{DirBuilder, File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::{Result, StoreError};

/// Read and write for the owner only.
pub const FILE_MODE: u32 = 0o600;
/// Read, write and search for the owner only.
pub const DIR_MODE: u32 = 0o700;
/// The bits that let anyone but the owner in.
const OTHERS: u32 = 0o077;

/// Open options that create a file 0600. The mode applies only to a file they create: pair
/// them with [`tighten_file`] when the file may exist already.
pub fn options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.mode(FILE_MODE);
    options
}

/// Creates `dir` and any missing parent 0700, and tightens `dir` itself if it existed with
/// looser permissions.
pub fn create_dir_all(dir: &Path) -> Result<()> {
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir).map_err(StoreError::io(dir))?;
    tighten(dir)
}

/// Writes `bytes` to `path` (created 0600, or truncated and tightened), like `fs::write`.
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    let mut file = options().write(true).create(true).truncate(true).open(path).map_err(StoreError::io(path))?;
    tighten_file(&file, path)?;
    file.write_all(bytes).map_err(StoreError::io(path))
}

/// Takes group and other permissions away from an open file that has any (the owner's
/// bits are left as they are).
pub fn tighten_file(file: &File, path: &Path) -> Result<()> {
    let mode = file.metadata().map_err(StoreError::io(path))?.permissions().mode();
    if mode & OTHERS != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(mode & 0o7700)).map_err(StoreError::io(path))?;
    }
    Ok(())
}

/// [`tighten_file`] for a file or directory named by its path. A symbolic link is left
/// alone (its own mode means nothing; what it points at is not ours to change).
pub fn tighten(path: &Path) -> Result<()> {
    let meta = std::fs::symlink_metadata(path).map_err(StoreError::io(path))?;
    let mode = meta.permissions().mode();
    if !meta.file_type().is_symlink() && mode & OTHERS != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o7700)).map_err(StoreError::io(path))?;
    }
    Ok(())
}

/// Tightens `dir` and everything below it: a directory filled by a library that creates its
/// files with the default mode (sled), or by an older pole-ods.
pub fn tighten_tree(dir: &Path) -> Result<()> {
    tighten(dir)?;
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StoreError::io(dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(StoreError::io(dir))?;
        let path = entry.path();
        if entry.file_type().map_err(StoreError::io(&path))?.is_dir() {
            tighten_tree(&path)?;
        } else {
            tighten(&path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn loosen(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn new_files_and_directories_are_the_owners_alone() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        create_dir_all(&nested).unwrap();
        assert_eq!(mode(&dir.path().join("a")), DIR_MODE);
        assert_eq!(mode(&nested), DIR_MODE);
        let file = nested.join("f");
        write(&file, b"x").unwrap();
        assert_eq!(mode(&file), FILE_MODE);
    }

    #[test]
    fn looser_existing_files_and_directories_are_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        loosen(&sub, 0o755);
        let file = sub.join("f");
        std::fs::write(&file, b"x").unwrap();
        loosen(&file, 0o664);
        create_dir_all(&sub).unwrap();
        assert_eq!(mode(&sub), DIR_MODE);
        write(&file, b"y").unwrap();
        assert_eq!(mode(&file), FILE_MODE);

        loosen(&sub, 0o777);
        loosen(&file, 0o644);
        tighten_tree(dir.path()).unwrap();
        assert_eq!((mode(&sub), mode(&file)), (DIR_MODE, FILE_MODE));

        // The owner's own bits are not widened: a read-only file stays read-only.
        loosen(&file, 0o444);
        tighten(&file).unwrap();
        assert_eq!(mode(&file), 0o400);
    }
}
