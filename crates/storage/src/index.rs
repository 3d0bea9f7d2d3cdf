//! A repository's `index.json`: the OCI image index that lists every
//! manifest of the repository. A tagged manifest has one entry per tag, with
//! the tag in the `org.opencontainers.image.ref.name` annotation; a manifest
//! without tags has one entry without that annotation. Fields this code does
//! not know are kept as they were read.

use serde_json::{Map, Value, json};
use zot_oci::{Descriptor, Digest};

pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

#[derive(Debug, Clone)]
pub struct LayoutIndex {
    doc: Map<String, Value>,
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
        LayoutIndex { doc }
    }
}

impl LayoutIndex {
    pub fn parse(bytes: &[u8]) -> Result<LayoutIndex, serde_json::Error> {
        let doc: Map<String, Value> = serde_json::from_slice(bytes)?;
        let mut idx = LayoutIndex { doc };
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
}
