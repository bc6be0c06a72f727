//! Canonical forms and the merge.

use super::*;
use serde_json::Value as Json;

#[test]
fn canonical_forms_agree_across_sides() {
    assert_eq!(decimal("-001.2300"), "-1.23");
    assert_eq!(decimal("0.000"), "0");
    assert_eq!(decimal("18446744073709551615"), "18446744073709551615");
    let pairs: [(Class, Json, &str); 9] = [
        (Class::Bool, Json::Bool(true), "true"),
        (Class::Number, Json::String("12.50".into()), "12.5"),
        (Class::Number, Json::from(u64::MAX), "18446744073709551615"),
        (Class::Float, Json::from(0.1), "0.1"),
        (Class::Date, Json::String("1970-01-11".into()), "10"),
        (
            Class::Timestamp,
            Json::String("1970-01-02 00:00:01.500000".into()),
            "86401.500000000",
        ),
        (
            Class::Timestamp,
            Json::String("2000-01-01T00:00:00.000000+00:00".into()),
            "946684800.000000000 1440",
        ),
        (Class::Binary, Json::String("00ff".into()), "00FF"),
        (
            Class::Variant,
            serde_json::json!({"b": [1, "x"], "a": null}),
            "{\"a\":null,\"b\":[1,\"x\"]}",
        ),
    ];
    for (class, src, dst) in pairs {
        assert_eq!(
            from_source(class, &src),
            from_dest(class, Some(dst)),
            "{class:?} {src} vs {dst}"
        );
    }
    assert_eq!(
        from_source(Class::Text, &Json::Null),
        from_dest(Class::Text, None)
    );
    assert_ne!(
        from_source(Class::Number, &Json::from(2)),
        from_dest(Class::Number, Some("3"))
    );
    assert_eq!(
        from_dest(Class::Timestamp, Some("-1.500000000")).unwrap(),
        "-1500000000"
    );
    assert_eq!(
        from_dest(Class::Timestamp, Some("-0.500000000")).unwrap(),
        "-500000000"
    );
    assert_eq!(
        from_source(
            Class::Timestamp,
            &Json::String("1969-12-31 23:59:59.500000".into())
        )
        .unwrap(),
        "-500000000"
    );
}

#[test]
fn merge_finds_missing_extra_duplicate_and_changed_rows() {
    let row = |k: u64, v: &str| (k, vec![Some(k.to_string()), Some(v.to_string())]);
    let src = vec![row(1, "a"), row(2, "b"), row(4, "d"), row(5, "e")];
    let dst = vec![
        row(1, "a"),
        row(3, "c"),
        row(4, "X"),
        row(5, "e"),
        row(5, "e"),
    ];
    let names = vec!["ID".to_string(), "V".to_string()];
    let mut v = Verification::default();
    let mut diff = vec![0; 2];
    let mut sh: Vec<Sha256> = (0..2).map(|_| Sha256::new()).collect();
    let mut dh: Vec<Sha256> = (0..2).map(|_| Sha256::new()).collect();
    merge(&src, &dst, &names, &mut v, &mut diff, &mut sh, &mut dh);
    assert_eq!(
        (v.missing, v.extra),
        (1, 2),
        "2 missing; 3 and a second 5 extra"
    );
    assert_eq!(diff, vec![0, 1]);
    assert_eq!(v.differences.iter().filter(|d| d.column == "V").count(), 1);
    assert!(!v.is_exact());
}
