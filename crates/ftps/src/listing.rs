//! Directory listing formats: `LIST` (the `ls -l` shape that FileZilla, WinSCP, lftp and curl
//! parse), `NLST` (names only), and the machine-readable `MLSD`/`MLST` facts of RFC 3659.

use time::OffsetDateTime;
use time::macros::format_description;

/// One entry as the backend describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub name: String,
    pub kind: EntryKind,
    pub size: u64,
    pub modified: OffsetDateTime,
    /// Files: may be deleted (`DELE`). Directories: may receive uploads (`STOR`, `MKD`).
    pub writable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Directory,
}

/// `drwxr-x---   1 ftp      ftp             0 Nov 22 19:38 name`: the time of day for entries
/// from the last six months, the year for older ones, as `ls` does.
pub fn list_line(entry: &DirEntry, now: OffsetDateTime) -> String {
    let mode = match (entry.kind, entry.writable) {
        (EntryKind::Directory, true) => "drwxrwx---",
        (EntryKind::Directory, false) => "dr-xr-x---",
        (EntryKind::File, true) => "-rw-rw----",
        (EntryKind::File, false) => "-r--r-----",
    };
    let modified = entry.modified;
    let recent = (now - modified).whole_days().abs() < 180;
    let date = if recent {
        modified.format(format_description!(
            "[month repr:short] [day] [hour]:[minute]"
        ))
    } else {
        modified.format(format_description!("[month repr:short] [day]  [year]"))
    }
    .expect("formatting a date cannot fail");
    format!(
        "{mode}   1 ftp      ftp      {size:>12} {date} {name}\r\n",
        size = entry.size,
        name = entry.name
    )
}

/// RFC 3659 facts: `type=file;size=12;modify=20261122193800;perm=rd; name`.
pub fn mlsx_facts(entry: &DirEntry) -> String {
    let modify = entry
        .modified
        .to_offset(time::UtcOffset::UTC)
        .format(format_description!(
            "[year][month][day][hour][minute][second]"
        ))
        .expect("formatting a date cannot fail");
    match entry.kind {
        EntryKind::Directory => {
            let perm = if entry.writable { "elcm" } else { "el" };
            format!("type=dir;modify={modify};perm={perm};")
        }
        EntryKind::File => {
            let perm = if entry.writable { "rd" } else { "r" };
            format!("type=file;size={};modify={modify};perm={perm};", entry.size)
        }
    }
}

pub fn mlsd_line(entry: &DirEntry) -> String {
    format!("{} {}\r\n", mlsx_facts(entry), entry.name)
}

/// `MDTM` reply value: `YYYYMMDDHHMMSS` in UTC.
pub fn mdtm_value(modified: OffsetDateTime) -> String {
    modified
        .to_offset(time::UtcOffset::UTC)
        .format(format_description!(
            "[year][month][day][hour][minute][second]"
        ))
        .expect("formatting a date cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn entry(name: &str, kind: EntryKind, writable: bool) -> DirEntry {
        DirEntry {
            name: name.into(),
            kind,
            size: 1234,
            modified: datetime!(2026-11-22 19:38:05 UTC),
            writable,
        }
    }

    #[test]
    fn list_lines_look_like_ls() {
        let now = datetime!(2026-11-23 08:00 UTC);
        assert_eq!(
            list_line(&entry("out", EntryKind::Directory, false), now),
            "dr-xr-x---   1 ftp      ftp              1234 Nov 22 19:38 out\r\n"
        );
        assert_eq!(
            list_line(&entry("status_x_1.xml", EntryKind::File, true), now),
            "-rw-rw----   1 ftp      ftp              1234 Nov 22 19:38 status_x_1.xml\r\n"
        );
        let next_year = datetime!(2027-12-01 08:00 UTC);
        assert_eq!(
            list_line(&entry("old", EntryKind::File, false), next_year),
            "-r--r-----   1 ftp      ftp              1234 Nov 22  2026 old\r\n"
        );
    }

    #[test]
    fn mlsd_facts_follow_rfc3659() {
        assert_eq!(
            mlsd_line(&entry("FTPSGW.Heartbeat", EntryKind::Directory, true)),
            "type=dir;modify=20261122193805;perm=elcm; FTPSGW.Heartbeat\r\n"
        );
        assert_eq!(
            mlsd_line(&entry("a b.xml", EntryKind::File, true)),
            "type=file;size=1234;modify=20261122193805;perm=rd; a b.xml\r\n"
        );
        assert_eq!(
            mdtm_value(datetime!(2026-11-22 20:38:05 +1)),
            "20261122193805"
        );
    }
}
