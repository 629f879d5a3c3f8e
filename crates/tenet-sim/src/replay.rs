//! Real attack telemetry replayed into the simulated enterprise: a recorded
//! CloudTrail detonation (a Stratus Red Team technique, say) is moved onto
//! the simulation's clock and identities, so detection can be tested on an
//! attack hidden in normal activity rather than on the attack alone.
//!
//! Two kinds of input ([`source`] tells them apart):
//!
//! - **Detonations**: a file (`[...]` or `{"Records": [...]}`, optionally
//!   gzipped) holding one technique's records, or a directory of such files,
//!   each replayed on its own, staggered through its day ([`schedule`]).
//!   Every record is the attack: each is labelled `stratus:<file stem>`,
//!   `likely_malicious`.
//! - **A recording**: a directory whose every file is named as CloudTrail
//!   names its deliveries (`<account>_CloudTrail_<region>_<YYYYMMDDTHHMMZ>_<id>.json[.gz]`),
//!   an account's trail over an attack (the attacker's set-up, the technique,
//!   the clean-up, the account's own background). All its files are one
//!   detonation: one clock shift, one remapping, one scenario,
//!   `replay:<directory name>`. Only records whose `userAgent` starts with
//!   the attack tool's marker ([`Replay::label_agent`], by default
//!   [`DEFAULT_LABEL_AGENT`], Stratus Red Team's) are labelled: the rest is
//!   replayed unlabelled, since a detection should not need to cite the
//!   attacker's Terraform or the account's own activity. A directory that
//!   mixes delivery files with other files is refused rather than guessed.
//!
//! What changes in each record, and why:
//!
//! - **Time.** Every string that is a timestamp in a layout CloudTrail uses
//!   (`eventTime`, `sessionContext.attributes.creationDate`, response dates
//!   such as `expiration` or `createDate`) moves by one constant, so the
//!   earliest `eventTime` lands on [`Replay::at`] and the relative spacing
//!   (and order) of the detonation is kept. Each string keeps its layout.
//! - **Account.** The detonation's account (its most frequent
//!   `recipientAccountId`) becomes a simulated account everywhere it occurs,
//!   in every string (ARNs in parameters, error messages, principal ids),
//!   object key and number. Other accounts (an attacker's account that a
//!   snapshot is shared with, say) are the attack's and stay.
//! - **Attacker.** The `IAMUser` that acts (the most frequent one, if
//!   several; in a recording, of those it does not create) becomes a simulated person's long-lived IAM user: its ARN, its
//!   name as a whole word, its `principalId`s and its access key ids are
//!   replaced by the simulated user's (a temporary `ASIA…` key becomes a
//!   new temporary key of the simulated user, so sessions stay apart).
//!   Roles, role sessions, federated users and users the detonation creates
//!   keep their names: they are new principals in the simulated account.
//! - **A recording's other IAM users.** Every other `IAMUser` that acts in
//!   a recording and that the recording does not create (`CreateUser`) is
//!   someone of the account (an administrator, a responder): each, most
//!   active first, becomes another simulated person's IAM user in the
//!   attacker's simulated account (the keyed people after the attacker's,
//!   in order), so no two recorded users merge into one. Past the last such
//!   person, the rest keep their names (in the simulated account, with no
//!   inventory behind them); [`Replayed::others`] says which. In a single
//!   detonation file, other IAM users keep their names, as before: they are
//!   the technique's own.
//! - **Event ids.** Each `eventID` is re-derived from the original id, the
//!   file (a recording's: its directory) name and the landing time, so the
//!   same file replayed twice, or two files, never collide, and a record
//!   CloudTrail delivered twice in a recording stays one event.
//!
//! `sourceIPAddress`, `userAgent` and `awsRegion` stay as recorded: the
//! first two are part of the attack's signature, and the region is what
//! the detonation touched.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::{Datelike, NaiveDateTime, TimeDelta};
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde_json::{Map, Value};
use tenet_model::Timestamp;

use crate::output::{Chunk, Written};
use crate::record::Label;
use crate::render::short_hash;
use crate::world::Simulation;
use crate::{DAY, HOUR, org, rng};

/// The attack tool's marker a recording's records are labelled by: Stratus
/// Red Team's `userAgent` is `stratus-red-team_<detonation uuid>`.
pub const DEFAULT_LABEL_AGENT: &str = "stratus-red-team_";

/// Where a detonation lands, who plays its attacker and which records are
/// labelled.
#[derive(Clone, Debug)]
pub struct Replay {
    /// The detonation's file (a recording's directory): named in errors;
    /// its name makes the scenario name and the event ids.
    pub path: PathBuf,
    /// Seconds from the simulation's start where the earliest record lands.
    pub at: i64,
    /// The person (index into `org.people`) whose long-lived IAM user plays
    /// the attacker; `None`: the first person who has one.
    pub person: Option<usize>,
    /// The label's scenario: `stratus:<file stem>` for a detonation file,
    /// `replay:<directory name>` for a recording.
    pub scenario: String,
    /// `None`: every record is labelled. `Some(prefix)`: only records whose
    /// `userAgent` starts with it (an empty prefix: every record).
    pub label_agent: Option<String>,
}

impl Replay {
    /// A detonation file: every record labelled `stratus:<file stem>`.
    pub fn new(path: impl Into<PathBuf>, at: i64) -> Replay {
        let path = path.into();
        let scenario = format!("stratus:{}", stem(&path));
        Replay { path, at, person: None, scenario, label_agent: None }
    }

    /// A recording (see [`Detonation::read_recording`]): `replay:<directory
    /// name>`, the records of [`DEFAULT_LABEL_AGENT`] labelled.
    pub fn recording(path: impl Into<PathBuf>, at: i64) -> Replay {
        let path = path.into();
        let scenario = format!("replay:{}", stem(&path));
        Replay { path, at, person: None, scenario, label_agent: Some(DEFAULT_LABEL_AGENT.into()) }
    }

    fn labels(&self, rec: &Map<String, Value>) -> bool {
        match self.label_agent.as_deref() {
            None | Some("") => true,
            Some(prefix) => str_at(rec, &["userAgent"]).is_some_and(|ua| ua.starts_with(prefix)),
        }
    }
}

/// Why a detonation, or one of its records, cannot be replayed. Every
/// message names the file; record errors also name the record (as a JSON
/// path into the file) and the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("{}: cannot read: {why}", .path.display())]
    Read { path: PathBuf, why: String },
    #[error("{}: not JSON: {why}", .path.display())]
    Json { path: PathBuf, why: String },
    #[error("{}: not CloudTrail: expected {{\"Records\": [...]}} or an array of records", .path.display())]
    NotCloudTrail { path: PathBuf },
    #[error("{}: {record}: {field}: {why}", .path.display())]
    Record { path: PathBuf, record: String, field: String, why: String },
    #[error("{}: no replayable record (of {total})", .path.display())]
    NoRecords { path: PathBuf, total: usize },
    #[error("{}: {why}", .path.display())]
    Target { path: PathBuf, why: String },
    #[error("--replay {spec}: {why}")]
    Spec { spec: String, why: String },
    #[error("{}: {why}", .path.display())]
    Directory { path: PathBuf, why: String },
}

