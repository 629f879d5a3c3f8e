//! A trust graph drawn as SVG: laid out by `layout-rs` (a Sugiyama-style
//! layered layout), written here so each node is a link and each edge
//! carries its reason and whether it was added or removed.

use std::collections::HashMap;
use std::fmt::Write;

use layout::core::base::Orientation;
use layout::core::color::Color;
use layout::core::format::{ClipHandle, RenderBackend};
use layout::core::geometry::Point;
use layout::core::style::{LineStyleKind, StyleAttr};
use layout::std_shapes::shapes::{Arrow, Element, LineEndKind, ShapeKind};
use layout::topo::layout::VisualGraph;

/// A node to draw.
pub struct Node {
    pub label: String,
    /// A CSS class: the node's kind (`human`, `role`, `policy`, `group-of`).
    pub class: &'static str,
    pub href: String,
    /// Shown on hover: the canonical reference or what a group holds.
    pub title: String,
}

/// An edge to draw, between node indices.
pub struct Edge {
    pub from: usize,
    pub to: usize,
    /// The short word on the edge (`assumption`, `grant`).
    pub word: String,
    /// Why it holds, shown on hover.
    pub reason: String,
    /// `held`, `added` or `removed`, and `conditional` when conditions apply.
    pub class: String,
    /// A stable key for the edge (tests and links find it by this).
    pub key: String,
}

const FONT: usize = 13;

/// The SVG of the graph, or why it could not be laid out.
pub fn draw(nodes: &[Node], edges: &[Edge]) -> Result<String, String> {
    if nodes.is_empty() {
        return Ok(String::new());
    }
    // The layout crate asserts on shapes it cannot place; a drawing is
    // never worth a failed page, so a panic there is said, not raised.
    let laid = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| lay_out(nodes, edges)))
        .map_err(|_| "the drawing could not be laid out; the table below lists every edge".to_string())?;
    Ok(write_svg(nodes, edges, &laid))
}

struct Laid {
    /// Node index → top-left corner and size.
    boxes: HashMap<usize, (Point, Point)>,
    /// Edge index → its path (first point, exit control; then entry control, point).
    paths: HashMap<usize, Vec<(Point, Point)>>,
    min: Point,
    max: Point,
}

fn lay_out(nodes: &[Node], edges: &[Edge]) -> Laid {
    let mut vg = VisualGraph::new(Orientation::LeftToRight);
    let look = StyleAttr::new(Color::fast("black"), 1, None, 4, FONT);
    let handles: Vec<_> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let shape = ShapeKind::new_box(&n.label);
            // The crate sizes only its connectors; boxes keep the size given.
            let size = Point::new(n.label.chars().count() as f64 * 7.6 + 18., 26.);
            vg.add_node(Element::create_with_properties(
                shape,
                look.clone(),
                Orientation::TopToBottom,
                size,
                format!("n{i}"),
            ))
        })
        .collect();
    for (i, e) in edges.iter().enumerate() {
        if e.from == e.to || e.from >= nodes.len() || e.to >= nodes.len() {
            continue;
        }
        let arrow = Arrow::with_properties(
            LineEndKind::None,
            LineEndKind::Arrow,
            LineStyleKind::Normal,
            "",
            &look,
            format!("e{i}"),
            &None,
            &None,
        );
        vg.add_edge(arrow, handles[e.from], handles[e.to]);
    }
    let mut canvas = Canvas::default();
    vg.do_it(false, false, false, &mut canvas);
    let mut laid = Laid {
        boxes: canvas.boxes,
        paths: canvas.paths,
        min: Point::new(f64::MAX, f64::MAX),
        max: Point::new(f64::MIN, f64::MIN),
    };
    let mut grow = |p: Point| {
        laid.min = Point::new(laid.min.x.min(p.x), laid.min.y.min(p.y));
        laid.max = Point::new(laid.max.x.max(p.x), laid.max.y.max(p.y));
    };
    for (xy, size) in laid.boxes.values() {
        grow(*xy);
        grow(xy.add(*size));
    }
    for path in laid.paths.values() {
        for (a, b) in path {
            grow(*a);
            grow(*b);
        }
    }
    laid
}

/// Records where the layout put things; the SVG is written afterwards.
#[derive(Default)]
struct Canvas {
    boxes: HashMap<usize, (Point, Point)>,
    paths: HashMap<usize, Vec<(Point, Point)>>,
}

fn index(properties: &Option<String>, prefix: char) -> Option<usize> {
    properties.as_deref()?.strip_prefix(prefix)?.parse().ok()
}

impl RenderBackend for Canvas {
    fn draw_rect(&mut self, xy: Point, size: Point, _: &StyleAttr, properties: Option<String>, _: Option<ClipHandle>) {
        if let Some(i) = index(&properties, 'n') {
            self.boxes.insert(i, (xy, size));
        }
    }

    fn draw_line(&mut self, _: Point, _: Point, _: &StyleAttr, _: Option<String>) {}

    fn draw_circle(&mut self, _: Point, _: Point, _: &StyleAttr, _: Option<String>) {}

    fn draw_text(&mut self, _: Point, _: &str, _: &StyleAttr) {}

