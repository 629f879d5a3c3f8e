//! Where telemetry comes from: files, directories (recursive), gzip, stdin.
//!
//! Every input is read through [`InputLimits`]: a compressed input may not
//! expand past a size or a ratio (a decompression bomb is bad input, not a
//! reason to fall over), and nothing is held whole that need not be. Gzip is
//! decompressed as it is read, never buffered compressed; a line-delimited
//! input longer than one window is read a window of whole lines at a time,
//! so memory follows the window, not the file; documents (arrays, delivery
//! files, OTLP requests) are held whole, up to the limits.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;

use bytes::Bytes;
use flate2::read::MultiGzDecoder;
use memchr::memrchr;
use tenet_model::Event;

use crate::format::{self, Format};
use crate::framing::{self, RecordError};

/// The default for [`InputLimits::max_input_bytes`].
pub const MAX_INPUT_BYTES: u64 = 4 << 30;

/// How much of a line-delimited input is read, framed and parsed at a time.
/// Four times the largest record a format accepts, so a legitimate record
/// always fits in a window with room for its neighbours.
pub const WINDOW_BYTES: usize = 4 * crate::json::MAX_RECORD_BYTES;

/// Decompressed bytes between two checks of the limits.
const CHECK_BYTES: usize = 1 << 20;

/// What one input may cost to read. The defaults hold on a 2-core, 24 GiB
/// machine with room for the rest of the pipeline: one gzip file at the cap
/// is 1 GiB in memory, and a line-delimited one is read in windows anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputLimits {
    /// The most bytes one uncompressed input is read into memory whole (a
    /// document; line-delimited input is read in windows and never whole).
    pub max_input_bytes: u64,
    /// The most bytes one compressed input may decompress to.
    pub max_decompressed_bytes: u64,
    /// The most a compressed input may expand: decompressed bytes per
    /// compressed byte. Real telemetry compresses 5–20:1; a bomb, ~1000:1.
    pub max_expansion_ratio: u64,
    /// Decompressed size under which the ratio is not checked: a small file
    /// of repeated records may legitimately compress past any ratio.
    pub expansion_floor_bytes: u64,
}

impl Default for InputLimits {
    fn default() -> Self {
        InputLimits {
            max_input_bytes: MAX_INPUT_BYTES,
            max_decompressed_bytes: 1 << 30,
            max_expansion_ratio: 100,
            expansion_floor_bytes: 1 << 20,
        }
    }
}

/// One file to read, and whether the user named it (named files that are
/// not telemetry are rejections; files met in a directory walk are skipped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFile {
    pub path: PathBuf,
    pub explicit: bool,
}

impl InputFile {
    pub fn is_stdin(&self) -> bool {
        self.path.as_os_str() == "-"
    }

    pub fn display(&self) -> String {
        if self.is_stdin() { "<stdin>".to_string() } else { self.path.display().to_string() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("{path}: refused: larger than {}, the most of one input read into memory whole", bytes(*.limit))]
    TooLarge { path: String, limit: u64 },
    #[error("{path}: not valid gzip: {source}")]
    Gzip { path: String, source: io::Error },
    #[error("{path}: refused: decompresses to more than {}, the limit for one file", bytes(*.limit))]
    Decompressed { path: String, limit: u64 },
    #[error(
        "{path}: refused: expands more than {ratio}:1 ({} compressed became over {}), a likely decompression bomb",
        bytes(*.compressed), bytes(*.decompressed)
    )]
    Expansion { path: String, ratio: u64, compressed: u64, decompressed: u64 },
}

impl InputError {
    /// Whether the input broke a limit (as opposed to being unreadable).
    pub fn is_limit(&self) -> bool {
        matches!(self, InputError::TooLarge { .. } | InputError::Decompressed { .. } | InputError::Expansion { .. })
    }
}

