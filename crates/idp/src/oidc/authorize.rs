//! Validation of authorization requests (OpenID Connect Core 3.1.2.1, RFC 6749 4.1.1,
//! RFC 7636), as a sequence of single-purpose checks.
//!
//! Until the client and its redirect URI are established, an error is shown on a page and never
//! redirected (an attacker must not turn Guichet into an open redirector). After that, errors go
//! back to the client's redirect URI with `error`, `state` and `iss`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::store::clients::Client;

/// Longest value accepted for any authorization parameter.
const MAX_PARAMETER_LEN: usize = 2048;
/// Prompt values understood.
const PROMPTS: [&str; 3] = ["none", "login", "consent"];

/// A validated authorization request, kept server-side in the login transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    /// PKCE S256 challenge.
    pub code_challenge: Option<String>,
    pub prompt: Vec<String>,
    /// Seconds; a session older than this must authenticate again.
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    pub ui_locales: Option<String>,
    /// How the answer travels back (OAuth 2.0 Form Post Response Mode).
    #[serde(default)]
    pub response_mode: ResponseMode,
}

/// How the authorization response reaches the client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    /// Parameters in the redirect URI's query (the default for `code`).
    #[default]
    Query,
    /// An auto-submitted HTML form POSTed to the redirect URI: the code never appears in a
    /// URL, so it stays out of browser history and server logs.
    FormPost,
}

/// The authorization response for a client: where it goes, how, and what it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientResponse {
    pub redirect_uri: String,
    pub mode: ResponseMode,
    pub params: Vec<(&'static str, String)>,
}

impl ClientResponse {
    /// The redirect URI with the parameters in its query (for [`ResponseMode::Query`]).
    pub fn location(&self) -> String {
        let pairs: Vec<(&str, &str)> = self.params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        redirect_with(&self.redirect_uri, &pairs)
    }
}

impl AuthorizationRequest {
    /// Whether `prompt` includes `value`.
    pub fn prompts(&self, value: &str) -> bool {
        self.prompt.iter().any(|p| p == value)
    }
}

/// Why a request was refused, and where the answer goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeError {
    /// Client or redirect URI not established: show a page, never redirect.
    Page {
        code: &'static str,
        description: &'static str,
    },
    /// Redirect to the client with an RFC 6749 error.
    Redirect {
        redirect_uri: String,
        mode: ResponseMode,
        state: Option<String>,
        code: &'static str,
        description: &'static str,
    },
}

/// Reads `application/x-www-form-urlencoded` parameters (query or body). Repeated parameters are
/// refused; empty ones count as absent.
pub fn parse_parameters(raw: &str) -> Result<BTreeMap<String, String>, AuthorizeError> {
    let page = |description| AuthorizeError::Page {
        code: "invalid_request",
        description,
    };
    let mut params = BTreeMap::new();
    for (key, value) in url::form_urlencoded::parse(raw.as_bytes()) {
        if key.len() > 64 || value.len() > MAX_PARAMETER_LEN {
            return Err(page("refused-parameter-too-long"));
        }
        if value.is_empty() {
            continue;
        }
        if params
            .insert(key.into_owned(), value.into_owned())
            .is_some()
        {
            return Err(page("refused-parameter-repeated"));
        }
    }
    Ok(params)
}

/// Checks the request against the client it names (`client` is the stored client with the id
/// in `client_id`, if any).
pub fn validate(
    params: &BTreeMap<String, String>,
    client: Option<&Client>,
) -> Result<AuthorizationRequest, AuthorizeError> {
    let client = check_client(params, client)?;
    let redirect_uri = check_redirect_uri(params, client)?;
    let state = params.get("state").cloned();
    let mode = check_response_mode(params);
    let fail = |code, description| AuthorizeError::Redirect {
        redirect_uri: redirect_uri.clone(),
        mode: *mode.as_ref().unwrap_or(&ResponseMode::Query),
        state: state.clone(),
        code,
        description,
    };
    let response_mode = mode.map_err(|d| fail("invalid_request", d))?;
    check_no_request_object(params).map_err(|(c, d)| fail(c, d))?;
    check_response_type(params).map_err(|(c, d)| fail(c, d))?;
    if !client
        .allowed_grants
        .iter()
        .any(|g| g == "authorization_code")
    {
        return Err(fail(
            "unauthorized_client",
            "This client may not use the authorization code flow.",
        ));
    }
    let scope = check_scope(params, client).map_err(|d| fail("invalid_scope", d))?;
    let code_challenge = check_pkce(params, client).map_err(|d| fail("invalid_request", d))?;
    let prompt = check_prompt(params).map_err(|d| fail("invalid_request", d))?;
    let max_age = check_max_age(params).map_err(|d| fail("invalid_request", d))?;
    Ok(AuthorizationRequest {
        client_id: client.id.clone(),
        redirect_uri: redirect_uri.clone(),
        scope,
        state: state.clone(),
        nonce: params.get("nonce").cloned(),
        code_challenge,
        prompt,
        max_age,
        login_hint: params.get("login_hint").cloned(),
        ui_locales: params.get("ui_locales").cloned(),
        response_mode,
    })
}

