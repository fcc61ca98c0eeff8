//! Where people sit in UCWA resources, by the name of the member (a JSON key, an XML
//! `<property name>`) or link that holds them — the same knowledge for the anonymiser and
//! for `audit --pii`. Addresses, `tel:` numbers and host names are found by their shape
//! anywhere (`ident`); these are the values that only their place gives away.

use super::Category;

/// What the value of a member is, from its name and the object around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    /// A display name (`name`, `displayName`, a link's `title`).
    Name,
    /// A job field: `Title`, `Department`, `Company`, `Office` (the word used in its
    /// pseudonym).
    Job(&'static str),
    /// A phone number given without `tel:`.
    Phone,
    /// Free text about a person (a presence note, a location).
    Note,
    /// Message text.
    Text,
    /// A conversation's or invitation's subject.
    Subject,
    /// A search term (people search): treated as a name.
    Search,
}

impl Field {
    pub(crate) fn category(self) -> Category {
        match self {
            Field::Name | Field::Search => Category::Name,
            Field::Job(_) => Category::Job,
            Field::Phone => Category::Phone,
            Field::Note => Category::Note,
            Field::Text => Category::Text,
            Field::Subject => Category::Subject,
        }
    }
}

/// The object a member sits in, as far as the rules need it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Context<'a> {
    /// The object is a link (it has an `href`): its `title` is a display name.
    pub is_link: bool,
    /// The object is an error body (it has a `code`): its `message` is the server's.
    pub is_error: bool,
    /// The object's `rel` (`note`, `contactNote`, `location`, …) or the link rel it sits
    /// under.
    pub rel: Option<&'a str>,
}

/// The field a member named `key` holds in `ctx`, if it is personal.
pub(crate) fn field(key: &str, ctx: Context<'_>) -> Option<Field> {
    // Every personal name is short: longer keys (and most keys) are answered without
    // allocating.
    if key.len() > 17 || !KNOWN.iter().any(|k| k.eq_ignore_ascii_case(key)) {
        return None;
    }
    let k = key.to_ascii_lowercase();
    let rel_is = |names: &[&str]| {
        ctx.rel
            .is_some_and(|r| names.iter().any(|n| n.eq_ignore_ascii_case(r)))
    };
    let note_rel = rel_is(&["note", "contactNote", "location", "contactLocation"]);
    let group = rel_is(&["group", "pinnedGroup", "defaultGroup", "myGroups"]);
    Some(match k.as_str() {
        "name" if group => return None,
        "name" | "displayname" | "fullname" | "firstname" | "lastname" | "givenname"
        | "surname" => Field::Name,
        "title" if ctx.is_link => Field::Name,
        "title" | "jobtitle" => Field::Job("Title"),
        "department" => Field::Job("Department"),
        "company" => Field::Job("Company"),
        "office" => Field::Job("Office"),
        "homephonenumber" | "mobilephonenumber" | "workphonenumber" | "otherphonenumber"
        | "phonenumber" | "phone" => Field::Phone,
        "location" => Field::Note,
        "message" if ctx.is_error => return None,
        "message" | "note" if note_rel => Field::Note,
        "message" | "text" | "plainmessage" | "htmlmessage" => Field::Text,
        "subject" => Field::Subject,
        "query" | "q" | "search" | "searchterm" => Field::Search,
        _ => return None,
    })
}

/// Every member name [`field`] knows (compared without case).
const KNOWN: &[&str] = &[
    "name",
    "displayName",
    "fullName",
    "firstName",
    "lastName",
    "givenName",
    "surname",
    "title",
    "jobTitle",
    "department",
    "company",
    "office",
    "homePhoneNumber",
    "mobilePhoneNumber",
    "workPhoneNumber",
    "otherPhoneNumber",
    "phoneNumber",
    "phone",
    "location",
    "message",
    "note",
    "text",
    "plainMessage",
    "htmlMessage",
    "subject",
    "query",
    "q",
    "search",
    "searchTerm",
];

/// Members whose value names the person an object is about, best first.
pub(crate) const PERSON_KEYS: &[&str] = &["uri", "sip", "email", "emailaddresses", "from", "to"];

/// Path segments after which a person's address stands in a UCWA href.
pub(crate) const PERSON_SEGMENTS: &[&str] = &["people", "contacts", "participants"];

/// The person an href names (`…/participants/bob@contoso.com/messaging`), as
/// (local, domain) lower-case.
pub(crate) fn person_of_href(href: &str) -> Option<(String, String)> {
    let mut segments = href.split(['/', '?', '#']);
    while let Some(s) = segments.next() {
        if PERSON_SEGMENTS.iter().any(|p| p.eq_ignore_ascii_case(s)) {
            let next = segments.next()?;
            let decoded = percent_encoding::percent_decode_str(next).decode_utf8_lossy();
            let found = super::ident::addresses(decoded.as_bytes());
            if let Some(f) = found.into_iter().next() {
                return Some((f.local, f.domain));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_follow_the_context() {
        let link = Context {
            is_link: true,
            ..Context::default()
        };
        assert_eq!(field("title", link), Some(Field::Name));
        assert_eq!(
            field("title", Context::default()),
            Some(Field::Job("Title"))
        );
        let error = Context {
            is_error: true,
            ..Context::default()
        };
        assert_eq!(field("message", error), None);
        let note = Context {
            rel: Some("note"),
            ..Context::default()
        };
        assert_eq!(field("message", note), Some(Field::Note));
        assert_eq!(field("message", Context::default()), Some(Field::Text));
        assert_eq!(field("href", link), None);
    }

    #[test]
    fn people_in_hrefs() {
        assert_eq!(
            person_of_href(
                "/ucwa/oauth/v1/applications/1/communication/conversations/c/participants/sip%3ABob%40contoso.com/messaging"
            ),
            Some(("bob".into(), "contoso.com".into()))
        );
        assert_eq!(person_of_href("/x/participants/196"), None);
    }
}
