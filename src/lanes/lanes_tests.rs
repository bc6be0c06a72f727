use super::*;

#[test]
fn the_latest_position_is_taken_by_the_one_token_rule_and_no_order_is_refused() {
    let t = |s: &str| OffsetToken::new(s).unwrap();
    assert_eq!(latest([t("9"), t("10"), t("2")]).unwrap(), Some(t("10")));
    assert_eq!(latest([t("o_9"), t("o_10")]).unwrap(), Some(t("o_10")));
    assert_eq!(latest(Vec::<OffsetToken>::new()).unwrap(), None);
    let e = latest([t("9"), t("x")]).unwrap_err().to_string();
    assert!(e.contains("no order"), "{e}");
}
