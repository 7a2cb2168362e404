//! `render --width W --height H --tile-x X --tile-y Y --tile-size S [--max-iter N]
//! [--samples N] [--center-x CX] [--center-y CY] [--span SPAN] [--output DIR]`:
//! renders one tile of a Mandelbrot picture and writes `/output/tile-X-Y.png`.
//!
//! The tile at `(X, Y)` covers pixels `[X*S, min((X+1)*S, W))` by
//! `[Y*S, min((Y+1)*S, H))` of the whole `W`x`H` picture. A pixel's colour
//! depends only on its place in the whole picture, never on the tile, so
//! tiles rendered on different machines stitch into one seamless image.
//!
//! Deterministic: plain `f64` arithmetic and the module's own `ln`/`cos`
//! (compiled into the module), no clock, no randomness.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::process::ExitCode;

/// Largest picture side in pixels; bounds the memory of one tile too.
const SIDE_MAX: u32 = 1 << 15;
/// Most iterations per sample; beyond this, more detail costs too much fuel.
const MAX_ITER_MAX: u32 = 1 << 20;
/// Most samples per pixel side (N x N samples per pixel).
const SAMPLES_MAX: u32 = 8;
/// Escape radius squared; a large radius makes the smooth colouring smooth.
const ESCAPE_RADIUS_SQUARED: f64 = 256.0 * 256.0;

/// What to render.
struct Scene {
    width: u32,
    height: u32,
    max_iter: u32,
    samples: u32,
    center_x: f64,
    center_y: f64,
    /// Width of the picture in the complex plane.
    span: f64,
}

/// Which part of the picture, and where to put it.
struct Tile {
    x: u32,
    y: u32,
    size: u32,
    output: PathBuf,
}

fn main() -> ExitCode {
    let (scene, tile) = match parse(std::env::args().skip(1)) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!(
                "render: {message}\nusage: render --width W --height H --tile-x X --tile-y Y \
                 --tile-size S [--max-iter N] [--samples N] [--center-x CX] [--center-y CY] \
                 [--span SPAN] [--output DIR]"
            );
            return ExitCode::from(2);
        }
    };
    match render_tile(&scene, &tile) {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("render: {message}");
            ExitCode::FAILURE
        }
    }
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<(Scene, Tile), String> {
    let mut scene = Scene {
        width: 0,
        height: 0,
        max_iter: 500,
        samples: 2,
        center_x: -0.743_643_887,
        center_y: 0.131_825_904,
        span: 0.014,
    };
    let mut tile = Tile {
        x: u32::MAX,
        y: u32::MAX,
        size: 0,
        output: PathBuf::from("/output"),
    };
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let whole = || {
            value
                .parse::<u32>()
                .map_err(|_| format!("{flag} {value:?} is not a whole number"))
        };
        let real = || match value.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(format!("{flag} {value:?} is not a finite number")),
        };
        match flag.as_str() {
            "--width" => scene.width = whole()?,
            "--height" => scene.height = whole()?,
            "--max-iter" => scene.max_iter = whole()?,
            "--samples" => scene.samples = whole()?,
            "--center-x" => scene.center_x = real()?,
            "--center-y" => scene.center_y = real()?,
            "--span" => scene.span = real()?,
            "--tile-x" => tile.x = whole()?,
            "--tile-y" => tile.y = whole()?,
            "--tile-size" => tile.size = whole()?,
            "--output" => tile.output = PathBuf::from(value),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if scene.width == 0 || scene.height == 0 || scene.width > SIDE_MAX || scene.height > SIDE_MAX {
        return Err(format!(
            "--width and --height are required, 1 to {SIDE_MAX}"
        ));
    }
    if tile.size == 0 || tile.size > SIDE_MAX {
        return Err(format!("--tile-size is required, 1 to {SIDE_MAX}"));
    }
    if tile.x == u32::MAX || tile.y == u32::MAX {
        return Err("--tile-x and --tile-y are required".into());
    }
    if u64::from(tile.x) * u64::from(tile.size) >= u64::from(scene.width)
        || u64::from(tile.y) * u64::from(tile.size) >= u64::from(scene.height)
    {
        return Err(format!(
            "tile ({}, {}) of size {} lies outside the {}x{} picture",
            tile.x, tile.y, tile.size, scene.width, scene.height
        ));
    }
    if scene.max_iter == 0 || scene.max_iter > MAX_ITER_MAX {
        return Err(format!("--max-iter is 1 to {MAX_ITER_MAX}"));
    }
    if scene.samples == 0 || scene.samples > SAMPLES_MAX {
        return Err(format!("--samples is 1 to {SAMPLES_MAX}"));
    }
    if scene.span <= 0.0 {
        return Err("--span must be positive".into());
    }
    Ok((scene, tile))
}

