//! Charts, drawn as SVG on the server (plotters' SVG backend): no script,
//! no fonts shipped, readable without JavaScript.

use plotters::prelude::*;

/// Colours of the series, in order: distinguishable, and dark enough on
/// white for the lines to meet WCAG's 3:1 for graphics.
pub const PALETTE: [(u8, u8, u8); 5] = [(0, 94, 184), (196, 60, 0), (0, 122, 61), (120, 64, 170), (176, 0, 80)];

pub fn colour(i: usize) -> String {
    let (r, g, b) = PALETTE[i % PALETTE.len()];
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// How a series joins its points.
#[derive(Clone, Copy, PartialEq)]
pub enum Join {
    /// A straight line: counts per period.
    Line,
    /// Level until the next point: a value that holds until it changes (risk).
    Steps,
}

/// One line per series over `days` (labels of the x axis), as SVG text.
pub fn lines(
    days: &[String],
    series: &[(String, Vec<u32>)],
    join: Join,
    width: u32,
    height: u32,
) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let top = series.iter().flat_map(|(_, v)| v.iter().copied()).max().unwrap_or(0).max(1);
        let n = days.len().max(1);
        let mut chart = ChartBuilder::on(&root)
            .margin(8)
            .margin_right(48)
            .x_label_area_size(28)
            .y_label_area_size(36)
            .build_cartesian_2d(0..(n as i32 - 1).max(1), 0..(top as i32 + top.div_ceil(10) as i32))
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(WHITE)
            .x_labels(days.len().min(8))
            .x_label_formatter(&|i| days.get(*i as usize).cloned().unwrap_or_default())
            .y_labels(5)
            .label_style(("sans-serif", 12).into_font().color(&RGBColor(60, 60, 60)))
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, (_, values)) in series.iter().enumerate() {
            let (r, g, b) = PALETTE[i % PALETTE.len()];
            let mut points: Vec<(i32, i32)> = Vec::with_capacity(values.len() * 2);
            for (x, y) in values.iter().enumerate() {
                if join == Join::Steps
                    && let Some(&(_, before)) = points.last()
                {
                    points.push((x as i32, before));
                }
                points.push((x as i32, *y as i32));
            }
            chart.draw_series(LineSeries::new(points, RGBColor(r, g, b).stroke_width(2))).map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_is_an_svg_with_one_line_per_series() {
        let days: Vec<String> = (1..=5).map(|d| format!("10-0{d}")).collect();
        let svg =
            lines(&days, &[("a".into(), vec![1, 3, 2, 0, 4]), ("b".into(), vec![0, 0, 1, 1, 0])], Join::Line, 600, 200)
                .unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..60.min(svg.len())]);
        for i in 0..2 {
            let stroke = format!("stroke=\"{}\"", colour(i).to_uppercase());
            assert_eq!(svg.matches(&stroke).count(), 1, "one line in series colour {i}: {svg}");
        }
        assert!(svg.contains("10-01"), "the days label the x axis");
    }

    #[test]
    fn a_stepped_series_holds_its_level_until_the_next_point() {
        let days: Vec<String> = (1..=3).map(|d| format!("d{d}")).collect();
        let line = lines(&days, &[("risk".into(), vec![0, 80, 20])], Join::Line, 300, 100).unwrap();
        let steps = lines(&days, &[("risk".into(), vec![0, 80, 20])], Join::Steps, 300, 100).unwrap();
        // The series' own polyline: the one in its colour.
        let vertices = |svg: &str| {
            let stroke = format!("stroke=\"{}\"", colour(0).to_uppercase());
            let line = svg.lines().find(|l| l.starts_with("<polyline") && l.contains(&stroke)).unwrap().to_string();
            line.split("points=\"").nth(1).unwrap().split('"').next().unwrap().split_whitespace().count()
        };
        assert_eq!((vertices(&line), vertices(&steps)), (3, 5), "each change drawn as a step");
    }
}