/// An IAM user that acts in the detonation (its attacker, or a recording's
/// other user), as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attacker {
    pub arn: String,
    pub name: String,
    pub principal_ids: Vec<String>,
    pub access_keys: Vec<String>,
    /// Records it made.
    pub records: usize,
}

/// One replayable record, as read.
#[derive(Clone, Debug)]
struct Rec {
    /// Index into [`Detonation::files`].
    file: usize,
    /// Index in its file.
    index: usize,
    record: Map<String, Value>,
    /// `eventTime` as Unix seconds.
    time: i64,
}

/// A parsed detonation, not yet placed in a simulation.
#[derive(Clone, Debug)]
pub struct Detonation {
    /// The file, or a recording's directory.
    pub path: PathBuf,
    /// The files read: the file itself, or a recording's files by name.
    pub files: Vec<PathBuf>,
    /// Whether this is a recording ([`Detonation::read_recording`]).
    pub recording: bool,
    /// The replayable records, in file order, then in order in each file.
    records: Vec<Rec>,
    /// Records left out, each with why.
    pub skipped: Vec<ReplayError>,
    /// The records' own account (most frequent `recipientAccountId`).
    pub account: Option<String>,
    pub attacker: Option<Attacker>,
    /// A recording's other acting IAM users that it does not create, most
    /// active first; always empty for a detonation file.
    pub others: Vec<Attacker>,
    /// Whether the file was `{"Records": [...]}` (for naming records in errors).
    wrapped: bool,
}

/// One record as replayed.
#[derive(Clone, Debug)]
pub struct ReplayedRecord {
    /// Index into the detonation's files (always 0 for a single file).
    pub file: usize,
    /// Index in its file.
    pub index: usize,
    /// Unix seconds of the rewritten `eventTime`.
    pub time: i64,
    pub record: Value,
    /// Whether it has a label (is the scenario's).
    pub labelled: bool,
}

/// A detonation rewritten into a simulation.
#[derive(Clone, Debug)]
pub struct Replayed {
    pub scenario: String,
    pub path: PathBuf,
    /// Seconds from the simulation's start of the earliest record.
    pub at: i64,
    /// The simulated account the records now belong to.
    pub account: String,
    pub original_account: Option<String>,
    /// `(recorded ARN, simulated ARN)` of the attacking IAM user, if any.
    pub attacker: Option<(String, String)>,
    /// A recording's other IAM users: `(recorded ARN, simulated ARN)`, or
    /// `None` where no simulated person was left and the name was kept.
    pub others: Vec<(String, Option<String>)>,
    /// Which `userAgent` prefix chose the labelled records (`None`: all).
    pub label_agent: Option<String>,
    pub records: Vec<ReplayedRecord>,
    /// One per labelled record, in record order.
    pub labels: Vec<Label>,
    /// Records of the file left out, each with why.
    pub skipped: Vec<ReplayError>,
}

/// A file's name without `.json` / `.json.gz`: the scenario's name (a
/// directory's, for a recording; `.` is named after what it is).
pub fn stem(path: &Path) -> String {
    let name_of = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    let name = name_of(path).or_else(|| path.canonicalize().ok().and_then(|p| name_of(&p))).unwrap_or_default();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    name.strip_suffix(".json").unwrap_or(name).to_string()
}

impl Detonation {
    /// Reads a detonation file (`.json`, or gzipped as CloudTrail delivers it).
    pub fn read(path: &Path) -> Result<Detonation, ReplayError> {
        let bytes = std::fs::read(path).map_err(|e| ReplayError::Read { path: path.into(), why: e.to_string() })?;
        Detonation::parse(path, &bytes)
    }

