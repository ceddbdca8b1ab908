//! The dynamic schema: built once from the schema registry, so a new pack needs no new Rust
//! structs. Every read goes through [`crate::service`], pinned to the root's read point.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_graphql::dynamic::{
    Field, FieldFuture, FieldValue, InputValue, Interface, InterfaceField, Object, ResolverContext, Scalar, Schema,
    SchemaError, TypeRef,
};
use async_graphql::Value;
use pole_model::{Identifier, SchemaRegistry, ValueType};
use pole_store::{Direction, LinkView, Store, Version};

use super::error::to_graphql;
use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::service::{self, SearchParams, TransactionInput};
use crate::views::{EntityView, ReadAtView};

const ENTITY: &str = "Entity";
const LINK: &str = "Link";
const IDENTIFIER: &str = "Identifier";
const VERSION: &str = "Version";
const JSON: &str = "JSON";
/// The object type of an entity whose type the registry does not (or no longer) define.
const GENERIC: &str = "GenericEntity";
const RESERVED: &[&str] =
    &[ENTITY, LINK, IDENTIFIER, VERSION, JSON, GENERIC, "Query", "Mutation", "String", "Int", "Float", "Boolean", "ID"];
/// The fields every entity has; a pack attribute of the same name is only in `attributes`.
const COMMON_FIELDS: &[&str] =
    &["id", "kind", "type", "version", "status", "identifiers", "links", "history", "attributes"];

/// Schema type name to GraphQL object type name.
#[derive(Debug, Default)]
pub(crate) struct TypeNames(BTreeMap<String, String>);

impl TypeNames {
    fn object_for(&self, entity_type: &str) -> String {
        self.0.get(entity_type).cloned().unwrap_or_else(|| GENERIC.to_owned())
    }
}

/// Builds the schema over `store`, with its registry's types.
pub(crate) fn build(store: &Store, max_depth: usize, max_complexity: usize) -> Result<Schema, SchemaError> {
    let registry: &SchemaRegistry = store.schema();
    let names = Arc::new(type_names(registry));
    let interface = Interface::new(ENTITY)
        .description("A person, object, location or event, read at the root's read point")
        .field(InterfaceField::new("id", TypeRef::named_nn(TypeRef::ID)))
        .field(InterfaceField::new("kind", TypeRef::named_nn(TypeRef::STRING)))
        .field(InterfaceField::new("type", TypeRef::named_nn(TypeRef::STRING)))
        .field(InterfaceField::new("version", TypeRef::named_nn(TypeRef::INT)))
        .field(InterfaceField::new("status", TypeRef::named_nn(TypeRef::STRING)))
        .field(InterfaceField::new("attributes", TypeRef::named_nn(JSON)))
        .field(InterfaceField::new("identifiers", TypeRef::named_nn_list_nn(IDENTIFIER)))
        .field(
            InterfaceField::new("links", TypeRef::named_nn_list_nn(LINK))
                .argument(InputValue::new("direction", TypeRef::named(TypeRef::STRING)))
                .argument(InputValue::new("role", TypeRef::named(TypeRef::STRING))),
        )
        .field(InterfaceField::new("history", TypeRef::named_nn_list_nn(VERSION)));
    let mut builder = Schema::build("Query", Some("Mutation"), None)
        .register(Scalar::new(JSON).description("Any JSON value"))
        .register(interface)
        .register(identifier_object())
        .register(version_object())
        .register(link_object(Arc::clone(&names)))
        .register(entity_object(GENERIC, None))
        .register(query_object())
        .register(mutation_object())
        .data(store.clone())
        .data(Arc::clone(&names))
        .limit_depth(max_depth)
        .limit_complexity(max_complexity);
    for (type_name, def) in registry.types() {
        let object_name = names.object_for(type_name);
        builder = builder.register(entity_object(&object_name, Some((type_name, &def.attributes))));
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
struct Node(EntityView);

/// A link with the read point of the entity it was read from.
struct LinkNode {
    link: LinkView,
    read_at: ReadAtView,
}

/// The read point as the service layer takes it: the pinned journal sequence and valid time.
fn point(read_at: &ReadAtView) -> (Option<String>, Option<String>) {
    let as_of = (read_at.as_of_seq > 0).then(|| read_at.as_of_seq.to_string());
    (as_of, read_at.valid_at.map(|t| t.to_string()))
}

fn node_value(view: EntityView, names: &TypeNames) -> FieldValue<'static> {
    let object = names.object_for(&view.entity_type);
    FieldValue::owned_any(Node(view)).with_type(object)
}

fn store(ctx: &ResolverContext<'_>) -> async_graphql::Result<Store> {
    ctx.data::<Store>().cloned().map_err(|_| to_graphql(&ApiError::Internal("no store in the schema".into())))
}

fn caller(ctx: &ResolverContext<'_>) -> async_graphql::Result<Caller> {
    ctx.data::<Caller>().cloned().map_err(|_| to_graphql(&ApiError::Unauthorized("no caller for this query".into())))
}

fn parent<'a, T: 'static>(ctx: &'a ResolverContext<'_>) -> async_graphql::Result<&'a T> {
    ctx.parent_value
        .downcast_ref::<T>()
        .ok_or_else(|| to_graphql(&ApiError::Internal("unexpected parent value".into())))
}

