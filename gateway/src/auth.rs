//! Bearer-token authentication: JWT settings from the environment, verification of the
//! `Authorization` header on every request, RFC 6750 challenges, and HS256 minting for development.
//!
//! Two kinds of key may be configured at once: an HS256 shared secret and one RS256 or ES256
//! public key. The key that checks a token is picked by the `alg` of the token's header among the
//! configured ones only, so a token can never choose how it is verified (no `alg: none`, and no
//! HS256 token "signed" with the public key as an HMAC secret).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::errors::{ErrorKind, new_error};
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::token_cache::TokenCache;

/// The HS256 shared secret.
pub const ENV_SECRET: &str = "INTERCOMM_JWT_SECRET";
/// The path of a PEM file holding the RS256 or ES256 public key.
pub const ENV_PUBLIC_KEY_FILE: &str = "INTERCOMM_JWT_PUBLIC_KEY_FILE";
/// The algorithm of the public key: `RS256` or `ES256`.
pub const ENV_ALGORITHM: &str = "INTERCOMM_JWT_ALGORITHM";
/// The issuer (`iss`) tokens must name, when set.
pub const ENV_ISSUER: &str = "INTERCOMM_JWT_ISSUER";
/// The audience tokens must include in `aud`, when set.
pub const ENV_AUDIENCE: &str = "INTERCOMM_JWT_AUDIENCE";
/// Clock skew tolerated on `exp` and `nbf`, in whole seconds.
pub const ENV_LEEWAY: &str = "INTERCOMM_JWT_LEEWAY";

/// Clock skew tolerated on `exp` and `nbf` when `INTERCOMM_JWT_LEEWAY` is not set: enough for
/// hosts kept in sync by NTP, short enough that an expired token dies quickly.
pub const DEFAULT_LEEWAY_SECS: u64 = 30;
/// The largest leeway accepted: beyond five minutes a clock is broken, not skewed.
pub const MAX_LEEWAY_SECS: u64 = 300;
/// Tokens longer than this are refused before any decoding (a JWT of a few claims is well under
/// 1 KiB; an RS256 one about 0.5 KiB more).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// A secret that never appears in `Debug` output or logs (and has no `Display`).
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret value.
    #[must_use]
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The secret itself, for the one place that needs it (signing or verifying).
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// How bearer tokens are checked.
///
/// | setting | environment | default |
/// |---|---|---|
/// | `hs256_secret` | `INTERCOMM_JWT_SECRET` | none |
/// | `public_key_pem` | the file named by `INTERCOMM_JWT_PUBLIC_KEY_FILE` | none |
/// | `algorithm` | `INTERCOMM_JWT_ALGORITHM` (`RS256`/`ES256`, required with a public key) | none |
/// | `issuer` | `INTERCOMM_JWT_ISSUER` | none (`iss` not checked) |
/// | `audience` | `INTERCOMM_JWT_AUDIENCE` | none (`aud` not checked) |
/// | `leeway_secs` | `INTERCOMM_JWT_LEEWAY` (whole seconds, at most 300) | 30 |
///
/// At least a secret or a public key must be set; both may be. A variable set to an empty (or
/// blank) value counts as unset.
#[derive(Clone, Debug)]
pub struct AuthSettings {
    /// The HS256 shared secret (`INTERCOMM_JWT_SECRET`).
    pub hs256_secret: Option<Secret>,
    /// The PEM text of the RS256/ES256 public key (read from `INTERCOMM_JWT_PUBLIC_KEY_FILE`).
    pub public_key_pem: Option<String>,
    /// The algorithm of the public key (`INTERCOMM_JWT_ALGORITHM`): RS256 or ES256. HS256 is
    /// implied by the secret and need not be named.
    pub algorithm: Option<Algorithm>,
    /// When set, tokens must carry this `iss` (`INTERCOMM_JWT_ISSUER`).
    pub issuer: Option<String>,
    /// When set, tokens must carry this value in `aud` (`INTERCOMM_JWT_AUDIENCE`). When unset,
    /// `aud` is not looked at.
    pub audience: Option<String>,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds (`INTERCOMM_JWT_LEEWAY`).
    pub leeway_secs: u64,
}

impl Default for AuthSettings {
    /// Nothing configured (which [`Authenticator::new`] refuses), leeway
    /// [`DEFAULT_LEEWAY_SECS`].
    fn default() -> Self {
        Self {
            hs256_secret: None,
            public_key_pem: None,
            algorithm: None,
            issuer: None,
            audience: None,
            leeway_secs: DEFAULT_LEEWAY_SECS,
        }
    }
}

impl AuthSettings {
    /// Settings from the process environment (see the table on [`AuthSettings`]).
    ///
    /// # Errors
    /// As [`AuthSettings::from_lookup`].
    pub fn from_env() -> Result<Self, AuthConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Settings from whatever `lookup` returns for each variable name (testable). When
    /// `INTERCOMM_JWT_PUBLIC_KEY_FILE` is set, the file it names is read here.
    ///
    /// # Errors
    /// [`AuthConfigError`] naming the variable whose value cannot be used: an unknown algorithm
    /// or leeway, a public key without an algorithm (or the reverse), or an unreadable key file.
    /// Having no key at all is refused later, by [`Authenticator::new`] (so `intercomm up` can
    /// supply a development secret); the key itself is parsed there too.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, AuthConfigError> {
        let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let algorithm = get(ENV_ALGORITHM)
            .map(|value| parse_algorithm(&value))
            .transpose()?;
        let leeway_secs = match get(ENV_LEEWAY) {
            Some(value) => value
                .trim()
                .parse()
                .map_err(|_| AuthConfigError::InvalidLeeway(value))?,
            None => DEFAULT_LEEWAY_SECS,
        };
        let public_key_pem = match get(ENV_PUBLIC_KEY_FILE) {
            Some(path) => {
                let path = PathBuf::from(path.trim());
                let pem = std::fs::read_to_string(&path)
                    .map_err(|source| AuthConfigError::UnreadableKeyFile { path, source })?;
                Some(pem)
            }
            None => None,
        };
        let settings = Self {
            // The secret is taken as given: only a blank value counts as unset.
            hs256_secret: get(ENV_SECRET).map(Secret::new),
            public_key_pem,
            algorithm,
            issuer: get(ENV_ISSUER).map(|value| value.trim().to_owned()),
            audience: get(ENV_AUDIENCE).map(|value| value.trim().to_owned()),
            leeway_secs,
        };
        settings.check_shape()?;
        Ok(settings)
    }

    /// Checks what can be checked without parsing the key, including that some key is
    /// configured; returns the public key's algorithm.
    fn check(&self) -> Result<Option<Algorithm>, AuthConfigError> {
        let asymmetric = self.check_shape()?;
        if self.hs256_secret.is_none() && asymmetric.is_none() {
            return Err(AuthConfigError::NothingConfigured);
        }
        Ok(asymmetric)
    }

    /// [`AuthSettings::check`] without requiring a key.
    fn check_shape(&self) -> Result<Option<Algorithm>, AuthConfigError> {
        if self
            .hs256_secret
            .as_ref()
            .is_some_and(|secret| secret.expose().is_empty())
        {
            return Err(AuthConfigError::EmptySecret);
        }
        if self.leeway_secs > MAX_LEEWAY_SECS {
            return Err(AuthConfigError::InvalidLeeway(self.leeway_secs.to_string()));
        }
        let asymmetric = match (&self.public_key_pem, self.algorithm) {
            (Some(_), None) => return Err(AuthConfigError::MissingAlgorithm),
            (Some(_), Some(algorithm @ (Algorithm::RS256 | Algorithm::ES256))) => Some(algorithm),
            (Some(_), Some(algorithm)) => {
                return Err(AuthConfigError::UnsupportedAlgorithm(algorithm));
            }
            // Naming HS256 alongside the secret is redundant but harmless.
            (None, None | Some(Algorithm::HS256)) => None,
            (None, Some(algorithm)) => return Err(AuthConfigError::AlgorithmWithoutKey(algorithm)),
        };
        Ok(asymmetric)
    }
}

