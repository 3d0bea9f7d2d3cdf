//! Link options of the `zot` binary.
//!
//! On GNU/Linux the binary's relative relocations are packed (DT_RELR):
//! about 51,000 of them, which the dynamic loader otherwise reads from a
//! 1.2 MB table at every start (pages that then stay resident). A binary
//! linked so runs only on glibc 2.36 or later, so this is done only for a
//! native build on such a glibc (the machine building is the machine, or
//! the distribution, running); a cross build, an older glibc, or
//! `ZOT_NO_PACKED_RELOCS=1` links as usual.
fn main() {
    println!("cargo:rerun-if-env-changed=ZOT_NO_PACKED_RELOCS");
    let target = std::env::var("TARGET").unwrap_or_default();
    let host = std::env::var("HOST").unwrap_or_default();
    let opted_out = std::env::var_os("ZOT_NO_PACKED_RELOCS").is_some_and(|v| v == "1");
    if target.ends_with("-linux-gnu") && target == host && !opted_out && host_glibc_at_least(2, 36)
    {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// Whether `getconf GNU_LIBC_VERSION` ("glibc 2.36") names at least
/// `major.minor`; false when it cannot be asked.
fn host_glibc_at_least(major: u32, minor: u32) -> bool {
    let Ok(out) = std::process::Command::new("getconf")
        .arg("GNU_LIBC_VERSION")
        .output()
    else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(version) = text.split_whitespace().nth(1) else {
        return false;
    };
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (a, b) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (a, b) >= (major, minor)
}
