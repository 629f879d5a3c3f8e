//! What every request meets before any route: its `X-Request-ID` echoed on
//! whatever is answered, and every error answered in the one JSON shape.

use axum::Router;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

use crate::error;

/// `app` as served: the edge layer around every route, and the fallbacks
/// for an unknown path or a wrong method answered in the error shape.
pub fn finish(app: Router) -> Router {
    app.method_not_allowed_fallback(error::method_not_allowed)
        .fallback(error::fallback)
        .layer(axum::middleware::from_fn(edge))
}

async fn edge(req: Request, next: Next) -> Response {
    let request_id = req.headers().get("x-request-id").cloned();
    let mut resp = error::reshape(next.run(req).await).await;
    if let Some(id) = request_id {
        resp.headers_mut().insert("x-request-id", id);
    }
    resp
}
