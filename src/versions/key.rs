//! Version numbers and their order.

/// A version's sort key: `1.10.1-fix.1` sorts after `1.10.1` (a hotfix), `2.0.0-beta.1` before
/// `2.0.0` (a pre-release).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct VersionKey {
    numbers: [u64; 3],
    /// 0 pre-release, 1 release, 2 hotfix.
    class: u8,
    serial: u64,
}

impl VersionKey {
    pub fn parse(version: &str) -> Option<VersionKey> {
        let core = version.strip_prefix('v').unwrap_or(version);
        let (core, suffix) = match core.split_once('-') {
            Some((c, s)) => (c, Some(s)),
            None => (core, None),
        };
        let parts: Vec<&str> = core.split('.').collect();
        if parts.len() != 3 {
            return None;
        }
        let mut numbers = [0u64; 3];
        for (slot, part) in numbers.iter_mut().zip(&parts) {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            *slot = part.parse().ok()?;
        }
        let (class, serial) = match suffix {
            None => (1, 0),
            Some(s) => {
                let (label, serial) = s.split_once('.').unwrap_or((s, "0"));
                if label.is_empty() || !label.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return None;
                }
                let serial = serial.parse().ok()?;
                (if label == "fix" { 2 } else { 0 }, serial)
            }
        };
        Some(VersionKey {
            numbers,
            class,
            serial,
        })
    }
}
