//! The Certificate Portal's records in SQLite. The trait documentation in the crate root says
//! what each operation promises; this module says how.

use sqlx::Row;
use time::OffsetDateTime;

use mftgw_domain::Username;

use super::{Db, DbRow, Pool, begin_write, serialize};
use crate::plan::Serialized;
use crate::{
    InitialCode, NewRegistrationJob, PortalAccount, PortalProfile, PortalSession,
    QueuedRegistration, RegistrationJob, RegistrationJobState, StoreError, StoreResult, timestamp,
};

/// The columns [`job_from_row`] reads, as a macro because sqlx wants `&'static str` SQL.
macro_rules! job_columns {
    () => {
        "id, username, cert_fingerprint, state, requested_at, error"
    };
}

pub(super) async fn gateway_password_sealed(
    pool: &Pool,
    username: &Username,
) -> StoreResult<Option<String>> {
    let sealed: Option<Option<String>> =
        sqlx::query_scalar("SELECT password_sealed FROM users WHERE username = $1")
            .bind(username.as_str())
            .fetch_optional(pool)
            .await?;
    Ok(sealed.flatten())
}

pub(super) async fn portal_account(
    pool: &Pool,
    username: &Username,
) -> StoreResult<Option<PortalAccount>> {
    let row = sqlx::query(
        "SELECT password_hash, se_number, email, interfaces, initial_code_hash,
                initial_code_expires_at
         FROM portal_accounts WHERE username = $1",
    )
    .bind(username.as_str())
    .fetch_optional(pool)
    .await?;
    row.map(|row| {
        let code_hash: Option<String> = row.try_get("initial_code_hash")?;
        let code_expires: Option<String> = row.try_get("initial_code_expires_at")?;
        let initial_code = match (code_hash, code_expires) {
            (Some(hash), Some(expires_at)) => Some(InitialCode {
                hash,
                expires_at: timestamp::from_text(
                    "portal_accounts.initial_code_expires_at",
                    &expires_at,
                )?,
            }),
            _ => None,
        };
        Ok(PortalAccount {
            password_hash: row.try_get("password_hash")?,
            profile: PortalProfile {
                se_number: row.try_get("se_number")?,
                email: row.try_get("email")?,
                interfaces: row.try_get("interfaces")?,
            },
            initial_code,
        })
    })
    .transpose()
}

pub(super) async fn set_portal_password(
    pool: &Pool,
    username: &Username,
    password_hash: &str,
    at: OffsetDateTime,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO portal_accounts (username, password_hash, updated_at) VALUES ($1, $2, $3)
         ON CONFLICT (username) DO UPDATE
             SET password_hash = excluded.password_hash, updated_at = excluded.updated_at",
    )
    .bind(username.as_str())
    .bind(password_hash)
    .bind(timestamp::to_text(at))
    .execute(pool)
    .await?;
    Ok(())
}

/// Records a security change too when the interface choice changes (an AS4-only choice ends
/// live FTPS sessions).
pub(super) async fn set_portal_profile(
    pool: &Pool,
    username: &Username,
    profile: &PortalProfile,
    at: OffsetDateTime,
) -> StoreResult<()> {
    let at = timestamp::to_text(at);
    let mut transaction = begin_write(pool).await?;
    let before: Option<String> =
        sqlx::query_scalar("SELECT interfaces FROM portal_accounts WHERE username = $1")
            .bind(username.as_str())
            .fetch_optional(&mut *transaction)
            .await?;
    sqlx::query(
        "INSERT INTO portal_accounts (username, se_number, email, interfaces, updated_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (username) DO UPDATE
             SET se_number = excluded.se_number, email = excluded.email,
                 interfaces = excluded.interfaces, updated_at = excluded.updated_at",
    )
    .bind(username.as_str())
    .bind(&profile.se_number)
    .bind(&profile.email)
    .bind(&profile.interfaces)
    .bind(&at)
    .execute(&mut *transaction)
    .await?;
    let default_interfaces = PortalProfile::default().interfaces;
    if before.as_deref().unwrap_or(&default_interfaces) != profile.interfaces {
        super::record_security_change(&mut transaction, username, "interfaces_changed", &at)
            .await?;
    }
    transaction.commit().await?;
    Ok(())
}

