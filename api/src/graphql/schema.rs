//! The dynamic schema: built once from the schema registry, so a new pack needs no new Rust
//! structs. Every read goes through [`crate::service`], pinned to the root's read point, and
//! the traversal's reads are batched by the request's [`Loaders`].
//!
//! Types: the `Entity` interface; one interface per kind (`Person`, `Object`, `Location`,
//! `Event`), each implementing `Entity` and carrying the typed attributes that every type of
//! its kind shares; one object type per schema type implementing `Entity` and its kind's
//! interface (a type named like its kind gets a `Type` suffix: `person` → `PersonType`);
//! and a `Generic<Kind>` object for an entity whose type the pack no longer defines.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::Hash;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use async_graphql::dynamic::{
    Field, FieldFuture, FieldValue, InputValue, Interface, InterfaceField, Object, ResolverContext, Scalar, Schema,
    SchemaError, Subscription, SubscriptionField, SubscriptionFieldFuture, TypeRef,
};
use async_graphql::Value;
use pole_model::{AttributeDef, Identifier, Kind, SchemaRegistry, Transaction, ValueType};
use pole_store::{Direction, LinkView, Store, Version};

use super::error::to_graphql;
use super::loader::{EntityKey, HistoryKey, LinksKey, Loaded, Loaders, StoreLoader};
use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::service::{self, JournalFollower, SearchParams, TransactionInput};
use crate::state::ApiConfig;
use crate::views::{EntityView, ReadAtView};

const ENTITY: &str = "Entity";
const LINK: &str = "Link";
const IDENTIFIER: &str = "Identifier";
const VERSION: &str = "Version";
const JSON: &str = "JSON";
const ENTITY_PAGE: &str = "EntityPage";
const DIFF: &str = "Diff";
const TRANSACTION: &str = "Transaction";
const JOURNAL_PAGE: &str = "JournalPage";
const RESERVED: &[&str] = &[
    ENTITY,
    LINK,
    IDENTIFIER,
    VERSION,
    JSON,
    ENTITY_PAGE,
    DIFF,
    TRANSACTION,
    JOURNAL_PAGE,
    "Person",
    "Object",
    "Location",
    "Event",
    "GenericPerson",
    "GenericObject",
    "GenericLocation",
    "GenericEvent",
    "Query",
    "Mutation",
    "Subscription",
    "String",
    "Int",
    "Float",
    "Boolean",
    "ID",
];
/// The fields every entity has; a pack attribute of the same name is only in `attributes`.
const COMMON_FIELDS: &[&str] =
    &["id", "kind", "type", "version", "status", "identifiers", "links", "history", "attributes"];
/// How long a subscription waits on an idle journal before looking again; only bounds how
/// long a closed connection's follower lingers.
const FOLLOW_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

/// The interface of a kind.
fn kind_interface(kind: Kind) -> &'static str {
    match kind {
        Kind::Person => "Person",
        Kind::Object => "Object",
        Kind::Location => "Location",
        Kind::Event => "Event",
    }
}

/// The object type of an entity of `kind` whose type the registry does not (or no longer)
/// define.
fn generic_object(kind: Kind) -> &'static str {
    match kind {
        Kind::Person => "GenericPerson",
        Kind::Object => "GenericObject",
        Kind::Location => "GenericLocation",
        Kind::Event => "GenericEvent",
    }
}

/// Schema type name to GraphQL object type name.
#[derive(Debug, Default)]
pub(crate) struct TypeNames(BTreeMap<String, String>);

impl TypeNames {
    fn object_for(&self, entity_type: &str, kind: Kind) -> String {
        self.0.get(entity_type).cloned().unwrap_or_else(|| generic_object(kind).to_owned())
    }
}

/// A typed attribute field: its name, GraphQL scalar and how to read the stored value.
#[derive(Debug, Clone)]
struct AttrField {
    name: String,
    ty: &'static str,
    value_type: ValueType,
    description: String,
}

fn attr_fields(attributes: &BTreeMap<String, AttributeDef>) -> Vec<AttrField> {
    let mut out = Vec::new();
    for (name, attr) in attributes {
        if !valid_field_name(name) {
            tracing::warn!(attribute = %name, "attribute has no GraphQL field; it is in `attributes`");
            continue;
        }
        let ty = match attr.value_type {
            ValueType::Integer => TypeRef::INT,
            ValueType::Decimal => TypeRef::FLOAT,
            ValueType::Boolean => TypeRef::BOOLEAN,
            _ => TypeRef::STRING,
        };
        out.push(AttrField {
            name: name.clone(),
            ty,
            value_type: attr.value_type,
            description: attr.description.clone(),
        });
    }
    out
}

