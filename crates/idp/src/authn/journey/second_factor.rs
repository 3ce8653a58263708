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
    // The authenticator's code is judged before the database transaction (it needs the
    // person's secret, nothing stored), but only acted on inside it.
    let totp = match kind {
        CodeKind::Totp => Some(totp_verdict(state, &user, &form.code)?),
        _ => None,
    };
    let Some(completion) =
        Completion::new(state, &loaded, &user, kind_amr(kind), &submission.origin)
    else {
        return Ok(expired(Some(&loaded), &submission.hints));
    };
    let method = if kind == CodeKind::Totp {
        "totp"
    } else {
        "email"
    };
    let hasher = state.hasher.clone();
    let origin = submission.origin.clone();
    let client_id = loaded.tx.request.client_id.clone();
    let subject = user.id.clone();
    let transaction = loaded.tx.id.clone();
    let code = form.code;
    // One database transaction: the attempt is counted (on PostgreSQL the counter's row stays
    // locked until the end, on SQLite the write lock is held), judged, and either finishes the
    // sign-in or records the failure. Concurrent guesses for one account go through it one
    // at a time, so no more of them are judged than the lockout allows.
    let attempt = state
        .store
        .run(move |conn| {
            crate::store::write_transaction(conn, |conn| {
                let at = now();
                let gate = lockout::enter(conn, &policy, &account_key, Counter::SecondFactor, at)?;
                if gate == Gate::Closed {
                    return Ok(Attempt::Locked);
                }
                let verdict = match totp {
                    Some(check) => accept_totp(conn, &subject, check)?,
                    None => judge_email_code(
                        conn,
                        &hasher,
                        &subject,
                        PURPOSE_SIGN_IN,
                        &transaction,
                        &code,
                        at,
                    )?,
                };
                let error = match verdict {
                    Ok(()) => return Ok(Attempt::Finished(completion.run(conn, &hasher)?)),
                    Err(error) => error,
                };
                let locked = lockout::after_failure(conn, &policy, &account_key, gate, at)?;
                audit::append(
                    conn,
                    &audit_event(
                        &origin,
                        "signin.second_factor_failed",
                        Some(&subject),
                        &client_id,
                        json!({ "method": method, "reason": error.id }),
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
                Ok(Attempt::Failed {
                    error,
                    locked: locked.is_some(),
                })
            })
        })
        .await?;
    Ok(match attempt {
        Attempt::Locked | Attempt::Failed { locked: true, .. } => show(Notice::plain("mfa-locked")),
        Attempt::Failed { error, .. } => show(error),
        Attempt::Finished(done) => finished(state, &loaded, &user, &submission, done),
    })
}

/// How one second-factor attempt ended.
enum Attempt {
    /// Refused unjudged: the account is locked.
    Locked,
    /// A wrong, replayed, expired or spent code; `locked` when this failure locked the account.
    Failed { error: Notice, locked: bool },
    /// The code was right: the sign-in finished (`None`: another submission finished it).
    Finished(Option<Finished>),
}

fn kind_amr(kind: CodeKind) -> &'static str {
    match kind {
        CodeKind::Totp => "otp",
        // RFC 8176 has no value for a code sent by email; it is a one-time password too.
        _ => "otp",
    }
}

/// Judges an authenticator code against the person's secret and the last step they used,
/// without storing anything; [`accept_totp`] then marks the step used.
fn totp_verdict(state: &AppState, user: &User, code: &str) -> Result<TotpCheck, Error> {
    let Some(sealed) = user.totp_secret_enc.as_deref() else {
        return Ok(TotpCheck::Wrong);
    };
    let secret = totp::open_secret(&state.master_key, &user.id, sealed)?;
    let authenticator =
        Authenticator::new(&state.settings.sign_in.totp_issuer, &user.email, secret);
    let unix = u64::try_from(Utc::now().timestamp()).unwrap_or(0);
    Ok(authenticator.check(code, unix, user.totp_last_step))
}

/// Acts on an authenticator verdict: an accepted code's step is marked used, unless another
/// request used it (or a later one) since the person was read.
fn accept_totp(
    conn: &mut DbConnection,
    user_id: &str,
    check: TotpCheck,
) -> StoreResult<Result<(), Notice>> {
    Ok(match check {
        TotpCheck::Wrong => Err(Notice::plain("totp-wrong")),
        TotpCheck::Replayed => Err(Notice::plain("totp-replayed")),
        TotpCheck::Accepted(step) => {
            if users::accept_totp_step(conn, user_id, step)? {
                Ok(())
            } else {
                Err(Notice::plain("totp-replayed"))
            }
        }
    })
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
            judge_email_code(conn, &hasher, &user_id, purpose, &transaction, &code, now())
        })
        .await?)
}

/// [`check_email_code`] on a connection the caller holds (inside its transaction).
fn judge_email_code(
    conn: &mut DbConnection,
    hasher: &crate::crypto::KeyedHasher,
    user_id: &str,
    purpose: &'static str,
    transaction: &str,
    code: &str,
    at: chrono::NaiveDateTime,
) -> StoreResult<Result<(), Notice>> {
    let codes = one_time_codes::recent(conn, user_id, purpose, Some(transaction), CODES_JUDGED)?;
    Ok(match email_code::judge(hasher, &codes, code, at) {
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
}
