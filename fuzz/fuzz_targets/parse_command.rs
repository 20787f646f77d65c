//! Any bytes a client can send as a control line: the parser must return, never panic, and a
//! parsed path argument must resolve (or be refused) without panicking either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mftgw_ftps::VirtualPath;
use mftgw_ftps::command::{Command, parse_command};

fuzz_target!(|line: &[u8]| {
    if let Ok(command) = parse_command(line) {
        let path = match command {
            Command::Cwd(p)
            | Command::Stor(p)
            | Command::Retr(p)
            | Command::Dele(p)
            | Command::Mkd(p)
            | Command::Rmd(p)
            | Command::Size(p)
            | Command::Mdtm(p) => Some(p),
            Command::List(p) | Command::Nlst(p) | Command::Mlsd(p) | Command::Mlst(p) => p,
            _ => None,
        };
        if let Some(path) = path {
            let _ = VirtualPath::root().resolve(&path);
        }
    }
});
