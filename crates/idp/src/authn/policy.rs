//! The password policy of the member portals: at least ten characters with three of the four
//! classes (lowercase, uppercase, digits, special characters), not guessable by a strength
//! estimator, and not built on the person's email address.

/// Minimum length, in characters.
pub const MIN_LENGTH: usize = 10;
/// Character classes a password must mix.
pub const MIN_CLASSES: usize = 3;
/// Longest password accepted: argon2 copes, but a megabyte pasted in a form is not a password.
pub const MAX_LENGTH: usize = 256;

/// The first rule a password breaks, in the order the page lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyViolation {
    /// Fewer than [`MIN_LENGTH`] characters.
    TooShort,
    /// More than [`MAX_LENGTH`] characters.
    TooLong,
    /// Fewer than [`MIN_CLASSES`] character classes.
    TooFewClasses,
    /// Contains the local part of the person's email.
    ContainsEmail,
    /// A strength estimator finds it easy to guess (common word, pattern, sequence).
    TooGuessable,
    /// The two entries differ.
    Mismatch,
}

impl PolicyViolation {
    /// The message id explaining this rule to the person.
    pub fn message_id(self) -> &'static str {
        match self {
            Self::TooShort => "password-too-short",
            Self::TooLong => "password-too-long",
            Self::TooFewClasses => "password-too-few-classes",
            Self::ContainsEmail => "password-contains-email",
            Self::TooGuessable => "password-too-guessable",
            Self::Mismatch => "password-mismatch",
        }
    }
}

/// Checks a new password (and its confirmation) for the person whose contact email is `email`.
/// `min_length` is the sign-in policy's (never below [`MIN_LENGTH`]).
pub fn check(
    password: &str,
    confirmation: &str,
    email: &str,
    min_length: usize,
) -> Result<(), PolicyViolation> {
    let length = password.chars().count();
    if length < min_length.max(MIN_LENGTH) {
        return Err(PolicyViolation::TooShort);
    }
    if length > MAX_LENGTH {
        return Err(PolicyViolation::TooLong);
    }
    if classes(password) < MIN_CLASSES {
        return Err(PolicyViolation::TooFewClasses);
    }
    let local_part = email
        .trim()
        .split('@')
        .next()
        .unwrap_or_default()
        .to_lowercase();
    // Very short local parts ("a@...") would forbid too much; three characters is a name.
    if local_part.chars().count() >= 3 && password.to_lowercase().contains(&local_part) {
        return Err(PolicyViolation::ContainsEmail);
    }
    let user_inputs: Vec<&str> = email
        .split(['@', '.', '-', '_', '+'])
        .filter(|s| !s.is_empty())
        .collect();
    // zxcvbn scores 0 ("too guessable", under 10^3 guesses) and 1 ("very guessable", under
    // 10^6) are the "very weak" passwords.
    if (zxcvbn::zxcvbn(password, &user_inputs).score() as u8) < 2 {
        return Err(PolicyViolation::TooGuessable);
    }
    if password != confirmation {
        return Err(PolicyViolation::Mismatch);
    }
    Ok(())
}

fn classes(password: &str) -> usize {
    let lower = password.chars().any(char::is_lowercase);
    let upper = password.chars().any(char::is_uppercase);
    let digit = password.chars().any(|c| c.is_ascii_digit());
    let special = password.chars().any(|c| !c.is_alphanumeric());
    [lower, upper, digit, special]
        .iter()
        .filter(|b| **b)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMAIL: &str = "marie.tremblay@example.org";

    fn verdict(password: &str) -> Result<(), PolicyViolation> {
        check(password, password, EMAIL, MIN_LENGTH)
    }

    #[test]
    fn length_is_counted_in_characters() {
        assert_eq!(verdict("Ab1!xyz"), Err(PolicyViolation::TooShort));
        // Nine characters, four classes: still too short.
        assert_eq!(verdict("Ab1!Qz9$k"), Err(PolicyViolation::TooShort));
        // Ten accented characters are ten, not twenty bytes.
        assert_eq!(verdict("éÉ1!éÉ1!é"), Err(PolicyViolation::TooShort));
        assert_eq!(
            verdict(&"Ab1!".repeat(65)),
            Err(PolicyViolation::TooLong),
            "260 characters"
        );
    }

    #[test]
    fn three_classes_of_four_are_needed() {
        assert_eq!(verdict("orangeviolet"), Err(PolicyViolation::TooFewClasses));
        assert_eq!(verdict("OrangeViolet"), Err(PolicyViolation::TooFewClasses));
        assert_eq!(
            verdict("orange-violet"),
            Err(PolicyViolation::TooFewClasses)
        );
        assert_eq!(
            verdict("Orange-Violet-Quartz"),
            Ok(()),
            "lower, upper, special"
        );
        assert_eq!(
            verdict("orange7violet!quartz"),
            Ok(()),
            "lower, digit, special"
        );
        assert_eq!(
            verdict("Orange7VioletQuartz"),
            Ok(()),
            "lower, upper, digit"
        );
    }

    #[test]
    fn guessable_passwords_are_refused_even_with_three_classes() {
        assert_eq!(verdict("Password123"), Err(PolicyViolation::TooGuessable));
        assert_eq!(verdict("Qwerty12345"), Err(PolicyViolation::TooGuessable));
        assert_eq!(verdict("Aaaaaaaaaa1"), Err(PolicyViolation::TooGuessable));
    }

    #[test]
    fn the_email_local_part_is_refused_in_any_case() {
        assert_eq!(
            verdict("Marie.Tremblay-2024!"),
            Err(PolicyViolation::ContainsEmail)
        );
        assert_eq!(
            verdict("xx-MARIE.TREMBLAY-9"),
            Err(PolicyViolation::ContainsEmail)
        );
    }

    #[test]
    fn the_confirmation_must_match() {
        assert_eq!(
            check(
                "Orange-Violet-Quartz",
                "Orange-Violet-Quartx",
                EMAIL,
                MIN_LENGTH
            ),
            Err(PolicyViolation::Mismatch)
        );
    }

    #[test]
    fn an_administrator_may_ask_for_longer_passwords_but_never_shorter() {
        assert_eq!(
            check("Orange-Violet-Q7", "Orange-Violet-Q7", EMAIL, 20),
            Err(PolicyViolation::TooShort)
        );
        assert_eq!(check("Qv7-kw2#Lp", "Qv7-kw2#Lp", EMAIL, 4), Ok(()));
        assert_eq!(
            check("Qv7-kw2#L", "Qv7-kw2#L", EMAIL, 4),
            Err(PolicyViolation::TooShort),
            "the floor stays at ten"
        );
    }
}
