//! Reading files that Tessera did not write (specs, plans, policies, keys, sealed credentials):
//! only regular files, and never more than a cap, so that `/dev/zero`, a FIFO or a runaway file
//! is refused at once with bounded memory instead of being read until the machine gives out.

use std::io::{self, Read};
use std::path::Path;

/// A fleet spec: far more than any real fleet needs.
pub const SPEC: u64 = 4 * 1024 * 1024;
/// A saved plan (JSON, with every attribute of every action).
pub const PLAN: u64 = 64 * 1024 * 1024;
/// A policy, a key or an identity file, a sealed credentials file.
pub const SMALL: u64 = 1024 * 1024;

fn refuse(path: &Path, why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("{}: {why}", path.display()))
}

/// The file's bytes, if it is a regular file of at most `cap` bytes.
pub fn read(path: &Path, cap: u64) -> io::Result<Vec<u8>> {
    // Opening a FIFO for reading blocks until a writer comes: look before opening, and open
    // without blocking in case the path changed in between.
    if !std::fs::metadata(path)?.is_file() {
        return Err(refuse(path, "not a regular file (a device, FIFO or directory cannot be read as one)".into()));
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc_nonblock());
    }
    let file = options.open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(refuse(path, "not a regular file (a device, FIFO or directory cannot be read as one)".into()));
    }
    if meta.len() > cap {
        return Err(refuse(path, format!("{} bytes, over the limit of {cap}", meta.len())));
    }
    // The length can change between the check and the read: read one byte past the cap to know.
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(cap + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(refuse(path, format!("grew past the limit of {cap} bytes while being read")));
    }
    Ok(bytes)
}

/// `O_NONBLOCK`, whose value differs between Linux and the BSDs.
#[cfg(unix)]
fn libc_nonblock() -> i32 {
    if cfg!(any(target_os = "linux", target_os = "android")) { 0o4000 } else { 0x0004 }
}

/// [`read`], as UTF-8 text.
pub fn read_to_string(path: &Path, cap: u64) -> io::Result<String> {
    String::from_utf8(read(path, cap)?).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: not UTF-8 (a bad byte at offset {offset})", path.display()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_large_files_and_bad_bytes_are_refused() {
        let err = read(Path::new("/dev/zero"), SMALL).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'a'; 2048]).unwrap();
        assert!(read(&big, 1024).unwrap_err().to_string().contains("over the limit"));
        assert_eq!(read(&big, 4096).unwrap().len(), 2048);
        let bad = dir.path().join("bad");
        std::fs::write(&bad, b"ok\xffno").unwrap();
        assert!(read_to_string(&bad, 1024).unwrap_err().to_string().contains("offset 2"));
        assert!(read(dir.path(), 1024).unwrap_err().to_string().contains("not a regular file"));
    }
}
