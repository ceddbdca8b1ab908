//! National code lists (`code,label,parent` CSV).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::ModelError;

/// One code of a list; `parent` names the higher-level code of a two-level list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Code {
    pub code: String,
    pub label: String,
    pub parent: Option<String>,
}

/// A named national code list, in file order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CodeList {
    pub name: String,
    codes: Vec<Code>,
    #[serde(skip)]
    by_code: BTreeMap<String, usize>,
}

impl CodeList {
    /// Parses `code,label,parent` CSV text. `parent` may be missing or empty; a parent must
    /// name a code of the same list.
    pub fn from_csv(name: &str, text: &str) -> Result<Self, ModelError> {
        let bad = |line: usize, reason: String| ModelError::BadCodeList { list: name.to_owned(), line, reason };
        let mut reader = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(text.as_bytes());
        let headers = reader.headers().map_err(|e| bad(1, e.to_string()))?.clone();
        if headers.get(0) != Some("code") || headers.get(1) != Some("label") {
            return Err(bad(1, "the header must start with `code,label`".into()));
        }
        let mut codes = Vec::new();
        let mut by_code = BTreeMap::new();
        for (idx, record) in reader.records().enumerate() {
            let line = idx + 2;
            let record = record.map_err(|e| bad(line, e.to_string()))?;
            let code = record.get(0).unwrap_or_default().to_owned();
            if code.is_empty() {
                return Err(bad(line, "empty code".into()));
            }
            let label = record.get(1).unwrap_or_default().to_owned();
            let parent = record.get(2).filter(|p| !p.is_empty()).map(str::to_owned);
            if by_code.insert(code.clone(), codes.len()).is_some() {
                return Err(bad(line, format!("duplicate code {code:?}")));
            }
            codes.push(Code { code, label, parent });
        }
        for (idx, code) in codes.iter().enumerate() {
            if let Some(parent) = &code.parent {
                if !by_code.contains_key(parent) {
                    return Err(bad(idx + 2, format!("parent {parent:?} is not a code of this list")));
                }
            }
        }
        Ok(CodeList { name: name.to_owned(), codes, by_code })
    }

    pub fn get(&self, code: &str) -> Option<&Code> {
        self.by_code.get(code).map(|&i| &self.codes[i])
    }

    pub fn contains(&self, code: &str) -> bool {
        self.by_code.contains_key(code)
    }

    pub fn codes(&self) -> &[Code] {
        &self.codes
    }

    /// The top-level code a code rolls up to (itself when it has no parent).
    pub fn top_level<'a>(&'a self, code: &'a str) -> Option<&'a str> {
        let mut current = self.get(code)?;
        while let Some(parent) = &current.parent {
            current = self.get(parent)?;
        }
        Some(&current.code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RISK: &str = "code,label,parent\nSOCIAL_CARE,Social care,\nKNOWN,Known,\nKNOWN_FAMILY,Family,KNOWN\n";

    #[test]
    fn parses_two_levels() {
        let list = CodeList::from_csv("source_of_risk", RISK).unwrap();
        assert_eq!(list.codes().len(), 3);
        assert_eq!(list.top_level("KNOWN_FAMILY"), Some("KNOWN"));
        assert!(list.contains("SOCIAL_CARE"));
        assert!(!list.contains("social_care"));
    }

    #[test]
    fn rejects_unknown_parent_with_line() {
        let err = CodeList::from_csv("x", "code,label,parent\nA,a,B\n").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn rejects_duplicates() {
        assert!(CodeList::from_csv("x", "code,label\nA,a\nA,b\n").is_err());
    }
}
