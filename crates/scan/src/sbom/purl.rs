//! Package URLs (purl): `pkg:<type>/<namespace>/<name>@<version>?<qualifiers>`,
//! each component percent-encoded. OS packages take their namespace from
//! the image's os-release (`debian`, `ubuntu`, `alpine`, `fedora`, ...),
//! with `arch`, `distro` and, for rpm, `epoch` as qualifiers.

use crate::inventory::{Ecosystem, OsRelease, Package};

fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:+".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn encode_path(path: &str) -> String {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(encode)
        .collect::<Vec<_>>()
        .join("/")
}

/// The purl of `package` in an image with `os`.
pub fn purl(package: &Package, os: Option<&OsRelease>) -> String {
    let os_id = |default: &str| {
        os.map(|o| o.id.to_ascii_lowercase())
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| default.to_string())
    };
    let mut qualifiers: Vec<(&str, String)> = Vec::new();
    let mut version = package.version.clone();
    let (namespace, name) = match package.ecosystem {
        Ecosystem::Deb | Ecosystem::Apk | Ecosystem::Rpm => {
            let default = match package.ecosystem {
                Ecosystem::Deb => "debian",
                Ecosystem::Apk => "alpine",
                _ => "redhat",
            };
            if let Some(arch) = &package.arch {
                qualifiers.push(("arch", arch.clone()));
            }
            if package.ecosystem == Ecosystem::Rpm
                && let Some((epoch, rest)) = version.split_once(':')
                && epoch.bytes().all(|b| b.is_ascii_digit())
            {
                qualifiers.push(("epoch", epoch.to_string()));
                version = rest.to_string();
            }
            if let Some(release) = os.and_then(|o| o.version_id.as_deref()) {
                qualifiers.push(("distro", format!("{}-{release}", os_id(default))));
            }
            (Some(os_id(default)), package.name.clone())
        }
        Ecosystem::Pypi => (None, package.name.to_ascii_lowercase().replace('_', "-")),
        Ecosystem::Npm | Ecosystem::Golang | Ecosystem::Composer => {
            match package.name.rsplit_once('/') {
                Some((namespace, name)) => (Some(namespace.to_string()), name.to_string()),
                None => (None, package.name.clone()),
            }
        }
        Ecosystem::Maven => match package.name.split_once(':') {
            Some((group, artifact)) => (Some(group.to_string()), artifact.to_string()),
            None => (None, package.name.clone()),
        },
        Ecosystem::Cargo | Ecosystem::Gem => (None, package.name.clone()),
    };
    let mut out = format!("pkg:{}/", package.ecosystem.purl_type());
    if let Some(namespace) = namespace {
        out.push_str(&encode_path(&namespace));
        out.push('/');
    }
    out.push_str(&encode(&name));
    if !version.is_empty() {
        out.push('@');
        out.push_str(&encode(&version));
    }
    qualifiers.sort();
    for (i, (key, value)) in qualifiers.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(key);
        out.push('=');
        out.push_str(&encode(value));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(ecosystem: Ecosystem, name: &str, version: &str) -> Package {
        Package {
            ecosystem,
            name: name.into(),
            version: version.into(),
            source: None,
            arch: None,
            path: String::new(),
        }
    }

    #[test]
    fn builds_purls() {
        let debian = OsRelease {
            id: "debian".into(),
            version_id: Some("12".into()),
            ..OsRelease::default()
        };
        let mut libc = package(Ecosystem::Deb, "libc6", "2.36-9+deb12u4");
        libc.arch = Some("amd64".into());
        assert_eq!(
            purl(&libc, Some(&debian)),
            "pkg:deb/debian/libc6@2.36-9+deb12u4?arch=amd64&distro=debian-12"
        );
        let rpm = package(Ecosystem::Rpm, "openssl", "1:3.0.7-27.el9");
        assert_eq!(
            purl(&rpm, None),
            "pkg:rpm/redhat/openssl@3.0.7-27.el9?epoch=1"
        );
        assert_eq!(
            purl(&package(Ecosystem::Npm, "@types/node", "20.1.0"), None),
            "pkg:npm/%40types/node@20.1.0"
        );
        assert_eq!(
            purl(
                &package(
                    Ecosystem::Golang,
                    "github.com/containers/image/v5",
                    "v5.24.2"
                ),
                None
            ),
            "pkg:golang/github.com/containers/image/v5@v5.24.2"
        );
        assert_eq!(
            purl(
                &package(Ecosystem::Maven, "commons-io:commons-io", "2.11.0"),
                None
            ),
            "pkg:maven/commons-io/commons-io@2.11.0"
        );
        assert_eq!(
            purl(&package(Ecosystem::Pypi, "PyYAML_x", "6.0"), None),
            "pkg:pypi/pyyaml-x@6.0"
        );
        assert_eq!(
            purl(&package(Ecosystem::Composer, "psr/log", "1.1.4"), None),
            "pkg:composer/psr/log@1.1.4"
        );
    }
}
