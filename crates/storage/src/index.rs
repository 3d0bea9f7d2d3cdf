//! A repository's `index.json`: the OCI image index that lists every
//! manifest of the repository. A tagged manifest has one entry per tag, with
//! the tag in the `org.opencontainers.image.ref.name` annotation; a manifest
//! without tags has one entry without that annotation. Fields this code does
//! not know are kept as they were read.
//!
//! Read for a conditional write (an S3 store), an index remembers what it
//! was read as (its base: the object's version and entries), so that when
//! another writer changed `index.json` meanwhile, [`LayoutIndex::rebase`]
//! applies this index's changes (entries added and removed since its base)
//! to the newer one instead of overwriting it.

use serde_json::{Map, Value, json};
use zot_oci::{Descriptor, Digest};

pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

#[derive(Debug, Clone)]
pub struct LayoutIndex {
    doc: Map<String, Value>,
    /// What it was read as, for a conditional write; `None` otherwise.
    base: Option<Base>,
}

/// The version an index was read at (`None`: absent) and its entries then.
#[derive(Debug, Clone)]
struct Base {
    version: Option<String>,
    /// The fingerprint of what was read (default when absent).
    fingerprint: zot_meta::Fingerprint,
    entries: Vec<Value>,
}

fn entry_digest(e: &Value) -> Option<&str> {
    e.get("digest").and_then(Value::as_str)
}

fn entry_tag(e: &Value) -> Option<&str> {
    e.get("annotations")
        .and_then(|a| a.get(REF_NAME))
        .and_then(Value::as_str)
}

impl Default for LayoutIndex {
    fn default() -> Self {
        let mut doc = Map::new();
        doc.insert("schemaVersion".into(), json!(2));
        doc.insert("mediaType".into(), json!(zot_oci::media_types::OCI_INDEX));
        doc.insert("manifests".into(), json!([]));
        LayoutIndex { doc, base: None }
    }
}