/// `1 GiB`, `254.4 KiB`, `812 bytes`: sizes as people read them.
fn bytes(n: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (unit, name) in UNITS {
        if n >= unit {
            return if n.is_multiple_of(unit) {
                format!("{} {name}", n / unit)
            } else {
                format!("{:.1} {name}", n as f64 / unit as f64)
            };
        }
    }
    format!("{n} bytes")
}

/// Expands paths into files: directories recursively, in name order so runs
/// are reproducible; hidden files and directories are left out of walks.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<InputFile>, InputError> {
    let mut out = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" {
            out.push(InputFile { path: p.clone(), explicit: true });
            continue;
        }
        let meta = std::fs::metadata(p).map_err(|e| InputError::Io { path: p.display().to_string(), source: e })?;
        if !meta.is_dir() {
            out.push(InputFile { path: p.clone(), explicit: true });
            continue;
        }
        let walk = walkdir::WalkDir::new(p)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
        for entry in walk {
            let entry = entry.map_err(|e| InputError::Io {
                path: e.path().unwrap_or(p).display().to_string(),
                source: e.into_io_error().unwrap_or_else(|| io::Error::other("directory loop")),
            })?;
            if entry.file_type().is_file() {
                out.push(InputFile { path: entry.into_path(), explicit: false });
            }
        }
    }
    Ok(out)
}

/// Counts the compressed bytes the decoder has pulled, for the ratio.
struct Counted {
    inner: Box<dyn Read + Send>,
    count: u64,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

enum Decoder {
    Plain(Box<dyn Read + Send>),
    Gzip(Box<MultiGzDecoder<Counted>>),
}

/// An input opened for reading, with its limits enforced as bytes arrive.
struct Opened {
    name: String,
    decoder: Decoder,
    limits: InputLimits,
    /// The compressed input's size, when known (a file; not stdin).
    compressed_len: Option<u64>,
    /// The size the content will have, when the input says so (a plain
    /// file's length, a gzip's recorded size): for allocating once. Never
    /// trusted as a limit.
    size_hint: Option<u64>,
    /// Content bytes produced so far.
    produced: u64,
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// A gzip file's last four bytes: the size of its (last member's) content,
/// modulo 4 GiB.
fn gzip_recorded_size(f: &mut File, len: u64) -> Option<u64> {
    if len < 18 {
        return None;
    }
    let mut tail = [0u8; 4];
    f.seek(SeekFrom::End(-4)).ok()?;
    let read = f.read_exact(&mut tail);
    f.seek(SeekFrom::Start(0)).ok()?;
    read.ok()?;
    Some(u32::from_le_bytes(tail) as u64)
}

impl Opened {
    /// Opens `input`, recognising gzip by its magic number, not its name.
    fn open(input: &InputFile, limits: &InputLimits) -> Result<Opened, InputError> {
        let name = input.display();
        let io_error = |e| InputError::Io { path: name.clone(), source: e };
        let (mut inner, len, recorded): (Box<dyn Read + Send>, Option<u64>, Option<u64>) = if input.is_stdin() {
            (Box::new(io::stdin()), None, None)
        } else {
            let mut f = File::open(&input.path).map_err(io_error)?;
            let meta = f.metadata().map_err(io_error)?;
            // A pipe or device has no length to judge a ratio by, nor a tail to seek to.
            let len = meta.is_file().then_some(meta.len());
            let recorded = len.and_then(|len| gzip_recorded_size(&mut f, len));
            (Box::new(f), len, recorded)
        };
        let mut head = [0u8; 2];
        let mut got = 0;
        while got < head.len() {
            match inner.read(&mut head[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_error(e)),
            }
        }
        let gzip = got == 2 && head == GZIP_MAGIC;
        let inner: Box<dyn Read + Send> = Box::new(io::Cursor::new(head[..got].to_vec()).chain(inner));
        let (decoder, size_hint) = if gzip {
            (Decoder::Gzip(Box::new(MultiGzDecoder::new(Counted { inner, count: 0 }))), recorded)
        } else {
            (Decoder::Plain(inner), len)
        };
        Ok(Opened { name, decoder, limits: *limits, compressed_len: len, size_hint, produced: 0 })
    }