fn render_tile(scene: &Scene, tile: &Tile) -> Result<String, String> {
    // Checked in `parse`: x0 < width and y0 < height, so nothing underflows.
    let x0 = tile.x * tile.size;
    let y0 = tile.y * tile.size;
    let x1 = x0.saturating_add(tile.size).min(scene.width);
    let y1 = y0.saturating_add(tile.size).min(scene.height);
    let (tile_width, tile_height) = (x1 - x0, y1 - y0);
    let mut pixels = Vec::with_capacity(tile_width as usize * tile_height as usize * 3);
    for py in y0..y1 {
        for px in x0..x1 {
            pixels.extend_from_slice(&pixel(scene, px, py));
        }
    }
    let name = format!("tile-{}-{}.png", tile.x, tile.y);
    let path = tile.output.join(&name);
    write_png(&path, tile_width, tile_height, &pixels)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(format!(
        "render: {name} pixels [{x0}, {x1}) x [{y0}, {y1}) of {}x{}, max-iter {}, {}x{} samples",
        scene.width, scene.height, scene.max_iter, scene.samples, scene.samples
    ))
}

/// The colour of pixel `(px, py)` of the whole picture: the mean of an
/// N x N grid of samples inside it.
fn pixel(scene: &Scene, px: u32, py: u32) -> [u8; 3] {
    let n = f64::from(scene.samples);
    let scale = scene.span / f64::from(scene.width);
    let half_width = f64::from(scene.width) / 2.0;
    let half_height = f64::from(scene.height) / 2.0;
    let mut sum = [0.0f64; 3];
    for sy in 0..scene.samples {
        for sx in 0..scene.samples {
            let x = f64::from(px) + (f64::from(sx) + 0.5) / n;
            let y = f64::from(py) + (f64::from(sy) + 0.5) / n;
            let re = scene.center_x + (x - half_width) * scale;
            let im = scene.center_y - (y - half_height) * scale;
            let colour = colour(escape_time(re, im, scene.max_iter), scene.max_iter);
            for (s, c) in sum.iter_mut().zip(colour) {
                *s += c;
            }
        }
    }
    let samples = n * n;
    sum.map(|s| (s / samples * 255.0).round().clamp(0.0, 255.0) as u8)
}

/// Smooth (fractional) escape time of `c = re + i im`, or `None` inside the set.
fn escape_time(re: f64, im: f64, max_iter: u32) -> Option<f64> {
    let (mut x, mut y) = (0.0f64, 0.0f64);
    for n in 0..max_iter {
        let (xx, yy) = (x * x, y * y);
        if xx + yy > ESCAPE_RADIUS_SQUARED {
            // Continuous colouring: n + 1 - log2(ln |z|).
            let log_modulus = (xx + yy).ln() / 2.0;
            return Some(
                f64::from(n) + 1.0
                    - (log_modulus / std::f64::consts::LN_2).ln() / std::f64::consts::LN_2,
            );
        }
        y = 2.0 * x * y + im;
        x = xx - yy + re;
    }
    None
}

/// A cosine palette (after Inigo Quilez): deep blue through gold to white,
/// cycling with the escape time; black inside the set.
fn colour(escape: Option<f64>, max_iter: u32) -> [f64; 3] {
    let Some(t) = escape else { return [0.0; 3] };
    // Compress the long tail so both the fast and slow regions get colour.
    let t = (t / f64::from(max_iter)).sqrt() * 6.0;
    let phase = [0.0, 0.10, 0.20];
    let mut rgb = [0.0; 3];
    for (channel, offset) in rgb.iter_mut().zip(phase) {
        *channel = 0.5 + 0.5 * (std::f64::consts::TAU * (t + offset + 0.55)).cos();
    }
    rgb
}

fn write_png(
    path: &PathBuf,
    width: u32,
    height: u32,
    rgb: &[u8],
) -> Result<(), png::EncodingError> {
    let file = File::create(path)?;
    let mut encoder = png::Encoder::new(BufWriter::new(file), width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(rgb)?;
    writer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> impl Iterator<Item = String> {
        text.split_whitespace()
            .map(String::from)
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn edge_tiles_are_clipped_and_outside_tiles_refused() {
        let (scene, tile) = parse(args(
            "--width 100 --height 50 --tile-x 1 --tile-y 0 --tile-size 64",
        ))
        .unwrap();
        assert_eq!((scene.width, tile.x * tile.size), (100, 64));
        assert!(
            parse(args(
                "--width 100 --height 50 --tile-x 2 --tile-y 0 --tile-size 64"
            ))
            .is_err()
        );
        assert!(
            parse(args(
                "--width 100 --height 50 --tile-x 0 --tile-y 1 --tile-size 50"
            ))
            .is_err()
        );
    }

    #[test]
    fn inside_the_set_is_black_and_outside_is_not() {
        assert_eq!(escape_time(0.0, 0.0, 100), None);
        assert_eq!(colour(None, 100), [0.0; 3]);
        let far = escape_time(2.0, 2.0, 100).unwrap();
        assert!(far < 3.0, "{far}");
    }
}
