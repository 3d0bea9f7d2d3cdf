//! Bounds on the work and memory of a scan. Every layer is untrusted: each
//! quantity an attacker controls (bytes expanded, entries, size of a file
//! that is buffered, nesting of archives, packages reported) has a limit
//! here, and reaching it either skips the file (recorded as a problem) or
//! fails the layer, never grows memory without bound.

/// Limits of one scan; [`Limits::default`] suits real images.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Uncompressed bytes of one layer (tar bombs).
    pub layer_bytes: u64,
    /// Entries of one layer's tar stream.
    pub layer_entries: u64,
    /// A package database kept in memory to be parsed (dpkg status, apk
    /// installed, composer installed.json, Cargo.lock).
    pub database_bytes: u64,
    /// A small metadata file (os-release, METADATA, package.json, gemspec,
    /// pom.properties).
    pub metadata_bytes: u64,
    /// An executable held in memory to read its sections (Rust's
    /// `.dep-v0`, Go's build info in the pointer format of Go < 1.18); a
    /// larger one is only searched for Go's inline build info, streaming.
    pub binary_bytes: u64,
    /// Embedded build information (Go's module list, cargo-auditable's
    /// JSON once inflated).
    pub build_info_bytes: u64,
    /// An archive (jar) or rpm database spooled to a temporary file.
    pub archive_bytes: u64,
    /// Spooled content kept in memory rather than in a temporary file.
    pub spool_memory_bytes: u64,
    /// Archives inside archives (a jar inside a jar is depth 2).
    pub archive_depth: u32,
    /// Entries read from one archive.
    pub archive_entries: u64,
    /// Packages in one inventory; the files past it are recorded as problems.
    pub packages: usize,
    /// Problems recorded in one inventory (further ones are counted).
    pub problems: usize,
    /// Steps of SQLite's virtual machine for one rpm database.
    pub sqlite_steps: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            layer_bytes: 64 << 30,
            layer_entries: 4_000_000,
            database_bytes: 64 << 20,
            metadata_bytes: 1 << 20,
            binary_bytes: 32 << 20,
            build_info_bytes: 8 << 20,
            archive_bytes: 1 << 30,
            spool_memory_bytes: 8 << 20,
            archive_depth: 4,
            archive_entries: 200_000,
            packages: 500_000,
            problems: 100,
            sqlite_steps: 2_000_000_000,
        }
    }
}
