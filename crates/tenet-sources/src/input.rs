//! Where telemetry comes from: files, directories (recursive), gzip, stdin.

use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;

use flate2::read::MultiGzDecoder;

use crate::format::{self, Format};

/// Decompressed inputs larger than this are refused rather than exhausting
/// memory: a gzip bomb is bad input, not a reason to fall over.
pub const MAX_INPUT_BYTES: u64 = 4 << 30;

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
    #[error("{path}: decompressed input exceeds {limit} bytes")]
    TooLarge { path: String, limit: u64 },
    #[error("{path}: not valid gzip: {source}")]
    Gzip { path: String, source: io::Error },
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

/// Reads a whole input into memory, decompressing gzip (by magic number,
/// not by name).
pub fn load(input: &InputFile) -> Result<Vec<u8>, InputError> {
    let name = input.display();
    let raw = if input.is_stdin() {
        let mut buf = Vec::new();
        io::stdin()
            .lock()
            .take(MAX_INPUT_BYTES + 1)
            .read_to_end(&mut buf)
            .map_err(|e| InputError::Io { path: name.clone(), source: e })?;
        buf
    } else {
        let f = File::open(&input.path).map_err(|e| InputError::Io { path: name.clone(), source: e })?;
        let mut buf = Vec::new();
        f.take(MAX_INPUT_BYTES + 1)
            .read_to_end(&mut buf)
            .map_err(|e| InputError::Io { path: name.clone(), source: e })?;
        buf
    };
    if raw.len() as u64 > MAX_INPUT_BYTES {
        return Err(InputError::TooLarge { path: name, limit: MAX_INPUT_BYTES });
    }
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len() * 8);
        MultiGzDecoder::new(&raw[..])
            .take(MAX_INPUT_BYTES + 1)
            .read_to_end(&mut out)
            .map_err(|e| InputError::Gzip { path: name.clone(), source: e })?;
        if out.len() as u64 > MAX_INPUT_BYTES {
            return Err(InputError::TooLarge { path: name, limit: MAX_INPUT_BYTES });
        }
        return Ok(out);
    }
    Ok(raw)
}

/// Picks the format for `data`: the override if given, else by content.
pub fn choose(data: &[u8], forced: Option<&'static dyn Format>) -> Option<&'static dyn Format> {
    forced.or_else(|| format::detect(data))
}
