//! `make-busybox-image OUT.tar`: writes the test base image (`busybox:latest`,
//! from the host's static busybox) as a deterministic OCI archive.

#[path = "../tests/it/fixtures.rs"]
mod fixtures;

fn main() {
    let Some(out) = std::env::args_os().nth(1) else {
        eprintln!("usage: make-busybox-image OUT.tar");
        std::process::exit(2);
    };
    fixtures::write_busybox_archive(std::path::Path::new(&out));
}
