//! The one door to durability: the [`Disk`] trait, and [`MemDisk`], an
//! in-memory disk that forgets unsynced writes on a crash.
//!
//! The trait is a flat directory of files, with the two barriers real file
//! systems offer: [`Disk::sync`] makes one file's *data* durable,
//! [`Disk::sync_dir`] makes the directory's *entries* durable (creates,
//! renames, removes). Code that wants a file to survive a crash must do both:
//! a created file whose directory was never synced may vanish, and a file
//! whose data was never synced may survive empty.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;

/// Why a disk operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiskError {
    /// No file of that name.
    NotFound(String),
    /// [`Disk::create`] of a name that exists.
    AlreadyExists(String),
    /// A read that runs past the end of the file.
    OutOfRange {
        /// The file.
        name: String,
        /// Where the read started.
        offset: u64,
        /// How many bytes were asked for.
        len: u64,
        /// The file's length.
        file_len: u64,
    },
    /// The disk is full.
    NoSpace,
    /// Any other failure (an injected fault, an OS error).
    Io(String),
}

impl fmt::Display for DiskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiskError::NotFound(name) => write!(f, "{name}: no such file"),
            DiskError::AlreadyExists(name) => write!(f, "{name}: already exists"),
            DiskError::OutOfRange {
                name,
                offset,
                len,
                file_len,
            } => write!(
                f,
                "{name}: read of {len} bytes at offset {offset} runs past the end ({file_len})"
            ),
            DiskError::NoSpace => write!(f, "no space left on the disk"),
            DiskError::Io(why) => write!(f, "i/o error: {why}"),
        }
    }
}

impl std::error::Error for DiskError {}

/// A flat directory of files: everything the write-ahead log needs from a
/// disk. The simulator supplies [`MemDisk`] (or a faultier relative); the
/// real node supplies one over `std::fs`.
pub trait Disk {
    /// The names of all files, sorted.
    fn list(&self) -> Result<Vec<String>, DiskError>;
    /// Creates a new, empty file. Fails if the name exists. The new entry is
    /// durable only after [`Disk::sync_dir`].
    fn create(&mut self, name: &str) -> Result<(), DiskError>;
    /// Writes `data` at `offset`, extending the file if needed (a gap past the
    /// old end reads as zeros). Durable only after [`Disk::sync`].
    fn write_at(&mut self, name: &str, offset: u64, data: &[u8]) -> Result<(), DiskError>;
    /// Reads exactly `len` bytes at `offset`; a read past the end fails with
    /// [`DiskError::OutOfRange`] rather than returning fewer bytes.
    fn read_at(&self, name: &str, offset: u64, len: usize) -> Result<Vec<u8>, DiskError>;
    /// The file's length in bytes.
    fn len(&self, name: &str) -> Result<u64, DiskError>;
    /// Sets the file's length: cuts it, or extends it with zeros. Durable
    /// only after [`Disk::sync`].
    fn truncate(&mut self, name: &str, len: u64) -> Result<(), DiskError>;
    /// Makes the file's data (contents and length) durable.
    fn sync(&mut self, name: &str) -> Result<(), DiskError>;
    /// Makes the directory's entries durable: every create, rename and remove
    /// done before it.
    fn sync_dir(&mut self) -> Result<(), DiskError>;
    /// Renames `from` to `to`, atomically replacing `to` if it exists.
    /// Durable only after [`Disk::sync_dir`].
    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError>;
    /// Removes a file. Durable only after [`Disk::sync_dir`].
    fn remove(&mut self, name: &str) -> Result<(), DiskError>;
}

/// A mutating [`Disk`] call, as a [`DelegatingDisk`] sees it before
/// forwarding it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutation {
    /// [`Disk::create`].
    Create,
    /// [`Disk::write_at`].
    WriteAt,
    /// [`Disk::truncate`].
    Truncate,
    /// [`Disk::sync`].
    Sync,
    /// [`Disk::sync_dir`].
    SyncDir,
    /// [`Disk::rename`].
    Rename,
    /// [`Disk::remove`].
    Remove,
}

