//! Invite texts: the SMS and email templates with their `{link}` and `{first_name}` placeholders,
//! the HTML body of an invite email, and the SMS segment count.
//!
//! Input: three fields separated by 0xFF: the template, the customer's first name, the link.
//! Properties: a template is accepted only within its bounds (and a subject only on one line);
//! rendering equals a one-pass expansion of the placeholders (so a name or link that spells a
//! placeholder stays text), and an SMS or email body always carries the link; a subject rendered
//! with a valid name stays on one line; the HTML body escapes the text and links only the link;
//! the segment count is at least one and grows with the text.
#![no_main]

use collab_core::PersonName;
use collab_core::notify::{InviteTemplates, MAX_TEMPLATE_CHARS, sms_segments};
use collab_fuzz::fields;
use collab_notify::smtp::html_body;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [template, first_name, link] = fields::<3>(data);
    // The link is a URL the library builds: it never holds a control character.
    let link: String = link.chars().filter(|c| !c.is_control()).collect();
    let acceptable = !template.trim().is_empty() && template.chars().count() <= MAX_TEMPLATE_CHARS;

    match InviteTemplates::default().with_sms(template.as_str()) {
        Ok(templates) => {
            assert!(
                acceptable,
                "accepted an SMS template of {} characters",
                template.chars().count()
            );
            let text = templates.sms_text(&first_name, &link);
            assert_eq!(text, expected(&template, &first_name, &link, true), "SMS text");
            assert!(text.contains(link.as_str()), "the SMS lacks the link");
            check_segments(&text);
        }
        Err(_) => assert!(!acceptable, "refused an SMS template"),
    }

    match InviteTemplates::default().with_email_body(template.as_str()) {
        Ok(templates) => {
            let text = templates.email_text(&first_name, &link);
            assert_eq!(text, expected(&template, &first_name, &link, true), "email body");
            check_html(&text, &link);
        }
        Err(_) => assert!(!acceptable, "refused an email template"),
    }

    let one_line = !template.contains(['\r', '\n']);
    match InviteTemplates::default().with_email_subject(template.as_str()) {
        Ok(templates) => {
            assert!(acceptable && one_line, "accepted the subject {template:?}");
            let subject = templates.email_subject(&first_name);
            assert_eq!(subject, expected(&template, &first_name, "", false), "subject");
            // The dispatcher renders with the customer's checked name.
            if let Ok(name) = PersonName::parse("first_name", &first_name) {
                let subject = templates.email_subject(name.as_str());
                assert!(!subject.contains(['\r', '\n']), "a valid name broke the subject's line");
            }
        }
        Err(_) => assert!(!(acceptable && one_line), "refused the subject {template:?}"),
    }
});

/// The placeholders expanded in one pass from the left, and the link appended (after a space
/// unless the text ends in one) when the template has no `{link}`.
fn expected(template: &str, first_name: &str, link: &str, needs_link: bool) -> String {
    let mut out = String::new();
    let mut rest = template;
    let mut had_link = false;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("{link}") {
            out.push_str(link);
            had_link = true;
            rest = after;
        } else if let Some(after) = rest.strip_prefix("{first_name}") {
            out.push_str(first_name);
            rest = after;
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    if needs_link && !had_link {
        if !out.ends_with(char::is_whitespace) {
            out.push(' ');
        }
        out.push_str(link);
    }
    out
}

fn check_segments(text: &str) {
    let segments = sms_segments(text);
    assert!(segments >= 1);
    let chars = text.chars().count();
    // At worst every character takes two GSM-7 units, or the text is UCS-2 throughout.
    let bound = 1
        .max((2 * chars).div_ceil(153))
        .max(text.encode_utf16().count().div_ceil(67));
    assert!(segments <= bound, "{segments} segments for {chars} characters");
    assert!(
        sms_segments(&format!("{text}x")) >= segments,
        "a longer text took fewer segments"
    );
}

/// The HTML body: inside `<p>…</p>` the only tags are the link's anchors and line breaks.
fn check_html(text: &str, link: &str) {
    let html = html_body(text, link);
    let body = html
        .split_once("<body>\n<p>")
        .and_then(|(_, rest)| rest.rsplit_once("</p>\n</body>"))
        .map(|(body, _)| body)
        .expect("the body paragraph");
    let escaped_link = escape(link);
    let anchor = format!("<a href=\"{escaped_link}\">{escaped_link}</a>");
    let anchors = body.matches(anchor.as_str()).count();
    assert!(anchors >= 1, "the HTML body has no link");
    let without_tags = body.replace(anchor.as_str(), "").replace("<br>", "");
    assert!(!without_tags.contains(['<', '>']), "unescaped markup in {body:?}");
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}
