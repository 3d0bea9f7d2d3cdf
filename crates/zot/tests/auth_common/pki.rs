//! A throw-away certificate authority made with `openssl`, for the TLS
//! tests (HTTPS with client certificates, LDAP over TLS). Server
//! certificates name `127.0.0.1` and `localhost`.

use std::path::{Path, PathBuf};

use crate::common::{run, tool};

/// A test certificate authority in a folder: `ca.crt`/`ca.key`, and
/// certificates it signs.
pub struct Pki {
    dir: PathBuf,
}

impl Pki {
    pub fn new(dir: &Path) -> Pki {
        let pki = Pki {
            dir: dir.to_owned(),
        };
        pki.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "1",
            "-subj",
            "/CN=test-ca",
        ]);
        pki
    }

    pub fn openssl(&self, args: &[&str]) {
        run(tool("openssl").current_dir(&self.dir).args(args));
    }

    /// A certificate signed by the CA: `name.crt` / `name.key`.
    pub fn issue(&self, name: &str, cn: &str, server: bool) -> (PathBuf, PathBuf) {
        let extensions = if server {
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
        } else {
            "extendedKeyUsage=clientAuth\n"
        };
        self.issue_with(name, &format!("/CN={cn}"), extensions)
    }

    /// A certificate with an openssl `-subj` and extension lines of the
    /// caller's (SANs of every kind, for the mTLS identity tests).
    pub fn issue_with(&self, name: &str, subject: &str, extensions: &str) -> (PathBuf, PathBuf) {
        let (key, csr, crt, ext) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
            format!("{name}.ext"),
        );
        std::fs::write(self.dir.join(&ext), extensions).expect("write ext");
        self.openssl(&[
            "req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj", subject,
        ]);
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &crt,
            "-days",
            "1",
            "-extfile",
            &ext,
        ]);
        (self.dir.join(crt), self.dir.join(key))
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}
