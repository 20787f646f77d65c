//! What one user may put into the gateway: no upload larger than the largest, and no more
//! bytes waiting for delivery than the quota, counting both what the store's outbox holds
//! (read when an upload starts) and what the user's uploads under way in this process carry,
//! all sessions together (so that parallel uploads cannot each take the whole quota).

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The bytes of each user's uploads under way.
#[derive(Debug, Default)]
pub struct UploadsInFlight {
    users: Mutex<HashMap<String, Arc<AtomicU64>>>,
}

/// One upload's share of the limits; gives its bytes back when dropped (committed, they are
/// in the outbox; aborted, they are gone).
#[derive(Debug)]
pub struct Allowance {
    max_upload: u64,
    quota: u64,
    /// What the outbox held when the upload started.
    pending: u64,
    user_in_flight: Arc<AtomicU64>,
    received: u64,
    uploads: Arc<UploadsInFlight>,
    username: String,
}

impl UploadsInFlight {
    /// The allowance of an upload of `username`, whose outbox holds `pending` bytes.
    pub fn start(
        self: &Arc<Self>,
        username: &str,
        pending: u64,
        max_upload: u64,
        quota: u64,
    ) -> Allowance {
        let user_in_flight = {
            let mut users = self.users.lock().expect("uploads in flight poisoned");
            Arc::clone(users.entry(username.to_owned()).or_default())
        };
        Allowance {
            max_upload,
            quota,
            pending,
            user_in_flight,
            received: 0,
            uploads: Arc::clone(self),
            username: username.to_owned(),
        }
    }
}

impl Allowance {
    /// Whether `bytes` more may be written; the error says which limit they would pass.
    pub fn admit(&self, bytes: u64) -> io::Result<()> {
        if self.received + bytes > self.max_upload {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                format!(
                    "the file is larger than the largest upload, {} bytes",
                    self.max_upload
                ),
            ));
        }
        let waiting = self.pending + self.user_in_flight.load(Ordering::Relaxed) + bytes;
        if waiting > self.quota {
            return Err(io::Error::new(
                io::ErrorKind::QuotaExceeded,
                quota_message(self.quota),
            ));
        }
        Ok(())
    }

    /// Counts `bytes` written.
    pub fn written(&mut self, bytes: u64) {
        self.received += bytes;
        self.user_in_flight.fetch_add(bytes, Ordering::Relaxed);
    }
}

impl Drop for Allowance {
    fn drop(&mut self) {
        self.user_in_flight
            .fetch_sub(self.received, Ordering::Relaxed);
        let mut users = self
            .uploads
            .users
            .lock()
            .expect("uploads in flight poisoned");
        // This allowance's counter and the map's: nobody else uploads as this user now.
        if Arc::strong_count(&self.user_in_flight) == 2 {
            users.remove(&self.username);
        }
    }
}

/// Why an upload was refused for the quota.
pub fn quota_message(quota: u64) -> String {
    format!(
        "Your uploads waiting for delivery would exceed your quota of {quota} bytes; try again once they are delivered"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_of_one_user_share_the_quota_and_give_it_back() {
        let uploads = Arc::new(UploadsInFlight::default());
        let mut first = uploads.start("u", 100, 1_000, 500);
        let mut second = uploads.start("u", 100, 1_000, 500);
        first.admit(300).unwrap();
        first.written(300);
        assert_eq!(
            second.admit(101).unwrap_err().kind(),
            io::ErrorKind::QuotaExceeded,
            "100 waiting and 300 under way leave 100"
        );
        second.admit(100).unwrap();
        second.written(100);
        let other = uploads.start("v", 0, 1_000, 500);
        other.admit(500).unwrap();
        drop(first);
        second.admit(300).unwrap();
        assert_eq!(
            second.admit(901).unwrap_err().kind(),
            io::ErrorKind::FileTooLarge
        );
        drop(second);
        drop(other);
        assert!(uploads.users.lock().unwrap().is_empty());
    }
}
