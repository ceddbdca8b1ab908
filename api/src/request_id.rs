//! Request ids: every request gets one (the caller's `X-Request-Id` if it sent a sane one,
//! else a new ULID), echoed in the response and carried by the request's tracing span.

use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{web, HttpMessage};

use crate::state::AppState;
use std::future::Future;
use tracing::Instrument;

pub const HEADER: &str = "x-request-id";

/// The request's id, kept in the request's extensions for the access log.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

pub fn tag<S, B>(
    request: ServiceRequest,
    service: &S,
) -> impl Future<Output = Result<ServiceResponse<B>, actix_web::Error>> + use<S, B>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    let id = request
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| ulid::Ulid::new().to_string());
    request.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!("request", request_id = %id, method = %request.method(), path = %request.path());
    let started = std::time::Instant::now();
    let metrics = request.app_data::<web::Data<AppState>>().map(|s| s.metrics.clone());
    let method = request.method().to_string();
    let route = request.match_pattern().unwrap_or_else(|| "unmatched".into());
    let response = span.in_scope(|| service.call(request));
    async move {
        let mut response = response.await?;
        let status = response.status().as_u16();
        if let Ok(value) = HeaderValue::from_str(&id) {
            response.headers_mut().insert(HeaderName::from_static(HEADER), value);
        }
        let elapsed = started.elapsed();
        if let Some(metrics) = metrics {
            metrics.observe(&method, &route, status, elapsed.as_secs_f64());
        }
        tracing::info!(status, micros = elapsed.as_micros() as u64, "answered");
        Ok(response)
    }
    .instrument(span)
}
