//! `tenet ssf`: the Shared Signals transmitter's keys and streams, for
//! operators. A running service on the same data directory sees a key
//! rotation within a second.

use anyhow::{Context, Result};
use clap::Subcommand;
use tenet_service::signals::keys::{KeyRing, KeysAt};
use tenet_store::ssf::SsfStore;

use super::Outcome;

#[derive(Subcommand)]
pub enum SsfCommand {
    /// Sign SETs with a new key from now on; the previous key stays in the
    /// JWKS until `retire-key`, so receivers can still verify what it signed.
    RotateKey,
    /// Stop publishing the key a rotation replaced.
    RetireKey,
    /// Every receiver's stream: delivery, status, what is waiting and what failed.
    Streams {
        #[arg(long)]
        json: bool,
    },
}

pub fn run(place: &super::Place, command: SsfCommand) -> Result<Outcome> {
    let keys = KeysAt::of(&place.dir, &place.store);
    match command {
        SsfCommand::RotateKey => {
            let kid = KeyRing::rotate(&keys)?;
            outln!(
                "SETs are signed with key {kid} from now on; the previous key stays published until `tenet ssf retire-key`"
            );
        }
        SsfCommand::RetireKey => match KeyRing::retire(&keys)? {
            Some(kid) => outln!("key {kid} is no longer published"),
            None => outln!("no previous key to retire"),
        },
        SsfCommand::Streams { json } => {
            let at = place.store.ssf();
            if let tenet_store::TablesAt::File(path) = &at
                && !path.exists()
            {
                return Ok(Outcome::Ok);
            }
            let store = SsfStore::open(&at).with_context(|| format!("opening the Shared Signals state in {at}"))?;
            for s in store.streams()? {
                let pending = store.pending_count(&s.config.stream_id)?;
                let c = &s.config;
                if json {
                    outln!(
                        "{}",
                        serde_json::json!({"stream_id": c.stream_id, "receiver": s.owner, "aud": c.aud,
                            "method": c.delivery.method(), "endpoint_url": c.delivery.endpoint_url(),
                            "status": s.status.as_str(), "reason": s.reason, "events_delivered": c.events_delivered,
                            "pending": pending, "delivered": s.delivered, "failed": s.failed, "last_error": s.last_error})
                    );
                } else {
                    outln!(
                        "{}  {:<16} {:<9} {} → {}  pending {pending}, delivered {}, failed {}{}",
                        c.stream_id,
                        s.owner,
                        s.status.as_str(),
                        if c.delivery.method() == tenet_ssf::PUSH { "push" } else { "poll" },
                        c.delivery.endpoint_url(),
                        s.delivered,
                        s.failed,
                        s.last_error.as_deref().map(|e| format!(" (last error: {e})")).unwrap_or_default()
                    );
                }
            }
        }
    }
    Ok(Outcome::Ok)
}
