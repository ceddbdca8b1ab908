//! NHS number validation (ten digits, Modulus 11 check digit).

/// Why a string is not a valid NHS number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NhsNumberError {
    #[error("an NHS number has 10 digits (spaces allowed between groups), found {0} digits")]
    WrongLength(usize),
    #[error("an NHS number contains only digits and spaces")]
    NotDigits,
    #[error("the check digit does not match (Modulus 11)")]
    BadCheckDigit,
}

/// Validates an NHS number and returns it normalised to ten digits without spaces.
///
/// Weights 10 down to 2 over the first nine digits; the check digit is `11 - (sum mod 11)`,
/// where 11 means 0 and 10 means the number is invalid.
pub fn normalise_nhs_number(text: &str) -> Result<String, NhsNumberError> {
    let mut digits = Vec::with_capacity(10);
    for ch in text.trim().chars() {
        match ch {
            '0'..='9' => digits.push(ch as u8 - b'0'),
            ' ' | '-' => {}
            _ => return Err(NhsNumberError::NotDigits),
        }
    }
    if digits.len() != 10 {
        return Err(NhsNumberError::WrongLength(digits.len()));
    }
    let sum: u32 = digits[..9].iter().zip((2..=10u32).rev()).map(|(&d, w)| u32::from(d) * w).sum();
    let check = match 11 - (sum % 11) {
        11 => 0,
        10 => return Err(NhsNumberError::BadCheckDigit),
        c => c,
    };
    if check != u32::from(digits[9]) {
        return Err(NhsNumberError::BadCheckDigit);
    }
    Ok(digits.iter().map(|d| char::from(b'0' + d)).collect())
}

/// Computes the check digit for nine leading digits, or `None` when no check digit exists
/// (remainder 10). Used by generators of synthetic data.
pub fn nhs_check_digit(first_nine: &[u8; 9]) -> Option<u8> {
    let sum: u32 = first_nine.iter().zip((2..=10u32).rev()).map(|(&d, w)| u32::from(d) * w).sum();
    match 11 - (sum % 11) {
        11 => Some(0),
        10 => None,
        c => Some(c as u8),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_known_valid_numbers() {
        assert_eq!(normalise_nhs_number("9434765919").unwrap(), "9434765919");
        assert_eq!(normalise_nhs_number("943 476 5919").unwrap(), "9434765919");
        assert_eq!(normalise_nhs_number("401 023 2137").unwrap(), "4010232137");
    }

    #[test]
    fn rejects_bad_check_digit() {
        assert_eq!(normalise_nhs_number("9434765918"), Err(NhsNumberError::BadCheckDigit));
    }

    #[test]
    fn rejects_wrong_length_and_letters() {
        assert_eq!(normalise_nhs_number("943476591"), Err(NhsNumberError::WrongLength(9)));
        assert_eq!(normalise_nhs_number("94347659X9"), Err(NhsNumberError::NotDigits));
    }

    #[test]
    fn remainder_ten_has_no_valid_check_digit() {
        // 1,2,3,4,5,6,7,8,9 weighted 10..2 sums to 330... choose digits whose remainder is 1.
        let nine = [0, 0, 0, 0, 0, 0, 0, 0, 5];
        // 5*2 = 10, 10 mod 11 = 10, 11-10 = 1: valid with check digit 1.
        assert_eq!(nhs_check_digit(&nine), Some(1));
        let nine = [0, 0, 0, 0, 0, 0, 0, 0, 6]; // 12 mod 11 = 1 -> 10: no check digit
        assert_eq!(nhs_check_digit(&nine), None);
    }

    #[test]
    fn generated_numbers_validate() {
        for n in 0..2000u32 {
            let mut nine = [0u8; 9];
            let mut x = n * 7919 + 123_456_789;
            for d in nine.iter_mut().rev() {
                *d = (x % 10) as u8;
                x /= 10;
            }
            if let Some(c) = nhs_check_digit(&nine) {
                let text: String = nine.iter().chain([c].iter()).map(|d| char::from(b'0' + d)).collect();
                assert!(normalise_nhs_number(&text).is_ok(), "{text}");
            }
        }
    }
}
