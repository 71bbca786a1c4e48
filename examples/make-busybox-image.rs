//! `make-busybox-image [--multiarch] OUT.tar`: writes the test base image
//! (`busybox:latest`, from the host's static busybox) as a deterministic OCI
//! archive; with `--multiarch`, an index of it and Debian's arm64
//! busybox-static (the .deb scripts/test caches under target/test-fixtures).

#[path = "../tests/it/fixtures.rs"]
mod fixtures;

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    match &args[..] {
        [out] => fixtures::write_busybox_archive(std::path::Path::new(out)),
        [flag, out] if flag == "--multiarch" => {
            fixtures::write_busybox_index_archive(std::path::Path::new(out))
        }
        _ => {
            eprintln!("usage: make-busybox-image [--multiarch] OUT.tar");
            std::process::exit(2);
        }
    }
}