/// A disk that forwards every call to an inner disk, with two hooks: one
/// before each mutating call (which may fail it, say a power loss at the
/// n-th sync) and one on the bytes of each read (which may damage them).
/// Every type implementing this is a [`Disk`], so a test's faulty wrapper
/// states only its fault, not the delegation of all ten methods.
pub trait DelegatingDisk {
    /// The disk calls are forwarded to.
    type Inner: Disk + ?Sized;
    /// The inner disk, for reads.
    fn inner(&self) -> &Self::Inner;
    /// The inner disk, for writes.
    fn inner_mut(&mut self) -> &mut Self::Inner;
    /// Runs before `call` is forwarded; an error fails the call without it
    /// reaching the inner disk. Forwards everything by default.
    fn before_mutation(&mut self, call: Mutation) -> Result<(), DiskError> {
        let _ = call;
        Ok(())
    }
    /// Runs on the bytes of every successful read before they are returned.
    /// Leaves them alone by default.
    fn after_read(&self, data: &mut [u8]) {
        let _ = data;
    }
}

impl<T: DelegatingDisk> Disk for T {
    fn list(&self) -> Result<Vec<String>, DiskError> {
        self.inner().list()
    }
    fn create(&mut self, name: &str) -> Result<(), DiskError> {
        self.before_mutation(Mutation::Create)?;
        self.inner_mut().create(name)
    }
    fn write_at(&mut self, name: &str, offset: u64, data: &[u8]) -> Result<(), DiskError> {
        self.before_mutation(Mutation::WriteAt)?;
        self.inner_mut().write_at(name, offset, data)
    }
    fn read_at(&self, name: &str, offset: u64, len: usize) -> Result<Vec<u8>, DiskError> {
        let mut data = self.inner().read_at(name, offset, len)?;
        self.after_read(&mut data);
        Ok(data)
    }
    fn len(&self, name: &str) -> Result<u64, DiskError> {
        self.inner().len(name)
    }
    fn truncate(&mut self, name: &str, len: u64) -> Result<(), DiskError> {
        self.before_mutation(Mutation::Truncate)?;
        self.inner_mut().truncate(name, len)
    }
    fn sync(&mut self, name: &str) -> Result<(), DiskError> {
        self.before_mutation(Mutation::Sync)?;
        self.inner_mut().sync(name)
    }
    fn sync_dir(&mut self) -> Result<(), DiskError> {
        self.before_mutation(Mutation::SyncDir)?;
        self.inner_mut().sync_dir()
    }
    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
        self.before_mutation(Mutation::Rename)?;
        self.inner_mut().rename(from, to)
    }
    fn remove(&mut self, name: &str) -> Result<(), DiskError> {
        self.before_mutation(Mutation::Remove)?;
        self.inner_mut().remove(name)
    }
}

/// A boxed disk (`Box<dyn Disk>`, say) is the disk in the box.
impl<D: Disk + ?Sized> DelegatingDisk for Box<D> {
    type Inner = D;
    fn inner(&self) -> &D {
        self
    }
    fn inner_mut(&mut self) -> &mut D {
        self
    }
}

/// An in-memory [`Disk`] that models what survives power loss.
///
/// A `MemDisk` is a *handle*: clones share one disk (single-threaded,
/// `Rc<RefCell<..>>` inside), so the simulator keeps a handle to crash, count
/// and corrupt the disk while the write-ahead log owns another.
///
/// It is modelled like a POSIX file system: names in a directory point to
/// files (inodes), and data and directory entries become durable separately.
///
/// # What survives [`MemDisk::crash`]
///
/// * **The directory** is exactly as of the last [`Disk::sync_dir`]: files
///   created since then are gone, files removed since then are back, and
///   renames since then are undone (each name points again to the file it
///   named at that sync).
/// * **Each file that the directory then names** holds exactly the contents
///   (data and length) it had at its last [`Disk::sync`], whichever name it was
///   synced under; a file never synced is empty. Writes and truncations since
///   that sync are lost entirely: `crash` loses the whole unsynced suffix of
///   history, per file. [`MemDisk::crash_torn`] keeps a chosen prefix of it
///   instead (a torn write).
/// * Files named by no durable entry are gone, even if their data was synced.
/// * Counters and the capacity setting are not disk contents: they survive.
///
/// Everything is ordered (BTreeMap) and deterministic.
#[derive(Clone, Debug, Default)]
pub struct MemDisk {
    state: Rc<RefCell<MemDiskState>>,
}

