//! Customer names, mobile numbers and email addresses: what the invite form and the API accept.
//!
//! Input: the text to check (the same text goes through all three checks and their serde form).
//! Properties: an accepted value is in its canonical form, accepts itself again unchanged, and
//! keeps the promises the types make (bounded, no control or text-direction characters, E.164,
//! a lower-case dotted domain, never a line break that could reach a mail header); a refusal
//! names the field.
#![no_main]

use collab_core::customer::{MAX_E164_DIGITS, MAX_EMAIL_LEN, MAX_NAME_CHARS};
use collab_core::{EmailAddress, Error, PersonName, PhoneNumber};
use collab_fuzz::is_bidi_control;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    check_name(&text);
    check_phone(&text);
    check_email(&text);
});

fn refused_for(result: &Error, expected_field: &str) -> bool {
    matches!(result, Error::Invalid { field, .. } if *field == expected_field)
}

fn check_name(text: &str) {
    let trimmed = text.trim();
    let acceptable = !trimmed.is_empty()
        && trimmed.chars().count() <= MAX_NAME_CHARS
        && !trimmed.chars().any(|c| c.is_control() || is_bidi_control(c));
    match PersonName::parse("first_name", text) {
        Ok(name) => {
            assert!(acceptable, "accepted {text:?}");
            assert_eq!(name.as_str(), trimmed, "a name is only trimmed");
            let again = PersonName::parse("last_name", name.as_str()).expect("an accepted name accepts itself");
            assert_eq!(again, name);
            let json = serde_json::to_string(&name).expect("a name serialises");
            assert_eq!(serde_json::from_str::<PersonName>(&json).ok(), Some(name));
        }
        Err(e) => {
            assert!(!acceptable, "refused {text:?}: {e}");
            assert!(refused_for(&e, "first_name"), "{e:?}");
        }
    }
}

fn check_phone(text: &str) {
    match PhoneNumber::parse(text) {
        Ok(number) => {
            let e164 = number.as_str();
            let digits = e164.strip_prefix('+').expect("E.164 starts with +");
            assert!(
                (2..=MAX_E164_DIGITS).contains(&digits.len())
                    && digits.bytes().all(|b| b.is_ascii_digit())
                    && !digits.starts_with('0'),
                "{text:?} became {e164:?}, not E.164"
            );
            let again = PhoneNumber::parse(e164).expect("a number in E.164 accepts itself");
            assert_eq!(again, number, "E.164 is a fixed point");
            let parsed = phonenumber::parse(None, e164).expect("E.164 parses");
            assert!(parsed.is_valid(), "{e164} is not valid in its plan");
            let json = serde_json::to_string(&number).expect("a number serialises");
            assert_eq!(serde_json::from_str::<PhoneNumber>(&json).ok(), Some(number));
        }
        Err(e) => assert!(refused_for(&e, "phone"), "{e:?}"),
    }
}

fn check_email(text: &str) {
    match EmailAddress::parse(text) {
        Ok(address) => {
            let value = address.as_str();
            assert!(value.len() <= MAX_EMAIL_LEN, "{value:?} is too long");
            assert!(
                !value.chars().any(|c| c.is_control()),
                "{value:?} holds a control character (a line break would reach the mail header)"
            );
            let (_, domain) = value.rsplit_once('@').expect("an address has an @");
            assert!(domain.contains('.'), "{value:?}: the domain is not dotted");
            assert_eq!(
                domain,
                domain.to_ascii_lowercase(),
                "{value:?}: the domain is not lower-case"
            );
            let again = EmailAddress::parse(value).expect("an accepted address accepts itself");
            assert_eq!(again, address, "an accepted address is a fixed point");
            let json = serde_json::to_string(&address).expect("an address serialises");
            assert_eq!(serde_json::from_str::<EmailAddress>(&json).ok(), Some(address));
        }
        Err(e) => assert!(refused_for(&e, "email"), "{e:?}"),
    }
}
