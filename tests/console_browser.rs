//! The console in a real browser: Debian's Chromium driven through
//! chromedriver (WebDriver, the `fantoccini` client) against `tenet demo`.
//! Every page loads with no JavaScript error; a person follows an alert
//! from the overview to its evidence, acknowledges it and opens the
//! principal behind it; browser back
//! returns to the previous view; each page is saved as a screenshot
//! (`<target>/tmp/console-screenshots/`).
//!
//! Needs `chromium` and `chromedriver` (`.ci/run` installs them). Without
//! them the test says so loudly and passes, unless
//! `TENET_REQUIRE_EXTERNAL=1` (as in CI), where it fails.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use tenet_testkit::{free_port, on_path};

/// A child process killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `tenet demo` on a small enterprise fed fast, serving until dropped; its URL.
fn demo(data: &Path) -> (Running, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_tenet"))
        .args(["demo", "--addr", "127.0.0.1:0", "--data-dir", data.to_str().unwrap()])
        .args(["--days", "3", "--humans", "10", "--agents", "2", "--backfill-hours", "72", "--speed", "100000"])
        .args(["--policies", root.join("examples/policies").to_str().unwrap()])
        .args(["--rules", root.join("../shared/data/sigma").to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tenet demo starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().expect("a first line").unwrap();
    let url = first.split_whitespace().find(|w| w.starts_with("http://")).expect("the demo's URL").to_string();
    // Keep reading: the demo reports progress on stdout as it goes.
    std::thread::spawn(move || for _ in lines.by_ref() {});
    (Running(child), url)
}

async fn browser(port: u16) -> Client {
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": on_path("chromium").map(|p| p.display().to_string()).unwrap_or_default(),
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,800"]
        },
        "goog:loggingPrefs": {"browser": "ALL"}
    });
    let caps: serde_json::Map<String, Value> = caps.as_object().unwrap().clone();
    let start = Instant::now();
    loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => return c,
            Err(e) if start.elapsed() < Duration::from_secs(20) => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("chromedriver did not give a session: {e}"),
        }
    }
}