type Inode = u64;

#[derive(Clone, Debug, Default)]
struct MemDiskState {
    /// The directory as the running system sees it. Invariant: every inode
    /// named here is in `files`.
    names: BTreeMap<String, Inode>,
    /// The directory as of the last `sync_dir`, what a crash reverts to.
    /// Invariant: every inode named here is in `files`.
    durable_names: BTreeMap<String, Inode>,
    /// File contents. Invariant: holds exactly the inodes named by `names` or
    /// `durable_names` (others are dropped as soon as neither names them).
    files: BTreeMap<Inode, FileData>,
    /// The next inode number to hand out; never reused.
    next_inode: Inode,
    /// Bytes passed to `write_at`, in total.
    bytes_written: u64,
    /// Calls to `sync` and `sync_dir`, in total.
    syncs: u64,
    /// Crashes, in total.
    crashes: u64,
    /// The most bytes all files may hold together (their current contents).
    capacity: Option<u64>,
}

#[derive(Clone, Debug, Default)]
struct FileData {
    /// What reads see.
    current: Vec<u8>,
    /// What a crash leaves: the contents at the last `sync`.
    durable: Vec<u8>,
    /// The lowest offset written or truncated since the last `sync`, if any.
    /// Invariant: `current` and `durable` agree on every byte below it (on
    /// all bytes when `None`), so a sync copies only the changed suffix:
    /// an append-only log syncs in time proportional to what was appended.
    dirty_from: Option<usize>,
}

impl FileData {
    fn touch(&mut self, offset: usize) {
        self.dirty_from = Some(self.dirty_from.map_or(offset, |d| d.min(offset)));
    }

    fn sync(&mut self) {
        if let Some(from) = self.dirty_from.take() {
            let keep = from.min(self.current.len()).min(self.durable.len());
            self.durable.truncate(keep);
            self.durable.extend_from_slice(&self.current[keep..]);
        }
        // Comparing lengths, not bytes: a full comparison would make every
        // sync cost the whole file again in debug builds.
        debug_assert_eq!(
            self.current.len(),
            self.durable.len(),
            "a synced file is durable as it is"
        );
    }
}

impl MemDiskState {
    fn inode(&self, name: &str) -> Result<Inode, DiskError> {
        self.names
            .get(name)
            .copied()
            .ok_or_else(|| DiskError::NotFound(name.to_owned()))
    }

    fn file(&self, name: &str) -> Result<&FileData, DiskError> {
        let inode = self.inode(name)?;
        Ok(&self.files[&inode])
    }

    fn file_mut(&mut self, name: &str) -> Result<&mut FileData, DiskError> {
        let inode = self.inode(name)?;
        Ok(self.files.get_mut(&inode).expect("named inodes exist"))
    }

    fn used(&self) -> u64 {
        self.files.values().map(|f| f.current.len() as u64).sum()
    }

    /// Fails with `NoSpace` if growing a file from `old_len` to `new_len`
    /// would exceed the capacity.
    fn check_space(&self, old_len: u64, new_len: u64) -> Result<(), DiskError> {
        if let Some(capacity) = self.capacity
            && new_len > old_len
            && self.used() + (new_len - old_len) > capacity
        {
            return Err(DiskError::NoSpace);
        }
        Ok(())
    }

