//! The helpdesk's repairs as one vocabulary: what the console's forms and the API's paths name,
//! and doing one (database change and audit row, then its mail or back-channel notices).

use super::{Actor, Outcome, Reason};
use crate::app::AppState;
use crate::error::Error;

/// One repair of a person's account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersonAction {
    ResetSecondFactor,
    Unlock,
    /// Start a contact email change to this address.
    ChangeEmail(String),
    Invite,
    Disable,
    Enable,
    EndSessions,
}

impl PersonAction {
    /// The path segments naming the actions (`/staff/people/{id}/{segment}`).
    pub const SEGMENTS: [&'static str; 7] = [
        "reset-2fa",
        "unlock",
        "email",
        "invite",
        "disable",
        "enable",
        "end-sessions",
    ];

    /// The action a path segment names; `new_email` is the email change's new address.
    pub fn parse(segment: &str, new_email: &str) -> Option<Self> {
        Some(match segment {
            "reset-2fa" => Self::ResetSecondFactor,
            "unlock" => Self::Unlock,
            "email" => Self::ChangeEmail(new_email.to_string()),
            "invite" => Self::Invite,
            "disable" => Self::Disable,
            "enable" => Self::Enable,
            "end-sessions" => Self::EndSessions,
            _ => return None,
        })
    }
}

/// Does `action` on the person `user_id`: the change and its audit row, then what follows it
/// (mail for an invitation or an email change; back-channel logouts when sessions end, which
/// disabling does too).
pub async fn act(
    state: &AppState,
    actor: &Actor,
    user_id: &str,
    action: PersonAction,
    reason: &Reason,
) -> Result<Outcome<()>, Error> {
    let (actor_c, id, reason_c) = (actor.clone(), user_id.to_string(), reason.clone());
    let hasher = state.hasher.clone();
    let store = &state.store;
    Ok(match action {
        PersonAction::ResetSecondFactor => store
            .run(move |conn| super::reset_second_factor(conn, &actor_c, &id, &reason_c))
            .await?
            .map(|_| ()),
        PersonAction::Unlock => store
            .run(move |conn| super::unlock(conn, &hasher, &actor_c, &id, &reason_c))
            .await?
            .map(|_| ()),
        PersonAction::Disable | PersonAction::Enable => {
            let disabled = action == PersonAction::Disable;
            let done = store
                .run(move |conn| super::set_disabled(conn, &actor_c, &id, disabled, &reason_c))
                .await?;
            if done.is_ok() && disabled {
                // A disabled person keeps no session anywhere.
                super::end_all_sessions(state, actor, user_id, reason)
                    .await?
                    .map(|_| ())
            } else {
                done.map(|_| ())
            }
        }
        PersonAction::EndSessions => super::end_all_sessions(state, actor, user_id, reason)
            .await?
            .map(|_| ()),
        PersonAction::Invite => {
            match store
                .run(move |conn| super::invitation(conn, &actor_c, &id, &reason_c))
                .await?
            {
                Ok(user) => {
                    super::send_invitation(&state.mail, &state.settings.issuer(), &user).await?;
                    Ok(())
                }
                Err(r) => Err(r),
            }
        }
        PersonAction::ChangeEmail(new_email) => {
            let policy = crate::authn::email_code::CodePolicy::of(&state.policy.get());
            let started = store
                .run(move |conn| {
                    super::begin_email_change(
                        conn, &hasher, &policy, &actor_c, &id, &new_email, &reason_c,
                    )
                })
                .await?;
            match started {
                Ok(started) => {
                    super::send_email_change_mails(&state.mail, &state.settings.issuer(), &started)
                        .await?;
                    Ok(())
                }
                Err(r) => Err(r),
            }
        }
    })
}
