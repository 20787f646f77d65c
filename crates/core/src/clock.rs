//! The core's notion of now. Production reads the system clock; tests under tokio's paused
//! clock use one that follows tokio's time, so that a simulated hour of backoff passes in
//! milliseconds and every timestamp the core writes (status files, due times) moves with it.

use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, Default)]
pub enum Clock {
    /// The system's wall clock.
    #[default]
    System,
    /// The wall-clock time at `instant`, advanced by tokio's clock since then.
    FollowsTokio {
        wall: OffsetDateTime,
        instant: tokio::time::Instant,
    },
}

impl Clock {
    /// A clock that starts at the current wall-clock time and then follows tokio's clock
    /// (paused or not); call it inside a runtime.
    pub fn following_tokio() -> Clock {
        Clock::FollowsTokio {
            wall: OffsetDateTime::now_utc(),
            instant: tokio::time::Instant::now(),
        }
    }

    pub fn now(&self) -> OffsetDateTime {
        match self {
            Clock::System => OffsetDateTime::now_utc(),
            Clock::FollowsTokio { wall, instant } => {
                *wall + time::Duration::try_from(instant.elapsed()).unwrap_or(time::Duration::MAX)
            }
        }
    }
}
