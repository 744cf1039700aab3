//! [`FsDisk`]: the [`Disk`] of a real node, a directory on a real file
//! system.
//!
//! This is the one module of `wal` that does real I/O. The simulator never
//! uses it (its disk is [`crate::MemDisk`] behind fault injection); the real
//! node does, and the conformance tests (`tests/conformance.rs`) hold it to
//! the same contract as `MemDisk`.
//!
//! Durability follows the [`Disk`] contract literally: [`Disk::sync`] is
//! `fsync` of the file (data and length), and [`Disk::sync_dir`] is `fsync`
//! of the directory, which is what makes a create, rename or remove survive
//! power loss on POSIX file systems.
//!
//! File handles stay open: the first use of a file opens it (read and
//! write), and later writes, reads (`pread`/`pwrite`, no seek), truncations
//! and syncs reuse the descriptor, so the WAL's hot path is one `pwrite` and
//! one `fsync` with no `open`/`close`. A handle can only go stale through a
//! rename or a removal, and both go through this type, which drops the
//! handles of the names involved first. At most [`MAX_OPEN_FILES`] stay
//! open (the WAL uses a few segments at a time); past it the cache is
//! emptied and refilled on demand.

// determinism: ok, the real disk of a real node (the simulator never uses it).
#![allow(clippy::disallowed_methods)]

use crate::disk::{Disk, DiskError};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions}; // determinism: ok, real disk for the node only
use std::io; // determinism: ok, real disk for the node only
use std::os::unix::fs::FileExt; // determinism: ok, real disk for the node only
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The most file handles kept open at once.
pub const MAX_OPEN_FILES: usize = 64;

/// The longest file name accepted (file systems commonly allow 255 bytes).
pub const MAX_NAME_BYTES: usize = 255;

/// A flat directory of files on a real file system.
#[derive(Debug)]
pub struct FsDisk {
    /// The directory. Invariant: exists (created by [`FsDisk::open`]).
    dir: PathBuf,
    /// Open handles by file name. Invariant: each is the file now at that
    /// name (renames and removals drop the handles of the names involved).
    handles: Mutex<BTreeMap<String, Arc<File>>>,
}

impl FsDisk {
    /// Opens (creating if needed) the directory `dir` as a disk.
    pub fn open(dir: impl Into<PathBuf>) -> Result<FsDisk, DiskError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|e| io_error(&dir.display().to_string(), e))?; // determinism: ok, real disk for the node only
        Ok(FsDisk {
            dir,
            handles: Mutex::new(BTreeMap::new()),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of `name`, refusing names that would leave the directory.
    fn path(&self, name: &str) -> Result<PathBuf, DiskError> {
        let valid = !name.is_empty()
            && name.len() <= MAX_NAME_BYTES
            && name != "."
            && name != ".."
            && !name.contains(['/', '\\', '\0']);
        if !valid {
            return Err(DiskError::Io(format!("invalid file name {name:?}")));
        }
        Ok(self.dir.join(name))
    }

    /// The open handle of `name`, opening it (read and write) if needed.
    fn open_file(&self, name: &str) -> Result<Arc<File>, DiskError> {
        let mut handles = self.handles.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(file) = handles.get(name) {
            return Ok(file.clone());
        }
        let path = self.path(name)?;
        let file = OpenOptions::new() // determinism: ok, real disk for the node only
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| io_error(name, e))?;
        if handles.len() >= MAX_OPEN_FILES {
            handles.clear();
        }
        let file = Arc::new(file);
        handles.insert(name.to_owned(), file.clone());
        Ok(file)
    }

    /// Drops the handle of `name`, if open.
    fn forget(&self, name: &str) {
        self.handles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
    }
}

/// Maps an OS error to the disk's vocabulary.
fn io_error(name: &str, e: io::Error) -> DiskError {
    // 28 is ENOSPC on Linux and the BSDs.
    if e.kind() == io::ErrorKind::StorageFull || e.raw_os_error() == Some(28) {
        return DiskError::NoSpace;
    }
    match e.kind() {
        io::ErrorKind::NotFound => DiskError::NotFound(name.to_owned()),
        io::ErrorKind::AlreadyExists => DiskError::AlreadyExists(name.to_owned()),
        _ => DiskError::Io(format!("{name}: {e}")),
    }
}

impl Disk for FsDisk {
    fn list(&self) -> Result<Vec<String>, DiskError> {
        let dir = self.dir.display().to_string();
        let mut names = Vec::new();
        let entries = fs::read_dir(&self.dir).map_err(|e| io_error(&dir, e))?; // determinism: ok, real disk for the node only
        for entry in entries {
            let entry = entry.map_err(|e| io_error(&dir, e))?;
            let is_file = entry.file_type().map_err(|e| io_error(&dir, e))?.is_file();
            if let (true, Some(name)) = (is_file, entry.file_name().to_str()) {
                names.push(name.to_owned());
            }
        }
        // The OS lists in its own order; the contract says sorted.
        names.sort();
        Ok(names)
    }

