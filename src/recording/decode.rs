//! Undoing `Content-Encoding` (gzip, deflate, br): the store keeps bodies decoded, and a
//! compressed body must be decoded before its origins can be rewritten.

use std::io::Read;

/// A decoded body, capped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub bytes: Vec<u8>,
    /// The decoded body was longer than the cap and was cut.
    pub truncated: bool,
}

/// Whether `Content-Encoding` says anything other than identity.
pub fn is_encoded(content_encoding: Option<&str>) -> bool {
    content_encoding.is_some_and(|e| {
        e.split(',')
            .map(str::trim)
            .any(|c| !c.is_empty() && !c.eq_ignore_ascii_case("identity"))
    })
}

/// Decode `body` per `content_encoding` (codings applied in order, so undone in reverse),
/// keeping at most `limit` bytes. An unknown coding or corrupt data is an error.
pub fn decode(content_encoding: &str, body: &[u8], limit: usize) -> Result<Decoded, String> {
    let mut current = body.to_vec();
    let mut truncated = false;
    for coding in content_encoding.split(',').map(str::trim).rev() {
        let lower = coding.to_ascii_lowercase();
        let reader: Box<dyn Read + '_> = match lower.as_str() {
            "" | "identity" => continue,
            "gzip" | "x-gzip" => Box::new(flate2::read::MultiGzDecoder::new(&current[..])),
            "deflate" => {
                // Servers send zlib-wrapped or raw deflate under this name.
                if current.len() >= 2
                    && (u16::from(current[0]) << 8 | u16::from(current[1])) % 31 == 0
                {
                    Box::new(flate2::read::ZlibDecoder::new(&current[..]))
                } else {
                    Box::new(flate2::read::DeflateDecoder::new(&current[..]))
                }
            }
            "br" => Box::new(brotli::Decompressor::new(&current[..], 8192)),
            other => return Err(format!("unknown content coding {other:?}")),
        };
        let mut out = Vec::new();
        reader
            .take(limit as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| format!("cannot decode {coding} body: {e}"))?;
        if out.len() > limit {
            out.truncate(limit);
            truncated = true;
        }
        current = out;
    }
    Ok(Decoded {
        bytes: current,
        truncated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn gzip_deflate_and_brotli_round_trip() {
        let text = b"{\"href\":\"https://fe1.contoso.com/ucwa\"}".repeat(20);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&text).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(decode("gzip", &gz, 1 << 20).unwrap().bytes, text);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&text).unwrap();
        assert_eq!(
            decode("deflate", &z.finish().unwrap(), 1 << 20)
                .unwrap()
                .bytes,
            text
        );
        let mut br = Vec::new();
        brotli::CompressorWriter::new(&mut br, 4096, 5, 22)
            .write_all(&text)
            .unwrap();
        assert_eq!(decode("br", &br, 1 << 20).unwrap().bytes, text);
        let cut = decode("gzip", &gz, 10).unwrap();
        assert!(cut.truncated);
        assert_eq!(cut.bytes.len(), 10);
        assert!(decode("gzip", b"not gzip", 100).is_err());
        assert!(decode("compress", b"x", 100).is_err());
        assert!(is_encoded(Some("gzip")) && !is_encoded(Some("identity")) && !is_encoded(None));
    }
}
