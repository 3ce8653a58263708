//! The messages themselves: subject, plain text and HTML for each template, in French (Québec)
//! and English. The code is prominent, its validity stated, and every message says what to do
//! if the person did not ask for it.

use mail_queue::{Locale, MailJob, Template};

/// A message ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Composed {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Why a job cannot be composed: a permanent failure (the job goes to dead letters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template {template:?} needs the parameter `{parameter}`")]
pub struct ComposeError {
    pub template: Template,
    pub parameter: &'static str,
}

struct Wording {
    subject: &'static str,
    /// Lines before the code (or the whole message for notices).
    intro: &'static str,
    /// After the code; `{minutes}` is replaced.
    after: &'static str,
    /// What to do if the person did not ask for it.
    not_you: &'static str,
    /// Whether the message carries a code.
    has_code: bool,
}

fn wording(template: Template, locale: Locale) -> Wording {
    use Locale::{En, FrCa};
    use Template::*;
    match (template, locale) {
        (SignInCode, FrCa) => Wording {
            subject: "Votre code de vérification",
            intro: "Voici votre code de vérification pour vous connecter :",
            after: "Il est valide pendant {minutes} minutes et ne peut servir qu’une fois. Entrez-le à la page de connexion.",
            not_you: "Vous n’avez pas tenté de vous connecter? Ne communiquez ce code à personne et changez votre mot de passe à l’aide du lien « Première connexion ou mot de passe oublié? ». Si le problème persiste, communiquez avec nous.",
            has_code: true,
        },
        (SignInCode, En) => Wording {
            subject: "Your verification code",
            intro: "Here is your verification code to sign in:",
            after: "It is valid for {minutes} minutes and works only once. Enter it on the sign-in page.",
            not_you: "Did not try to sign in? Do not share this code with anyone and change your password with the “First login or forgot your password?” link. If the problem persists, contact us.",
            has_code: true,
        },
        (PasswordResetCode, FrCa) => Wording {
            subject: "Première connexion ou mot de passe oublié : votre code",
            intro: "Voici votre code de vérification pour choisir un nouveau mot de passe :",
            after: "Il est valide pendant {minutes} minutes et ne peut servir qu’une fois. Un nouveau code remplace le précédent.",
            not_you: "Vous n’avez rien demandé? Ignorez ce courriel : votre mot de passe reste le même. Si vous recevez ce message souvent, communiquez avec nous.",
            has_code: true,
        },
        (PasswordResetCode, En) => Wording {
            subject: "First login or forgotten password: your code",
            intro: "Here is your verification code to choose a new password:",
            after: "It is valid for {minutes} minutes and works only once. A new code replaces the previous one.",
            not_you: "Did not ask for this? Ignore this email: your password stays the same. If you receive it often, contact us.",
            has_code: true,
        },
        (EmailChangeCode, FrCa) => Wording {
            subject: "Confirmez votre nouvelle adresse courriel",
            intro: "Voici le code qui confirme cette adresse comme adresse courriel de contact de votre dossier :",
                        after: "Il est valide pendant {minutes} minutes et ne peut servir qu’une fois. Entrez-le avec cette adresse à la page « Confirmer ma nouvelle adresse courriel ».",
            not_you: "Vous n’avez pas demandé ce changement? Ignorez ce courriel et communiquez avec nous.",
            has_code: true,
        },
        (EmailChangeCode, En) => Wording {
            subject: "Confirm your new email address",
            intro: "Here is the code that confirms this address as the contact email of your file:",
                        after: "It is valid for {minutes} minutes and works only once. Enter it with this address on the “Confirm my new email address” page.",
            not_you: "Did not ask for this change? Ignore this email and contact us.",
            has_code: true,
        },
        (EmailChangeNotice, FrCa) => Wording {
            subject: "Changement de votre adresse courriel de contact",
            intro: "L’adresse courriel de contact de votre dossier est en train d’être remplacée. Elle sert aussi de nom d’utilisateur pour vous connecter.",
            after: "",
            not_you: "Vous n’êtes pas à l’origine de ce changement? Communiquez avec nous sans tarder.",
            has_code: false,
        },
        (EmailChangeNotice, En) => Wording {
            subject: "Your contact email address is changing",
            intro: "The contact email address of your file is being replaced. It is also your username to sign in.",
            after: "",
            not_you: "Did not make this change? Contact us right away.",
            has_code: false,
        },
        (LockoutNotice, FrCa) => Wording {
            subject: "Votre compte est temporairement verrouillé",
            intro: "Après plusieurs tentatives de connexion infructueuses, votre compte a été temporairement verrouillé. Réessayez plus tard, ou utilisez « Première connexion ou mot de passe oublié? » pour réinitialiser votre mot de passe, ce qui le déverrouille.",
            after: "",
            not_you: "Ce n’était pas vous? Réinitialisez votre mot de passe et communiquez avec nous.",
            has_code: false,
        },
        (LockoutNotice, En) => Wording {
            subject: "Your account is temporarily locked",
            intro: "After several failed sign-in attempts, your account was temporarily locked. Try again later, or use “First login or forgot your password?” to reset your password, which unlocks it.",
            after: "",
            not_you: "Was it not you? Reset your password and contact us.",
            has_code: false,
        },
        (AccountConfirmation, FrCa) => Wording {
            subject: "Votre compte est activé",
            intro: "Votre compte est activé : vous vous connectez désormais avec votre adresse courriel, votre mot de passe et votre méthode de vérification.",
            after: "",
            not_you: "Vous n’avez pas activé ce compte? Communiquez avec nous.",
            has_code: false,
        },
        (AccountConfirmation, En) => Wording {
            subject: "Your account is activated",
            intro: "Your account is activated: you now sign in with your email address, your password and your verification method.",
            after: "",
                        not_you: "Did not activate this account? Contact us.",
            has_code: false,
        },
        (Invitation, FrCa) => Wording {
            subject: "Activez votre compte",
            intro: "Un compte a été préparé pour vous. Pour l’activer, ouvrez la page de connexion, sélectionnez « Première connexion ou mot de passe oublié? » et entrez cette adresse courriel : vous recevrez un code de vérification, puis vous choisirez votre mot de passe et votre méthode de vérification.",
            after: "",
            not_you: "Vous ne vous attendiez pas à ce message? Ignorez-le, ou communiquez avec nous.",
            has_code: false,
        },
        (Invitation, En) => Wording {
            subject: "Activate your account",
            intro: "An account was prepared for you. To activate it, open the sign-in page, select “First login or forgot your password?” and enter this email address: you will receive a verification code, then choose your password and your verification method.",
            after: "",
            not_you: "Not expecting this message? Ignore it, or contact us.",
            has_code: false,
        },
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A value the sender gave, if it can go in a message as it is: short, on one line, without
/// what would break out of an HTML attribute.
fn plain_parameter<'a>(job: &'a MailJob, name: &str) -> Option<&'a str> {
    job.parameters.get(name).map(String::as_str).filter(|v| {
        !v.is_empty()
            && v.chars().count() <= 254
            && !v
                .chars()
                .any(|c| c.is_control() || matches!(c, '"' | '<' | '>'))
    })
}

