//! Telemetry received over HTTP, parsed here (on the runtime's blocking
//! threads, so a large or malformed body never holds up the pipeline or
//! another request) into events and located rejections, then queued for
//! the pipeline thread, whose answer comes once they are committed.

use std::future::Future;
use std::pin::Pin;

use tenet_model::Timestamp;
use tenet_pipeline::ingest::Rejection;
use tenet_pipeline::trust::InventoryFile;
use tenet_server::intake::{Answer, Intake, Payload, Refusal, Submission};
use tenet_sources::delivery::{self, Delivery};
use tokio::sync::oneshot;

use crate::live::{Delivered, Inlet, Work};

/// The HTTP edge's [`Intake`]: parse, queue, answer once committed.
pub struct HttpIntake {
    pub inlet: Inlet,
}

impl Intake for HttpIntake {
    fn submit(&self, submission: Submission) -> Pin<Box<dyn Future<Output = Answer> + Send>> {
        let inlet = self.inlet.clone();
        Box::pin(async move {
            let (reply, answer) = oneshot::channel();
            let work = tokio::task::spawn_blocking(move || parse(submission, reply))
                .await
                .map_err(|e| Refusal::Unavailable { message: format!("parsing failed: {e}"), retry_after: 1 })??;
            inlet.try_submit(work)?;
            answer.await.unwrap_or_else(|_| {
                Err(Refusal::Unavailable { message: "the pipeline stopped before storing".into(), retry_after: 5 })
            })
        })
    }
}

impl tenet_server::principals::Verdicts for HttpIntake {
    fn record(
        &self,
        name: String,
        verdict: tenet_model::Verdict,
        reason: String,
        by: String,
    ) -> Pin<Box<dyn Future<Output = Result<tenet_model::PrincipalVerdict, tenet_server::principals::Refusal>> + Send>>
    {
        use tenet_server::principals::Refusal as R;
        let inlet = self.inlet.clone();
        Box::pin(async move {
            let (reply, answer) = oneshot::channel();
            inlet.try_submit(Work::Verdict { name, verdict, reason, by, reply }).map_err(|r| match r {
                Refusal::Busy { .. } => R::Unavailable("the pipeline's queue is full; retry shortly".into()),
                Refusal::Invalid { message, .. } | Refusal::Unavailable { message, .. } => R::Unavailable(message),
            })?;
            answer.await.unwrap_or_else(|_| Err(R::Unavailable("the pipeline stopped before recording".into())))
        })
    }
}

/// Events, with the records that could not be read, from one body.
pub fn parse(s: Submission, reply: oneshot::Sender<Answer>) -> Result<Work, Refusal> {
    let Submission { payload, body, origin } = s;
    let delivery = match &payload {
        Payload::Events { format } => Delivery::Records { format: format.as_deref() },
        Payload::OtlpTraces { protobuf } => Delivery::OtlpTraces { protobuf: *protobuf },
        Payload::OktaHook => Delivery::OktaEventHook,
        Payload::Inventory { at } => {
            let at = match at {
                Some(t) => Timestamp::parse_rfc3339(t)
                    .map_err(|e| Refusal::Invalid { code: "invalid_at", message: format!("at={t:?}: {e}") })?,
                None => Timestamp::now(),
            };
            return Ok(Work::Inventory {
                files: vec![InventoryFile { name: origin, data: body.to_vec(), explicit: true }],
                at,
                reply: Some(reply),
            });
        }
    };
    let (mut events, mut rejections) = (Vec::new(), Vec::new());
    let delivered = delivery::read(delivery, &body, &mut |r| match r {
        Ok(e) => events.push(e),
        Err(err) => rejections.push(Rejection::of(&origin, err)),
    })
    .map_err(|e| Refusal::Invalid { code: e.code, message: e.message })?;
    Ok(Work::Events(Delivered {
        origin,
        format: delivered.format,
        events,
        rejections,
        spans: delivered.spans,
        reply: Some(reply),
    }))
}
