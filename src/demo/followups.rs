//! What happens to an episode after it starts: assessments end, services end and are
//! reviewed, concerns are concluded, patients are discharged, names are corrected, people die.
//! Each is scheduled for its real-world date and emitted in a council's next update batch
//! after that date, so entities gain versions over time.

use std::collections::BTreeMap;

use chrono::{NaiveDate, NaiveDateTime};
use pole_model::EntityId;

use crate::demo::sim::Sim;
use crate::demo::tx::{Handle, Tx};

#[derive(Debug, Clone)]
pub(crate) enum FollowUp {
    EndAssessment { assessment: Handle, person: Handle, serial: Option<u64>, start: NaiveDate, carer: bool },
    EndService { service: Handle },
    Review { service: Handle, person: Handle, kind: &'static str, ends: Option<NaiveDate> },
    CompleteReview { review: Handle },
    Conclude { concern: Handle, initiated: NaiveDate },
    Discharge { admission: Handle, person: Handle, serial: u64, hospital: Handle, admitted: NaiveDateTime },
    CorrectName { person: Handle, family: String, since: NaiveDate },
    Death { person: Handle, serial: u64 },
}

impl FollowUp {
    pub(crate) fn resolve(&mut self, refs: &BTreeMap<String, EntityId>) -> bool {
        match self {
            FollowUp::EndAssessment { assessment, person, .. } => assessment.resolve(refs) && person.resolve(refs),
            FollowUp::EndService { service } => service.resolve(refs),
            FollowUp::Review { service, person, .. } => service.resolve(refs) && person.resolve(refs),
            FollowUp::CompleteReview { review } => review.resolve(refs),
            FollowUp::Conclude { concern, .. } => concern.resolve(refs),
            FollowUp::Discharge { admission, person, hospital, .. } => {
                admission.resolve(refs) && person.resolve(refs) && hospital.resolve(refs)
            }
            FollowUp::CorrectName { person, .. } | FollowUp::Death { person, .. } => person.resolve(refs),
        }
    }
}

impl Sim {
    /// An update batch: the council's follow-ups that are due, oldest first, up to a file's
    /// worth of changes.
    pub(crate) fn update_batch(&mut self, c: usize, tx: &mut Tx, budget: usize) {
        let size = (self.range(5, 60) as usize).min(budget.max(5));
        while tx.len() < size {
            let Some((due, item)) = self.world.councils[c].agenda.pop_due(self.today) else {
                break;
            };
            self.follow_up(c, tx, due, item);
        }
    }

    fn follow_up(&mut self, c: usize, tx: &mut Tx, due: NaiveDate, item: FollowUp) {
        match item {
            FollowUp::EndAssessment { assessment, person, serial, start, carer } => {
                self.end_assessment(c, tx, (&assessment, &person, serial), start, due, carer)
            }
            FollowUp::EndService { service } => self.end_service(tx, &service, due),
            FollowUp::Review { service, person, kind, ends } => {
                self.review(c, tx, (&service, &person), kind, due, ends)
            }
            FollowUp::CompleteReview { review } => self.complete_review(tx, &review, due),
            FollowUp::Conclude { concern, initiated } => self.conclude(c, tx, &concern, initiated, due),
            FollowUp::Discharge { admission, person, serial, hospital, admitted } => {
                self.discharge(c, tx, (&admission, &person, serial, &hospital), admitted, due)
            }
            FollowUp::CorrectName { person, family, since } => self.correct_name(tx, &person, &family, since),
            FollowUp::Death { person, serial } => self.record_death(c, tx, &person, serial, due),
        }
    }
}
