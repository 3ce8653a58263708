//! The token endpoint's service: parameter parsing, client authentication, the grants.
//!
//! It serves `authorization_code` (with PKCE), `refresh_token` and `client_credentials`; other
//! grants answer `unsupported_grant_type`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::app::AppState;
use crate::audit::RequestOrigin;
use crate::config::Settings;
use crate::error::Error;
use crate::oidc::clients::{authenticate_client, is_confidential, ClientCredentials};
use crate::oidc::error::OAuthError;
use crate::oidc::flow::{
    code_hash, family_of_code, new_refresh_token, pkce_matches, random_token, refresh_hash,
};
use crate::oidc::keys::{SigningAlg, SigningKey, SigningKeyRing};
use crate::store::audit::{self, NewAuditEvent};
use crate::store::authorization_codes::{self, Redemption};
use crate::store::clients::Client;
use crate::store::refresh_tokens;

use crate::store::{now, users};

/// Longest value accepted for any parameter.
const MAX_PARAMETER_LEN: usize = 4096;
/// Scopes that only make sense with a signed-in person.
const USER_SCOPES: [&str; 5] = ["openid", "profile", "email", "offline_access", "phone"];

/// What the HTTP layer extracted from a token request.
#[derive(Debug, Default)]
pub struct TokenInput {
    /// Whether the body was declared `application/x-www-form-urlencoded`.
    pub form_encoded: bool,
    pub authorization: Option<String>,
    pub body: Vec<u8>,
    pub origin: RequestOrigin,
}

/// A successful token response (RFC 6749 section 5.1).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scope: String,
}

/// Claims of a JWT access token (RFC 9068).
#[derive(Debug, Serialize)]
struct AccessTokenClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
    iat: i64,
    jti: &'a str,
    client_id: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    scope: &'a str,
}

/// Decodes an `application/x-www-form-urlencoded` body. Repeated parameters are refused and
/// empty ones count as absent (RFC 6749 section 3.1).
pub fn parse_form(body: &[u8]) -> Result<BTreeMap<String, String>, OAuthError> {
    let mut params = BTreeMap::new();
    for (key, value) in url::form_urlencoded::parse(body) {
        if key.len() > 64 || value.len() > MAX_PARAMETER_LEN {
            return Err(OAuthError::invalid_request("A parameter is too long."));
        }
        if value.is_empty() {
            continue;
        }
        if params
            .insert(key.into_owned(), value.into_owned())
            .is_some()
        {
            return Err(OAuthError::invalid_request("A parameter is repeated."));
        }
    }
    Ok(params)
}

/// The scopes a `client_credentials` token gets: those asked for, each allowed to the client,
/// or by default every allowed scope that needs no person.
pub fn client_credentials_scopes(
    client: &Client,
    requested: Option<&str>,
) -> Result<Vec<String>, OAuthError> {
    if !is_confidential(client) {
        return Err(OAuthError::unauthorized_client(
            "Only confidential clients may use client_credentials.",
        ));
    }
    if !client
        .allowed_grants
        .iter()
        .any(|g| g == "client_credentials")
    {
        return Err(OAuthError::unauthorized_client(
            "This client is not allowed to use client_credentials.",
        ));
    }
    match requested {
        None => Ok(client
            .allowed_scopes
            .iter()
            .filter(|s| !USER_SCOPES.contains(&s.as_str()))
            .cloned()
            .collect()),
        Some(text) => {
            let mut granted: Vec<String> = Vec::new();
            for scope in text.split(' ').filter(|s| !s.is_empty()) {
                if USER_SCOPES.contains(&scope) {
                    return Err(OAuthError::invalid_scope(
                        "User scopes cannot be granted without a signed-in person.",
                    ));
                }
                if !client.allowed_scopes.iter().any(|s| s == scope) {
                    return Err(OAuthError::invalid_scope(
                        "A requested scope is not allowed for this client.",
                    ));
                }
                if !granted.iter().any(|s| s == scope) {
                    granted.push(scope.to_string());
                }
            }
            Ok(granted)
        }
    }
}