fn parse_algorithm(value: &str) -> Result<Algorithm, AuthConfigError> {
    match value.trim().to_ascii_uppercase().as_str() {
        "RS256" => Ok(Algorithm::RS256),
        "ES256" => Ok(Algorithm::ES256),
        "HS256" => Ok(Algorithm::HS256),
        _ => match value.trim().parse::<Algorithm>() {
            // A real algorithm this gateway does not support with a public key.
            Ok(algorithm) => Err(AuthConfigError::UnsupportedAlgorithm(algorithm)),
            Err(_) => Err(AuthConfigError::UnknownAlgorithm(value.to_owned())),
        },
    }
}

/// Why the authentication settings cannot be used. Each message names the variable to fix.
#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    /// Neither a secret nor a public key is configured.
    #[error(
        "no JWT key is configured: set INTERCOMM_JWT_SECRET (HS256) and/or \
         INTERCOMM_JWT_PUBLIC_KEY_FILE with INTERCOMM_JWT_ALGORITHM (RS256 or ES256)"
    )]
    NothingConfigured,
    /// The HS256 secret is the empty string.
    #[error("INTERCOMM_JWT_SECRET is empty")]
    EmptySecret,
    /// A public key is configured without its algorithm.
    #[error(
        "INTERCOMM_JWT_PUBLIC_KEY_FILE is set but INTERCOMM_JWT_ALGORITHM is not: \
         set it to RS256 or ES256"
    )]
    MissingAlgorithm,
    /// `INTERCOMM_JWT_ALGORITHM` is not an algorithm name.
    #[error("INTERCOMM_JWT_ALGORITHM `{0}` is not an algorithm: use RS256 or ES256")]
    UnknownAlgorithm(String),
    /// The algorithm cannot be used with a public key here.
    #[error(
        "INTERCOMM_JWT_ALGORITHM {0:?} is not supported with a public key: use RS256 or ES256 \
         (HS256 is implied by INTERCOMM_JWT_SECRET)"
    )]
    UnsupportedAlgorithm(Algorithm),
    /// An asymmetric algorithm is named but no public key is configured.
    #[error("INTERCOMM_JWT_ALGORITHM is {0:?} but INTERCOMM_JWT_PUBLIC_KEY_FILE is not set")]
    AlgorithmWithoutKey(Algorithm),
    /// The key file cannot be read.
    #[error("cannot read INTERCOMM_JWT_PUBLIC_KEY_FILE `{}`", path.display())]
    UnreadableKeyFile {
        /// The file named by the variable.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// The key file holds a private key; the gateway only needs (and should only see) the public
    /// one.
    #[error(
        "INTERCOMM_JWT_PUBLIC_KEY_FILE holds a private key: give the public key instead \
         (`openssl pkey -in private.pem -pubout`)"
    )]
    PrivateKeyGiven,
    /// The key file is not a PEM public key of the kind the algorithm needs.
    #[error("INTERCOMM_JWT_PUBLIC_KEY_FILE is not a PEM public key usable with {algorithm:?}")]
    InvalidPublicKey {
        /// `INTERCOMM_JWT_ALGORITHM`.
        algorithm: Algorithm,
        /// What the PEM parser said.
        #[source]
        source: jsonwebtoken::errors::Error,
    },
    /// The EC key is on another curve than P-256, which ES256 requires.
    #[error(
        "INTERCOMM_JWT_PUBLIC_KEY_FILE holds an EC key that is not on P-256 (ES256 needs P-256)"
    )]
    WrongCurve,
    /// The leeway is not a whole number of seconds up to [`MAX_LEEWAY_SECS`].
    #[error("INTERCOMM_JWT_LEEWAY `{0}` is not a whole number of seconds from 0 to 300")]
    InvalidLeeway(String),
}

/// The claims of a verified token.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct Claims {
    /// The subject: who the token speaks for (never empty).
    pub sub: String,
    /// Expiry, seconds since the Unix epoch (required).
    pub exp: u64,
    /// Issued at, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Not before, seconds since the Unix epoch (checked when present).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Issuer (checked when [`AuthSettings::issuer`] is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Audience: a string or an array of strings (checked when [`AuthSettings::audience`] is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<serde_json::Value>,
}

/// What a token is decoded into, so that a missing `exp` or `sub` is told apart from a malformed
/// payload.
#[derive(Deserialize)]
struct RawClaims {
    sub: Option<String>,
    exp: Option<u64>,
    iat: Option<u64>,
    nbf: Option<u64>,
    iss: Option<String>,
    aud: Option<serde_json::Value>,
}

impl RawClaims {
    fn into_claims(self) -> Result<Claims, AuthError> {
        let sub = match self.sub {
            Some(sub) if !sub.trim().is_empty() => sub,
            _ => return Err(AuthError::MissingSubject),
        };
        // `Validation` requires `exp`, so this is only belt and braces.
        let exp = self.exp.ok_or(AuthError::Invalid)?;
        Ok(Claims {
            sub,
            exp,
            iat: self.iat,
            nbf: self.nbf,
            iss: self.iss,
            aud: self.aud,
        })
    }
}

/// Why a request is not authenticated. The messages are safe to send to the client: they never
/// contain the token or the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header.
    #[error("no bearer token: send `Authorization: Bearer <token>`")]
    Missing,
    /// The header is not `Bearer <token>` (another scheme, or nothing after the scheme).
    #[error("the Authorization header is not of the form `Bearer <token>`")]
    Malformed,
    /// `exp` is in the past.
    #[error("the bearer token has expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("the bearer token is not valid yet (its nbf is in the future)")]
    NotYetValid,
    /// The signature does not verify with the configured key.
    #[error("the bearer token's signature does not verify")]
    BadSignature,
    /// The header's `alg` is not one this gateway is configured to accept.
    #[error("the bearer token is signed with an algorithm this gateway does not accept")]
    WrongAlgorithm,
    /// `iss` is missing or not the configured issuer.
    #[error("the bearer token's issuer (iss) is not the one this gateway accepts")]
    WrongIssuer,
    /// `aud` is missing or does not include the configured audience.
    #[error("the bearer token's audience (aud) does not include this gateway")]
    WrongAudience,
    /// `sub` is missing or empty.
    #[error("the bearer token has no subject (sub)")]
    MissingSubject,
    /// Anything else: not a JWT, undecodable parts, a missing `exp`, a claim of the wrong type.
    #[error("the bearer token is not a valid JWT with an expiry (exp)")]
    Invalid,
}

