//! The process's open-file limit against the configured sessions: raised to the hard limit
//! at start, and the session limits clamped (loudly) when even that cannot carry them, so
//! that the gateway refuses connections with `421` rather than failing `accept` and `open`.

/// File descriptors one FTPS session can hold at once: control connection, passive
/// listener, data connection, blob file.
const FILES_PER_SESSION: u64 = 4;
/// Descriptors for everything else: the HTTPS listeners' connections (at most 1024 each),
/// the database, logs, the runtime.
const FILES_BESIDES_SESSIONS: u64 = 2 * 1024 + 256;

/// Raises the soft open-file limit as far as the hard one; returns the limit in force.
pub fn raise_open_file_limit() -> std::io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        limit.rlim_cur = limit.rlim_max;
    }
    Ok(limit.rlim_cur)
}

/// How many sessions `open_files` descriptors can carry; `None` if not even one.
pub fn sessions_carried(open_files: u64) -> Option<usize> {
    let sessions = open_files.checked_sub(FILES_BESIDES_SESSIONS)? / FILES_PER_SESSION;
    (sessions > 0).then(|| usize::try_from(sessions).unwrap_or(usize::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_what_is_left_after_the_rest_four_files_each() {
        assert_eq!(sessions_carried(20_000), Some((20_000 - 2_304) / 4));
        assert_eq!(sessions_carried(1024), None);
        assert_eq!(sessions_carried(2_308), Some(1));
    }
}