/// Handles one token request.
pub async fn exchange(state: &AppState, input: TokenInput) -> Result<TokenResponse, Error> {
    if !input.form_encoded {
        return Err(OAuthError::invalid_request(
            "The body must be application/x-www-form-urlencoded.",
        )
        .into());
    }
    let params = parse_form(&input.body)?;
    let credentials = ClientCredentials::from_request(input.authorization.as_deref(), &params)?;
    let grant_type = params
        .get("grant_type")
        .ok_or(OAuthError::invalid_request("grant_type is required."))?;
    if grant_type == "client_credentials" {
        return client_credentials(state, credentials, &params, input).await;
    }
    let client = authenticated_client(state, &credentials).await?;
    match grant_type.as_str() {
        "authorization_code" => authorization_code(state, client, &params, input).await,
        "refresh_token" => refresh_token(state, client, &params, input).await,
        _ => Err(OAuthError::unsupported_grant_type(
            "This grant type is not supported by this server.",
        )
        .into()),
    }
}

/// Whether `client`'s tokens are signed with RSA. An RSA signature takes most of a
/// millisecond, so it runs on the blocking pool; ES256 and EdDSA take microseconds and stay on
/// the HTTP worker.
fn signs_with_rsa(client: &Client) -> bool {
    client.id_token_alg == SigningAlg::Rs256.as_str()
}

/// The client credentials grant (RFC 6749 section 4.4). RSA signatures run on the blocking
/// pool ([`signs_with_rsa`]).
async fn client_credentials(
    state: &AppState,
    credentials: ClientCredentials,
    params: &BTreeMap<String, String>,
    input: TokenInput,
) -> Result<TokenResponse, Error> {
    let client = authenticated_client(state, &credentials).await?;
    let scope =
        client_credentials_scopes(&client, params.get("scope").map(String::as_str))?.join(" ");
    let access = if signs_with_rsa(&client) {
        let (keys, settings, signing, scope) = (
            state.keys.clone(),
            state.settings.clone(),
            client.clone(),
            scope.clone(),
        );
        tokio::task::spawn_blocking(move || {
            issue_access_token(&keys, &settings, &signing, &signing.id, &scope)
        })
        .await
        .map_err(|_| crate::store::StoreError::Cancelled)??
    } else {
        issue_access_token(&state.keys, &state.settings, &client, &client.id, &scope)?
    };
    let (access_token, jti, signer, ttl) =
        (access.token, access.jti, access.signer, access.expires_in);

    let event = audit_event(
        "token.issued",
        &client.id,
        Some(format!("client:{}", client.id)),
        &input.origin,
        serde_json::json!({
            "grant_type": "client_credentials",
            "token": "access",
            "jti": jti,
            "kid": signer.kid(),
            "scope": scope,
        }),
    );
    state.audit.record(event).await?;

    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: ttl,
        refresh_token: None,
        id_token: None,
        scope,
    })
}

