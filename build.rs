//! Build-time guard: the module must be loadable by the nginx that will run it.
//!
//! nginx refuses a dynamic module whose version or "module signature" (a string of the
//! configure options that change struct layouts) differs from its own, but only at
//! `load_module` time, on the operator's machine. This script computes the signature of
//! the nginx tree we compile against (from nginx-sys's metadata) and looks for it in the
//! nginx binary named by NGINX_BINARY (default /usr/sbin/nginx), so a mismatch fails the
//! build with an explanation instead. NGINX_BINARY=skip turns the check off.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

/// "Nov 24 2026 12:44:45" (UTC), as C's `__DATE__ " " __TIME__` reads, for `/stat`'s
/// `<built>`; SOURCE_DATE_EPOCH makes it reproducible.
fn built() -> String {
    let secs = env::var("SOURCE_DATE_EPOCH").ok().and_then(|s| s.parse::<i64>().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
    });
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    format!("{} {:2} {year} {:02}:{:02}:{:02}", MONTHS[(month - 1) as usize], day, rem / 3600, rem / 60 % 60, rem % 60)
}

fn main() {
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    println!("cargo:rustc-env=NGX_RTMP_RS_BUILT={}", built());
    // Without the "nginx" feature (fuzzing the pure cores) there is no module to check.
    if env::var_os("CARGO_FEATURE_NGINX").is_none() {
        return;
    }
    // WHIP's Opus-to-AAC transcoder: a small C shim over FFmpeg's libavcodec (Debian's
    // libavcodec-dev / libavutil-dev to build, libavcodec59 / libavutil57 to run).
    println!("cargo:rerun-if-changed=src/whip/opus_aac.c");
    cc::Build::new().file("src/whip/opus_aac.c").warnings(true).extra_warnings(true).compile("opus_aac");
    // WHEP's AAC-to-Opus transcoder: the same over libavcodec and libswresample (to 48 kHz).
    println!("cargo:rerun-if-changed=src/whip/aac_opus.c");
    cc::Build::new().file("src/whip/aac_opus.c").warnings(true).extra_warnings(true).compile("aac_opus");
    // Batched writes to players (io_uring, with raw system calls: no liburing needed).
    println!("cargo:rerun-if-changed=src/glue/uring.c");
    cc::Build::new().file("src/glue/uring.c").warnings(true).extra_warnings(true).compile("ngx_rtmp_uring");
    // Starting and reaping exec children (what runs between clone and execve must be C).
    println!("cargo:rerun-if-changed=src/glue/spawn.c");
    cc::Build::new().file("src/glue/spawn.c").warnings(true).extra_warnings(true).compile("ngx_rtmp_spawn");
    println!("cargo:rustc-link-lib=dylib=avcodec");
    println!("cargo:rustc-link-lib=dylib=avutil");
    println!("cargo:rustc-link-lib=dylib=swresample");
    println!("cargo:rerun-if-env-changed=NGINX_BINARY");
    println!("cargo:rerun-if-env-changed=DEP_NGINX_BUILD_DIR");
    println!("cargo:rerun-if-changed=build.rs");

    let includes: Vec<PathBuf> = env::var_os("DEP_NGINX_INCLUDE")
        .map(|v| env::split_paths(&v).collect())
        .unwrap_or_default();
    let cflags = env::var("DEP_NGINX_CFLAGS").unwrap_or_default();
    let version = env::var("DEP_NGINX_VERSION").unwrap_or_default();
    if let Ok(dir) = env::var("DEP_NGINX_BUILD_DIR") {
        println!("cargo:rerun-if-changed={dir}/ngx_auto_config.h");
    }

    let signature = module_signature(&includes, &cflags);
    println!("cargo:rustc-env=NGX_RTMP_BUILT_FOR={version} ({signature})");

    let binary = env::var("NGINX_BINARY").unwrap_or_else(|_| "/usr/sbin/nginx".into());
    if binary == "skip" {
        return;
    }
    println!("cargo:rerun-if-changed={binary}");
    let Ok(image) = fs::read(&binary) else {
        println!("cargo:warning=not checking binary compatibility: cannot read {binary} (set NGINX_BINARY)");
        return;
    };
    let found = |needle: &str| image.windows(needle.len()).any(|w| w == needle.as_bytes());
    if !version.is_empty() && !found(&format!("{version}\0")) {
        panic!(
            "\n\nthe module is being built against {version} headers, but {binary} is a different \
             nginx version: it would refuse to load the module.\nBuild against that nginx's own \
             source tree (NGINX_BUILD_DIR=/path/to/nginx/objs after ./configure --with-compat …), \
             or name the nginx that will load it with NGINX_BINARY=/path/to/nginx.\n"
        );
    }
    if !found(&format!("{signature}\0")) {
        panic!(
            "\n\nmodule signature mismatch: the nginx tree we build against has signature\n  {signature}\n\
             but {binary} was configured differently, so `load_module` would fail with \
             \"module is not binary compatible\".\nConfigure the build tree with that nginx's own \
             flags (see `{binary} -V`; keep --with-compat), or set NGINX_BINARY to the nginx \
             that will load the module.\n"
        );
    }
}

/// Expands NGX_MODULE_SIGNATURE with the compiler flags of the nginx build tree.
fn module_signature(includes: &[PathBuf], cflags: &str) -> String {
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    let src = out.join("signature.c");
    fs::write(&src, "#include <ngx_config.h>\n#include <ngx_core.h>\nNGX_RS_SIGNATURE=NGX_MODULE_SIGNATURE\n")
        .expect("write signature.c");
    let mut build = cc::Build::new();
    build.file(&src).includes(includes.iter().map(PathBuf::as_path).filter(|p| Path::new(p).exists()));
    for flag in cflags.split_whitespace() {
        if let Some(def) = flag.strip_prefix("-D") {
            match def.split_once('=') {
                Some((k, v)) => build.define(k, v),
                None => build.define(def, None),
            };
        }
    }
    let expanded = String::from_utf8(build.expand()).expect("preprocessor output is text");
    let line = expanded
        .lines()
        .find_map(|l| l.trim().strip_prefix("NGX_RS_SIGNATURE="))
        .expect("NGX_MODULE_SIGNATURE expands");
    // The macro is a run of adjacent string literals: join their contents.
    line.split('"').skip(1).step_by(2).collect()
}
