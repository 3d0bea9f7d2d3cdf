//! OCI specification types shared by every other crate: content digests,
//! repository names, tags and references, media types, and the parsing and
//! validation of manifests and indexes.
//!
//! Invariant: every value of these types has been validated against the
//! grammar of the OCI Distribution and Image specifications, so code that
//! holds a [`RepoName`], [`Tag`] or [`Digest`] may use it in a file path or a
//! header without further checks. Nothing in this crate does I/O.

mod digest;
mod hash_state;
pub mod image_meta;
mod manifest;
pub mod media_types;
mod name;

pub use digest::{Algorithm, Digest, DigestError, Hasher};
pub use hash_state::{HashState, HashStateError, SavedHashState};
pub use manifest::{Descriptor, ManifestError, ManifestKind, ParsedManifest};
pub use name::{NameError, Reference, RepoName, Tag};