    /// Drops files that no name, current or durable, refers to.
    fn collect_garbage(&mut self) {
        let names = &self.names;
        let durable = &self.durable_names;
        self.files.retain(|inode, _| {
            names.values().any(|i| i == inode) || durable.values().any(|i| i == inode)
        });
    }
}

impl MemDisk {
    /// An empty disk.
    pub fn new() -> MemDisk {
        MemDisk::default()
    }

    /// An independent copy of this disk (durable and not yet durable state,
    /// counters): unlike `clone`, which shares one disk between handles,
    /// changes to the copy do not show here.
    pub fn fork(&self) -> MemDisk {
        MemDisk {
            state: Rc::new(RefCell::new(self.state.borrow().clone())),
        }
    }

    /// Power loss: every write, truncation, create, rename and remove that was
    /// not made durable is lost. See the type's documentation for exactly what
    /// survives.
    pub fn crash(&self) {
        let mut s = self.state.borrow_mut();
        s.names = s.durable_names.clone();
        for file in s.files.values_mut() {
            file.current.clone_from(&file.durable);
            file.dirty_from = None;
        }
        s.collect_garbage();
        s.crashes += 1;
    }

    /// Power loss during writes: like [`MemDisk::crash`], except that part
    /// of each file's unsynced data may reach the medium first. For each file
    /// a crash leaves, with unsynced changes from byte `from` on and `len`
    /// bytes as reads saw it, `keep(from, len)` says up to where (an offset,
    /// clamped to `from..=len`) the current contents persist; beyond it the
    /// file holds what it held at its last sync. The simulator tears writes
    /// at sector boundaries this way. Returns the bytes of unsynced data
    /// kept, over all files.
    pub fn crash_torn(&self, mut keep: impl FnMut(u64, u64) -> u64) -> u64 {
        let mut s = self.state.borrow_mut();
        s.names = s.durable_names.clone();
        s.collect_garbage();
        let mut kept = 0;
        for file in s.files.values_mut() {
            if let Some(from) = file.dirty_from {
                let len = file.current.len();
                let from = from.min(len);
                let end = usize::try_from(keep(from as u64, len as u64))
                    .unwrap_or(len)
                    .clamp(from, len);
                let mut torn = file.current[..end].to_vec();
                if file.durable.len() > end {
                    torn.extend_from_slice(&file.durable[end..]);
                }
                kept += (end - from) as u64;
                file.durable = torn;
            }
            file.current.clone_from(&file.durable);
            file.dirty_from = None;
        }
        s.crashes += 1;
        kept
    }

    /// Total bytes passed to `write_at` since the disk was made.
    pub fn bytes_written(&self) -> u64 {
        self.state.borrow().bytes_written
    }

    /// Total calls to `sync` and `sync_dir` since the disk was made.
    pub fn syncs(&self) -> u64 {
        self.state.borrow().syncs
    }

    /// Total calls to [`MemDisk::crash`].
    pub fn crashes(&self) -> u64 {
        self.state.borrow().crashes
    }

    /// Limits the bytes all files may hold together; writes and extending
    /// truncations beyond it fail with [`DiskError::NoSpace`]. `None` (the
    /// default) is unlimited.
    pub fn set_capacity(&self, capacity: Option<u64>) {
        self.state.borrow_mut().capacity = capacity;
    }

    /// The contents of a file as reads see them now, if it exists.
    pub fn contents(&self, name: &str) -> Option<Vec<u8>> {
        let s = self.state.borrow();
        s.file(name).ok().map(|f| f.current.clone())
    }

    /// The contents a crash now would leave under `name`, if the name would
    /// survive.
    pub fn durable_contents(&self, name: &str) -> Option<Vec<u8>> {
        let s = self.state.borrow();
        let inode = s.durable_names.get(name)?;
        Some(s.files[inode].durable.clone())
    }