fn check_client<'c>(
    params: &BTreeMap<String, String>,
    client: Option<&'c Client>,
) -> Result<&'c Client, AuthorizeError> {
    if !params.contains_key("client_id") {
        return Err(AuthorizeError::Page {
            code: "invalid_request",
            description: "refused-no-client",
        });
    }
    match client {
        Some(c) if c.enabled => Ok(c),
        _ => Err(AuthorizeError::Page {
            code: "invalid_client",
            description: "refused-unknown-client",
        }),
    }
}

fn check_redirect_uri(
    params: &BTreeMap<String, String>,
    client: &Client,
) -> Result<String, AuthorizeError> {
    let uri = params.get("redirect_uri").ok_or(AuthorizeError::Page {
        code: "invalid_request",
        description: "refused-no-redirect",
    })?;
    // Exact string comparison: no prefix, path or query tolerance.
    if client
        .redirect_uris
        .iter()
        .any(|registered| registered == uri)
    {
        Ok(uri.clone())
    } else {
        Err(AuthorizeError::Page {
            code: "invalid_redirect_uri",
            description: "refused-redirect-unregistered",
        })
    }
}

fn check_response_mode(params: &BTreeMap<String, String>) -> Result<ResponseMode, &'static str> {
    match params.get("response_mode").map(String::as_str) {
        None | Some("query") => Ok(ResponseMode::Query),
        Some("form_post") => Ok(ResponseMode::FormPost),
        Some(_) => Err("Only response_mode=query and form_post are supported."),
    }
}

fn check_no_request_object(
    params: &BTreeMap<String, String>,
) -> Result<(), (&'static str, &'static str)> {
    if params.contains_key("request") {
        return Err((
            "request_not_supported",
            "Request objects are not supported.",
        ));
    }
    if params.contains_key("request_uri") {
        return Err(("request_uri_not_supported", "request_uri is not supported."));
    }
    Ok(())
}

fn check_response_type(
    params: &BTreeMap<String, String>,
) -> Result<(), (&'static str, &'static str)> {
    match params.get("response_type").map(String::as_str) {
        Some("code") => Ok(()),
        None => Err(("invalid_request", "response_type is required.")),
        Some(_) => Err((
            "unsupported_response_type",
            "Only response_type=code is supported.",
        )),
    }
}

fn check_scope(
    params: &BTreeMap<String, String>,
    client: &Client,
) -> Result<Vec<String>, &'static str> {
    let mut scope: Vec<String> = Vec::new();
    for s in params
        .get("scope")
        .map(String::as_str)
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
    {
        if !client.allowed_scopes.iter().any(|a| a == s) {
            return Err("A requested scope is not allowed for this portal.");
        }
        if !scope.iter().any(|x| x == s) {
            scope.push(s.to_string());
        }
    }
    if !scope.iter().any(|s| s == "openid") {
        return Err("The openid scope is required.");
    }
    Ok(scope)
}

