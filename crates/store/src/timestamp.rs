//! How times are written to the database: ISO-8601 UTC text with exactly six fractional
//! digits, `YYYY-MM-DDTHH:MM:SS.ffffffZ`. Fixed width, so comparing the text compares the
//! times; microseconds, because that is what PostgreSQL's `timestamptz` keeps.

use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

use crate::StoreError;

/// The storage text for `at`, converted to UTC and truncated to microseconds.
pub(crate) fn to_text(at: OffsetDateTime) -> String {
    let at = at.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.microsecond()
    )
}

/// Reads text written by [`to_text`]; `column` names the source in the error.
pub(crate) fn from_text(column: &str, text: &str) -> Result<OffsetDateTime, StoreError> {
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
    PrimitiveDateTime::parse(text, format)
        .map(PrimitiveDateTime::assume_utc)
        .map_err(|error| {
            StoreError::Corrupt(format!("{column}: {text:?} is not a stored time: {error}"))
        })
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn round_trips_in_utc_and_truncates_to_microseconds() {
        let at = datetime!(2025-03-01 11:30:05.123456789 +01:00);
        let text = to_text(at);
        assert_eq!(text, "2025-03-01T10:30:05.123456Z");
        assert_eq!(
            from_text("t", &text).unwrap(),
            datetime!(2025-03-01 10:30:05.123456 UTC)
        );
    }

    #[test]
    fn text_order_is_time_order() {
        let earlier = to_text(datetime!(2025-03-01 09:59:59.999999 UTC));
        let later = to_text(datetime!(2025-03-01 10:00:00 UTC));
        assert!(earlier < later);
    }

    #[test]
    fn rejects_other_formats() {
        let error = from_text("users.created_at", "2025-03-01 10:00:00").unwrap_err();
        assert!(error.to_string().contains("users.created_at"), "{error}");
    }
}
