//! Properties of the match key: the canonical query does not depend on the order of its
//! pairs, on the events-feed tuning parameters or on placeholder numbers, and is a fixed
//! point; a key reads back from its stored text; a JSON body's key ignores key order,
//! whitespace, client-generated ids and placeholder numbers.

use proptest::prelude::*;
use serde_json::{Map, Value};

use super::*;

/// `name=value` with the characters real queries use (percent-escapes, dots, dashes).
fn pair() -> impl Strategy<Value = String> {
    ("[a-zA-Z_]{1,6}", "[a-zA-Z0-9%._-]{0,8}").prop_map(|(k, v)| format!("{k}={v}"))
}

fn pairs_and_a_shuffle() -> impl Strategy<Value = (Vec<String>, Vec<String>)> {
    prop::collection::vec(pair(), 0..8)
        .prop_flat_map(|pairs| (Just(pairs.clone()), Just(pairs).prop_shuffle()))
}

fn key_of(target: &str, accept: Option<&str>, body: &[u8]) -> MatchKey {
    KeyRequest::new("POST", target)
        .accept(accept)
        .body(Some("application/json"), body)
        .key(&KeyOptions::default())
}

/// A flat JSON object with distinct keys; values are strings or numbers.
fn json_object() -> impl Strategy<Value = Vec<(String, Value)>> {
    prop::collection::btree_map(
        "[a-z]{1,8}",
        prop_oneof![
            "[ -~]{0,12}".prop_map(Value::from),
            any::<i32>().prop_map(Value::from)
        ],
        0..6,
    )
    .prop_map(|m| m.into_iter().collect())
}

fn object(fields: impl IntoIterator<Item = (String, Value)>) -> Value {
    Value::Object(fields.into_iter().collect::<Map<_, _>>())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_canonical_query_is_a_fixed_point_and_ignores_pair_order(
        (pairs, shuffled) in pairs_and_a_shuffle(),
    ) {
        let canon = canonical_query(&pairs.join("&"));
        prop_assert_eq!(canonical_query(&canon), canon.clone());
        prop_assert_eq!(canonical_query(&shuffled.join("&")), canon);
    }

    #[test]
    fn tuning_parameters_and_placeholder_numbers_never_change_the_query(
        pairs in prop::collection::vec(pair(), 0..6),
        tuning in prop::collection::vec(
            (prop::sample::select(FEED_TUNING_PARAMS), "[0-9a-z]{0,4}"), 0..4),
        numbers in (1u32..500, 1u32..500),
    ) {
        let token = |n: u32| format!("token=cwt%3DREDACTED-{n}");
        let mut plain = pairs.clone();
        plain.push(token(numbers.0));
        let mut tuned = pairs;
        tuned.push(token(numbers.1));
        tuned.extend(tuning.iter().map(|(name, v)| format!("{}={v}", name.to_ascii_uppercase())));
        prop_assert_eq!(canonical_query(&plain.join("&")), canonical_query(&tuned.join("&")));
    }

    #[test]
    fn any_query_canonicalises_without_spaces_or_panics(query in "[ -~]{0,60}") {
        let canon = canonical_query(&query);
        prop_assert!(!canon.contains(' '));
        prop_assert_eq!(canonical_query(&canon), canon);
    }

    #[test]
    fn a_key_reads_back_from_its_text(
        method in "[A-Za-z]{1,8}",
        path in "/[a-zA-Z0-9/._~%!$&'()*+,;=:@ -]{0,30}",
        query in prop::option::of(prop::collection::vec(pair(), 0..4)),
        accept in prop::option::of(prop::sample::select(vec![
            "application/json",
            "application/vnd.microsoft.com.ucwa+xml",
            "text/plain",
            "*/*",
        ])),
        body in prop::collection::vec(any::<u8>(), 0..40),
    ) {
        let target = match &query {
            Some(pairs) => format!("{path}?{}", pairs.join("&")),
            None => path,
        };
        let key = KeyRequest::new(&method, &target)
            .accept(accept)
            .body(Some("application/octet-stream"), &body)
            .key(&KeyOptions::default());
        prop_assert_eq!(MatchKey::parse(&key.to_string()), Some(key));
    }

    #[test]
    fn a_json_body_key_ignores_order_whitespace_client_ids_and_placeholder_numbers(
        fields in json_object(),
        ids in ("[a-f0-9]{8}", "[a-f0-9]{8}"),
        numbers in (1u32..500, 1u32..500),
    ) {
        let with = |id: &str, n: u32, reversed: bool| {
            let mut all = fields.clone();
            all.push(("operationId".into(), Value::from(id)));
            all.push(("secret".into(), Value::from(format!("cwt=REDACTED-{n}"))));
            if reversed {
                all.reverse();
            }
            object(all)
        };
        let compact = serde_json::to_vec(&with(&ids.0, numbers.0, false)).unwrap();
        let pretty = serde_json::to_vec_pretty(&with(&ids.1, numbers.1, true)).unwrap();
        let target = "/ucwa/oauth/v1/applications/1/communication/messagingInvitations";
        prop_assert_eq!(
            key_of(target, Some("application/json"), &compact),
            key_of(target, Some("application/json"), &pretty)
        );
    }

    #[test]
    fn a_different_body_value_is_a_different_key(
        fields in json_object(),
        values in ("[a-z]{1,8}", "[a-z]{1,8}").prop_filter("two values", |(a, b)| a != b),
    ) {
        let body = |v: &str| {
            let mut all = fields.clone();
            all.push(("message".into(), Value::from(v)));
            serde_json::to_vec(&object(all)).unwrap()
        };
        prop_assert_ne!(key_of("/x", None, &body(&values.0)), key_of("/x", None, &body(&values.1)));
    }
}