    fn compressed(&self) -> bool {
        matches!(self.decoder, Decoder::Gzip(_))
    }

    /// The most content bytes this input may be read into memory whole.
    fn whole_limit(&self) -> u64 {
        if self.compressed() {
            self.limits.max_decompressed_bytes.min(self.limits.max_input_bytes)
        } else {
            self.limits.max_input_bytes
        }
    }

    /// Appends content to `buf` until it holds `upto` bytes or the input
    /// ends (then true). Limits are checked every [`CHECK_BYTES`], so the
    /// buffer never holds more than a limit plus that. Grows `buf` only when
    /// its capacity runs out: callers size it once.
    fn fill(&mut self, buf: &mut Vec<u8>, upto: usize, whole: bool) -> Result<bool, InputError> {
        while buf.len() < upto {
            let want = (upto - buf.len()).min(CHECK_BYTES) as u64;
            let before = buf.len();
            let result = match &mut self.decoder {
                Decoder::Plain(r) => r.take(want).read_to_end(buf),
                Decoder::Gzip(r) => r.take(want).read_to_end(buf),
            };
            let n = (buf.len() - before) as u64;
            self.produced += n;
            self.check(whole)?;
            if let Err(e) = result {
                return Err(match self.decoder {
                    Decoder::Gzip(_) => InputError::Gzip { path: self.name.clone(), source: e },
                    Decoder::Plain(_) => InputError::Io { path: self.name.clone(), source: e },
                });
            }
            if n < want {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn check(&self, whole: bool) -> Result<(), InputError> {
        let path = || self.name.clone();
        if let Decoder::Gzip(d) = &self.decoder {
            let limits = &self.limits;
            if self.produced > limits.max_decompressed_bytes {
                return Err(InputError::Decompressed { path: path(), limit: limits.max_decompressed_bytes });
            }
            // Against the whole file when its size is known, so the verdict
            // does not depend on how compressible its first part is.
            let compressed = self.compressed_len.unwrap_or(d.get_ref().count).max(1);
            if self.produced > limits.expansion_floor_bytes
                && self.produced > compressed.saturating_mul(limits.max_expansion_ratio)
            {
                return Err(InputError::Expansion {
                    path: path(),
                    ratio: limits.max_expansion_ratio,
                    compressed,
                    decompressed: self.produced,
                });
            }
        }
        if whole && self.produced > self.whole_limit() {
            return Err(InputError::TooLarge { path: path(), limit: self.whole_limit() });
        }
        Ok(())
    }
}

/// Reads a whole input into memory (decompressing gzip) within the default
/// limits: for inputs read whole by nature (inventory).
pub fn load(input: &InputFile) -> Result<Vec<u8>, InputError> {
    load_with(input, &InputLimits::default())
}

/// [`load`] within `limits`.
pub fn load_with(input: &InputFile, limits: &InputLimits) -> Result<Vec<u8>, InputError> {
    let mut opened = Opened::open(input, limits)?;
    let limit = opened.whole_limit();
    let mut buf = Vec::with_capacity(initial_capacity(&opened, limit));
    opened.fill(&mut buf, usize::try_from(limit.saturating_add(1)).unwrap_or(usize::MAX), true)?;
    Ok(buf)
}

/// What to allocate for content expected to be at most `limit` bytes: the
/// size the input declares (plus one byte, so reading up to the end needs
/// no second allocation), else a window.
fn initial_capacity(opened: &Opened, limit: u64) -> usize {
    let expected = opened.size_hint.map_or(WINDOW_BYTES as u64, |h| h.saturating_add(1));
    usize::try_from(expected.min(limit.saturating_add(1))).unwrap_or(WINDOW_BYTES)
}

/// Picks the format for `data`: the override if given, else by content.
pub fn choose(data: &[u8], forced: Option<&'static dyn Format>) -> Option<&'static dyn Format> {
    forced.or_else(|| format::detect(data))
}

/// What an input turned out to be.
pub enum Recognised {
    Telemetry(Box<Reading>),
    /// No record in it is recognisable as any format; `empty` when it holds
    /// nothing but whitespace.
    NotTelemetry {
        empty: bool,
    },
}

/// An input whose format is known, ready to be read.
pub struct Reading {
    format: &'static dyn Format,
    opened: Opened,
    body: Body,
    /// What stopped the input early (a gzip that breaks off, a read error),
    /// reported after the records read before it.
    pending: Option<InputError>,
}

enum Body {
    /// The whole content.
    Whole(Bytes),
    /// The first window of a line-delimited input, the rest still unread.
    Windows(Vec<u8>),
}

/// Opens `input` and recognises its format (`forced`, else by content). A
/// limit broken before the format is known refuses the input whole; a gzip
/// that breaks off keeps what came before the break, to be read with the
/// break reported after it.
pub fn recognise(
    input: &InputFile,
    forced: Option<&'static dyn Format>,
    limits: &InputLimits,
) -> Result<Recognised, InputError> {
    let mut opened = Opened::open(input, limits)?;
    let mut pending = None;
    let mut buf = Vec::with_capacity(initial_capacity(&opened, WINDOW_BYTES as u64));
    let ended = match opened.fill(&mut buf, WINDOW_BYTES, true) {
        Ok(ended) => ended,
        Err(e) if e.is_limit() || buf.is_empty() => return Err(e),
        Err(e) => {
            pending = Some(e);
            true
        }
    };
    let mut format = None;
    if !ended {
        format = forced.or_else(|| format::detect(&buf));
        if let Some(f) = format
            && f.windowed()
            && let Some(cut) = memrchr(b'\n', &buf)
            && framing::frame(&buf[..cut], f.wrappers()).lines
        {
            return Ok(Recognised::Telemetry(Box::new(Reading {
                format: f,
                opened,
                body: Body::Windows(buf),
                pending,
            })));
        }
        // A document: read it whole.
        let limit = opened.whole_limit();
        if let Some(hint) = opened.size_hint.filter(|&h| h > buf.len() as u64) {
            buf.reserve_exact(
                usize::try_from(hint.min(limit).saturating_add(1)).unwrap_or(0).saturating_sub(buf.len()),
            );
        }
        let upto = usize::try_from(limit.saturating_add(1)).unwrap_or(usize::MAX);
        match opened.fill(&mut buf, upto, true) {
            Ok(_) => {}
            Err(e) if e.is_limit() => return Err(e),
            Err(e) => pending = Some(e),
        }
    }
    let Some(format) = format.or_else(|| choose(&buf, forced)) else {
        // A break in a file that is not telemetry up to it says more than that.
        if let Some(e) = pending {
            return Err(e);
        }
        return Ok(Recognised::NotTelemetry { empty: buf.iter().all(u8::is_ascii_whitespace) });
    };
    Ok(Recognised::Telemetry(Box::new(Reading { format, opened, body: Body::Whole(Bytes::from(buf)), pending })))
}

impl Reading {
    pub fn format(&self) -> &'static dyn Format {
        self.format
    }

    /// Reads every record, handing `emit` each event or located error until
    /// it returns false, and `progress` the bytes of content read as they
    /// are. An input that stops early (a limit broken midway, a gzip that
    /// breaks off) has every record before the stop read, then the reason
    /// returned.
    pub fn read(
        self,
        emit: &mut dyn FnMut(Result<Event, RecordError>) -> bool,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), InputError> {
        let Reading { format, mut opened, body, pending } = self;
        match body {
            Body::Whole(data) => {
                progress(data.len() as u64);
                let mut go_on = true;
                format.read(&data, &mut |r| {
                    if go_on {
                        go_on = emit(r);
                    }
                });
            }
            Body::Windows(first) => read_windows(format, &mut opened, first, emit, progress)?,
        }
        pending.map_or(Ok(()), Err)
    }
}

/// Reads a line-delimited input a window at a time: each window ends at its
/// last newline (the partial line after it starts the next window), is
/// framed one record per line with record indices and line numbers counted
/// from the start of the input, and is read on its own. Events keep their
/// window's bytes (their raw records are slices of it), and a window is
/// freed once its events are.
fn read_windows(
    format: &'static dyn Format,
    opened: &mut Opened,
    first: Vec<u8>,
    emit: &mut dyn FnMut(Result<Event, RecordError>) -> bool,
    progress: &mut dyn FnMut(u64),
) -> Result<(), InputError> {
    // Whether the receiver still wants records: once not, no more is read.
    let go_on = std::cell::Cell::new(true);
    let mut emit = |r: Result<Event, RecordError>| {
        if go_on.get() {
            go_on.set(emit(r));
        }
    };
    let (mut index, mut lines_before) = (0usize, 0usize);
    let mut buf = first;
    let mut ended = false;
    let mut stop = None;
    loop {
        let cut = if ended {
            buf.len()
        } else {
            match memrchr(b'\n', &buf) {
                Some(nl) => nl + 1,
                None => {
                    // One line longer than a window: far over the limit for
                    // a record. Reject it by its line and skip to its end.
                    emit(Err(RecordError::new(
                        framing::Location { line: lines_before + 1, index: Some(index), path: None },
                        format!(
                            "record is over {} bytes, past the {} MiB limit for one record",
                            WINDOW_BYTES,
                            crate::json::MAX_RECORD_BYTES >> 20
                        ),
                    )));
                    index += 1;
                    lines_before += 1;
                    progress(buf.len() as u64);
                    match skip_line(opened) {
                        Ok((rest, done)) => {
                            buf = rest;
                            ended = done;
                            continue;
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        };
        let mut next = Vec::with_capacity(WINDOW_BYTES);
        next.extend_from_slice(&buf[cut..]);
        buf.truncate(cut);
        let window = Bytes::from(buf);
        progress(window.len() as u64);
        let framed = framing::frame_lines(&window, index);
        index += framed.records.len();
        format.read_records(&window, &framed.records, &mut |r| {
            emit(r.map_err(|mut e| {
                e.location.line += lines_before;
                e
            }))
        });
        lines_before += memchr::memchr_iter(b'\n', &window).count();
        buf = next;
        if !go_on.get() {
            return Ok(());
        }
        if ended {
            if buf.is_empty() {
                return stop.map_or(Ok(()), Err);
            }
            continue;
        }
        match opened.fill(&mut buf, WINDOW_BYTES, false) {
            Ok(done) => ended = done,
            // What was read before the stop is still read, as the last window.
            Err(e) => {
                stop = Some(e);
                ended = true;
            }
        }
    }
}

/// Discards input up to and including the next newline; returns what
/// follows it (up to a window) and whether the input ended.
fn skip_line(opened: &mut Opened) -> Result<(Vec<u8>, bool), InputError> {
    let mut buf = Vec::with_capacity(WINDOW_BYTES);
    loop {
        buf.clear();
        let ended = opened.fill(&mut buf, WINDOW_BYTES, false)?;
        if let Some(nl) = memchr::memchr(b'\n', &buf) {
            buf.drain(..=nl);
            let ended = if ended { true } else { opened.fill(&mut buf, WINDOW_BYTES, false)? };
            return Ok((buf, ended));
        }
        if ended {
            buf.clear();
            return Ok((buf, true));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::formats::cloudtrail::CloudTrail;

    fn ct(id: usize) -> String {
        format!(
            r#"{{"eventTime":"2024-08-01T11:30:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","eventID":"id{id}","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::1:user/a"}},"requestParameters":{{"bucketName":"b","key":"reports/{id:08}.csv"}}}}"#
        )
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    fn file(dir: &tempfile::TempDir, name: &str, data: &[u8]) -> InputFile {
        let path = dir.path().join(name);
        std::fs::write(&path, data).unwrap();
        InputFile { path, explicit: true }
    }

    /// Everything a reading yields: events' ids, errors, and how it stopped.
    fn read(reading: Reading) -> (Vec<String>, Vec<RecordError>, Result<(), InputError>) {
        let (mut ids, mut errors) = (Vec::new(), Vec::new());
        let stopped = reading.read(
            &mut |r| {
                match r {
                    Ok(e) => ids.push(e.id.to_string()),
                    Err(e) => errors.push(e),
                }
                true
            },
            &mut |_| {},
        );
        (ids, errors, stopped)
    }

    fn telemetry(r: Result<Recognised, InputError>) -> Reading {
        match r {
            Ok(Recognised::Telemetry(reading)) => *reading,
            Ok(Recognised::NotTelemetry { empty }) => panic!("not telemetry (empty: {empty})"),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn a_gzip_expanding_past_the_ratio_is_refused_naming_the_file_and_the_ratio() {
        let dir = tempfile::tempdir().unwrap();
        let bomb = file(&dir, "bomb.json.gz", &gzip(&vec![b' '; 32 << 20]));
        let err = recognise(&bomb, None, &InputLimits::default()).err().expect("refused");
        assert!(matches!(err, InputError::Expansion { ratio: 100, .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("bomb.json.gz") && msg.contains("100:1"), "{msg}");
        // Refused as soon as the ratio is passed, not after inflating it all.
        let InputError::Expansion { decompressed, compressed, .. } = err else { unreachable!() };
        assert!(decompressed <= compressed * 100 + CHECK_BYTES as u64, "{decompressed}");
    }

    #[test]
    fn a_gzip_decompressing_past_the_cap_is_refused_naming_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let records: Vec<String> = (0..4000).map(ct).collect();
        let delivery = format!("{{\"Records\":[{}]}}", records.join(","));
        let gz = file(&dir, "delivery.json.gz", &gzip(delivery.as_bytes()));
        let limits = InputLimits { max_decompressed_bytes: 256 << 10, ..InputLimits::default() };
        let err = recognise(&gz, None, &limits).err().expect("refused");
        assert!(matches!(err, InputError::Decompressed { limit, .. } if limit == 256 << 10), "{err}");
        assert!(err.to_string().contains("256 KiB"), "{err}");
        // Within the limits it is read whole.
        let (ids, errors, stopped) = read(telemetry(recognise(&gz, None, &InputLimits::default())));
        assert_eq!((ids.len(), errors.len()), (4000, 0));
        assert!(stopped.is_ok());
    }

    #[test]
    fn a_small_gzip_is_not_judged_by_its_ratio() {
        // 512 KiB of one repeated record compresses ~300:1: small enough to pass.
        let dir = tempfile::tempdir().unwrap();
        let line = format!("{}\n", ct(1));
        let data = line.repeat((512 << 10) / line.len());
        let gz = file(&dir, "repeated.json.gz", &gzip(data.as_bytes()));
        let (ids, errors, stopped) = read(telemetry(recognise(&gz, None, &InputLimits::default())));
        assert_eq!(ids.len(), (512 << 10) / line.len());
        assert!(errors.is_empty() && stopped.is_ok());
    }

    #[test]
    fn a_gzip_that_breaks_off_keeps_the_records_before_the_break() {
        let dir = tempfile::tempdir().unwrap();
        let records: Vec<String> = (0..2000).map(ct).collect();
        let gz = gzip(format!("[\n{}\n]\n", records.join(",\n")).as_bytes());
        let cut = file(&dir, "upload.json.gz", &gz[..gz.len() / 2]);
        let (ids, errors, stopped) = read(telemetry(recognise(&cut, None, &InputLimits::default())));
        assert!(ids.len() > 100 && ids.len() < 2000, "{}", ids.len());
        assert_eq!(ids[..3], ["id0", "id1", "id2"]);
        // The record the break cut through is named; the break itself is returned.
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(matches!(stopped, Err(InputError::Gzip { .. })), "{stopped:?}");
    }

    #[test]
    fn a_long_ndjson_input_is_read_in_windows_with_records_and_lines_counted_from_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let mut data = String::new();
        let mut n = 0;
        let (mut bad_index, mut bad_line) = (None, 0);
        while data.len() < WINDOW_BYTES + (3 << 20) {
            if bad_index.is_none() && data.len() > WINDOW_BYTES + (1 << 20) {
                // A bad line in the second window, and a blank one before it.
                data.push('\n');
                data.push_str("{\"eventTime\":7}\n");
                bad_line = data.matches('\n').count();
                bad_index = Some(n);
            }
            data.push_str(&ct(n));
            data.push('\n');
            n += 1;
        }
        let input = file(&dir, "export.ndjson", data.as_bytes());
        let reading = telemetry(recognise(&input, None, &InputLimits::default()));
        assert!(matches!(reading.body, Body::Windows(_)));
        assert_eq!(reading.format().name(), "cloudtrail");
        let mut windows = 0;
        let (mut ids, mut errors) = (Vec::new(), Vec::new());
        reading
            .read(
                &mut |r| {
                    match r {
                        Ok(e) => ids.push(e.id.to_string()),
                        Err(e) => errors.push(e),
                    }
                    true
                },
                &mut |_| windows += 1,
            )
            .unwrap();
        assert!(windows >= 2);
        assert_eq!(ids.len(), n);
        assert_eq!(ids.last().unwrap(), &format!("id{}", n - 1));
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].location.index, bad_index);
        assert_eq!(errors[0].location.line, bad_line);
        // Read whole, the same file says the same.
        let whole = crate::read_all(&CloudTrail, data.as_bytes());
        assert_eq!(whole.0.len(), n);
        assert_eq!(whole.1[0].location, errors[0].location);
    }

    #[test]
    fn a_line_longer_than_a_window_is_rejected_by_its_line_and_the_lines_after_it_read() {
        let dir = tempfile::tempdir().unwrap();
        let before: Vec<String> = (0..10_000).map(ct).collect();
        let huge = ct(10_000).replace("reports/", &"x".repeat(WINDOW_BYTES + 1024));
        let data = format!("{}\n{huge}\n{}\n{}\n", before.join("\n"), ct(10_001), ct(10_002));
        let input = file(&dir, "export.ndjson", data.as_bytes());
        let reading = telemetry(recognise(&input, None, &InputLimits::default()));
        assert!(matches!(reading.body, Body::Windows(_)));
        let (ids, errors, stopped) = read(reading);
        assert_eq!(ids.len(), 10_002);
        assert_eq!(ids[9_999..], ["id9999", "id10001", "id10002"]);
        assert_eq!(errors.len(), 1);
        assert_eq!((errors[0].location.index, errors[0].location.line), (Some(10_000), 10_001));
        assert!(errors[0].reason.contains("limit"), "{}", errors[0].reason);
        assert!(stopped.is_ok());
    }

    #[test]
    fn a_plain_document_over_the_whole_input_limit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let records: Vec<String> = (0..2000).map(ct).collect();
        let input = file(&dir, "big.json", format!("[{}]", records.join(",")).as_bytes());
        let limits = InputLimits { max_input_bytes: 64 << 10, ..InputLimits::default() };
        assert!(matches!(load_with(&input, &limits), Err(InputError::TooLarge { .. })));
        assert!(load_with(&input, &InputLimits::default()).is_ok());
    }
}