/// The attribute fields every type of `kind` has with the same GraphQL type: what a fragment
/// on the kind's interface can select. A description is kept only where all types agree.
fn shared_fields(registry: &SchemaRegistry, kind: Kind) -> Vec<AttrField> {
    let mut shared: Option<Vec<AttrField>> = None;
    for def in registry.types().values().filter(|def| def.kind == kind) {
        let fields = attr_fields(&def.attributes);
        shared = Some(match shared {
            None => fields,
            Some(kept) => kept
                .into_iter()
                .filter_map(|mut field| {
                    let other = fields.iter().find(|f| f.name == field.name && f.ty == field.ty)?;
                    if other.description != field.description {
                        field.description.clear();
                    }
                    Some(field)
                })
                .collect(),
        });
    }
    shared.unwrap_or_default()
}

/// The `Entity` interface's fields (also on every kind interface).
fn entity_interface_fields() -> Vec<InterfaceField> {
    vec![
        InterfaceField::new("id", TypeRef::named_nn(TypeRef::ID)),
        InterfaceField::new("kind", TypeRef::named_nn(TypeRef::STRING)),
        InterfaceField::new("type", TypeRef::named_nn(TypeRef::STRING)),
        InterfaceField::new("version", TypeRef::named_nn(TypeRef::INT)),
        InterfaceField::new("status", TypeRef::named_nn(TypeRef::STRING)),
        InterfaceField::new("attributes", TypeRef::named_nn(JSON)),
        InterfaceField::new("identifiers", TypeRef::named_nn_list_nn(IDENTIFIER)),
        InterfaceField::new("links", TypeRef::named_nn_list_nn(LINK))
            .argument(InputValue::new("direction", TypeRef::named(TypeRef::STRING)))
            .argument(InputValue::new("role", TypeRef::named(TypeRef::STRING))),
        InterfaceField::new("history", TypeRef::named_nn_list_nn(VERSION)),
    ]
}

/// Builds the schema over `store`, with its registry's types.
pub(crate) fn build(store: &Store, max_depth: usize, max_complexity: usize) -> Result<Schema, SchemaError> {
    let registry: &SchemaRegistry = store.schema();
    let names = Arc::new(type_names(registry));
    let mut entity =
        Interface::new(ENTITY).description("A person, object, location or event, read at the root's read point");
    for field in entity_interface_fields() {
        entity = entity.field(field);
    }
    let mut builder = Schema::build("Query", Some("Mutation"), Some("Subscription"))
        .register(Scalar::new(JSON).description("Any JSON value"))
        .register(entity)
        .register(identifier_object())
        .register(version_object())
        .register(link_object(Arc::clone(&names)))
        .register(page_object(Arc::clone(&names)))
        .register(diff_object())
        .register(transaction_object(Arc::clone(&names)))
        .register(journal_page_object())
        .register(query_object(Arc::clone(&names)))
        .register(mutation_object())
        .register(subscription_object())
        .data(store.clone())
        .limit_depth(max_depth)
        .limit_complexity(max_complexity);
    for kind in Kind::ALL {
        let shared = shared_fields(registry, kind);
        let mut interface = Interface::new(kind_interface(kind))
            .implement(ENTITY)
            .description(format!("An entity of kind {kind}, with the attributes every {kind} type has"));
        for field in entity_interface_fields() {
            interface = interface.field(field);
        }
        for attr in &shared {
            let mut field = InterfaceField::new(attr.name.clone(), TypeRef::named(attr.ty));
            if !attr.description.is_empty() {
                field = field.description(attr.description.clone());
            }
            interface = interface.field(field);
        }
        builder = builder.register(interface).register(
            entity_object(generic_object(kind), kind, &shared)
                .description(format!("An entity of kind {kind} whose type the schema pack does not define")),
        );
    }
    for (type_name, def) in registry.types() {
        let object = entity_object(&names.object_for(type_name, def.kind), def.kind, &attr_fields(&def.attributes))
            .description(format!("An entity of the schema type `{type_name}`"));
        builder = builder.register(object);
    }
    builder.finish()
}

fn type_names(registry: &SchemaRegistry) -> TypeNames {
    let mut taken: BTreeSet<String> = RESERVED.iter().map(|s| (*s).to_owned()).collect();
    let mut names = BTreeMap::new();
    for type_name in registry.types().keys() {
        let base = pascal(type_name);
        let mut candidate = base.clone();
        let mut n = 1;
        while taken.contains(&candidate) {
            n += 1;
            candidate = format!("{base}Type{}", if n == 2 { String::new() } else { n.to_string() });
        }
        taken.insert(candidate.clone());
        names.insert(type_name.clone(), candidate);
    }
    TypeNames(names)
}

/// `safeguarding_concern` → `SafeguardingConcern`; always a valid GraphQL name.
pub(crate) fn pascal(name: &str) -> String {
    let mut out = String::new();
    for part in name.split(|c: char| !c.is_ascii_alphanumeric()).filter(|p| !p.is_empty()) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(chars);
        }
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'T');
    }
    out
}

fn valid_field_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
        && !name.starts_with("__")
        && !COMMON_FIELDS.contains(&name)
}

// ------------------------------------------------------------------------- parent values

/// An entity as the traversal carries it: the view holds its read point, which every child
/// read reuses, so the root's `asOf`/`validAt` hold all the way down.
struct Node(Arc<EntityView>);

