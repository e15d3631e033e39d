//! Whole-file replacement for the small JSON files kept beside the store (the keyring, the
//! display preferences and the review server's address), and whole-file creation that never
//! replaces anything, for handover documents ([`write_new`]) and files another writer fills
//! (a server backup: [`NewFile::prepare`]).
//!
//! Owns one way of writing such a file so that a crash, a kill or a flat battery at any moment
//! leaves either the old file or the new one, never a torn mix: the bytes go to a temporary
//! file in the same directory, which is fsynced, renamed over the target, and then the
//! directory itself is fsynced so the rename survives power loss. On Unix the file is created
//! with mode 0600 from the start, because the keyring holds wrapped keys and no other local
//! user should read it even for a moment.
//!
//! May use std, serde, serde_json and tracing only. Never knows what the file means, never
//! logs its contents or its path, and never creates directories: the caller decides where files may live.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// Serialises `value` as pretty JSON and replaces the file at `path` with it atomically.
///
/// Serialisation happens before anything touches the disk, so a value that cannot be
/// serialised leaves the old file (or no file) exactly as it was. A serialisation failure is
/// reported as [`io::ErrorKind::InvalidData`].
pub fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> io::Result<()> {
    let bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    write_bytes(path, &bytes)
}

/// Replaces the file at `path` with `bytes` atomically (temporary file, fsync, rename, fsync
/// of the directory). On failure the temporary file is removed and the target is untouched.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> io::Result<()> {
    place(path, bytes, |tmp, path| fs::rename(tmp, path))
}

/// Writes `bytes` to a fsynced temporary file beside `path`, then `put`s it at `path`
/// (a rename replaces, a hard link refuses a name that is taken). The temporary name is
/// always removed afterwards (after a rename it is already gone); the target is untouched
/// unless `put` succeeded. Then the directory is fsynced so the new name survives power loss.
fn place(
    path: &Path,
    bytes: &[u8],
    put: impl FnOnce(&Path, &Path) -> io::Result<()>,
) -> io::Result<()> {
    let (dir, tmp) = beside(path)?;
    let placed = write_and_sync(&tmp, bytes).and_then(|()| put(&tmp, path));
    // Best effort: the temporary file is ours, and leaving it would only clutter the directory.
    let _ = fs::remove_file(&tmp);
    placed?;
    // The file is in place; what is left makes its name durable. Some file systems refuse to
    // fsync a directory: that must not turn a write that happened into a reported failure, or
    // a caller would retry or show an error for a file already there.
    if let Err(e) = sync_directory(&dir) {
        tracing::warn!(error = %e, "a file was written but its directory could not be fsynced");
    }
    Ok(())
}

/// Creates the file at `path` with `bytes`, whole or not at all, and never replaces a file
/// already there: fails with [`io::ErrorKind::AlreadyExists`] instead, leaving it untouched.
/// (Temporary file, fsync, then a hard link to the final name, which the operating system
/// refuses atomically when the name is taken; then the directory is fsynced.)
pub fn write_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    place(path, bytes, |tmp, path| fs::hard_link(tmp, path))
}

/// A file filled by someone else (SQLite's `VACUUM INTO`, say) under a temporary name beside
/// its final one, then published whole or not at all: [`PendingFile::publish`] never replaces
/// a file already at the final name. Dropped unpublished, the temporary file is removed.
pub struct PendingFile {
    tmp: PathBuf,
    path: PathBuf,
}

impl PendingFile {
    /// An empty owner-only temporary file beside `path`, to be filled and then published.
    /// Refused at once if `path` is already taken (it would be refused at publishing anyway).
    pub fn prepare(path: &Path) -> io::Result<PendingFile> {
        if path.exists() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "a file is already there",
            ));
        }
        let (_, tmp) = beside(path)?;
        create_new_private(&tmp)?;
        Ok(PendingFile {
            tmp,
            path: path.to_owned(),
        })
    }

    /// The temporary file to fill.
    pub fn temporary_path(&self) -> &Path {
        &self.tmp
    }

    /// Fsyncs the filled file and links it to its final name (refused, with
    /// [`io::ErrorKind::AlreadyExists`], if that name was taken meanwhile), then fsyncs the
    /// directory.
    pub fn publish(self) -> io::Result<()> {
        OpenOptions::new().write(true).open(&self.tmp)?.sync_all()?;
        fs::hard_link(&self.tmp, &self.path)?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty())
            && let Err(e) = sync_directory(dir)
        {
            tracing::warn!(error = %e, "a file was written but its directory could not be fsynced");
        }
        Ok(())
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        // Best effort: the temporary name is ours; after publishing, the final name keeps the
        // data.
        let _ = fs::remove_file(&self.tmp);
    }
}

