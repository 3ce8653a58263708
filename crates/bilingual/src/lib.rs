//! The two languages of every page: French as written in Québec (`fr-CA`) and English (`en`):
//! which one a request gets, and Fluent message catalogs compiled into each binary.
//!
//! The language comes from the person's explicit choice, the portal's `ui_locales`, the FR/EN
//! switch remembered in a cookie, `Accept-Language`, then French.

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

/// The messages of one application in both languages.
pub struct Catalog {
    fr: FluentBundle<FluentResource>,
    en: FluentBundle<FluentResource>,
}

impl Catalog {
    /// A catalog from the Fluent sources of each language.
    pub fn new(fr_ca: &str, en: &str) -> Self {
        Self {
            fr: bundle("fr-CA", fr_ca),
            en: bundle("en", en),
        }
    }

    /// The bundle of `lang` (tests format every message with it).
    pub fn bundle(&self, lang: Lang) -> &FluentBundle<FluentResource> {
        match lang {
            Lang::FrCa => &self.fr,
            Lang::En => &self.en,
        }
    }

    /// The message `id` in `lang`; a missing message shows its id (tests look for that).
    pub fn format(&self, lang: Lang, id: &str, args: Option<&FluentArgs>) -> String {
        let bundle = self.bundle(lang);
        let Some(pattern) = bundle.get_message(id).and_then(|m| m.value()) else {
            return id.to_string();
        };
        let mut errors = Vec::new();
        bundle
            .format_pattern(pattern, args, &mut errors)
            .into_owned()
    }

    /// The message `id` with one text argument.
    pub fn arg(&self, lang: Lang, id: &str, name: &str, value: impl std::fmt::Display) -> String {
        let mut args = FluentArgs::new();
        args.set(name.to_string(), FluentValue::from(value.to_string()));
        self.format(lang, id, Some(&args))
    }

    /// The message `id` with one number (plural forms).
    pub fn count(&self, lang: Lang, id: &str, name: &str, value: i64) -> String {
        let mut args = FluentArgs::new();
        args.set(name.to_string(), FluentValue::from(value));
        self.format(lang, id, Some(&args))
    }
}

fn bundle(tag: &str, source: &str) -> FluentBundle<FluentResource> {
    let lang_id: unic_langid::LanguageIdentifier = tag.parse().unwrap_or_default();
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

/// The message ids a Fluent source defines, sorted (for the "both languages complete" tests).
pub fn message_ids(source: &str) -> Result<Vec<String>, String> {
    let resource =
        FluentResource::try_new(source.to_string()).map_err(|(_, e)| format!("{e:?}"))?;
    let mut ids: Vec<String> = resource
        .entries()
        .filter_map(|e| match e {
            fluent_syntax::ast::Entry::Message(m) => Some(m.id.name.to_string()),
            _ => None,
        })
        .collect();
    ids.sort();
    Ok(ids)
}

/// Checks that both sources define the same messages and that each formats without error
/// given `text_args` and `number_args`; returns what is wrong.
pub fn check_complete(
    fr_ca: &str,
    en: &str,
    text_args: &[&str],
    number_args: &[&str],
) -> Result<usize, String> {
    let fr = message_ids(fr_ca)?;
    if fr != message_ids(en)? {
        return Err("fr-CA and en must define the same message ids".into());
    }
    let catalog = Catalog::new(fr_ca, en);
    for lang in [Lang::FrCa, Lang::En] {
        let bundle = catalog.bundle(lang);
        for id in &fr {
            let pattern = bundle
                .get_message(id)
                .and_then(|m| m.value())
                .ok_or_else(|| format!("{lang:?} {id} has no value"))?;
            let mut args = FluentArgs::new();
            for name in text_args {
                args.set(*name, FluentValue::from("x"));
            }
            for name in number_args {
                args.set(*name, FluentValue::from(2));
            }
            let mut errors = Vec::new();
            let text = bundle.format_pattern(pattern, Some(&args), &mut errors);
            if !errors.is_empty() || text.trim().is_empty() {
                return Err(format!("{lang:?} {id}: {errors:?}"));
            }
        }
    }
    Ok(fr.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incomplete_catalogs_are_reported() {
        assert_eq!(check_complete("a = A\n", "a = B\n", &[], &[]), Ok(1));
        assert!(check_complete("a = A\nb = B\n", "a = B\n", &[], &[]).is_err());
        assert!(check_complete("a = { $n }\n", "a = { $n }\n", &[], &[]).is_err());
        let c = Catalog::new("a = Bonjour { $who }\n", "a = Hello { $who }\n");
        assert_eq!(c.arg(Lang::En, "a", "who", "Marie"), "Hello Marie");
        assert_eq!(c.format(Lang::FrCa, "missing", None), "missing");
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