fn opt_string(ctx: &ResolverContext<'_>, name: &str) -> async_graphql::Result<Option<String>> {
    match ctx.args.get(name) {
        None => Ok(None),
        Some(v) if v.is_null() => Ok(None),
        Some(v) => Ok(Some(v.string()?.to_owned())),
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
                let direction = opt_string(&ctx, "direction")?;
                let role = opt_string(&ctx, "role")?;
                let (id, read_at) = (node.0.id.to_string(), node.0.read_at);
                let (as_of, valid_at) = point(&read_at);
                let store = store(&ctx)?;
                let caller = caller(&ctx)?;
                let view = blocking(move || {
                    service::links(
                        &store,
                        &caller,
                        &id,
                        direction.as_deref(),
                        role.as_deref(),
                        as_of.as_deref(),
                        valid_at.as_deref(),
                    )
                })
                .await?;
                Ok(Some(FieldValue::list(
                    view.links.into_iter().map(|link| FieldValue::owned_any(LinkNode { link, read_at })),
                )))
            })
        })
        .argument(
            InputValue::new("direction", TypeRef::named(TypeRef::STRING)).description("out, in or both (the default)"),
        )
        .argument(InputValue::new("role", TypeRef::named(TypeRef::STRING))),
        Field::new("history", TypeRef::named_nn_list_nn(VERSION), |ctx| {
            FieldFuture::new(async move {
                let node = parent::<Node>(&ctx)?;
                let (id, seq) = (node.0.id.to_string(), node.0.read_at.as_of_seq);
                let store = store(&ctx)?;
                let caller = caller(&ctx)?;
                let view = blocking(move || service::history(&store, &caller, &id)).await?;
                // Versions recorded after the read point were not known there.
                Ok(Some(FieldValue::list(
                    view.versions.into_iter().filter(|v| v.seq <= seq).map(FieldValue::owned_any),
                )))
            })
        })
        .description("The versions recorded up to the read point, oldest first"),
    ]
}

/// One object type implementing `Entity`, with the type's attributes as typed fields.
fn entity_object(object_name: &str, def: Option<(&String, &BTreeMap<String, pole_model::AttributeDef>)>) -> Object {
    let mut object = Object::new(object_name).implement(ENTITY);
    if let Some((type_name, _)) = def {
        object = object.description(format!("An entity of the schema type `{type_name}`"));
    }
    for field in common_fields() {
        object = object.field(field);
    }
    for (name, attr) in def.map(|(_, a)| a.iter()).into_iter().flatten() {
        if !valid_field_name(name) {
            tracing::warn!(attribute = %name, "attribute has no GraphQL field; it is in `attributes`");
            continue;
        }
        let (ty, value_type) = match attr.value_type {
            ValueType::Integer => (TypeRef::INT, ValueType::Integer),
            ValueType::Decimal => (TypeRef::FLOAT, ValueType::Decimal),
            ValueType::Boolean => (TypeRef::BOOLEAN, ValueType::Boolean),
            other => (TypeRef::STRING, other),
        };
        let attribute = name.clone();
        let mut field = Field::new(name.clone(), TypeRef::named(ty), move |ctx| {
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
                    let other = node.link.other.to_string();
                    let (as_of, valid_at) = point(&node.read_at);
                    let store = store(&ctx)?;
                    let caller = caller(&ctx)?;
                    let view = blocking(move || {
                        service::entity(&store, &caller, &other, as_of.as_deref(), valid_at.as_deref())
                    })
                    .await?;
                    Ok(Some(node_value(view, &names)))
                })
            })
            .description("The other end, read at the same point as the root"),
        )
}

