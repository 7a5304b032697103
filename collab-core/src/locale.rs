//! Languages: the [`Locale`] an invite, a tenant or a customer page follows.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Error;

/// A language tag after BCP 47 (`en`, `es`, `he`, `pt-BR`, `zh-Hant-TW`), checked and in its
/// usual case: the language in lower case, a four-letter script in title case, a region in upper
/// case (`PT-br` is `pt-BR`).
///
/// The check is a shape check, not a registry lookup: a language of 2 or 3 letters, then
/// subtags of 1 to 8 letters or digits joined by `-`, 35 characters in all. Anything else is an
/// [`Error::Invalid`] naming the field `locale`.
///
/// ```
/// use collab_core::Locale;
///
/// let locale = Locale::parse("pt-br")?;
/// assert_eq!(locale.as_str(), "pt-BR");
/// assert_eq!(locale.language(), "pt");
/// assert!(Locale::parse("en_US").is_err());
/// # Ok::<(), collab_core::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Locale(String);

impl Locale {
    /// The longest tag accepted, in characters (the longest tag BCP 47 requires to be kept).
    pub const MAX_LEN: usize = 35;

    /// Checks `tag` and puts it in its usual case.
    pub fn parse(tag: &str) -> Result<Self, Error> {
        const FIELD: &str = "locale";
        if tag.is_empty() || tag.len() > Self::MAX_LEN {
            return Err(Error::invalid(FIELD, "must be 1 to 35 characters"));
        }
        if !tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(Error::invalid(FIELD, "may hold only ASCII letters, digits and '-'"));
        }
        let mut normal = String::with_capacity(tag.len());
        for (n, subtag) in tag.split('-').enumerate() {
            if n == 0 {
                if !(2..=3).contains(&subtag.len()) || !subtag.bytes().all(|b| b.is_ascii_alphabetic()) {
                    return Err(Error::invalid(FIELD, "must start with a language of 2 or 3 letters"));
                }
                normal.push_str(&subtag.to_ascii_lowercase());
                continue;
            }
            if !(1..=8).contains(&subtag.len()) {
                return Err(Error::invalid(
                    FIELD,
                    "subtags are 1 to 8 letters or digits, joined by '-'",
                ));
            }
            normal.push('-');
            let letters = subtag.bytes().all(|b| b.is_ascii_alphabetic());
            match subtag.len() {
                // A region (`BR`).
                2 if letters => normal.push_str(&subtag.to_ascii_uppercase()),
                // A script (`Hant`).
                4 if letters => {
                    normal.push_str(&subtag[..1].to_ascii_uppercase());
                    normal.push_str(&subtag[1..].to_ascii_lowercase());
                }
                _ => normal.push_str(&subtag.to_ascii_lowercase()),
            }
        }
        Ok(Self(normal))
    }

    /// `en`: the deployment's locale unless set.
    pub(crate) fn english() -> Self {
        Self("en".to_owned())
    }

    /// The tag.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The language alone: `pt` of `pt-BR`.
    pub fn language(&self) -> &str {
        self.0.split('-').next().unwrap_or(&self.0)
    }

    /// Whether text in this locale is written right to left (Arabic, Hebrew, Persian, Urdu…),
    /// for a page's `dir`.
    pub fn is_right_to_left(&self) -> bool {
        matches!(
            self.language(),
            "ar" | "ckb" | "dv" | "fa" | "he" | "iw" | "ks" | "ps" | "sd" | "ug" | "ur" | "yi"
        )
    }
}

impl fmt::Display for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Locale({})", self.0)
    }
}

impl FromStr for Locale {
    type Err = Error;

    fn from_str(tag: &str) -> Result<Self, Error> {
        Self::parse(tag)
    }
}

impl TryFrom<String> for Locale {
    type Error = Error;

    fn try_from(tag: String) -> Result<Self, Error> {
        Self::parse(&tag)
    }
}

impl From<Locale> for String {
    fn from(locale: Locale) -> Self {
        locale.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_checked_and_put_in_their_usual_case() {
        for (given, normal) in [
            ("en", "en"),
            ("ES", "es"),
            ("he", "he"),
            ("pt-br", "pt-BR"),
            ("zh-hant-tw", "zh-Hant-TW"),
            ("es-419", "es-419"),
            ("ast", "ast"),
        ] {
            assert_eq!(
                Locale::parse(given).map(|l| l.to_string()).ok().as_deref(),
                Some(normal),
                "{given}"
            );
        }
        let too_long = format!("en-{}", "abcdefgh-".repeat(4));
        for bad in [
            "",
            "e",
            "english",
            "en_US",
            "en-",
            "-en",
            "en--us",
            "12",
            "en-toolongsub",
            "é",
            "en US",
            &too_long,
        ] {
            assert!(
                matches!(Locale::parse(bad), Err(Error::Invalid { field: "locale", .. })),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn serde_checks_too() {
        let locale: Locale = serde_json::from_str("\"pt-br\"").expect("a tag");
        assert_eq!(serde_json::to_string(&locale).expect("json"), "\"pt-BR\"");
        assert!(serde_json::from_str::<Locale>("\"not a tag\"").is_err());
    }

    #[test]
    fn language_and_direction() {
        let he = Locale::parse("he-IL").expect("a tag");
        assert_eq!(he.language(), "he");
        assert!(he.is_right_to_left());
        assert!(!Locale::parse("es").expect("a tag").is_right_to_left());
    }
}