fn check_pkce(
    params: &BTreeMap<String, String>,
    client: &Client,
) -> Result<Option<String>, &'static str> {
    let challenge = params.get("code_challenge");
    match params.get("code_challenge_method").map(String::as_str) {
        None if challenge.is_some() => {
            return Err("code_challenge_method=S256 is required (plain is not accepted).")
        }
        None | Some("S256") => {}
        Some(_) => return Err("Only code_challenge_method=S256 is accepted."),
    }
    match challenge {
        Some(c) => {
            // BASE64URL(SHA-256(verifier)) is exactly 43 characters.
            let valid = c.len() == 43
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if valid {
                Ok(Some(c.clone()))
            } else {
                Err("code_challenge is not a valid S256 challenge.")
            }
        }
        None if client.kind == "public" => Err("PKCE (code_challenge) is required."),
        None => Ok(None),
    }
}

fn check_prompt(params: &BTreeMap<String, String>) -> Result<Vec<String>, &'static str> {
    let prompt: Vec<String> = params
        .get("prompt")
        .map(String::as_str)
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if prompt.iter().any(|p| !PROMPTS.contains(&p.as_str())) {
        return Err("An unsupported prompt value was requested.");
    }
    if prompt.len() > 1 && prompt.iter().any(|p| p == "none") {
        return Err("prompt=none cannot be combined with other values.");
    }
    Ok(prompt)
}

fn check_max_age(params: &BTreeMap<String, String>) -> Result<Option<i64>, &'static str> {
    params
        .get("max_age")
        .map(|v| {
            v.parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or("max_age must be a non-negative number of seconds.")
        })
        .transpose()
}