/// A link with the read point of the entity it was read from.
struct LinkNode {
    link: LinkView,
    read_at: ReadAtView,
}

/// A page of `entities`.
struct PageNode {
    items: Vec<Arc<EntityView>>,
    next_cursor: Option<String>,
}

/// A page of the change feed.
struct JournalNode {
    transactions: Vec<Transaction>,
    head_seq: u64,
}

/// The read point as the service layer takes it: the pinned journal sequence and valid time.
fn point(read_at: &ReadAtView) -> (Option<String>, Option<String>) {
    let as_of = (read_at.as_of_seq > 0).then(|| read_at.as_of_seq.to_string());
    (as_of, read_at.valid_at.map(|t| t.to_string()))
}

fn node_value(view: Arc<EntityView>, names: &TypeNames) -> FieldValue<'static> {
    let object = names.object_for(&view.entity_type, view.kind);
    FieldValue::owned_any(Node(view)).with_type(object)
}

fn internal(what: &str) -> async_graphql::Error {
    to_graphql(&ApiError::Internal(what.to_owned()))
}

fn caller(ctx: &ResolverContext<'_>) -> async_graphql::Result<Caller> {
    let caller = ctx
        .data::<Caller>()
        .cloned()
        .map_err(|_| to_graphql(&ApiError::Unauthorized("no caller for this query".into())))?;
    // An HTTP request's token was verified just now; a WebSocket's when the connection
    // opened, and the connection must not outlive it.
    if ctx.data_opt::<super::OverWebSocket>().is_some() {
        caller.require_live().map_err(|e| to_graphql(&e))?;
    }
    Ok(caller)
}

fn store(ctx: &ResolverContext<'_>) -> async_graphql::Result<Store> {
    ctx.data::<Store>().cloned().map_err(|_| internal("no store in the schema"))
}

fn loaders<'a>(ctx: &'a ResolverContext<'_>) -> async_graphql::Result<&'a Loaders> {
    ctx.data::<Loaders>().map_err(|_| internal("no data loader in the request"))
}

fn parent<'a, T: 'static>(ctx: &'a ResolverContext<'_>) -> async_graphql::Result<&'a T> {
    ctx.parent_value.downcast_ref::<T>().ok_or_else(|| internal("unexpected parent value"))
}

fn opt_string(ctx: &ResolverContext<'_>, name: &str) -> async_graphql::Result<Option<String>> {
    match ctx.args.get(name) {
        None => Ok(None),
        Some(v) if v.is_null() => Ok(None),
        Some(v) => Ok(Some(v.string()?.to_owned())),
    }
}

/// A whole-number argument that must not be negative; the error names the argument.
fn opt_count(ctx: &ResolverContext<'_>, name: &str) -> async_graphql::Result<Option<u64>> {
    match ctx.args.get(name) {
        None => Ok(None),
        Some(v) if v.is_null() => Ok(None),
        Some(v) => v
            .i64()
            .ok()
            .and_then(|n| u64::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| to_graphql(&ApiError::invalid(name, "must be a whole number, 0 or more"))),
    }
}

/// Runs store work on the blocking pool, never on a worker thread.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> ApiResult<T> + Send + 'static) -> async_graphql::Result<T> {
    match actix_web::web::block(work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(to_graphql(&error)),
        Err(error) => Err(to_graphql(&ApiError::Internal(error.to_string()))),
    }
}

/// One key through the request's loader.
async fn load<K, T>(loaders: &Loaders, key: K) -> Loaded<T>
where
    K: Send + Sync + Hash + Eq + Clone + 'static,
    StoreLoader: Loader<K, Value = Loaded<T>, Error = Arc<ApiError>>,
{
    match loaders.load_one(key).await {
        Ok(Some(loaded)) => loaded,
        Ok(None) => Err(Arc::new(ApiError::Internal("a batched read lost its key".into()))),
        Err(e) => Err(e),
    }
}

/// Reads `ids` at `as_of_seq` in one batch, in order; one that no longer reads (erased, or
/// not there at that point) is left out.
async fn read_all(
    loaders: &Loaders,
    ids: impl IntoIterator<Item = String>,
    as_of_seq: u64,
) -> async_graphql::Result<Vec<Arc<EntityView>>> {
    let as_of = (as_of_seq > 0).then(|| as_of_seq.to_string());
    let reads = ids.into_iter().map(|id| load(loaders, EntityKey { id, as_of: as_of.clone(), valid_at: None }));
    let mut views = Vec::new();
    for loaded in futures_util::future::join_all(reads).await {
        match loaded {
            Ok(view) => views.push(view),
            Err(e) if matches!(*e, ApiError::NotFound { .. }) => {}
            Err(e) => return Err(to_graphql(&e)),
        }
    }
    Ok(views)
}

fn json(value: impl serde::Serialize) -> async_graphql::Result<Value> {
    let value = serde_json::to_value(value).map_err(|e| to_graphql(&ApiError::Internal(e.to_string())))?;
    Value::from_json(value).map_err(|e| to_graphql(&ApiError::Internal(e.to_string())))
}

