//! Pictures of live quality, drawn with plotters: the calibration curve of a binary model
//! (mean predicted against observed, per version and route, beside the diagonal) and
//! its headline metric per day (AUC, WAPE or accuracy). PNG through the bitmap backend,
//! SVG, or HTML around the SVG; text is laid out in a system font (DejaVu or Liberation,
//! read at run time: no font is compiled in).

use std::path::Path;

use mercator_proto::v1 as pb;
use plotters::coord::Shift;
use plotters::prelude::*;

const SIZE: (u32, u32) = (1200, 500);

/// Fonts tried for PNG text, in order.
const FONTS: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/Library/Fonts/Arial Unicode.ttf",
];

/// Draws `resp` to `path`, by its extension.
pub(super) fn quality(resp: &pb::GetQualityResponse, path: &Path) -> anyhow::Result<()> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    if !matches!(ext.as_str(), "png" | "svg" | "html") {
        anyhow::bail!("--plot {}: write .png, .svg or .html", path.display());
    }
    register_font()?;
    match ext.as_str() {
        "png" => {
            let mut buffer = vec![0u8; (SIZE.0 * SIZE.1 * 3) as usize];
            {
                let root = BitMapBackend::with_buffer(&mut buffer, SIZE).into_drawing_area();
                draw(&root, resp)?;
                root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
            }
            let file = std::fs::File::create(path)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), SIZE.0, SIZE.1);
            encoder.set_color(png::ColorType::Rgb);
            encoder.set_depth(png::BitDepth::Eight);
            let mut writer = encoder.write_header()?;
            writer.write_image_data(&buffer)?;
        }
        _ => {
            let mut svg = String::new();
            {
                let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
                draw(&root, resp)?;
                root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
            }
            let text = if ext == "html" {
                format!(
                    "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{} quality</title></head>\n<body>\n{svg}\n</body></html>\n",
                    resp.model_name
                )
            } else {
                svg
            };
            std::fs::write(path, text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        }
    }
    Ok(())
}

/// Registers the first system font found as plotters' `sans-serif`.
fn register_font() -> anyhow::Result<()> {
    let bytes = FONTS
        .iter()
        .find_map(|p| std::fs::read(p).ok())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no font for the PNG's text (looked for {}): install fonts-dejavu-core, or write .svg or .html",
                FONTS.join(", ")
            )
        })?;
    // Registered once per process, for the life of the process.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| anyhow::anyhow!("the system font could not be read"))
}

/// The metric drawn over time for a kind.
fn headline(kind: &str) -> &'static str {
    match kind {
        "binary" => "auc",
        "forecast" => "wape",
        _ => "accuracy",
    }
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    resp: &pb::GetQualityResponse,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let fail = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow::anyhow!("drawing: {e}");
    root.fill(&WHITE).map_err(fail)?;
    let (left, right) = root.split_horizontally(SIZE.0 / 2);
    let label = |v: &pb::VersionQuality| format!("v{} ({})", v.model_version, v.route);
    // Left: calibration (binary), or judged counts per version otherwise.
    let mut chart = ChartBuilder::on(&left)
        .caption(
            format!("{}: calibration", resp.model_name),
            ("sans-serif", 22),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..1f64, 0f64..1f64)
        .map_err(fail)?;
    chart
        .configure_mesh()
        .x_desc("mean predicted probability")
        .y_desc("observed rate")
        .draw()
        .map_err(fail)?;
    chart
        .draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.3)))
        .map_err(fail)?;
    for (i, v) in resp.versions.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let points: Vec<(f64, f64)> = v
            .calibration
            .iter()
            .map(|b| (b.mean_predicted, b.observed))
            .collect();
        if points.is_empty() {
            continue;
        }
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(fail)?
            .label(label(v))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color));
        chart
            .draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 4, color.filled())),
            )
            .map_err(fail)?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(fail)?;
    // Right: the headline metric per day of prediction.
    let metric = headline(&resp.kind);
    let mut days: Vec<&str> = resp
        .versions
        .iter()
        .flat_map(|v| v.days.iter().map(|d| d.date.as_str()))
        .collect();
    days.sort_unstable();
    days.dedup();
    let values = resp
        .versions
        .iter()
        .flat_map(|v| v.days.iter().filter_map(|d| d.metrics.get(metric).copied()));
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
        (lo.min(x), hi.max(x))
    });
    let (lo, hi) = if lo.is_finite() {
        let pad = ((hi - lo) * 0.1).max(0.01);
        (lo - pad, hi + pad)
    } else {
        (0.0, 1.0)
    };
    let mut chart = ChartBuilder::on(&right)
        .caption(format!("{metric} per day"), ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(-0.5f64..(days.len() as f64 - 0.5), lo..hi)
        .map_err(fail)?;
    let day_labels = days.clone();
    chart
        .configure_mesh()
        .x_desc("day of prediction")
        .y_desc(metric)
        .x_labels(days.len().clamp(1, 8) + 1)
        .x_label_formatter(&|x| {
            // Days sit on whole numbers; other ticks stay blank.
            if (x - x.round()).abs() > 1e-6 || *x < 0.0 {
                return String::new();
            }
            day_labels
                .get(x.round() as usize)
                .map(|d| d.to_string())
                .unwrap_or_default()
        })
        .draw()
        .map_err(fail)?;
    for (i, v) in resp.versions.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let points: Vec<(f64, f64)> = v
            .days
            .iter()
            .filter_map(|d| {
                let x = days.iter().position(|day| *day == d.date)? as f64;
                Some((x, *d.metrics.get(metric)?))
            })
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(fail)?
            .label(label(v))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color));
        chart
            .draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 4, color.filled())),
            )
            .map_err(fail)?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(fail)?;
    Ok(())
}
