//! The user a verified client certificate names (`http.auth.mtls`), with
//! zot's keys and semantics:
//! - `identityAttributes` are tried in order; the first that yields a
//!   non-empty name wins (zot's fallback chain).
//! - `CommonName`: the subject's CN (the last one, as Go's `pkix.Name`).
//! - `Subject`: the whole subject as Go's `pkix.Name.String()` prints it
//!   (RFC 2253 order, most specific first, `,` between RDNs, `+` inside
//!   one, Go's escaping; attributes Go has no name for printed as
//!   `OID=#hex`), so policies written for zot match here too.
//! - `URI`, `DNSName`, `Email`: the SAN of that kind at `uriSanIndex`,
//!   `dnsSanIndex`, `emailSanIndex` (0-based; none there: next attribute).
//!   With `uriSanPattern`, the URI SAN must contain a match of the pattern
//!   (unanchored, like Go's `FindStringSubmatch`; anchor it with `^...$` to
//!   require the whole URI) and the user is its first capture group.
//!
//! Invariant: the pattern is compiled once at start-up; nothing here panics
//! on a certificate's content.

use regex::Regex;
use x509_parser::prelude::{GeneralName, X509Certificate, X509Name};
use zot_config::MtlsConfig;

use crate::SetupError;

/// How a client certificate is mapped to a user name.
#[derive(Debug, Clone)]
pub(crate) struct CertificateMapping {
    attributes: Vec<String>,
    uri_pattern: Option<Regex>,
    uri_index: usize,
    dns_index: usize,
    email_index: usize,
}

impl CertificateMapping {
    /// The default when client certificates are verified without an
    /// `mtls` section: the CommonName.
    pub(crate) fn common_name() -> CertificateMapping {
        CertificateMapping {
            attributes: vec!["CommonName".to_owned()],
            uri_pattern: None,
            uri_index: 0,
            dns_index: 0,
            email_index: 0,
        }
    }

    pub(crate) fn new(config: &MtlsConfig) -> Result<CertificateMapping, SetupError> {
        let uri_pattern = config
            .uri_san_pattern
            .as_deref()
            .map(Regex::new)
            .transpose()
            .map_err(|e| SetupError(format!("http.auth.mtls.uriSanPattern: {e}")))?;
        Ok(CertificateMapping {
            attributes: config.identity_attributes.clone(),
            uri_pattern,
            uri_index: config.uri_san_index,
            dns_index: config.dns_san_index,
            email_index: config.email_san_index,
        })
    }

    /// The user named by a DER certificate, if any attribute yields one.
    pub(crate) fn identity(&self, der: &[u8]) -> Option<String> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        self.attributes
            .iter()
            .find_map(|a| self.attribute(&cert, a).filter(|n| !n.is_empty()))
    }

    fn attribute(&self, cert: &X509Certificate<'_>, attribute: &str) -> Option<String> {
        match attribute {
            "CommonName" => cert
                .subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok())
                .last()
                .map(str::to_owned),
            "Subject" => Some(go_name_string(cert.subject())),
            "URI" => {
                let uri = san(cert, self.uri_index, |n| match n {
                    GeneralName::URI(s) => Some(*s),
                    _ => None,
                })?;
                match &self.uri_pattern {
                    None => Some(uri.to_owned()),
                    Some(re) => Some(re.captures(uri)?.get(1)?.as_str().to_owned()),
                }
            }
            "DNSName" => san(cert, self.dns_index, |n| match n {
                GeneralName::DNSName(s) => Some(*s),
                _ => None,
            })
            .map(str::to_owned),
            "Email" => san(cert, self.email_index, |n| match n {
                GeneralName::RFC822Name(s) => Some(*s),
                _ => None,
            })
            .map(str::to_owned),
            _ => None,
        }
    }
}

/// The `index`-th SAN that `pick` selects.
fn san<'a>(
    cert: &'a X509Certificate<'_>,
    index: usize,
    pick: impl Fn(&GeneralName<'a>) -> Option<&'a str>,
) -> Option<&'a str> {
    let san = cert.subject_alternative_name().ok().flatten()?;
    san.value.general_names.iter().filter_map(pick).nth(index)
}

/// Go's short names, in the order `pkix.Name.ToRDNSequence` emits them.
const GO_NAMES: &[(&str, &str)] = &[
    ("2.5.4.6", "C"),
    ("2.5.4.8", "ST"),
    ("2.5.4.7", "L"),
    ("2.5.4.9", "STREET"),
    ("2.5.4.17", "POSTALCODE"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.3", "CN"),
    ("2.5.4.5", "SERIALNUMBER"),
];

/// `pkix.Name.String()` of Go for a certificate subject.
fn go_name_string(name: &X509Name<'_>) -> String {
    let mut rdns: Vec<Vec<String>> = Vec::new();
    let attributes: Vec<_> = name.iter_attributes().collect();
    // Attributes Go has no field for come first in the sequence, so last in
    // the string.
    for a in &attributes {
        let oid = a.attr_type().to_id_string();
        if !GO_NAMES.iter().any(|(o, _)| *o == oid) {
            let der = go_der_string(a.as_str().unwrap_or_default());
            let hex: String = der.iter().map(|b| format!("{b:02x}")).collect();
            rdns.push(vec![format!("{oid}=#{hex}")]);
        }
    }
    for (oid, short) in GO_NAMES {
        let values: Vec<&str> = attributes
            .iter()
            .filter(|a| a.attr_type().to_id_string() == *oid)
            .filter_map(|a| a.as_str().ok())
            .collect();
        // Go keeps one CommonName and one serial number (the last).
        let values = match *short {
            "CN" | "SERIALNUMBER" => values.last().map(|v| vec![*v]).unwrap_or_default(),
            _ => values,
        };
        if !values.is_empty() {
            rdns.push(
                values
                    .iter()
                    .map(|v| format!("{short}={}", go_escape(v)))
                    .collect(),
            );
        }
    }
    rdns.iter()
        .rev()
        .map(|rdn| rdn.join("+"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Go's escaping of an attribute value in `RDNSequence.String()`.
fn go_escape(value: &str) -> String {
    let last = value.chars().count().saturating_sub(1);
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        let escape = match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' => true,
            ' ' => i == 0 || i == last,
            '#' => i == 0,
            _ => false,
        };
        if escape {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The DER Go's `asn1.Marshal` makes of a string: a PrintableString when
/// every character allows it, else a UTF8String.
fn go_der_string(value: &str) -> Vec<u8> {
    let printable = value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b" '()+,-./:=?".contains(&b));
    let mut der = vec![if printable { 0x13 } else { 0x0c }];
    let len = value.len();
    if len < 0x80 {
        der.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        der.push(0x80 | bytes.len() as u8);
        der.extend(bytes);
    }
    der.extend(value.as_bytes());
    der
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_escaping() {
        assert_eq!(go_escape("a,b"), "a\\,b");
        assert_eq!(go_escape(" x "), "\\ x\\ ");
        assert_eq!(go_escape("#x#"), "\\#x#");
        assert_eq!(go_escape("plain"), "plain");
    }

    #[test]
    fn go_der_of_strings() {
        assert_eq!(go_der_string("ab"), vec![0x13, 2, b'a', b'b']);
        assert_eq!(go_der_string("a@b")[0], 0x0c);
        let long = "x".repeat(200);
        assert_eq!(&go_der_string(&long)[..3], &[0x13, 0x81, 200]);
    }
}
