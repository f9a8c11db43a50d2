//! Writing an entry into a folder someone else owns (`catalog --out`, `--flux-only`): all or
//! nothing, and only where the entry goes.
//!
//! The folder the entry owns (a version folder, or `manifests/`) is built complete next to
//! its place, then swapped in by rename; single files (`.bloodhound.yml`, `flux-sync.yaml`) are
//! written next to theirs and renamed over them. A failure before the swap leaves everything as
//! it was. Nothing is followed through a symbolic link: a link anywhere on the way to what is
//! written, or inside the folder that is replaced, is refused before anything is written, and
//! new files are created with `O_EXCL`.

use super::{Error, WriteReport, io};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Most bytes of an earlier file compared with its new version (for the report).
const MAX_OLD_FILE_BYTES: usize = crate::input::MAX_DOCUMENT_BYTES;

fn refuse(path: &Path, why: &str) -> Error {
    Error::Io {
        context: format!("refusing to write {}", path.display()),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, why.to_owned()),
    }
}

/// What is at `path`, without following a link: `None` when nothing is.
fn kind_of(path: &Path) -> Result<Option<std::fs::FileType>, Error> {
    match std::fs::symlink_metadata(path) {
        Ok(m) => Ok(Some(m.file_type())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(format!("reading {}", path.display()))(e)),
    }
}

/// Refuses a link, or something that is not a directory, at `root` or any folder between
/// `root` and `rel` (exclusive of `rel` itself).
fn check_way(root: &Path, rel: &Path) -> Result<(), Error> {
    let mut here = root.to_path_buf();
    let mut steps = vec![here.clone()];
    if let Some(parent) = rel.parent() {
        for part in parent.components() {
            here.push(part);
            steps.push(here.clone());
        }
    }
    for step in steps {
        match kind_of(&step)? {
            Some(k) if k.is_symlink() => {
                return Err(refuse(
                    &step,
                    "it is a symbolic link, which is never followed",
                ));
            }
            Some(k) if !k.is_dir() => return Err(refuse(&step, "it is not a directory")),
            _ => {}
        }
    }
    Ok(())
}

/// Every file under `dir` (relative path → bytes); a link or anything but a regular file or
/// directory is refused.
fn old_files(dir: &Path, rel: &str, out: &mut BTreeMap<String, Vec<u8>>) -> Result<(), Error> {
    let entries = std::fs::read_dir(dir).map_err(io(format!("reading {}", dir.display())))?;
    for e in entries {
        let e = e.map_err(io(format!("reading {}", dir.display())))?;
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        let here = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let kind = e
            .file_type()
            .map_err(io(format!("reading {}", path.display())))?;
        if kind.is_dir() {
            old_files(&path, &here, out)?;
        } else if kind.is_file() {
            let bytes = crate::input::read_limited(&path, MAX_OLD_FILE_BYTES)
                .map_err(io(format!("reading {}", path.display())))?;
            out.insert(here, bytes);
        } else {
            return Err(refuse(
                &path,
                "it is a symbolic link or special file in a folder difyrender replaces; move it away",
            ));
        }
    }
    Ok(())
}

fn write_new(path: &Path, text: &str) -> Result<(), Error> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)
        .map_err(io(format!("writing {}", path.display())))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io(format!("writing {}", path.display())))
}

/// A name next to `path` no one else uses: `.<name>.difyrender-<what>-<pid>-<nanos>`.
pub(crate) fn aside(path: &Path, what: &str) -> PathBuf {
    let unique = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.difyrender-{what}-{unique}"))
}

