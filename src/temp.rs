//! Temporary files beside the files they will become.
//!
//! Every file bulletin writes into a folder others may share (the output
//! folder, a dry-run folder, the build cache) is first written to a
//! temporary file in the same folder and then renamed over its target. Each
//! is created exclusively (`O_CREAT | O_EXCL`, so never through a link or
//! file already at its name) under a name nobody can predict:
//! `.<name>.<pid>.<random>.tmp`.
//!
//! It must not touch a file it did not name.

use std::fs::File;
use std::io;
use std::path::Path;

/// Random characters in a temporary name.
const RANDOM_CHARS: usize = 6;

/// At most this many bytes of the target's name go into the temporary
/// name, so that the name stays within a file system's 255.
const NAME_BYTES: usize = 200;

/// A temporary file beside its target. Dropped without [`Temp::persist`],
/// it removes itself.
#[derive(Debug)]
pub struct Temp {
    path: Option<tempfile::TempPath>,
}

impl Temp {
    /// Creates `.<name>.<pid>.<random>.tmp` in `target`'s folder,
    /// exclusively, with the permissions a plain write would give
    /// (0666 less the umask).
    pub fn beside(target: &Path) -> io::Result<(Temp, File)> {
        let folder = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".to_owned());
        let mut cut = name.len().min(NAME_BYTES);
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        let prefix = format!(".{}.{}.", &name[..cut], std::process::id());
        let mut builder = tempfile::Builder::new();
        builder
            .prefix(&prefix)
            .suffix(".tmp")
            .rand_bytes(RANDOM_CHARS);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(std::fs::Permissions::from_mode(0o666));
        }
        let (file, path) = builder.tempfile_in(folder)?.into_parts();
        Ok((Temp { path: Some(path) }, file))
    }

    pub fn path(&self) -> &Path {
        self.path.as_deref().expect("a temporary file has a path")
    }

    /// Renames the file over `target` (a link there is replaced, never
    /// followed). On failure the temporary file stays, and goes on drop.
    pub fn persist(&mut self, target: &Path) -> io::Result<()> {
        let path = self.path.take().expect("persisted once");
        match path.persist(target) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.path = Some(e.path);
                Err(e.error)
            }
        }
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = path.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_temporary_file_is_created_exclusively_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("rss.xml");
        let (temp, _file) = Temp::beside(&target).unwrap();
        let name = temp
            .path()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let pid = std::process::id();
        assert!(name.starts_with(&format!(".rss.xml.{pid}.")) && name.ends_with(".tmp"));
        assert_eq!(
            name.len(),
            ".rss.xml..123456.tmp".len() + pid.to_string().len()
        );
        let path = temp.path().to_path_buf();
        drop(temp);
        assert!(!path.exists());
    }

    #[test]
    fn persisting_replaces_a_link_at_the_target() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let target = dir.path().join("feed.xml");
        std::os::unix::fs::symlink(&victim, &target).unwrap();
        let (mut temp, mut file) = Temp::beside(&target).unwrap();
        file.write_all(b"new").unwrap();
        temp.persist(&target).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        assert!(!std::fs::symlink_metadata(&target).unwrap().is_symlink());
    }

    #[test]
    fn long_target_names_give_valid_temporary_names() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join(format!("{}.eml", "é".repeat(120)));
        let (temp, _file) = Temp::beside(&target).unwrap();
        assert!(temp.path().file_name().unwrap().len() <= 255);
    }
}