// ------------------------------------------------------------------------- entity types

/// The `Entity` fields, with their resolvers; every entity object type carries them.
fn common_fields() -> Vec<Field> {
    vec![
        Field::new("id", TypeRef::named_nn(TypeRef::ID), |ctx| {
            FieldFuture::new(async move { Ok(Some(Value::from(parent::<Node>(&ctx)?.0.id.to_string()))) })
        }),
        Field::new("kind", TypeRef::named_nn(TypeRef::STRING), |ctx| {
            FieldFuture::new(async move { Ok(Some(Value::from(parent::<Node>(&ctx)?.0.kind.to_string()))) })
        }),
        Field::new("type", TypeRef::named_nn(TypeRef::STRING), |ctx| {
            FieldFuture::new(async move { Ok(Some(Value::from(parent::<Node>(&ctx)?.0.entity_type.clone()))) })
        }),
        Field::new("version", TypeRef::named_nn(TypeRef::INT), |ctx| {
            FieldFuture::new(async move { Ok(Some(Value::from(parent::<Node>(&ctx)?.0.version))) })
        }),
        Field::new("status", TypeRef::named_nn(TypeRef::STRING), |ctx| {
            FieldFuture::new(async move {
                let status = json(&parent::<Node>(&ctx)?.0.status)?;
                let state = match status {
                    Value::Object(map) => map.get("state").cloned().unwrap_or(Value::Null),
                    other => other,
                };
                Ok(Some(state))
            })
        })
        .description("active, retracted, merged or erased"),
        Field::new("attributes", TypeRef::named_nn(JSON), |ctx| {
            FieldFuture::new(async move { Ok(Some(json(&parent::<Node>(&ctx)?.0.attributes)?)) })
        })
        .description("Every attribute as JSON, including any without a typed field"),
        Field::new("identifiers", TypeRef::named_nn_list_nn(IDENTIFIER), |ctx| {
            FieldFuture::new(async move {
                let ids = parent::<Node>(&ctx)?.0.identifiers.clone();
                Ok(Some(FieldValue::list(ids.into_iter().map(FieldValue::owned_any))))
            })
        }),
        Field::new("links", TypeRef::named_nn_list_nn(LINK), |ctx| {
            FieldFuture::new(async move {
                let node = parent::<Node>(&ctx)?;
                let read_at = node.0.read_at;
                let (as_of, valid_at) = point(&read_at);
                let key = LinksKey {
                    id: node.0.id.to_string(),
                    direction: opt_string(&ctx, "direction")?,
                    role: opt_string(&ctx, "role")?,
                    as_of,
                    valid_at,
                };
                let view = load(loaders(&ctx)?, key).await.map_err(|e| to_graphql(&e))?;
                Ok(Some(FieldValue::list(
                    view.links.iter().map(|link| FieldValue::owned_any(LinkNode { link: link.clone(), read_at })),
                )))
            })
        })
        .description("Links at the read point, both directions unless `direction` says, of one `role` if given")
        .argument(
            InputValue::new("direction", TypeRef::named(TypeRef::STRING)).description("out, in or both (the default)"),
        )
        .argument(InputValue::new("role", TypeRef::named(TypeRef::STRING))),
        Field::new("history", TypeRef::named_nn_list_nn(VERSION), |ctx| {
            FieldFuture::new(async move {
                let node = parent::<Node>(&ctx)?;
                let seq = node.0.read_at.as_of_seq;
                let view = load(loaders(&ctx)?, HistoryKey(node.0.id.to_string())).await.map_err(|e| to_graphql(&e))?;
                // Versions recorded after the read point were not known there.
                Ok(Some(FieldValue::list(
                    view.versions.iter().filter(|v| v.seq <= seq).cloned().map(FieldValue::owned_any),
                )))
            })
        })
        .description("The versions recorded up to the read point, oldest first"),
    ]
}

/// One object type implementing `Entity` and its kind's interface, with typed attributes.
fn entity_object(object_name: &str, kind: Kind, attributes: &[AttrField]) -> Object {
    let mut object = Object::new(object_name).implement(ENTITY).implement(kind_interface(kind));
    for field in common_fields() {
        object = object.field(field);
    }
    for attr in attributes {
        let (attribute, value_type) = (attr.name.clone(), attr.value_type);
        let mut field = Field::new(attr.name.clone(), TypeRef::named(attr.ty), move |ctx| {
            let attribute = attribute.clone();
            FieldFuture::new(async move {
                let node = parent::<Node>(&ctx)?;
                Ok(node.0.attributes.get(&attribute).and_then(|v| typed(v, value_type)))
            })
        });
        if !attr.description.is_empty() {
            field = field.description(attr.description.clone());
        }
        object = object.field(field);
    }
    object
}

/// An attribute value as its declared GraphQL type; a value of another shape is null (the
/// raw value stays readable in `attributes`).
fn typed(value: &serde_json::Value, value_type: ValueType) -> Option<Value> {
    match value_type {
        ValueType::Integer => value.as_i64().map(Value::from),
        ValueType::Decimal => value.as_f64().map(Value::from),
        ValueType::Boolean => value.as_bool().map(Value::from),
        _ => match value {
            serde_json::Value::Null => None,
            serde_json::Value::String(s) => Some(Value::from(s.clone())),
            other => Some(Value::from(other.to_string())),
        },
    }
}

