//! `pack-layer DIR [gzip|zstd|none] [OUT]`: packs DIR as `kiln build` packs a
//! COPY layer (plain dir, default level) into OUT (default /dev/null), with the
//! blob's sha256 computed as the store computes it, and prints the diff_id,
//! the blob digest, the sizes and the time. The compressor's throughput on a
//! tree of one's choosing, beside `tar c DIR | pigz -p2 -6` or `zstd -3 -T2`:
//!
//!     cargo build --release --example pack-layer
//!     hyperfine 'target/release/examples/pack-layer /tmp/rand gzip' \
//!               'tar -C /tmp/rand -c . | pigz -p2 -6 >/dev/null'

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::time::Instant;

use kiln::layer::{pack, Compression, PackOptions, SourceKind};
use kiln::oci::DigestWriter;

fn main() {
    let mut args = std::env::args_os().skip(1);
    let Some(dir) = args.next().map(PathBuf::from) else {
        eprintln!("usage: pack-layer DIR [gzip|zstd|none] [OUT]");
        std::process::exit(2);
    };
    let compression = match args.next() {
        None => Compression::Gzip,
        Some(c) => match Compression::parse(&c.to_string_lossy()) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(2);
            }
        },
    };
    let out = args.next().unwrap_or_else(|| "/dev/null".into());
    let file = match File::create(&out) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: creating {}: {e}", out.to_string_lossy());
            std::process::exit(3);
        }
    };
    let opts = PackOptions {
        compression,
        source_date_epoch: Some(0),
        level: None,
    };
    let start = Instant::now();
    let mut w = DigestWriter::new(BufWriter::with_capacity(1 << 20, file));
    let packed = match pack(&dir, SourceKind::Plain, &opts, &mut w) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(3);
        }
    };
    let (_, digest, size) = w.finish();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{} tar {} bytes -> blob sha256:{} {} bytes in {:.3} s ({:.1} MB/s of tar)",
        packed.diff_id,
        packed.uncompressed_size,
        hex::encode(digest),
        size,
        secs,
        packed.uncompressed_size as f64 / secs / 1e6,
    );
}