    /// Parses a detonation: `{"Records": [...]}` or an array of records,
    /// optionally gzipped. Records without a usable `eventTime`,
    /// `eventSource` or `eventName` are left out and listed in `skipped`.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Detonation, ReplayError> {
        let mut d = Detonation::parse_records(path, bytes)?;
        if d.records.is_empty() {
            // The first record's error says more than "nothing usable".
            let total = d.skipped.len();
            return Err(d.skipped.first().cloned().unwrap_or(ReplayError::NoRecords { path: path.into(), total }));
        }
        d.account = account(&d.records);
        d.attacker = users(&d.records, &[]).into_iter().next();
        Ok(d)
    }

    /// Reads a recording: `files` (a directory's, by name; see [`source`])
    /// as one detonation. Each file may be framed as [`Detonation::parse`]
    /// reads; a file with no record (CloudTrail delivers some) adds none,
    /// a file that is not CloudTrail at all is an error. The attacker is the
    /// most active IAM user the recording does not create; the other such
    /// users are [`Detonation::others`].
    pub fn read_recording(dir: &Path, files: &[PathBuf]) -> Result<Detonation, ReplayError> {
        let mut d = Detonation {
            path: dir.into(),
            files: files.to_vec(),
            recording: true,
            records: Vec::new(),
            skipped: Vec::new(),
            account: None,
            attacker: None,
            others: Vec::new(),
            wrapped: true,
        };
        for (i, file) in files.iter().enumerate() {
            let bytes =
                std::fs::read(file).map_err(|e| ReplayError::Read { path: file.clone(), why: e.to_string() })?;
            let part = Detonation::parse_records(file, &bytes)?;
            d.records.extend(part.records.into_iter().map(|r| Rec { file: i, ..r }));
            d.skipped.extend(part.skipped);
        }
        if d.records.is_empty() {
            let total = d.skipped.len();
            return Err(d.skipped.first().cloned().unwrap_or(ReplayError::NoRecords { path: dir.into(), total }));
        }
        d.account = account(&d.records);
        let created = created_users(&d.records);
        let mut users = users(&d.records, &created).into_iter();
        d.attacker = users.next();
        d.others = users.collect();
        Ok(d)
    }

    /// The records of one file, checked, with nothing derived from them yet.
    fn parse_records(path: &Path, bytes: &[u8]) -> Result<Detonation, ReplayError> {
        let inflated;
        let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut out = Vec::new();
            GzDecoder::new(bytes)
                .read_to_end(&mut out)
                .map_err(|e| ReplayError::Read { path: path.into(), why: format!("gzip: {e}") })?;
            inflated = out;
            &inflated[..]
        } else {
            bytes
        };
        let top: Value =
            serde_json::from_slice(bytes).map_err(|e| ReplayError::Json { path: path.into(), why: e.to_string() })?;
        let (list, wrapped) = match top {
            Value::Array(list) => (list, false),
            Value::Object(mut o) => match o.remove("Records") {
                Some(Value::Array(list)) => (list, true),
                _ => return Err(ReplayError::NotCloudTrail { path: path.into() }),
            },
            _ => return Err(ReplayError::NotCloudTrail { path: path.into() }),
        };
        let mut d = Detonation {
            path: path.into(),
            files: vec![path.into()],
            recording: false,
            records: Vec::with_capacity(list.len()),
            skipped: Vec::new(),
            account: None,
            attacker: None,
            others: Vec::new(),
            wrapped,
        };
        for (i, v) in list.into_iter().enumerate() {
            match d.check(i, v) {
                Ok((record, time)) => d.records.push(Rec { file: 0, index: i, record, time }),
                Err(e) => d.skipped.push(e),
            }
        }
        Ok(d)
    }

    fn record_name(&self, i: usize) -> String {
        if self.wrapped { format!("Records[{i}]") } else { format!("[{i}]") }
    }

    fn record_error(&self, i: usize, field: &str, why: impl Into<String>) -> ReplayError {
        ReplayError::Record {
            path: self.path.clone(),
            record: self.record_name(i),
            field: field.into(),
            why: why.into(),
        }
    }

    fn check(&self, i: usize, v: Value) -> Result<(Map<String, Value>, i64), ReplayError> {
        let Value::Object(rec) = v else {
            return Err(self.record_error(i, "(record)", "not a JSON object"));
        };
        for field in ["eventSource", "eventName"] {
            match rec.get(field) {
                Some(Value::String(s)) if !s.is_empty() => {}
                Some(_) => return Err(self.record_error(i, field, "not a non-empty string")),
                None => return Err(self.record_error(i, field, "missing")),
            }
        }
        let time = match rec.get("eventTime") {
            None => return Err(self.record_error(i, "eventTime", "missing")),
            Some(Value::String(s)) => s,
            Some(_) => return Err(self.record_error(i, "eventTime", "not a string")),
        };
        // Only a layout `shift_time` can rewrite is accepted, so every kept
        // record is certain to move with the others.
        let Some(secs) = iso_seconds(time) else {
            return Err(self.record_error(i, "eventTime", format!("`{time}` is not an RFC 3339 time")));
        };
        Ok((rec, secs))
    }

    /// Seconds from the earliest record to the latest.
    pub fn duration(&self) -> i64 {
        let (lo, hi) = self.bounds();
        hi - lo
    }

    fn bounds(&self) -> (i64, i64) {
        let times = self.records.iter().map(|r| r.time);
        (times.clone().min().unwrap_or(0), times.max().unwrap_or(0))
    }

    /// Records kept for replay.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Rewrites the detonation into `sim` as `target` says (see the module
    /// docs for what changes).
    pub fn replay(&self, sim: &Simulation, target: &Replay) -> Result<Replayed, ReplayError> {
        let err = |why: String| ReplayError::Target { path: self.path.clone(), why };
        let total = i64::from(sim.config.days) * DAY;
        let (first, last) = self.bounds();
        let end = target.at.saturating_add(last - first);
        if target.at < 0 || end >= total {
            // Saturating: `at` is the caller's and may be anything.
            let abs = |t: i64| Timestamp::from_unix_seconds(sim.config.start.unix_seconds().saturating_add(t));
            return Err(err(format!(
                "lands at {}..{}, outside the simulation ({}..{})",
                abs(target.at),
                abs(end),
                abs(0),
                abs(total)
            )));
        }
        let people = &sim.org.people;
        let person = match target.person {
            Some(p) => match people.get(p) {
                Some(person) if person.iam_user.is_some() => Some(p),
                Some(person) => return Err(err(format!("person {p} ({}) has no IAM user", person.email))),
                None => return Err(err(format!("no person {p}: the simulation has {}", people.len()))),
            },
            None => people.iter().position(|p| p.iam_user.is_some()),
        };
        let user = person.and_then(|p| people[p].iam_user.as_ref());
        if self.attacker.is_some() && user.is_none() {
            return Err(err(
                "the attacker is an IAM user, but no simulated person has one to play it (try more --humans)".into(),
            ));
        }
        // The attacker's own account, so its user and the records agree;
        // without an IAM user to play it, the production account.
        let home = user.map_or(org::PROD, |u| u.account);
        let account = &sim.org.account(home).id;

        let mut patterns = Vec::new();
        let mut new_arn = None;
        if let (Some(a), Some(u)) = (&self.attacker, user) {
            new_arn = Some(user_patterns(a, u, account, target.at, &mut patterns));
        }
        // A recording's other users: the keyed people of the same account
        // after the attacker's, in order, each used once.
        let mut others = Vec::with_capacity(self.others.len());
        if let (Some(start), false) = (person, self.others.is_empty()) {
            let mut cast = (1..people.len())
                .map(|k| (start + k) % people.len())
                .filter_map(|p| people[p].iam_user.as_ref().filter(|u| u.account == home));
            for a in &self.others {
                let arn = cast.next().map(|u| user_patterns(a, u, account, target.at, &mut patterns));
                others.push((a.arn.clone(), arn));
            }
        } else {
            others.extend(self.others.iter().map(|a| (a.arn.clone(), None)));
        }
        let mut account_number = None;
        if let Some(old) = &self.account {
            // Every occurrence of a real (12-digit) account id goes, even
            // inside longer strings: none of the original account may be
            // left. Anything else is only replaced where it is a whole value.
            if is_account_id(old) {
                patterns.push(Pattern::new(old, account, Bound::None));
                account_number = old.parse::<u64>().ok().zip(account.parse::<u64>().ok());
            } else {
                patterns.push(Pattern::new(old, account, Bound::Whole));
            }
        }
        // Longest first: where two patterns start at the same place (the
        // attacker's ARN and the account id inside it), the longer wins.
        patterns.sort_by(|a, b| b.from.len().cmp(&a.from.len()).then_with(|| a.from.cmp(&b.from)));
        patterns.dedup_by(|a, b| a.from == b.from);
        patterns.retain(|p| !p.from.is_empty());
        let rewrite = Rewrite { delta: sim.abs(target.at) - first, patterns, account_number };

        // A recording's ids are salted with its directory's name, not each
        // file's: a record CloudTrail delivered twice stays one event.
        let salt = self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let mut out = Replayed {
            scenario: target.scenario.clone(),
            path: self.path.clone(),
            at: target.at,
            account: account.clone(),
            original_account: self.account.clone(),
            attacker: self.attacker.as_ref().zip(new_arn).map(|(a, n)| (a.arn.clone(), n)),
            others,
            label_agent: target.label_agent.clone(),
            records: Vec::with_capacity(self.records.len()),
            labels: Vec::new(),
            skipped: self.skipped.clone(),
        };
        for r in &self.records {
            let original_id = match r.record.get("eventID") {
                Some(Value::String(s)) if !s.is_empty() => s.clone(),
                // No id: the record's place in its file is as stable.
                _ if self.recording => {
                    let file = self.files[r.file].file_name().unwrap_or_default().to_string_lossy();
                    format!("#{file}#{}", r.index)
                }
                _ => format!("#{}", r.index),
            };
            let labelled = target.labels(&r.record);
            let mut rec = rewrite.object(r.record.clone());
            let id = event_id(&original_id, &salt, target.at);
            rec.insert("eventID".into(), Value::String(id.clone()));
            if !rec.contains_key("recipientAccountId") {
                // Without it the record would belong to no account once delivered.
                rec.insert("recipientAccountId".into(), Value::String(account.clone()));
            }
            if labelled {
                out.labels.push(Label {
                    event_id: id,
                    scenario: target.scenario.clone(),
                    category: tenet_model::Category::LikelyMalicious.as_str().to_string(),
                    principal: acting_principal(&rec),
                });
            }
            out.records.push(ReplayedRecord {
                file: r.file,
                index: r.index,
                time: r.time + rewrite.delta,
                record: Value::Object(rec),
                labelled,
            });
        }
        Ok(out)
    }
}

