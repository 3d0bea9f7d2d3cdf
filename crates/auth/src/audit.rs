//! The audit log (`log.audit`): one JSON line per mutating request, with who
//! (user name or `anonymous`), from where (client address), what (method and
//! path, never a query string or header) and the result (HTTP status).
//! Lines are appended under a lock, so they never interleave.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::SetupError;

/// One audited request.
#[derive(Debug)]
pub struct AuditEntry<'a> {
    pub user: Option<&'a str>,
    pub client: Option<std::net::IpAddr>,
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
}

pub(crate) struct AuditLog {
    file: Mutex<File>,
}

impl AuditLog {
    pub(crate) fn open(path: &Path) -> Result<AuditLog, SetupError> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| SetupError(format!("log.audit {}: cannot open: {e}", path.display())))?;
        Ok(AuditLog {
            file: Mutex::new(file),
        })
    }

    pub(crate) fn write(&self, e: &AuditEntry<'_>) {
        let line = serde_json::json!({
            "time": rfc3339(SystemTime::now()),
            "level": "info",
            "message": "audit",
            "subject": e.user.unwrap_or("anonymous"),
            "clientIP": e.client.map(|c| c.to_string()),
            "method": e.method,
            "path": e.path,
            "status": e.status,
        });
        if let Ok(mut file) = self.file.lock() {
            let mut text = line.to_string();
            text.push('\n');
            if let Err(err) = file.write_all(text.as_bytes()) {
                tracing::warn!(error = %err, "writing the audit log");
            }
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` (UTC).
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }
}
