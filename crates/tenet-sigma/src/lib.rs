//! Sigma rules against Tenet's events.
//!
//! Rules are written against each source's own field names (CloudTrail's
//! `eventName`, Okta's `eventType`, the Kubernetes audit `objectRef`), so
//! they are matched against an event's raw record, not the normalised
//! event: this is the edge, where raw JSON is allowed. A rule applies to
//! the events whose format maps to its `logsource`; rules for products
//! Tenet does not read (Azure, GCP, M365 …) are counted and left out.
//! The matching engine is `rsigma-eval`.

mod anchor;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rsigma_eval::Engine;
use rsigma_eval::event::JsonEvent;
use rsigma_parser::{LogSource, SigmaRule, parse_sigma_yaml};
use tenet_learn::SigmaMatch;
use tenet_model::{Event, RuleMatch};

#[derive(Debug, thiserror::Error)]
pub enum SigmaError {
    #[error("reading rules directory {path}: {source}")]
    Read { path: String, source: std::io::Error },
}

/// The logsource a Tenet format's records are, as Sigma names it.
fn logsource_of(format: &str) -> Option<(&'static str, &'static str)> {
    match format {
        "cloudtrail" => Some(("aws", "cloudtrail")),
        "okta" => Some(("okta", "okta")),
        "k8s-audit" => Some(("kubernetes", "audit")),
        _ => None,
    }
}

fn applies(rule: &SigmaRule) -> Option<(&'static str, &'static str)> {
    let product = rule.logsource.product.as_deref()?;
    let service = rule.logsource.service.as_deref();
    ["cloudtrail", "okta", "k8s-audit"]
        .into_iter()
        .filter_map(logsource_of)
        .find(|(p, s)| *p == product && service.is_none_or(|x| x == *s))
}

/// What loading a rules directory did.
#[derive(Debug, Default, Clone)]
pub struct LoadReport {
    pub files: usize,
    /// Rules loaded, by the logsource they apply to (`aws/cloudtrail` …).
    pub loaded: BTreeMap<String, usize>,
    /// Rules for logsources Tenet does not read.
    pub not_applicable: usize,
    /// Files or rules that could not be used, and why.
    pub rejected: Vec<(String, String)>,
}

impl LoadReport {
    pub fn total(&self) -> usize {
        self.loaded.values().sum()
    }
}

struct RuleInfo {
    title: String,
    id: String,
    level: String,
    file: String,
    techniques: Vec<String>,
    behaviours: Vec<tenet_model::Behaviour>,
}