/// The patterns that make recorded IAM user `a` simulated user `u` of
/// `account`; returns the simulated ARN. A long-lived key becomes `u`'s; a
/// temporary (`ASIA…`) key, a session's, becomes a new temporary key of
/// `u`'s, one per recorded key and landing time, so sessions stay apart.
fn user_patterns(a: &Attacker, u: &org::IamUser, account: &str, at: i64, patterns: &mut Vec<Pattern>) -> String {
    let arn = format!("arn:aws:iam::{account}:user/{}", u.name);
    patterns.push(Pattern::new(&a.arn, &arn, Bound::IamNameAfter));
    patterns.push(Pattern::new(&url_encode_arn(&a.arn), &url_encode_arn(&arn), Bound::IamNameAfter));
    let principal_id = format!("AIDA{}", short_hash(&u.name, 17));
    for id in &a.principal_ids {
        patterns.push(Pattern::new(id, &principal_id, Bound::Word));
    }
    for key in &a.access_keys {
        let new = if key.starts_with("ASIA") {
            let mut r = rng::rng(at as u64, &format!("replay-key\u{0}{}\u{0}{key}", u.name), &[]);
            format!("ASIA{}", rng::base32(&mut r, 16))
        } else {
            u.access_key.clone()
        };
        patterns.push(Pattern::new(key, &new, Bound::Word));
    }
    // A name of one or two letters is too likely to be a word of
    // something else: only where it is the whole value.
    let bound = if a.name.chars().count() >= 3 { Bound::Word } else { Bound::Whole };
    patterns.push(Pattern::new(&a.name, &u.name, bound));
    arn
}

/// Reads and rewrites one detonation: [`Detonation::parse`] then
/// [`Detonation::replay`].
pub fn replay(sim: &Simulation, bytes: &[u8], target: &Replay) -> Result<Replayed, ReplayError> {
    Detonation::parse(&target.path, bytes)?.replay(sim, target)
}

// ----- Who acts -----

fn str_at<'a>(rec: &'a Map<String, Value>, path: &[&str]) -> Option<&'a str> {
    let (last, parents) = path.split_last()?;
    let mut m = rec;
    for key in parents {
        m = m.get(*key)?.as_object()?;
    }
    m.get(*last)?.as_str().filter(|s| !s.is_empty())
}

/// The most frequent value; ties go to the first seen, so the choice does
/// not depend on anything but the file.
fn most_frequent<'a>(values: impl Iterator<Item = &'a str>) -> Option<String> {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for v in values {
        match counts.iter_mut().find(|(k, _)| *k == v) {
            Some((_, n)) => *n += 1,
            None => counts.push((v, 1)),
        }
    }
    let best = counts.iter().map(|(_, n)| *n).max()?;
    counts.into_iter().find(|(_, n)| *n == best).map(|(k, _)| k.to_string())
}

/// The records' own account: the most frequent `recipientAccountId`.
fn account(records: &[Rec]) -> Option<String> {
    most_frequent(records.iter().filter_map(|r| {
        str_at(&r.record, &["recipientAccountId"]).or_else(|| str_at(&r.record, &["userIdentity", "accountId"]))
    }))
}

/// The names of IAM users the records create (`CreateUser`, asked for,
/// whether or not it succeeded).
fn created_users(records: &[Rec]) -> Vec<String> {
    let mut names: Vec<String> = records
        .iter()
        .filter(|r| {
            str_at(&r.record, &["eventSource"]) == Some("iam.amazonaws.com")
                && str_at(&r.record, &["eventName"]) == Some("CreateUser")
        })
        .filter_map(|r| str_at(&r.record, &["requestParameters", "userName"]).map(str::to_string))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Every IAM user that acts (by ARN), but those named in `except`, most
/// active first; ties in the order first seen, so the order depends on
/// nothing but the records.
fn users(records: &[Rec], except: &[String]) -> Vec<Attacker> {
    let is_user = |r: &Map<String, Value>| str_at(r, &["userIdentity", "type"]) == Some("IAMUser");
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for arn in records.iter().filter(|r| is_user(&r.record)).filter_map(|r| str_at(&r.record, &["userIdentity", "arn"]))
    {
        match counts.iter_mut().find(|(k, _)| *k == arn) {
            Some((_, n)) => *n += 1,
            None => counts.push((arn, 1)),
        }
    }
    // Stable: equal counts keep their first-seen order.
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    let mut out = Vec::new();
    for (arn, n) in counts {
        let mine: Vec<&Map<String, Value>> = records
            .iter()
            .map(|r| &r.record)
            .filter(|r| is_user(r) && str_at(r, &["userIdentity", "arn"]) == Some(arn))
            .collect();
        let distinct = |field: &str| {
            let mut v: Vec<String> =
                mine.iter().filter_map(|r| str_at(r, &["userIdentity", field])).map(str::to_string).collect();
            v.sort();
            v.dedup();
            v
        };
        // The ARN's last segment is the name even under a path (`user/ops/bob`).
        let name = mine
            .iter()
            .find_map(|r| str_at(r, &["userIdentity", "userName"]))
            .map_or_else(|| arn.rsplit('/').next().unwrap_or_default().to_string(), str::to_string);
        if except.contains(&name) {
            continue;
        }
        out.push(Attacker {
            name,
            principal_ids: distinct("principalId"),
            access_keys: distinct("accessKeyId"),
            records: n,
            arn: arn.to_string(),
        });
    }
    out
}

/// Who made the call, as the label names it: the identity's ARN, else the
/// service that invoked it, else its principal id.
fn acting_principal(rec: &Map<String, Value>) -> String {
    ["arn", "invokedBy", "principalId"]
        .iter()
        .find_map(|f| str_at(rec, &["userIdentity", f]))
        .unwrap_or("unknown")
        .to_string()
}

fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// A new UUID-shaped event id: stable for the same file landing at the same
/// time, different for another file or another time.
fn event_id(original: &str, file_name: &str, at: i64) -> String {
    rng::uuid(&mut rng::rng(at as u64, &format!("replay\u{0}{file_name}\u{0}{original}"), &[]))
}

/// IAM policy documents are sometimes recorded URL-encoded, ARNs and all.
fn url_encode_arn(arn: &str) -> String {
    arn.replace(':', "%3A").replace('/', "%2F")
}

// ----- Rewriting -----

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Bound {
    /// Anywhere.
    None,
    /// Not inside a longer word: no ASCII letter or digit on either side.
    Word,
    /// Not followed by a character IAM allows in names, so `user/bob` does
    /// not match `user/bobby`.
    IamNameAfter,
    /// Only the whole string.
    Whole,
}

#[derive(Debug)]
struct Pattern {
    from: String,
    to: String,
    bound: Bound,
}

impl Pattern {
    fn new(from: &str, to: &str, bound: Bound) -> Pattern {
        Pattern { from: from.to_string(), to: to.to_string(), bound }
    }

    fn matches_at(&self, s: &str, i: usize) -> bool {
        if !s[i..].starts_with(&self.from) {
            return false;
        }
        let before = s[..i].chars().next_back();
        let after = s[i + self.from.len()..].chars().next();
        match self.bound {
            Bound::None => true,
            Bound::Word => {
                !before.is_some_and(|c| c.is_ascii_alphanumeric()) && !after.is_some_and(|c| c.is_ascii_alphanumeric())
            }
            Bound::IamNameAfter => !after.is_some_and(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c)),
            Bound::Whole => i == 0 && after.is_none(),
        }
    }
}

