//! The latency distribution and the throughput over time, drawn with
//! plotters' SVG backend. The SVG backend writes text as `<text>` elements
//! and, without the `ttf`/`ab_glyph` features, estimates text extents itself:
//! no system font library is needed, and the browser renders the labels.

use crate::facts::{Fault, FaultKind};
use check::{Operation, Outcome};
use plotters::prelude::*;

/// Width of each plot, in px.
const PLOT_W: u32 = 1150;
/// Height of each plot, in px.
const PLOT_H: u32 = 240;
/// Bars in the latency histogram.
const LATENCY_BINS: usize = 40;
/// Most buckets on the throughput plot's time axis.
const THROUGHPUT_BUCKETS: u64 = 200;

/// Latencies of operations that completed ok, in milliseconds, sorted.
pub fn ok_latencies_ms(ops: &[Operation]) -> Vec<f64> {
    let mut v: Vec<f64> = ops
        .iter()
        .filter(|o| matches!(o.outcome, Outcome::Ok(_)))
        .filter_map(|o| o.complete_ns.map(|c| (c - o.invoke_ns) as f64 / 1e6))
        .collect();
    v.sort_by(f64::total_cmp);
    v
}

/// The `q` quantile (0..=1) of sorted values.
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    Some(sorted[i.min(sorted.len() - 1)])
}

/// The histogram of ok latencies as an SVG document. Bins are spaced
/// logarithmically from the fastest to the slowest operation: latencies under
/// faults span orders of magnitude (a round trip, an election, a client
/// timeout), and a linear axis would squeeze the common case into one bar.
pub fn latency_histogram(latencies_ms: &[f64]) -> Result<String, String> {
    let mut svg = String::new();
    let lo = latencies_ms
        .iter()
        .copied()
        .find(|l| *l > 0.0)
        .unwrap_or(0.01)
        .max(0.001);
    let hi = latencies_ms.last().copied().unwrap_or(1.0).max(lo * 10.0);
    let (log_lo, log_hi) = (lo.log10(), hi.log10());
    let step = (log_hi - log_lo) / LATENCY_BINS as f64;
    let edge = |i: usize| 10f64.powf(log_lo + step * i as f64);
    let mut counts = [0u32; LATENCY_BINS];
    for l in latencies_ms {
        let i = ((l.max(lo).log10() - log_lo) / step) as usize;
        counts[i.min(LATENCY_BINS - 1)] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(1).max(1);
    {
        let root = SVGBackend::with_string(&mut svg, (PLOT_W, PLOT_H)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .margin(8)
            .x_label_area_size(32)
            .y_label_area_size(52)
            .build_cartesian_2d((lo..hi).log_scale(), 0u32..top + top / 10 + 1)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc("latency of ok operations (ms, log scale)")
            .y_desc("operations")
            .label_style(("sans-serif", 12))
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(counts.iter().enumerate().map(|(i, c)| {
                let (x0, x1) = (edge(i), edge(i + 1));
                Rectangle::new(
                    [(x0, 0), (x0 + (x1 - x0) * 0.9, *c)],
                    RGBColor(78, 121, 167).filled(),
                )
            }))
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// Completed-ok operations per second over the run, with fault intervals
/// shaded, as an SVG document.
pub fn throughput(ops: &[Operation], faults: &[Fault], end_ns: u64) -> Result<String, String> {
    let end_ns = end_ns.max(1);
    // A bucket of at least 10ms, and at most THROUGHPUT_BUCKETS of them.
    let bucket = (end_ns / THROUGHPUT_BUCKETS).max(10_000_000);
    let n = end_ns.div_ceil(bucket) as usize;
    let mut counts = vec![0u64; n.max(1)];
    for op in ops {
        if let (Outcome::Ok(_), Some(t)) = (&op.outcome, op.complete_ns) {
            let i = ((t / bucket) as usize).min(counts.len() - 1);
            counts[i] += 1;
        }
    }
    let per_s = |c: u64| c as f64 * 1e9 / bucket as f64;
    let top = counts.iter().map(|c| per_s(*c)).fold(1.0, f64::max) * 1.1;
    // The axis covers every bucket, so no point maps outside the plot
    // (plotters' pixel arithmetic overflows far outside it).
    let end_s = (counts.len() as u64 * bucket) as f64 / 1e9;
    let secs = |t: u64| (t.min(end_ns) as f64 / 1e9).min(end_s);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (PLOT_W, PLOT_H)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .margin(8)
            .x_label_area_size(32)
            .y_label_area_size(52)
            .build_cartesian_2d(0f64..end_s, 0f64..top)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc("virtual time (s); shaded: red a node down, orange a partition")
            .y_desc("ok ops/s")
            .label_style(("sans-serif", 12))
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(faults.iter().map(|f| {
                let colour = match f.kind {
                    FaultKind::Down => RGBColor(225, 87, 89).mix(0.15),
                    FaultKind::Partition => RGBColor(242, 142, 43).mix(0.15),
                    FaultKind::Paused => RGBColor(156, 117, 95).mix(0.15),
                };
                Rectangle::new(
                    [(secs(f.start_ns), 0.0), (secs(f.end_ns), top)],
                    colour.filled(),
                )
            }))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(LineSeries::new(
                counts
                    .iter()
                    .enumerate()
                    .map(|(i, c)| ((i as u64 * bucket + bucket / 2) as f64 / 1e9, per_s(*c))),
                RGBColor(78, 121, 167).stroke_width(2),
            ))
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_pick_from_the_sorted_values() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile(&v, 0.0), Some(1.0));
        assert_eq!(quantile(&v, 0.5), Some(3.0));
        assert_eq!(quantile(&v, 1.0), Some(5.0));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn the_histogram_draws_a_bar_per_bin_over_a_wide_range() {
        let latencies: Vec<f64> = (1..=1000).map(|i| i as f64 * 0.5).collect();
        let svg = latency_histogram(&latencies).unwrap();
        assert!(svg.matches("<rect").count() >= LATENCY_BINS, "{svg}");
        let one = latency_histogram(&[3.0]).unwrap();
        assert!(one.starts_with("<svg"));
    }

    #[test]
    fn plots_are_svg_documents_even_without_data() {
        let h = latency_histogram(&[]).unwrap();
        assert!(h.starts_with("<svg") && h.trim_end().ends_with("</svg>"));
        let t = throughput(&[], &[], 0).unwrap();
        assert!(t.starts_with("<svg") && t.trim_end().ends_with("</svg>"));
    }
}
