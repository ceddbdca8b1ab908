//! The one enforcement point. Every handler, REST or GraphQL, receives a [`Caller`] (the
//! verified principal with its agreement, pseudonyms and any break-glass grant), and the
//! service layer asks it, and only it, what may be read or written and how records are
//! presented. Each answer is recorded in the access log.

use std::collections::{BTreeMap, HashMap};
use std::future::{ready, Ready};
use std::sync::Arc;

use actix_web::{dev::Payload, web, FromRequest, HttpMessage, HttpRequest};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use parking_lot::Mutex;
use pole_auth::{Agreement, Agreements, Principal, Pseudonymiser, Role, TokenVerifier, Viewer};
use pole_model::{EntityId, EntityState, Kind, Operation, Timestamp};
use pole_store::{AccessAction, AccessEntry, AccessLog, AccessOutcome, EntityHead, ReadAt, Store};

use crate::error::{ApiError, ApiResult};
use crate::request_id::RequestId;
use crate::state::AppState;

/// An analyst's declared reason to read beyond their scope, for a limited time.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Grant {
    pub reason: String,
    #[schema(value_type = String, format = DateTime)]
    pub granted_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
}

/// What the server knows about access: built once at start from configuration.
pub struct AccessControl {
    verifier: TokenVerifier,
    agreements: Agreements,
    pseudonymisers: BTreeMap<String, Pseudonymiser>,
    grants: Mutex<HashMap<String, Grant>>,
    break_glass_secs: i64,
    log: AccessLog,
}

impl std::fmt::Debug for AccessControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessControl")
            .field("verifier", &self.verifier)
            .field("agreements", &self.agreements.names().collect::<Vec<_>>())
            .field("break_glass_secs", &self.break_glass_secs)
            .finish_non_exhaustive()
    }
}

/// The inputs of [`AccessControl::new`].
#[derive(Debug)]
pub struct AccessSettings {
    pub verifier: TokenVerifier,
    pub agreements: Agreements,
    /// Keys every agreement's pseudonyms; must stay the same across restarts.
    pub pseudonym_secret: Vec<u8>,
    pub break_glass_minutes: u32,
    pub log: AccessLog,
}

impl AccessControl {
    pub fn new(settings: AccessSettings) -> Self {
        let pseudonymisers = settings
            .agreements
            .names()
            .map(|name| (name.to_owned(), Pseudonymiser::new(&settings.pseudonym_secret, name)))
            .collect();
        AccessControl {
            verifier: settings.verifier,
            agreements: settings.agreements,
            pseudonymisers,
            grants: Mutex::new(HashMap::new()),
            break_glass_secs: i64::from(settings.break_glass_minutes) * 60,
            log: settings.log,
        }
    }

    pub fn log(&self) -> &AccessLog {
        &self.log
    }

    /// Establishes the caller from a bearer token (`None` when the request carried none).
    pub fn caller(
        self: &Arc<Self>,
        token: Option<&str>,
        operation: String,
        request_id: Option<String>,
    ) -> ApiResult<Caller> {
        let deny = |principal: Option<&Principal>, error: ApiError| {
            let mut entry = match principal {
                Some(principal) => entry_for(principal, AccessAction::Read, &operation),
                None => AccessEntry::new("anonymous", "none", AccessAction::Read, operation.clone()),
            };
            entry.request_id.clone_from(&request_id);
            entry.outcome = AccessOutcome::Denied { detail: error.to_string() };
            self.log.record(entry);
            error
        };
        let principal = match token {
            None => {
                return Err(deny(
                    None,
                    ApiError::Unauthorized("send a bearer token in the Authorization header".into()),
                ))
            }
            Some(token) => match self.verifier.verify(token) {
                Ok(principal) => principal,
                Err(e) => {
                    tracing::info!(reason = %e, "token refused");
                    return Err(deny(None, ApiError::Unauthorized(e.to_string())));
                }
            },
        };
        let (agreement, pseudonymiser) = match (principal.role, principal.agreement.as_deref()) {
            (Role::Consumer, Some(name)) => {
                let Some(agreement) = self.agreements.get(name) else {
                    return Err(deny(
                        Some(&principal),
                        ApiError::Forbidden(format!("agreement {name:?} is not known to this server")),
                    ));
                };
                if !agreement.in_force(Timestamp::now().date()) {
                    return Err(deny(
                        Some(&principal),
                        ApiError::Forbidden(format!("agreement {name:?} expired on {}", agreement.expires)),
                    ));
                }
                (Some(agreement.clone()), self.pseudonymisers.get(name).cloned())
            }
            _ => (None, None),
        };
        let break_glass = match principal.role {
            Role::Analyst => self.active_grant(&principal.subject),
            _ => None,
        };
        Ok(Caller {
            principal,
            agreement,
            pseudonymiser,
            break_glass,
            operation,
            request_id,
            log: self.log.clone(),
            collected: None,
        })
    }