pub(super) async fn set_portal_initial_code(
    pool: &Pool,
    username: &Username,
    code_hash: &str,
    expires_at: OffsetDateTime,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO portal_accounts
             (username, initial_code_hash, initial_code_expires_at, updated_at)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (username) DO UPDATE
             SET initial_code_hash = excluded.initial_code_hash,
                 initial_code_expires_at = excluded.initial_code_expires_at,
                 updated_at = excluded.updated_at",
    )
    .bind(username.as_str())
    .bind(code_hash)
    .bind(timestamp::to_text(expires_at))
    .bind(timestamp::to_text(OffsetDateTime::now_utc()))
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn create_portal_session(pool: &Pool, session: &PortalSession) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO portal_sessions
             (token_hash, username, cert_fingerprint, csrf_token, must_change_password,
              created_at, last_seen_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&session.token_hash)
    .bind(session.username.as_str())
    .bind(&session.cert_fingerprint)
    .bind(&session.csrf_token)
    .bind(session.must_change_password)
    .bind(timestamp::to_text(session.created_at))
    .bind(timestamp::to_text(session.last_seen_at))
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn portal_session(
    pool: &Pool,
    token_hash: &str,
) -> StoreResult<Option<PortalSession>> {
    let row = sqlx::query(
        "SELECT token_hash, username, cert_fingerprint, csrf_token, must_change_password,
                created_at, last_seen_at
         FROM portal_sessions WHERE token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(pool)
    .await?;
    row.map(|row| {
        let created_at: String = row.try_get("created_at")?;
        let last_seen_at: String = row.try_get("last_seen_at")?;
        Ok(PortalSession {
            token_hash: row.try_get("token_hash")?,
            username: super::transactions::parsed(
                "portal_sessions.username",
                row.try_get("username")?,
            )?,
            cert_fingerprint: row.try_get("cert_fingerprint")?,
            csrf_token: row.try_get("csrf_token")?,
            must_change_password: row.try_get("must_change_password")?,
            created_at: timestamp::from_text("portal_sessions.created_at", &created_at)?,
            last_seen_at: timestamp::from_text("portal_sessions.last_seen_at", &last_seen_at)?,
        })
    })
    .transpose()
}

pub(super) async fn touch_portal_session(
    pool: &Pool,
    token_hash: &str,
    at: OffsetDateTime,
) -> StoreResult<()> {
    sqlx::query("UPDATE portal_sessions SET last_seen_at = $1 WHERE token_hash = $2")
        .bind(timestamp::to_text(at))
        .bind(token_hash)
        .execute(pool)
        .await?;
    Ok(())
}

pub(super) async fn delete_portal_session(pool: &Pool, token_hash: &str) -> StoreResult<()> {
    sqlx::query("DELETE FROM portal_sessions WHERE token_hash = $1")
        .bind(token_hash)
        .execute(pool)
        .await?;
    Ok(())
}

pub(super) async fn delete_portal_sessions_of(
    pool: &Pool,
    username: &Username,
    except_certificate: Option<&str>,
) -> StoreResult<u64> {
    let result = sqlx::query(
        "DELETE FROM portal_sessions
         WHERE username = $1 AND ($2 IS NULL OR cert_fingerprint <> $2)",
    )
    .bind(username.as_str())
    .bind(except_certificate)
    .execute(pool)
    .await?;
    Ok(result.rows_affected())
}

pub(super) async fn expire_portal_sessions(
    pool: &Pool,
    before: OffsetDateTime,
) -> StoreResult<u64> {
    let result = sqlx::query("DELETE FROM portal_sessions WHERE last_seen_at < $1")
        .bind(timestamp::to_text(before))
        .execute(pool)
        .await?;
    Ok(result.rows_affected())
}

pub(super) async fn request_registration(
    pool: &Pool,
    job: NewRegistrationJob,
) -> StoreResult<(RegistrationJob, bool)> {
    let mut transaction = begin_write(pool).await?;
    serialize(&mut transaction, Serialized::Registrations).await?;
    let inserted: Option<i64> = sqlx::query_scalar(
        "INSERT INTO registration_jobs
             (username, cert_fingerprint, cert_der, state, requested_at)
         VALUES ($1, $2, $3, 'queued', $4)
         ON CONFLICT (cert_fingerprint) WHERE state = 'queued' DO NOTHING
         RETURNING id",
    )
    .bind(job.username.as_str())
    .bind(&job.cert_fingerprint)
    .bind(&job.cert_der)
    .bind(timestamp::to_text(job.requested_at))
    .fetch_optional(&mut *transaction)
    .await?;
    // In the same commit: a worker finishing the job in between would otherwise hand back
    // a finished job as the queued one.
    let latest = latest_registration(&mut *transaction, &job.cert_fingerprint)
        .await?
        .ok_or_else(|| {
            StoreError::Corrupt(format!(
                "registration job for {} vanished",
                job.cert_fingerprint
            ))
        })?;
    transaction.commit().await?;
    Ok((latest, inserted.is_some()))
}

pub(super) async fn latest_registration<'e>(
    executor: impl sqlx::Executor<'e, Database = Db>,
    cert_fingerprint: &str,
) -> StoreResult<Option<RegistrationJob>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        job_columns!(),
        " FROM registration_jobs WHERE cert_fingerprint = $1 ORDER BY id DESC LIMIT 1"
    ))
    .bind(cert_fingerprint)
    .fetch_optional(executor)
    .await?;
    row.as_ref().map(job_from_row).transpose()
}

