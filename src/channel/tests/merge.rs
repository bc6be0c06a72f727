//! Appends sharing one request: the request names a span of tokens only when the span counts
//! its rows. Two appends whose spans do not meet (rows `0..=9`, then `20..=29`), or a span
//! followed by an append at one token, share a request carrying its end token alone (as
//! [`Positions::at`]'s requests do), never a span `0..=29` for 20 rows or `0..=12` for 15
//! (which the strict emulator refuses: more rows than the span names).

use proptest::prelude::*;

use super::*;
use crate::channel::testing::AppendRecord;

/// Each request's `(start, end, rows)`.
fn requests(fake: &FakeApi) -> Vec<(Option<String>, Option<String>, usize)> {
    fake.appends_to("c")
        .into_iter()
        .map(|a| (a.start, a.end, a.rows.len()))
        .collect()
}

fn t(s: &str) -> OffsetToken {
    OffsetToken::new(s).unwrap()
}

async fn append(ch: &Channel, ids: std::ops::Range<u64>, positions: Positions) {
    ch.append(Rows::serde(ids.map(|id| Row { id })), positions)
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn appends_whose_spans_do_not_meet_share_a_request_without_naming_a_span() {
    let fake = FakeApi::new();
    let client = client(&fake, settings());
    let ch = open(&client, "c").await;
    append(&ch, 0..10, Positions::span(t("0")..=t("9"))).await;
    append(&ch, 10..20, Positions::span(t("20")..=t("29"))).await;
    ch.flush().await.unwrap();
    assert_eq!(requests(&fake), [(None, Some("29".into()), 20)]);
    ch.wait_for_commit(&t("29"), Duration::from_secs(60))
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_span_then_an_append_at_one_token_never_names_fewer_tokens_than_rows() {
    let fake = FakeApi::new();
    let client = client(&fake, settings());
    let ch = open(&client, "c").await;
    append(&ch, 0..10, Positions::span(t("o_0")..=t("o_9"))).await;
    append(&ch, 10..15, Positions::at(t("o_12"))).await;
    ch.flush().await.unwrap();
    assert_eq!(requests(&fake), [(None, Some("o_12".into()), 15)]);
}

#[tokio::test(start_paused = true)]
async fn appends_whose_spans_meet_share_a_request_naming_the_whole_span() {
    let fake = FakeApi::new();
    let client = client(&fake, settings());
    let ch = open(&client, "c").await;
    append(&ch, 0..10, Positions::span(t("o_0")..=t("o_9"))).await;
    append(&ch, 10..12, Positions::per_row([t("o_10"), t("o_11")])).await;
    append(&ch, 12..15, Positions::numbered([12, 13, 14]).unwrap()).await;
    ch.flush().await.unwrap();
    // The bare numbers have another prefix: the span ends with the per-row tokens.
    assert_eq!(requests(&fake), [(None, Some("14".into()), 15)]);
    append(&ch, 15..20, Positions::span(t("15")..=t("19"))).await;
    append(&ch, 20..22, Positions::numbered([20, 21]).unwrap()).await;
    ch.flush().await.unwrap();
    assert_eq!(
        requests(&fake)[1..],
        [(Some("15".into()), Some("21".into()), 7)]
    );
}

/// How an append of the property test names its rows.
#[derive(Debug, Clone, Copy)]
enum Form {
    At,
    /// A span naming `extra` more tokens than rows.
    Span {
        extra: u64,
    },
    PerRow,
    Numbered,
}

/// One append: its form, rows, the gap before its first number (0: it follows the last one),
/// whether it repeats the last token instead (refused), and whether its tokens are prefixed.
#[derive(Debug, Clone, Copy)]
struct Spec {
    form: Form,
    rows: u64,
    gap: u64,
    repeat: bool,
    prefixed: bool,
}

fn spec() -> impl Strategy<Value = Spec> {
    let form = prop_oneof![
        Just(Form::At),
        (0u64..3).prop_map(|extra| Form::Span { extra }),
        Just(Form::PerRow),
        Just(Form::Numbered),
    ];
    (
        form,
        1u64..7,
        prop_oneof![3 => Just(0u64), 1 => 1u64..4],
        prop::bool::weighted(0.08),
        prop::bool::weighted(0.3),
    )
        .prop_map(|(form, rows, gap, repeat, prefixed)| Spec {
            form,
            rows,
            gap,
            repeat,
            prefixed,
        })
}

/// The appends' positions as the test writes them, and each row's token where one is named
/// (`None`: a row inside an append at one token, or inside a sparse span).
struct Model {
    next: u64,
    last_end: Option<OffsetToken>,
    row_tokens: Vec<Option<String>>,
}

impl Model {
    /// The positions of `s` for rows starting at id `self.row_tokens.len()`, and its rows'
    /// tokens.
    fn positions(&self, s: Spec) -> (Positions, Vec<Option<String>>) {
        let prefix = if s.prefixed && !matches!(s.form, Form::Numbered) {
            "p_"
        } else {
            ""
        };
        let tok = |n: u64| OffsetToken::new(format!("{prefix}{n}")).unwrap();
        if let (Some(last), true) = (&self.last_end, s.repeat) {
            return (Positions::at(last.clone()), Vec::new());
        }
        let first = self.next + s.gap;
        let numbers: Vec<u64> = match s.form {
            Form::PerRow | Form::Numbered => (0..s.rows).map(|i| first + i * (1 + s.gap)).collect(),
            _ => (first..first + s.rows).collect(),
        };
        let mut named: Vec<Option<String>> = numbers
            .iter()
            .map(|&n| Some(format!("{prefix}{n}")))
            .collect();
        let positions = match s.form {
            Form::At => {
                named.iter_mut().rev().skip(1).for_each(|t| *t = None);
                Positions::at(tok(numbers[numbers.len() - 1]))
            }
            Form::Span { extra } => {
                let end = numbers[numbers.len() - 1] + extra;
                if extra > 0 {
                    let last = named.len() - 1;
                    named.iter_mut().skip(1).for_each(|t| *t = None);
                    named[last] = Some(format!("{prefix}{end}"));
                }
                Positions::span(tok(first)..=tok(end))
            }
            Form::PerRow => Positions::per_row(numbers.iter().map(|&n| tok(n))),
            Form::Numbered => Positions::numbered(numbers.iter().copied()).unwrap(),
        };
        (positions, named)
    }
}

/// What is wrong with request `a` given every row's named token (`rows[id]`) and the append
/// each row came in (`appended[id]`), or `None`.
fn violation(a: &AppendRecord, rows: &[Option<String>], appended: &[usize]) -> Option<String> {
    let ids = ids(&a.rows);
    let (first, last) = (ids[0] as usize, ids[ids.len() - 1] as usize);
    if a.end.is_some() && a.end != rows[last] {
        return Some(format!(
            "end {:?} is not its last row's {:?}",
            a.end, rows[last]
        ));
    }
    if a.start.is_some() && a.start != rows[first] {
        return Some(format!(
            "start {:?} is not its first row's {:?}",
            a.start, rows[first]
        ));
    }
    let (Some(s), Some(e)) = (&a.start, &a.end) else {
        return None;
    };
    let span = OffsetToken::span_len(&t(s), &t(e))?;
    let n = ids.len() as u64;
    let merged = appended[first] != appended[last];
    (n > span || (merged && n != span)).then(|| {
        format!("span {s}..={e} names {span} tokens for {n} rows (merged appends: {merged})")
    })
}

async fn run(specs: Vec<Spec>) -> std::result::Result<(), TestCaseError> {
    let fake = FakeApi::new();
    let client = client(&fake, kib_requests());
    let ch = open(&client, "c").await;
    let mut model = Model {
        next: 0,
        last_end: None,
        row_tokens: Vec::new(),
    };
    let mut appended = Vec::new();
    for (i, s) in specs.into_iter().enumerate() {
        let (positions, named) = model.positions(s);
        let id = model.row_tokens.len() as u64;
        let res = ch
            .append(
                Rows::serde((id..id + s.rows).map(|id| Row { id })),
                positions,
            )
            .await;
        let repeats = s.repeat && model.last_end.is_some();
        prop_assert_eq!(res.is_err(), repeats, "append {} {:?}: {:?}", i, s, res);
        if repeats {
            continue;
        }
        let end = named[named.len() - 1].clone().unwrap();
        model.next = t(&end).prefixed_number().unwrap().1 + 1;
        model.last_end = Some(t(&end));
        model.row_tokens.extend(named);
        appended.extend(std::iter::repeat_n(i, s.rows as usize));
    }
    ch.flush().await.unwrap();
    if let Some(last) = &model.last_end {
        ch.wait_for_commit(last, Duration::from_secs(60))
            .await
            .unwrap();
    }
    let sent = fake.appends_to("c");
    let all: Vec<u64> = sent.iter().flat_map(|a| ids(&a.rows)).collect();
    prop_assert_eq!(all, (0..model.row_tokens.len() as u64).collect::<Vec<_>>());
    for a in &sent {
        if let Some(why) = violation(a, &model.row_tokens, &appended) {
            prop_assert!(false, "request {:?}..={:?}: {}", a.start, a.end, why);
        }
    }
    let last = model.last_end.map(|t| t.to_string());
    prop_assert_eq!(fake.committed_token("c"), last);
    Ok(())
}

proptest! {
    #![proptest_config(crate::test_support::proptest_config(96))]

    /// Any sequence of appends at one token, spans (dense or sparse), per-row tokens and
    /// numbers, with gaps, repeats (refused) and prefixes: every request names its first and
    /// last row's tokens, never a span with fewer tokens than rows, and a request holding
    /// several appends names a span only when it has one token per row; the committed token is
    /// the last append's end.
    #[test]
    fn every_request_of_merged_appends_names_a_span_that_counts_its_rows(
        specs in prop::collection::vec(spec(), 1..40),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(run(specs))?;
    }
}
