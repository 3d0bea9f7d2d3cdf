use std::collections::BTreeMap;

use super::*;
use crate::Action;

/// Keys in memory, counting writes of use times.
#[derive(Default)]
struct Memory {
    keys: Mutex<BTreeMap<KeyHash, StoredKey>>,
    used: Mutex<HashMap<(String, String), u64>>,
    use_writes: Mutex<usize>,
    fail_use: std::sync::atomic::AtomicBool,
}

impl KeyStore for Memory {
    fn insert(&self, hash: &KeyHash, key: &StoredKey) -> Result<(), KeyStoreError> {
        self.keys.lock().unwrap().insert(*hash, key.clone());
        Ok(())
    }
    fn by_hash(&self, hash: &KeyHash) -> Result<Option<StoredKey>, KeyStoreError> {
        Ok(self.keys.lock().unwrap().get(hash).cloned())
    }
    fn by_id(&self, owner: &str, id: &str) -> Result<Option<StoredKey>, KeyStoreError> {
        Ok(self
            .keys
            .lock()
            .unwrap()
            .values()
            .find(|k| k.owner == owner && k.id == id)
            .cloned())
    }
    fn of_owner(&self, owner: &str) -> Result<Vec<StoredKey>, KeyStoreError> {
        let used = self.used.lock().unwrap();
        Ok(self
            .keys
            .lock()
            .unwrap()
            .values()
            .filter(|k| k.owner == owner)
            .map(|k| StoredKey {
                last_used: used.get(&(k.owner.clone(), k.id.clone())).copied(),
                ..k.clone()
            })
            .collect())
    }
    fn remove(&self, owner: &str, id: &str) -> Result<bool, KeyStoreError> {
        let mut keys = self.keys.lock().unwrap();
        let before = keys.len();
        keys.retain(|_, k| !(k.owner == owner && k.id == id));
        Ok(keys.len() < before)
    }
    fn record_use(&self, used: &[(String, String, u64)]) -> Result<(), KeyStoreError> {
        if self.fail_use.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(KeyStoreError("disk full".into()));
        }
        *self.use_writes.lock().unwrap() += 1;
        let mut map = self.used.lock().unwrap();
        for (o, i, t) in used {
            map.insert((o.clone(), i.clone()), *t);
        }
        Ok(())
    }
}

fn alice() -> Identity {
    Identity {
        name: "alice".into(),
        groups: vec!["devs".into()],
        method: Method::Ldap,
        grants: None,
        key: None,
    }
}

fn keys() -> (Arc<Memory>, ApiKeys) {
    let store = Arc::new(Memory::default());
    (store.clone(), ApiKeys::new(store))
}

fn new(scopes: &[&str], expires: Option<u64>) -> NewKey {
    NewKey {
        label: "ci".into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        expires,
        user_agent: "curl/8".into(),
    }
}

#[test]
fn key_format_is_zots() {
    let (_, k) = keys();
    let made = k.create(&alice(), new(&[], None)).unwrap();
    assert!(made.key.starts_with("zak_"), "{}", made.key);
    assert_eq!(made.key.len(), 4 + 32);
    assert!(key_secret(&made.key).is_some());
    // The id is a UUIDv4.
    let id = &made.stored.id;
    assert_eq!(id.len(), 36);
    assert_eq!(&id[14..15], "4", "{id}");
    assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
    // Two keys differ.
    let other = k.create(&alice(), new(&[], None)).unwrap();
    assert_ne!(made.key, other.key);
    assert_ne!(made.stored.id, other.stored.id);
    for bad in [
        "zak_",
        "zak_0123456789abcdef0123456789abcde",   // 31
        "zak_0123456789abcdef0123456789abcdef0", // 33
        "zak_0123456789ABCDEF0123456789ABCDEF",
        "ZAK_0123456789abcdef0123456789abcdef",
        "0123456789abcdef0123456789abcdef",
        "zak_0123456789abcdef0123456789abcdeg",
    ] {
        assert_eq!(key_secret(bad), None, "{bad}");
    }
}

#[test]
fn only_the_hash_of_the_secret_is_stored() {
    let (store, k) = keys();
    let made = k.create(&alice(), new(&["pull"], None)).unwrap();
    let secret = &made.key[4..];
    // SHA-256 of the part after zak_, as zot.
    let expected = digest::digest(&digest::SHA256, secret.as_bytes());
    let stored = store.keys.lock().unwrap();
    let (hash, record) = stored.iter().next().unwrap();
    assert_eq!(&hash[..], expected.as_ref());
    let json = serde_json::to_string(record).unwrap();
    assert!(!json.contains(secret), "{json}");
    assert_eq!(record.groups, ["devs"]);
    assert_eq!(record.via, "ldap");
    assert_eq!(record.creator_ua, "curl/8");
}

