//! The simulation's clock, random draws and identifier numbering.
//!
//! The clock is simulated, not read from the machine, so that a seed always produces the
//! same requests: submissions run from `START` to `END` (six financial years, all in the
//! past) in proportion to the changes emitted so far.

use chrono::{Datelike, Days, NaiveDate, NaiveDateTime, NaiveTime};
use pole_model::nhs_check_digit;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::demo::places::COUNCILS;
use crate::demo::world::World;

const fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    match NaiveDate::from_ymd_opt(y, m, d) {
        Some(date) => date,
        None => NaiveDate::MIN,
    }
}

/// The first day submissions describe.
pub(crate) const START: NaiveDate = ymd(2020, 4, 1);
/// The last day of the simulated submissions.
pub(crate) const END: NaiveDate = ymd(2026, 3, 31);

#[derive(Debug)]
pub(crate) struct Sim {
    pub rng: ChaCha8Rng,
    pub world: World,
    /// The simulated submission date of the transaction being built.
    pub today: NaiveDate,
}

pub(crate) fn add_days(date: NaiveDate, days: i64) -> NaiveDate {
    let shifted = if days >= 0 {
        date.checked_add_days(Days::new(days.unsigned_abs()))
    } else {
        date.checked_sub_days(Days::new(days.unsigned_abs()))
    };
    shifted.unwrap_or(date)
}

/// Whole years between two dates.
pub(crate) fn age_on(birth: NaiveDate, on: NaiveDate) -> i32 {
    let mut age = on.year() - birth.year();
    if (on.month(), on.day()) < (birth.month(), birth.day()) {
        age -= 1;
    }
    age
}

/// A bijection of `0..modulus` that scatters consecutive numbers, so identifiers are unique
/// without looking sequential. `modulus` is a power of ten; the multiplier is coprime to it.
fn scatter(n: u64, modulus: u64, salt: u64) -> u64 {
    const MULTIPLIER: u128 = 7_919_317;
    ((u128::from(n % modulus) * MULTIPLIER + u128::from(salt % modulus)) % u128::from(modulus)) as u64
}

impl Sim {
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.rng.gen_bool(p.clamp(0.0, 1.0))
    }

    /// An inclusive integer range; `lo` when the range is empty.
    pub(crate) fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            lo
        } else {
            self.rng.gen_range(lo..=hi)
        }
    }

    /// One of `items`, which must not be empty (every list passed is a non-empty constant).
    pub(crate) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.rng.gen_range(0..items.len())]
    }

    pub(crate) fn weighted<T: Copy>(&mut self, items: &[(T, u32)]) -> T {
        let total: u32 = items.iter().map(|(_, w)| w).sum();
        let mut ticket = self.rng.gen_range(0..total.max(1));
        for (item, weight) in items {
            if ticket < *weight {
                return *item;
            }
            ticket -= weight;
        }
        items[items.len() - 1].0
    }

    /// A date in `lo..=hi` (`lo` when the range is empty).
    pub(crate) fn date_between(&mut self, lo: NaiveDate, hi: NaiveDate) -> NaiveDate {
        let span = (hi - lo).num_days();
        add_days(lo, self.range(0, span))
    }

    pub(crate) fn days_before(&mut self, date: NaiveDate, lo: i64, hi: i64) -> NaiveDate {
        add_days(date, -self.range(lo, hi))
    }

    pub(crate) fn days_after(&mut self, date: NaiveDate, lo: i64, hi: i64) -> NaiveDate {
        add_days(date, self.range(lo, hi))
    }

    /// A time of day on `date`, between the given hours.
    pub(crate) fn time_on(&mut self, date: NaiveDate, from_hour: u32, to_hour: u32) -> NaiveDateTime {
        let hour = self.range(i64::from(from_hour), i64::from(to_hour)) as u32;
        let minute = self.range(0, 59) as u32;
        date.and_time(NaiveTime::from_hms_opt(hour.min(23), minute, 0).unwrap_or_default())
    }

    /// A valid NHS number that no real person has: the 9-prefixed range is never issued.
    pub(crate) fn next_nhs(&mut self) -> String {
        loop {
            let n = scatter(self.world.nhs_no, 10_000_000, self.world.salt);
            self.world.nhs_no += 1;
            let text = format!("99{n:07}");
            let mut nine = [0u8; 9];
            for (d, b) in nine.iter_mut().zip(text.bytes()) {
                *d = b - b'0';
            }
            // A tenth of numbers have no valid check digit and are never issued.
            if let Some(check) = nhs_check_digit(&nine) {
                return format!("{text}{check}");
            }
        }
    }

    /// The same number with a wrong check digit, as a keying slip produces.
    pub(crate) fn corrupt_nhs(&mut self, valid: &str) -> String {
        let check = valid.bytes().last().map_or(0, |b| b - b'0');
        let wrong = (check + self.range(1, 9) as u8) % 10;
        format!("{}{wrong}", &valid[..valid.len() - 1])
    }

    pub(crate) fn next_cqc_provider(&mut self) -> String {
        self.world.cqc_no += 1;
        format!("1-1{:08}", scatter(self.world.cqc_no, 100_000_000, self.world.salt))
    }

    pub(crate) fn next_cqc_location(&mut self) -> String {
        self.world.cqc_no += 1;
        format!("1-1{:09}", scatter(self.world.cqc_no, 1_000_000_000, self.world.salt))
    }

    pub(crate) fn next_uprn(&mut self) -> String {
        self.world.uprn_no += 1;
        format!("10{:010}", scatter(self.world.uprn_no, 10_000_000_000, self.world.salt))
    }

    pub(crate) fn next_mrn(&mut self) -> String {
        self.world.mrn_no += 1;
        format!("{:08}", scatter(self.world.mrn_no, 100_000_000, self.world.salt))
    }

    /// The council's next client id in its own format; numbers skip a little, as records
    /// created and deleted in a live system leave gaps.
    pub(crate) fn next_client_id(&mut self, c: usize) -> String {
        let def = &COUNCILS[c];
        let gap = self.range(1, 3) as u64;
        let state = &mut self.world.councils[c];
        state.client_no += gap;
        format!("{}{:0width$}", def.client_prefix, state.client_no, width = def.client_digits)
    }

    /// A safeguarding referral number, `SG/<year>/<n>`.
    pub(crate) fn next_safeguarding_id(&mut self, c: usize, initiated: NaiveDate) -> String {
        let state = &mut self.world.councils[c];
        state.referral_no += 1;
        format!("SG/{}/{:06}", initiated.year(), state.referral_no)
    }

    /// A care referral or other event number with a type prefix, e.g. `REF0001234`.
    pub(crate) fn next_event_id(&mut self, c: usize, prefix: &str) -> String {
        let state = &mut self.world.councils[c];
        state.event_no += 1;
        format!("{prefix}{:07}", state.event_no)
    }
}