    /// Bit rot: XORs `mask` into the byte at `offset` of a file, in both its
    /// current and its durable contents (the medium itself changed). Returns
    /// whether there was such a byte in the current contents.
    pub fn corrupt(&self, name: &str, offset: u64, mask: u8) -> bool {
        let mut s = self.state.borrow_mut();
        let Ok(file) = s.file_mut(name) else {
            return false;
        };
        let Ok(at) = usize::try_from(offset) else {
            return false;
        };
        if let Some(b) = file.durable.get_mut(at) {
            *b ^= mask;
        }
        match file.current.get_mut(at) {
            Some(b) => {
                *b ^= mask;
                true
            }
            None => false,
        }
    }
}

fn to_usize(n: u64) -> Result<usize, DiskError> {
    usize::try_from(n).map_err(|_| DiskError::Io(format!("offset {n} does not fit in memory")))
}

impl Disk for MemDisk {
    fn list(&self) -> Result<Vec<String>, DiskError> {
        Ok(self.state.borrow().names.keys().cloned().collect())
    }

    fn create(&mut self, name: &str) -> Result<(), DiskError> {
        let mut s = self.state.borrow_mut();
        if s.names.contains_key(name) {
            return Err(DiskError::AlreadyExists(name.to_owned()));
        }
        let inode = s.next_inode;
        s.next_inode += 1;
        s.files.insert(inode, FileData::default());
        s.names.insert(name.to_owned(), inode);
        Ok(())
    }

    fn write_at(&mut self, name: &str, offset: u64, data: &[u8]) -> Result<(), DiskError> {
        let mut s = self.state.borrow_mut();
        let old_len = s.file(name)?.current.len() as u64;
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or(DiskError::NoSpace)?;
        s.check_space(old_len, end)?;
        let (start, end) = (to_usize(offset)?, to_usize(end)?);
        let file = s.file_mut(name)?;
        // Writing past the end also changes the zero-filled gap before it.
        file.touch(start.min(file.current.len()));
        if file.current.len() < end {
            file.current.resize(end, 0);
        }
        file.current[start..end].copy_from_slice(data);
        s.bytes_written += data.len() as u64;
        Ok(())
    }

    fn read_at(&self, name: &str, offset: u64, len: usize) -> Result<Vec<u8>, DiskError> {
        let s = self.state.borrow();
        let file = s.file(name)?;
        let file_len = file.current.len() as u64;
        let out_of_range = || DiskError::OutOfRange {
            name: name.to_owned(),
            offset,
            len: len as u64,
            file_len,
        };
        let end = offset.checked_add(len as u64).ok_or_else(out_of_range)?;
        if end > file_len {
            return Err(out_of_range());
        }
        // Both fit: they are at most the length of an in-memory Vec.
        Ok(file.current[offset as usize..end as usize].to_vec())
    }

    fn len(&self, name: &str) -> Result<u64, DiskError> {
        Ok(self.state.borrow().file(name)?.current.len() as u64)
    }

    fn truncate(&mut self, name: &str, len: u64) -> Result<(), DiskError> {
        let mut s = self.state.borrow_mut();
        let old_len = s.file(name)?.current.len() as u64;
        s.check_space(old_len, len)?;
        let len = to_usize(len)?;
        let file = s.file_mut(name)?;
        file.current.resize(len, 0);
        file.touch(len);
        Ok(())
    }

    fn sync(&mut self, name: &str) -> Result<(), DiskError> {
        let mut s = self.state.borrow_mut();
        let file = s.file_mut(name)?;
        file.sync();
        s.syncs += 1;
        Ok(())
    }

    fn sync_dir(&mut self) -> Result<(), DiskError> {
        let mut s = self.state.borrow_mut();
        s.durable_names = s.names.clone();
        s.collect_garbage();
        s.syncs += 1;
        Ok(())
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
        let mut s = self.state.borrow_mut();
        let inode = s.inode(from)?;
        if from == to {
            return Ok(());
        }
        s.names.remove(from);
        s.names.insert(to.to_owned(), inode);
        s.collect_garbage();
        Ok(())
    }