/// A loaded rule set, ready to match events.
pub struct RuleSet {
    engine: Engine,
    /// By rule id (or title when a rule has no id).
    rules: BTreeMap<String, RuleInfo>,
    /// Formats some rule applies to: other events are not even parsed.
    formats: Vec<&'static str>,
    /// Per format: the anchors of its rules, or `None` once any rule for
    /// it has none (then every record of the format is evaluated).
    anchors: BTreeMap<&'static str, Option<Vec<anchor::Anchor>>>,
    /// Built on first use from `anchors`.
    prefilter: OnceLock<BTreeMap<&'static str, Option<Prefilter>>>,
    prefilter_off: bool,
    /// Rules that have no anchors, as (format, title).
    unanchored: Vec<(&'static str, String)>,
    /// Rules anchored on text, which make every record of their format be
    /// scanned: (format, title, texts).
    scanned: Vec<(&'static str, String, Vec<String>)>,
    /// Records looked at, and those the prefilter let through to be parsed.
    checked: std::sync::atomic::AtomicU64,
    parsed: std::sync::atomic::AtomicU64,
}

/// A format's anchors, ready to check: operations by set lookup, texts by
/// searching a lowercased copy of the raw record for each (lowercased)
/// text. Sigma compares case-insensitively; lowercasing once and searching
/// case-sensitively lets each search use SIMD, several times faster than a
/// case-insensitive automaton stepping byte by byte.
struct Prefilter {
    operations: std::collections::HashSet<String>,
    texts: Vec<memchr::memmem::Finder<'static>>,
}

impl Prefilter {
    fn new(anchors: &[anchor::Anchor]) -> Self {
        let mut operations = std::collections::HashSet::new();
        let mut texts = Vec::new();
        for a in anchors {
            match a {
                anchor::Anchor::Operation(o) => {
                    operations.insert(o.clone());
                }
                anchor::Anchor::Text(t) => {
                    let t = t.to_ascii_lowercase();
                    if !texts.iter().any(|f: &memchr::memmem::Finder<'static>| f.needle() == t.as_bytes()) {
                        texts.push(memchr::memmem::Finder::new(t.as_bytes()).into_owned());
                    }
                }
            }
        }
        Prefilter { operations, texts }
    }

    fn may_match(&self, e: &Event) -> bool {
        thread_local! {
            static LOWER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        if !self.operations.is_empty() && self.operations.contains(&e.action.operation.to_ascii_lowercase()) {
            return true;
        }
        !self.texts.is_empty()
            && LOWER.with_borrow_mut(|lower| {
                lower.clear();
                lower.extend_from_slice(e.raw.as_bytes());
                lower.make_ascii_lowercase();
                self.texts.iter().any(|f| f.find(lower).is_some())
            })
    }
}

/// ATT&CK technique ids from Sigma tags (`attack.t1078.004` → `T1078.004`).
fn techniques(tags: &[String]) -> Vec<String> {
    tags.iter()
        .filter_map(|t| t.strip_prefix("attack.t"))
        .filter(|t| t.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .map(|t| format!("T{}", t.to_ascii_uppercase()))
        .collect()
}

/// ATT&CK tactics from Sigma tags (`attack.defense-evasion`), as behaviours.
fn behaviours(tags: &[String]) -> Vec<tenet_model::Behaviour> {
    tags.iter().filter_map(|t| t.strip_prefix("attack.")).filter_map(tenet_model::Behaviour::from_tactic_name).collect()
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), SigmaError> {
    let read = std::fs::read_dir(dir).map_err(|e| SigmaError::Read { path: dir.display().to_string(), source: e })?;
    let mut entries: Vec<PathBuf> = read.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect_files(&p, out)?;
        } else if p.extension().is_some_and(|x| x == "yml" || x == "yaml") {
            out.push(p);
        }
    }
    Ok(())
}

impl RuleSet {
    pub fn empty() -> Self {
        RuleSet {
            engine: Engine::new(),
            rules: BTreeMap::new(),
            formats: Vec::new(),
            anchors: BTreeMap::new(),
            prefilter: OnceLock::new(),
            prefilter_off: false,
            unanchored: Vec::new(),
            scanned: Vec::new(),
            checked: Default::default(),
            parsed: Default::default(),
        }
    }

    /// Loads every `.yml`/`.yaml` under `dir` (recursively). A file that does
    /// not parse, or a rule the engine cannot compile, is reported with the
    /// reason and skipped; the rest load.
    pub fn load_dir(dir: &Path) -> Result<(RuleSet, LoadReport), SigmaError> {
        let mut files = Vec::new();
        collect_files(dir, &mut files)?;
        let mut set = RuleSet::empty();
        let mut report = LoadReport::default();
        for path in files {
            report.files += 1;
            let rel = path.strip_prefix(dir).unwrap_or(&path).display().to_string();
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) => {
                    report.rejected.push((rel, e.to_string()));
                    continue;
                }
            };
            set.add_yaml(&text, &rel, &mut report);
        }
        Ok((set, report))
    }

    /// Adds the rules of one YAML document set, named `file` in reports.
    pub fn add_yaml(&mut self, text: &str, file: &str, report: &mut LoadReport) {
        let collection = match parse_sigma_yaml(text) {
            Ok(c) => c,
            Err(e) => {
                report.rejected.push((file.to_string(), e.to_string()));
                return;
            }
        };
        for err in &collection.errors {
            report.rejected.push((file.to_string(), err.clone()));
        }
        for rule in &collection.rules {
            let Some((product, service)) = applies(rule) else {
                report.not_applicable += 1;
                continue;
            };
            if let Err(e) = self.engine.add_rule(rule) {
                report.rejected.push((file.to_string(), format!("{}: {e}", rule.title)));
                continue;
            }
            let key = rule.id.clone().unwrap_or_else(|| rule.title.clone());
            self.rules.insert(
                key.clone(),
                RuleInfo {
                    title: rule.title.clone(),
                    id: key,
                    level: rule.level.map_or("informational".to_string(), |l| format!("{l:?}").to_ascii_lowercase()),
                    file: file.to_string(),
                    techniques: techniques(&rule.tags),
                    behaviours: behaviours(&rule.tags),
                },
            );
            *report.loaded.entry(format!("{product}/{service}")).or_default() += 1;
            let format = match product {
                "aws" => "cloudtrail",
                "okta" => "okta",
                _ => "k8s-audit",
            };
            if !self.formats.contains(&format) {
                self.formats.push(format);
            }
            let slot = self.anchors.entry(format).or_insert_with(|| Some(Vec::new()));
            let operation = match format {
                "cloudtrail" => Some("eventName"),
                "okta" => Some("eventType"),
                _ => None,
            };
            match anchor::anchors(rule, operation) {
                Some(mine) => {
                    let texts: Vec<String> = mine
                        .iter()
                        .filter_map(|a| match a {
                            anchor::Anchor::Text(t) => Some(t.clone()),
                            anchor::Anchor::Operation(_) => None,
                        })
                        .collect();
                    if !texts.is_empty() {
                        self.scanned.push((format, rule.title.clone(), texts));
                    }
                    if let Some(all) = slot.as_mut() {
                        all.extend(mine);
                    }
                }
                None => {
                    *slot = None;
                    self.unanchored.push((format, rule.title.clone()));
                }
            }
            self.prefilter = OnceLock::new();
        }
    }

