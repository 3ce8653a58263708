//! Member codes as the portals issue them: a physician's 5-digit licence, `R` and 5 digits for
//! a resident, `E` and 8 digits for a medical student's registration, or 8 digits starting
//! with `500`.

use std::fmt;

/// A valid member code, upper-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MemberCode(String);

impl MemberCode {
    /// Validates `text` (surrounding spaces ignored, letters in either case).
    pub fn parse(text: &str) -> Option<Self> {
        let code = text.trim().to_uppercase();
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        let valid = digits(&code, 5)
            || code.strip_prefix('R').is_some_and(|rest| digits(rest, 5))
            || code.strip_prefix('E').is_some_and(|rest| digits(rest, 8))
            || (digits(&code, 8) && code.starts_with("500"));
        valid.then_some(Self(code))
    }

    /// Whether `text` looks like an attempt at a member code (digits, or R/E and digits), so a
    /// search can say the code is malformed instead of searching names.
    pub fn looks_like_one(text: &str) -> bool {
        let t = text.trim();
        let rest = t
            .strip_prefix(['R', 'r', 'E', 'e'])
            .filter(|r| !r.is_empty())
            .unwrap_or(t);
        !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit())
    }

    /// The code as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MemberCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::MemberCode;

    #[test]
    fn the_four_formats_of_the_seed_are_accepted() {
        for (typed, stored) in [
            ("54321", "54321"),
            ("R12345", "R12345"),
            ("r12345", "R12345"),
            ("E12342012", "E12342012"),
            (" 50012345 ", "50012345"),
        ] {
            assert_eq!(
                MemberCode::parse(typed).map(|c| c.as_str().to_string()),
                Some(stored.to_string()),
                "{typed}"
            );
        }
    }

    #[test]
    fn near_misses_are_refused() {
        for typed in [
            "",
            "1234",
            "123456",
            "R1234",
            "R123456",
            "E1234567",
            "E123456789",
            "12345678",
            "50112345",
            "5001234",
            "X12345",
            "R12A45",
            "54321 1",
        ] {
            assert_eq!(MemberCode::parse(typed), None, "{typed}");
        }
        assert!(MemberCode::looks_like_one("1234"));
        assert!(MemberCode::looks_like_one("r12"));
        assert!(!MemberCode::looks_like_one("Tremblay"));
        assert!(!MemberCode::looks_like_one("R"));
    }
}