/// Creates an empty file readable and writable by its owner only (0600 on Unix), unless a
/// file is already there (then it is left exactly as it is). Databases are created this way
/// before SQLite opens them: SQLite gives their `-wal` and `-shm` files the same mode.
pub fn create_private_file(path: &Path) -> io::Result<()> {
    match create_new_private(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates a directory (and its parents) for private data: one this call creates is made
/// 0700 on Unix; one that already exists is left as its owner set it.
pub fn create_private_dir_all(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// What [`write_new_or_same`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewFile {
    /// The file was created.
    Created,
    /// A file with exactly these bytes was already there; it was left as it was.
    AlreadyThere,
}

/// [`write_new`], except that a file already holding exactly `bytes` is not an error: saving
/// the same document twice is harmless, replacing a different one never happens.
pub fn write_new_or_same(path: &Path, bytes: &[u8]) -> io::Result<NewFile> {
    match write_new(path, bytes) {
        Ok(()) => Ok(NewFile::Created),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            if fs::read(path).is_ok_and(|there| there == bytes) {
                Ok(NewFile::AlreadyThere)
            } else {
                Err(e)
            }
        }
        Err(e) => Err(e),
    }
}

/// A name no other writer in this or another process is using at the same moment, hidden and
/// clearly temporary so a stray one (after a crash) is recognisable.
fn temporary_name(file_name: &std::ffi::OsStr) -> std::ffi::OsString {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut name = std::ffi::OsString::from(".");
    name.push(file_name);
    name.push(format!(".{}.{n}.tmp", std::process::id()));
    name
}

/// A new file, readable and writable by its owner only (0600 on Unix) from its creation;
/// [`io::ErrorKind::AlreadyExists`] if the name is taken.
pub fn create_new_private(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// The directory `path` is in, and a temporary name beside it (same file system, so a rename
/// or a hard link to `path` is atomic).
fn beside(path: &Path) -> io::Result<(PathBuf, PathBuf)> {
    let file_name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the path names no file to write",
        )
    })?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    let tmp = dir.join(temporary_name(file_name));
    Ok((dir, tmp))
}

fn write_and_sync(tmp: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = create_new_private(tmp)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Makes the rename itself durable: on Unix a directory can be opened and fsynced.
#[cfg(unix)]
fn sync_directory(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Elsewhere a directory cannot be opened as a file; the rename is as durable as the platform
/// makes it.
#[cfg(not(unix))]
fn sync_directory(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Serialises part of a document, then fails, like a value that cannot be written.
    struct FailsHalfway;

    impl Serialize for FailsHalfway {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            use serde::ser::{Error, SerializeStruct};
            let mut s = serializer.serialize_struct("FailsHalfway", 2)?;
            s.serialize_field("first", "written")?;
            let _ = s;
            Err(S::Error::custom("cannot serialise the second field"))
        }
    }

    #[test]
    fn a_new_file_never_replaces_one_already_there() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("handover.pdf");
        write_new(&path, b"first").unwrap();
        let again = write_new(&path, b"second").unwrap_err();
        assert_eq!(again.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&path).unwrap(), b"first");
        assert_eq!(names_in(dir.path()), ["handover.pdf"], "no temporary left");
        assert_eq!(
            write_new_or_same(&path, b"first").unwrap(),
            NewFile::AlreadyThere
        );
        assert_eq!(
            write_new_or_same(&path, b"other").unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        assert_eq!(fs::read(&path).unwrap(), b"first");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(
                mode, 0o600,
                "patient documents are readable by their owner only"
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn private_files_and_directories_are_owner_only_and_existing_ones_are_left_alone() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("a").join("epr");
        create_private_dir_all(&data).unwrap();
        assert_eq!(mode(&data), 0o700);
        let db = data.join("epr.db");
        create_private_file(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        fs::write(&db, b"kept").unwrap();
        create_private_file(&db).unwrap();
        assert_eq!(
            fs::read(&db).unwrap(),
            b"kept",
            "an existing file is not touched"
        );
        // A directory the owner already made keeps its mode.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        create_private_dir_all(dir.path()).unwrap();
        assert_eq!(mode(dir.path()), 0o755);
    }

    #[test]
    fn the_file_is_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        write_json(&path, &serde_json::json!({"a": 1})).unwrap();
        write_json(&path, &serde_json::json!({"b": [1, 2, 3]})).unwrap();
        let back: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(back, serde_json::json!({"b": [1, 2, 3]}));
        assert_eq!(names_in(dir.path()), ["settings.json"], "no temporary left");
    }

    #[test]
    fn a_failed_serialisation_leaves_the_old_file_and_no_partial_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.json");
        fs::write(&path, "old content").unwrap();
        let err = write_json(&path, &FailsHalfway).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(fs::read_to_string(&path).unwrap(), "old content");
        assert_eq!(names_in(dir.path()), ["keyring.json"]);

        let fresh = dir.path().join("never-written.json");
        assert!(write_json(&fresh, &FailsHalfway).is_err());
        assert!(!fresh.exists(), "no partial target is created");
        assert_eq!(names_in(dir.path()), ["keyring.json"]);
    }

    #[test]
    fn a_failed_rename_leaves_the_target_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        // A non-empty directory where the file should go: the rename must fail.
        let path = dir.path().join("blocked.json");
        fs::create_dir(&path).unwrap();
        fs::write(path.join("inside"), "kept").unwrap();
        assert!(write_bytes(&path, b"{}").is_err());
        assert_eq!(fs::read_to_string(path.join("inside")).unwrap(), "kept");
        assert_eq!(names_in(dir.path()), ["blocked.json"], "temporary removed");
    }

    #[test]
    fn a_path_without_a_file_name_is_refused() {
        let err = write_bytes(Path::new("/"), b"{}").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[cfg(unix)]
    #[test]
    fn files_are_readable_by_their_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.json");
        // An existing file with looser permissions is replaced by a private one.
        fs::write(&path, "old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        write_json(&path, &serde_json::json!({"format": 1})).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