/// Where to send the person back: `redirect_uri` with the given parameters added to its query
/// (existing query parameters of a registered URI are kept).
pub fn redirect_with(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    match url::Url::parse(redirect_uri) {
        Ok(mut url) => {
            {
                let mut query = url.query_pairs_mut();
                for (k, v) in params {
                    query.append_pair(k, v);
                }
            }
            url.to_string()
        }
        Err(_) => redirect_uri.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(kind: &str) -> Client {
        let t = crate::store::now();
        Client {
            id: "portal".into(),
            name: "Portal".into(),
            kind: kind.into(),
            secret_hash: (kind == "confidential").then(|| vec![0; 32]),
            redirect_uris: vec!["https://portal.example.org/callback".into()],
            post_logout_redirect_uris: vec![],
            backchannel_logout_uri: None,
            allowed_scopes: vec!["openid".into(), "email".into(), "profile".into()],
            allowed_grants: vec!["authorization_code".into()],
            id_token_alg: "RS256".into(),
            first_party: true,
            first_factor: "password".into(),
            required_level: "mfa".into(),
            enabled: true,
            created_at: t,
            updated_at: t,
            jwks: None,
        }
    }

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn params(extra: &str) -> BTreeMap<String, String> {
        let base = format!(
            "client_id=portal&redirect_uri=https%3A%2F%2Fportal.example.org%2Fcallback\
             &response_type=code&scope=openid+email&state=xyz&nonce=n1\
             &code_challenge={CHALLENGE}&code_challenge_method=S256{extra}"
        );
        parse_parameters(&base).expect("parse")
    }

    fn redirect_code(result: Result<AuthorizationRequest, AuthorizeError>) -> &'static str {
        match result {
            Err(AuthorizeError::Redirect { code, state, .. }) => {
                assert_eq!(state.as_deref(), Some("xyz"), "state travels back");
                code
            }
            other => panic!("expected a redirect error, got {other:?}"),
        }
    }

    #[test]
    fn valid_request() {
        let req = validate(
            &params("&prompt=login&max_age=300"),
            Some(&client("public")),
        )
        .expect("valid");
        assert_eq!(req.scope, vec!["openid", "email"]);
        assert_eq!(req.code_challenge.as_deref(), Some(CHALLENGE));
        assert!(req.prompts("login"));
        assert_eq!(req.max_age, Some(300));
        assert_eq!(req.nonce.as_deref(), Some("n1"));
    }

    #[test]
    fn unknown_client_or_redirect_uri_never_redirects() {
        let p = params("");
        assert!(matches!(
            validate(&p, None),
            Err(AuthorizeError::Page {
                code: "invalid_client",
                ..
            })
        ));
        let mut disabled = client("public");
        disabled.enabled = false;
        assert!(matches!(
            validate(&p, Some(&disabled)),
            Err(AuthorizeError::Page { .. })
        ));
        for uri in [
            "https://evil.example.org/callback",
            "https://portal.example.org/callback/extra",
            "https://portal.example.org/callback?x=1",
            "https://portal.example.org/Callback",
            "https://portal.example.org/callback#f",
        ] {
            let mut p = params("");
            p.insert("redirect_uri".into(), uri.into());
            assert!(
                matches!(
                    validate(&p, Some(&client("public"))),
                    Err(AuthorizeError::Page {
                        code: "invalid_redirect_uri",
                        ..
                    })
                ),
                "{uri}"
            );
        }
        let mut p = params("");
        p.remove("redirect_uri");
        assert!(matches!(
            validate(&p, Some(&client("public"))),
            Err(AuthorizeError::Page { .. })
        ));
        let mut p = params("");
        p.remove("client_id");
        assert!(matches!(
            validate(&p, Some(&client("public"))),
            Err(AuthorizeError::Page { .. })
        ));
    }

    #[test]
    fn errors_after_the_redirect_uri_redirect_with_state() {
        let c = client("public");
        let cases: Vec<(BTreeMap<String, String>, &str)> = vec![
            (params("&response_mode=fragment"), "invalid_request"),
            (params("&request=eyJ"), "request_not_supported"),
            (params("&request_uri=urn%3Ax"), "request_uri_not_supported"),
            (params("&prompt=none+login"), "invalid_request"),
            (params("&prompt=select_account"), "invalid_request"),
            (params("&max_age=-1"), "invalid_request"),
            (params("&max_age=soon"), "invalid_request"),
        ];
        for (p, expected) in cases {
            assert_eq!(redirect_code(validate(&p, Some(&c))), expected);
        }
        let mut p = params("");
        p.insert("response_type".into(), "token".into());
        assert_eq!(
            redirect_code(validate(&p, Some(&c))),
            "unsupported_response_type"
        );
        p.remove("response_type");
        assert_eq!(redirect_code(validate(&p, Some(&c))), "invalid_request");
        let mut p = params("");
        p.insert("scope".into(), "email".into());
        assert_eq!(
            redirect_code(validate(&p, Some(&c))),
            "invalid_scope",
            "openid required"
        );
        p.insert("scope".into(), "openid admin".into());
        assert_eq!(redirect_code(validate(&p, Some(&c))), "invalid_scope");
        let mut no_grant = client("confidential");
        no_grant.allowed_grants = vec!["client_credentials".into()];
        assert_eq!(
            redirect_code(validate(&params(""), Some(&no_grant))),
            "unauthorized_client"
        );
    }

    #[test]
    fn pkce_rules() {
        let public = client("public");
        let confidential = client("confidential");
        let mut p = params("");
        p.insert("code_challenge_method".into(), "plain".into());
        assert_eq!(
            redirect_code(validate(&p, Some(&confidential))),
            "invalid_request",
            "plain refused"
        );
        let mut p = params("");
        p.remove("code_challenge_method");
        assert_eq!(
            redirect_code(validate(&p, Some(&confidential))),
            "invalid_request",
            "method required"
        );
        let mut p = params("");
        p.remove("code_challenge");
        p.remove("code_challenge_method");
        assert_eq!(
            redirect_code(validate(&p, Some(&public))),
            "invalid_request",
            "public clients need PKCE"
        );
        assert_eq!(
            validate(&p, Some(&confidential))
                .expect("optional")
                .code_challenge,
            None
        );
        let mut p = params("");
        p.insert("code_challenge".into(), "short".into());
        assert_eq!(
            redirect_code(validate(&p, Some(&public))),
            "invalid_request"
        );
    }

    #[test]
    fn parameter_parsing() {
        assert!(matches!(
            parse_parameters("a=1&a=2"),
            Err(AuthorizeError::Page { .. })
        ));
        let long = format!("state={}", "x".repeat(3000));
        assert!(matches!(
            parse_parameters(&long),
            Err(AuthorizeError::Page { .. })
        ));
        assert!(!parse_parameters("%FF=%FE&empty=")
            .expect("odd bytes")
            .contains_key("empty"));
    }

    #[test]
    fn redirects_keep_registered_query() {
        assert_eq!(
            redirect_with(
                "https://p.example.org/cb?portal=1",
                &[("code", "a b"), ("state", "s")]
            ),
            "https://p.example.org/cb?portal=1&code=a+b&state=s"
        );
    }
}