/// Exchanges an authorization code (RFC 6749 4.1.3, RFC 7636 4.6). Redemption, the person's
/// lookup, both signatures, the refresh token and the audit row happen in one blocking call and
/// one transaction: a failure after the code is spent leaves nothing half-issued.
async fn authorization_code(
    state: &AppState,
    client: Client,
    params: &BTreeMap<String, String>,
    input: TokenInput,
) -> Result<TokenResponse, Error> {
    if !client
        .allowed_grants
        .iter()
        .any(|g| g == "authorization_code")
    {
        return Err(OAuthError::unauthorized_client(
            "This client is not allowed to use authorization_code.",
        )
        .into());
    }
    let code = params
        .get("code")
        .ok_or(OAuthError::invalid_request("code is required."))?;
    let redirect_uri = params
        .get("redirect_uri")
        .ok_or(OAuthError::invalid_request("redirect_uri is required."))?
        .clone();
    let verifier = params.get("code_verifier").cloned();
    let hash = code_hash(&state.hasher, code);
    let hasher = state.hasher.clone();
    let keys = state.keys.clone();
    let settings = state.settings.clone();
    let refresh_lifetime = refresh_ttl(state);
    let origin = input.origin;
    state
        .store
        .run(move |conn| {
            crate::store::write_transaction(conn, |conn| {
                exchange_code(
                    conn,
                    &CodeExchange {
                        hasher: &hasher,
                        keys: &keys,
                        settings: &settings,
                        client: &client,
                        code_hash: &hash,
                        redirect_uri: &redirect_uri,
                        verifier: verifier.as_deref(),
                        refresh_ttl: refresh_lifetime,
                        origin: &origin,
                    },
                )
            })
        })
        .await?
}

/// What [`exchange_code`] needs.
struct CodeExchange<'a> {
    hasher: &'a crate::crypto::KeyedHasher,
    keys: &'a SigningKeyRing,
    settings: &'a Settings,
    client: &'a Client,
    code_hash: &'a [u8],
    redirect_uri: &'a str,
    verifier: Option<&'a str>,
    refresh_ttl: chrono::Duration,
    origin: &'a RequestOrigin,
}

/// The code exchange inside its transaction. An OAuth refusal is `Ok(Err(..))` so that what it
/// wrote (a spent code, a revoked family) is committed; a storage failure rolls everything back.
fn exchange_code(
    conn: &mut crate::store::DbConnection,
    x: &CodeExchange<'_>,
) -> Result<Result<TokenResponse, Error>, crate::store::StoreError> {
    const BAD_CODE: OAuthError =
        OAuthError::invalid_grant("The authorization code is invalid, expired or already used.");
    let client = x.client;
    let record = match authorization_codes::redeem(conn, x.code_hash, now())? {
        Redemption::Redeemed(record) => record,
        Redemption::Replayed(record) => {
            // A second use means the code leaked: revoke what its first use issued.
            let family = family_of_code(&record.code_hash);
            refresh_tokens::revoke_family(conn, &family, now())?;
            audit::append(
                conn,
                &audit_event(
                    "token.code_replayed",
                    &client.id,
                    Some(record.user_id.clone()),
                    x.origin,
                    serde_json::json!({ "session": record.session_id }),
                ),
            )?;
            return Ok(Err(BAD_CODE.into()));
        }
        Redemption::Expired | Redemption::Unknown => return Ok(Err(BAD_CODE.into())),
    };
    if record.client_id != client.id || record.redirect_uri != x.redirect_uri {
        return Ok(Err(BAD_CODE.into()));
    }
    match (&record.code_challenge, x.verifier) {
        (Some(challenge), Some(v)) if pkce_matches(v, challenge) => {}
        (None, None) => {}
        _ => {
            return Ok(Err(OAuthError::invalid_grant(
                "The PKCE code_verifier does not match.",
            )
            .into()))
        }
    }
    let Some(user) = users::find_by_id(conn, &record.user_id)?.filter(|u| !u.disabled) else {
        return Ok(Err(BAD_CODE.into()));
    };
    let access = match issue_access_token(x.keys, x.settings, client, &user.id, &record.scope) {
        Ok(a) => a,
        Err(e) => return Ok(Err(e)),
    };
    let issuer = x.settings.issuer();
    let id_ttl = i64::try_from(x.settings.tokens.id_token_ttl_secs).unwrap_or(600);
    let id_claims = crate::oidc::id_token::claims(
        &issuer,
        &client.id,
        &user,
        &record,
        access.signer.alg(),
        &access.token,
        access.issued_at,
        id_ttl,
    );
    let id_token = match access.signer.sign_jwt("JWT", &id_claims) {
        Ok(t) => t,
        Err(e) => return Ok(Err(e.into())),
    };
    let refresh = client
        .allowed_grants
        .iter()
        .any(|g| g == "refresh_token")
        .then(|| {
            new_refresh_token(
                x.hasher,
                &family_of_code(&record.code_hash),
                &client.id,
                &user.id,
                Some(&record.session_id),
                &record.scope,
                now(),
                x.refresh_ttl,
            )
        });
    audit::append(
        conn,
        &audit_event(
            "token.issued",
            &client.id,
            Some(user.id.clone()),
            x.origin,
            serde_json::json!({
                "grant_type": "authorization_code",
                "tokens": if refresh.is_some() { vec!["access", "id", "refresh"] } else { vec!["access", "id"] },
                "jti": access.jti,
                "kid": access.signer.kid(),
                "sid": record.session_id,
                "scope": record.scope,
            }),
        ),
    )?;
    let (refresh_token, refresh_record) = refresh.unzip();
    if let Some(r) = &refresh_record {
        refresh_tokens::insert(conn, r)?;
    }
    Ok(Ok(TokenResponse {
        access_token: access.token,
        token_type: "Bearer",
        expires_in: access.expires_in,
        refresh_token,
        id_token: Some(id_token),
        scope: record.scope,
    }))
}

