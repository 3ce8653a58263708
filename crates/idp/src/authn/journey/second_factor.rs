//! The second factor at sign-in, and "Send a new code".

use super::*;

/// The code form.
pub struct CodeForm {
    pub code: String,
}

/// The second factor at sign-in: the authenticator app's code or the emailed code.
pub async fn submit_second_factor(
    state: &AppState,
    token: Option<String>,
    submission: Submission,
    form: CodeForm,
) -> Result<JourneyOutcome, Error> {
    let loaded = match load_for(state, token, &submission, &[STEP_SECOND_FACTOR]).await? {
        Ok(l) => l,
        Err(outcome) => return Ok(outcome),
    };
    let Some(user) = loaded.user.clone() else {
        return Ok(expired(Some(&loaded), &submission.hints));
    };
    let policy = LockoutPolicy::of(&state.policy.get());
    let account_key = lockout::account_key(&state.hasher, &user.email);
    let kind = match user.mfa_method {
        MfaMethod::Totp => CodeKind::Totp,
        MfaMethod::Email => CodeKind::SignInEmail,
        MfaMethod::None => return Ok(JourneyOutcome::Next { notice: None }),
    };
    let show = |error: Notice| {
        screen(
            state,
            &loaded,
            Page::Code {
                kind,
                email: user.email.clone(),
                notice: None,
                error: Some(error),
            },
        )
    };
    let gate = {
        let key = account_key.clone();
        state
            .store
            .run(move |conn| lockout::enter(conn, &policy, &key, Counter::SecondFactor, now()))
            .await?
    };
    if gate == Gate::Closed {
        return Ok(show(Notice::plain("mfa-locked")));
    }
    let verdict = match kind {
        CodeKind::Totp => check_totp(state, &user, &form.code).await?,
        _ => check_email_code(state, &user.id, PURPOSE_SIGN_IN, &loaded.tx.id, &form.code).await?,
    };
    let client_id = loaded.tx.request.client_id.clone();
    match verdict {
        Ok(()) => finish(state, &loaded, &user, kind_amr(kind), &submission).await,
        Err(error) => {
            let origin = submission.origin.clone();
            let method = if kind == CodeKind::Totp {
                "totp"
            } else {
                "email"
            };
            let subject = user.id.clone();
            let reason = error.id;
            let locked = state
                .store
                .run(move |conn| {
                    let at = now();
                    let locked = lockout::after_failure(conn, &policy, &account_key, gate, at)?;
                    audit::append(
                        conn,
                        &audit_event(
                            &origin,
                            "signin.second_factor_failed",
                            Some(&subject),
                            &client_id,
                            json!({ "method": method, "reason": reason }),
                        ),
                    )?;
                    if let Some(until) = locked {
                        audit::append(
                            conn,
                            &audit_event(
                                &origin,
                                "account.locked",
                                Some(&subject),
                                &client_id,
                                json!({ "counter": "second_factor", "until": until }),
                            ),
                        )?;
                    }
                    Ok(locked)
                })
                .await?;
            Ok(show(if locked.is_some() {
                Notice::plain("mfa-locked")
            } else {
                error
            }))
        }
    }
}

fn kind_amr(kind: CodeKind) -> &'static str {
    match kind {
        CodeKind::Totp => "otp",
        // RFC 8176 has no value for a code sent by email; it is a one-time password too.
        _ => "otp",
    }
}

/// Checks an authenticator code against the person's secret and marks its step used.
async fn check_totp(
    state: &AppState,
    user: &User,
    code: &str,
) -> Result<Result<(), Notice>, Error> {
    let Some(sealed) = user.totp_secret_enc.as_deref() else {
        return Ok(Err(Notice::plain("totp-wrong")));
    };
    let secret = totp::open_secret(&state.master_key, &user.id, sealed)?;
    let authenticator =
        Authenticator::new(&state.settings.sign_in.totp_issuer, &user.email, secret);
    let unix = u64::try_from(Utc::now().timestamp()).unwrap_or(0);
    match authenticator.check(code, unix, user.totp_last_step) {
        TotpCheck::Wrong => Ok(Err(Notice::plain("totp-wrong"))),
        TotpCheck::Replayed => Ok(Err(Notice::plain("totp-replayed"))),
        TotpCheck::Accepted(step) => {
            let id = user.id.clone();
            let fresh = state
                .store
                .run(move |conn| users::accept_totp_step(conn, &id, step))
                .await?;
            // Another request used this step (or a later one) in the meantime.
            Ok(if fresh {
                Ok(())
            } else {
                Err(Notice::plain("totp-replayed"))
            })
        }
    }
}

/// Judges an emailed code among those sent in the login transaction `transaction`, consuming
/// it when right and counting a wrong try otherwise.
pub(super) async fn check_email_code(
    state: &AppState,
    user_id: &str,
    purpose: &'static str,
    transaction: &str,
    code: &str,
) -> Result<Result<(), Notice>, Error> {
    let hasher = state.hasher.clone();
    let user_id = user_id.to_string();
    let transaction = transaction.to_string();
    let code = code.to_string();
    Ok(state
        .store
        .run(move |conn| {
            let at = now();
            let codes =
                one_time_codes::recent(conn, &user_id, purpose, Some(&transaction), CODES_JUDGED)?;
            Ok(match email_code::judge(&hasher, &codes, &code, at) {
                CodeVerdict::Accept(id) => {
                    if one_time_codes::consume(conn, &id, at)? {
                        Ok(())
                    } else {
                        Err(Notice::plain("code-used"))
                    }
                }
                CodeVerdict::Wrong(id) => {
                    let max = codes.first().map_or(0, |c| c.max_attempts);
                    match one_time_codes::register_failure(conn, &id, at)? {
                        Some(tries) if tries < max => {
                            Err(Notice::count("code-wrong", "tries", i64::from(max - tries)))
                        }
                        _ => Err(Notice::plain("code-too-many")),
                    }
                }
                CodeVerdict::Expired => Err(Notice::plain("code-expired")),
                CodeVerdict::Used => Err(Notice::plain("code-used")),
                CodeVerdict::Replaced => Err(Notice::plain("code-replaced")),
                CodeVerdict::TooManyTries => Err(Notice::plain("code-too-many")),
                CodeVerdict::NoLiveCode => Err(Notice::plain("code-none")),
            })
        })
        .await?)
}