struct Rewrite {
    delta: i64,
    patterns: Vec<Pattern>,
    /// The account id as a JSON number, `(from, to)`.
    account_number: Option<(u64, u64)>,
}

impl Rewrite {
    fn object(&self, m: Map<String, Value>) -> Map<String, Value> {
        m.into_iter().map(|(k, v)| (self.replace(&k).unwrap_or(k), self.value(v))).collect()
    }

    fn value(&self, v: Value) -> Value {
        match v {
            Value::String(s) => Value::String(shift_time(&s, self.delta).or_else(|| self.replace(&s)).unwrap_or(s)),
            Value::Array(a) => Value::Array(a.into_iter().map(|v| self.value(v)).collect()),
            Value::Object(m) => Value::Object(self.object(m)),
            Value::Number(n) => match self.account_number {
                Some((from, to)) if n.as_u64() == Some(from) => Value::Number(to.into()),
                _ => Value::Number(n),
            },
            other => other,
        }
    }

    /// Every pattern in one pass, left to right, so a replacement is never
    /// itself rewritten (a simulated name that contains the attacker's).
    /// `None` when nothing matched.
    fn replace(&self, s: &str) -> Option<String> {
        if !self.patterns.iter().any(|p| s.contains(&p.from)) {
            return None;
        }
        let mut out = String::with_capacity(s.len() + 16);
        let mut i = 0;
        while let Some(c) = s[i..].chars().next() {
            match self.patterns.iter().find(|p| p.matches_at(s, i)) {
                Some(p) => {
                    out.push_str(&p.to);
                    i += p.from.len();
                }
                None => {
                    out.push(c);
                    i += c.len_utf8();
                }
            }
        }
        Some(out)
    }
}

// ----- Time -----

const ISO: &str = "%Y-%m-%dT%H:%M:%S";
/// The layouts CloudTrail records response dates in: IAM's (`Aug 1, 2024
/// 1:33:28 PM`) and STS's and SSM's (`Aug 2, 2024, 8:44:59 AM`).
const ENGLISH: [&str; 2] = ["%b %-d, %Y %-I:%M:%S %p", "%b %-d, %Y, %-I:%M:%S %p"];

/// `YYYY-MM-DDTHH:MM:SS` and what may follow it in RFC 3339 / ISO 8601:
/// a fraction, then `Z`, `±HH:MM`, `±HHMM` or nothing.
fn iso_parts(s: &str) -> Option<(NaiveDateTime, &str)> {
    if s.len() < 19 || !s.is_char_boundary(19) {
        return None;
    }
    let (head, rest) = s.split_at(19);
    let b = head.as_bytes();
    let shape = b.iter().enumerate().all(|(i, c)| match i {
        4 | 7 => *c == b'-',
        10 => *c == b'T',
        13 | 16 => *c == b':',
        _ => c.is_ascii_digit(),
    });
    if !shape {
        return None;
    }
    let zone = match rest.strip_prefix('.') {
        Some(f) => {
            let digits = f.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 || digits > 9 {
                return None;
            }
            &f[digits..]
        }
        None => rest,
    };
    let offset = |z: &str| {
        let b = z.as_bytes();
        let d = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
        matches!(b.first(), Some(b'+' | b'-'))
            && ((b.len() == 6 && b[3] == b':' && d(1..3) && d(4..6)) || (b.len() == 5 && d(1..5)))
    };
    if !(zone.is_empty() || zone == "Z" || offset(zone)) {
        return None;
    }
    Some((NaiveDateTime::parse_from_str(head, ISO).ok()?, rest))
}

/// Unix seconds of an RFC 3339 `eventTime` (any fraction dropped).
fn iso_seconds(s: &str) -> Option<i64> {
    iso_parts(s)?;
    Some(Timestamp::parse_rfc3339(s).ok()?.unix_seconds())
}

/// `s` moved by `delta` seconds in its own layout, if it is a timestamp in
/// one this module knows; the layout (fraction, offset, 12-hour clock) is
/// kept. Moving the local time by a constant moves the instant by the same
/// constant, whatever the offset.
fn shift_time(s: &str, delta: i64) -> Option<String> {
    let by = TimeDelta::try_seconds(delta)?;
    if let Some((t, rest)) = iso_parts(s) {
        let moved = t.checked_add_signed(by)?;
        let head = moved.format(ISO).to_string();
        // A year outside 0000..=9999 would no longer be this layout.
        return (head.len() == 19).then(|| head + rest);
    }
    // Cheap test first: most strings are not dates.
    if s.len() > 32 || !(s.ends_with(" AM") || s.ends_with(" PM")) {
        return None;
    }
    for layout in ENGLISH {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, layout)
            // Only a string this layout writes back identically is one.
            && t.format(layout).to_string() == s
        {
            let moved = t.checked_add_signed(by)?;
            return (0..=9999).contains(&moved.year()).then(|| moved.format(layout).to_string());
        }
    }
    None
}

// ----- Placement: `--replay PATH[@DAY]` -----

/// The pause between two detonations replayed on the same day.
pub const GAP: i64 = 20 * 60;
/// Replays on a day are centred on this hour of it: early afternoon in
/// Europe, morning on the US east coast, when most simulated people work.
pub const MIDDAY: i64 = 13 * HOUR;

