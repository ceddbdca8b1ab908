//! Draws `scripts/bench`'s growth plots: reads the `growth` section of
//! target/bench/results.json (written by bench/report.py, which decides what each plot
//! holds) and writes one SVG per plot, every series a measure against the data size.
//!
//! ```sh
//! pole-plots --results target/bench/results.json --out target/bench/plots
//! ```
//!
//! The data sizes span orders of magnitude (10,000 to 10,000,000 changes), so the x axis is
//! logarithmic; so is the y axis where report.py asks for it (rates that differ by orders
//! between systems).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Results {
    growth: Growth,
}

#[derive(Debug, Deserialize)]
struct Growth {
    plots: Vec<Plot>,
}

#[derive(Debug, Deserialize)]
struct Plot {
    /// The file name, without `.svg`.
    id: String,
    title: String,
    y_label: String,
    #[serde(default)]
    log_y: bool,
    series: Vec<Series>,
}

#[derive(Debug, Deserialize)]
struct Series {
    label: String,
    /// (data size in changes, value); missing measurements are left out by report.py.
    points: Vec<(f64, f64)>,
    /// A dashed-looking style for a second statistic of the same measure (p99 beside p50).
    #[serde(default)]
    secondary: bool,
}

const WIDTH: u32 = 1120;
const HEIGHT: u32 = 600;
/// The legend's column, right of the chart: a legend inside would hide points, and a plot
/// holds up to a dozen series.
const LEGEND_WIDTH: u32 = 300;
/// Distinct on white and for the common colour-vision deficiencies (Tableau 10, then darker
/// variants); a plot with more series than this reuses colours with other markers.
const COLOURS: [RGBColor; 14] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(0, 63, 92),
    RGBColor(122, 81, 149),
    RGBColor(188, 80, 144),
    RGBColor(0, 0, 0),
];

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).map(PathBuf::from);
    let results = flag("--results").unwrap_or_else(|| PathBuf::from("target/bench/results.json"));
    let out = flag("--out").unwrap_or_else(|| PathBuf::from("target/bench/plots"));
    let text = std::fs::read_to_string(&results).with_context(|| format!("reading {}", results.display()))?;
    let doc: Results = serde_json::from_str(&text).with_context(|| format!("parsing {}", results.display()))?;
    std::fs::create_dir_all(&out)?;
    let mut written = 0;
    for plot in &doc.growth.plots {
        if plot.series.iter().all(|s| s.points.is_empty()) {
            eprintln!("plot {}: no measurements, not drawn", plot.id);
            continue;
        }
        let path = out.join(format!("{}.svg", plot.id));
        draw(plot, &path).with_context(|| format!("drawing {}", path.display()))?;
        println!("{}", path.display());
        written += 1;
    }
    if written == 0 {
        bail!("no plot had a measurement: is {} from a finished run?", results.display());
    }
    Ok(())
}

/// The range a log axis needs to show `values` with a margin; a single value (one data
/// size, as in `--quick`) gets a decade around it so that it still reads as a point.
fn log_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.filter(|v| *v > 0.0).fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo > hi {
        return (1.0, 10.0);
    }
    if hi / lo < 3.0 {
        let mid = (lo * hi).sqrt();
        return (mid / 4.0, mid * 4.0);
    }
    (lo / 1.6, hi * 1.6)
}

fn draw(plot: &Plot, path: &Path) -> anyhow::Result<()> {
    let xs = log_range(plot.series.iter().flat_map(|s| s.points.iter().map(|p| p.0)));
    let ys = plot.series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    let root = SVGBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(WIDTH - LEGEND_WIDTH);
    if plot.log_y {
        let y = log_range(ys);
        chart(plot, &left, (xs.0..xs.1).log_scale(), (y.0..y.1).log_scale())?;
    } else {
        let top = ys.fold(0.0_f64, f64::max);
        chart(plot, &left, (xs.0..xs.1).log_scale(), 0.0..(top * 1.15).max(1e-9))?;
    }
    legend(plot, &right)?;
    root.present()?;
    Ok(())
}

/// A series' colour: a p99 takes its p50's (report.py puts the pair next to each other), so
/// the pair reads as one measure and the marker tells them apart.
fn colour(plot: &Plot, idx: usize) -> RGBColor {
    let primary = if plot.series[idx].secondary && idx > 0 { idx - 1 } else { idx };
    COLOURS[primary % COLOURS.len()]
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

fn legend(plot: &Plot, area: &Area<'_>) -> anyhow::Result<()> {
    let font = ("sans-serif", 13).into_font();
    let mut y = 60;
    for (idx, series) in plot.series.iter().enumerate() {
        let c = colour(plot, idx);
        let width = if series.secondary { 1 } else { 2 };
        area.draw(&PathElement::new(vec![(8, y), (36, y)], c.stroke_width(width)))?;
        if series.secondary {
            area.draw(&TriangleMarker::new((22, y), 5, c.filled()))?;
        } else {
            area.draw(&Circle::new((22, y), 4, c.filled()))?;
        }
        let label =
            if series.points.is_empty() { format!("{} (not measured)", series.label) } else { series.label.clone() };
        area.draw(&Text::new(label, (44, y - 7), font.clone()))?;
        y += 22;
    }
    Ok(())
}

fn chart<X, Y>(plot: &Plot, root: &Area<'_>, x: X, y: Y) -> anyhow::Result<()>
where
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(root)
        .caption(&plot.title, ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(80)
        .build_cartesian_2d(x, y)?;
    chart
        .configure_mesh()
        // A log axis's minor lines crowd into a grey band at the top of each decade.
        .x_max_light_lines(0)
        .y_max_light_lines(0)
        .x_desc("data size (changes)")
        .y_desc(&plot.y_label)
        .x_label_formatter(&|v| human(*v))
        .y_label_formatter(&|v| human(*v))
        .draw()?;
    for (idx, series) in plot.series.iter().enumerate() {
        if series.points.is_empty() {
            continue;
        }
        let c = colour(plot, idx);
        let mut points = series.points.clone();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        let width = if series.secondary { 1 } else { 2 };
        chart.draw_series(LineSeries::new(points.iter().copied(), c.stroke_width(width)))?;
        if series.secondary {
            chart.draw_series(points.iter().map(|&p| TriangleMarker::new(p, 5, c.filled())))?;
        } else {
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, c.filled())))?;
        }
    }
    Ok(())
}

/// Axis labels as people write them: 10k, 1M, 2.5, 0.04.
fn human(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{}M", trim(v / 1e6))
    } else if a >= 1e3 {
        format!("{}k", trim(v / 1e3))
    } else {
        trim(v)
    }
}

fn trim(v: f64) -> String {
    let text = if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    };
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_labels() {
        assert_eq!(human(10_000.0), "10k");
        assert_eq!(human(1_000_000.0), "1M");
        assert_eq!(human(2_500_000.0), "2.5M");
        assert_eq!(human(0.25), "0.25");
        assert_eq!(human(150.0), "150");
    }

    #[test]
    fn one_size_gets_a_range_around_it() {
        let (lo, hi) = log_range([10_000.0].into_iter());
        assert!(lo < 10_000.0 && hi > 10_000.0);
    }
}
