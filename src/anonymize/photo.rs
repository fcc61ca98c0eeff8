//! Placeholder photos: a contact's photo (`contactPhoto`, `photo`, a `data:image/…` URI)
//! becomes a one-pixel grey image of the same content type, so a client that decodes it
//! still can. PNG, JPEG, GIF and BMP are made here byte by byte (a few dozen bytes each; no
//! image crate is worth its weight for that), SVG is one element; an image type none of
//! these is becomes an empty body.

use std::sync::OnceLock;

/// The placeholder for a media type (`image/jpeg`, parameters ignored), or None when the
/// type has none (the body is then emptied).
pub fn placeholder(media_type: &str) -> Option<&'static [u8]> {
    let essence = media_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    Some(match essence.as_str() {
        "image/png" | "image/x-png" => png(),
        "image/jpeg" | "image/jpg" | "image/pjpeg" => JPEG,
        "image/gif" => GIF,
        "image/bmp" | "image/x-bmp" | "image/x-ms-bmp" => BMP,
        "image/svg+xml" => SVG,
        _ => return None,
    })
}

/// Whether a media type is an image.
pub fn is_image(media_type: &str) -> bool {
    media_type.trim().to_ascii_lowercase().starts_with("image/")
}

/// A 1×1 grey PNG (8-bit greyscale), its CRCs computed.
fn png() -> &'static [u8] {
    static PNG: OnceLock<Vec<u8>> = OnceLock::new();
    PNG.get_or_init(|| {
        let chunk = |out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]| {
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            let mut crc = flate2::Crc::new();
            crc.update(kind);
            crc.update(data);
            out.extend_from_slice(kind);
            out.extend_from_slice(data);
            out.extend_from_slice(&crc.sum().to_be_bytes());
        };
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        // Width 1, height 1, bit depth 8, colour type 0 (grey), deflate, no filter, no interlace.
        chunk(&mut out, b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0]);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut z, &[0, 0x80]).expect("in memory");
        chunk(&mut out, b"IDAT", &z.finish().expect("in memory"));
        chunk(&mut out, b"IEND", &[]);
        out
    })
}

/// An 8×8 mid-grey baseline JPEG: one component, one block whose DC difference and AC
/// coefficients are all zero, Huffman tables with one one-bit code each.
const JPEG: &[u8] = &[
    0xFF, 0xD8, // SOI
    0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01,
    0x00, 0x00, // APP0 JFIF 1.1, no thumbnail
    0xFF, 0xDB, 0x00, 0x43, 0x00, // DQT, table 0, 8-bit
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, //
    0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00, 0x08, 0x00, 0x08, 0x01, 0x01, 0x11,
    0x00, // SOF0 8×8, 1 component
    0xFF, 0xC4, 0x00, 0x14, 0x00, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0x00, // DHT DC 0: one code of length 1 for category 0
    0xFF, 0xC4, 0x00, 0x14, 0x10, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0x00, // DHT AC 0: one code of length 1 for end-of-block
    0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00, // SOS
    0x3F, // DC "0", EOB "0", padded with ones
    0xFF, 0xD9, // EOI
];

/// A 1×1 transparent GIF89a.
const GIF: &[u8] = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;";

/// A 1×1 grey 24-bit BMP.
const BMP: &[u8] = &[
    b'B', b'M', 58, 0, 0, 0, 0, 0, 0, 0, 54, 0, 0, 0, // file header: size 58, pixels at 54
    40, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 24, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0x13, 0x0B, 0, 0,
    0x13, 0x0B, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // info header: 1×1, 24 bpp, 4 bytes of pixels
    0x80, 0x80, 0x80, 0x00, // one grey pixel, row padded to 4 bytes
];

const SVG: &[u8] =
    br##"<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"><rect width="1" height="1" fill="#808080"/></svg>"##;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_placeholder_is_the_type_it_claims() {
        assert!(placeholder("image/png").unwrap().starts_with(b"\x89PNG"));
        let jpeg = placeholder("image/jpeg; charset=binary").unwrap();
        assert!(jpeg.starts_with(&[0xFF, 0xD8]) && jpeg.ends_with(&[0xFF, 0xD9]));
        // Every marker segment's length matches its content.
        let mut i = 2;
        while jpeg[i + 1] != 0xDA {
            let len = u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]) as usize;
            i += 2 + len;
            assert_eq!(jpeg[i], 0xFF, "segment ending at {i}");
        }
        assert!(placeholder("image/gif").unwrap().starts_with(b"GIF89a"));
        assert_eq!(placeholder("image/bmp").unwrap().len(), 58);
        assert!(placeholder("image/webp").is_none());
        assert!(is_image("Image/JPEG") && !is_image("text/plain"));
    }
}
