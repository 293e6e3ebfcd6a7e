//! Pixel data: how a byte budget becomes rows × columns, and a synthetic image cheap enough
//! to make hundreds of per second (a phantom: air, a body ellipse, a bone ring, some noise).

/// The shape of the image pixel module for a byte budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Rows (0028,0010).
    pub rows: u16,
    /// Columns (0028,0011).
    pub columns: u16,
    /// Bits Allocated (0028,0100): 8 or 16.
    pub bits_allocated: u16,
    /// Bits Stored (0028,0101); High Bit is one less.
    pub bits_stored: u16,
}

impl Layout {
    /// Rows × columns of `bits_allocated`-bit pixels that make exactly `pixel_bytes` bytes,
    /// as square as the budget allows (the largest divisor of the pixel count not above its
    /// square root becomes the column count: 524,288 bytes of 16-bit pixels are 512 × 512).
    pub fn for_bytes(pixel_bytes: u64, bits_allocated: u16, bits_stored: u16) -> Result<Layout, String> {
        let per_pixel = u64::from(bits_allocated / 8).max(1);
        if pixel_bytes == 0 || !pixel_bytes.is_multiple_of(2) || !pixel_bytes.is_multiple_of(per_pixel) {
            return Err(format!(
                "pixel data of {pixel_bytes} bytes: must be a positive even number of bytes \
                 ({bits_allocated}-bit pixels)"
            ));
        }
        let pixels = pixel_bytes / per_pixel;
        let mut columns = pixels.isqrt();
        while !pixels.is_multiple_of(columns) {
            columns -= 1;
        }
        let rows = pixels / columns;
        match (u16::try_from(rows), u16::try_from(columns)) {
            (Ok(rows), Ok(columns)) => Ok(Layout {
                rows,
                columns,
                bits_allocated,
                bits_stored,
            }),
            _ => Err(format!(
                "pixel data of {pixel_bytes} bytes cannot be laid out as at most 65535 × 65535 \
                 {bits_allocated}-bit pixels (it would be {rows} × {columns}); pick a size with a \
                 divisor near its square root, e.g. 2 × 512 × 512"
            )),
        }
    }

    /// Bytes of pixel data.
    pub fn bytes(&self) -> usize {
        usize::from(self.rows) * usize::from(self.columns) * usize::from(self.bits_allocated / 8)
    }
}

/// A phantom slice, little-endian: air outside an ellipse of soft tissue with a ring of bone,
/// shifted by `slice` so consecutive instances differ, with noise from `noise_seed`.
/// `levels` are the stored values of (air, tissue, bone), within `bits_stored`.
///
/// Rows are filled span by span (air, bone, tissue, bone, air) and the noise is a window of
/// a per-image noise table, so the inner loops are plain slice operations the compiler
/// vectorises: about 0.1 ms for 512 × 512, and the generator keeps ahead of the network.
pub fn phantom(layout: &Layout, slice: u64, noise_seed: u64, levels: [u16; 3]) -> Vec<u8> {
    let mut out = Vec::with_capacity(layout.bytes());
    phantom_into(layout, slice, noise_seed, levels, &mut out);
    out
}

/// [`phantom`] appended to `out`: a buffer reused across instances costs no page faults,
/// which for 512 KiB images cost more than drawing them.
pub fn phantom_into(layout: &Layout, slice: u64, noise_seed: u64, levels: [u16; 3], out: &mut Vec<u8>) {
    let (rows, cols) = (usize::from(layout.rows), usize::from(layout.columns));
    let max = ((1u32 << layout.bits_stored.min(16)) - 1) as u16;
    // 5 bits of noise per entry; each row reads the table from its own offset.
    const TABLE: usize = 4096;
    let mut state = noise_seed | 1;
    let noise: Vec<u16> = (0..TABLE + cols)
        .map(|_| {
            // xorshift64
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state & 0x1f) as u16
        })
        .collect();
    let mut values = vec![0u16; cols];
    let start = out.len();
    out.resize(start + layout.bytes(), 0);
    let width = usize::from(layout.bits_allocated / 8).max(1);
    // The ellipse breathes a little along the series so that slices are not identical.
    let grow = 0.9 + 0.1 * ((slice % 64) as f64 / 64.0);
    let (cy, cx) = (rows as f64 / 2.0, cols as f64 / 2.0);
    let (ry, rx) = ((cy * 0.7 * grow).max(1.0), (cx * 0.85 * grow).max(1.0));
    // Columns [from, to) inside the ellipse of "radius" √r2 on the row at dy.
    let span = |r2: f64, dy: f64| -> (usize, usize) {
        if dy * dy >= r2 {
            return (0, 0);
        }
        let half = (r2 - dy * dy).sqrt() * rx;
        let from = (cx - half - 0.5).ceil().clamp(0.0, cols as f64) as usize;
        let to = (cx + half - 0.5).floor().clamp(-1.0, cols as f64 - 1.0) as isize + 1;
        (from, (to.max(0) as usize).max(from))
    };
    for (y, row_out) in out[start..].chunks_exact_mut(cols * width).enumerate() {
        let dy = (y as f64 + 0.5 - cy) / ry;
        let (outer, inner) = (span(1.0, dy), span(0.8, dy));
        values.fill(levels[0]);
        values[outer.0..outer.1].fill(levels[2]);
        values[inner.0..inner.1].fill(levels[1]);
        let offset = (noise_seed as usize).wrapping_add(y.wrapping_mul(2_654_435_761)) % TABLE;
        for (v, n) in values.iter_mut().zip(&noise[offset..offset + cols]) {
            *v = v.saturating_add(*n).min(max);
        }
        if width == 2 {
            for (o, v) in row_out.chunks_exact_mut(2).zip(&values) {
                o.copy_from_slice(&v.to_le_bytes());
            }
        } else {
            for (o, v) in row_out.iter_mut().zip(&values) {
                *o = *v as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_the_budget() {
        let l = Layout::for_bytes(512 * 1024, 16, 12).unwrap();
        assert_eq!((l.rows, l.columns, l.bytes()), (512, 512, 524_288));
        // 240,000 pixels: 480 is the largest divisor below the square root (489.9).
        let l = Layout::for_bytes(2 * 600 * 400, 16, 12).unwrap();
        assert_eq!((l.rows, l.columns), (500, 480));
        let l = Layout::for_bytes(1000, 8, 8).unwrap();
        assert_eq!(l.bytes(), 1000);
        assert!(Layout::for_bytes(0, 16, 12).is_err());
        assert!(Layout::for_bytes(7, 16, 12).is_err());
        // 2 × a prime above 65535: one row would be too long.
        assert!(Layout::for_bytes(2 * 65_537, 16, 12).is_err());
    }

    #[test]
    fn phantom_fills_the_layout_within_bits_stored() {
        let l = Layout::for_bytes(64 * 64 * 2, 16, 12).unwrap();
        let p = phantom(&l, 3, 9, [0, 1064, 1724]);
        assert_eq!(p.len(), l.bytes());
        assert!(p.chunks(2).all(|c| u16::from_le_bytes([c[0], c[1]]) <= 4095));
        assert!(p == phantom(&l, 3, 9, [0, 1064, 1724]));
        assert!(p != phantom(&l, 40, 9, [0, 1064, 1724]));
        assert!(p != phantom(&l, 3, 10, [0, 1064, 1724]));
    }
}