/// Chromium's console messages since the last call (chromedriver's log endpoint).
async fn console_errors(client: &Client, driver_port: u16) -> Vec<String> {
    let session = client.session_id().await.unwrap().expect("a session");
    let url = format!("http://127.0.0.1:{driver_port}/session/{session}/se/log");
    let got = tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let mut r = agent
            .post(&url)
            .header("content-type", "application/json")
            .send(json!({"type": "browser"}).to_string())
            .unwrap();
        serde_json::from_str::<Value>(&r.body_mut().read_to_string().unwrap()).unwrap()
    })
    .await
    .unwrap();
    got["value"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|e| e["level"] == "SEVERE")
        .map(|e| e["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A fact of the trust graph that was withdrawn while the demo ran.
struct Removed {
    from: String,
    edge: String,
    to: String,
    /// When, in seconds since the epoch.
    at: i64,
}

/// The first principal's fact withdrawn in the demo's history, as `tenet
/// drift` reports it, waiting for the demo to have reached one.
fn removed_edge(data: &Path) -> Removed {
    let start = Instant::now();
    loop {
        let out = Command::new(env!("CARGO_BIN_EXE_tenet"))
            .args(["drift", "--json", "--since", "1970-01-02T00:00:00Z", "--data-dir", data.to_str().unwrap()])
            .output()
            .expect("tenet drift runs");
        let drift: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        let found = drift["changes"].as_array().into_iter().flatten().find(|c| {
            c["change"] == "removed"
                && !["node", "policy"].contains(&c["edge"].as_str().unwrap_or("node"))
                && c["to"] != ""
        });
        if let Some(c) = found {
            let at = chrono::DateTime::parse_from_rfc3339(c["at"].as_str().unwrap()).unwrap().timestamp();
            let s = |k: &str| c[k].as_str().unwrap().to_string();
            return Removed { from: s("from"), edge: s("edge"), to: s("to"), at };
        }
        assert!(start.elapsed() < Duration::from_secs(240), "no fact was withdrawn in the demo's history: {drift}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Text on the page below WCAG AA contrast (4.5:1, 3:1 for large text),
/// each said with its ratio: colours as the browser computed them, against
/// the nearest opaque background (a graph node's text against its box).
async fn low_contrast(client: &Client) -> Vec<String> {
    const AUDIT: &str = r#"
        const parse = s => { const p = (s.match(/rgba?\(([^)]+)\)/) || [0, '0,0,0,0'])[1].split(/[ ,\/]+/).filter(x => x).map(parseFloat);
            return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 }; };
        const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
            return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
        const ratio = (a, b) => { const x = lum(a), y = lum(b); return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); };
        const behind = el => { for (; el; el = el.parentElement) { const c = parse(getComputedStyle(el).backgroundColor); if (c.a > 0.5) return c; }
            return { r: 255, g: 255, b: 255, a: 1 }; };
        const bad = [];
        for (const el of document.querySelectorAll('body *')) {
            if (el.closest('svg')) continue;
            if (![...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
            const st = getComputedStyle(el);
            if (st.display === 'none' || st.visibility === 'hidden') continue;
            const size = parseFloat(st.fontSize), bold = parseInt(st.fontWeight) >= 700;
            const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
            const r = ratio(parse(st.color), behind(el));
            if (r < need) bad.push(el.tagName + ' "' + el.textContent.trim().slice(0, 40) + '" ' + r.toFixed(2));
        }
        for (const t of document.querySelectorAll('svg.graph text')) {
            const box = t.parentElement.querySelector('rect');
            const bg = box ? parse(getComputedStyle(box).fill) : { r: 255, g: 255, b: 255, a: 1 };
            const r = ratio(parse(getComputedStyle(t).fill), bg);
            if (r < 4.5) bad.push('svg text "' + t.textContent.slice(0, 40) + '" ' + r.toFixed(2));
        }
        return bad;"#;
    let found = client.execute(AUDIT, vec![]).await.expect("the contrast audit runs");
    found.as_array().cloned().unwrap_or_default().iter().filter_map(|v| v.as_str().map(str::to_string)).collect()
}

async fn screenshot(client: &Client, name: &str) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let png = client.screenshot().await.expect("a screenshot");
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_follows_an_alert_from_the_overview_to_its_evidence_and_acknowledges_it_in_chromium() {
    let required = tenet_testkit::external_required();
    let Some(driver) = on_path("chromedriver").filter(|_| on_path("chromium").is_some()) else {
        assert!(!required, "TENET_REQUIRE_EXTERNAL=1 but chromium/chromedriver are not installed");
        eprintln!(
            "SKIPPED: the console's browser test needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"
        );
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let (_demo, base) = demo(&data.path().join("data"));
    // The demo feeds its simulated days; wait for an open likely-malicious alert.
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let start = Instant::now();
    let alerting =
        "href=\"/findings?category=likely_malicious&amp;status=open\">likely malicious</a><span class=\"num\">";
    loop {
        let page = agent.get(&format!("{base}/")).call().unwrap().body_mut().read_to_string().unwrap();
        if page.split(alerting).nth(1).is_some_and(|rest| !rest.starts_with('0')) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(240), "the demo raised no likely-malicious alert in 4 minutes");
        std::thread::sleep(Duration::from_millis(500));
    }

    let port = free_port();
    let _driver = Running(
        Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts"),
    );
    let c = browser(port).await;

    // The overview, then the alerts it counts.
    c.goto(&format!("{base}/")).await.unwrap();
    c.wait().for_element(Locator::Css("main h1")).await.unwrap();
    assert_eq!(c.find(Locator::Css("main h1")).await.unwrap().text().await.unwrap(), "Trust posture");
    screenshot(&c, "overview").await;
    assert_eq!(console_errors(&c, port).await, Vec::<String>::new(), "overview: no JavaScript error");
    assert_eq!(low_contrast(&c).await, Vec::<String>::new(), "overview: readable contrast");
    c.find(Locator::Css("a[href='/findings?category=likely_malicious&status=open']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Css("table.findings")).await.unwrap();
    assert!(c.current_url().await.unwrap().as_str().contains("/findings?category=likely_malicious"));
    screenshot(&c, "findings").await;
    assert_eq!(console_errors(&c, port).await, Vec::<String>::new(), "findings: no JavaScript error");
    assert_eq!(low_contrast(&c).await, Vec::<String>::new(), "findings: readable contrast");

    // Browser back returns to the overview, forward to the list.
    c.back().await.unwrap();
    c.wait().for_element(Locator::Css("#by-kind")).await.unwrap();
    assert!(c.current_url().await.unwrap().path() == "/", "back: the overview");
    c.forward().await.unwrap();
    c.wait().for_element(Locator::Css("table.findings")).await.unwrap();

    // The alert's evidence, and the decision.
    c.find(Locator::Css("table.findings td.summary a")).await.unwrap().click().await.unwrap();
    c.wait().for_element(Locator::Id("behaviours")).await.unwrap();
    let text = c.find(Locator::Css("main")).await.unwrap().text().await.unwrap();
    assert!(text.contains("Evidence by behaviour") && text.contains("ATT&CK"), "{text}");
    screenshot(&c, "finding").await;
    assert_eq!(console_errors(&c, port).await, Vec::<String>::new(), "finding: no JavaScript error");
    assert_eq!(low_contrast(&c).await, Vec::<String>::new(), "finding: readable contrast");
    c.find(Locator::Id("reason")).await.unwrap().send_keys("looking into it with the owner").await.unwrap();
    c.find(Locator::Css("button[value='acknowledged']")).await.unwrap().click().await.unwrap();
    let start = Instant::now();
    loop {
        // The form posts and the page is replaced: an element read from the
        // page being left is stale, which is "not yet", not a failure.
        let status = match c.find(Locator::Id("status")).await {
            Ok(e) => e.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if status == "acknowledged" {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "the finding was not acknowledged: {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    screenshot(&c, "finding-acknowledged").await;
    let url = c.current_url().await.unwrap();
    let finding = url.path().rsplit('/').next().unwrap().to_string();

    // The principal behind it, one click away.
    c.find(Locator::Css("dl.facts a.principal")).await.unwrap().click().await.unwrap();
    c.wait().for_element(Locator::Id("risk")).await.unwrap();
    assert!(c.current_url().await.unwrap().path().starts_with("/principals/"));
    screenshot(&c, "principal").await;
    assert_eq!(console_errors(&c, port).await, Vec::<String>::new(), "principal: no JavaScript error");
    assert_eq!(low_contrast(&c).await, Vec::<String>::new(), "principal: readable contrast");

    c.find(Locator::Css("header nav a[href='/signals']")).await.unwrap().click().await.unwrap();
    c.wait().for_element(Locator::Id("streams")).await.unwrap();
    // Announced once, though the demo's analysis, running meanwhile, reads the decision too.
    tokio::time::sleep(Duration::from_secs(2)).await;
    c.refresh().await.unwrap();
    c.wait().for_element(Locator::Id("recent")).await.unwrap();
    let listed = c.find(Locator::Css("main")).await.unwrap().text().await.unwrap();
    let said = format!("finding {finding} became acknowledged");
    assert_eq!(listed.matches(&said).count(), 1, "{listed}");
    assert!(!listed.contains("1970-01-01"), "every change has its time: {listed}");
    screenshot(&c, "signals").await;
    assert_eq!(console_errors(&c, port).await, Vec::<String>::new(), "signals: no JavaScript error");
    assert_eq!(low_contrast(&c).await, Vec::<String>::new(), "signals: readable contrast");

    // The trust graph: a membership the inventory later withdrew is drawn
    // at a moment before, and gone once the time control is moved past it.
    let removed = removed_edge(&data.path().join("data"));
    let before = removed.at - 1;
    let edge = format!("g.edge[data-edge='{}|{}|{}']", removed.from, removed.edge, removed.to);
    c.goto(&format!("{base}/graph?focus={}&at={before}", enc(&removed.from))).await.unwrap();
    c.wait().for_element(Locator::Css("svg.graph")).await.unwrap();
    assert!(c.find(Locator::Css(&edge)).await.is_ok(), "{edge} is drawn as of {before}");
    screenshot(&c, "graph").await;
    assert_eq!(console_errors(&c, port).await, Vec::<String>::new(), "graph: no JavaScript error");
    assert_eq!(low_contrast(&c).await, Vec::<String>::new(), "graph: readable contrast");
    let slider = c.find(Locator::Id("at")).await.unwrap();
    slider.send_keys(&fantoccini::key::Key::End.to_string()).await.unwrap();
    let start = Instant::now();
    while c.current_url().await.unwrap().query().is_some_and(|q| q.contains(&format!("at={before}"))) {
        assert!(start.elapsed() < Duration::from_secs(10), "moving the time control shows another moment");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    c.wait().for_element(Locator::Css("svg.graph")).await.unwrap();
    assert!(c.find(Locator::Css(&edge)).await.is_err(), "{edge} is gone after its removal");
    screenshot(&c, "graph-later").await;
    // Compared with the moment before, it is shown removed.
    c.find(Locator::Id("compare")).await.unwrap().click().await.unwrap();
    c.wait().for_element(Locator::Css("svg.graph .edge.removed")).await.unwrap();
    screenshot(&c, "graph-compared").await;
    assert_eq!(console_errors(&c, port).await, Vec::<String>::new(), "graph compared: no JavaScript error");
    assert_eq!(low_contrast(&c).await, Vec::<String>::new(), "graph compared: readable contrast");
    // Back, twice: the moment after it, then the moment before it, edge and all.
    c.back().await.unwrap();
    c.back().await.unwrap();
    c.wait().for_element(Locator::Css(&edge)).await.unwrap();
    assert!(
        c.current_url().await.unwrap().query().unwrap().contains(&format!("at={before}")),
        "back: the earlier moment"
    );

    // Keyboard: a node of the drawing takes focus like any link.
    let focused: Value = c
        .execute(
            "const a = document.querySelector('svg.graph a.node'); a.focus(); return document.activeElement === a;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(focused, Value::Bool(true), "graph nodes are reachable by keyboard");

    // Decisions: an enforcement point asks; the log lists it; its page
    // evaluates it again.
    let ask = json!({"subject": {"type": "user", "id": "someone@example.com"}, "action": {"name": "read"},
        "resource": {"type": "document", "id": "roadmap"}});
    let asked = agent
        .post(&format!("{base}/access/v1/evaluation"))
        .header("content-type", "application/json")
        .send(ask.to_string())
        .unwrap();
    assert_eq!(asked.status(), 200);
    c.find(Locator::Css("header nav a[href='/decisions']")).await.unwrap().click().await.unwrap();
    c.wait().for_element(Locator::Css("table.decisions")).await.unwrap();
    screenshot(&c, "decisions").await;
    assert_eq!(console_errors(&c, port).await, Vec::<String>::new(), "decisions: no JavaScript error");
    assert_eq!(low_contrast(&c).await, Vec::<String>::new(), "decisions: readable contrast");
    c.find(Locator::Css("table.decisions td a")).await.unwrap().click().await.unwrap();
    c.wait().for_element(Locator::Id("again")).await.unwrap();
    c.find(Locator::Css("section[aria-labelledby='again'] button")).await.unwrap().click().await.unwrap();
    c.wait().for_element(Locator::Id("now")).await.unwrap();
    let now = c.find(Locator::Id("now")).await.unwrap().text().await.unwrap();
    assert!(now.contains("as when it was logged"), "{now}");
    c.execute("document.getElementById('now').scrollIntoView()", vec![]).await.unwrap();
    screenshot(&c, "decision").await;
    assert_eq!(console_errors(&c, port).await, Vec::<String>::new(), "decision: no JavaScript error");
    assert_eq!(low_contrast(&c).await, Vec::<String>::new(), "decision: readable contrast");

    c.find(Locator::Css("header nav a[href='/policies']")).await.unwrap().click().await.unwrap();
    c.wait().for_element(Locator::Id("history")).await.unwrap();
    let text = c.find(Locator::Css("main")).await.unwrap().text().await.unwrap();
    assert!(text.contains("The directory validates"), "{text}");
    screenshot(&c, "policies").await;
    assert_eq!(console_errors(&c, port).await, Vec::<String>::new(), "policies: no JavaScript error");
    assert_eq!(low_contrast(&c).await, Vec::<String>::new(), "policies: readable contrast");

    // A wide screen: the overview and the graph use the room, nothing overflows the page.
    c.set_window_size(1920, 1080).await.unwrap();
    for (path, name) in [("/", "overview-wide"), (&format!("/graph?focus={}", enc(&removed.from))[..], "graph-wide")] {
        c.goto(&format!("{base}{path}")).await.unwrap();
        c.wait().for_element(Locator::Css("main h1")).await.unwrap();
        let overflow: Value =
            c.execute("return document.documentElement.scrollWidth <= window.innerWidth;", vec![]).await.unwrap();
        assert_eq!(overflow, Value::Bool(true), "{name}: no page-wide horizontal scroll");
        screenshot(&c, name).await;
    }
    c.set_window_size(1280, 800).await.unwrap();
    for path in ["/", "/findings", "/decisions", "/policies", "/signals"] {
        c.goto(&format!("{base}{path}")).await.unwrap();
        c.wait().for_element(Locator::Css("main h1")).await.unwrap();
        let overflow: Value =
            c.execute("return document.documentElement.scrollWidth <= window.innerWidth;", vec![]).await.unwrap();
        assert_eq!(overflow, Value::Bool(true), "{path} at 1280×800: no page-wide horizontal scroll");
    }

    c.goto(&format!("{base}/login")).await.unwrap();
    c.wait().for_element(Locator::Css("main h1")).await.unwrap();
    screenshot(&c, "sign-in").await;
    assert_eq!(console_errors(&c, port).await, Vec::<String>::new(), "sign-in: no JavaScript error");
    assert_eq!(low_contrast(&c).await, Vec::<String>::new(), "sign-in: readable contrast");
    c.close().await.unwrap();
}
