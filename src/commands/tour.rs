//! The tour printed after `demo`: one person's linked records, one entity's history and its
//! state as of an earlier date.

use std::fmt::Write as _;

use pole_model::{EntityId, EntityState, Kind};
use pole_store::{Direction, LinkView, ReadAt, Store, Version};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Tour {
    pub person: Option<Linked>,
    pub history_of: Option<EntityId>,
    pub history: Vec<Version>,
    /// The same entity as of the sequence before its last version.
    pub earlier: Option<Earlier>,
}

#[derive(Debug, Serialize)]
pub struct Linked {
    pub entity: EntityState,
    pub links: Vec<LinkView>,
}

#[derive(Debug, Serialize)]
pub struct Earlier {
    pub as_of_seq: u64,
    pub as_of_time: String,
    pub entity: EntityState,
}

/// Picks the safeguarding concern with the most versions among the first few hundred, and
/// its subject.
pub fn build(store: &Store) -> anyhow::Result<Tour> {
    let (candidates, _) = store.list(Some(Kind::Event), Some("safeguarding_concern"), None, 300)?;
    let mut best: Option<(EntityId, Vec<Version>)> = None;
    for id in candidates {
        let history = store.history(&id)?;
        if best.as_ref().is_none_or(|(_, h)| history.len() > h.len()) {
            best = Some((id, history));
        }
    }
    let Some((concern, history)) = best else {
        return Ok(Tour { person: None, history_of: None, history: Vec::new(), earlier: None });
    };
    let subject = store.links(&concern, Some(Direction::Out), Some("subject"), ReadAt::NOW)?.into_iter().next();
    let person = match subject {
        Some(link) => match store.entity(&link.other, ReadAt::NOW)? {
            Some(entity) => {
                let links = store.links(&link.other, None, None, ReadAt::NOW)?;
                Some(Linked { entity, links })
            }
            None => None,
        },
        None => None,
    };
    let earlier = match history.last() {
        Some(last) if history.len() > 1 => {
            let seq = last.seq - 1;
            let time = store.transaction_meta(seq)?.map(|m| m.recorded_at.to_string()).unwrap_or_default();
            store.entity(&concern, ReadAt::as_of_seq(seq))?.map(|entity| Earlier {
                as_of_seq: seq,
                as_of_time: time,
                entity,
            })
        }
        _ => None,
    };
    Ok(Tour { person, history_of: Some(concern), history, earlier })
}

pub fn render(store: &Store, tour: &Tour) -> String {
    let mut out = String::new();
    if let Some(person) = &tour.person {
        let _ = writeln!(out, "== One person and their linked records ==");
        out.push_str(&super::render_entity(store, &person.entity, &person.links));
        let _ = writeln!(out, "(pole-ods entity {} --as-of DATE shows them as known at DATE)\n", person.entity.id);
    }
    if let Some(id) = &tour.history_of {
        let _ = writeln!(out, "== History of safeguarding concern {id} ==");
        for version in &tour.history {
            out.push_str(&super::history::render_version(version));
        }
        out.push('\n');
    }
    if let Some(earlier) = &tour.earlier {
        let _ = writeln!(
            out,
            "== The same concern as of seq {} ({}), before its last change ==",
            earlier.as_of_seq, earlier.as_of_time
        );
        out.push_str(&super::render_entity(store, &earlier.entity, &[]));
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "Next: pole-ods history ID, pole-ods entity ID --as-of T --valid-at D, pole-ods verify, pole-ods replay"
    );
    out
}