#[test]
fn a_key_authenticates_only_its_owner_within_its_scope() {
    let (_, k) = keys();
    let made = k
        .create(&alice(), new(&["pull", "repository:team/**"], None))
        .unwrap();
    let KeyCheck::Valid(who) = k.check("alice", &made.key) else {
        panic!("key refused");
    };
    assert_eq!(who.name, "alice");
    assert_eq!(who.groups, ["devs"]);
    assert_eq!(who.method, Method::ApiKey);
    let scope = &who.key.as_ref().unwrap().scope;
    assert!(scope.allows("team/app", Action::Read));
    assert!(!scope.allows("team/app", Action::Create));
    assert!(!scope.allows("other", Action::Read));
    assert!(matches!(k.check("bob", &made.key), KeyCheck::Refused(_)));
    assert!(matches!(
        k.check("alice", "zak_00000000000000000000000000000000"),
        KeyCheck::Refused(_)
    ));
    assert!(matches!(k.check("alice", "a password"), KeyCheck::NotAKey));
}

#[test]
fn revoked_and_expired_keys_are_refused_at_once() {
    let (store, k) = keys();
    let made = k.create(&alice(), new(&[], None)).unwrap();
    assert!(matches!(k.check("alice", &made.key), KeyCheck::Valid(_)));
    assert!(k.still_valid("alice", &made.stored.id).is_some());
    assert!(k.revoke("alice", &made.stored.id).unwrap());
    assert!(matches!(k.check("alice", &made.key), KeyCheck::Refused(_)));
    assert!(k.still_valid("alice", &made.stored.id).is_none());
    assert!(!k.revoke("alice", &made.stored.id).unwrap());

    // Expiry in the past is refused when made; a key past its expiry
    // (here: its record aged by hand) is refused when used.
    let past = now_secs() - 1;
    assert!(matches!(
        k.create(&alice(), new(&[], Some(past))),
        Err(KeyError::Invalid(_))
    ));
    let soon = k
        .create(&alice(), new(&[], Some(now_secs() + 3600)))
        .unwrap();
    assert!(matches!(k.check("alice", &soon.key), KeyCheck::Valid(_)));
    for rec in store.keys.lock().unwrap().values_mut() {
        rec.expires = Some(past);
    }
    assert!(matches!(k.check("alice", &soon.key), KeyCheck::Refused(_)));
    assert!(k.still_valid("alice", &soon.stored.id).is_none());
}

#[test]
fn another_users_key_cannot_be_revoked() {
    let (_, k) = keys();
    let made = k.create(&alice(), new(&[], None)).unwrap();
    assert!(!k.revoke("bob", &made.stored.id).unwrap());
    assert!(matches!(k.check("alice", &made.key), KeyCheck::Valid(_)));
}

#[test]
fn bad_scopes_are_refused_when_made() {
    let (_, k) = keys();
    let Err(KeyError::Invalid(why)) = k.create(&alice(), new(&["write"], None)) else {
        panic!("accepted");
    };
    assert!(why.contains("write"), "{why}");
}

#[test]
fn uses_are_batched_and_listed_before_they_are_written() {
    let (store, k) = keys();
    let made = k.create(&alice(), new(&[], None)).unwrap();
    assert_eq!(k.list("alice").unwrap()[0].last_used, None);
    for _ in 0..100 {
        assert!(matches!(k.check("alice", &made.key), KeyCheck::Valid(_)));
    }
    assert_eq!(*store.use_writes.lock().unwrap(), 0, "no write per use");
    let listed = k.list("alice").unwrap();
    assert!(listed[0].last_used.is_some(), "pending use is listed");
    // A failed flush keeps the uses for the next one.
    store
        .fail_use
        .store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(k.flush().is_err());
    store
        .fail_use
        .store(false, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(k.flush().unwrap(), 1);
    assert_eq!(*store.use_writes.lock().unwrap(), 1);
    assert_eq!(k.flush().unwrap(), 0, "nothing new");
    assert_eq!(*store.use_writes.lock().unwrap(), 1);
    assert!(
        store
            .used
            .lock()
            .unwrap()
            .contains_key(&("alice".into(), made.stored.id.clone()))
    );
}

#[test]
fn keys_per_user_are_bounded() {
    let (_, k) = keys();
    for _ in 0..MAX_KEYS_PER_USER {
        k.create(&alice(), new(&[], None)).unwrap();
    }
    assert!(matches!(
        k.create(&alice(), new(&[], None)),
        Err(KeyError::Invalid(_))
    ));
}
