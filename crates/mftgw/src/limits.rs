//! The process's open-file limit against the configured sessions: raised to the hard limit
//! at start, and the session limits clamped (loudly) when even that cannot carry them, so
//! that the gateway refuses connections with `421` rather than failing `accept` and `open`.

/// File descriptors one data connection holds at most: its passive listener, the handshakes
/// it runs at once (the client's and strangers'), and an upload's blob file.
const FILES_PER_DATA_CONNECTION: u64 = 2 + mftgw_ftps::CONCURRENT_HANDSHAKES as u64;
/// Descriptors for everything but FTPS: the HTTPS listeners' connections (at most 1024
/// each), the metrics listener's, the database, logs, the runtime.
const FILES_BESIDES_FTPS: u64 = 2 * 1024 + 512;

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

/// FTPS sessions (one file each, the control connection) and data connections at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    pub sessions: usize,
    pub data_connections: usize,
}

/// What `open_files` descriptors carry of `wanted`: all of it, or as many data connections as
/// leave a session for each, and the sessions the rest carries; `None` if not even one.
pub fn carried(open_files: u64, wanted: Capacity) -> Option<Capacity> {
    let budget = usize::try_from(open_files.checked_sub(FILES_BESIDES_FTPS)?).ok()?;
    let per_data = FILES_PER_DATA_CONNECTION as usize;
    let needed = wanted
        .sessions
        .saturating_add(wanted.data_connections.saturating_mul(per_data));
    if needed <= budget {
        return Some(wanted);
    }
    let data_connections = wanted.data_connections.min(budget / (per_data + 1));
    let sessions = wanted.sessions.min(budget - data_connections * per_data);
    (sessions > 0 && data_connections > 0).then_some(Capacity {
        sessions,
        data_connections,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_carries_sessions_at_one_file_and_data_connections_at_six() {
        let wanted = Capacity {
            sessions: 20_000,
            data_connections: 1_000,
        };
        assert_eq!(carried(30_000, wanted), Some(wanted));
        assert_eq!(
            carried(20_000, wanted),
            Some(Capacity {
                sessions: 20_000 - 2_560 - 6_000,
                data_connections: 1_000
            })
        );
        assert_eq!(
            carried(4_096, wanted),
            Some(Capacity {
                sessions: 1_536 - 219 * 6,
                data_connections: 219
            }),
            "as many data connections as leave a session each"
        );
        assert_eq!(carried(2_560, wanted), None);
    }
}
