//! What an append costs in memory, charged to the pending budget as it materializes
//! (docs/protocol.md "Limits"): a [`Meter`] grows the append's reservation before the
//! decompressed body, each parsed row and each converted row take their memory, and turns a
//! refusal into the HTTP answer (413 when the append alone exceeds the budget, 429 when
//! waiting for other appends to commit would let it in).

use std::sync::Arc;

use crate::base::api_error::ApiError;
use crate::base::pending_budget::{PendingBudget, Refusal, Reservation};
use crate::convert::SqlValue;

/// Bytes one parsed JSON value or object member is charged beyond its text: a
/// `serde_json::Value` is 32 bytes, held in a vector that may be twice the size it needs, or
/// in a map node with its key (docs/protocol.md "Limits").
const PARSED_VALUE_COST: usize = 64;

/// An append's reservation of the pending budget, grown as its rows materialize.
#[derive(Debug)]
pub(crate) struct Meter {
    reservation: Reservation,
}

impl Meter {
    /// An empty charge against `budget`.
    pub(crate) fn new(budget: &Arc<PendingBudget>) -> Self {
        Self {
            reservation: budget.reservation(),
        }
    }

    /// A charge that starts from `reservation` (the body's, as it was read).
    pub(crate) fn holding(reservation: Reservation) -> Self {
        Self { reservation }
    }

    /// Bytes charged now.
    pub(crate) fn bytes(&self) -> usize {
        self.reservation.bytes()
    }

    /// Makes the charge at least `total` bytes, before they are allocated.
    ///
    /// # Errors
    ///
    /// 413 `ERR_PAYLOAD_TOO_LARGE` (not retryable) when `total` is more than the whole
    /// budget; 429 `ERR_TOO_MANY_REQUESTS` (retryable) when other appends hold the room.
    pub(crate) fn charge(&mut self, total: usize) -> Result<(), ApiError> {
        self.reservation
            .grow_to(total)
            .map_err(|refusal| refused(refusal, self.reservation.budget(), total))
    }

    /// Lowers the charge to `total` bytes once memory was freed.
    pub(crate) fn settle(&mut self, total: usize) {
        self.reservation.shrink_to(total);
    }

    /// The reservation, to hold with the pending batch until it commits.
    pub(crate) fn into_reservation(self) -> Reservation {
        self.reservation
    }
}

/// The answer to an append the budget cannot take: `needed` is what it would hold.
pub(crate) fn refused(refusal: Refusal, budget: &PendingBudget, needed: usize) -> ApiError {
    match refusal {
        Refusal::TooLarge => ApiError::new(
            413,
            "ERR_PAYLOAD_TOO_LARGE",
            format!(
                "the append needs more than {} bytes of memory once decoded (its decompressed \
                 body and parsed rows), more than the emulator holds for all pending rows \
                 ({} bytes, --max-pending-bytes); send smaller batches or raise \
                 --max-pending-bytes",
                needed.saturating_sub(1),
                budget.max()
            ),
        ),
        Refusal::Full => full(budget),
    }
}

/// The 429 for an append that does not fit the pending-rows budget now.
pub(crate) fn full(budget: &PendingBudget) -> ApiError {
    ApiError::new(
        429,
        "ERR_TOO_MANY_REQUESTS",
        format!(
            "the emulator holds {} MiB of appended rows being decoded or not yet committed \
             (limit {} MiB, --max-pending-bytes); retry after a short wait",
            budget.used() >> 20,
            budget.max() >> 20
        ),
    )
}

/// An upper estimate of the bytes `line` takes once parsed into a `serde_json::Value`: its
/// text (strings and keys are copied) and [`PARSED_VALUE_COST`] for every value and member
/// (counted from the `[`, `{`, `,` and `:` outside strings), in one pass without parsing.
pub(crate) fn parsed_estimate(line: &[u8]) -> usize {
    let values = 1 + snowpipe_cli_support::json_scan::outside_strings(line)
        .filter(|b| matches!(b, b'[' | b'{' | b',' | b':'))
        .count();
    line.len()
        .saturating_add(values.saturating_mul(PARSED_VALUE_COST))
}

/// Bytes a converted row holds: its vector and the text and bytes its values own.
pub(crate) fn row_bytes(values: &Vec<SqlValue>) -> usize {
    let heap: usize = values
        .iter()
        .map(|v| match v {
            SqlValue::Text(s) | SqlValue::Decimal(s) => s.capacity(),
            SqlValue::Blob(b) => b.capacity(),
            _ => 0,
        })
        .sum();
    std::mem::size_of::<Vec<SqlValue>>()
        + values.capacity() * std::mem::size_of::<SqlValue>()
        + heap
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsed_estimates_cover_what_serde_json_builds() {
        // (line, at least this many bytes): arrays of one-digit numbers are the densest.
        let dense = format!("{{\"a\":[{}0]}}", "0,".repeat(10_000));
        let cases: [(&[u8], usize); 4] = [
            (b"{}", 32),
            (dense.as_bytes(), 10_000 * 32),
            (b"{\"s\":\"a,b:[c{\\\"\"}", 3 * PARSED_VALUE_COST),
            (b"{\"a\":1,\"b\":2}", 4 * 56),
        ];
        for (line, at_least) in cases {
            let e = parsed_estimate(line);
            assert!(e >= at_least, "{}: {e}", String::from_utf8_lossy(line));
        }
        // Commas and brackets inside strings are text, not values.
        let quoted = parsed_estimate(b"{\"s\":\"[[[[,,,,]]]]\"}");
        assert_eq!(quoted, 20 + 3 * PARSED_VALUE_COST);
    }

    #[test]
    fn refusals_name_the_budget_and_whether_to_retry() {
        let budget = PendingBudget::new(1000);
        let mut meter = Meter::new(&budget);
        let e = meter.charge(1001).unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (413, "ERR_PAYLOAD_TOO_LARGE"));
        assert!(e.message.contains("--max-pending-bytes"), "{}", e.message);
        meter.charge(600).unwrap();
        let mut other = Meter::new(&budget);
        let e = other.charge(500).unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (429, "ERR_TOO_MANY_REQUESTS"));
        meter.settle(100);
        other.charge(500).unwrap();
        assert_eq!(budget.used(), 600);
    }
}
