//! Paths into a message: `PID-3`, `PID-5.1`, `PID-3[2].4.1`, `OBX[2]-5`.

/// A parsed path. Every number is 1-based; `occurrence` picks among segments of the same
/// name, `repetition` among a field's repetitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    pub segment: String,
    pub occurrence: usize,
    pub field: usize,
    pub repetition: usize,
    pub component: usize,
    pub subcomponent: usize,
}

impl Path {
    /// `None` when the text is not a path.
    pub fn parse(text: &str) -> Option<Path> {
        let (segment_part, rest) = text.split_once('-')?;
        let (segment, occurrence) = bracketed(segment_part)?;
        if segment.len() != 3 || !segment.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()) {
            return None;
        }
        let mut parts = rest.split('.');
        let (field, repetition) = bracketed(parts.next()?)?;
        let field = field.parse().ok().filter(|n| *n > 0)?;
        let mut number = |default| match parts.next() {
            None => Some(default),
            Some(p) => p.parse::<usize>().ok().filter(|n| *n > 0),
        };
        let component = number(1)?;
        let subcomponent = number(1)?;
        if parts.next().is_some() {
            return None;
        }
        Some(Path { segment: segment.to_owned(), occurrence, field, repetition, component, subcomponent })
    }
}

/// `NAME` or `NAME[n]`.
fn bracketed(text: &str) -> Option<(&str, usize)> {
    match text.split_once('[') {
        None => Some((text, 1)),
        Some((name, rest)) => {
            let n = rest.strip_suffix(']')?.parse().ok().filter(|n| *n > 0)?;
            Some((name, n))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse() {
        let p = Path::parse("PID-3[2].4.1").unwrap();
        assert_eq!(
            (p.segment.as_str(), p.occurrence, p.field, p.repetition, p.component, p.subcomponent),
            ("PID", 1, 3, 2, 4, 1)
        );
        let p = Path::parse("OBX[2]-5").unwrap();
        assert_eq!((p.occurrence, p.field, p.repetition, p.component), (2, 5, 1, 1));
        for bad in
            ["PID", "PID-", "PID-0", "PI-3", "pid-3", "PID-3.0", "PID-3.1.1.1", "PID-3[x]", "PID[0]-3", "PID-3[2"]
        {
            assert_eq!(Path::parse(bad), None, "{bad}");
        }
    }
}
