//! Choosing and activating the one second factor.

use super::*;

/// The method chosen on the activation page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChosenMethod {
    App,
    Email,
}

/// Starts activating the chosen second factor.
pub async fn submit_enrol_choice(
    state: &AppState,
    token: Option<String>,
    submission: Submission,
    choice: Option<ChosenMethod>,
) -> Result<JourneyOutcome, Error> {
    let loaded = match load_for(
        state,
        token,
        &submission,
        &[STEP_ENROL, STEP_ENROL_TOTP, STEP_ENROL_EMAIL],
    )
    .await?
    {
        Ok(l) => l,
        Err(outcome) => return Ok(outcome),
    };
    let Some(user) = loaded
        .user
        .clone()
        .filter(|u| u.mfa_method == MfaMethod::None)
    else {
        return Ok(expired(Some(&loaded), &submission.hints));
    };
    let Some(choice) = choice else {
        return Ok(screen(
            state,
            &loaded,
            Page::Enrol {
                error: Some(Notice::plain("enrol-choose-missing")),
            },
        ));
    };
    let mut data = loaded.data.clone();
    let tx = loaded.tx.clone();
    let user_id = user.id.clone();
    match choice {
        ChosenMethod::App => {
            let sealed = totp::seal_secret(&state.master_key, &user.id, &totp::new_secret())?;
            use base64::Engine;
            data.pending_totp = Some(base64::engine::general_purpose::STANDARD.encode(sealed));
            state
                .store
                .run(move |conn| advance(conn, &tx, STEP_ENROL_TOTP, Some(&user_id), &data))
                .await?;
            Ok(JourneyOutcome::Next { notice: None })
        }
        ChosenMethod::Email => {
            data.pending_totp = None;
            state
                .store
                .run(move |conn| advance(conn, &tx, STEP_ENROL_EMAIL, Some(&user_id), &data))
                .await?;
            let client_id = loaded.tx.request.client_id.clone();
            let sent = send_code(
                state,
                &user,
                PURPOSE_ENROL,
                loaded.lang,
                submission.requester(),
                &client_id,
                &loaded.tx.id,
            )
            .await?;
            Ok(JourneyOutcome::Next {
                notice: sent.first_notice(),
            })
        }
    }
}

pub(super) fn pending_secret(state: &AppState, loaded: &Loaded) -> Option<Vec<u8>> {
    use base64::Engine;
    let user = loaded.user.as_ref()?;
    let sealed = base64::engine::general_purpose::STANDARD
        .decode(loaded.data.pending_totp.as_deref()?)
        .ok()?;
    totp::open_secret(&state.master_key, &user.id, &sealed).ok()
}

pub(super) fn pending_enrolment(state: &AppState, loaded: &Loaded) -> Option<Enrolment> {
    let user = loaded.user.as_ref()?;
    let secret = pending_secret(state, loaded)?;
    Some(Authenticator::new(&state.settings.sign_in.totp_issuer, &user.email, secret).enrolment())
}

/// The first code of a new authenticator: it activates the app as the person's one method.
pub async fn submit_enrol_totp(
    state: &AppState,
    token: Option<String>,
    submission: Submission,
    form: CodeForm,
) -> Result<JourneyOutcome, Error> {
    let loaded = match load_for(state, token, &submission, &[STEP_ENROL_TOTP]).await? {
        Ok(l) => l,
        Err(outcome) => return Ok(outcome),
    };
    let (Some(user), Some(secret)) = (loaded.user.clone(), pending_secret(state, &loaded)) else {
        return Ok(JourneyOutcome::Next { notice: None });
    };
    let authenticator = Authenticator::new(
        &state.settings.sign_in.totp_issuer,
        &user.email,
        secret.clone(),
    );
    let unix = u64::try_from(Utc::now().timestamp()).unwrap_or(0);
    let step = match authenticator.check(&form.code, unix, None) {
        TotpCheck::Accepted(step) => step,
        _ => {
            return Ok(screen(
                state,
                &loaded,
                Page::EnrolTotp {
                    enrolment: authenticator.enrolment(),
                    error: Some(Notice::plain("totp-wrong")),
                },
            ))
        }
    };
    let sealed = totp::seal_secret(&state.master_key, &user.id, &secret)?;
    let activated = activate(
        state,
        &loaded,
        &user,
        MfaSetting::Totp(sealed),
        Some(step),
        &submission.origin,
    )
    .await?;
    if !activated {
        return Ok(JourneyOutcome::Next { notice: None });
    }
    let mut user = user;
    user.mfa_method = MfaMethod::Totp;
    finish(state, &loaded, &user, "otp", &submission).await
}

/// The first emailed code: it activates email as the person's one method.
pub async fn submit_enrol_email(
    state: &AppState,
    token: Option<String>,
    submission: Submission,
    form: CodeForm,
) -> Result<JourneyOutcome, Error> {
    let loaded = match load_for(state, token, &submission, &[STEP_ENROL_EMAIL]).await? {
        Ok(l) => l,
        Err(outcome) => return Ok(outcome),
    };
    let Some(user) = loaded.user.clone() else {
        return Ok(JourneyOutcome::Next { notice: None });
    };
    if let Err(error) =
        check_email_code(state, &user.id, PURPOSE_ENROL, &loaded.tx.id, &form.code).await?
    {
        return Ok(screen(
            state,
            &loaded,
            Page::Code {
                kind: CodeKind::EnrolEmail,
                email: user.email.clone(),
                notice: None,
                error: Some(error),
            },
        ));
    }
    if !activate(
        state,
        &loaded,
        &user,
        MfaSetting::Email,
        None,
        &submission.origin,
    )
    .await?
    {
        return Ok(JourneyOutcome::Next { notice: None });
    }
    let mut user = user;
    user.mfa_method = MfaMethod::Email;
    finish(state, &loaded, &user, "otp", &submission).await
}

/// Stores the person's one second factor, only if they still have none (two tabs cannot
/// activate two methods).
async fn activate(
    state: &AppState,
    loaded: &Loaded,
    user: &User,
    setting: MfaSetting,
    accepted_step: Option<i64>,
    origin: &RequestOrigin,
) -> Result<bool, Error> {
    let user_id = user.id.clone();
    let method = match &setting {
        MfaSetting::Totp(_) => "totp",
        MfaSetting::Email => "email",
        MfaSetting::None => "none",
    };
    let event = audit_event(
        origin,
        "mfa.enrolled",
        Some(&user.id),
        &loaded.tx.request.client_id,
        json!({ "method": method }),
    );
    Ok(state
        .store
        .run(move |conn| {
            crate::store::write_transaction(conn, |conn| {
                let at = now();
                // One conditional write decides: two tabs cannot activate two methods.
                if !users::set_first_mfa(conn, &user_id, &setting, at)? {
                    return Ok(false);
                }
                if let Some(step) = accepted_step {
                    // The activation code cannot be used again at the next sign-in.
                    users::accept_totp_step(conn, &user_id, step)?;
                }
                audit::append(conn, &event)?;
                Ok(true)
            })
        })
        .await?)
}