    /// Whether any loaded rule applies to events of `format`.
    pub fn applies_to(&self, format: &str) -> bool {
        self.formats.contains(&format)
    }

    /// The rules an event's raw record matches. Events of formats no rule
    /// applies to, and records that are not JSON objects, match nothing.
    pub fn matches(&self, e: &Event) -> Vec<SigmaMatch> {
        let Some((product, service)) = logsource_of(&e.source.format) else { return Vec::new() };
        if !self.applies_to(&e.source.format) {
            return Vec::new();
        }
        use std::sync::atomic::Ordering::Relaxed;
        self.checked.fetch_add(1, Relaxed);
        if !self.may_match(e) {
            return Vec::new();
        }
        self.parsed.fetch_add(1, Relaxed);
        // Stored raw records were parsed as UTF-8 on the way in: validating
        // once in bulk spares serde_json re-validating string by string.
        let parsed = match std::str::from_utf8(e.raw.as_bytes()) {
            Ok(text) => serde_json::from_str::<serde_json::Value>(text),
            Err(_) => serde_json::from_slice::<serde_json::Value>(e.raw.as_bytes()),
        };
        let Ok(value) = parsed else { return Vec::new() };
        let logsource =
            LogSource { product: Some(product.to_string()), service: Some(service.to_string()), ..Default::default() };
        let event = JsonEvent::borrow(&value);
        self.engine
            .evaluate_pruned(&event, &logsource)
            .into_iter()
            .filter(|r| r.is_detection())
            .filter_map(|r| {
                let key = r.header.rule_id.clone().unwrap_or_else(|| r.header.rule_title.clone());
                let info = self.rules.get(&key)?;
                Some(SigmaMatch {
                    rule: RuleMatch {
                        id: info.id.clone(),
                        title: info.title.clone(),
                        level: info.level.clone(),
                        file: info.file.clone(),
                    },
                    techniques: info.techniques.clone(),
                    behaviours: info.behaviours.clone(),
                })
            })
            .collect()
    }

    /// Whether any rule for `format` could match this raw record: false
    /// only when no rule's anchor occurs in it (see [`anchor`]).
    fn may_match(&self, e: &Event) -> bool {
        if self.prefilter_off {
            return true;
        }
        let prefilter = self
            .prefilter
            .get_or_init(|| self.anchors.iter().map(|(f, a)| (*f, a.as_ref().map(|a| Prefilter::new(a)))).collect());
        match prefilter.get(e.source.format.as_str()) {
            Some(Some(p)) => p.may_match(e),
            _ => true,
        }
    }

    /// Evaluates every record of an applicable format, as without the
    /// prefilter: what the prefilter is checked against.
    pub fn set_prefilter(&mut self, on: bool) {
        self.prefilter_off = !on;
    }

    /// Records of applicable formats looked at, and how many of them the
    /// prefilter let through to be parsed and evaluated.
    pub fn prefilter_counts(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.checked.load(Relaxed), self.parsed.load(Relaxed))
    }

    /// The rules that force every record of their format to be evaluated.
    pub fn unanchored(&self) -> &[(&'static str, String)] {
        &self.unanchored
    }

    /// The rules anchored on text rather than on the operation.
    pub fn scanned(&self) -> &[(&'static str, String, Vec<String>)] {
        &self.scanned
    }

    /// Whether every rule for `format` has anchors, so records can be skipped.
    pub fn anchored(&self, format: &str) -> bool {
        self.anchors.get(format).is_some_and(Option::is_some)
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}