// ------------------------------------------------------------------------- roots

fn query_object() -> Object {
    Object::new("Query")
        .field(
            Field::new("entity", TypeRef::named(ENTITY), |ctx| {
                FieldFuture::new(async move {
                    let id = ctx.args.try_get("id")?.string()?.to_owned();
                    let as_of = opt_string(&ctx, "asOf")?;
                    let valid_at = opt_string(&ctx, "validAt")?;
                    let store = store(&ctx)?;
                    let caller = caller(&ctx)?;
                    let names = ctx.data::<Arc<TypeNames>>()?.clone();
                    let view = blocking(move || {
                        match service::entity(&store, &caller, &id, as_of.as_deref(), valid_at.as_deref()) {
                            Ok(view) => Ok(Some(view)),
                            Err(ApiError::NotFound { .. }) => Ok(None),
                            Err(e) => Err(e),
                        }
                    })
                    .await?;
                    Ok(view.map(|v| node_value(v, &names)))
                })
            })
            .description("An entity as of `asOf` (a journal sequence or an RFC 3339 time or date) and valid at `validAt`; both hold for the whole traversal")
            .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
            .argument(InputValue::new("asOf", TypeRef::named(TypeRef::STRING)))
            .argument(InputValue::new("validAt", TypeRef::named(TypeRef::STRING))),
        )
        .field(
            Field::new("search", TypeRef::named_nn_list_nn(ENTITY), |ctx| {
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
                    let names = ctx.data::<Arc<TypeNames>>()?.clone();
                    let views = blocking(move || {
                        let head = store.head().seq.to_string();
                        let matches = service::search(&store, &caller, &params)?;
                        read_all(&store, &caller, matches.items.iter().map(ToString::to_string), &head)
                    })
                    .await?;
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
            Field::new("identifier", TypeRef::named_nn_list_nn(ENTITY), |ctx| {
                FieldFuture::new(async move {
                    let system = ctx.args.try_get("system")?.string()?.to_owned();
                    let value = ctx.args.try_get("value")?.string()?.to_owned();
                    let store = store(&ctx)?;
                    let caller = caller(&ctx)?;
                    let names = ctx.data::<Arc<TypeNames>>()?.clone();
                    let views = blocking(move || {
                        let head = store.head().seq.to_string();
                        let ids = match service::identifier(&store, &caller, &system, &value) {
                            Ok(matches) => matches.items,
                            Err(ApiError::NotFound { .. }) => Vec::new(),
                            Err(e) => return Err(e),
                        };
                        read_all(&store, &caller, ids.iter().map(ToString::to_string), &head)
                    })
                    .await?;
                    Ok(Some(FieldValue::list(views.into_iter().map(|v| node_value(v, &names)))))
                })
            })
            .description("Entities holding this identifier, read now")
            .argument(InputValue::new("system", TypeRef::named_nn(TypeRef::STRING)))
            .argument(InputValue::new("value", TypeRef::named_nn(TypeRef::STRING))),
        )
}

/// Reads each entity at `as_of`; one that no longer reads (erased) is left out.
fn read_all(
    store: &Store,
    caller: &Caller,
    ids: impl Iterator<Item = String>,
    as_of: &str,
) -> ApiResult<Vec<EntityView>> {
    let mut views = Vec::new();
    for id in ids {
        match service::entity(store, caller, &id, Some(as_of), None) {
            Ok(view) => views.push(view),
            Err(ApiError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(views)
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
                let caller = caller(&ctx)?;
                let store = store(&ctx)?;
                let view = blocking(move || service::commit(&store, &caller, input, key)).await?;
                Ok(Some(json(&view)?))
            })
        })
        .description("One atomic transaction, the body of `POST /v1/transactions`: `{source, reason, changes}`; answers the committed transaction (`seq`, `refs`, ...)")
        .argument(InputValue::new("input", TypeRef::named_nn(JSON)))
        .argument(InputValue::new("idempotencyKey", TypeRef::named(TypeRef::STRING))),
    )
}
