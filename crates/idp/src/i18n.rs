//! The two languages of every page: French as written in Québec (`fr-CA`) and English (`en`).
//! Messages live in Fluent files compiled into the binary; both are complete (a test compares
//! them). The language comes from the portal's `ui_locales`, then the FR/EN switch the person
//! used (remembered in a cookie), then `Accept-Language`, then French.

use std::sync::LazyLock;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};

/// A language of the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Lang {
    #[serde(rename = "fr-CA")]
    FrCa,
    #[serde(rename = "en")]
    En,
}

impl Lang {
    /// BCP 47 tag, for `lang` attributes and the `locale` claim.
    pub fn tag(self) -> &'static str {
        match self {
            Self::FrCa => "fr-CA",
            Self::En => "en",
        }
    }

    /// The language the switch offers.
    pub fn other(self) -> Self {
        match self {
            Self::FrCa => Self::En,
            Self::En => Self::FrCa,
        }
    }

    /// The language a tag names: any `fr` is `fr-CA`, any `en` is `en`.
    pub fn parse(tag: &str) -> Option<Self> {
        let primary = tag
            .trim()
            .split(['-', '_'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        match primary.as_str() {
            "fr" => Some(Self::FrCa),
            "en" => Some(Self::En),
            _ => None,
        }
    }

    /// The mail contract's locale.
    pub fn mail_locale(self) -> mail_queue::Locale {
        match self {
            Self::FrCa => mail_queue::Locale::FrCa,
            Self::En => mail_queue::Locale::En,
        }
    }
}

/// Chooses the language: the person's explicit choice in this journey, the portal's
/// `ui_locales` (space-separated, in order of preference), the remembered switch, the
/// browser's `Accept-Language`, then French.
pub fn negotiate(
    chosen: Option<Lang>,
    ui_locales: Option<&str>,
    remembered: Option<&str>,
    accept_language: Option<&str>,
) -> Lang {
    chosen
        .or_else(|| ui_locales.and_then(|l| l.split_whitespace().find_map(Lang::parse)))
        .or_else(|| remembered.and_then(Lang::parse))
        .or_else(|| accept_language.and_then(from_accept_language))
        .unwrap_or(Lang::FrCa)
}

/// The preferred supported language of an `Accept-Language` header (RFC 9110 quality values).
fn from_accept_language(header: &str) -> Option<Lang> {
    let mut best: Option<(u16, Lang)> = None;
    for item in header.split(',').take(20) {
        let mut parts = item.split(';');
        let Some(lang) = parts.next().and_then(Lang::parse) else {
            continue;
        };
        let quality = parts
            .find_map(|p| p.trim().strip_prefix("q="))
            .map_or(1000, |q| {
                q.trim()
                    .parse::<f32>()
                    .map_or(0, |v| (v.clamp(0.0, 1.0) * 1000.0) as u16)
            });
        if quality > 0 && best.is_none_or(|(q, _)| quality > q) {
            best = Some((quality, lang));
        }
    }
    best.map(|(_, lang)| lang)
}

const FR_CA: &str = include_str!("../locales/fr-CA/guichet.ftl");
const EN: &str = include_str!("../locales/en/guichet.ftl");

struct Catalog {
    fr: FluentBundle<FluentResource>,
    en: FluentBundle<FluentResource>,
}

fn bundle(tag: &str, source: &str) -> FluentBundle<FluentResource> {
    let lang_id = tag.parse().unwrap_or_default();
    let mut bundle = FluentBundle::new_concurrent(vec![lang_id]);
    // No Unicode isolation marks: the pages are HTML, where they only get in the way.
    bundle.set_use_isolating(false);
    let resource = FluentResource::try_new(source.to_string()).unwrap_or_else(|(partial, _)| {
        // The files are checked by tests; a broken line is dropped rather than the catalog.
        tracing::error!(locale = tag, "message file has syntax errors");
        partial
    });
    if bundle.add_resource(resource).is_err() {
        tracing::error!(locale = tag, "message file has duplicate messages");
    }
    bundle
}

static CATALOG: LazyLock<Catalog> = LazyLock::new(|| Catalog {
    fr: bundle("fr-CA", FR_CA),
    en: bundle("en", EN),
});

/// Messages in one language, as templates use them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tr(pub Lang);

impl Tr {
    /// The message `id`; a missing message shows its id (tests look for that).
    pub fn get(&self, id: &str) -> String {
        self.format(id, None)
    }

    /// The message `id` with one argument.
    pub fn arg(&self, id: &str, name: &str, value: impl std::fmt::Display) -> String {
        let mut args = FluentArgs::new();
        args.set(name.to_string(), FluentValue::from(value.to_string()));
        self.format(id, Some(&args))
    }

    /// The message `id` with one number (plural forms).
    pub fn count(&self, id: &str, name: &str, value: i64) -> String {
        let mut args = FluentArgs::new();
        args.set(name.to_string(), FluentValue::from(value));
        self.format(id, Some(&args))
    }

    fn format(&self, id: &str, args: Option<&FluentArgs>) -> String {
        let bundle = match self.0 {
            Lang::FrCa => &CATALOG.fr,
            Lang::En => &CATALOG.en,
        };
        let Some(pattern) = bundle.get_message(id).and_then(|m| m.value()) else {
            return id.to_string();
        };
        let mut errors = Vec::new();
        bundle
            .format_pattern(pattern, args, &mut errors)
            .into_owned()
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

    fn ids(source: &str) -> Vec<String> {
        let resource = FluentResource::try_new(source.to_string()).expect("valid Fluent syntax");
        let mut ids: Vec<String> = resource
            .entries()
            .filter_map(|e| match e {
                fluent_syntax::ast::Entry::Message(m) => Some(m.id.name.to_string()),
                _ => None,
            })
            .collect();
        ids.sort();
        ids
    }

    #[test]
    fn both_languages_have_the_same_messages() {
        let fr = ids(FR_CA);
        let en = ids(EN);
        assert!(fr.len() > 90, "{} messages", fr.len());
        assert_eq!(fr, en, "fr-CA and en must define the same message ids");
    }

    #[test]
    fn every_message_formats_without_errors_in_both_languages() {
        for lang in [Lang::FrCa, Lang::En] {
            let bundle = match lang {
                Lang::FrCa => &CATALOG.fr,
                Lang::En => &CATALOG.en,
            };
            for id in ids(FR_CA) {
                let message = bundle.get_message(&id).expect("present");
                let pattern = message.value().expect("has a value");
                let mut args = FluentArgs::new();
                for name in ["portal", "issuer", "email"] {
                    args.set(name, FluentValue::from("x"));
                }
                for name in ["tries", "seconds"] {
                    args.set(name, FluentValue::from(2));
                }
                let mut errors = Vec::new();
                let text = bundle.format_pattern(pattern, Some(&args), &mut errors);
                assert!(errors.is_empty(), "{lang:?} {id}: {errors:?}");
                assert!(!text.trim().is_empty(), "{lang:?} {id} is empty");
            }
        }
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

    #[test]
    fn language_order_is_choice_then_ui_locales_then_cookie_then_browser() {
        assert_eq!(negotiate(None, None, None, None), Lang::FrCa);
        assert_eq!(
            negotiate(None, None, None, Some("en-US,en;q=0.9")),
            Lang::En
        );
        assert_eq!(
            negotiate(None, None, None, Some("de-DE, fr;q=0.4, en;q=0.8")),
            Lang::En
        );
        assert_eq!(
            negotiate(None, None, None, Some("de, es;q=0.5")),
            Lang::FrCa
        );
        assert_eq!(negotiate(None, None, Some("en"), Some("fr-CA")), Lang::En);
        assert_eq!(negotiate(None, Some("es fr"), Some("en"), None), Lang::FrCa);
        assert_eq!(negotiate(None, Some("fr"), Some("en"), None), Lang::FrCa);
        assert_eq!(
            negotiate(Some(Lang::En), Some("fr-CA"), Some("fr"), Some("fr")),
            Lang::En
        );
        assert_eq!(negotiate(None, None, None, Some("en;q=0, fr")), Lang::FrCa);
    }
}