fn refresh_ttl(state: &AppState) -> chrono::Duration {
    chrono::Duration::seconds(
        i64::try_from(state.settings.tokens.refresh_token_ttl_secs).unwrap_or(28_800),
    )
}

/// An access token just signed, with what the answer and the audit row need.
struct IssuedAccessToken {
    token: String,
    jti: String,
    signer: std::sync::Arc<SigningKey>,
    issued_at: i64,
    expires_in: u64,
}

/// Signs an RFC 9068 access token for `subject`, with the client's algorithm.
fn issue_access_token(
    keys: &SigningKeyRing,
    settings: &Settings,
    client: &Client,
    subject: &str,
    scope: &str,
) -> Result<IssuedAccessToken, Error> {
    let alg = SigningAlg::parse(&client.id_token_alg).unwrap_or(SigningAlg::Rs256);
    let signer = keys.signer(alg)?;
    let issuer = settings.issuer();
    let issued_at = chrono::Utc::now().timestamp();
    let expires_in = settings.tokens.access_token_ttl_secs;
    let jti = uuid::Uuid::new_v4().to_string();
    let token = signer.sign_jwt(
        "at+jwt",
        &AccessTokenClaims {
            iss: &issuer,
            sub: subject,
            aud: &issuer,
            exp: issued_at + i64::try_from(expires_in).unwrap_or(600),
            iat: issued_at,
            jti: &jti,
            client_id: &client.id,
            scope,
        },
    )?;
    Ok(IssuedAccessToken {
        token,
        jti,
        signer,
        issued_at,
        expires_in,
    })
}

/// The answer of a refresh, sealed on the old token so that a retry within the grace window
/// gets it again.
#[derive(Serialize, serde::Deserialize)]
struct RetryAnswer {
    access_token: String,
    refresh_token: String,
    jti: String,
    issued_at: i64,
    expires_in: u64,
    scope: String,
}

/// What using a refresh token found.
#[expect(
    clippy::large_enum_variant,
    reason = "made once per request and moved once"
)]
enum RefreshOutcome {
    /// Checked and signed: the rotation itself is still to be written.
    Ready {
        user_id: String,
        answer: RetryAnswer,
        kid: String,
        family: String,
        old_hash: Vec<u8>,
        successor: refresh_tokens::RefreshTokenRecord,
        sealed: Option<Vec<u8>>,
        at: chrono::NaiveDateTime,
    },
    /// The same token again within the grace window, its successor still unused: the same
    /// answer as the first time.
    Retried {
        user_id: String,
        answer: RetryAnswer,
        family: String,
    },
    /// An already rotated token came back: the family is revoked.
    Reused {
        user_id: String,
        family: String,
    },
    Invalid,
}

