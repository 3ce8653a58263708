//! The portals' messages in both languages (Fluent files compiled in).

use std::sync::LazyLock;

use bilingual::Catalog;
pub use bilingual::Lang;

const FR_CA: &str = include_str!("../locales/fr-CA/portals.ftl");
const EN: &str = include_str!("../locales/en/portals.ftl");

static CATALOG: LazyLock<Catalog> = LazyLock::new(|| Catalog::new(FR_CA, EN));

/// Messages in one language, as templates use them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tr(pub Lang);

impl Tr {
    /// The message `id`.
    pub fn get(&self, id: &str) -> String {
        CATALOG.format(self.0, id, None)
    }

    /// The message `id` with one argument.
    pub fn arg(&self, id: &str, name: &str, value: impl std::fmt::Display) -> String {
        CATALOG.arg(self.0, id, name, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_languages_are_complete() {
        let count = bilingual::check_complete(FR_CA, EN, &["name", "number", "reason"], &[])
            .expect("complete catalogs");
        assert!(count > 40, "{count} messages");
        assert_eq!(
            Tr(Lang::FrCa).get("atip-guest"),
            "Faire une demande en tant qu’utilisateur invité"
        );
    }
}