fn identifier_object() -> Object {
    let field = |name: &'static str, get: fn(&Identifier) -> &str| {
        Field::new(name, TypeRef::named_nn(TypeRef::STRING), move |ctx| {
            FieldFuture::new(async move { Ok(Some(Value::from(get(parent::<Identifier>(&ctx)?)))) })
        })
    };
    Object::new(IDENTIFIER).field(field("system", |i| &i.system)).field(field("value", |i| &i.value))
}

fn version_object() -> Object {
    let field = |name: &'static str, ty: &'static str, get: fn(&Version) -> async_graphql::Result<Value>| {
        Field::new(name, TypeRef::named_nn(ty), move |ctx| {
            FieldFuture::new(async move { Ok(Some(get(parent::<Version>(&ctx)?)?)) })
        })
    };
    Object::new(VERSION)
        .description("One version of an entity: the change that made it, with its transaction's facts")
        .field(field("version", TypeRef::INT, |v| Ok(Value::from(v.version))))
        .field(field("seq", TypeRef::INT, |v| Ok(Value::from(v.seq))))
        .field(field("recordedAt", TypeRef::STRING, |v| Ok(Value::from(v.recorded_at.to_string()))))
        .field(field("validTime", TypeRef::STRING, |v| Ok(Value::from(v.valid_time.to_string()))))
        .field(field("actor", TypeRef::STRING, |v| Ok(Value::from(v.actor.clone()))))
        .field(field("role", TypeRef::STRING, |v| Ok(Value::from(v.role.clone()))))
        .field(field("source", JSON, |v| json(&v.source)))
        .field(field("change", JSON, |v| json(&v.change)))
}

fn link_object(names: Arc<TypeNames>) -> Object {
    let text = |name: &'static str, nn: bool, get: fn(&LinkView) -> Option<String>| {
        let ty = if nn { TypeRef::named_nn(TypeRef::STRING) } else { TypeRef::named(TypeRef::STRING) };
        Field::new(name, ty, move |ctx| {
            FieldFuture::new(async move { Ok(get(&parent::<LinkNode>(&ctx)?.link).map(Value::from)) })
        })
    };
    Object::new(LINK)
        .field(text("role", true, |l| Some(l.role.clone())))
        .field(text("direction", true, |l| {
            Some(match l.direction {
                Direction::Out => "out".to_owned(),
                Direction::In => "in".to_owned(),
            })
        }))
        .field(text("validFrom", false, |l| l.valid_from.map(|t| t.to_string())))
        .field(text("validTo", false, |l| l.valid_to.map(|t| t.to_string())))
        .field(Field::new("attributes", TypeRef::named_nn(JSON), |ctx| {
            FieldFuture::new(async move { Ok(Some(json(&parent::<LinkNode>(&ctx)?.link.attributes)?)) })
        }))
        .field(
            Field::new("entity", TypeRef::named_nn(ENTITY), move |ctx| {
                let names = names.clone();
                FieldFuture::new(async move {
                    let node = parent::<LinkNode>(&ctx)?;
                    let (as_of, valid_at) = point(&node.read_at);
                    let key = EntityKey { id: node.link.other.to_string(), as_of, valid_at };
                    let view = load(loaders(&ctx)?, key).await.map_err(|e| to_graphql(&e))?;
                    Ok(Some(node_value(view, &names)))
                })
            })
            .description("The other end, read at the same point as the root"),
        )
}

fn page_object(names: Arc<TypeNames>) -> Object {
    Object::new(ENTITY_PAGE)
        .description("One page of entities and the cursor of the next")
        .field(Field::new("items", TypeRef::named_nn_list_nn(ENTITY), move |ctx| {
            let names = names.clone();
            FieldFuture::new(async move {
                let page = parent::<PageNode>(&ctx)?;
                Ok(Some(FieldValue::list(page.items.iter().map(|v| node_value(Arc::clone(v), &names)))))
            })
        }))
        .field(
            Field::new("nextCursor", TypeRef::named(TypeRef::STRING), |ctx| {
                FieldFuture::new(async move { Ok(parent::<PageNode>(&ctx)?.next_cursor.clone().map(Value::from)) })
            })
            .description("Give it as `after` for the next page; null on the last page"),
        )
}

fn diff_object() -> Object {
    let field = |name: &'static str, ty: TypeRef, get: fn(&crate::views::DiffView) -> async_graphql::Result<Value>| {
        Field::new(name, ty, move |ctx| {
            FieldFuture::new(async move { Ok(Some(get(parent::<crate::views::DiffView>(&ctx)?)?)) })
        })
    };
    Object::new(DIFF)
        .description("The field-level delta between two versions of an entity")
        .field(field("id", TypeRef::named_nn(TypeRef::ID), |d| Ok(Value::from(d.id.to_string()))))
        .field(field("from", TypeRef::named_nn(TypeRef::INT), |d| Ok(Value::from(d.from))))
        .field(field("to", TypeRef::named_nn(TypeRef::INT), |d| Ok(Value::from(d.to))))
        .field(
            field("delta", TypeRef::named_nn(JSON), |d| json(&d.delta))
                .description("Set, unset and identifier operations, each with the value before and after"),
        )
}

