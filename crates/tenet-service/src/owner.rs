//! Which process runs the live service on a data directory. The service
//! holds an exclusive lock on `<data>/service.lock` for as long as it runs
//! (the OS drops it when the process ends, however it ends) and writes its
//! pid and address there. Batch commands that analyse (`tenet ingest`,
//! `tenet analyse`) would keep a second learner beside the live one, so
//! they ask first and are refused while a service runs.

use std::fs::File;
use std::path::{Path, PathBuf};

/// The running service's claim on a data directory; released on drop.
pub struct Claim {
    _file: File,
    path: PathBuf,
}

fn lock_path(data_dir: &Path) -> PathBuf {
    data_dir.join("service.lock")
}

#[cfg(unix)]
fn try_lock(f: &File) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor this function's caller owns.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) { Ok(false) } else { Err(e) }
}

#[cfg(not(unix))]
fn try_lock(_: &File) -> std::io::Result<bool> {
    Ok(true)
}

/// Claims `data_dir` for a service at `addr`; `Err` names the process that
/// holds it.
pub fn claim(data_dir: &Path, addr: &str) -> Result<Claim, String> {
    let path = lock_path(data_dir);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    match try_lock(&file) {
        Ok(true) => {
            use std::io::{Seek, Write};
            let mut f = &file;
            let _ = f.set_len(0).and_then(|()| f.seek(std::io::SeekFrom::Start(0)).map(|_| ()));
            let _ = writeln!(f, "pid {} addr {addr}", std::process::id());
            Ok(Claim { _file: file, path })
        }
        Ok(false) => Err(holder(&path)),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

fn holder(path: &Path) -> String {
    let who = std::fs::read_to_string(path).unwrap_or_default();
    format!("a running Tenet service ({}) owns this data directory", who.trim())
}

/// Whether a live service runs on `data_dir`: `Some(who)` if so.
pub fn running(data_dir: &Path) -> Option<String> {
    let path = lock_path(data_dir);
    let file = File::options().read(true).write(true).open(&path).ok()?;
    match try_lock(&file) {
        // Free: nobody runs (the lock goes with `file`).
        Ok(true) => None,
        Ok(false) => Some(holder(&path)),
        Err(_) => None,
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.path, b"");
    }
}
