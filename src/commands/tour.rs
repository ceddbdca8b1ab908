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
    /// When a version was recorded late (valid before a value already recorded), the
    /// entity as the world was at that version's valid time.
    pub late: Option<Late>,
}

#[derive(Debug, Serialize)]
pub struct Late {
    pub version: u64,
    pub valid_at: String,
    pub entity: EntityState,
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
        return Ok(Tour { person: None, history_of: None, history: Vec::new(), earlier: None, late: None });
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
    let late = late_version(&history)
        .map(|v| {
            let at = ReadAt { as_of: None, valid_at: Some(v.valid_time) };
            store
                .entity(&concern, at)
                .map(|e| e.map(|entity| Late { version: v.version, valid_at: v.valid_time.to_string(), entity }))
        })
        .transpose()?
        .flatten();
    Ok(Tour { person, history_of: Some(concern), history, earlier, late })
}

/// The first version whose valid time is earlier than one already recorded before it.
fn late_version(history: &[Version]) -> Option<&Version> {
    let mut latest = None;
    for version in history {
        if latest.is_some_and(|l| version.valid_time < l) {
            return Some(version);
        }
        latest = latest.max(Some(version.valid_time));
    }
    None
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
    if let Some(late) = &tour.late {
        let _ = writeln!(
            out,
            "== Version {} was recorded late: the concern as the world was on {} (--valid-at) ==",
            late.version, late.valid_at
        );
        out.push_str(&super::render_entity(store, &late.entity, &[]));
        let _ =
            writeln!(out, "(read now, the later-valid values win; the late ones show when read valid at their time)\n");
    }
    let _ = writeln!(
        out,
        "Next: pole-ods history ID, pole-ods entity ID --as-of T --valid-at D, pole-ods verify, pole-ods replay"
    );
    out
}