fn transaction_object(names: Arc<TypeNames>) -> Object {
    let field = |name: &'static str, ty: TypeRef, get: fn(&Transaction) -> async_graphql::Result<Value>| {
        Field::new(name, ty, move |ctx| {
            FieldFuture::new(async move {
                let value = get(parent::<Transaction>(&ctx)?)?;
                Ok(if value == Value::Null { None } else { Some(value) })
            })
        })
    };
    Object::new(TRANSACTION)
        .description("One committed transaction of the change feed, identifiable values opened for the caller")
        .field(field("seq", TypeRef::named_nn(TypeRef::INT), |t| Ok(Value::from(t.seq))))
        .field(field("recordedAt", TypeRef::named_nn(TypeRef::STRING), |t| Ok(Value::from(t.recorded_at.to_string()))))
        .field(field("actor", TypeRef::named_nn(TypeRef::STRING), |t| Ok(Value::from(t.actor.clone()))))
        .field(field("role", TypeRef::named_nn(TypeRef::STRING), |t| Ok(Value::from(t.role.clone()))))
        .field(field("source", TypeRef::named_nn(JSON), |t| json(&t.source)))
        .field(field("reason", TypeRef::named(TypeRef::STRING), |t| {
            Ok(t.reason.clone().map_or(Value::Null, Value::from))
        }))
        .field(field("idempotencyKey", TypeRef::named(TypeRef::STRING), |t| {
            Ok(t.idempotency_key.clone().map_or(Value::Null, Value::from))
        }))
        .field(
            field("refs", TypeRef::named_nn(JSON), |t| json(&t.refs))
                .description("Ids assigned to the request's local refs"),
        )
        .field(
            field("changes", TypeRef::named_nn(JSON), |t| json(&t.changes)).description("Each change with its delta"),
        )
        .field(
            Field::new("entities", TypeRef::named_nn_list_nn(ENTITY), move |ctx| {
                let names = names.clone();
                FieldFuture::new(async move {
                    let tx = parent::<Transaction>(&ctx)?;
                    let mut ids: Vec<String> = Vec::new();
                    for change in &tx.changes {
                        let id = change.entity.to_string();
                        if !ids.contains(&id) {
                            ids.push(id);
                        }
                    }
                    let views = read_all(loaders(&ctx)?, ids, tx.seq).await?;
                    Ok(Some(FieldValue::list(views.into_iter().map(|v| node_value(v, &names)))))
                })
            })
            .description("The entities it changed, as they stood right after it (its seq is their read point)"),
        )
}

fn journal_page_object() -> Object {
    Object::new(JOURNAL_PAGE)
        .description("A page of the change feed")
        .field(Field::new("transactions", TypeRef::named_nn_list_nn(TRANSACTION), |ctx| {
            FieldFuture::new(async move {
                let page = parent::<JournalNode>(&ctx)?;
                Ok(Some(FieldValue::list(page.transactions.iter().cloned().map(FieldValue::owned_any))))
            })
        }))
        .field(Field::new("headSeq", TypeRef::named_nn(TypeRef::INT), |ctx| {
            FieldFuture::new(async move { Ok(Some(Value::from(parent::<JournalNode>(&ctx)?.head_seq))) })
        }))
}

// ------------------------------------------------------------------------- roots