/// A `--replay` argument: `PATH[@DAY]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    pub path: PathBuf,
    /// Day index from the simulation's start; `None`: the last day.
    pub day: Option<u32>,
}

impl FromStr for Spec {
    type Err = ReplayError;

    /// `PATH@DAY`, or `PATH` alone. A path may itself contain `@`: only a
    /// suffix of digits after the last `@` is read as the day.
    fn from_str(s: &str) -> Result<Spec, ReplayError> {
        if s.is_empty() {
            return Err(ReplayError::Spec { spec: s.into(), why: "empty; expected PATH[@DAY]".into() });
        }
        if let Some((path, day)) = s.rsplit_once('@')
            && !day.is_empty()
            && day.bytes().all(|b| b.is_ascii_digit())
        {
            let day = day.parse::<u32>().map_err(|e| ReplayError::Spec { spec: s.into(), why: format!("day: {e}") })?;
            if path.is_empty() {
                return Err(ReplayError::Spec { spec: s.into(), why: "no path before `@`".into() });
            }
            return Ok(Spec { path: path.into(), day: Some(day) });
        }
        Ok(Spec { path: s.into(), day: None })
    }
}

/// The detonation files a path names: itself, or a directory's `*.json`
/// and `*.json.gz` files (not recursive), by name.
pub fn files(path: &Path) -> Result<Vec<PathBuf>, ReplayError> {
    let read_err = |e: io::Error| ReplayError::Read { path: path.into(), why: e.to_string() };
    if !path.is_dir() {
        // Opened later; an unreadable file is reported there, with its name.
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(path).map_err(read_err)? {
        let p = entry.map_err(read_err)?.path();
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if p.is_file() && (name.ends_with(".json") || name.ends_with(".json.gz")) {
            out.push(p);
        }
    }
    // Directory order is the file system's: sorting keeps output reproducible.
    out.sort();
    if out.is_empty() {
        return Err(ReplayError::Read { path: path.into(), why: "no *.json file in the directory".into() });
    }
    Ok(out)
}

/// What a `--replay` path holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// Detonation files, each replayed on its own: the file itself, or a
    /// directory's files by name.
    Detonations(Vec<PathBuf>),
    /// A directory of CloudTrail delivery files, by name: one recording,
    /// replayed as one detonation.
    Recording(Vec<PathBuf>),
}

/// Whether a file is named as CloudTrail names what it delivers to S3:
/// `<account>_CloudTrail_<region>_<YYYYMMDDTHHMMZ>_<unique>.json[.gz]`.
pub fn is_delivery_file(path: &Path) -> bool {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let Some(name) = name.strip_suffix(".json.gz").or_else(|| name.strip_suffix(".json")) else {
        return false;
    };
    let parts: Vec<&str> = name.splitn(5, '_').collect();
    let [account, kind, region, stamp, unique] = parts[..] else {
        return false;
    };
    let s = stamp.as_bytes();
    is_account_id(account)
        && kind == "CloudTrail"
        && !region.is_empty()
        && region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.len() == 14
        && s[8] == b'T'
        && s[13] == b'Z'
        && s[..8].iter().chain(&s[9..13]).all(u8::is_ascii_digit)
        && !unique.is_empty()
}

/// What `path` holds: a file is a detonation; a directory whose every file
/// is a CloudTrail delivery file ([`is_delivery_file`]) is a recording; a
/// directory with none is a set of detonations. A directory that mixes the
/// two is refused: either reading would be wrong for part of it.
pub fn source(path: &Path) -> Result<Source, ReplayError> {
    let files = files(path)?;
    if !path.is_dir() {
        return Ok(Source::Detonations(files));
    }
    let (delivered, other): (Vec<&PathBuf>, Vec<&PathBuf>) = files.iter().partition(|f| is_delivery_file(f));
    match (delivered.first(), other.first()) {
        (Some(d), Some(o)) => Err(ReplayError::Directory {
            path: path.into(),
            why: format!(
                "mixes {} CloudTrail delivery files (such as {}) with {} other files (such as {}): \
                 replay a recording's directory or a directory of detonation files, not both",
                delivered.len(),
                d.file_name().unwrap_or_default().to_string_lossy(),
                other.len(),
                o.file_name().unwrap_or_default().to_string_lossy()
            ),
        }),
        (Some(_), None) => Ok(Source::Recording(files)),
        _ => Ok(Source::Detonations(files)),
    }
}

/// Where each of a day's detonations lands (seconds from the simulation's
/// start), given their durations in order: one after another, at least
/// [`GAP`] apart and never overlapping, the whole block centred on
/// [`MIDDAY`] and inside the day.
pub fn schedule(sim: &Simulation, day: u32, durations: &[i64]) -> Result<Vec<i64>, String> {
    if day >= sim.config.days {
        return Err(format!("day {day} is past the simulation's last day ({})", sim.config.days.saturating_sub(1)));
    }
    let mut offsets = Vec::with_capacity(durations.len());
    let mut next = 0i64;
    for d in durations {
        offsets.push(next);
        // A long detonation pushes the next one back, a minute clear of it.
        let span = d.max(&0).saturating_add(60);
        next = next.saturating_add(GAP.max(span.div_euclid(60).saturating_add(1).saturating_mul(60)));
    }
    let block = match (offsets.last(), durations.last()) {
        (Some(o), Some(d)) => o.saturating_add(*d.max(&0)),
        _ => return Ok(Vec::new()),
    };
    if block >= DAY {
        return Err(format!(
            "{} detonations on day {day} take {}h{:02}m, more than a day: spread them over several days",
            durations.len(),
            block / HOUR,
            block % HOUR / 60
        ));
    }
    // Whole minutes before midday, so a lone detonation starts on the hour.
    let start = (MIDDAY - (block / 2).div_euclid(60) * 60).clamp(0, DAY - 1 - block);
    let base = i64::from(day) * DAY + start;
    Ok(offsets.into_iter().map(|o| base + o).collect())
}

/// Every `--replay` argument read, placed and rewritten into `sim`, in
/// argument order (a directory's files by name; a recording as one).
/// Detonations on the same day are staggered by [`schedule`], and each is
/// played by a different person with an IAM user while there are enough of
/// them. Any file that cannot be replayed at all is an error; records that
/// cannot are listed in each `skipped`. Recordings are labelled by
/// [`DEFAULT_LABEL_AGENT`]; see [`plan_with`].
pub fn plan(sim: &mut Simulation, specs: &[Spec]) -> Result<Vec<Replayed>, ReplayError> {
    plan_with(sim, specs, DEFAULT_LABEL_AGENT)
}

