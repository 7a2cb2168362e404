//! Stitching tiles rendered on different nodes into one picture.

use std::io::Cursor;

/// A tile could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TileError {
    /// The tile is not a PNG this code reads.
    #[error("tile ({x}, {y}) is not a readable PNG: {reason}")]
    Decode {
        /// Tile column.
        x: u32,
        /// Tile row.
        y: u32,
        /// What the decoder said.
        reason: String,
    },
    /// The tile's size or format does not fit its place in the picture.
    #[error("tile ({x}, {y}) is {got}, expected {expected}")]
    Shape {
        /// Tile column.
        x: u32,
        /// Tile row.
        y: u32,
        /// What it is.
        got: String,
        /// What it should be.
        expected: String,
    },
    /// Encoding the picture failed.
    #[error("encoding the picture: {0}")]
    Encode(String),
}

/// The pixel range a tile covers along one axis.
pub fn tile_span(index: u32, tile_size: u32, total: u32) -> (u32, u32) {
    let start = index * tile_size;
    (start, ((index + 1) * tile_size).min(total))
}

/// Places 8-bit RGB PNG tiles `(x, y, png bytes)` of size `tile_size` into a
/// `width` × `height` picture and returns it as a PNG.
pub fn stitch(
    width: u32,
    height: u32,
    tile_size: u32,
    tiles: &[(u32, u32, Vec<u8>)],
) -> Result<Vec<u8>, TileError> {
    let mut canvas = vec![0u8; width as usize * height as usize * 3];
    for (x, y, bytes) in tiles {
        let (x, y) = (*x, *y);
        let decode = |reason: String| TileError::Decode { x, y, reason };
        let decoder = png::Decoder::new(Cursor::new(bytes.as_slice()));
        let mut reader = decoder.read_info().map_err(|e| decode(e.to_string()))?;
        let mut buf = vec![0u8; reader.output_buffer_size().unwrap_or(0)];
        let info = reader
            .next_frame(&mut buf)
            .map_err(|e| decode(e.to_string()))?;
        let (x0, x1) = tile_span(x, tile_size, width);
        let (y0, y1) = tile_span(y, tile_size, height);
        let expected = format!("{}x{} RGB8", x1 - x0, y1 - y0);
        let got = format!(
            "{}x{} {:?}{:?}",
            info.width, info.height, info.color_type, info.bit_depth
        );
        if info.width != x1 - x0
            || info.height != y1 - y0
            || info.color_type != png::ColorType::Rgb
            || info.bit_depth != png::BitDepth::Eight
        {
            return Err(TileError::Shape {
                x,
                y,
                got,
                expected,
            });
        }
        let row_bytes = (x1 - x0) as usize * 3;
        for row in 0..(y1 - y0) as usize {
            let src = &buf[row * info.line_size..row * info.line_size + row_bytes];
            let at = ((y0 as usize + row) * width as usize + x0 as usize) * 3;
            canvas[at..at + row_bytes].copy_from_slice(src);
        }
    }
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder
            .write_header()
            .map_err(|e| TileError::Encode(e.to_string()))?;
        writer
            .write_image_data(&canvas)
            .map_err(|e| TileError::Encode(e.to_string()))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tile(w: u32, h: u32, shade: u8) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, w, h);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().unwrap();
        writer
            .write_image_data(&vec![shade; (w * h * 3) as usize])
            .unwrap();
        drop(writer);
        out
    }

    #[test]
    fn tiles_land_where_they_belong_and_misfits_are_refused() {
        // 5x3 picture of 4-pixel tiles: (0,0) is 4x3, (1,0) is 1x3.
        let png = stitch(5, 3, 4, &[(0, 0, tile(4, 3, 10)), (1, 0, tile(1, 3, 200))]).unwrap();
        let mut reader = png::Decoder::new(Cursor::new(png)).read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        reader.next_frame(&mut buf).unwrap();
        assert_eq!(buf[0], 10);
        assert_eq!(buf[4 * 3], 200, "pixel (4, 0) comes from tile (1, 0)");
        assert!(matches!(
            stitch(5, 3, 4, &[(1, 0, tile(4, 3, 1))]),
            Err(TileError::Shape { .. })
        ));
        assert!(matches!(
            stitch(5, 3, 4, &[(0, 0, b"nope".to_vec())]),
            Err(TileError::Decode { .. })
        ));
    }
}