fn query_object(names: Arc<TypeNames>) -> Object {
    let entity_names = Arc::clone(&names);
    let search_names = Arc::clone(&names);
    let identifier_names = names;
    Object::new("Query")
        .field(
            Field::new("entity", TypeRef::named(ENTITY), move |ctx| {
                let names = Arc::clone(&entity_names);
                FieldFuture::new(async move {
                    let id = ctx.args.try_get("id")?.string()?.to_owned();
                    let as_of = opt_string(&ctx, "asOf")?;
                    let valid_at = opt_string(&ctx, "validAt")?;
                    let store = store(&ctx)?;
                    let caller = caller(&ctx)?;
                    let view = blocking(move || {
                        match service::entity(&store, &caller, &id, as_of.as_deref(), valid_at.as_deref()) {
                            Ok(view) => Ok(Some(view)),
                            Err(ApiError::NotFound { .. }) => Ok(None),
                            Err(e) => Err(e),
                        }
                    })
                    .await?;
                    Ok(view.map(|v| node_value(Arc::new(v), &names)))
                })
            })
            .description("An entity as of `asOf` (a journal sequence or an RFC 3339 time or date) and valid at `validAt`; both hold for the whole traversal")
            .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
            .argument(InputValue::new("asOf", TypeRef::named(TypeRef::STRING)))
            .argument(InputValue::new("validAt", TypeRef::named(TypeRef::STRING))),
        )
        .field(
            Field::new("entities", TypeRef::named_nn(ENTITY_PAGE), |ctx| {
                FieldFuture::new(async move {
                    let kind = opt_string(&ctx, "kind")?;
                    let entity_type = opt_string(&ctx, "type")?;
                    let council = opt_string(&ctx, "council")?;
                    let cursor = opt_string(&ctx, "after")?;
                    let max_page = ctx.data::<ApiConfig>().map(|c| c.max_page).unwrap_or(ApiConfig::default().max_page);
                    let first = opt_count(&ctx, "first")?.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
                    let limit = service::page_limit(max_page, "first", first).map_err(|e| to_graphql(&e))?;
                    let store = store(&ctx)?;
                    let caller = caller(&ctx)?;
                    let (page, seq) = blocking(move || {
                        let page = service::list(
                            &store,
                            &caller,
                            kind.as_deref(),
                            entity_type.as_deref(),
                            council.as_deref(),
                            cursor.as_deref(),
                            limit,
                        )?;
                        // Read the page at a head taken after listing, so every listed entity exists there.
                        Ok((page, store.head().seq))
                    })
                    .await?;
                    let items = read_all(loaders(&ctx)?, page.items.iter().map(ToString::to_string), seq).await?;
                    Ok(Some(FieldValue::owned_any(PageNode { items, next_cursor: page.next_cursor })))
                })
            })
            .description("Entities in id order, a page at a time (the same opaque cursor as `GET /v1/entities`), read now")
            .argument(InputValue::new("kind", TypeRef::named(TypeRef::STRING)).description("person, object, location or event"))
            .argument(InputValue::new("type", TypeRef::named(TypeRef::STRING)).description("A type of the schema pack"))
            .argument(InputValue::new("council", TypeRef::named(TypeRef::STRING)).description("Only entities this council contributed to"))
            .argument(InputValue::new("first", TypeRef::named(TypeRef::INT)).description("Page size (default 100)"))
            .argument(InputValue::new("after", TypeRef::named(TypeRef::STRING)).description("The `nextCursor` of the previous page")),
        )
        .field(
            Field::new("search", TypeRef::named_nn_list_nn(ENTITY), move |ctx| {
                let names = Arc::clone(&search_names);
                FieldFuture::new(async move {
                    let params = SearchParams {
                        nhs_number: opt_string(&ctx, "nhsNumber")?,
                        family_name: opt_string(&ctx, "familyName")?,
                        given_name: opt_string(&ctx, "givenName")?,
                        birth_date: opt_string(&ctx, "birthDate")?,
                        postcode: opt_string(&ctx, "postcode")?,
                    };
                    let store = store(&ctx)?;
                    let caller = caller(&ctx)?;
                    let (matches, seq) = blocking(move || {
                        let seq = store.head().seq;
                        Ok((service::search(&store, &caller, &params)?, seq))
                    })
                    .await?;
                    let views = read_all(loaders(&ctx)?, matches.items.iter().map(ToString::to_string), seq).await?;
                    Ok(Some(FieldValue::list(views.into_iter().map(|v| node_value(v, &names)))))
                })
            })
            .description("Entities matching every given parameter, read now")
            .argument(InputValue::new("nhsNumber", TypeRef::named(TypeRef::STRING)))
            .argument(InputValue::new("familyName", TypeRef::named(TypeRef::STRING)))
            .argument(InputValue::new("givenName", TypeRef::named(TypeRef::STRING)))
            .argument(InputValue::new("birthDate", TypeRef::named(TypeRef::STRING)))
            .argument(InputValue::new("postcode", TypeRef::named(TypeRef::STRING))),
        )
        .field(
            Field::new("identifier", TypeRef::named_nn_list_nn(ENTITY), move |ctx| {
                let names = Arc::clone(&identifier_names);
                FieldFuture::new(async move {
                    let system = ctx.args.try_get("system")?.string()?.to_owned();
                    let value = ctx.args.try_get("value")?.string()?.to_owned();
                    let store = store(&ctx)?;
                    let caller = caller(&ctx)?;
                    let (ids, seq) = blocking(move || {
                        let seq = store.head().seq;
                        let ids = match service::identifier(&store, &caller, &system, &value) {
                            Ok(matches) => matches.items,
                            Err(ApiError::NotFound { .. }) => Vec::new(),
                            Err(e) => return Err(e),
                        };
                        Ok((ids, seq))
                    })
                    .await?;
                    let views = read_all(loaders(&ctx)?, ids.iter().map(ToString::to_string), seq).await?;
                    Ok(Some(FieldValue::list(views.into_iter().map(|v| node_value(v, &names)))))
                })
            })
            .description("Entities holding this identifier, read now")
            .argument(InputValue::new("system", TypeRef::named_nn(TypeRef::STRING)))
            .argument(InputValue::new("value", TypeRef::named_nn(TypeRef::STRING))),
        )
        .field(
            Field::new("history", TypeRef::named_nn_list_nn(VERSION), |ctx| {
                FieldFuture::new(async move {
                    let id = ctx.args.try_get("id")?.string()?.to_owned();
                    let store = store(&ctx)?;
                    let caller = caller(&ctx)?;
                    let view = blocking(move || service::history(&store, &caller, &id)).await?;
                    Ok(Some(FieldValue::list(view.versions.into_iter().map(FieldValue::owned_any))))
                })
            })
            .description("Every version of an entity, oldest first, each with its change, actor and source")
            .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID))),
        )
        .field(
            Field::new("diff", TypeRef::named_nn(DIFF), |ctx| {
                FieldFuture::new(async move {
                    let id = ctx.args.try_get("id")?.string()?.to_owned();
                    let from = opt_count(&ctx, "from")?.unwrap_or(0);
                    let to = opt_count(&ctx, "to")?.unwrap_or(0);
                    let store = store(&ctx)?;
                    let caller = caller(&ctx)?;
                    let view = blocking(move || service::diff(&store, &caller, &id, from, to)).await?;
                    Ok(Some(FieldValue::owned_any(view)))
                })
            })
            .description("The field-level delta from version `from` to version `to` (1-based, either order)")
            .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
            .argument(InputValue::new("from", TypeRef::named_nn(TypeRef::INT)))
            .argument(InputValue::new("to", TypeRef::named_nn(TypeRef::INT))),
        )
        .field(
            Field::new("journal", TypeRef::named_nn(JOURNAL_PAGE), |ctx| {
                FieldFuture::new(async move {
                    let after = opt_count(&ctx, "after")?.unwrap_or(0);
                    let max_page = ctx.data::<ApiConfig>().map(|c| c.max_page).unwrap_or(ApiConfig::default().max_page);
                    let first = opt_count(&ctx, "first")?.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
                    let limit = service::page_limit(max_page, "first", first).map_err(|e| to_graphql(&e))?;
                    let store = store(&ctx)?;
                    let caller = caller(&ctx)?;
                    let view = blocking(move || service::journal(&store, &caller, after, limit)).await?;
                    Ok(Some(FieldValue::owned_any(JournalNode { transactions: view.transactions, head_seq: view.head_seq })))
                })
            })
            .description("The change feed: transactions after the sequence `after` (default 0), oldest first")
            .argument(InputValue::new("after", TypeRef::named(TypeRef::INT)))
            .argument(InputValue::new("first", TypeRef::named(TypeRef::INT)).description("Page size (default 100)")),
        )
}

