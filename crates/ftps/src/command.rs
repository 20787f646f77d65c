//! The FTP command parser: one control line in, one [`Command`] or a [`ParseError`] out.
//!
//! A pure function over bytes, so it can be fuzzed (`fuzz/fuzz_targets/parse_command.rs`) and
//! tested exhaustively. It knows the syntax of every command the engine answers, and nothing
//! about sessions: whether a command is allowed right now is decided in `session`.

use std::fmt;

/// A control command with its argument already validated for syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Auth(AuthMechanism),
    Pbsz(u64),
    Prot(ProtectionLevel),
    Ccc,
    User(String),
    Pass(Password),
    Feat,
    Opts(OptsArgument),
    Syst,
    Help,
    Noop,
    Quit,
    Pwd,
    Cwd(String),
    Cdup,
    Type(TransferType),
    Mode(char),
    Stru(char),
    Pasv,
    Epsv(EpsvArgument),
    /// `PORT`, `EPRT`, `LPRT`: active mode, which the gateway refuses.
    ActiveMode,
    List(Option<String>),
    Nlst(Option<String>),
    Mlsd(Option<String>),
    Mlst(Option<String>),
    Size(String),
    Mdtm(String),
    Stor(String),
    Retr(String),
    Rest(u64),
    Dele(String),
    Mkd(String),
    Rmd(String),
    Abor,
    /// A syntactically valid verb that the engine does not implement (answered 502).
    Unsupported(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMechanism {
    Tls,
    /// `AUTH SSL` and anything else: refused.
    Other(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtectionLevel {
    Clear,
    Safe,
    Confidential,
    Private,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferType {
    Ascii,
    Binary,
}

impl TransferType {
    pub fn as_str(self) -> &'static str {
        match self {
            TransferType::Ascii => "A",
            TransferType::Binary => "I",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptsArgument {
    Utf8On,
    /// `OPTS MLST facts`: we always send every fact we have, whatever is asked.
    Mlst,
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EpsvArgument {
    None,
    /// `EPSV ALL`: the client promises to use only EPSV from now on.
    All,
    /// `EPSV 1` / `EPSV 2`: a network protocol number.
    Protocol(u8),
}

/// The `PASS` argument. Its `Debug` never shows the secret, so a logged command cannot leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(pub String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("empty command line")]
    Empty,
    #[error("command verb is not 3 or 4 ASCII letters")]
    InvalidVerb,
    #[error("unknown command")]
    UnknownVerb,
    #[error("argument is not valid UTF-8")]
    InvalidUtf8,
    #[error("argument contains a control character")]
    ControlCharacter,
    #[error("{0} needs an argument")]
    MissingArgument(&'static str),
    #[error("{0} takes no argument")]
    UnexpectedArgument(&'static str),
    #[error("invalid argument for {0}")]
    InvalidArgument(&'static str),
}

/// Parses one control line (with or without its trailing CRLF).
pub fn parse_command(line: &[u8]) -> Result<Command, ParseError> {
    let line = strip_line_ending(strip_telnet_prefix(line));
    if line.is_empty() {
        return Err(ParseError::Empty);
    }
    let (verb, argument) = match line.iter().position(|&b| b == b' ') {
        Some(space) => (&line[..space], Some(&line[space + 1..])),
        None => (line, None),
    };
    if !(3..=4).contains(&verb.len()) || !verb.iter().all(u8::is_ascii_alphabetic) {
        return Err(ParseError::InvalidVerb);
    }
    let mut verb_upper = [0u8; 4];
    verb_upper[..verb.len()].copy_from_slice(verb);
    verb_upper.make_ascii_uppercase();
    let verb = std::str::from_utf8(&verb_upper[..verb.len()]).expect("ASCII letters");

    let argument = match argument {
        None => None,
        Some(bytes) => {
            let text = std::str::from_utf8(bytes).map_err(|_| ParseError::InvalidUtf8)?;
            if text.chars().any(char::is_control) {
                return Err(ParseError::ControlCharacter);
            }
            (!text.is_empty()).then_some(text)
        }
    };
    let arg = Argument { value: argument };

    Ok(match verb {
        "AUTH" => match arg.required("AUTH")?.to_ascii_uppercase().as_str() {
            "TLS" | "TLS-C" => Command::Auth(AuthMechanism::Tls),
            other => Command::Auth(AuthMechanism::Other(other.to_string())),
        },
        "PBSZ" => Command::Pbsz(
            arg.required("PBSZ")?
                .parse()
                .map_err(|_| ParseError::InvalidArgument("PBSZ"))?,
        ),
        "PROT" => Command::Prot(match arg.required("PROT")?.to_ascii_uppercase().as_str() {
            "C" => ProtectionLevel::Clear,
            "S" => ProtectionLevel::Safe,
            "E" => ProtectionLevel::Confidential,
            "P" => ProtectionLevel::Private,
            _ => return Err(ParseError::InvalidArgument("PROT")),
        }),
        "CCC" => Command::Ccc,
        "USER" => Command::User(arg.required("USER")?.to_string()),
        // A password may legitimately be empty or contain spaces; keep it exactly.
        "PASS" => Command::Pass(Password(argument.unwrap_or("").to_string())),
        "FEAT" => arg.none(Command::Feat, "FEAT")?,
        "OPTS" => {
            let value = arg.required("OPTS")?;
            let mut words = value.split_ascii_whitespace();
            match (words.next(), words.next(), words.next()) {
                (Some(name), Some(on), None)
                    if name.eq_ignore_ascii_case("UTF8") && on.eq_ignore_ascii_case("ON") =>
                {
                    Command::Opts(OptsArgument::Utf8On)
                }
                (Some(name), None, None) if name.eq_ignore_ascii_case("UTF8") => {
                    Command::Opts(OptsArgument::Utf8On)
                }
                (Some(name), _, None) if name.eq_ignore_ascii_case("MLST") => {
                    Command::Opts(OptsArgument::Mlst)
                }
                _ => Command::Opts(OptsArgument::Other(value.to_string())),
            }
        }
        "SYST" => arg.none(Command::Syst, "SYST")?,
        "HELP" => Command::Help,
        "NOOP" => Command::Noop,
        "QUIT" => arg.none(Command::Quit, "QUIT")?,
        "PWD" | "XPWD" => arg.none(Command::Pwd, "PWD")?,
        "CWD" | "XCWD" => Command::Cwd(arg.required("CWD")?.to_string()),
        "CDUP" | "XCUP" => arg.none(Command::Cdup, "CDUP")?,
        "TYPE" => Command::Type(parse_type(arg.required("TYPE")?)?),
        "MODE" => Command::Mode(single_letter(arg.required("MODE")?, "MODE")?),
        "STRU" => Command::Stru(single_letter(arg.required("STRU")?, "STRU")?),
        "PASV" => arg.none(Command::Pasv, "PASV")?,
        "EPSV" => Command::Epsv(match argument {
            None => EpsvArgument::None,
            Some(a) if a.eq_ignore_ascii_case("ALL") => EpsvArgument::All,
            Some(a) => EpsvArgument::Protocol(
                a.parse()
                    .ok()
                    .filter(|p| matches!(p, 1 | 2))
                    .ok_or(ParseError::InvalidArgument("EPSV"))?,
            ),
        }),
        "PORT" | "EPRT" | "LPRT" => Command::ActiveMode,
        "LIST" => Command::List(path_without_ls_flags(argument)),
        "NLST" => Command::Nlst(path_without_ls_flags(argument)),
        "MLSD" => Command::Mlsd(argument.map(str::to_string)),
        "MLST" => Command::Mlst(argument.map(str::to_string)),
        "SIZE" => Command::Size(arg.required("SIZE")?.to_string()),
        "MDTM" => Command::Mdtm(arg.required("MDTM")?.to_string()),
        "STOR" => Command::Stor(arg.required("STOR")?.to_string()),
        "RETR" => Command::Retr(arg.required("RETR")?.to_string()),
        "REST" => Command::Rest(
            arg.required("REST")?
                .parse()
                .map_err(|_| ParseError::InvalidArgument("REST"))?,
        ),
        "DELE" => Command::Dele(arg.required("DELE")?.to_string()),
        "MKD" | "XMKD" => Command::Mkd(arg.required("MKD")?.to_string()),
        "RMD" | "XRMD" => Command::Rmd(arg.required("RMD")?.to_string()),
        "ABOR" => Command::Abor,
        "ACCT" | "ALLO" | "APPE" | "LANG" | "MFMT" | "MFCT" | "MFF" | "REIN" | "RNFR" | "RNTO"
        | "SITE" | "SMNT" | "STAT" | "STOU" | "HOST" | "ADAT" | "MIC" | "CONF" | "ENC" | "XRSQ"
        | "XSEM" | "XSEN" => Command::Unsupported(verb.to_string()),
        _ => return Err(ParseError::UnknownVerb),
    })
}

struct Argument<'a> {
    value: Option<&'a str>,
}

impl<'a> Argument<'a> {
    fn required(&self, verb: &'static str) -> Result<&'a str, ParseError> {
        self.value.ok_or(ParseError::MissingArgument(verb))
    }

    fn none(&self, command: Command, verb: &'static str) -> Result<Command, ParseError> {
        match self.value {
            None => Ok(command),
            Some(_) => Err(ParseError::UnexpectedArgument(verb)),
        }
    }
}

/// Clients send Telnet "interrupt process" and "synch" (IAC IP, IAC DM) before an urgent `ABOR`.
fn strip_telnet_prefix(mut line: &[u8]) -> &[u8] {
    while let [0xFF, command, rest @ ..] = line {
        if !matches!(command, 0xF2 | 0xF4) {
            break;
        }
        line = rest;
    }
    line
}

fn strip_line_ending(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn parse_type(value: &str) -> Result<TransferType, ParseError> {
    let mut words = value.split(' ');
    let kind = words.next().unwrap_or("").to_ascii_uppercase();
    let format = words.next().map(str::to_ascii_uppercase);
    let extra = words.next();
    match (kind.as_str(), format.as_deref(), extra) {
        ("A", None | Some("N"), None) => Ok(TransferType::Ascii),
        ("I", None, None) | ("L", Some("8"), None) => Ok(TransferType::Binary),
        _ => Err(ParseError::InvalidArgument("TYPE")),
    }
}

fn single_letter(value: &str, verb: &'static str) -> Result<char, ParseError> {
    let mut chars = value.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii_alphabetic() => Ok(c.to_ascii_uppercase()),
        _ => Err(ParseError::InvalidArgument(verb)),
    }
}

/// `LIST -la` and `LIST -a dir` are what many clients send; the flags do not change our output.
fn path_without_ls_flags(argument: Option<&str>) -> Option<String> {
    let mut rest = argument?;
    while let Some(after_dash) = rest.strip_prefix('-') {
        let flag_len = after_dash
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(after_dash.len());
        if flag_len == 0 {
            break;
        }
        rest = after_dash[flag_len..].trim_start_matches(' ');
    }
    (!rest.is_empty()).then(|| rest.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Command, ParseError> {
        parse_command(line.as_bytes())
    }

    #[test]
    fn parses_every_supported_command() {
        let cases: Vec<(&str, Command)> = vec![
            ("AUTH TLS\r\n", Command::Auth(AuthMechanism::Tls)),
            ("auth tls", Command::Auth(AuthMechanism::Tls)),
            (
                "AUTH SSL",
                Command::Auth(AuthMechanism::Other("SSL".into())),
            ),
            ("PBSZ 0", Command::Pbsz(0)),
            ("PROT P", Command::Prot(ProtectionLevel::Private)),
            ("PROT C", Command::Prot(ProtectionLevel::Clear)),
            ("CCC", Command::Ccc),
            ("USER CVR_1_UID_2", Command::User("CVR_1_UID_2".into())),
            ("PASS a b ", Command::Pass(Password("a b ".into()))),
            ("PASS", Command::Pass(Password(String::new()))),
            ("FEAT", Command::Feat),
            ("OPTS UTF8 ON", Command::Opts(OptsArgument::Utf8On)),
            ("OPTS utf8 on", Command::Opts(OptsArgument::Utf8On)),
            ("OPTS MLST type;size;", Command::Opts(OptsArgument::Mlst)),
            (
                "OPTS MODE Z",
                Command::Opts(OptsArgument::Other("MODE Z".into())),
            ),
            ("SYST", Command::Syst),
            ("HELP", Command::Help),
            ("NOOP", Command::Noop),
            ("QUIT", Command::Quit),
            ("PWD", Command::Pwd),
            ("XPWD", Command::Pwd),
            ("CWD /out", Command::Cwd("/out".into())),
            (
                "CWD dir with spaces",
                Command::Cwd("dir with spaces".into()),
            ),
            ("CDUP", Command::Cdup),
            ("TYPE A", Command::Type(TransferType::Ascii)),
            ("TYPE A N", Command::Type(TransferType::Ascii)),
            ("TYPE I", Command::Type(TransferType::Binary)),
            ("TYPE L 8", Command::Type(TransferType::Binary)),
            ("MODE S", Command::Mode('S')),
            ("STRU F", Command::Stru('F')),
            ("PASV", Command::Pasv),
            ("EPSV", Command::Epsv(EpsvArgument::None)),
            ("EPSV ALL", Command::Epsv(EpsvArgument::All)),
            ("EPSV 2", Command::Epsv(EpsvArgument::Protocol(2))),
            ("PORT 127,0,0,1,1,2", Command::ActiveMode),
            ("EPRT |1|127.0.0.1|1234|", Command::ActiveMode),
            ("LIST", Command::List(None)),
            ("LIST -la", Command::List(None)),
            ("LIST -a out", Command::List(Some("out".into()))),
            ("LIST -l -a /out", Command::List(Some("/out".into()))),
            ("NLST /", Command::Nlst(Some("/".into()))),
            ("MLSD", Command::Mlsd(None)),
            ("MLST out", Command::Mlst(Some("out".into()))),
            ("SIZE f", Command::Size("f".into())),
            ("MDTM f", Command::Mdtm("f".into())),
            ("STOR æøå.xml", Command::Stor("æøå.xml".into())),
            ("RETR f", Command::Retr("f".into())),
            ("REST 1024", Command::Rest(1024)),
            ("DELE f", Command::Dele("f".into())),
            ("MKD d", Command::Mkd("d".into())),
            ("RMD d", Command::Rmd("d".into())),
            ("ABOR", Command::Abor),
            ("\u{FF}\u{F4}ABOR", Command::Abor),
            ("SITE CHMOD 777 x", Command::Unsupported("SITE".into())),
            ("STAT", Command::Unsupported("STAT".into())),
        ];
        for (line, expected) in cases {
            let bytes: Vec<u8> = if line.starts_with('\u{FF}') {
                [&[0xFF, 0xF4][..], b"ABOR"].concat()
            } else {
                line.as_bytes().to_vec()
            };
            assert_eq!(parse_command(&bytes), Ok(expected), "line {line:?}");
        }
    }

    #[test]
    fn refuses_malformed_lines_with_a_reason() {
        let cases: Vec<(&[u8], ParseError)> = vec![
            (b"", ParseError::Empty),
            (b"\r\n", ParseError::Empty),
            (b"XY", ParseError::InvalidVerb),
            (b"TOOLONG x", ParseError::InvalidVerb),
            (b"US3R x", ParseError::InvalidVerb),
            (b" USER x", ParseError::InvalidVerb),
            (b"WHAT", ParseError::UnknownVerb),
            (b"USER", ParseError::MissingArgument("USER")),
            (b"USER ", ParseError::MissingArgument("USER")),
            (b"STOR", ParseError::MissingArgument("STOR")),
            (b"STOR \xff\xfe", ParseError::InvalidUtf8),
            (b"STOR a\x00b", ParseError::ControlCharacter),
            (b"STOR a\rb", ParseError::ControlCharacter),
            (b"PBSZ x", ParseError::InvalidArgument("PBSZ")),
            (b"PROT X", ParseError::InvalidArgument("PROT")),
            (b"TYPE E", ParseError::InvalidArgument("TYPE")),
            (b"TYPE L 7", ParseError::InvalidArgument("TYPE")),
            (b"MODE SS", ParseError::InvalidArgument("MODE")),
            (b"REST -1", ParseError::InvalidArgument("REST")),
            (b"EPSV 3", ParseError::InvalidArgument("EPSV")),
            (b"QUIT now", ParseError::UnexpectedArgument("QUIT")),
            (b"PASV x", ParseError::UnexpectedArgument("PASV")),
        ];
        for (line, expected) in cases {
            assert_eq!(parse_command(line), Err(expected), "line {line:?}");
        }
    }

    #[test]
    fn password_is_never_printed() {
        let command = parse("PASS hunter2").unwrap();
        assert!(!format!("{command:?}").contains("hunter2"));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap stand-in for the fuzz target that runs in every `cargo test`.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij 0123456789-/\\.\r\n\x00\xff\xf4\xc3\xa6";
        for _ in 0..50_000 {
            let len = (next() % 24) as usize;
            let line: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let _ = parse_command(&line);
        }
        for verb in [
            "USER", "STOR", "LIST", "TYPE", "REST", "EPSV", "OPTS", "PROT",
        ] {
            for _ in 0..2_000 {
                let len = (next() % 12) as usize;
                let mut line = format!("{verb} ").into_bytes();
                line.extend((0..len).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]));
                let _ = parse_command(&line);
            }
        }
    }
}