impl AuthError {
    /// The `WWW-Authenticate` value to send with the 401 (RFC 6750 §3): `Bearer` alone when no
    /// credentials came, otherwise with `error` and an `error_description`. Visible ASCII only,
    /// so `HeaderValue::from_static` accepts every value.
    #[must_use]
    pub fn challenge(&self) -> &'static str {
        match self {
            Self::Missing => "Bearer",
            Self::Malformed => {
                r#"Bearer error="invalid_request", error_description="the Authorization header is not of the form Bearer <token>""#
            }
            Self::Expired => {
                r#"Bearer error="invalid_token", error_description="the token has expired""#
            }
            Self::NotYetValid => {
                r#"Bearer error="invalid_token", error_description="the token is not valid yet""#
            }
            Self::BadSignature => {
                r#"Bearer error="invalid_token", error_description="the token's signature does not verify""#
            }
            Self::WrongAlgorithm => {
                r#"Bearer error="invalid_token", error_description="the token's algorithm is not accepted""#
            }
            Self::WrongIssuer => {
                r#"Bearer error="invalid_token", error_description="the token's issuer is not accepted""#
            }
            Self::WrongAudience => {
                r#"Bearer error="invalid_token", error_description="the token's audience does not include this gateway""#
            }
            Self::MissingSubject => {
                r#"Bearer error="invalid_token", error_description="the token has no subject""#
            }
            Self::Invalid => {
                r#"Bearer error="invalid_token", error_description="the token is invalid""#
            }
        }
    }

    /// The one mapping from `jsonwebtoken`'s refusals to ours.
    fn from_jwt(error: &jsonwebtoken::errors::Error) -> Self {
        match error.kind() {
            ErrorKind::InvalidSignature => Self::BadSignature,
            ErrorKind::ExpiredSignature => Self::Expired,
            ErrorKind::ImmatureSignature => Self::NotYetValid,
            ErrorKind::InvalidAlgorithm => Self::WrongAlgorithm,
            ErrorKind::InvalidIssuer => Self::WrongIssuer,
            ErrorKind::InvalidAudience => Self::WrongAudience,
            ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
                "iss" => Self::WrongIssuer,
                "aud" => Self::WrongAudience,
                "sub" => Self::MissingSubject,
                _ => Self::Invalid,
            },
            _ => Self::Invalid,
        }
    }
}

/// Verifies bearer tokens. Keys and validation rules are built once, in [`Authenticator::new`];
/// clones share them.
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Keys>,
}

struct Keys {
    hs256: Option<Verifier>,
    /// RS256 or ES256.
    asymmetric: Option<Verifier>,
    /// Tokens that passed every check, re-checked only for expiry.
    verified: TokenCache,
    leeway_secs: u64,
}

/// One accepted algorithm with its key and rules.
struct Verifier {
    algorithm: Algorithm,
    key: DecodingKey,
    validation: Validation,
}

impl Verifier {
    fn new(algorithm: Algorithm, key: DecodingKey, settings: &AuthSettings) -> Self {
        let mut validation = Validation::new(algorithm);
        validation.leeway = settings.leeway_secs;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        let mut required = vec!["exp"];
        if let Some(issuer) = &settings.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        match &settings.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        Self {
            algorithm,
            key,
            validation,
        }
    }
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("algorithms", &self.algorithms())
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Parse the configured keys and build the validation rules.
    ///
    /// # Errors
    /// [`AuthConfigError`] naming the setting at fault: nothing configured, an empty secret, a
    /// public key without a (supported) algorithm, a private key where the public one belongs, a
    /// PEM that does not parse as a key of that algorithm, or a leeway over [`MAX_LEEWAY_SECS`].
    pub fn new(settings: &AuthSettings) -> Result<Self, AuthConfigError> {
        let asymmetric = settings.check()?;
        let hs256 = settings.hs256_secret.as_ref().map(|secret| {
            let key = DecodingKey::from_secret(secret.expose().as_bytes());
            Verifier::new(Algorithm::HS256, key, settings)
        });
        let asymmetric = match (asymmetric, &settings.public_key_pem) {
            (Some(algorithm), Some(pem)) => {
                let key = public_key(algorithm, pem)?;
                Some(Verifier::new(algorithm, key, settings))
            }
            _ => None,
        };
        Ok(Self {
            inner: Arc::new(Keys {
                hs256,
                asymmetric,
                verified: TokenCache::default(),
                leeway_secs: settings.leeway_secs,
            }),
        })
    }

    /// The algorithms accepted, for the startup log.
    #[must_use]
    pub fn algorithms(&self) -> Vec<Algorithm> {
        [&self.inner.hs256, &self.inner.asymmetric]
            .into_iter()
            .flatten()
            .map(|verifier| verifier.algorithm)
            .collect()
    }

    /// Verify the raw value of an `Authorization` header: `Bearer <jwt>`, the scheme in any case.
    ///
    /// # Errors
    /// [`AuthError::Missing`] without a header, [`AuthError::Malformed`] for another scheme or
    /// no token, and otherwise whatever [`Authenticator::verify_token`] says.
    pub fn verify_header(&self, authorization: Option<&str>) -> Result<Claims, AuthError> {
        let value = authorization.ok_or(AuthError::Missing)?;
        let token = bearer_token(value).ok_or(AuthError::Malformed)?;
        self.verify_token(token)
    }

    /// Verify a compact JWT: its algorithm is one configured, its signature verifies with that
    /// algorithm's key, `exp` is present and not past, `nbf` (if present) is not future, `iss` and
    /// `aud` match when configured, and `sub` is a non-empty string. A token seen before that
    /// passed all this is only checked for expiry again (see [`crate::token_cache`]).
    ///
    /// # Errors
    /// The [`AuthError`] saying which of these failed.
    pub fn verify_token(&self, token: &str) -> Result<Claims, AuthError> {
        if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::Invalid);
        }
        if let Some(claims) = self
            .inner
            .verified
            .get(token, jsonwebtoken::get_current_timestamp())
        {
            return Ok(claims);
        }
        // The header is read unverified only to pick among the configured keys; `decode` checks
        // it again against that key's single algorithm.
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Invalid)?;
        let verifier = [&self.inner.hs256, &self.inner.asymmetric]
            .into_iter()
            .flatten()
            .find(|verifier| verifier.algorithm == header.alg)
            .ok_or(AuthError::WrongAlgorithm)?;
        let data = jsonwebtoken::decode::<RawClaims>(token, &verifier.key, &verifier.validation)
            .map_err(|error| AuthError::from_jwt(&error))?;
        let claims = data.claims.into_claims()?;
        self.inner
            .verified
            .insert(token, &claims, self.inner.leeway_secs);
        Ok(claims)
    }
}

/// The token of a `Bearer <token>` header value, if it is one.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim().split_once([' ', '\t'])?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.trim_start_matches([' ', '\t']);
    if token.is_empty() || token.contains(char::is_whitespace) {
        return None;
    }
    Some(token)
}

