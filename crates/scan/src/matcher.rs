//! Which files of a layer matter, decided from the path alone (and, for
//! executables, from the mode and the first bytes; see `binary.rs`).
//! Paths are normalised: relative to the image root, no `.` or `..`
//! components, no leading or trailing `/`.

/// A file the scanner reads, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileKind {
    OsRelease,
    DpkgStatus,
    ApkInstalled,
    RpmSqlite,
    RpmBerkeley,
    RpmNdb,
    PythonMetadata,
    NpmPackage,
    CargoLock,
    Gemspec,
    ComposerInstalled,
    JavaArchive,
}

/// Archive names read as Java archives.
pub(crate) fn is_java_archive(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [
        ".jar", ".war", ".ear", ".par", ".sar", ".jpi", ".hpi", ".kar",
    ]
    .iter()
    .any(|ext| lower.ends_with(ext))
}

/// The kind of the file at `path`, if the scanner reads it.
pub(crate) fn classify(path: &str) -> Option<FileKind> {
    let (dir, name) = match path.rsplit_once('/') {
        Some((dir, name)) => (dir, name),
        None => ("", path),
    };
    match path {
        "etc/os-release" | "usr/lib/os-release" => return Some(FileKind::OsRelease),
        "var/lib/dpkg/status" => return Some(FileKind::DpkgStatus),
        "lib/apk/db/installed" => return Some(FileKind::ApkInstalled),
        "var/lib/rpm/rpmdb.sqlite" | "usr/lib/sysimage/rpm/rpmdb.sqlite" => {
            return Some(FileKind::RpmSqlite);
        }
        "var/lib/rpm/Packages" | "usr/lib/sysimage/rpm/Packages" => {
            return Some(FileKind::RpmBerkeley);
        }
        "var/lib/rpm/Packages.db" | "usr/lib/sysimage/rpm/Packages.db" => {
            return Some(FileKind::RpmNdb);
        }
        _ => {}
    }
    if dir == "var/lib/dpkg/status.d" && !name.ends_with(".md5sums") && !name.starts_with('.') {
        return Some(FileKind::DpkgStatus);
    }
    let parent = dir.rsplit('/').next().unwrap_or(dir);
    if (name == "METADATA" && parent.ends_with(".dist-info"))
        || (name == "PKG-INFO" && parent.ends_with(".egg-info"))
        || name.ends_with(".egg-info")
    {
        return Some(FileKind::PythonMetadata);
    }
    if name == "package.json" && is_node_module_dir(dir) {
        return Some(FileKind::NpmPackage);
    }
    if name == "Cargo.lock" {
        return Some(FileKind::CargoLock);
    }
    if name.ends_with(".gemspec")
        && (parent == "specifications" || dir.ends_with("specifications/default"))
    {
        return Some(FileKind::Gemspec);
    }
    if name == "installed.json" && parent == "composer" {
        return Some(FileKind::ComposerInstalled);
    }
    if is_java_archive(name) {
        return Some(FileKind::JavaArchive);
    }
    None
}

/// `.../node_modules/<name>` or `.../node_modules/@scope/<name>`.
fn is_node_module_dir(dir: &str) -> bool {
    let mut parts = dir.rsplit('/');
    let (Some(name), Some(up)) = (parts.next(), parts.next()) else {
        return false;
    };
    if name.is_empty() || name.starts_with('.') {
        return false;
    }
    if up == "node_modules" {
        return true;
    }
    up.starts_with('@') && parts.next() == Some("node_modules")
}

/// The normalised form of a tar entry's path; `None` when it climbs above
/// the root (path traversal) or names the root itself.
pub(crate) fn normalize(raw: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    let mut parts: Vec<&str> = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    if parts.is_empty() {
        return None;
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_paths() {
        assert_eq!(classify("etc/os-release"), Some(FileKind::OsRelease));
        assert_eq!(
            classify("var/lib/dpkg/status.d/base-files"),
            Some(FileKind::DpkgStatus)
        );
        assert_eq!(classify("var/lib/dpkg/status.d/base-files.md5sums"), None);
        assert_eq!(
            classify("usr/lib/python3/dist-packages/PyYAML-6.0.dist-info/METADATA"),
            Some(FileKind::PythonMetadata)
        );
        assert_eq!(
            classify("usr/lib/python3/dist-packages/six-1.16.0.egg-info"),
            Some(FileKind::PythonMetadata)
        );
        assert_eq!(
            classify("usr/lib/python3/dist-packages/foo.egg-info/PKG-INFO"),
            Some(FileKind::PythonMetadata)
        );
        assert_eq!(
            classify("app/node_modules/@types/node/package.json"),
            Some(FileKind::NpmPackage)
        );
        assert_eq!(
            classify("app/node_modules/lodash/package.json"),
            Some(FileKind::NpmPackage)
        );
        assert_eq!(classify("app/node_modules/lodash/fp/package.json"), None);
        assert_eq!(classify("app/package.json"), None);
        assert_eq!(
            classify("var/lib/gems/3.1.0/specifications/rake-13.0.6.gemspec"),
            Some(FileKind::Gemspec)
        );
        assert_eq!(
            classify("app/vendor/composer/installed.json"),
            Some(FileKind::ComposerInstalled)
        );
        assert_eq!(classify("opt/app/lib/x.JAR"), Some(FileKind::JavaArchive));
        assert_eq!(classify("usr/bin/ls"), None);
    }

    #[test]
    fn normalizes_paths() {
        assert_eq!(
            normalize(b"./etc//os-release").as_deref(),
            Some("etc/os-release")
        );
        assert_eq!(normalize(b"/usr/../etc/./x/").as_deref(), Some("etc/x"));
        assert_eq!(normalize(b"../../etc/passwd"), None);
        assert_eq!(normalize(b"./"), None);
    }
}