    fn draw_arrow(
        &mut self,
        path: &[(Point, Point)],
        _: bool,
        _: (bool, bool),
        _: &StyleAttr,
        properties: Option<String>,
        _: &str,
    ) {
        if let Some(i) = index(&properties, 'e')
            && path.len() >= 2
        {
            self.paths.insert(i, path.to_vec());
        }
    }

    fn create_clip(&mut self, _: Point, _: Point, _: usize) -> ClipHandle {
        0
    }
}

fn esc(s: &str) -> String {
    maud::html! { (s) }.into_string()
}

fn write_svg(nodes: &[Node], edges: &[Edge], laid: &Laid) -> String {
    const PAD: f64 = 12.;
    let (x0, y0) = (laid.min.x - PAD, laid.min.y - PAD);
    let (w, h) = ((laid.max.x - laid.min.x + 2. * PAD).max(1.), (laid.max.y - laid.min.y + 2. * PAD).max(1.));
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="graph" xmlns="http://www.w3.org/2000/svg" viewBox="{x0:.0} {y0:.0} {w:.0} {h:.0}" width="{w:.0}" height="{h:.0}" role="img" aria-label="Trust graph: {} nodes, {} edges">"#,
        nodes.len(),
        edges.len()
    );
    s.push_str(
        r#"<defs><marker id="head" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="context-stroke"/></marker></defs>"#,
    );
    for (i, e) in edges.iter().enumerate() {
        let Some(path) = laid.paths.get(&i) else { continue };
        let mut d = format!(
            "M{:.1} {:.1} C{:.1} {:.1},{:.1} {:.1},{:.1} {:.1}",
            path[0].0.x, path[0].0.y, path[0].1.x, path[0].1.y, path[1].0.x, path[1].0.y, path[1].1.x, path[1].1.y
        );
        for p in &path[2..] {
            let _ = write!(d, " S{:.1} {:.1},{:.1} {:.1}", p.0.x, p.0.y, p.1.x, p.1.y);
        }
        // The word sits halfway between the ends, not on an arrowhead.
        let (start, end) = (path[0].0, path[path.len() - 1].1);
        let mid = Point::new((start.x + end.x) / 2., (start.y + end.y) / 2.);
        let _ = write!(
            s,
            r#"<g class="edge {}" data-edge="{}"><title>{}</title><path d="{d}" marker-end="url(#head)"/><text x="{:.1}" y="{:.1}">{}</text></g>"#,
            esc(&e.class),
            esc(&e.key),
            esc(&e.reason),
            mid.x,
            mid.y - 4.,
            esc(&e.word)
        );
    }
    for (i, n) in nodes.iter().enumerate() {
        let Some((xy, size)) = laid.boxes.get(&i) else { continue };
        let _ = write!(
            s,
            r#"<a class="node {}" href="{}"><title>{}</title><rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="4"/><text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text></a>"#,
            n.class,
            esc(&n.href),
            esc(&n.title),
            xy.x,
            xy.y,
            size.x,
            size.y,
            xy.x + size.x / 2.,
            xy.y + size.y / 2. + 4.,
            esc(&n.label)
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(label: &str) -> Node {
        Node { label: label.into(), class: "human", href: format!("/graph?focus={label}"), title: label.into() }
    }

    #[test]
    fn every_node_is_a_link_and_every_edge_carries_its_reason() {
        let nodes = vec![node("alice"), node("ops <role>"), node("s3: 3 grants")];
        let edge = |from, to, key: &str| Edge {
            from,
            to,
            word: "assumption".into(),
            reason: format!("reason of {key}"),
            class: "held".into(),
            key: key.into(),
        };
        let svg = draw(&nodes, &[edge(0, 1, "a"), edge(1, 2, "b")]).unwrap();
        assert_eq!(svg.matches("<a class=\"node").count(), 3);
        assert!(svg.contains("data-edge=\"a\"") && svg.contains("data-edge=\"b\""));
        assert!(svg.contains("<title>reason of b</title>"));
        // Labels are escaped, never markup.
        assert!(svg.contains("ops &lt;role&gt;") && !svg.contains("<role>"));
    }

    /// Boxes are sized here: where zero-sized boxes meet, the crate fails
    /// ("Can't normalize the unit vector", layout-rs 0.1.3).
    #[test]
    fn stars_cycles_and_parallel_edges_are_laid_out() {
        let e = |from, to| Edge {
            from,
            to,
            word: "w".into(),
            reason: "r".into(),
            class: "held".into(),
            key: format!("{from}-{to}"),
        };
        let nodes: Vec<Node> = (0..12).map(|i| node(&format!("node number {i}"))).collect();
        let shapes: Vec<Vec<Edge>> = vec![
            (1..12).map(|i| e(0, i)).collect(),
            vec![e(0, 1), e(1, 0)],
            vec![e(0, 1), e(0, 1)],
            vec![e(0, 1), e(1, 2), e(2, 0)],
            vec![e(0, 1), e(1, 2), e(0, 2), e(2, 3), e(3, 4), e(0, 4), e(4, 4)],
        ];
        for edges in shapes {
            let svg = draw(&nodes, &edges).expect("laid out");
            assert_eq!(svg.matches("<a class=\"node").count(), 12);
        }
    }

    #[test]
    fn nothing_to_draw_is_an_empty_drawing() {
        assert_eq!(draw(&[], &[]).unwrap(), "");
    }
}