    fn active_grant(&self, subject: &str) -> Option<Grant> {
        let now = Timestamp::now();
        let mut grants = self.grants.lock();
        match grants.get(subject) {
            Some(grant) if grant.expires_at > now => Some(grant.clone()),
            Some(_) => {
                grants.remove(subject);
                None
            }
            None => None,
        }
    }

    /// Opens a break-glass grant for an analyst who declared a reason.
    pub fn break_glass(&self, caller: &Caller, reason: &str) -> ApiResult<Grant> {
        let reason = reason.trim();
        if caller.principal.role != Role::Analyst {
            return Err(caller.denied(
                AccessAction::BreakGlass,
                ApiError::Forbidden(format!("break-glass is for analysts, not the {} role", caller.principal.role)),
            ));
        }
        if reason.chars().count() < 10 {
            return Err(ApiError::invalid("reason", "declare why, in at least 10 characters"));
        }
        if reason.chars().count() > 1000 {
            return Err(ApiError::invalid("reason", "at most 1000 characters"));
        }
        let now = Timestamp::now();
        let grant = Grant {
            reason: reason.to_owned(),
            granted_at: now,
            expires_at: Timestamp::from_micros(now.micros().saturating_add(self.break_glass_secs * 1_000_000)),
        };
        let mut entry = caller.entry(AccessAction::BreakGlass, Vec::new());
        entry.break_glass = true;
        entry.reason = Some(grant.reason.clone());
        // Durable before the grant takes effect: no break-glass read without its trace.
        self.log.record_durably(entry)?;
        self.grants.lock().insert(caller.principal.subject.clone(), grant.clone());
        tracing::warn!(actor = %caller.principal.subject, "break-glass granted");
        Ok(grant)
    }
}

/// The caller of one request, as every rule sees it.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    agreement: Option<Agreement>,
    pseudonymiser: Option<Pseudonymiser>,
    pub break_glass: Option<Grant>,
    operation: String,
    request_id: Option<String>,
    log: AccessLog,
    /// When set, reads are gathered here and logged as one record when the request ends
    /// (GraphQL: one record per query, however many resolvers ran).
    collected: Option<Arc<Mutex<Vec<EntityId>>>>,
}

