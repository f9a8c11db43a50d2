//! `render --output-dir DIR`: one file per object, written so that DIR never holds half a
//! render or a mix of two. Files go into a new temporary directory next to DIR, created with
//! `O_EXCL` (a planted symlink is never followed) and Secrets with mode 0600; then that
//! directory replaces DIR by rename. DIR may be missing, empty, or an earlier render, which a
//! marker file lists; anything else in it is refused before a byte is written, so stale objects
//! of an earlier render can never sit next to the new ones.

use crate::catalog::files::aside;
use crate::error::Error;
use crate::manifest::{Manifest, Resource};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Lists the files of a render, so the next render knows what it may replace. kubectl reads
/// only `.yaml`, `.yml` and `.json` files, so it ignores this one.
pub const MARKER: &str = ".difyrender-render";

fn refuse(dir: &Path, why: &str) -> Error {
    Error::Usage(format!(
        "--output-dir {}: {why}; nothing was written",
        dir.display()
    ))
}

/// What DIR holds now: whether it exists, after checking it is safe to replace.
fn check_target(dir: &Path) -> Result<bool, Error> {
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io(format!("reading {}", dir.display()))(e)),
    };
    if meta.file_type().is_symlink() {
        return Err(refuse(dir, "is a symbolic link, which is never followed"));
    }
    if !meta.is_dir() {
        return Err(refuse(dir, "is not a directory"));
    }
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(Error::io(format!("reading {}", dir.display())))? {
        let entry = entry.map_err(Error::io(format!("reading {}", dir.display())))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    if names.is_empty() {
        return Ok(true);
    }
    if !names.iter().any(|n| n == MARKER) {
        return Err(refuse(
            dir,
            "is not empty and holds no earlier render of difyrender; give a new or empty directory",
        ));
    }
    let listed = crate::input::read_limited(&dir.join(MARKER), 1024 * 1024)
        .map_err(Error::io(format!("reading {}", dir.join(MARKER).display())))?;
    let listed = String::from_utf8_lossy(&listed);
    let listed: Vec<&str> = listed.lines().collect();
    for name in &names {
        let path = dir.join(name);
        let kind = std::fs::symlink_metadata(&path)
            .map_err(Error::io(format!("reading {}", path.display())))?
            .file_type();
        // The marker is only a list: a name in it that render cannot produce (a forged
        // marker listing `precious.txt`) does not make that file render's to replace.
        let ours = name == MARKER || (listed.contains(&name.as_str()) && is_render_file_name(name));
        if !ours || !kind.is_file() {
            return Err(refuse(
                dir,
                &format!(
                    "holds {}, which difyrender did not write; move it away or give another directory",
                    crate::diag::excerpt(name)
                ),
            ));
        }
    }
    Ok(true)
}

/// Whether `name` has the form of the files render writes, `<stage>-<kind>-<name>.yaml`
/// (see [`Manifest::file_name`]): a stage digit, a lowercase kind, a DNS-subdomain name.
fn is_render_file_name(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(".yaml") else {
        return false;
    };
    let mut parts = stem.splitn(3, '-');
    let (Some(stage), Some(kind), Some(object)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    stage.len() == 1
        && stage.bytes().all(|b| b.is_ascii_digit())
        && !kind.is_empty()
        && kind.bytes().all(|b| b.is_ascii_lowercase())
        && crate::manifest::validate::is_dns1123_subdomain(object)
}

/// The file of one object: `<stage>-<kind>-<name>.yaml`, never a path.
fn file_name(r: &Resource) -> Result<String, Error> {
    let name = Manifest::file_name(r);
    if name.contains('/') || name.starts_with('.') || name.contains('\0') {
        return Err(Error::Usage(format!(
            "{} cannot be written to a file: its name is not a plain file name",
            r.id()
        )));
    }
    Ok(name)
}

fn write_new(path: &Path, text: &str, mode: u32) -> Result<(), Error> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(Error::io(format!("writing {}", path.display())))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(Error::io(format!("writing {}", path.display())))
}

fn fill(manifest: &Manifest, tmp: &Path) -> Result<(), Error> {
    let mut names = Vec::new();
    for r in &manifest.resources {
        let name = file_name(r)?;
        let mode = if r.kind == "Secret" { 0o600 } else { 0o644 };
        write_new(
            &tmp.join(&name),
            &format!("# Source: {}\n{}", r.template, r.to_yaml()),
            mode,
        )?;
        names.push(name);
    }
    names.push(String::new());
    write_new(&tmp.join(MARKER), &names.join("\n"), 0o644)
}

/// Writes the render into `dir`, replacing an earlier render there, or nothing at all.
pub fn write_dir(manifest: &Manifest, dir: &Path) -> Result<(), Error> {
    let exists = check_target(dir)?;
    let base = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| refuse(dir, "names no directory"))?;
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent)
        .map_err(Error::io(format!("creating {}", parent.display())))?;
    let tmp = aside(&parent.join(&base), "new");
    std::fs::DirBuilder::new()
        .mode(0o755)
        .create(&tmp)
        .map_err(Error::io(format!("creating {}", tmp.display())))?;
    if let Err(e) = fill(manifest, &tmp) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    let old = aside(&parent.join(&base), "old");
    if exists && let Err(e) = std::fs::rename(dir, &old) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(Error::io(format!("replacing {}", dir.display()))(e));
    }
    if let Err(e) = std::fs::rename(&tmp, dir) {
        if exists {
            let _ = std::fs::rename(&old, dir);
        }
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(Error::io(format!("replacing {}", dir.display()))(e));
    }
    if exists {
        // Only files difyrender wrote are in it (checked above); remove_dir_all does not
        // follow symlinks.
        let _ = std::fs::remove_dir_all(&old);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_render_writes_are_its_own() {
        for ok in [
            "2-secret-dify-keys.yaml",
            "3-statefulset-dify-postgresql.yaml",
            "5-horizontalpodautoscaler-dify-api.yaml",
        ] {
            assert!(is_render_file_name(ok), "{ok}");
        }
        for bad in [
            "precious.txt",
            "notes.yaml",
            "2-secret-.yaml",
            "x-secret-a.yaml",
            "2-Secret-a.yaml",
            "../2-secret-a.yaml",
            "2-secret-a/b.yaml",
        ] {
            assert!(!is_render_file_name(bad), "{bad}");
        }
    }
}