    fn create(&mut self, name: &str) -> Result<(), DiskError> {
        let path = self.path(name)?;
        OpenOptions::new() // determinism: ok, real disk for the node only
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| io_error(name, e))?;
        self.forget(name);
        Ok(())
    }

    fn write_at(&mut self, name: &str, offset: u64, data: &[u8]) -> Result<(), DiskError> {
        let file = self.open_file(name)?;
        file.write_all_at(data, offset)
            .map_err(|e| io_error(name, e))
    }

    fn read_at(&self, name: &str, offset: u64, len: usize) -> Result<Vec<u8>, DiskError> {
        let file = self.open_file(name)?;
        let file_len = file.metadata().map_err(|e| io_error(name, e))?.len();
        let end = offset.checked_add(len as u64);
        if end.is_none_or(|end| end > file_len) {
            return Err(DiskError::OutOfRange {
                name: name.to_owned(),
                offset,
                len: len as u64,
                file_len,
            });
        }
        let mut buf = vec![0; len];
        file.read_exact_at(&mut buf, offset)
            .map_err(|e| io_error(name, e))?;
        Ok(buf)
    }

    fn len(&self, name: &str) -> Result<u64, DiskError> {
        let path = self.path(name)?;
        let meta = fs::metadata(path).map_err(|e| io_error(name, e))?; // determinism: ok, real disk for the node only
        if !meta.is_file() {
            return Err(DiskError::NotFound(name.to_owned()));
        }
        Ok(meta.len())
    }

    fn truncate(&mut self, name: &str, len: u64) -> Result<(), DiskError> {
        let file = self.open_file(name)?;
        file.set_len(len).map_err(|e| io_error(name, e))
    }

    fn sync(&mut self, name: &str) -> Result<(), DiskError> {
        let file = self.open_file(name)?;
        file.sync_all().map_err(|e| io_error(name, e))
    }

    fn sync_dir(&mut self) -> Result<(), DiskError> {
        let dir = self.dir.display().to_string();
        let handle = File::open(&self.dir).map_err(|e| io_error(&dir, e))?; // determinism: ok, real disk for the node only
        handle.sync_all().map_err(|e| io_error(&dir, e))
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
        let (src, dst) = (self.path(from)?, self.path(to)?);
        self.forget(from);
        self.forget(to);
        fs::rename(src, dst).map_err(|e| io_error(from, e)) // determinism: ok, real disk for the node only
    }

    fn remove(&mut self, name: &str) -> Result<(), DiskError> {
        let path = self.path(name)?;
        self.forget(name);
        fs::remove_file(path).map_err(|e| io_error(name, e)) // determinism: ok, real disk for the node only
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_leave_the_directory_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut disk = FsDisk::open(dir.path()).unwrap();
        for bad in ["", ".", "..", "../x", "a/b", "a\0b"] {
            assert!(
                matches!(disk.create(bad), Err(DiskError::Io(_))),
                "{bad:?} accepted"
            );
        }
        assert_eq!(disk.list().unwrap(), Vec::<String>::new());
    }

    #[test]
    fn subdirectories_are_not_files() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap(); // determinism: ok, real disk for the node only
        let disk = FsDisk::open(dir.path()).unwrap();
        assert_eq!(disk.list().unwrap(), Vec::<String>::new());
        assert_eq!(disk.len("sub"), Err(DiskError::NotFound("sub".into())));
    }

    #[test]
    fn handles_follow_renames_and_removals() {
        let dir = tempfile::tempdir().unwrap();
        let mut disk = FsDisk::open(dir.path()).unwrap();
        disk.create("a").unwrap();
        disk.write_at("a", 0, b"old").unwrap();
        disk.create("b").unwrap();
        disk.write_at("b", 0, b"new").unwrap();
        disk.sync("a").unwrap();
        disk.rename("b", "a").unwrap();
        assert_eq!(disk.read_at("a", 0, 3).unwrap(), b"new");
        disk.write_at("a", 3, b"!").unwrap();
        assert_eq!(disk.len("a").unwrap(), 4);
        disk.remove("a").unwrap();
        assert!(matches!(
            disk.read_at("a", 0, 1),
            Err(DiskError::NotFound(_))
        ));
        disk.create("a").unwrap();
        assert_eq!(disk.len("a").unwrap(), 0, "a new file, not the removed one");
    }
}
