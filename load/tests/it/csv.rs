//! CSV: quotes, embedded line breaks, NULL_IF, empty fields, field counts.

use crate::common::Lab;
use serde_json::json;

#[test]
fn csv_lands_once_with_quotes_line_breaks_and_nulls() {
    let lab = Lab::new();
    let file = lab.path("people.csv");
    let data = "id,name,note\n\
                1,\"Smith, Jane\",\"said \"\"hi\"\"\"\n\
                2,\"two\nlines\",NULL\n\
                3,,\\N\n\
                4,x\n\
                5,five,ok\n";
    std::fs::write(&file, data).unwrap();
    let s = lab
        .load(&[&file], &["--csv-null-if", "NULL", "--csv-null-if", "\\N"])
        .ok();
    assert_eq!(
        (s["rows"].as_u64(), s["bad_records"].as_u64()),
        (Some(4), Some(1)),
        "{s}"
    );
    let rows = lab.rows("ID, NAME, NOTE");
    assert_eq!(
        rows,
        [
            vec![json!(1), json!("Smith, Jane"), json!("said \"hi\"")],
            vec![json!(2), json!("two\nlines"), json!(null)],
            vec![json!(3), json!(null), json!(null)],
            vec![json!(5), json!("five"), json!("ok")],
        ]
    );
    let dead = std::fs::read_to_string(lab.path("people.csv.rejected.ndjson")).unwrap();
    let bad: serde_json::Value = serde_json::from_str(dead.lines().next().unwrap()).unwrap();
    assert_eq!(bad["line"], 6, "{bad}");
    assert_eq!(bad["record"], "4,x");
    assert!(bad["error"].as_str().unwrap().contains("2 fields"), "{bad}");
    // A rerun: nothing twice.
    assert_eq!(lab.load(&[&file], &[]).ok()["rows"], 0);
    assert_eq!(lab.counts(), (4, 4));
}

#[test]
fn csv_without_a_header_takes_the_named_columns_and_options() {
    let lab = Lab::new();
    let file = lab.path("raw.data");
    std::fs::write(&file, "# export v2\n7| seven |\n8|'eight|8'|z\n").unwrap();
    let args = [
        "--format",
        "csv",
        "--csv-no-header",
        "--csv-columns",
        "ID,NAME,NOTE",
        "--csv-skip-header",
        "1",
        "--csv-delimiter",
        "|",
        "--csv-quote",
        "'",
        "--csv-trim-space",
        "--csv-empty-field-as-null",
        "false",
    ];
    let s = lab.load(&[&file], &args).ok();
    assert_eq!(s["rows"], 2, "{s}");
    assert_eq!(
        lab.rows("ID, NAME, NOTE"),
        [
            vec![json!(7), json!("seven"), json!("")],
            vec![json!(8), json!("eight|8"), json!("z")]
        ]
    );
}