/// Replaces `root/folder` by a folder holding exactly `files` (paths relative to it), and
/// writes each of `singles` (paths relative to `root`), all or nothing.
pub fn replace(
    root: &Path,
    folder: &Path,
    files: &BTreeMap<String, String>,
    singles: &[(String, &str)],
) -> Result<WriteReport, Error> {
    let shown = |rel: &str| rel.replace('\\', "/");
    let folder_shown = shown(&folder.to_string_lossy());
    let within = |rel: &str| format!("{folder_shown}/{rel}");
    // Everything is checked before the first write.
    check_way(root, folder)?;
    let target = root.join(folder);
    let mut old = BTreeMap::new();
    let exists = match kind_of(&target)? {
        None => false,
        Some(k) if k.is_dir() => {
            old_files(&target, "", &mut old)?;
            true
        }
        Some(_) => {
            return Err(refuse(
                &target,
                "it is a symbolic link or a file where difyrender writes a folder",
            ));
        }
    };
    let mut single_old = Vec::new();
    for (rel, _) in singles {
        let path = root.join(rel);
        check_way(root, Path::new(rel))?;
        single_old.push(match kind_of(&path)? {
            None => None,
            Some(k) if k.is_file() => crate::input::read_limited(&path, MAX_OLD_FILE_BYTES).ok(),
            Some(_) => {
                return Err(refuse(
                    &path,
                    "it is a symbolic link, a directory or a special file where difyrender writes a file",
                ));
            }
        });
    }

    let parent = target.parent().unwrap_or(root).to_path_buf();
    std::fs::create_dir_all(&parent).map_err(io(format!("creating {}", parent.display())))?;
    let new_dir = aside(&target, "new");
    let staged: Vec<PathBuf> = singles
        .iter()
        .map(|(rel, _)| aside(&root.join(rel), "new"))
        .collect();
    let cleanup = |staged: &[PathBuf]| {
        let _ = std::fs::remove_dir_all(&new_dir);
        for s in staged {
            let _ = std::fs::remove_file(s);
        }
    };
    let build = || -> Result<(), Error> {
        std::fs::create_dir(&new_dir).map_err(io(format!("creating {}", new_dir.display())))?;
        for (rel, text) in files {
            let path = new_dir.join(rel);
            if let Some(p) = path.parent() {
                std::fs::create_dir_all(p).map_err(io(format!("creating {}", p.display())))?;
            }
            write_new(&path, text)?;
        }
        for ((_, text), path) in singles.iter().zip(&staged) {
            write_new(path, text)?;
        }
        Ok(())
    };
    if let Err(e) = build() {
        cleanup(&staged);
        return Err(e);
    }
    let retired = aside(&target, "old");
    if exists && let Err(e) = std::fs::rename(&target, &retired) {
        cleanup(&staged);
        return Err(io(format!("replacing {}", target.display()))(e));
    }
    if let Err(e) = std::fs::rename(&new_dir, &target) {
        if exists {
            let _ = std::fs::rename(&retired, &target);
        }
        cleanup(&staged);
        return Err(io(format!("replacing {}", target.display()))(e));
    }
    for (i, ((rel, _), path)) in singles.iter().zip(&staged).enumerate() {
        let dest = root.join(rel);
        if let Err(e) = std::fs::rename(path, &dest) {
            cleanup(&staged[i..]);
            return Err(io(format!("writing {}", dest.display()))(e));
        }
    }
    if exists {
        // Only regular files and folders were in it (checked above).
        let _ = std::fs::remove_dir_all(&retired);
    }

    let mut report = WriteReport::default();
    for ((rel, text), before) in singles.iter().zip(&single_old) {
        if before.as_deref() == Some(text.as_bytes()) {
            report.unchanged.push(shown(rel));
        } else {
            report.written.push(shown(rel));
        }
    }
    for (rel, text) in files {
        if old.get(rel).map(Vec::as_slice) == Some(text.as_bytes()) {
            report.unchanged.push(within(rel));
        } else {
            report.written.push(within(rel));
        }
    }
    report.removed = old
        .keys()
        .filter(|rel| !files.contains_key(*rel))
        .map(|rel| within(rel))
        .collect();
    Ok(report)
}