/// [`plan`], a recording's records labelled when their `userAgent` starts
/// with `label_agent` (empty: all of them). Detonation files are labelled
/// whole whatever it is.
pub fn plan_with(sim: &mut Simulation, specs: &[Spec], label_agent: &str) -> Result<Vec<Replayed>, ReplayError> {
    let last = sim.config.days.saturating_sub(1);
    let mut detonations = Vec::new();
    for spec in specs {
        let day = spec.day.unwrap_or(last);
        match source(&spec.path)? {
            Source::Detonations(files) => {
                for file in files {
                    detonations.push((day, Detonation::read(&file)?));
                }
            }
            Source::Recording(files) => {
                detonations.push((day, Detonation::read_recording(&spec.path, &files)?));
            }
        }
    }
    let mut by_day: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (i, (day, _)) in detonations.iter().enumerate() {
        by_day.entry(*day).or_default().push(i);
    }
    let mut at = vec![0i64; detonations.len()];
    // Each detonation on a day is played by a different keyed person (the
    // organisation issues keys to more people when it has too few), and the
    // turn carries over from day to day, so one attack's findings are not
    // folded into another's. A recording's other users take the people
    // after its attacker's, so the next detonation starts past them.
    let needed = by_day
        .values()
        .map(|m| {
            let on_day = m.iter().map(|&i| &detonations[i].1).filter(|d| d.attacker.is_some());
            on_day.map(|d| 1 + d.others.len()).sum::<usize>()
        })
        .max()
        .unwrap_or(0);
    // People a labelled scenario already happens to (a trip, a new
    // laptop, a stolen key) are left out: each label tells one story.
    let busy: std::collections::HashSet<usize> = sim.plans.iter().flat_map(|p| [p.person, p.other]).flatten().collect();
    let seed = sim.config.seed;
    sim.org.issue_keys(needed, seed, &busy);
    let keyed: Vec<usize> =
        (0..sim.org.people.len()).filter(|&p| sim.org.people[p].iam_user.is_some() && !busy.contains(&p)).collect();
    let mut person: Vec<Option<usize>> = vec![None; detonations.len()];
    let mut next = 0;
    for (day, members) in by_day {
        for &i in &members {
            if detonations[i].1.attacker.is_some() && !keyed.is_empty() {
                person[i] = Some(keyed[next % keyed.len()]);
                next += 1 + detonations[i].1.others.len();
            }
        }
        let durations: Vec<i64> = members.iter().map(|&i| detonations[i].1.duration()).collect();
        let times = schedule(sim, day, &durations).map_err(|why| ReplayError::Spec {
            spec: format!("{}@{day}", detonations[members[0]].1.path.display()),
            why,
        })?;
        for (i, t) in members.into_iter().zip(times) {
            at[i] = t;
        }
    }
    detonations
        .iter()
        .zip(at)
        .zip(person)
        .map(|(((_, d), at), person)| {
            let target = if d.recording {
                Replay { person, label_agent: Some(label_agent.into()), ..Replay::recording(&d.path, at) }
            } else {
                Replay { person, ..Replay::new(&d.path, at) }
            };
            d.replay(sim, &target)
        })
        .collect()
}

// ----- Output -----

/// A path segment from the records: only what an account id or a region
/// looks like, so a hostile file cannot steer where output is written.
fn safe_segment(s: Option<&str>, fallback: &str) -> String {
    match s {
        Some(s) if !s.is_empty() && s.len() <= 40 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') => {
            s.to_string()
        }
        _ => fallback.to_string(),
    }
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    // As `output` writes CloudTrail: no timestamp or name in the header,
    // so the same replay always compresses to the same bytes.
    let mut e = GzEncoder::new(Vec::with_capacity(bytes.len() / 4), Compression::fast());
    let _ = e.write_all(bytes);
    e.finish().unwrap_or_default()
}

/// A replay's CloudTrail delivery files, as the simulator lays them out:
/// one per account and region, named after the first record's time and
/// the detonation (`…_replay_<stem>.json.gz`).
pub fn chunks(sim: &Simulation, r: &Replayed) -> Vec<Chunk> {
    let home =
        sim.org.accounts.iter().find(|a| a.id == r.account).map_or(sim.org.account(org::PROD).region, |a| a.region);
    let name: String =
        stem(&r.path).chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
    let mut groups: BTreeMap<(String, String), Vec<&ReplayedRecord>> = BTreeMap::new();
    for rec in &r.records {
        let m = rec.record.as_object();
        let acct = safe_segment(m.and_then(|m| str_at(m, &["recipientAccountId"])), &r.account);
        let region = safe_segment(m.and_then(|m| str_at(m, &["awsRegion"])), home);
        groups.entry((acct, region)).or_default().push(rec);
    }
    let mut out = Vec::new();
    for ((acct, region), recs) in groups {
        let first = recs.iter().map(|r| r.time).min().unwrap_or(0);
        let until = recs.iter().map(|r| r.time).max().unwrap_or(0);
        let dt = Timestamp::from_unix_seconds(first).to_chrono();
        let (day, stamp) = (dt.format("%Y/%m/%d"), dt.format("%Y%m%dT%H%M"));
        let mut json = b"{\"Records\":[".to_vec();
        for (i, rec) in recs.iter().enumerate() {
            if i > 0 {
                json.push(b',');
            }
            let _ = serde_json::to_writer(&mut json, &rec.record);
        }
        json.extend_from_slice(b"]}");
        out.push(Chunk {
            path: format!(
                "cloudtrail/AWSLogs/{acct}/CloudTrail/{region}/{day}/{acct}_CloudTrail_{region}_{stamp}Z_replay_{name}.json.gz"
            ),
            format: "cloudtrail",
            bytes: gz(&json),
            events: recs.len() as u64,
            until,
        });
    }
    out
}

