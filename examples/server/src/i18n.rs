//! Languages: the customer page's strings, one JSON file per language under `assets/i18n/`
//! named by its tag (`en.json`, `es.json`, `he.json`), and which of them a customer's page uses.
//!
//! Adding a language is adding its file: the server lists the folder when it first needs to, and
//! serves the files from it as it serves PDF.js (from the source tree, revalidated). Invites in
//! that language need its texts too: [`with_invite_texts`] adds the library's built-in ones
//! (English, Spanish, Hebrew); others are given with `RoomsConfig::with_templates_for`.

use std::sync::OnceLock;

use collab_core::notify::InviteTemplates;
use collab_core::rooms::RoomsConfig;
use collab_core::{Locale, TenantId};

/// The folder of the strings files.
pub const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/i18n");

/// The languages the customer page has: one per strings file, sorted; read once.
pub fn shipped() -> &'static [Locale] {
    static SHIPPED: OnceLock<Vec<Locale>> = OnceLock::new();
    SHIPPED.get_or_init(|| {
        let mut found: Vec<Locale> = std::fs::read_dir(DIR)
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|e| {
                        let name = e.file_name().into_string().ok()?;
                        Locale::parse(name.strip_suffix(".json")?).ok()
                    })
                    .collect()
            })
            .unwrap_or_else(|e| {
                tracing::warn!(dir = DIR, error = %e, "no strings files: the customer page falls back to English");
                Vec::new()
            });
        found.sort();
        found
    })
}

/// The shipped language that serves `wanted`: itself, or its language alone (`es` for `es-MX`).
pub fn shipped_for(wanted: &Locale) -> Option<&'static Locale> {
    let shipped = shipped();
    shipped
        .iter()
        .find(|l| *l == wanted)
        .or_else(|| shipped.iter().find(|l| l.as_str() == wanted.language()))
}

/// The language of the page of a customer of a tenant whose language is `tenant_locale`
/// ([`Rooms::tenant_locale`](collab_core::Rooms::tenant_locale)): the browser's first language
/// the page has (from `Accept-Language`, by preference) where `config` allows it, else the
/// tenant's, else the deployment's, else English.
pub fn page_locale(config: &RoomsConfig, tenant_locale: &Locale, accept_language: Option<&str>) -> Locale {
    let browser = accept_language
        .filter(|_| config.browser_locale())
        .and_then(|header| preferred(header).into_iter().find_map(|l| shipped_for(&l)));
    browser
        .or_else(|| shipped_for(tenant_locale))
        .or_else(|| shipped_for(config.default_locale()))
        .cloned()
        .unwrap_or_else(|| tenant_locale.clone())
}

/// The valid tags of an `Accept-Language` header, most wanted first (at most 16 are read).
fn preferred(header: &str) -> Vec<Locale> {
    let mut tags: Vec<(u16, Locale)> = header
        .split(',')
        .take(16)
        .filter_map(|entry| {
            let mut parts = entry.split(';');
            let tag = Locale::parse(parts.next()?.trim()).ok()?;
            // Quality in thousandths; a malformed one counts as 1, as if absent.
            let quality = parts.find_map(|p| p.trim().strip_prefix("q=")).map_or(1000, |q| {
                q.trim()
                    .parse::<f32>()
                    .map_or(1000, |q| (q.clamp(0.0, 1.0) * 1000.0) as u16)
            });
            (quality > 0).then_some((quality, tag))
        })
        .collect();
    // Stable: equal qualities keep the header's order.
    tags.sort_by_key(|&(quality, _)| std::cmp::Reverse(quality));
    tags.into_iter().map(|(_, tag)| tag).collect()
}

/// `config` with the library's invite texts for every shipped language that has them, so that
/// an invite or a tenant in Spanish or Hebrew gets its text in that language.
pub fn with_invite_texts(config: RoomsConfig) -> RoomsConfig {
    shipped()
        .iter()
        .fold(config, |config, locale| match InviteTemplates::built_in(locale) {
            Some(templates) => config.with_templates_for(locale.clone(), templates),
            None => config,
        })
}

/// `acme=he,example=es`: each tenant's locale.
pub fn parse_tenant_locales(list: &str) -> Result<Vec<(TenantId, Locale)>, String> {
    list.split(',')
        .filter(|entry| !entry.trim().is_empty())
        .map(|entry| {
            let (tenant, locale) = entry
                .split_once('=')
                .ok_or_else(|| format!("tenant locales: {entry:?} is not tenant=locale"))?;
            let tenant = TenantId::new(tenant.trim()).map_err(|e| format!("tenant locales: {e}"))?;
            let locale = Locale::parse(locale.trim()).map_err(|e| format!("tenant locales: {e}"))?;
            Ok((tenant, locale))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(header: &str) -> Vec<String> {
        preferred(header).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn accept_language_is_read_by_preference() {
        assert_eq!(tags("he-IL,he;q=0.9,en;q=0.8"), ["he-IL", "he", "en"]);
        assert_eq!(tags("en;q=0.5, es"), ["es", "en"]);
        assert_eq!(tags("*, fr;q=0, de_DE, pt-br;q=0.7"), ["pt-BR"]);
        assert!(tags("").is_empty());
    }

    #[test]
    fn tenant_locales_are_checked() {
        let parsed = parse_tenant_locales("acme=he, example=es-MX,").expect("valid");
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[1].1.as_str(), "es-MX");
        assert!(parse_tenant_locales("acme").is_err());
        assert!(parse_tenant_locales("acme=english").is_err());
    }

    #[test]
    fn the_page_follows_the_browser_only_where_allowed() {
        let acme = TenantId::new("acme").expect("a tenant");
        let he = Locale::parse("he").expect("a tag");
        let config = RoomsConfig::default().with_tenant_locale(acme.clone(), he);
        let browser = Some("es-MX,es;q=0.9");
        let (acme, other) = (
            config.tenant_locale(&acme).clone(),
            TenantId::new("other").expect("a tenant"),
        );
        assert_eq!(page_locale(&config, &acme, browser).as_str(), "he");
        let config = config.with_browser_locale(true);
        assert_eq!(page_locale(&config, &acme, browser).as_str(), "es");
        // A browser language the page lacks: the tenant's.
        assert_eq!(page_locale(&config, &acme, Some("ja")).as_str(), "he");
        assert_eq!(page_locale(&config, config.tenant_locale(&other), None).as_str(), "en");
    }
}
