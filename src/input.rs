//! Reading user-named files with a limit that holds before the bytes are read: a device
//! (`/dev/zero`), a pipe (`<(yes)`) or a huge file stops at the limit instead of filling memory.

use std::io::Read;
use std::path::Path;

/// Values files, kubeconfigs and chart files.
pub const MAX_DOCUMENT_BYTES: usize = crate::yaml::MAX_INPUT_BYTES;
/// A `--set-file` value.
pub const MAX_SET_FILE_BYTES: usize = 1024 * 1024;
/// A `--secret-key-file`.
pub const MAX_SECRET_KEY_FILE_BYTES: usize = 4096;

/// Reads at most `limit` bytes of `path`; a longer input is an error of kind
/// `FileTooLarge`, found after reading `limit + 1` bytes, never more.
///
/// A pipe is read only while something writes to it: a named pipe (FIFO) nobody has open for
/// writing is refused at once instead of waiting forever for a writer, and a directory or
/// socket is refused by its type. A pipe with a writer (`-f /dev/stdin`, `<(cmd)`) is read.
pub fn read_limited(path: &Path, limit: usize) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let kind = std::fs::metadata(path)?.file_type();
    if kind.is_dir() || kind.is_socket() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let mut bytes = Vec::new();
    if kind.is_fifo() {
        // Opened without blocking (a blocking open waits for a writer); the first read tells
        // a pipe with a writer (data, or "would block") from one without (end of file).
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)?;
        let mut first = [0u8; 8192];
        loop {
            match file.read(&mut first) {
                Ok(0) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        "a pipe with nothing written to it (no writer); give a regular file",
                    ));
                }
                Ok(n) => {
                    bytes.extend_from_slice(&first[..n]);
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        set_blocking(&file)?;
        (&mut file)
            .take((limit + 1).saturating_sub(bytes.len()) as u64)
            .read_to_end(&mut bytes)?;
    } else {
        let file = std::fs::File::open(path)?;
        file.take(limit as u64 + 1).read_to_end(&mut bytes)?;
    }
    if bytes.len() > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            format!("larger than the {limit} byte limit"),
        ));
    }
    Ok(bytes)
}

/// Clears `O_NONBLOCK` on an open file.
fn set_blocking(file: &std::fs::File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: `fd` is an open descriptor owned by `file` for the duration of both calls.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Refuses, before anything reads it, a file that is not a regular file or is larger than
/// `limit`: for files another library reads (the certificates and token files a kubeconfig
/// names), where the read itself cannot be bounded.
pub fn check_regular(path: &Path, limit: usize) -> std::io::Result<()> {
    let meta = std::fs::metadata(path)?;
    if !meta.file_type().is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    if meta.len() > limit as u64 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            format!("larger than the {limit} byte limit"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;

    #[test]
    fn stops_at_the_limit_on_an_endless_device() {
        let e = read_limited(Path::new("/dev/zero"), 1000).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::FileTooLarge);
        assert_eq!(e.to_string(), "larger than the 1000 byte limit");
    }

    #[test]
    fn a_fifo_without_a_writer_is_refused_not_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read_limited(&fifo, 1000).unwrap_err();
        assert!(e.to_string().contains("no writer"), "{e}");
        // A negative control: data written by a writer that has since closed is read. A
        // reader is kept open so that the writer's open does not wait and the data stays.
        let keeper = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap();
        let mut writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
        writer.write_all(b"a: b\n").unwrap();
        drop(writer);
        assert_eq!(read_limited(&fifo, 1000).unwrap(), b"a: b\n");
        drop(keeper);
        let dir_error = read_limited(dir.path(), 10).unwrap_err();
        assert_eq!(dir_error.to_string(), "not a regular file");
    }

    #[test]
    fn check_regular_refuses_devices_and_large_files() {
        assert!(check_regular(Path::new("/dev/zero"), 10).is_err());
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"12345").unwrap();
        assert!(check_regular(&p, 5).is_ok());
        assert!(check_regular(&p, 4).is_err());
    }

    #[test]
    fn reads_a_file_at_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"12345").unwrap();
        assert_eq!(read_limited(&p, 5).unwrap(), b"12345");
        assert!(read_limited(&p, 4).is_err());
    }
}
