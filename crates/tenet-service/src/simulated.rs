//! The simulator as the service's input (`tenet demo`): each minute of
//! simulated time is rendered into the formats real systems write
//! (CloudTrail, OTLP, Okta, Kubernetes audit), released once an
//! accelerated clock passes it, read through format detection and the
//! adapters, and queued into the live pipeline like any delivery. The
//! simulated inventory is imported as the clock reaches each collection.
//! The first `backfill_hours` go in at once, so the live part starts with
//! history behind it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tenet_model::Timestamp;
use tenet_pipeline::ingest::Rejection;
use tenet_pipeline::trust::InventoryFile;
use tenet_server::intake::{Answer, Refusal};
use tenet_sim::Simulation;
use tokio::sync::oneshot;

use crate::live::{Inlet, Work};

/// How the simulation is paced.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Simulated seconds per real second once the backfill is done.
    pub speed: f64,
    /// Simulated hours fed at once before going live.
    pub backfill_hours: u32,
}

/// What the feed did, when it ends.
#[derive(Debug, Default, Clone, Copy)]
pub struct Fed {
    pub deliveries: u64,
    pub refused: u64,
    /// Whether it fed the whole simulated period.
    pub complete: bool,
}

fn wait(answer: oneshot::Receiver<Answer>) -> Answer {
    answer.blocking_recv().unwrap_or_else(|_| {
        Err(Refusal::Unavailable { message: "the pipeline stopped before storing".into(), retry_after: 5 })
    })
}

/// Feeds `sim` into `inlet` until done or `stop`; each delivery waits for
/// its commit, so what the feed counted is stored.
pub fn feed(sim: &Simulation, inlet: &Inlet, stop: &AtomicBool, pace: Pace) -> Fed {
    let mut fed = Fed::default();
    let speed = pace.speed.max(1.0);
    let live_from = sim.abs(i64::from(pace.backfill_hours.min(sim.hours())) * tenet_sim::HOUR);
    let mut live_start: Option<Instant> = None;
    let mut collections = tenet_sim::inventory::snapshot_times(sim).into_iter().peekable();
    let submit = |work: Work, answer: oneshot::Receiver<Answer>, fed: &mut Fed| -> bool {
        if inlet.submit_waiting(work).is_err() {
            return false;
        }
        fed.deliveries += 1;
        if let Err(e) = wait(answer) {
            fed.refused += 1;
            tracing::warn!(?e, "a simulated delivery was refused");
        }
        true
    };
    for h in 0..sim.hours() {
        if stop.load(Ordering::Acquire) {
            return fed;
        }
        while let Some(t) = collections.next_if(|&t| t < i64::from(h + 1) * tenet_sim::HOUR) {
            let files = tenet_sim::inventory::snapshot(sim, t)
                .into_iter()
                .map(|(name, data)| InventoryFile { name: format!("simulated {name}"), data, explicit: true })
                .collect();
            let at = Timestamp::from_unix_seconds(sim.abs(t));
            let (reply, answer) = oneshot::channel();
            if !submit(Work::Inventory { files, at, reply: Some(reply) }, answer, &mut fed) {
                return fed;
            }
        }
        let mut hour = tenet_sim::output::render_hour(sim, h, 60, false);
        hour.chunks.sort_by_key(|c| c.until);
        for chunk in hour.chunks {
            if chunk.until > live_from {
                let started = *live_start.get_or_insert_with(Instant::now);
                // Wait for the accelerated clock to pass the chunk's end.
                loop {
                    if stop.load(Ordering::Acquire) {
                        return fed;
                    }
                    let clock = live_from as f64 + started.elapsed().as_secs_f64() * speed;
                    if clock >= chunk.until as f64 {
                        break;
                    }
                    let wait = ((chunk.until as f64 - clock) / speed).min(0.2);
                    std::thread::sleep(Duration::from_secs_f64(wait.max(0.001)));
                }
            }
            let Some(format) = tenet_sources::format::by_name(chunk.format) else { continue };
            let origin = format!("simulator ({})", chunk.format);
            let (mut events, mut rejections) = (Vec::new(), Vec::new());
            format.read(&Bytes::from(chunk.bytes), &mut |r| match r {
                Ok(e) => events.push(e),
                Err(err) => rejections.push(Rejection::of(&origin, err)),
            });
            let (reply, answer) = oneshot::channel();
            let work = Work::Events(crate::live::Delivered {
                origin,
                format: format.name(),
                events,
                rejections,
                spans: None,
                reply: Some(reply),
            });
            if !submit(work, answer, &mut fed) {
                return fed;
            }
        }
    }
    fed.complete = true;
    fed
}
