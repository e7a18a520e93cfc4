//! What keeps registration and login from being used against the server: per-address
//! and per-username rate limits (governor token buckets), and password hashing (argon2)
//! off the async worker threads, at most one hash per core at a time.
//!
//! | limit | key | default | over it |
//! |---|---|---|---|
//! | registrations (`POST /api/v1/users`) | client address | `REGISTRATIONS_PER_MINUTE` = 10, burst 10 | 429 `rate_limited` with `Retry-After` |
//! | login attempts (`POST /api/v1/auth/login`) | client address, and the username tried | `LOGINS_PER_MINUTE` = 20 each, burst 20 | 429 `rate_limited` with `Retry-After` |
//!
//! Every login attempt counts, whatever its outcome: a user who logs in correctly a few
//! times a minute never notices, and a guesser gets 20 tries a minute per address and per
//! account. The client address is the TCP peer ([`crate::ClientAddr`]): behind a reverse
//! proxy every client shares the proxy's address, so raise the limits there or rate-limit
//! in the proxy.
//!
//! Hashing and verifying a password with argon2's defaults (19 MiB, 2 passes) takes tens
//! of milliseconds of CPU: run on the async workers it stalls every WebSocket of the
//! worker. Here it runs on tokio's blocking pool, behind a semaphore of one permit per
//! core, so logins queue among themselves and never take the cores from the connections.

use crate::error::{ApiError, ApiResult};
use argon2::password_hash::{
    PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng,
};
use axum::http::StatusCode;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use realtime_core::Error;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

/// The rate limits and the hashing pool of one server.
pub struct Guard {
    registrations: DefaultKeyedRateLimiter<IpAddr>,
    logins_by_address: DefaultKeyedRateLimiter<IpAddr>,
    logins_by_user: DefaultKeyedRateLimiter<String>,
    hashing: Arc<tokio::sync::Semaphore>,
}

fn per_minute(n: u32) -> Quota {
    let n = NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(n).allow_burst(n)
}

fn check<K: Hash + Eq + Clone>(limiter: &DefaultKeyedRateLimiter<K>, key: &K) -> ApiResult<()> {
    limiter.check_key(key).map_err(|not_until| {
        let wait = not_until.wait_time_from(governor::clock::Clock::now(limiter.clock()));
        ApiError::from(Error::RateLimited {
            retry_after_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1),
        })
    })
}

impl Guard {
    /// Limits of `registrations_per_minute` per address and `logins_per_minute` per
    /// address and per username (0 counts as 1).
    pub fn new(registrations_per_minute: u32, logins_per_minute: u32) -> Guard {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Guard {
            registrations: RateLimiter::keyed(per_minute(registrations_per_minute)),
            logins_by_address: RateLimiter::keyed(per_minute(logins_per_minute)),
            logins_by_user: RateLimiter::keyed(per_minute(logins_per_minute)),
            hashing: Arc::new(tokio::sync::Semaphore::new(cores)),
        }
    }

    /// Spend one registration of `addr`.
    ///
    /// # Errors
    /// [`Error::RateLimited`] (429) when its budget is spent.
    pub fn registration(&self, addr: IpAddr) -> ApiResult<()> {
        check(&self.registrations, &addr)
    }

    /// Spend one login attempt of `addr` and of `username`.
    ///
    /// # Errors
    /// [`Error::RateLimited`] (429) when either budget is spent.
    pub fn login_attempt(&self, addr: IpAddr, username: &str) -> ApiResult<()> {
        check(&self.logins_by_address, &addr)?;
        check(&self.logins_by_user, &username.to_owned())
    }

    /// Forget keys whose buckets are full again, so the maps hold only recent clients.
    pub fn forget_idle(&self) {
        self.registrations.retain_recent();
        self.logins_by_address.retain_recent();
        self.logins_by_user.retain_recent();
        self.registrations.shrink_to_fit();
        self.logins_by_address.shrink_to_fit();
        self.logins_by_user.shrink_to_fit();
    }

    /// Run `work` on the blocking pool once a hashing permit is free.
    async fn hash_job<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> ApiResult<T> {
        let _permit = self.hashing.acquire().await.map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "hashing stopped",
            )
        })?;
        tokio::task::spawn_blocking(work).await.map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "hash_failed",
                e.to_string(),
            )
        })
    }

    /// Hash a new password (8 to 1024 bytes) with argon2 into a PHC string.
    ///
    /// # Errors
    /// [`Error::Invalid`] (422) for a password outside 8..=1024 bytes.
    pub async fn hash_password(&self, pw: String) -> ApiResult<String> {
        if pw.len() < 8 || pw.len() > 1024 {
            return Err(Error::Invalid {
                field: "password",
                reason: "must be 8 to 1024 bytes".into(),
            }
            .into());
        }
        self.hash_job(move || {
            let salt = SaltString::generate(&mut OsRng);
            argon2::Argon2::default()
                .hash_password(pw.as_bytes(), &salt)
                .map(|h| h.to_string())
        })
        .await?
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "hash_failed",
                e.to_string(),
            )
        })
    }

    /// Whether `pw` matches the PHC `hash` (false for a hash that does not parse).
    pub async fn verify_password(&self, pw: String, hash: String) -> ApiResult<bool> {
        if pw.len() > 1024 {
            return Ok(false);
        }
        self.hash_job(move || {
            PasswordHash::new(&hash).is_ok_and(|h| {
                argon2::Argon2::default()
                    .verify_password(pw.as_bytes(), &h)
                    .is_ok()
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_and_each_username_has_its_own_budget() {
        let g = Guard::new(2, 3);
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        assert!(g.registration(a).is_ok());
        assert!(g.registration(a).is_ok());
        let e = g.registration(a).expect_err("third registration");
        assert_eq!(e.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(g.registration(b).is_ok(), "another address is not limited");
        for _ in 0..3 {
            assert!(g.login_attempt(b, "alice").is_ok());
        }
        assert!(g.login_attempt(b, "bob").is_err(), "b's budget is spent");
        assert!(
            g.login_attempt(a, "alice").is_err(),
            "alice's budget is spent, from any address"
        );
        assert!(g.login_attempt(a, "carol").is_ok());
    }

    #[tokio::test]
    async fn passwords_hash_and_verify_off_the_runtime() {
        let g = Guard::new(1, 1);
        let h = g.hash_password("correct horse".into()).await.expect("hash");
        assert!(
            g.verify_password("correct horse".into(), h.clone())
                .await
                .expect("verify")
        );
        assert!(
            !g.verify_password("wrong horse!".into(), h)
                .await
                .expect("verify")
        );
        assert!(
            !g.verify_password("x".into(), "not a hash".into())
                .await
                .expect("verify")
        );
        let e = g.hash_password("short".into()).await.expect_err("short");
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
}
