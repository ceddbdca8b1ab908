//! The OpenAPI 3.1 document, generated from the handlers' annotations and the wire types,
//! served at `/openapi.json`, with an interactive page at `/docs`.

use actix_web::HttpResponse;
use utoipa::OpenApi;

use crate::access::Grant;
use crate::error::Problem;
use crate::service::{AccessPage, EraseInput, TransactionInput, VerifyView};
use crate::views::{
    CandidateView, CommittedView, DiffView, EntityView, HeldIdentifierView, HistoryView, JournalView, LinksView,
    MatchesView, NationalPersonView, PageView, ReadAtView, SourceRecordView, SurvivedView, ValueSourceView,
};

#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "pole-ods",
        description = "An event-sourced operational data store of People, Objects, Locations and Events for England's adult social care data. Errors are application/problem+json with a stable `type` per kind."
    ),
    paths(
        crate::rest::health,
        crate::rest::ready,
        crate::metrics::metrics,
        crate::rest::post_transaction,
        crate::rest::list_entities,
        crate::rest::get_entity,
        crate::rest::get_history,
        crate::rest::get_national_person,
        crate::rest::get_diff,
        crate::rest::get_links,
        crate::rest::search,
        crate::rest::get_identifier,
        crate::rest::get_journal,
        crate::stream::journal_stream,
        crate::rest::post_erase,
        crate::ingest::post_ingest,
        crate::rest::post_break_glass,
        crate::rest::get_audit_access,
        crate::rest::get_audit_break_glass,
        crate::rest::get_audit_verify,
    ),
    modifiers(&BearerAuth),
    components(schemas(
        Problem,
        TransactionInput,
        CommittedView,
        EntityView,
        ReadAtView,
        HistoryView,
        NationalPersonView,
        SourceRecordView,
        SurvivedView,
        ValueSourceView,
        CandidateView,
        HeldIdentifierView,
        DiffView,
        LinksView,
        PageView,
        MatchesView,
        JournalView,
        EraseInput,
        Grant,
        AccessPage,
        VerifyView,
        crate::rest::BreakGlassInput
    ))
)]
pub struct ApiDoc;

/// Every `/v1` route takes a bearer JWT; the operational routes stay open.
#[derive(Debug)]
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with("/v1") {
                continue;
            }
            for operation in [&mut item.get, &mut item.post].into_iter().flatten() {
                operation.security = Some(vec![SecurityRequirement::new("bearer", Vec::<String>::new())]);
                // Every /v1 route answers these two, from the one enforcement point: said
                // once here rather than on each handler.
                for (status, description) in [
                    (
                        "401",
                        "No valid credentials: no token, or one that cannot be trusted (the reason is in `detail`)",
                    ),
                    ("403", "A valid token without the right: the role, council scope or agreement does not allow it"),
                ] {
                    operation.responses.responses.entry(status.to_owned()).or_insert_with(|| {
                        let problem = utoipa::openapi::ContentBuilder::new()
                            .schema(Some(utoipa::openapi::Ref::from_schema_name("Problem")))
                            .build();
                        utoipa::openapi::ResponseBuilder::new()
                            .description(description)
                            .content("application/problem+json", problem)
                            .build()
                            .into()
                    });
                }
            }
        }
    }
}

/// The document as JSON text.
pub fn document() -> String {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc.to_pretty_json().unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(document())
}

/// An interactive reference of `/openapi.json`. The page loads its viewer from a CDN in
/// the reader's browser; the server itself needs no network.
pub async fn docs() -> HttpResponse {
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(
        r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>pole-ods API</title></head>
<body>
<script id="api-reference" data-url="/openapi.json"></script>
<script src="https://cdn.jsdelivr.net/npm/@scalar/api-reference"></script>
<noscript>The API description is at <a href="/openapi.json">/openapi.json</a>.</noscript>
</body>
</html>"#,
    )
}
