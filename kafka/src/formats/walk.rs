//! How far a decoder's writer may go into one message: how deep it nests, and how long the row
//! it writes may grow.
//!
//! A few bytes of payload can ask for many bytes of row: an empty Protobuf sub-message writes
//! every field's default, a JSON Schema `{}` every property's default. The writers check the
//! row's length before each message and after each value, so a row passes `max_len` by one
//! value at most before it becomes a dead letter; nothing larger is ever built.

/// A writer's place: its depth and the row's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Walk {
    /// Levels of messages (or schema nodes) above this one.
    pub depth: usize,
    /// The longest row the writer may produce, in bytes.
    pub max_len: usize,
}

impl Walk {
    /// The top of a row of at most `max_len` bytes.
    pub(crate) fn new(max_len: usize) -> Self {
        Walk { depth: 0, max_len }
    }

    /// One level down.
    #[must_use]
    pub(crate) fn deeper(self) -> Self {
        Walk {
            depth: self.depth + 1,
            ..self
        }
    }

    /// Refuses a row of `len` bytes past the limit.
    ///
    /// # Errors
    /// The dead-letter reason, naming the limit.
    pub(crate) fn check_len(self, len: usize) -> Result<(), String> {
        if len > self.max_len {
            return Err(format!(
                "the row grows past {} bytes, the largest the sink sends: the message decodes \
                 into more than that (defaults of empty messages or objects count)",
                self.max_len
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_inclusive_and_kept_at_every_depth() {
        let w = Walk::new(10).deeper().deeper();
        assert_eq!(w.depth, 2);
        assert!(w.check_len(10).is_ok());
        let err = w.check_len(11).unwrap_err();
        assert!(err.contains("past 10 bytes"), "{err}");
    }
}