    fn remove(&mut self, name: &str) -> Result<(), DiskError> {
        let mut s = self.state.borrow_mut();
        s.inode(name)?;
        s.names.remove(name);
        s.collect_garbage();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(disk: &mut MemDisk, name: &str, data: &[u8]) {
        let len = disk.len(name).unwrap();
        disk.write_at(name, len, data).unwrap();
    }

    fn durable_file(disk: &mut MemDisk, name: &str, data: &[u8]) {
        disk.create(name).unwrap();
        disk.sync_dir().unwrap();
        write(disk, name, data);
        disk.sync(name).unwrap();
    }

    #[test]
    fn crash_loses_unsynced_writes_and_keeps_synced_ones() {
        let mut disk = MemDisk::new();
        durable_file(&mut disk, "f", b"abc");
        write(&mut disk, "f", b"def");
        disk.write_at("f", 0, b"X").unwrap();
        assert_eq!(disk.contents("f").unwrap(), b"Xbcdef");
        disk.crash();
        assert_eq!(disk.contents("f").unwrap(), b"abc");
    }

    #[test]
    fn crash_undoes_unsynced_truncation() {
        let mut disk = MemDisk::new();
        durable_file(&mut disk, "f", b"abcdef");
        disk.truncate("f", 2).unwrap();
        assert_eq!(disk.len("f").unwrap(), 2);
        disk.crash();
        assert_eq!(disk.contents("f").unwrap(), b"abcdef");
    }

    #[test]
    fn created_file_without_sync_dir_vanishes_even_if_its_data_was_synced() {
        let mut disk = MemDisk::new();
        disk.create("f").unwrap();
        write(&mut disk, "f", b"data");
        disk.sync("f").unwrap();
        disk.crash();
        assert_eq!(disk.list().unwrap(), Vec::<String>::new());
    }

    #[test]
    fn created_file_with_sync_dir_but_no_data_sync_survives_empty() {
        let mut disk = MemDisk::new();
        disk.create("f").unwrap();
        disk.sync_dir().unwrap();
        write(&mut disk, "f", b"data");
        disk.crash();
        assert_eq!(disk.list().unwrap(), vec!["f".to_string()]);
        assert_eq!(disk.contents("f").unwrap(), b"");
    }

    #[test]
    fn rename_is_undone_by_a_crash_before_sync_dir_and_kept_after() {
        let mut disk = MemDisk::new();
        durable_file(&mut disk, "a", b"old");
        durable_file(&mut disk, "tmp", b"new");
        disk.rename("tmp", "a").unwrap();
        assert_eq!(disk.contents("a").unwrap(), b"new");
        assert_eq!(disk.list().unwrap(), vec!["a".to_string()]);
        disk.crash();
        assert_eq!(disk.contents("a").unwrap(), b"old");
        assert_eq!(disk.contents("tmp").unwrap(), b"new");

        disk.rename("tmp", "a").unwrap();
        disk.sync_dir().unwrap();
        disk.crash();
        assert_eq!(disk.list().unwrap(), vec!["a".to_string()]);
        assert_eq!(disk.contents("a").unwrap(), b"new");
    }

    #[test]
    fn data_synced_under_a_new_name_survives_with_the_file() {
        let mut disk = MemDisk::new();
        durable_file(&mut disk, "a", b"one");
        disk.rename("a", "b").unwrap();
        write(&mut disk, "b", b"two");
        disk.sync("b").unwrap();
        disk.crash();
        // The rename is undone, but the data sync went to the file itself.
        assert_eq!(disk.contents("a").unwrap(), b"onetwo");
        assert_eq!(disk.contents("b"), None);
    }

    #[test]
    fn remove_is_undone_by_a_crash_before_sync_dir() {
        let mut disk = MemDisk::new();
        durable_file(&mut disk, "f", b"x");
        disk.remove("f").unwrap();
        assert_eq!(disk.contents("f"), None);
        disk.crash();
        assert_eq!(disk.contents("f").unwrap(), b"x");
        disk.remove("f").unwrap();
        disk.sync_dir().unwrap();
        disk.crash();
        assert_eq!(disk.contents("f"), None);
    }

    #[test]
    fn errors_name_the_problem() {
        let mut disk = MemDisk::new();
        assert_eq!(disk.len("f"), Err(DiskError::NotFound("f".into())));
        disk.create("f").unwrap();
        assert_eq!(disk.create("f"), Err(DiskError::AlreadyExists("f".into())));
        disk.write_at("f", 0, b"abc").unwrap();
        assert_eq!(
            disk.read_at("f", 2, 2),
            Err(DiskError::OutOfRange {
                name: "f".into(),
                offset: 2,
                len: 2,
                file_len: 3
            })
        );
        assert_eq!(disk.read_at("f", 1, 2).unwrap(), b"bc");
        assert_eq!(disk.read_at("f", 3, 0).unwrap(), b"");
        assert_eq!(disk.remove("g"), Err(DiskError::NotFound("g".into())));
        assert_eq!(disk.rename("g", "f"), Err(DiskError::NotFound("g".into())));
    }

    #[test]
    fn write_past_the_end_fills_the_gap_with_zeros() {
        let mut disk = MemDisk::new();
        disk.create("f").unwrap();
        disk.write_at("f", 3, b"x").unwrap();
        assert_eq!(disk.contents("f").unwrap(), b"\0\0\0x");
    }

    #[test]
    fn handles_share_one_disk_and_count_writes_and_syncs() {
        let mut disk = MemDisk::new();
        let observer = disk.clone();
        durable_file(&mut disk, "f", b"12345");
        assert_eq!(observer.contents("f").unwrap(), b"12345");
        assert_eq!(observer.bytes_written(), 5);
        assert_eq!(observer.syncs(), 2);
        observer.crash();
        assert_eq!(disk.crashes(), 1);
    }

    #[test]
    fn capacity_refuses_growth_past_it() {
        let mut disk = MemDisk::new();
        disk.set_capacity(Some(4));
        disk.create("f").unwrap();
        disk.write_at("f", 0, b"abcd").unwrap();
        assert_eq!(disk.write_at("f", 4, b"e"), Err(DiskError::NoSpace));
        // Overwriting in place needs no new space.
        disk.write_at("f", 0, b"wxyz").unwrap();
        assert_eq!(disk.truncate("f", 5), Err(DiskError::NoSpace));
        assert_eq!(disk.contents("f").unwrap(), b"wxyz");
    }

    #[test]
    fn torn_crash_keeps_a_prefix_of_unsynced_data() {
        let mut disk = MemDisk::new();
        durable_file(&mut disk, "f", b"abc");
        write(&mut disk, "f", b"defgh");
        let kept = disk.crash_torn(|from, len| {
            assert_eq!((from, len), (3, 8));
            5
        });
        assert_eq!(kept, 2);
        assert_eq!(disk.contents("f").unwrap(), b"abcde");
        // A torn crash never keeps what was not written, nor drops what was
        // synced.
        write(&mut disk, "f", b"xy");
        disk.crash_torn(|_, _| 0);
        assert_eq!(disk.contents("f").unwrap(), b"abcde");
        write(&mut disk, "f", b"xy");
        disk.crash_torn(|_, _| u64::MAX);
        assert_eq!(disk.contents("f").unwrap(), b"abcdexy");
        assert_eq!(disk.crashes(), 3);
    }

    #[test]
    fn corrupt_flips_current_and_durable_bytes() {
        let mut disk = MemDisk::new();
        durable_file(&mut disk, "f", b"\x00\x00");
        assert!(disk.corrupt("f", 1, 0x80));
        assert!(!disk.corrupt("f", 2, 0x80));
        assert_eq!(disk.contents("f").unwrap(), b"\x00\x80");
        disk.crash();
        assert_eq!(disk.contents("f").unwrap(), b"\x00\x80");
    }
}