fn mutation_object() -> Object {
    Object::new("Mutation").field(
        Field::new("transaction", TypeRef::named_nn(JSON), |ctx| {
            FieldFuture::new(async move {
                let input: TransactionInput = ctx
                    .args
                    .try_get("input")?
                    .deserialize()
                    .map_err(|e| to_graphql(&ApiError::invalid("input", e.message)))?;
                let key = opt_string(&ctx, "idempotencyKey")?;
                let store = store(&ctx)?;
                let caller = caller(&ctx)?;
                let view = blocking(move || service::commit(&store, &caller, input, key)).await?;
                Ok(Some(json(&view)?))
            })
        })
        .description("One atomic transaction, the body of `POST /v1/transactions`: `{source, reason, changes}`; answers the committed transaction (`seq`, `refs`, ...)")
        .argument(InputValue::new("input", TypeRef::named_nn(JSON)))
        .argument(InputValue::new("idempotencyKey", TypeRef::named(TypeRef::STRING))),
    )
}

fn subscription_object() -> Subscription {
    Subscription::new("Subscription").field(
        SubscriptionField::new("transactions", TypeRef::named_nn(TRANSACTION), |ctx| {
            SubscriptionFieldFuture::new(async move {
                let after = opt_count(&ctx, "after")?;
                let store = store(&ctx)?;
                let caller = caller(&ctx)?;
                let follower = JournalFollower::start(store, caller, after).map_err(|e| to_graphql(&e))?;
                // State: the follower (gone after an error, which ends the stream) and the
                // transactions read but not yet sent.
                let state = (Some(follower), std::collections::VecDeque::<Transaction>::new());
                Ok(futures_util::stream::unfold(state, |(mut follower, mut pending)| async move {
                    loop {
                        let f = follower.as_mut()?;
                        if let Some(tx) = pending.pop_front() {
                            // Read before the token's exp, but not sent after it (a slow
                            // reader can hold a batch back that long).
                            if let Err(e) = f.require_live() {
                                return Some((Err(to_graphql(&e)), (None, pending)));
                            }
                            return Some((Ok(FieldValue::owned_any(tx)), (follower, pending)));
                        }
                        match f.next(FOLLOW_WAIT).await {
                            Ok(batch) => pending.extend(batch),
                            Err(e) => return Some((Err(to_graphql(&e)), (None, pending))),
                        }
                    }
                }))
            })
        })
        .description("The change feed, live: every transaction after the sequence `after` (default: the current head) in order, then each new commit as it becomes durable")
        .argument(InputValue::new("after", TypeRef::named(TypeRef::INT))),
    )
}