/// Adds replays to a directory `output::write_dir` wrote: their CloudTrail
/// files, their labels appended to `labels.jsonl`, and `manifest.json` and
/// `README.md` brought up to date. `written` gains their counts.
pub fn write(dir: &Path, sim: &Simulation, replayed: &[Replayed], written: &mut Written) -> io::Result<()> {
    if replayed.is_empty() {
        // A run without `--replay` is left exactly as `write_dir` wrote it.
        return Ok(());
    }
    let mut labels =
        io::BufWriter::new(std::fs::OpenOptions::new().append(true).create(true).open(dir.join("labels.jsonl"))?);
    let mut summary = Vec::new();
    for r in replayed {
        for c in chunks(sim, r) {
            crate::output::write_chunk(dir, &c, written)?;
        }
        for l in &r.labels {
            serde_json::to_writer(&mut labels, l)?;
            labels.write_all(b"\n")?;
            written.labels += 1;
            *written.scenarios.entry(l.scenario.clone()).or_default() += 1;
        }
        let mut entry = serde_json::json!({
            "scenario": r.scenario,
            "source": r.path.display().to_string(),
            "at": Timestamp::from_unix_seconds(sim.abs(r.at)).to_string(),
            "account": r.account,
            "original_account": r.original_account,
            "attacker": r.attacker.as_ref().map(|(from, to)| serde_json::json!({"recorded": from, "simulated": to})),
            "records": r.records.len(),
            "labelled": r.labels.len(),
            "skipped": r.skipped.iter().map(ToString::to_string).collect::<Vec<_>>(),
        });
        if let (Value::Object(m), Some(agent)) = (&mut entry, &r.label_agent) {
            // A recording: what chose its labels, and who else it cast.
            m.insert("label_agent".into(), Value::String(agent.clone()));
            let others = r.others.iter().map(|(from, to)| serde_json::json!({"recorded": from, "simulated": to}));
            m.insert("others".into(), Value::Array(others.collect()));
        }
        summary.push(entry);
    }
    labels.flush()?;
    let manifest_path = dir.join("manifest.json");
    let mut manifest: Value = match std::fs::read(&manifest_path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Value::Object(Map::new()),
        Err(e) => return Err(e),
    };
    if let Value::Object(m) = &mut manifest {
        m.insert("replays".into(), Value::Array(summary));
        m.insert("written".into(), serde_json::to_value(&*written).map_err(io::Error::other)?);
    }
    std::fs::write(&manifest_path, serde_json::to_vec_pretty(&manifest).map_err(io::Error::other)?)?;
    let mut readme = std::fs::OpenOptions::new().append(true).create(true).open(dir.join("README.md"))?;
    readme.write_all(readme_section(sim, replayed).as_bytes())?;
    Ok(())
}

fn readme_section(sim: &Simulation, replayed: &[Replayed]) -> String {
    let mut s = String::from(
        "\n## Replayed attack telemetry (`--replay`)\n\n\
         Recorded CloudTrail detonations, moved onto the simulation's clock (relative spacing kept), its account \
         and, for an attacking IAM user, a simulated person's long-lived IAM user; source IPs and user agents as \
         recorded. Files `…_replay_<name>.json.gz`; every record of a detonation file labelled `likely_malicious`, \
         and of a recording (`replay:<directory>`) only those whose user agent marks the attack tool.\n\n",
    );
    for r in replayed {
        let mut who = r.attacker.as_ref().map_or(String::new(), |(from, to)| format!(", `{from}` as `{to}`"));
        for (from, to) in &r.others {
            match to {
                Some(to) => who.push_str(&format!(", `{from}` as `{to}`")),
                None => who.push_str(&format!(", `{from}` kept")),
            }
        }
        let labelled = match &r.label_agent {
            Some(agent) => format!(" ({} labelled: user agent `{agent}…`)", r.labels.len()),
            None => String::new(),
        };
        s.push_str(&format!(
            "- `{}`: {} records{labelled} from {} at {}{who}\n",
            r.scenario,
            r.records.len(),
            r.path.display(),
            Timestamp::from_unix_seconds(sim.abs(r.at))
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_move_in_their_own_layout() {
        let day = 86_400;
        assert_eq!(shift_time("2024-08-01T13:33:28Z", day).as_deref(), Some("2024-08-02T13:33:28Z"));
        assert_eq!(shift_time("2024-12-31T23:59:59Z", 1).as_deref(), Some("2025-01-01T00:00:00Z"));
        assert_eq!(shift_time("2024-08-01T13:56:39.832628281Z", 60).as_deref(), Some("2024-08-01T13:57:39.832628281Z"));
        assert_eq!(shift_time("2024-07-30T21:57:15.000+0000", -3600).as_deref(), Some("2024-07-30T20:57:15.000+0000"));
        assert_eq!(shift_time("2024-07-30T21:57:15+02:00", 1).as_deref(), Some("2024-07-30T21:57:16+02:00"));
        assert_eq!(shift_time("Aug 1, 2024 1:33:28 PM", 3600).as_deref(), Some("Aug 1, 2024 2:33:28 PM"));
        assert_eq!(shift_time("Aug 2, 2024, 8:44:59 AM", 12 * 3600).as_deref(), Some("Aug 2, 2024, 8:44:59 PM"));
        assert_eq!(shift_time("Jul 31, 2024, 11:07:33 PM", 3600).as_deref(), Some("Aug 1, 2024, 12:07:33 AM"));
        // Not dates, or not wholly: left alone.
        for s in [
            "anthropic.claude-3-sonnet-20240229-v1:0",
            "tf-r53-resolver-query-log-config-20240731142344425800000001",
            "2024-08-01T13:33:28Z trailing",
            "2024-08-01T13:33:28.Z",
            "2024-13-01T13:33:28Z",
            "Aug 1, 2024 13:33:28 PM",
            "",
        ] {
            assert_eq!(shift_time(s, 10), None, "{s}");
        }
        // Off the end of the layout's years: not rewritten rather than wrong.
        assert_eq!(shift_time("9999-12-31T23:59:59Z", 10), None);
        assert_eq!(shift_time("Dec 31, 9999 11:59:59 PM", 10), None);
        assert_eq!(shift_time("2024-08-01T13:33:28Z", i64::MAX), None);
    }

    #[test]
    fn replacement_is_one_pass_and_respects_word_bounds() {
        let rw = Rewrite {
            delta: 0,
            patterns: vec![
                Pattern::new(
                    "arn:aws:iam::111122223333:user/bob",
                    "arn:aws:iam::999988887777:user/bob.smith",
                    Bound::IamNameAfter,
                ),
                Pattern::new("111122223333", "999988887777", Bound::None),
                Pattern::new("bob", "bob.smith", Bound::Word),
            ],
            account_number: None,
        };
        let r = |s: &str| rw.replace(s).unwrap_or_else(|| s.to_string());
        assert_eq!(r("arn:aws:iam::111122223333:user/bob"), "arn:aws:iam::999988887777:user/bob.smith");
        assert_eq!(
            r("User: arn:aws:iam::111122223333:user/bob is not"),
            "User: arn:aws:iam::999988887777:user/bob.smith is not"
        );
        // Another user whose name starts with the attacker's keeps it.
        assert_eq!(r("arn:aws:iam::111122223333:user/bobby"), "arn:aws:iam::999988887777:user/bobby");
        assert_eq!(r("bob-abc123"), "bob.smith-abc123");
        assert_eq!(r("bob"), "bob.smith");
        assert_eq!(r("kebob"), "kebob");
        assert_eq!(rw.replace("nothing here"), None);
    }

    #[test]
    fn specs_read_an_optional_day() {
        let s = |x: &str| x.parse::<Spec>();
        assert_eq!(s("a/b.json@8"), Ok(Spec { path: "a/b.json".into(), day: Some(8) }));
        assert_eq!(s("a/b.json"), Ok(Spec { path: "a/b.json".into(), day: None }));
        assert_eq!(s("me@host/b.json"), Ok(Spec { path: "me@host/b.json".into(), day: None }));
        assert!(s("@3").is_err());
        assert!(s("").is_err());
        assert!(s("x@99999999999").is_err());
    }
}
