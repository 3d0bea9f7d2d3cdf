//! Link options of the `zot` binary.
//!
//! On GNU/Linux the binary's relative relocations are packed (DT_RELR,
//! glibc 2.36 and binutils 2.38 or later): about 51,000 of them, which the
//! dynamic loader otherwise reads from a 1.2 MB table at every start (pages
//! that then stay resident).
fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.ends_with("-linux-gnu") {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