/// "To reach us:" and the helpdesk's telephone number, email address and page the job
/// carries, as text and as HTML links; `None` when it carries none.
fn help_line(job: &MailJob) -> Option<(String, String)> {
    let phone = plain_parameter(job, mail_queue::PARAM_HELP_PHONE);
    let email = plain_parameter(job, mail_queue::PARAM_HELP_EMAIL).filter(|e| e.contains('@'));
    let url = plain_parameter(job, mail_queue::PARAM_HELP_URL)
        .filter(|u| u.starts_with("https://") || u.starts_with("http://"));
    let mut text = Vec::new();
    let mut links = Vec::new();
    if let Some(phone) = phone {
        let number = mail_queue::dialable(phone);
        text.push(phone.to_string());
        links.push(format!(
            "<a href=\"tel:{}\">{}</a>",
            escape(&number),
            escape(phone)
        ));
    }
    if let Some(email) = email {
        text.push(email.to_string());
        links.push(format!(
            "<a href=\"mailto:{}\">{}</a>",
            escape(email),
            escape(email)
        ));
    }
    if let Some(url) = url {
        text.push(url.to_string());
        links.push(format!("<a href=\"{}\">{}</a>", escape(url), escape(url)));
    }
    if text.is_empty() {
        return None;
    }
    let lead = match job.locale {
        Locale::FrCa => "Pour nous joindre :",
        Locale::En => "To reach us:",
    };
    Some((
        format!("{lead} {}", text.join(" · ")),
        format!("{} {}", escape(lead), links.join(" · ")),
    ))
}