impl LayoutIndex {
    pub fn parse(bytes: &[u8]) -> Result<LayoutIndex, serde_json::Error> {
        let doc: Map<String, Value> = serde_json::from_slice(bytes)?;
        let mut idx = LayoutIndex { doc, base: None };
        if !idx.doc.get("manifests").is_some_and(Value::is_array) {
            idx.doc.insert("manifests".into(), json!([]));
        }
        Ok(idx)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.doc).unwrap_or_default()
    }

    fn entries(&self) -> &[Value] {
        self.doc
            .get("manifests")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    fn entries_mut(&mut self) -> &mut Vec<Value> {
        if !self.doc.get("manifests").is_some_and(Value::is_array) {
            self.doc.insert("manifests".into(), json!([]));
        }
        match self.doc.get_mut("manifests") {
            Some(Value::Array(a)) => a,
            _ => unreachable!("manifests was just made an array"),
        }
    }

    /// Every entry that parses as a descriptor, with its tag if any.
    pub fn descriptors(&self) -> Vec<(Descriptor, Option<String>)> {
        self.entries()
            .iter()
            .filter_map(|e| {
                let d: Descriptor = serde_json::from_value(e.clone()).ok()?;
                Some((d, entry_tag(e).map(str::to_owned)))
            })
            .collect()
    }

    pub fn contains(&self, digest: &Digest) -> bool {
        let d = digest.to_string();
        self.entries()
            .iter()
            .any(|e| entry_digest(e) == Some(d.as_str()))
    }

    fn plain(desc: &Descriptor) -> Value {
        json!({"mediaType": desc.media_type, "digest": desc.digest, "size": desc.size})
    }

    /// Points `tag` at `desc`; returns the digest the tag pointed at before,
    /// whose manifest stays listed.
    pub fn set_tag(&mut self, tag: &str, desc: &Descriptor) -> Option<String> {
        let old = self.remove_tag(tag);
        let d = desc.digest.to_string();
        self.entries_mut()
            .retain(|e| !(entry_tag(e).is_none() && entry_digest(e) == Some(d.as_str())));
        let mut entry = Self::plain(desc);
        entry["annotations"] = json!({ REF_NAME: tag });
        self.entries_mut().push(entry);
        old
    }

    /// Lists `desc` without a tag unless it is listed already.
    pub fn add_untagged(&mut self, desc: &Descriptor) {
        if !self.contains(&desc.digest) {
            self.entries_mut().push(Self::plain(desc));
        }
    }

    /// Removes `tag`; the manifest stays listed without it. Returns the
    /// digest it pointed at, or `None` if there was no such tag.
    pub fn remove_tag(&mut self, tag: &str) -> Option<String> {
        let entries = self.entries_mut();
        let pos = entries.iter().position(|e| entry_tag(e) == Some(tag))?;
        let removed = entries.remove(pos);
        let digest = entry_digest(&removed)?.to_owned();
        if !self
            .entries()
            .iter()
            .any(|e| entry_digest(e) == Some(digest.as_str()))
        {
            let mut entry = removed;
            if let Some(Value::Object(a)) = entry.get_mut("annotations") {
                a.remove(REF_NAME);
                if a.is_empty() {
                    entry.as_object_mut().map(|o| o.remove("annotations"));
                }
            }
            self.entries_mut().push(entry);
        }
        Some(digest)
    }

    /// Remembers this index as read at `version` (`None`: absent), for
    /// [`LayoutIndex::base_version`] and [`LayoutIndex::rebase`].
    pub(crate) fn read_at(
        mut self,
        version: Option<String>,
        fingerprint: zot_meta::Fingerprint,
    ) -> LayoutIndex {
        let entries = self.entries().to_vec();
        self.base = Some(Base {
            version,
            fingerprint,
            entries,
        });
        self
    }

    /// The fingerprint of the object it was read from, when read for a
    /// conditional write.
    pub(crate) fn base_fingerprint(&self) -> Option<&zot_meta::Fingerprint> {
        self.base.as_ref().map(|b| &b.fingerprint)
    }

    /// The version it was read at, for `If-Match` (`None`: it was absent,
    /// or not read for a conditional write).
    pub(crate) fn base_version(&self) -> Option<&str> {
        self.base.as_ref().and_then(|b| b.version.as_deref())
    }

    /// This index's changes since its base (entries added and removed),
    /// applied to `current`, a newer read of the same `index.json` (whose
    /// base the result keeps). An added tagged entry moves its tag, as
    /// [`LayoutIndex::set_tag`] does; an added untagged entry is listed
    /// unless its manifest is; removed entries are removed where present,
    /// and a manifest this index no longer lists at all (deleted) goes
    /// with all its entries.
    pub(crate) fn rebase(&self, current: LayoutIndex) -> LayoutIndex {
        let none = Vec::new();
        let base = self.base.as_ref().map_or(&none, |b| &b.entries);
        let mine = self.entries();
        let removed: Vec<&Value> = base.iter().filter(|e| !mine.contains(e)).collect();
        let added: Vec<&Value> = mine.iter().filter(|e| !base.contains(e)).collect();
        let mut out = current;
        out.entries_mut().retain(|e| !removed.contains(&e));
        // A manifest this index no longer lists at all was deleted (its
        // file goes too): it goes from the newer index, whatever its tags.
        for e in base {
            if let Some(d) = entry_digest(e)
                && !mine.iter().any(|m| entry_digest(m) == Some(d))
            {
                out.entries_mut().retain(|x| entry_digest(x) != Some(d));
            }
        }
        for entry in added {
            let digest = entry_digest(entry).map(str::to_owned);
            match entry_tag(entry) {
                Some(tag) => {
                    out.remove_tag(tag);
                    out.entries_mut().retain(|e| {
                        !(entry_tag(e).is_none() && entry_digest(e) == digest.as_deref())
                    });
                    out.entries_mut().push(entry.clone());
                }
                None => {
                    if !out
                        .entries()
                        .iter()
                        .any(|e| entry_digest(e) == digest.as_deref())
                    {
                        out.entries_mut().push(entry.clone());
                    }
                }
            }
        }
        out
    }

    /// Removes every entry of `digest`; returns the tags that pointed at it.
    pub fn remove_digest(&mut self, digest: &Digest) -> Vec<String> {
        let d = digest.to_string();
        let mut tags = Vec::new();
        self.entries_mut().retain(|e| {
            if entry_digest(e) == Some(d.as_str()) {
                if let Some(t) = entry_tag(e) {
                    tags.push(t.to_owned());
                }
                false
            } else {
                true
            }
        });
        tags
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(n: u8) -> Descriptor {
        Descriptor {
            media_type: zot_oci::media_types::OCI_MANIFEST.into(),
            digest: Digest::sha256_of(&[n]),
            size: 10,
            artifact_type: None,
            annotations: None,
            platform: None,
            urls: None,
        }
    }

    #[test]
    fn tags_move_and_manifests_stay_listed() {
        let mut i = LayoutIndex::default();
        i.add_untagged(&desc(1));
        i.add_untagged(&desc(1));
        assert_eq!(i.descriptors().len(), 1);
        assert_eq!(i.set_tag("a", &desc(1)), None);
        let listed = |i: &LayoutIndex| -> Vec<(Digest, Option<String>)> {
            i.descriptors()
                .into_iter()
                .map(|(d, t)| (d.digest, t))
                .collect()
        };
        assert_eq!(listed(&i), vec![(desc(1).digest, Some("a".into()))]);
        i.set_tag("b", &desc(1));
        assert_eq!(i.descriptors().len(), 2);
        assert_eq!(i.remove_tag("a"), Some(desc(1).digest.to_string()));
        assert_eq!(i.remove_tag("a"), None);
        assert_eq!(i.remove_tag("b"), Some(desc(1).digest.to_string()));
        assert_eq!(listed(&i), vec![(desc(1).digest, None)]);
        i.set_tag("c", &desc(2));
        assert_eq!(i.set_tag("c", &desc(3)), Some(desc(2).digest.to_string()));
        assert!(
            i.contains(&desc(2).digest),
            "a moved tag leaves its manifest listed"
        );
        i.set_tag("c", &desc(2));
        assert_eq!(i.remove_digest(&desc(2).digest), vec!["c".to_string()]);
        assert!(!i.contains(&desc(2).digest));
        let reparsed = LayoutIndex::parse(&i.to_bytes()).unwrap();
        assert_eq!(reparsed.descriptors(), i.descriptors());
    }

    fn tags(i: &LayoutIndex) -> Vec<(Option<String>, Digest)> {
        let mut v: Vec<_> = i
            .descriptors()
            .into_iter()
            .map(|(d, t)| (t, d.digest))
            .collect();
        v.sort_by(|a, b| (&a.0, a.1.to_string()).cmp(&(&b.0, b.1.to_string())));
        v
    }

    #[test]
    fn rebase_keeps_both_writers_changes() {
        let mut start = LayoutIndex::default();
        start.set_tag("old", &desc(1));
        start.set_tag("gone", &desc(2));
        let bytes = start.to_bytes();
        let read = || {
            LayoutIndex::parse(&bytes)
                .unwrap()
                .read_at(Some("v1".into()), Default::default())
        };
        // Writer A (wins the race): tags `a`, moves `old` to 3.
        let mut a = read();
        a.set_tag("a", &desc(3));
        a.set_tag("old", &desc(3));
        // Writer B (read the same version): tags `b`, deletes tag `gone`.
        let mut b = read();
        b.set_tag("b", &desc(4));
        b.remove_tag("gone");
        let current = LayoutIndex::parse(&a.to_bytes())
            .unwrap()
            .read_at(Some("v2".into()), Default::default());
        let merged = b.rebase(current);
        assert_eq!(merged.base_version(), Some("v2"));
        let d = |n| desc(n).digest;
        assert_eq!(
            tags(&merged),
            tags(&{
                let mut want = LayoutIndex::default();
                want.add_untagged(&desc(1));
                want.add_untagged(&desc(2));
                want.set_tag("a", &desc(3));
                want.set_tag("old", &desc(3));
                want.set_tag("b", &desc(4));
                want
            }),
            "{:?}",
            (d(1), d(2), d(3), d(4))
        );
        // Removals apply where present: a digest deleted by B goes.
        let mut c = read();
        c.remove_digest(&desc(1).digest);
        let merged = c.rebase(
            LayoutIndex::parse(&a.to_bytes())
                .unwrap()
                .read_at(None, Default::default()),
        );
        assert!(
            !merged.contains(&desc(1).digest),
            "a deleted manifest stays listed"
        );
        assert!(merged.contains(&desc(3).digest));
        let mut e = read();
        e.remove_digest(&desc(2).digest);
        let merged = e.rebase(
            LayoutIndex::parse(&a.to_bytes())
                .unwrap()
                .read_at(None, Default::default()),
        );
        assert!(!merged.contains(&desc(2).digest));
        assert!(merged.contains(&desc(3).digest));
    }
}