fn retry_context(old_hash: &[u8]) -> Vec<u8> {
    [b"refresh_retry:".as_slice(), old_hash].concat()
}

/// Refreshes (RFC 6749 section 6): every use rotates the token; reusing an old one revokes
/// the whole family (OAuth 2.0 Security BCP 4.14.2), except for a retry within the configured
/// grace window while the new token is still unused. Lookup, checks and signing only read:
/// they run through `Store::read` (on the HTTP worker when SQLite has an idle connection),
/// or on the blocking pool for RSA. The rotation, or the revocation of a reused token's
/// family, is then written with its audit event, committed together (`AuditLog::write`). The
/// rotation's conditional update is what decides between two concurrent uses. On PostgreSQL,
/// with no grace window and no `scope` parameter, the token is spent first, in a batch
/// ([`refresh_without_reading`]); this path then only answers the uses that spent nothing.
async fn refresh_token(
    state: &AppState,
    client: Client,
    params: &BTreeMap<String, String>,
    input: TokenInput,
) -> Result<TokenResponse, Error> {
    if !client.allowed_grants.iter().any(|g| g == "refresh_token") {
        return Err(OAuthError::unauthorized_client(
            "This client is not allowed to use refresh_token.",
        )
        .into());
    }
    let presented = params
        .get("refresh_token")
        .ok_or(OAuthError::invalid_request("refresh_token is required."))?;
    let requested_scope = params.get("scope").cloned();
    let old_hash = refresh_hash(&state.hasher, presented);
    let hasher = state.hasher.clone();
    let master_key = state.master_key.clone();
    let keys = state.keys.clone();
    let settings = state.settings.clone();
    let grace =
        chrono::Duration::seconds(i64::try_from(settings.tokens.refresh_grace_secs).unwrap_or(0));
    let ttl = refresh_ttl(state);
    let spends_first = grace <= chrono::Duration::zero() && requested_scope.is_none();
    if let Some(spender) = state.refresh_spender.as_ref().filter(|_| spends_first) {
        if let Some(answer) =
            refresh_without_reading(state, spender, &client, old_hash.clone(), ttl, &input).await?
        {
            return Ok(refreshed(answer));
        }
        // Nothing was spent: the path below tells an invalid or reused token apart.
    }
    let signing_client = client.clone();
    // Only reads and signing: on the HTTP worker when SQLite has an idle connection, except
    // for RSA ([`signs_with_rsa`]).
    let on_worker = !signs_with_rsa(&client);
    let check = move |conn: &mut crate::store::DbConnection| {
        let at = now();
        let Some((old, holder_active)) = refresh_tokens::find_with_holder(conn, &old_hash)? else {
            return Ok(Ok(RefreshOutcome::Invalid));
        };
        if old.client_id != signing_client.id || old.revoked_at.is_some() || old.expires_at <= at {
            return Ok(Ok(RefreshOutcome::Invalid));
        }
        if let Some(rotated_at) = old.rotated_at {
            if rotated_at + grace >= at {
                let answer = old
                    .retry_response_enc
                    .as_deref()
                    .and_then(|sealed| {
                        master_key
                            .open(sealed, &retry_context(&old.token_hash))
                            .ok()
                    })
                    .and_then(|plain| serde_json::from_slice::<RetryAnswer>(&plain).ok());
                if let Some(answer) = answer {
                    let successor_hash = refresh_hash(&hasher, &answer.refresh_token);
                    let successor_unused = refresh_tokens::find(conn, &successor_hash)?
                        .is_some_and(|s| s.rotated_at.is_none() && s.revoked_at.is_none());
                    if successor_unused {
                        return Ok(Ok(RefreshOutcome::Retried {
                            user_id: old.user_id,
                            answer,
                            family: old.family_id,
                        }));
                    }
                }
            }
            // The family is revoked below, with the event, in one write.
            return Ok(Ok(RefreshOutcome::Reused {
                user_id: old.user_id,
                family: old.family_id,
            }));
        }
        let scope = match requested_scope {
            Some(asked) => {
                let granted: Vec<&str> = old.scope.split(' ').collect();
                if asked
                    .split(' ')
                    .filter(|s| !s.is_empty())
                    .any(|s| !granted.contains(&s))
                {
                    return Ok(Err(OAuthError::invalid_scope(
                        "A refresh cannot widen the granted scope.",
                    )
                    .into()));
                }
                asked
            }
            None => old.scope.clone(),
        };
        if !holder_active {
            return Ok(Ok(RefreshOutcome::Invalid));
        }
        // The successor keeps the original grant's scope, so a narrower access token now
        // does not shrink later refreshes.
        let (token, successor) = new_refresh_token(
            &hasher,
            &old.family_id,
            &old.client_id,
            &old.user_id,
            old.session_id.as_deref(),
            &old.scope,
            at,
            ttl,
        );
        let access =
            match issue_access_token(&keys, &settings, &signing_client, &old.user_id, &scope) {
                Ok(a) => a,
                Err(e) => return Ok(Err(e)),
            };
        let answer = RetryAnswer {
            access_token: access.token,
            refresh_token: token,
            jti: access.jti,
            issued_at: access.issued_at,
            expires_in: access.expires_in,
            scope,
        };
        let sealed = if grace > chrono::Duration::zero() {
            let plain = serde_json::to_vec(&answer)
                .map_err(|e| crate::store::StoreError::Corrupt(e.to_string()))?;
            Some(
                master_key
                    .seal(&plain, &retry_context(&old.token_hash))
                    .map_err(|e| crate::store::StoreError::Corrupt(e.to_string()))?,
            )
        } else {
            None
        };
        Ok(Ok(RefreshOutcome::Ready {
            user_id: old.user_id,
            answer,
            kid: access.signer.kid().to_string(),
            family: old.family_id,
            old_hash: old.token_hash,
            successor,
            sealed,
            at,
        }))
    };
    let outcome = if on_worker {
        state.store.read(check).await??
    } else {
        state.store.run(check).await??
    };
    const BAD_TOKEN: OAuthError =
        OAuthError::invalid_grant("The refresh token is invalid, expired or revoked.");
    let reused_event = |user_id: String, family: &str| {
        audit_event(
            "token.refresh_reused",
            &client.id,
            Some(user_id),
            &input.origin,
            serde_json::json!({ "family": family }),
        )
    };
    let answer = match outcome {
        RefreshOutcome::Ready {
            user_id,
            answer,
            kid,
            family,
            old_hash,
            successor,
            sealed,
            at,
        } => {
            let refreshed = audit_event(
                "token.refreshed",
                &client.id,
                Some(user_id.clone()),
                &input.origin,
                serde_json::json!({ "jti": answer.jti, "kid": kid, "family": family, "scope": answer.scope }),
            );
            let reused = reused_event(user_id, &family);
            // One statement on PostgreSQL (the rotation); when it finds the token spent,
            // the family's revocation is the only write.
            let rotated = state
                .audit
                .write_statement(move |conn| {
                    if refresh_tokens::rotate(conn, &old_hash, &successor, sealed.as_deref(), at)? {
                        return Ok((true, Some(refreshed)));
                    }
                    // Used concurrently by someone else: treat as reuse.
                    refresh_tokens::revoke_family(conn, &family, at)?;
                    Ok((false, Some(reused)))
                })
                .await?;
            if !rotated {
                return Err(BAD_TOKEN.into());
            }
            answer
        }
        RefreshOutcome::Retried {
            user_id,
            answer,
            family,
        } => {
            let event = audit_event(
                "token.refresh_retried",
                &client.id,
                Some(user_id),
                &input.origin,
                serde_json::json!({ "jti": answer.jti, "family": family }),
            );
            state.audit.record(event).await?;
            answer
        }
        RefreshOutcome::Reused { user_id, family } => {
            let event = reused_event(user_id, &family);
            state
                .audit
                .write(move |conn| {
                    refresh_tokens::revoke_family(conn, &family, now())?;
                    Ok(((), Some(event)))
                })
                .await?;
            return Err(BAD_TOKEN.into());
        }
        RefreshOutcome::Invalid => return Err(BAD_TOKEN.into()),
    };
    Ok(refreshed(answer))
}

