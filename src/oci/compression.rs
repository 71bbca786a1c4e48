//! Layer compression as the image model sees it: which codec a media type or
//! a blob's first bytes imply, and a decoder for it. Packing layers belongs to
//! `layer`; this is only what reading images (validate, archives) needs.

use std::io::{self, Read};

use super::media_type;

/// A layer blob's compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
}

/// A layer media type kiln does not know how to decompress.
#[derive(Debug, thiserror::Error)]
#[error("unsupported layer media type {0:?}")]
pub struct UnsupportedMediaType(pub String);

impl Compression {
    /// The codec a layer media type names.
    pub fn from_media_type(m: &str) -> Result<Self, UnsupportedMediaType> {
        match m {
            media_type::OCI_LAYER | media_type::DOCKER_LAYER => Ok(Self::None),
            media_type::OCI_LAYER_GZIP | media_type::DOCKER_LAYER_GZIP => Ok(Self::Gzip),
            media_type::OCI_LAYER_ZSTD => Ok(Self::Zstd),
            other => Err(UnsupportedMediaType(other.to_string())),
        }
    }

    /// The codec a blob's first bytes show (magic numbers).
    pub fn sniff(head: &[u8]) -> Self {
        if head.starts_with(&[0x1f, 0x8b]) {
            Self::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Self::Zstd
        } else {
            Self::None
        }
    }

    /// The OCI layer media type for this codec.
    pub fn oci_media_type(self) -> &'static str {
        match self {
            Self::None => media_type::OCI_LAYER,
            Self::Gzip => media_type::OCI_LAYER_GZIP,
            Self::Zstd => media_type::OCI_LAYER_ZSTD,
        }
    }

    /// Wraps `r` in the decoder for this codec.
    pub fn decoder<'a, R: Read + 'a>(self, r: R) -> io::Result<Box<dyn Read + 'a>> {
        Ok(match self {
            Self::None => Box::new(r),
            // MultiGzDecoder: parallel gzip writers emit several members.
            Self::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
            Self::Zstd => Box::new(zstd::stream::read::Decoder::new(r)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn gzip_round_trips_through_sniff() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"tar bytes").unwrap();
        let gz = enc.finish().unwrap();
        let c = Compression::sniff(&gz);
        assert_eq!(c, Compression::Gzip);
        let mut out = String::new();
        c.decoder(&gz[..])
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "tar bytes");
        assert_eq!(Compression::sniff(b"plain"), Compression::None);
        assert!(Compression::from_media_type("text/plain").is_err());
    }

    #[test]
    fn zstd_decodes_by_media_type() {
        let z = zstd::encode_all(&b"layer"[..], 3).unwrap();
        assert_eq!(Compression::sniff(&z), Compression::Zstd);
        let c = Compression::from_media_type(media_type::OCI_LAYER_ZSTD).unwrap();
        let mut out = Vec::new();
        c.decoder(&z[..]).unwrap().read_to_end(&mut out).unwrap();
        assert_eq!(out, b"layer");
    }
}
