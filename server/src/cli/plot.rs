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

/// Something drawn: the same drawing on any backend.
trait Figure {
    /// The page's title (HTML).
    fn title(&self) -> String;
    /// Draws on `root`.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> anyhow::Result<()>
    where
        DB::ErrorType: 'static;
}

/// Live quality: the calibration curve and the headline metric per day.
struct Quality<'a>(&'a pb::GetQualityResponse);

impl Figure for Quality<'_> {
    fn title(&self) -> String {
        format!("{} quality", self.0.model_name)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> anyhow::Result<()>
    where
        DB::ErrorType: 'static,
    {
        draw(root, self.0)
    }
}

/// Draws a model's live quality to `path`, by its extension.
pub(super) fn quality(resp: &pb::GetQualityResponse, path: &Path) -> anyhow::Result<()> {
    write(&Quality(resp), path)
}

/// Draws a model's experiments to `path`, by its extension.
pub(super) fn experiments(resp: &pb::GetExperimentsResponse, path: &Path) -> anyhow::Result<()> {
    write(&Experiments(resp), path)
}

/// Writes `figure` to `path`: `.png`, `.svg` or `.html`.
fn write(figure: &impl Figure, path: &Path) -> anyhow::Result<()> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    if !matches!(ext.as_str(), "png" | "svg" | "html") {
        anyhow::bail!("--plot {}: write .png, .svg or .html", path.display());
    }
    register_font()?;
    if ext == "png" {
        let mut buffer = vec![0u8; (SIZE.0 * SIZE.1 * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut buffer, SIZE).into_drawing_area();
            figure.draw(&root)?;
            root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        let file =
            std::fs::File::create(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), SIZE.0, SIZE.1);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&buffer)?;
        return Ok(());
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        figure.draw(&root)?;
        root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let text = if ext == "html" {
        format!(
            "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head>\n<body>\n{svg}\n</body></html>\n",
            figure.title()
        )
    } else {
        svg
    };
    std::fs::write(path, text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// A model's experiments: each one's uplift with its 95% interval, beside zero.
struct Experiments<'a>(&'a pb::GetExperimentsResponse);

impl Figure for Experiments<'_> {
    fn title(&self) -> String {
        format!("{} experiments", self.0.model_name)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> anyhow::Result<()>
    where
        DB::ErrorType: 'static,
    {
        let fail = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow::anyhow!("drawing: {e}");
        root.fill(&WHITE).map_err(fail)?;
        let shown: Vec<(&pb::ExperimentReport, f64, f64, f64)> = self
            .0
            .experiments
            .iter()
            .filter_map(|e| Some((e, e.uplift?, e.lower?, e.upper?)))
            .collect();
        let reach = shown
            .iter()
            .flat_map(|(_, u, l, h)| [u.abs(), l.abs(), h.abs()])
            .fold(0.05f64, f64::max)
            * 1.1;
        let n = shown.len().max(1);
        let names: Vec<String> = shown
            .iter()
            .map(|(e, ..)| format!("{} ({})", e.action, e.rule))
            .collect();
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!(
                    "{}: outcome rate, treated minus control (95% interval)",
                    self.0.model_name
                ),
                ("sans-serif", 22),
            )
            .margin(20)
            .x_label_area_size(40)
            .y_label_area_size(260)
            .build_cartesian_2d(-reach..reach, -0.5f64..(n as f64 - 0.5))
            .map_err(fail)?;
        chart
            .configure_mesh()
            .x_desc("uplift (negative: the action kept customers)")
            .y_labels(n + 1)
            .y_label_formatter(&|y| {
                if (y - y.round()).abs() > 1e-6 || *y < 0.0 {
                    return String::new();
                }
                names.get(y.round() as usize).cloned().unwrap_or_default()
            })
            .draw()
            .map_err(fail)?;
        chart
            .draw_series(LineSeries::new(
                [(0.0, -0.5), (0.0, n as f64 - 0.5)],
                BLACK.mix(0.4),
            ))
            .map_err(fail)?;
        for (i, (_, uplift, lower, upper)) in shown.iter().enumerate() {
            let y = i as f64;
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(
                    [(*lower, y), (*upper, y)],
                    color.stroke_width(3),
                ))
                .map_err(fail)?;
            chart
                .draw_series([Circle::new((*uplift, y), 6, color.filled())])
                .map_err(fail)?;
        }
        Ok(())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn experiments_are_drawn_with_their_intervals() {
        let report = |rule: &str, action: &str, u: f64, half: f64| pb::ExperimentReport {
            rule: rule.into(),
            action: action.into(),
            uplift: Some(u),
            lower: Some(u - half),
            upper: Some(u + half),
            ..Default::default()
        };
        let resp = pb::GetExperimentsResponse {
            model_name: "churn".into(),
            window: "90d".into(),
            experiments: vec![
                report("late_deliveries", "apology_voucher", -0.12, 0.05),
                report("medium_risk", "loyalty_reminder", 0.01, 0.04),
                // Not yet judged in both groups: not drawn.
                pb::ExperimentReport {
                    rule: "unhappy".into(),
                    ..Default::default()
                },
            ],
        };
        let path = std::env::temp_dir().join("mercator-experiments-figure.png");
        experiments(&resp, &path).expect("drawn");
        let drawn = std::fs::read(&path).expect("png");
        assert!(drawn.starts_with(b"\x89PNG") && drawn.len() > 10_000);
    }
}
