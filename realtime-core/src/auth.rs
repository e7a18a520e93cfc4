//! Who is connecting: the `Authenticator` trait and, with feature `jwt`, a JWT
//! implementation over the `jsonwebtoken` crate.
//!
//! Seed 000 connects with `ws://…/ws?token=JWT`; the token's `sub` claim is the user id,
//! and `username` or `name`, when present, the user's name.

use crate::error::Result;
use crate::ids::UserId;
use serde::{Deserialize, Serialize};

/// The authenticated user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    /// The user id (`sub`).
    pub user_id: UserId,
    /// `username` claim, or `name` when there is no `username`.
    pub username: Option<String>,
    /// All claims as JSON.
    pub claims: serde_json::Value,
}

/// Turns a credential (a bearer token) into an [`Identity`].
#[async_trait::async_trait]
pub trait Authenticator: Send + Sync + 'static {
    /// Check `token`.
    ///
    /// # Errors
    /// [`crate::Error::Unauthenticated`] with the reason (bad signature, expired, not yet
    /// valid, wrong algorithm, no `sub`).
    async fn authenticate(&self, token: &str) -> Result<Identity>;
}

#[cfg(feature = "jwt")]
pub use jwt::{Claims, JwtAuthenticator};

#[cfg(feature = "jwt")]
mod jwt {
    use super::*;
    use crate::error::Error;
    use crate::ids::validate_id;
    use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};

    /// Claims this crate reads and writes. Other claims are kept in `extra`.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct Claims {
        /// The user id.
        pub sub: String,
        /// Expiry, seconds since the Unix epoch (required).
        pub exp: u64,
        /// Not before, seconds since the Unix epoch.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub nbf: Option<u64>,
        /// Issued at, seconds since the Unix epoch.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub iat: Option<u64>,
        /// The user's handle.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub username: Option<String>,
        /// The user's name (used when `username` is absent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub name: Option<String>,
        /// Anything else.
        #[serde(flatten)]
        pub extra: serde_json::Map<String, serde_json::Value>,
    }

    impl Claims {
        /// Claims for `sub` valid for `ttl_secs` seconds from now.
        pub fn new(sub: impl Into<String>, ttl_secs: u64) -> Claims {
            let now = jsonwebtoken::get_current_timestamp();
            Claims {
                sub: sub.into(),
                exp: now + ttl_secs,
                nbf: None,
                iat: Some(now),
                username: None,
                name: None,
                extra: serde_json::Map::new(),
            }
        }
    }

    /// Verifies JWTs with one pinned algorithm: HS256 with a shared secret or RS256 with an
    /// RSA public key. `exp` is required and checked, `nbf` checked when present, with a
    /// leeway of 30 s by default. Tokens signed with any other algorithm (including `none`)
    /// are refused.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use realtime_core::{Authenticator, Claims, JwtAuthenticator};
    /// let auth = JwtAuthenticator::hs256(b"a secret of at least 32 bytes long!!");
    /// let token = auth.issue(&Claims::new("user-1", 3600)).unwrap();
    /// let who = auth.authenticate(&token).await.unwrap();
    /// assert_eq!(who.user_id, "user-1");
    /// assert!(auth.authenticate("garbage").await.is_err());
    /// # }
    /// ```
    pub struct JwtAuthenticator {
        decoding: DecodingKey,
        encoding: Option<EncodingKey>,
        validation: Validation,
        algorithm: Algorithm,
    }

    impl std::fmt::Debug for JwtAuthenticator {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("JwtAuthenticator")
                .field("algorithm", &self.algorithm)
                .field("can_issue", &self.encoding.is_some())
                .finish()
        }
    }

    fn validation(alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.set_required_spec_claims(&["exp", "sub"]);
        v.validate_exp = true;
        v.validate_nbf = true;
        v.leeway = 30;
        v
    }

    impl JwtAuthenticator {
        /// HS256 with `secret`; can also [`issue`](Self::issue) tokens.
        pub fn hs256(secret: &[u8]) -> Self {
            JwtAuthenticator {
                decoding: DecodingKey::from_secret(secret),
                encoding: Some(EncodingKey::from_secret(secret)),
                validation: validation(Algorithm::HS256),
                algorithm: Algorithm::HS256,
            }
        }

        /// RS256 with an RSA public key in PEM form (verify only).
        ///
        /// # Errors
        /// [`Error::Invalid`] naming `public_key` when the PEM does not parse.
        pub fn rs256_pem(public_key_pem: &[u8]) -> Result<Self> {
            let decoding = DecodingKey::from_rsa_pem(public_key_pem)
                .map_err(|e| Error::invalid("public_key", e.to_string()))?;
            Ok(JwtAuthenticator {
                decoding,
                encoding: None,
                validation: validation(Algorithm::RS256),
                algorithm: Algorithm::RS256,
            })
        }

        /// Also sign RS256 tokens with this RSA private key in PEM form.
        ///
        /// # Errors
        /// [`Error::Invalid`] naming `private_key` when the PEM does not parse or the
        /// authenticator is not RS256.
        pub fn with_rs256_signing_pem(mut self, private_key_pem: &[u8]) -> Result<Self> {
            if self.algorithm != Algorithm::RS256 {
                return Err(Error::invalid(
                    "private_key",
                    "only for RS256 authenticators",
                ));
            }
            self.encoding = Some(
                EncodingKey::from_rsa_pem(private_key_pem)
                    .map_err(|e| Error::invalid("private_key", e.to_string()))?,
            );
            Ok(self)
        }

        /// Clock skew allowed on `exp`/`nbf`, in seconds (default 30).
        pub fn with_leeway(mut self, secs: u64) -> Self {
            self.validation.leeway = secs;
            self
        }

        /// Require this `iss`: tokens without it, or with another, are refused.
        pub fn with_issuer(mut self, iss: &str) -> Self {
            self.validation.set_issuer(&[iss]);
            self.validation.required_spec_claims.insert("iss".into());
            self
        }

        /// Require this `aud`: tokens without it, or with another, are refused.
        pub fn with_audience(mut self, aud: &str) -> Self {
            self.validation.set_audience(&[aud]);
            self.validation.required_spec_claims.insert("aud".into());
            self
        }

        /// Sign `claims` with the pinned algorithm.
        ///
        /// # Errors
        /// [`Error::Invalid`] when this authenticator has no signing key (RS256 without
        /// [`with_rs256_signing_pem`](Self::with_rs256_signing_pem)) or `sub` is not a valid id.
        pub fn issue(&self, claims: &Claims) -> Result<String> {
            validate_id("sub", &claims.sub)?;
            let key = self
                .encoding
                .as_ref()
                .ok_or_else(|| Error::invalid("key", "this authenticator cannot sign"))?;
            jsonwebtoken::encode(&Header::new(self.algorithm), claims, key)
                .map_err(|e| Error::invalid("claims", e.to_string()))
        }

        /// Synchronous [`Authenticator::authenticate`].
        ///
        /// # Errors
        /// As [`Authenticator::authenticate`].
        pub fn verify(&self, token: &str) -> Result<Identity> {
            let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
                .map_err(|e| {
                    use jsonwebtoken::errors::ErrorKind as K;
                    // Fixed texts only: the decoder's own messages (serde's, base64's)
                    // describe the token's insides and are not for the client.
                    let reason: &'static str = match e.kind() {
                        K::ExpiredSignature => "token expired",
                        K::ImmatureSignature => "token not valid yet (nbf)",
                        K::InvalidSignature => "bad signature",
                        K::InvalidAlgorithm | K::InvalidAlgorithmName => "algorithm not allowed",
                        K::MissingRequiredClaim(_) => "a required claim (exp, sub) is missing",
                        K::InvalidIssuer => "issuer not accepted",
                        K::InvalidAudience => "audience not accepted",
                        K::InvalidSubject => "subject not accepted",
                        K::InvalidToken | K::Base64(_) | K::Utf8(_) => "malformed token",
                        K::Json(_) => "malformed claims",
                        _ => "invalid token",
                    };
                    Error::Unauthenticated(reason.into())
                })?;
            let c = data.claims;
            validate_id("sub", &c.sub)
                .map_err(|_| Error::Unauthenticated("sub is not a valid user id".into()))?;
            let claims = serde_json::to_value(&c).unwrap_or_default();
            Ok(Identity {
                user_id: c.sub,
                username: c.username.or(c.name),
                claims,
            })
        }
    }

    #[async_trait::async_trait]
    impl Authenticator for JwtAuthenticator {
        async fn authenticate(&self, token: &str) -> Result<Identity> {
            self.verify(token)
        }
    }
}
