//! The interface's messages: the idp's Fluent files, compiled into the binary, in both
//! languages of the `bilingual` crate (which also chooses the language of a request).

use std::sync::LazyLock;

use bilingual::Catalog;
pub use bilingual::{negotiate, Lang};

const FR_CA: &str = include_str!("../locales/fr-CA/guichet.ftl");
const EN: &str = include_str!("../locales/en/guichet.ftl");

static CATALOG: LazyLock<Catalog> = LazyLock::new(|| Catalog::new(FR_CA, EN));

/// The mail contract's locale for a page language.
pub fn mail_locale(lang: Lang) -> mail_queue::Locale {
    match lang {
        Lang::FrCa => mail_queue::Locale::FrCa,
        Lang::En => mail_queue::Locale::En,
    }
}

/// Messages in one language, as templates use them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tr(pub Lang);

impl Tr {
    /// The message `id`; a missing message shows its id (tests look for that).
    pub fn get(&self, id: &str) -> String {
        CATALOG.format(self.0, id, None)
    }

    /// The message `id` with one argument.
    pub fn arg(&self, id: &str, name: &str, value: impl std::fmt::Display) -> String {
        CATALOG.arg(self.0, id, name, value)
    }

    /// The message `id` with one number (plural forms).
    pub fn count(&self, id: &str, name: &str, value: i64) -> String {
        CATALOG.count(self.0, id, name, value)
    }

    /// The page's language tag.
    pub fn tag(&self) -> &'static str {
        self.0.tag()
    }

    /// The language the switch offers.
    pub fn other(&self) -> Lang {
        self.0.other()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_languages_are_complete() {
        let count = bilingual::check_complete(
            FR_CA,
            EN,
            &["portal", "issuer", "email"],
            &["tries", "seconds", "minutes", "min", "limit"],
        )
        .expect("complete catalogs");
        assert!(count > 90, "{count} messages");
    }

    #[test]
    fn plural_forms_follow_each_language() {
        assert!(Tr(Lang::En)
            .count("code-wrong", "tries", 1)
            .contains("one try left"));
        assert!(Tr(Lang::En)
            .count("code-wrong", "tries", 3)
            .contains("3 tries left"));
        assert!(Tr(Lang::FrCa)
            .count("code-wrong", "tries", 1)
            .contains("un essai"));
        assert!(Tr(Lang::FrCa)
            .count("code-wrong", "tries", 4)
            .contains("4 essais"));
    }

    #[test]
    fn policy_messages_exist() {
        use crate::authn::policy::PolicyViolation::*;
        for v in [
            TooShort,
            TooLong,
            TooFewClasses,
            ContainsEmail,
            TooGuessable,
            Mismatch,
        ] {
            for lang in [Lang::FrCa, Lang::En] {
                assert_ne!(Tr(lang).get(v.message_id()), v.message_id());
            }
        }
    }

    #[test]
    fn the_seed_wording_is_used() {
        let fr = Tr(Lang::FrCa);
        assert_eq!(
            fr.get("login-first-time"),
            "Première connexion ou mot de passe oublié?"
        );
        assert_eq!(fr.get("field-email"), "Adresse courriel");
        assert_eq!(fr.get("field-code"), "Code de vérification");
        assert_eq!(fr.get("code-resend"), "Envoyer un nouveau code");
        let en = Tr(Lang::En);
        assert_eq!(
            en.get("login-first-time"),
            "First login or forgot your password?"
        );
        assert_eq!(en.get("code-resend"), "Send a new code");
        assert_eq!(en.get("no-such-message"), "no-such-message");
    }
}