/// The answer to a refresh; a retried one counts its lifetime from the first answer.
fn refreshed(answer: RetryAnswer) -> TokenResponse {
    let elapsed = u64::try_from(chrono::Utc::now().timestamp() - answer.issued_at).unwrap_or(0);
    TokenResponse {
        access_token: answer.access_token,
        token_type: "Bearer",
        expires_in: answer.expires_in.saturating_sub(elapsed),
        refresh_token: Some(answer.refresh_token),
        id_token: None,
        scope: answer.scope,
    }
}

/// The usual refresh on PostgreSQL (no retry window, the granted scope kept), without reading
/// first: the token is spent and its successor stored by one statement, shared with the other
/// refreshes of the moment ([`RefreshSpender`]); then the access token is signed and the event
/// recorded. `None` when nothing was spent.
///
/// Signing comes after the token is spent: should it fail, the successor is never handed out,
/// and the client's next use of the old token is reuse, as after an answer lost on the way
/// (with a grace window of 0, the default, that revokes the family either way).
///
/// [`RefreshSpender`]: crate::oidc::refresh_spender::RefreshSpender
async fn refresh_without_reading(
    state: &AppState,
    spender: &crate::oidc::refresh_spender::RefreshSpender,
    client: &Client,
    old_hash: Vec<u8>,
    ttl: chrono::Duration,
    input: &TokenInput,
) -> Result<Option<RetryAnswer>, Error> {
    let token = random_token();
    let spend = refresh_tokens::Spend {
        old_hash,
        client_id: client.id.clone(),
        successor_hash: refresh_hash(&state.hasher, &token),
        expires_at: now() + ttl,
    };
    let Some(spent) = spender.spend(spend).await? else {
        return Ok(None);
    };
    let keys = state.keys.clone();
    let settings = state.settings.clone();
    let signing_client = client.clone();
    let sign = move || {
        issue_access_token(
            &keys,
            &settings,
            &signing_client,
            &spent.user_id,
            &spent.scope,
        )
        .map(|access| (access, spent))
    };
    let (access, spent) = if signs_with_rsa(client) {
        tokio::task::spawn_blocking(sign)
            .await
            .map_err(|_| crate::store::StoreError::Cancelled)??
    } else {
        sign()?
    };
    let event = audit_event(
        "token.refreshed",
        &client.id,
        Some(spent.user_id),
        &input.origin,
        serde_json::json!({
            "jti": access.jti,
            "kid": access.signer.kid(),
            "family": spent.family_id,
            "scope": spent.scope,
        }),
    );
    state.audit.record(event).await?;
    Ok(Some(RetryAnswer {
        access_token: access.token,
        refresh_token: token,
        jti: access.jti,
        issued_at: access.issued_at,
        expires_in: access.expires_in,
        scope: spent.scope,
    }))
}

