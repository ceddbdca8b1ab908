//! What the generator has produced, including every deliberate defect, so that reports and
//! data-quality checks run on the demo data can be compared with what was planted.

use serde::Serialize;

macro_rules! counters {
    ($($(#[doc = $doc:literal])* $name:ident),* $(,)?) => {
        /// Counts of what the generator emitted. Entity counts are of committed transactions;
        /// `transactions`, `nhs_numbers_invalid_submitted` and the rejection counts are of
        /// what was submitted.
        #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
        pub struct DemoStats {
            $($(#[doc = $doc])* pub $name: u64,)*
            /// The last rejection the generator did not plan, for the command line to show.
            #[serde(skip_serializing_if = "Option::is_none")]
            pub last_unexpected_rejection: Option<String>,
        }

        impl DemoStats {
            /// Adds the counts of one committed transaction.
            pub(crate) fn add(&mut self, other: &DemoStats) {
                $(self.$name += other.$name;)*
            }
        }
    };
}

counters! {
    /// Transactions emitted, resubmissions included.
    transactions,
    transactions_committed,
    transactions_rejected,
    /// Corrected resubmissions of rejected transactions.
    resubmissions,
    /// Rejections of transactions that carried no deliberate defect.
    unexpected_rejections,
    councils,
    providers,
    care_settings,
    hospitals,
    /// Every `person` entity: clients, carers and alleged perpetrators.
    people,
    clients,
    carers,
    alleged_perpetrators,
    addresses,
    /// Changes of residence after the first address (including into care homes).
    moves,
    contacts,
    referrals,
    assessments,
    services,
    reviews,
    safeguarding_concerns,
    allegations,
    strategy_discussions,
    hospital_admissions,
    hospital_discharges,
    notifications,
    deaths,
    /// Updates of existing entities (entities with more than one version).
    updates,
    /// The same person recorded as a separate `person` by a second council.
    duplicates_across_councils,
    /// People submitted with an NHS number whose check digit is wrong (each rejected).
    nhs_numbers_invalid_submitted,
    /// Clients and carers committed without an NHS number.
    nhs_numbers_missing,
    /// NHS numbers added later to people first recorded without one.
    nhs_numbers_traced,
    /// Code values outside the national lists (local codes mapping has to catch).
    local_codes_used,
    /// Changes in batches re-keyed from paper months after the events.
    late_recorded_changes,
    /// Updates whose valid time is earlier than an update of the same entity already recorded.
    out_of_order_updates,
    name_corrections,
    opt_outs,
}