/// Composes `job` in its language.
pub fn compose(job: &MailJob) -> Result<Composed, ComposeError> {
    let w = wording(job.template, job.locale);
    let minutes = job
        .parameters
        .get("valid_minutes")
        .filter(|m| m.chars().all(|c| c.is_ascii_digit()) && !m.is_empty())
        .map_or("10", String::as_str);
    let after = w.after.replace("{minutes}", minutes);
    let code = if w.has_code {
        let code = job
            .parameters
            .get("code")
            .filter(|c| !c.is_empty() && c.chars().all(|ch| ch.is_ascii_alphanumeric()))
            .ok_or(ComposeError {
                template: job.template,
                parameter: "code",
            })?;
        Some(code.as_str())
    } else {
        None
    };
    let lang = match job.locale {
        Locale::FrCa => "fr-CA",
        Locale::En => "en",
    };
    let mut text = format!("{}\n\n", w.intro);
    let mut html = format!(
        "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\"><title>{}</title></head>\
         <body style=\"font-family:Arial,sans-serif;color:#1b1b1b;line-height:1.5\"><p>{}</p>",
        escape(w.subject),
        escape(w.intro)
    );
    if let Some(code) = code {
        text.push_str(&format!("    {code}\n\n"));
        html.push_str(&format!(
            "<p style=\"font-size:32px;font-weight:bold;letter-spacing:6px;margin:16px 0\">{}</p>",
            escape(code)
        ));
    }
    if !after.is_empty() {
        text.push_str(&format!("{after}\n\n"));
        html.push_str(&format!("<p>{}</p>", escape(&after)));
    }
    // The page where the person goes next, when the sender names one.
    if let Some(link) = job.parameters.get("link").filter(|l| {
        (l.starts_with("https://") || l.starts_with("http://"))
            && !l
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '<')
    }) {
        text.push_str(&format!("{link}\n\n"));
        html.push_str(&format!(
            "<p><a href=\"{}\">{}</a></p>",
            escape(link),
            escape(link)
        ));
    }
    text.push_str(w.not_you);
    text.push('\n');
    html.push_str(&format!(
        "<p style=\"color:#555\">{}</p>",
        escape(w.not_you)
    ));
    if let Some((line, links)) = help_line(job) {
        text.push_str(&format!("\n{line}\n"));
        html.push_str(&format!("<p style=\"color:#555\">{links}</p>"));
    }
    html.push_str("</body></html>");
    Ok(Composed {
        subject: w.subject.to_string(),
        text,
        html,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn job(template: Template, locale: Locale, code: Option<&str>) -> MailJob {
        let mut parameters = BTreeMap::new();
        if let Some(code) = code {
            parameters.insert("code".into(), code.into());
        }
        parameters.insert("valid_minutes".into(), "10".into());
        MailJob {
            version: mail_queue::CONTRACT_VERSION,
            id: "j1".into(),
            recipient: "marie@example.org".into(),
            template,
            locale,
            parameters,
            created_at: chrono::Utc::now(),
            expires_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn a_code_mail_shows_the_code_its_validity_and_what_to_do() {
        let fr = compose(&job(Template::SignInCode, Locale::FrCa, Some("493817"))).expect("fr");
        assert_eq!(fr.subject, "Votre code de vérification");
        assert!(fr.text.contains("493817") && fr.html.contains("493817"));
        assert!(fr.text.contains("10 minutes"));
        assert!(fr.text.contains("Vous n’avez pas tenté"));
        assert!(fr.html.starts_with("<!doctype html><html lang=\"fr-CA\">"));
        let en = compose(&job(
            Template::PasswordResetCode,
            Locale::En,
            Some("111222"),
        ))
        .expect("en");
        assert!(en.subject.starts_with("First login"));
        assert!(en.text.contains("valid for 10 minutes"));
        assert!(en.text.contains("Did not ask for this?"));
    }

    #[test]
    fn every_template_composes_in_both_languages() {
        for template in [
            Template::SignInCode,
            Template::PasswordResetCode,
            Template::EmailChangeCode,
            Template::EmailChangeNotice,
            Template::LockoutNotice,
            Template::AccountConfirmation,
            Template::Invitation,
        ] {
            for locale in [Locale::FrCa, Locale::En] {
                let c = compose(&job(template, locale, Some("123456"))).expect("composes");
                assert!(!c.subject.is_empty() && !c.text.is_empty());
                assert!(c.html.ends_with("</body></html>"));
            }
        }
    }

    #[test]
    fn the_helpdesk_the_job_names_is_how_to_reach_us() {
        let plain = compose(&job(Template::LockoutNotice, Locale::En, None)).expect("en");
        assert!(!plain.text.contains("To reach us"), "{}", plain.text);
        let mut j = job(Template::LockoutNotice, Locale::FrCa, None);
        for (name, value) in [
            (mail_queue::PARAM_HELP_PHONE, "514 555-0100 poste 2"),
            (mail_queue::PARAM_HELP_EMAIL, "soutien@example.org"),
            (
                mail_queue::PARAM_HELP_URL,
                "https://example.org/nous-joindre",
            ),
        ] {
            j.parameters.insert(name.into(), value.into());
        }
        let fr = compose(&j).expect("fr");
        assert!(
            fr.text.ends_with(
                "\nPour nous joindre : 514 555-0100 poste 2 · soutien@example.org · \
                 https://example.org/nous-joindre\n"
            ),
            "{}",
            fr.text
        );
        assert!(
            fr.html.contains(
                "Pour nous joindre : <a href=\"tel:5145550100\">514 555-0100 poste 2</a> · \
                 <a href=\"mailto:soutien@example.org\">soutien@example.org</a> · \
                 <a href=\"https://example.org/nous-joindre\">https://example.org/nous-joindre</a></p></body></html>"
            ),
            "{}",
            fr.html
        );
        // A value that would break out of the message's HTML is left out.
        j.parameters.insert(
            mail_queue::PARAM_HELP_URL.into(),
            "https://example.org/\"><script>".into(),
        );
        let fr = compose(&j).expect("fr");
        assert!(!fr.html.contains("script") && !fr.text.contains("script"));
        assert!(fr.html.contains("mailto:soutien@example.org"));
    }

    #[test]
    fn a_code_template_without_a_code_is_refused() {
        let err = compose(&job(Template::SignInCode, Locale::En, None)).expect_err("no code");
        assert_eq!(err.parameter, "code");
        let err = compose(&job(Template::SignInCode, Locale::En, Some("<b>"))).expect_err("markup");
        assert_eq!(err.parameter, "code");
    }

    #[test]
    fn a_link_is_shown_only_when_it_is_a_plain_web_address() {
        let mut j = job(Template::Invitation, Locale::FrCa, None);
        j.parameters
            .insert("link".into(), "https://id.example.org/account".into());
        let c = compose(&j).expect("composes");
        assert!(c.text.contains("https://id.example.org/account"));
        assert!(c
            .html
            .contains("<a href=\"https://id.example.org/account\">"));
        assert!(c.subject.contains("Activez"));
        j.parameters
            .insert("link".into(), "javascript:alert(1)".into());
        let c = compose(&j).expect("composes");
        assert!(!c.text.contains("javascript") && !c.html.contains("<a "));
    }
}