impl Caller {
    pub fn viewer(&self) -> Viewer<'_> {
        Viewer {
            principal: &self.principal,
            agreement: self.agreement.as_ref(),
            break_glass: self.break_glass.is_some(),
        }
    }

    /// Refuses once the token has ended: at its `exp` exactly, without the verifier's
    /// leeway (which allows for clock skew when a token is presented, not for a connection
    /// to outlast it). For what outlives the request that opened it: the change feed's
    /// stream and a GraphQL WebSocket. The refusal is recorded like any other.
    pub fn require_live(&self) -> ApiResult<()> {
        let now_millis = Timestamp::now().micros() / 1000;
        if !self.principal.expired_at(now_millis) {
            return Ok(());
        }
        let error = ApiError::Unauthorized("the token has expired: connect again with a new one".into());
        let mut entry = self.entry(AccessAction::Read, Vec::new());
        entry.outcome = AccessOutcome::Denied { detail: error.to_string() };
        self.log.record(entry);
        Err(error)
    }

    /// Gathers reads into one access record, written by [`Caller::finish`].
    pub fn gathering(mut self) -> Self {
        self.collected = Some(Arc::new(Mutex::new(Vec::new())));
        self
    }

    /// Logs the gathered reads as one record, durably (blocking: call it off the async
    /// workers).
    pub fn finish(&self) -> ApiResult<()> {
        if let Some(collected) = &self.collected {
            let mut entities = std::mem::take(&mut *collected.lock());
            entities.sort();
            entities.dedup();
            let mut entry = self.entry(AccessAction::Read, entities);
            entry.result_count = Some(entry.entities.len() as u64);
            self.log.record_durably(entry)?;
        }
        Ok(())
    }

    fn entry(&self, action: AccessAction, entities: Vec<EntityId>) -> AccessEntry {
        let mut entry = entry_for(&self.principal, action, &self.operation);
        entry.entities = entities;
        entry.break_glass = self.break_glass.is_some();
        entry.request_id.clone_from(&self.request_id);
        entry
    }

    /// Records an allowed access and waits until the record is durable, so that nothing is
    /// answered without its trace (blocking: service functions run off the async workers).
    pub fn audit(
        &self,
        action: AccessAction,
        entities: &[EntityId],
        query: Option<String>,
        count: Option<u64>,
    ) -> ApiResult<()> {
        if let (AccessAction::Read, Some(collected)) = (action, &self.collected) {
            collected.lock().extend_from_slice(entities);
            return Ok(());
        }
        let mut entry = self.entry(action, entities.to_vec());
        entry.query = query;
        entry.result_count = count;
        Ok(self.log.record_durably(entry)?)
    }

    /// Records a denial and hands the error back.
    pub fn denied(&self, action: AccessAction, error: ApiError) -> ApiError {
        let mut entry = self.entry(action, Vec::new());
        entry.outcome = AccessOutcome::Denied { detail: error.to_string() };
        self.log.record(entry);
        error
    }

    fn forbid(&self, action: AccessAction, reason: impl Into<String>) -> ApiError {
        self.denied(action, ApiError::Forbidden(reason.into()))
    }

    /// Refuses callers that may not read records at all.
    pub fn require_records(&self) -> ApiResult<()> {
        self.viewer().may_read_records().map_err(|d| self.forbid(AccessAction::Read, d.0))
    }

    /// Refuses reads that only identify (search, identifier look-up, history) to
    /// minimised views.
    pub fn require_identifying(&self, what: &str) -> ApiResult<()> {
        self.viewer().may_read_identifying(what).map_err(|d| self.forbid(AccessAction::Read, d.0))
    }

    /// Only administrators and auditors read the access log.
    pub fn require_auditor(&self) -> ApiResult<()> {
        match self.principal.role {
            Role::Auditor | Role::Admin => Ok(()),
            other => {
                Err(self.forbid(AccessAction::Read, format!("the access log is for auditors, not the {other} role")))
            }
        }
    }

    /// Refuses writes this caller may not make.
    pub fn require_write(&self, ops: &[Operation], council: Option<&str>) -> ApiResult<()> {
        self.viewer().may_write(ops, council).map_err(|d| self.forbid(AccessAction::Write, d.0))
    }

    /// The entity an id in a request names: consumers name entities by their pseudonyms.
    pub fn resolve_id(&self, text: &str) -> ApiResult<EntityId> {
        match &self.pseudonymiser {
            Some(p) => p.reveal(text).ok_or_else(|| {
                self.forbid(
                    AccessAction::Read,
                    format!(
                        "{text:?} is not a pseudonym issued under agreement {}",
                        self.principal.agreement.as_deref().unwrap_or_default()
                    ),
                )
            }),
            None => EntityId::new(text).map_err(|e| ApiError::invalid("id", e.to_string())),
        }
    }

    /// A paging cursor as this caller receives it: sealed for consumers (an index key holds
    /// an entity id), plain base64 otherwise.
    pub fn seal_cursor(&self, key: &[u8]) -> String {
        match &self.pseudonymiser {
            Some(p) => p.seal_cursor(key),
            None => B64.encode(key),
        }
    }

    pub fn open_cursor(&self, text: &str) -> Option<Vec<u8>> {
        match &self.pseudonymiser {
            Some(p) => p.open_cursor(text),
            None => B64.decode(text).ok(),
        }
    }

    /// How an entity id is shown to this caller (`None`: it cannot be shown).
    pub fn present_id(&self, id: &EntityId) -> Option<EntityId> {
        match &self.pseudonymiser {
            Some(p) => EntityId::new(p.pseudonym(id)).ok(),
            None => Some(id.clone()),
        }
    }

    /// Whether this caller may read the entity at all: council scope (from the council
    /// index), the agreement's kinds and types, and opt-out. `state` is the entity as read
    /// (sealed values are fine); a refusal names no fact about the record beyond the rule.
    pub fn may_see(&self, store: &Store, id: &EntityId, state: Option<&EntityState>) -> ApiResult<bool> {
        let head =
            state.map(|s| EntityHead { kind: s.kind, entity_type: s.entity_type.clone(), active: s.is_active() });
        self.may_see_head(store, id, head.as_ref(), true)
    }

    /// [`Caller::may_see`] on what an entity is; `check_council`: false when the id came
    /// from the caller's own council index already.
    pub fn may_see_head(
        &self,
        store: &Store,
        id: &EntityId,
        head: Option<&EntityHead>,
        check_council: bool,
    ) -> ApiResult<bool> {
        let viewer = self.viewer();
        if let (true, Some(council)) = (check_council, viewer.council_scope()) {
            if !store.contributed_by(council, id)? {
                return Ok(false);
            }
        }
        if let Some(head) = head {
            if !viewer.covers(head.kind, &head.entity_type) {
                return Ok(false);
            }
            // Retracted, merged and erased records are not part of any data share.
            if viewer.minimised() && !head.active {
                return Ok(false);
            }
            if viewer.honours_opt_out() && excluded_by_opt_out(store, id, head.kind)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The checks on a state read after [`Caller::check_visible`] passed for its id: the
    /// council scope is not looked up twice.
    pub fn check_state(&self, store: &Store, id: &EntityId, state: &EntityState) -> ApiResult<()> {
        let head = EntityHead { kind: state.kind, entity_type: state.entity_type.clone(), active: state.is_active() };
        if self.may_see_head(store, id, Some(&head), false)? {
            Ok(())
        } else {
            Err(self.refuse_read(id))
        }
    }

    /// [`Caller::may_see`] as a refusal: a 403 that reads the same whether or not the
    /// record exists.
    pub fn check_visible(&self, store: &Store, id: &EntityId, state: Option<&EntityState>) -> ApiResult<()> {
        if self.may_see(store, id, state)? {
            Ok(())
        } else {
            Err(self.refuse_read(id))
        }
    }

    /// The refusal of a read of a record this caller may not see. A consumer names records
    /// by pseudonyms it was given, and one it may not see (opted out, erased, retracted,
    /// outside the agreement) answers exactly as one that does not exist at that point: a
    /// 403 would tell it the record is there and, read as of several instants, since when.
    fn refuse_read(&self, id: &EntityId) -> ApiError {
        if self.viewer().minimised() {
            let shown = self.present_id(id).map(|i| i.to_string()).unwrap_or_default();
            return self
                .denied(AccessAction::Read, ApiError::NotFound { what: format!("entity {shown} at that point") });
        }
        self.forbid(AccessAction::Read, self.out_of_scope(id))
    }

    /// The store's refusal of a write naming a record outside the caller's own: the same
    /// 403 a read of it gets, whether or not it exists.
    pub fn refused_write(&self, rejection: pole_store::Rejection) -> ApiError {
        match rejection {
            pole_store::Rejection::OutOfScope { entity, .. } => {
                let detail = self.out_of_scope(&entity);
                self.forbid(AccessAction::Write, detail)
            }
            other => ApiError::from(other),
        }
    }

    fn out_of_scope(&self, id: &EntityId) -> String {
        let shown = self.present_id(id).map(|i| i.to_string()).unwrap_or_default();
        match (self.principal.role, self.viewer().council_scope(), &self.principal.agreement) {
            (_, Some(council), _) => format!("entity {shown} is outside council {council}'s records"),
            (Role::Consumer, _, Some(agreement)) => {
                format!("entity {shown} is not available under agreement {agreement}")
            }
            _ => format!("entity {shown} is not available to the {} role without break-glass", self.principal.role),
        }
    }

    /// The state as this caller may see it, links to entities it may not see removed and
    /// ids pseudonymised for consumers. `on` is the day ages are computed for.
    pub fn present(&self, store: &Store, state: EntityState, on: Timestamp) -> ApiResult<EntityState> {
        let viewer = self.viewer();
        let mut failure = None;
        let via_person = state.kind == Kind::Person;
        let mut state = viewer.redact(state, store.schema(), on.date(), |link| {
            match self.link_visible(store, &link.to, via_person) {
                Ok(true) => self.present_id(&link.to),
                Ok(false) => None,
                Err(e) => {
                    failure = Some(e);
                    None
                }
            }
        });
        if let Some(e) = failure {
            return Err(e);
        }
        if let Some(id) = self.present_id(&state.id) {
            state.id = id;
        }
        Ok(state)
    }

    /// Whether the far end of a link may be shown. `via_visible_person`: the link is read
    /// from a person this caller may see, so whatever it leads to is reachable through
    /// someone who did not opt out. Only what the caller's view depends on is read: council
    /// and opt-out indexes first, what the far entity is only for consumers (its kind and
    /// type) or when opt-out could hide a record reached through a record.
    ///
    /// A council is shown only the links it made (callers filter by the link's
    /// provenance): it knows their far ends, so no look-up is needed for it.
    pub fn link_visible(&self, store: &Store, other: &EntityId, via_visible_person: bool) -> ApiResult<bool> {
        let viewer = self.viewer();
        if viewer.own_contributions_only().is_some() {
            return Ok(true);
        }
        if let Some(council) = viewer.council_scope() {
            if !store.contributed_by(council, other)? {
                return Ok(false);
            }
        }
        let honours = viewer.honours_opt_out();
        if honours && store.opted_out(other)? {
            return Ok(false);
        }
        let needs_head = viewer.minimised() || (honours && !via_visible_person);
        if !needs_head {
            return Ok(true);
        }
        let Some(head) = store.entity_head(other)? else { return Ok(false) };
        if !viewer.covers(head.kind, &head.entity_type) || (viewer.minimised() && !head.active) {
            return Ok(false);
        }
        if !honours || via_visible_person || head.kind == Kind::Person {
            return Ok(true);
        }
        Ok(!excluded_by_opt_out(store, other, head.kind)?)
    }
}

/// An access by `principal`, who they are as the access log names them.
fn entry_for(principal: &Principal, action: AccessAction, operation: &str) -> AccessEntry {
    let mut entry = AccessEntry::new(&*principal.subject, principal.role.as_str(), action, operation);
    entry.council.clone_from(&principal.council);
    entry.purpose.clone_from(&principal.purpose);
    entry.agreement.clone_from(&principal.agreement);
    entry
}

/// Whether the opt-out hides this entity: a person who opted out, or a record whose only
/// links to people lead to people who opted out. Opt-out takes effect from the moment it
/// is recorded, for every read, including reads as of earlier instants: the opt-out index
/// holds the current state.
pub fn excluded_by_opt_out(store: &Store, id: &EntityId, kind: Kind) -> ApiResult<bool> {
    if kind == Kind::Person {
        return Ok(store.opted_out(id)?);
    }
    let links = store.links(id, None, None, ReadAt::NOW)?;
    // The common case costs index look-ups only: nothing linked has opted out.
    let mut any_opted_out = false;
    let mut others = Vec::new();
    for link in links {
        if store.opted_out(&link.other)? {
            any_opted_out = true;
        } else {
            others.push(link.other);
        }
    }
    if !any_opted_out {
        return Ok(false);
    }
    for other in others {
        if store.entity_head(&other)?.is_some_and(|h| h.kind == Kind::Person) {
            return Ok(false);
        }
    }
    Ok(true)
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(state) = req.app_data::<web::Data<AppState>>() else {
            return ready(Err(ApiError::Internal("the application state is missing".into())));
        };
        let operation = format!("{} {}", req.method(), req.match_pattern().unwrap_or_else(|| req.path().to_owned()));
        let request_id = req.extensions().get::<RequestId>().map(|r| r.0.clone());
        let header = req.headers().get(actix_web::http::header::AUTHORIZATION);
        let token = match header.map(|h| h.to_str()) {
            None => None,
            Some(Ok(value)) => match value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")) {
                Some(token) => Some(token.trim()),
                None => {
                    return ready(Err(ApiError::Unauthorized(
                        "the Authorization header is not `Bearer <token>`".into(),
                    )))
                }
            },
            Some(Err(_)) => return ready(Err(ApiError::Unauthorized("the Authorization header is not text".into()))),
        };
        ready(state.access.caller(token, operation, request_id))
    }
}
