//! JSON text written by hand: one value kept on one NDJSON line, strings, and bytes as base64.

use base64::Engine as _;

/// Whether `json` is one JSON value; if so, its line feeds and carriage returns (white space
/// there) become spaces, so it stays one NDJSON line. The check says whether there are any, so
/// a value without them is not scanned again.
pub(crate) fn one_line_json(json: &mut [u8]) -> bool {
    let Some(breaks) = crate::formats::json_check::line_breaks_of_one_value(json) else {
        return false;
    };
    if breaks {
        for i in memchr::memchr2_iter(b'\n', b'\r', json).collect::<Vec<_>>() {
            json[i] = b' ';
        }
    }
    true
}

/// `b` as standard base64 (bytes that are not text, in JSON).
pub(crate) fn base64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// `s` as a JSON string.
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}