/// Parse the public key for `algorithm` (RS256 or ES256).
fn public_key(algorithm: Algorithm, pem: &str) -> Result<DecodingKey, AuthConfigError> {
    // `jsonwebtoken` would take a private key PEM here too and then fail every verification.
    if pem.contains("PRIVATE KEY-----") {
        return Err(AuthConfigError::PrivateKeyGiven);
    }
    let invalid = |source| AuthConfigError::InvalidPublicKey { algorithm, source };
    match algorithm {
        Algorithm::RS256 => DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(invalid),
        Algorithm::ES256 => {
            let key = DecodingKey::from_ec_pem(pem.as_bytes()).map_err(invalid)?;
            // The PEM parser accepts any curve; a P-384 key would fail every ES256 check.
            match key.kind() {
                DecodingKeyKind::SecretOrDer(point) if is_p256_point(point) => Ok(key),
                _ => Err(AuthConfigError::WrongCurve),
            }
        }
        other => Err(AuthConfigError::UnsupportedAlgorithm(other)),
    }
}

/// Whether `point` has the length of a SEC1-encoded P-256 point (uncompressed or compressed).
fn is_p256_point(point: &[u8]) -> bool {
    matches!(
        (point.len(), point.first()),
        (65, Some(0x04)) | (33, Some(0x02 | 0x03))
    )
}

