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
pub fn read_limited(path: &Path, limit: usize) -> std::io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(limit as u64 + 1).read_to_end(&mut bytes)?;
    if bytes.len() > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            format!("larger than the {limit} byte limit"),
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_at_the_limit_on_an_endless_device() {
        let e = read_limited(Path::new("/dev/zero"), 1000).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::FileTooLarge);
        assert_eq!(e.to_string(), "larger than the 1000 byte limit");
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