pub(super) async fn queued_registrations(
    pool: &Pool,
    limit: u32,
) -> StoreResult<Vec<QueuedRegistration>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        job_columns!(),
        ", cert_der FROM registration_jobs WHERE state = 'queued' ORDER BY id LIMIT $1"
    ))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(QueuedRegistration {
                job: job_from_row(row)?,
                cert_der: row.try_get("cert_der")?,
            })
        })
        .collect()
}

pub(super) async fn finish_registration(
    pool: &Pool,
    job_id: i64,
    outcome: Result<(), String>,
    at: OffsetDateTime,
) -> StoreResult<()> {
    let (state, error) = match outcome {
        Ok(()) => (RegistrationJobState::Done, None),
        Err(error) => (RegistrationJobState::Failed, Some(error)),
    };
    // The certificate itself is kept only while the job waits: a registered one is in
    // `certificates`, a refused one is not needed.
    let mut transaction = begin_write(pool).await?;
    serialize(&mut transaction, Serialized::Registrations).await?;
    sqlx::query(
        "UPDATE registration_jobs SET state = $1, finished_at = $2, error = $3, cert_der = $4
         WHERE id = $5 AND state = 'queued'",
    )
    .bind(state.as_str())
    .bind(timestamp::to_text(at))
    .bind(error)
    .bind(Vec::<u8>::new())
    .bind(job_id)
    .execute(&mut *transaction)
    .await?;
    transaction.commit().await?;
    Ok(())
}

fn job_from_row(row: &DbRow) -> StoreResult<RegistrationJob> {
    let state: String = row.try_get("state")?;
    let requested_at: String = row.try_get("requested_at")?;
    Ok(RegistrationJob {
        id: row.try_get("id")?,
        username: super::transactions::parsed(
            "registration_jobs.username",
            row.try_get("username")?,
        )?,
        cert_fingerprint: row.try_get("cert_fingerprint")?,
        state: state.parse().map_err(StoreError::Corrupt)?,
        requested_at: timestamp::from_text("registration_jobs.requested_at", &requested_at)?,
        error: row.try_get("error")?,
    })
}