/// An audit event of a client's request: the client is the actor.
pub(crate) fn audit_event(
    event_type: &str,
    client_id: &str,
    subject: Option<String>,
    origin: &RequestOrigin,
    detail: serde_json::Value,
) -> NewAuditEvent {
    origin.event(
        event_type,
        Some(format!("client:{client_id}")),
        subject,
        Some(client_id),
        &detail,
    )
}

/// What the `aud` of a client assertion may name: the issuer or the endpoint it is sent to
/// (RFC 7523 section 3; OpenID Connect Core section 9).
pub(crate) fn assertion_audiences(issuer: &str) -> Vec<String> {
    ["", "/token", "/revoke", "/introspect"]
        .iter()
        .map(|path| format!("{issuer}{path}"))
        .collect()
}

/// The client behind `credentials`, authenticated, or `invalid_client`.
pub(crate) async fn authenticated_client(
    state: &AppState,
    credentials: &ClientCredentials,
) -> Result<Client, Error> {
    // A client read in the last few seconds is authenticated from memory, without a trip to
    // the blocking pool. A refusal from memory is checked against the database: the client
    // may have changed since (a secret rotated elsewhere is good at once). An assertion's jti
    // must be recorded, which needs the database anyway.
    if !matches!(credentials, ClientCredentials::Assertion { .. }) {
        if let Some(client) = state.client_cache.get(credentials.client_id()) {
            if let Ok(client) =
                crate::oidc::clients::authenticate(Some(client), credentials, &state.hasher)
            {
                return Ok(client);
            }
        }
    }
    let credentials = credentials.clone();
    let hasher = state.hasher.clone();
    let audiences = assertion_audiences(&state.settings.issuer());
    let client = state
        .store
        .run(move |conn| authenticate_client(conn, &credentials, &hasher, &audiences, now()))
        .await??;
    state.client_cache.put(&client);
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(kind: &str, grants: &[&str], scopes: &[&str]) -> Client {
        let t = now();
        Client {
            id: "svc".into(),
            name: "Service".into(),
            kind: kind.into(),
            secret_hash: Some(vec![0; 32]),
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            backchannel_logout_uri: None,
            allowed_scopes: scopes.iter().map(|s| s.to_string()).collect(),
            allowed_grants: grants.iter().map(|s| s.to_string()).collect(),
            id_token_alg: "ES256".into(),
            first_party: false,
            first_factor: "password".into(),
            required_level: "mfa".into(),
            enabled: true,
            created_at: t,
            updated_at: t,
            jwks: None,
        }
    }

    #[test]
    fn form_parsing_rules() {
        let p = parse_form(b"grant_type=client_credentials&scope=a+b&empty=").expect("parse");
        assert_eq!(p.get("scope").map(String::as_str), Some("a b"));
        assert!(!p.contains_key("empty"), "empty values count as absent");
        assert_eq!(
            parse_form(b"a=1&a=2").expect_err("repeat").code,
            "invalid_request"
        );
        let long = format!("scope={}", "x".repeat(5000));
        assert_eq!(
            parse_form(long.as_bytes()).expect_err("long").code,
            "invalid_request"
        );
        assert!(parse_form(b"%FF%FE=%00").is_ok(), "odd bytes never panic");
    }

    #[test]
    fn client_credentials_scope_rules() {
        let c = client(
            "confidential",
            &["client_credentials"],
            &["openid", "members.read", "members.write"],
        );
        assert_eq!(
            client_credentials_scopes(&c, None).expect("default"),
            vec!["members.read", "members.write"]
        );
        assert_eq!(
            client_credentials_scopes(&c, Some("members.read members.read")).expect("dedup"),
            vec!["members.read"]
        );
        assert_eq!(
            client_credentials_scopes(&c, Some("openid"))
                .expect_err("user scope")
                .code,
            "invalid_scope"
        );
        assert_eq!(
            client_credentials_scopes(&c, Some("admin"))
                .expect_err("unknown")
                .code,
            "invalid_scope"
        );
        let no_grant = client("confidential", &["authorization_code"], &["members.read"]);
        assert_eq!(
            client_credentials_scopes(&no_grant, None)
                .expect_err("grant")
                .code,
            "unauthorized_client"
        );
        let public = client("public", &["client_credentials"], &["members.read"]);
        assert_eq!(
            client_credentials_scopes(&public, None)
                .expect_err("public")
                .code,
            "unauthorized_client"
        );
    }
}