/// Mint an HS256 token (used by `intercomm token` and `intercomm up` for development): `sub`,
/// `iat` now, `exp` now + `ttl`, and `iss`/`aud` when given.
///
/// # Errors
/// A `jsonwebtoken` error when `sub` is empty (`MissingRequiredClaim("sub")`), the secret is
/// empty (`InvalidKeyFormat`), or signing fails.
pub fn mint_hs256(
    secret: &Secret,
    sub: &str,
    ttl: Duration,
    issuer: Option<&str>,
    audience: Option<&str>,
) -> Result<String, jsonwebtoken::errors::Error> {
    if sub.trim().is_empty() {
        return Err(new_error(ErrorKind::MissingRequiredClaim("sub".to_owned())));
    }
    if secret.expose().is_empty() {
        return Err(new_error(ErrorKind::InvalidKeyFormat));
    }
    let now = jsonwebtoken::get_current_timestamp();
    let claims = Claims {
        sub: sub.to_owned(),
        exp: now.saturating_add(ttl.as_secs()),
        iat: Some(now),
        nbf: None,
        iss: issuer.map(str::to_owned),
        aud: audience.map(|audience| serde_json::Value::String(audience.to_owned())),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.expose().as_bytes()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// The HS256 secret of most tests.
    const SECRET: &str = "test-only-secret-0123456789abcdef0123456789";

    // Keys generated once with `openssl genpkey` for these tests only; they guard nothing.
    /// RSA key A (private, PKCS#8), signs tokens the RS256 tests accept.
    const RSA_A_PRIVATE: &str = r"-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDit3hhH+AUrOLT
sImQzfNrVbgDZeJiWX3qCKwdycg0bhNyDnWmE7hBH8NXjqxOde/VdWzdkDRATVi/
WZw/KNqDprXcVG5UReUuTKGychlFDJyb4vwDvMDFIs2tyokrW0Q36QFA9wcTlz4t
9w4rmesTnWSCazJR+r+S0n/5DI+XhuM5rGh0L0QSCZ15NmmsHi42VkervnQeR2aV
aJHL2PM9Je9jlRlbVkkfb9dqt1gSb2pVY1gmEYQOQ9+dltS4vhZ6JuZ4vJfowLQl
RmRs9LF414KF4M6E3CaQANNlzYyPFU84e1gq8sBA2mZO4fUINUwEUbzGyoanHdH9
ce2SrVLrAgMBAAECggEAcCeL/RwcKY43Lbq86u3/N79xZvjta3LTB8YfgyLxkAJO
S1Oc3roNoeXZKETTt4K/UO0knFy8hHze5NYrJdGLe6oqeCMqazUigWt2aETqfE6X
YMSCoEStZjhn4Ev73H9rOW9iZ+VsUkQ1Bd8cWvRrJsprUNs/yu9M+xB4L1eH51Bs
NhMLY4cEyQnBG20NVxX3HUBNk01IQK2SuD/lAmuASetlnNd6DANx0193ZX2NLvE8
DJqiBKYfUEEGi7up3PtW408I7tkcI+sw7mILEo2YOSXqWmgBScYUrBhVZkgZRZPZ
6C5puETIrslsk2bFFX5NKKidSSIR03g2P4LiXycL/QKBgQD4+ALSd86w8JkKJtq+
Isb+Oa98mWtzDJd35ncPw1C6aTmEpIW9Mgap/HLFEma6BedCzI8ax1HiMXmiiQRX
XIcs8yV70KswOCiCJSDUvagskND+A+tJY5qGkTJvq2Qrys8WDeJB2PxjTY88yIpp
WYOgop9CevG511wvOn+fiVrvxQKBgQDpHpTVuUWUN0XE0V8shDmwgR+ZYzrvnmRF
evAXrCZl1UOvmoT6s752X7BHUzvtiFRpExU2hJUQXw0zRWyykV/T3ed8x4CowCrP
ViQSu+JaIGZJgSGOSpIMcN4JN3Tb1AO1n2mUi0b02IZGR8Hyk4IX6m4j4cANtd5H
FZx2OFcy7wKBgANnYKKAANNqdq0s2tC+qPnQ0BVkA5QPGAMLo5UTlob16VNm7G0p
we2RBgCrv7vLWN4Q7ePv1a7B/me6d9S57x8uM9T9hVmjaupcl5ZRAXuaf0D5zL20
Hui4E3hzX2s52prylaVQ0iKJbOvn0fyevK31izfddnCUAS6kHhqQRi4BAoGAKquq
WqSbE9I6NxiL7z4UwTYhbpY3R30apY0nPW4JaUJsLUx/YtRb3JcPUT7vDT+TE9im
XWBPWLvNUsE2cEkj3UgVA0YRStJCA8mkuLkjaZPcpT+5wK3tpdFTEyTPgx1/wFL5
pHMJ/e9URLEF0z0k5vPGTVMZMGlF0oUmKo2NiIkCgYEAhR/xCUWteC+KCskkPRtL
ry3O5gyeqUUEC8Jfuxulexu1IFH/nk9DRcdhCOsfaCjyOtxBNWXTG0KEmKrCqqUz
D6G/2AjA4yVBhvbr9d6/4I40rIH9Sq3pzhc594X2syttaxkLg0gNisXj93lj0dGy
uRNuVq1btH2Wwlii+bC0VcI=
-----END PRIVATE KEY-----
";
    /// RSA key A's public half.
    const RSA_A_PUBLIC: &str = r"-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA4rd4YR/gFKzi07CJkM3z
a1W4A2XiYll96gisHcnING4Tcg51phO4QR/DV46sTnXv1XVs3ZA0QE1Yv1mcPyja
g6a13FRuVEXlLkyhsnIZRQycm+L8A7zAxSLNrcqJK1tEN+kBQPcHE5c+LfcOK5nr
E51kgmsyUfq/ktJ/+QyPl4bjOaxodC9EEgmdeTZprB4uNlZHq750HkdmlWiRy9jz
PSXvY5UZW1ZJH2/XardYEm9qVWNYJhGEDkPfnZbUuL4WeibmeLyX6MC0JUZkbPSx
eNeCheDOhNwmkADTZc2MjxVPOHtYKvLAQNpmTuH1CDVMBFG8xsqGpx3R/XHtkq1S
6wIDAQAB
-----END PUBLIC KEY-----
";
    /// RSA key B (private): an attacker's key the gateway does not trust.
    const RSA_B_PRIVATE: &str = r"-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDnzfMMZmIY21dt
PYjdOI8PCzd7v+nkJxN4yex/CHnNaeieAYdCg2VVJoc5wd5mVdVfgmOgukhKZ88i
VC/+i4v9N9+ThGV+Gv3tur9AzAstvLuW6Ph/xME2LqlyyfsEngtwEia+u0mSjYlq
/k5FOkPjx8Io9mqIekubAwlQAmBg04nN/NAbw8c6SfZ1Ohr/gUPaiMNXVQq4oKUi
IFVR9WpjoGzK/BYXEOJu+tfnfYWG0sxJBJmCSsDrt89SnLAHrTJ7F48lifrT57eI
yzBKj5t1DuVLVUUjACGou7ud9dspEBzzDqmqqNuJ9XC3iTu9af5+dHtJBpj4b2eT
vs36E+91AgMBAAECggEALJ9w0kpDSBWxVs4psqxYncTDAYeINutuzCnS5QF0sR5a
MVCKATvaHfI0xeGUNo7/bEtlcmNp1yj0rt8V/iJO6IgA+hzajNQVXdY9SvP8kulq
Ezr122K87vk8lWRcdh8WhJR58O2M1DF66qXZ22nD9+1Uax5Ek9E3DLgg6s4KT5kL
dfpgj4pBUizsumG/yt9QMYKNd+Xqr0TyYmXm1WQ2yqbVUNzCMyuuObpnAKSFEtsS
pSX7HZHohbrDFaL4irb9zmbUVV0yJe4nszNYKXvCEnNZBd1QpiH1kcnGUlnpuQ64
DW9a+hGDqWolT42Mww+rOMetgdOC656rAFAcsByEYQKBgQD5LCHuxzYJzMV+jCIy
GJKICHMCbkeBr0/rKZq5pnKdDQsr1Q2+aMJSCaQSOY9Z+i6ZsSfyrh6M/Fb+v5re
WFsBcTrsdFjpyWb89PBZLoj6CcN5ZpB5pGINB8fcQyp141YLLuq4Ebwj6v+3+ODU
z+ccqoNfGjUHLNZo9N7dQvUAmwKBgQDuJ/yDTN3qTeXkCeppie7/ApEl1QRkZ/aZ
B8aEOiPqGCH/YlPmsruftTG+zLPGwL9bqLteMZMpOnjS1r1Z7f3EfYL4zmFzrSen
4baSWCwOtLjDh3XuU4vS+E0nWNd86ay8S2BSzmdTPUeQSgtWhQp3KmgipU0r3hJJ
JwJqdgApLwKBgQDrrs/F0A4QBO1FPn1VzyJCo2NNiEwAoXdBYw/jzEmavWy0oAgo
82PiPxY+2sz5+Yc8fnHfvMxO5JvQyCFPcFlcKuLmJ0K2l3bfizsPz9FmV/faC6Za
OJ853gMwFyPBcC/B0jXXt4aynqQUOsdG5AOhfLNYMCy6RbHkgsGOnbeqQwKBgED9
MG80Hqq9rypXelxqg4mbTbihNJ2hsS15bbbPltVe2Ig0cOjXhVPDwltqyPRHzPBa
TycZKCtsBWSjrPBJfaKNDZyP1RAYBGZPtd6hqQQqVPEmmgv7SIC9uXAvUj6IFdcc
SqDOKmwQoOLDEez+SSjTra8mpLR/2UWVG5eps8mJAoGBALGxyqh4URdgKdCTnfrH
C/iPkbJO5JSl9USrtPJe0+fl8Zo/+pzV+iht+aifbjBzUREdwlHPvA5f8KEF3c8s
TZxjrTBHIUG4jLRWxkI2WoH18QbL8Ain0TsXw51el0sqC9bRvsneFJiJ3ii8HRba
Mj1Pi0GZkQAvdG6cBV9UNi9H
-----END PRIVATE KEY-----
";
    /// A P-256 key (private, PKCS#8) for ES256.
    const EC_PRIVATE: &str = r"-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQge0dim9XMSXCO0vnD
R5lIGsr5k9EtcthO2eYRygL9wBqhRANCAARij3g59YoTIXOtnCK6rB6e5HtQKN7a
JA17C4GmTgsduC8l1jZYP8uzBpkFMBNlyX5baB/U/nZtkg0PfNwhDBAh
-----END PRIVATE KEY-----
";
    /// The P-256 key's public half.
    const EC_PUBLIC: &str = r"-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEYo94OfWKEyFzrZwiuqwenuR7UCje
2iQNewuBpk4LHbgvJdY2WD/LswaZBTATZcl+W2gf1P52bZIND3zcIQwQIQ==
-----END PUBLIC KEY-----
";
    /// A P-384 public key, which ES256 cannot use.
    const EC_P384_PUBLIC: &str = r"-----BEGIN PUBLIC KEY-----
MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAE/klPIszrRVAkli2lWpzp0CtcfrYcBXZp
iVw2c+JkTYMdpeQ0LPwDgI0zyYLBL93dySqF57NCaSXenQAcsIrjv7ve064KT/Ws
Tr6aTg1EOeCMUZn78iESQJxkorkPyW10
-----END PUBLIC KEY-----
";

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    /// Claims that pass every check: `sub` alice, expiring in five minutes.
    fn good_claims() -> Value {
        json!({ "sub": "alice", "iat": now(), "exp": now() + 300 })
    }

    /// `good_claims` with `changes` merged in (a `null` removes the claim).
    fn claims_with(changes: Value) -> Value {
        let mut claims = good_claims();
        if let (Some(claims), Some(changes)) = (claims.as_object_mut(), changes.as_object()) {
            for (name, value) in changes {
                if value.is_null() {
                    claims.remove(name);
                } else {
                    claims.insert(name.clone(), value.clone());
                }
            }
        }
        claims
    }

    fn sign(algorithm: Algorithm, key: &EncodingKey, claims: &Value) -> String {
        jsonwebtoken::encode(&Header::new(algorithm), claims, key).expect("test token signs")
    }

    fn sign_hs256(secret: &str, claims: &Value) -> String {
        sign(
            Algorithm::HS256,
            &EncodingKey::from_secret(secret.as_bytes()),
            claims,
        )
    }

    fn sign_rs256(private_pem: &str, claims: &Value) -> String {
        let key = EncodingKey::from_rsa_pem(private_pem.as_bytes()).expect("test RSA key parses");
        sign(Algorithm::RS256, &key, claims)
    }

    fn hs256_settings() -> AuthSettings {
        AuthSettings {
            hs256_secret: Some(Secret::new(SECRET.to_owned())),
            ..AuthSettings::default()
        }
    }

    fn public_key_settings(algorithm: Algorithm, pem: &str) -> AuthSettings {
        AuthSettings {
            public_key_pem: Some(pem.to_owned()),
            algorithm: Some(algorithm),
            ..AuthSettings::default()
        }
    }

    fn authenticator(settings: &AuthSettings) -> Authenticator {
        Authenticator::new(settings).expect("test settings are valid")
    }

    fn bearer(token: &str) -> String {
        format!("Bearer {token}")
    }

    /// Unpadded base64url, for hand-built tokens.
    fn b64url(bytes: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, byte)| n | u32::from(*byte) << (16 - 8 * i));
            for i in 0..=chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            }
        }
        out
    }

    /// A file under the temp directory holding `text`, removed on drop.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(text: &str) -> Self {
            let path =
                std::env::temp_dir().join(format!("intercomm-auth-{}.pem", uuid::Uuid::new_v4()));
            std::fs::write(&path, text).expect("temp file is writable");
            Self(path)
        }

        fn path(&self) -> String {
            self.0.display().to_string()
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// A lookup over fixed `(name, value)` pairs.
    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        move |name| {
            vars.iter()
                .find(|(candidate, _)| candidate == name)
                .map(|(_, value)| value.clone())
        }
    }

    /// A valid HS256 token in a `Bearer` header is accepted and its claims are read.
    #[test]
    fn a_valid_hs256_token_is_accepted_with_its_claims() {
        let auth = authenticator(&hs256_settings());
        let exp = now() + 300;
        let token = sign_hs256(SECRET, &json!({ "sub": "alice", "exp": exp, "iat": now() }));
        let claims = auth
            .verify_header(Some(&bearer(&token)))
            .expect("a valid token is accepted");
        assert_eq!(claims.sub, "alice");
        assert_eq!(claims.exp, exp);
        assert!(claims.iat.is_some());
        assert_eq!(claims.iss, None);
    }

    /// A token accepted once is accepted again (from the cache) with the same claims, while the
    /// same token with one character of its signature changed is still refused.
    #[test]
    fn a_remembered_token_does_not_vouch_for_a_tampered_one() {
        let auth = authenticator(&hs256_settings());
        let token = sign_hs256(SECRET, &good_claims());
        let first = auth.verify_token(&token).expect("valid");
        assert_eq!(auth.verify_token(&token).expect("still valid"), first);
        // A character inside the signature (the last one also carries padding bits).
        let at = token.len() - 5;
        let swapped = if &token[at..=at] == "A" { "B" } else { "A" };
        let tampered = format!("{}{swapped}{}", &token[..at], &token[at + 1..]);
        assert_eq!(auth.verify_token(&tampered), Err(AuthError::BadSignature));
    }

    /// The scheme is matched case-insensitively, and extra spaces around the token are tolerated.
    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        let auth = authenticator(&hs256_settings());
        let token = sign_hs256(SECRET, &good_claims());
        for value in [format!("bearer {token}"), format!("BEARER  {token} ")] {
            assert!(auth.verify_header(Some(&value)).is_ok(), "{value} accepted");
        }
    }

    /// No `Authorization` header is `Missing`, whose challenge is `Bearer` alone.
    #[test]
    fn a_missing_header_is_missing() {
        let auth = authenticator(&hs256_settings());
        let error = auth.verify_header(None).expect_err("no header is refused");
        assert_eq!(error, AuthError::Missing);
        assert_eq!(error.challenge(), "Bearer");
    }

    /// Another scheme, the scheme alone, or an empty header is `Malformed`.
    #[test]
    fn another_scheme_or_no_token_is_malformed() {
        let auth = authenticator(&hs256_settings());
        for value in [
            "Basic YWxpY2U6c2VjcmV0",
            "Bearer",
            "Bearer   ",
            "",
            "Bearer a b",
        ] {
            assert_eq!(
                auth.verify_header(Some(value)).expect_err(value),
                AuthError::Malformed,
                "{value:?}"
            );
        }
    }

    /// A bearer value that is not a JWT, or one far too long, is `Invalid`.
    #[test]
    fn a_garbage_token_is_invalid() {
        let auth = authenticator(&hs256_settings());
        let oversized = "a".repeat(MAX_TOKEN_BYTES + 1);
        for token in ["not-a-jwt", "a.b.c", "a.b", "....", oversized.as_str()] {
            assert_eq!(
                auth.verify_header(Some(&bearer(token)))
                    .expect_err("garbage"),
                AuthError::Invalid
            );
        }
    }

    /// An unsigned token (`alg: none`, empty signature) is refused whatever its claims, while the
    /// same hand-built token signed with HS256 passes (so the refusal is about `alg`, not about
    /// how the token was built).
    #[test]
    fn an_alg_none_token_is_refused() {
        let auth = authenticator(&hs256_settings());
        let payload = b64url(good_claims().to_string().as_bytes());

        let signed_header = b64url(br#"{"alg":"HS256","typ":"JWT"}"#);
        let message = format!("{signed_header}.{payload}");
        let key = EncodingKey::from_secret(SECRET.as_bytes());
        let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::HS256)
            .expect("HMAC signs");
        assert!(auth.verify_token(&format!("{message}.{signature}")).is_ok());

        for alg in ["none", "None", "NONE"] {
            let header = b64url(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#).as_bytes());
            let unsigned = format!("{header}.{payload}.");
            assert_eq!(
                auth.verify_token(&unsigned),
                Err(AuthError::Invalid),
                "{alg}"
            );
            // Nor with the HS256 signature of the signed variant pasted on.
            let pasted = format!("{header}.{payload}.{signature}");
            assert_eq!(auth.verify_token(&pasted), Err(AuthError::Invalid), "{alg}");
        }
    }

    /// A token signed with another secret fails the signature check.
    #[test]
    fn a_token_signed_with_another_secret_has_a_bad_signature() {
        let auth = authenticator(&hs256_settings());
        let token = sign_hs256("some-other-secret", &good_claims());
        assert_eq!(auth.verify_token(&token), Err(AuthError::BadSignature));
    }

    /// A token whose `exp` is past by more than the leeway is `Expired`.
    #[test]
    fn an_expired_token_is_refused() {
        let auth = authenticator(&hs256_settings());
        let token = sign_hs256(
            SECRET,
            &claims_with(json!({ "exp": now() - DEFAULT_LEEWAY_SECS - 60 })),
        );
        let error = auth.verify_token(&token).expect_err("expired");
        assert_eq!(error, AuthError::Expired);
        assert!(error.challenge().contains(r#"error="invalid_token""#));
    }

    /// A token that expired within the leeway is still accepted (clock skew).
    #[test]
    fn the_leeway_tolerates_small_clock_skew() {
        let auth = authenticator(&hs256_settings());
        let token = sign_hs256(SECRET, &claims_with(json!({ "exp": now() - 5 })));
        assert!(auth.verify_token(&token).is_ok());
    }

    /// A token whose `nbf` is in the future (beyond the leeway) is `NotYetValid`; a past `nbf`
    /// passes.
    #[test]
    fn a_token_not_yet_valid_is_refused() {
        let auth = authenticator(&hs256_settings());
        let future = sign_hs256(SECRET, &claims_with(json!({ "nbf": now() + 600 })));
        assert_eq!(auth.verify_token(&future), Err(AuthError::NotYetValid));
        let past = sign_hs256(SECRET, &claims_with(json!({ "nbf": now() - 10 })));
        assert!(auth.verify_token(&past).is_ok());
    }

    /// With an issuer and audience configured, matching tokens pass (aud as a string or an
    /// array), and a wrong or missing `iss` / `aud` is refused.
    #[test]
    fn issuer_and_audience_are_checked_when_configured() {
        let auth = authenticator(&AuthSettings {
            issuer: Some("https://id.example".to_owned()),
            audience: Some("intercomm".to_owned()),
            ..hs256_settings()
        });
        let good = json!({ "iss": "https://id.example", "aud": "intercomm" });
        let claims = auth
            .verify_token(&sign_hs256(SECRET, &claims_with(good)))
            .expect("matching iss and aud");
        assert_eq!(claims.iss.as_deref(), Some("https://id.example"));
        assert_eq!(claims.aud, Some(json!("intercomm")));
        let in_array = json!({ "iss": "https://id.example", "aud": ["other", "intercomm"] });
        assert!(
            auth.verify_token(&sign_hs256(SECRET, &claims_with(in_array)))
                .is_ok()
        );

        let cases = [
            (
                json!({ "iss": "https://evil.example", "aud": "intercomm" }),
                AuthError::WrongIssuer,
            ),
            (json!({ "aud": "intercomm" }), AuthError::WrongIssuer),
            (
                json!({ "iss": "https://id.example", "aud": "other" }),
                AuthError::WrongAudience,
            ),
            (
                json!({ "iss": "https://id.example" }),
                AuthError::WrongAudience,
            ),
        ];
        for (changes, expected) in cases {
            let token = sign_hs256(SECRET, &claims_with(changes.clone()));
            assert_eq!(auth.verify_token(&token), Err(expected), "{changes}");
        }
    }

    /// Without an issuer or audience configured, `iss` and `aud` are not looked at.
    #[test]
    fn issuer_and_audience_are_ignored_when_not_configured() {
        let auth = authenticator(&hs256_settings());
        let token = sign_hs256(SECRET, &claims_with(json!({ "iss": "x", "aud": "y" })));
        assert!(auth.verify_token(&token).is_ok());
    }

    /// A token without `exp` is refused: expiry is required.
    #[test]
    fn a_token_without_exp_is_refused() {
        let auth = authenticator(&hs256_settings());
        let token = sign_hs256(SECRET, &claims_with(json!({ "exp": null })));
        assert_eq!(auth.verify_token(&token), Err(AuthError::Invalid));
    }

    /// An empty, blank or missing `sub` is `MissingSubject`.
    #[test]
    fn an_empty_or_missing_subject_is_refused() {
        let auth = authenticator(&hs256_settings());
        for changes in [
            json!({ "sub": "" }),
            json!({ "sub": "  " }),
            json!({ "sub": null }),
        ] {
            let token = sign_hs256(SECRET, &claims_with(changes.clone()));
            assert_eq!(
                auth.verify_token(&token),
                Err(AuthError::MissingSubject),
                "{changes}"
            );
        }
    }

    /// With an RS256 public key, a token signed by its private key is accepted, and one signed by
    /// another RSA key is refused.
    #[test]
    fn rs256_tokens_verify_with_the_configured_public_key_only() {
        let auth = authenticator(&public_key_settings(Algorithm::RS256, RSA_A_PUBLIC));
        let claims = auth
            .verify_token(&sign_rs256(RSA_A_PRIVATE, &good_claims()))
            .expect("signed by the trusted key");
        assert_eq!(claims.sub, "alice");
        assert_eq!(
            auth.verify_token(&sign_rs256(RSA_B_PRIVATE, &good_claims())),
            Err(AuthError::BadSignature)
        );
    }

    /// With an ES256 public key, a token signed by its private key is accepted.
    #[test]
    fn es256_tokens_are_accepted() {
        let auth = authenticator(&public_key_settings(Algorithm::ES256, EC_PUBLIC));
        let key = EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).expect("test EC key parses");
        let token = sign(Algorithm::ES256, &key, &good_claims());
        assert_eq!(
            auth.verify_token(&token).map(|claims| claims.sub),
            Ok("alice".to_owned())
        );
    }

    /// An HS256 token is refused when only RS256 is configured, and an RS256 token when only
    /// HS256 is.
    #[test]
    fn a_token_of_an_unconfigured_algorithm_is_refused() {
        let rs256_only = authenticator(&public_key_settings(Algorithm::RS256, RSA_A_PUBLIC));
        let hs256_token = sign_hs256(SECRET, &good_claims());
        assert_eq!(
            rs256_only.verify_token(&hs256_token),
            Err(AuthError::WrongAlgorithm)
        );

        let hs256_only = authenticator(&hs256_settings());
        let rs256_token = sign_rs256(RSA_A_PRIVATE, &good_claims());
        assert_eq!(
            hs256_only.verify_token(&rs256_token),
            Err(AuthError::WrongAlgorithm)
        );
    }

    /// The classic confusion attack, an HS256 token whose HMAC secret is the server's RSA public
    /// key PEM, is refused: with only RS256 configured, and with HS256 configured too (its own
    /// secret is used, never the public key).
    #[test]
    fn an_hs256_token_keyed_with_the_public_key_is_refused() {
        let forged = sign_hs256(RSA_A_PUBLIC, &good_claims());
        let rs256_only = authenticator(&public_key_settings(Algorithm::RS256, RSA_A_PUBLIC));
        assert_eq!(
            rs256_only.verify_token(&forged),
            Err(AuthError::WrongAlgorithm)
        );

        let both = authenticator(&AuthSettings {
            hs256_secret: Some(Secret::new(SECRET.to_owned())),
            ..public_key_settings(Algorithm::RS256, RSA_A_PUBLIC)
        });
        assert_eq!(both.algorithms(), [Algorithm::HS256, Algorithm::RS256]);
        assert_eq!(both.verify_token(&forged), Err(AuthError::BadSignature));
        // Both genuine kinds still pass.
        assert!(
            both.verify_token(&sign_hs256(SECRET, &good_claims()))
                .is_ok()
        );
        assert!(
            both.verify_token(&sign_rs256(RSA_A_PRIVATE, &good_claims()))
                .is_ok()
        );
    }

    /// `from_lookup` reads every variable and the key file; blank values count as unset.
    #[test]
    fn from_lookup_reads_the_environment_and_the_key_file() {
        let file = TempFile::new(RSA_A_PUBLIC);
        let settings = AuthSettings::from_lookup(lookup(&[
            (ENV_SECRET, SECRET),
            (ENV_PUBLIC_KEY_FILE, &file.path()),
            (ENV_ALGORITHM, "rs256"),
            (ENV_ISSUER, "https://id.example"),
            (ENV_AUDIENCE, " "),
        ]))
        .expect("valid settings");
        assert_eq!(settings.public_key_pem.as_deref(), Some(RSA_A_PUBLIC));
        assert_eq!(settings.algorithm, Some(Algorithm::RS256));
        assert_eq!(settings.issuer.as_deref(), Some("https://id.example"));
        assert_eq!(settings.audience, None);
        assert_eq!(settings.leeway_secs, DEFAULT_LEEWAY_SECS);
        let auth = authenticator(&settings);
        assert_eq!(auth.algorithms(), [Algorithm::HS256, Algorithm::RS256]);
    }

    /// `from_lookup` refuses: nothing configured, a public key without an algorithm, an
    /// unreadable key file, an unknown or unsupported algorithm, an algorithm without a key, and
    /// a bad leeway.
    #[test]
    fn from_lookup_refuses_unusable_settings() {
        let nothing = AuthSettings::from_lookup(|_| None).expect("no key is refused later");
        assert!(
            matches!(
                Authenticator::new(&nothing),
                Err(AuthConfigError::NothingConfigured)
            ),
            "{nothing:?}"
        );
        let blank = AuthSettings::from_lookup(lookup(&[(ENV_SECRET, "")])).expect("blank is unset");
        assert!(
            matches!(
                Authenticator::new(&blank),
                Err(AuthConfigError::NothingConfigured)
            ),
            "{blank:?}"
        );

        let file = TempFile::new(RSA_A_PUBLIC);
        let key_path = file.path();
        let no_algorithm = AuthSettings::from_lookup(lookup(&[(ENV_PUBLIC_KEY_FILE, &key_path)]));
        let error = no_algorithm.expect_err("a key needs an algorithm");
        assert!(matches!(error, AuthConfigError::MissingAlgorithm));
        assert!(error.to_string().contains(ENV_ALGORITHM));

        let missing = "/nonexistent/intercomm/jwt.pem";
        let unreadable = AuthSettings::from_lookup(lookup(&[
            (ENV_PUBLIC_KEY_FILE, missing),
            (ENV_ALGORITHM, "RS256"),
        ]));
        let error = unreadable.expect_err("the key file must be readable");
        assert!(matches!(error, AuthConfigError::UnreadableKeyFile { .. }));
        assert!(error.to_string().contains(missing));
        assert!(std::error::Error::source(&error).is_some());

        let refused = [
            (
                vec![(ENV_SECRET, SECRET), (ENV_ALGORITHM, "RS257")],
                "UnknownAlgorithm",
            ),
            (
                vec![
                    (ENV_PUBLIC_KEY_FILE, key_path.as_str()),
                    (ENV_ALGORITHM, "PS256"),
                ],
                "UnsupportedAlgorithm",
            ),
            (
                vec![
                    (ENV_PUBLIC_KEY_FILE, key_path.as_str()),
                    (ENV_ALGORITHM, "HS256"),
                ],
                "UnsupportedAlgorithm",
            ),
            (
                vec![(ENV_SECRET, SECRET), (ENV_ALGORITHM, "ES256")],
                "AlgorithmWithoutKey",
            ),
            (
                vec![(ENV_SECRET, SECRET), (ENV_LEEWAY, "soon")],
                "InvalidLeeway",
            ),
            (
                vec![(ENV_SECRET, SECRET), (ENV_LEEWAY, "301")],
                "InvalidLeeway",
            ),
        ];
        for (vars, expected) in refused {
            let error = AuthSettings::from_lookup(lookup(&vars)).expect_err(expected);
            assert!(
                format!("{error:?}").starts_with(expected),
                "{vars:?}: {error:?}"
            );
        }
    }

    /// `Authenticator::new` refuses a key that does not parse, a private key, and an EC key on
    /// the wrong curve, naming the setting.
    #[test]
    fn new_refuses_unusable_keys() {
        let cases = [
            (
                public_key_settings(Algorithm::RS256, "not a pem"),
                "InvalidPublicKey",
            ),
            (
                public_key_settings(Algorithm::RS256, EC_PUBLIC),
                "InvalidPublicKey",
            ),
            (
                public_key_settings(Algorithm::ES256, RSA_A_PUBLIC),
                "InvalidPublicKey",
            ),
            (
                public_key_settings(Algorithm::RS256, RSA_A_PRIVATE),
                "PrivateKeyGiven",
            ),
            (
                public_key_settings(Algorithm::ES256, EC_P384_PUBLIC),
                "WrongCurve",
            ),
            (AuthSettings::default(), "NothingConfigured"),
            (
                AuthSettings {
                    hs256_secret: Some(Secret::new(String::new())),
                    ..AuthSettings::default()
                },
                "EmptySecret",
            ),
        ];
        for (settings, expected) in cases {
            let error = Authenticator::new(&settings).expect_err(expected);
            assert!(format!("{error:?}").starts_with(expected), "{error:?}");
            assert!(error.to_string().contains("INTERCOMM_JWT_"), "{error}");
        }
    }

    /// A secret never shows in `Debug`, neither alone nor inside the settings or authenticator.
    #[test]
    fn secrets_never_print() {
        let secret = Secret::new("hunter2-very-secret".to_owned());
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        let settings = AuthSettings {
            hs256_secret: Some(secret.clone()),
            ..AuthSettings::default()
        };
        assert!(!format!("{settings:?}").contains("hunter2"));
        assert!(!format!("{:?}", authenticator(&settings)).contains("hunter2"));
        assert_eq!(secret.expose(), "hunter2-very-secret");
    }

    /// Every refusal's message and challenge is static text (no token echoed), and every challenge
    /// is visible ASCII, as `HeaderValue::from_static` requires.
    #[test]
    fn refusals_are_safe_to_send() {
        let all = [
            AuthError::Missing,
            AuthError::Malformed,
            AuthError::Expired,
            AuthError::NotYetValid,
            AuthError::BadSignature,
            AuthError::WrongAlgorithm,
            AuthError::WrongIssuer,
            AuthError::WrongAudience,
            AuthError::MissingSubject,
            AuthError::Invalid,
        ];
        for error in all {
            let challenge = error.challenge();
            assert!(challenge.starts_with("Bearer"));
            assert!(
                challenge.bytes().all(|b| (0x20..0x7f).contains(&b)),
                "{challenge}"
            );
            assert!(!error.to_string().is_empty());
        }
        assert!(
            AuthError::Malformed
                .challenge()
                .contains(r#"error="invalid_request""#)
        );
    }

    /// A token minted by `mint_hs256` verifies, carrying the subject, issuer and audience given.
    #[test]
    fn mint_hs256_round_trips_through_verify() {
        let secret = Secret::new(SECRET.to_owned());
        let auth = authenticator(&AuthSettings {
            issuer: Some("intercomm-dev".to_owned()),
            audience: Some("intercomm".to_owned()),
            ..hs256_settings()
        });
        let token = mint_hs256(
            &secret,
            "bob",
            Duration::from_secs(3600),
            Some("intercomm-dev"),
            Some("intercomm"),
        )
        .expect("minting works");
        let claims = auth
            .verify_header(Some(&bearer(&token)))
            .expect("minted token verifies");
        assert_eq!(claims.sub, "bob");
        assert_eq!(claims.iss.as_deref(), Some("intercomm-dev"));
        assert_eq!(claims.aud, Some(json!("intercomm")));
        let iat = claims.iat.expect("iat is set");
        assert_eq!(claims.exp, iat + 3600);
        assert!(mint_hs256(&secret, "", Duration::from_secs(60), None, None).is_err());
    }
}
