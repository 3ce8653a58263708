//! What the demo sets up: the two demo portals as registered clients of Guichet, bound next to
//! it in the same process, and one demo member.

use std::net::SocketAddr;

use anyhow::Context;
use idp::config::{ClientKind, ClientSettings, SecretString, Settings};

/// The demo member, imported with no password: the first login sets one.
pub const DEMO_MEMBER: &str = "marie.tremblay@example.org";
/// The demo's staff member: helpdesk, administrator and auditor.
pub const DEMO_STAFF: &str = "soutien@example.org";

/// Where the portals run and the secrets they share with Guichet for this run.
pub struct DemoPlan {
    pub file_portal_url: String,
    pub atip_url: String,
    file_portal_bind: SocketAddr,
    atip_bind: SocketAddr,
    issuer: String,
    file_secret: String,
    atip_secret: String,
}

fn port_from_env(name: &str, default: u16) -> anyhow::Result<u16> {
    match std::env::var(name) {
        Ok(text) => text
            .parse()
            .with_context(|| format!("{name} must be a port number, not `{text}`")),
        Err(_) => Ok(default),
    }
}

impl DemoPlan {
    /// Portals on the public URL's host, ports `DEMO_FILE_PORTAL_PORT` (8081) and
    /// `DEMO_ATIP_PORT` (8082); fresh client secrets for this run.
    pub fn from_env(settings: &Settings) -> anyhow::Result<Self> {
        let public = settings.public_url()?;
        let host = public.host_str().unwrap_or("localhost").to_string();
        let bind_ip = settings.bind_addr()?.ip();
        let file_port = port_from_env("DEMO_FILE_PORTAL_PORT", 8081)?;
        let atip_port = port_from_env("DEMO_ATIP_PORT", 8082)?;
        Ok(Self {
            file_portal_url: format!("http://{host}:{file_port}"),
            atip_url: format!("http://{host}:{atip_port}"),
            file_portal_bind: SocketAddr::new(bind_ip, file_port),
            atip_bind: SocketAddr::new(bind_ip, atip_port),
            issuer: settings.issuer(),
            file_secret: idp::oidc::flow::random_token(),
            atip_secret: idp::oidc::flow::random_token(),
        })
    }

    /// Registers both portals (unless the configuration already declares them), and an
    /// example helpdesk for the pages' "contact us" (unless the configuration names one).
    pub fn register(&self, settings: &mut Settings) {
        if settings.help == idp::config::HelpSettings::default() {
            settings.help = idp::config::HelpSettings {
                phone: Some("514 555-0100".into()),
                email: Some(DEMO_STAFF.into()),
                url: None,
            };
        }
        let portal = |id: &str, name: &str, url: &str, secret: &str| ClientSettings {
            id: id.into(),
            name: name.into(),
            kind: ClientKind::Confidential,
            secret: Some(SecretString::new(secret)),
            redirect_uris: vec![format!("{url}/callback")],
            post_logout_redirect_uris: vec![format!("{url}/")],
            backchannel_logout_uri: Some(format!("{url}/backchannel-logout")),
            scopes: ["openid", "profile", "email"].map(String::from).to_vec(),
            grants: ["authorization_code", "refresh_token"]
                .map(String::from)
                .to_vec(),
            id_token_alg: "RS256".into(),
            first_party: true,
            first_factor: "password".into(),
            required_level: "mfa".into(),
            jwks: None,
        };
        for client in [
            portal(
                "file-portal",
                "Portail des membres / Member portal",
                &self.file_portal_url,
                &self.file_secret,
            ),
            portal(
                "atip-portal",
                "AIPRP en ligne / ATIP Online",
                &self.atip_url,
                &self.atip_secret,
            ),
        ] {
            if !settings.clients.iter().any(|c| c.id == client.id) {
                settings.clients.push(client);
            }
        }
    }

    /// Binds both portals (inside a Tokio runtime).
    pub fn bind_portals(&self) -> anyhow::Result<(portals::app::Running, portals::app::Running)> {
        let file = portals::PortalSettings::new(
            portals::PortalKind::FilePortal,
            &self.file_portal_url,
            &self.issuer,
            &self.file_secret,
        )?;
        let atip = portals::PortalSettings::new(
            portals::PortalKind::Atip,
            &self.atip_url,
            &self.issuer,
            &self.atip_secret,
        )?;
        Ok((
            portals::app::bind(file, self.file_portal_bind)?,
            portals::app::bind(atip, self.atip_bind)?,
        ))
    }
}

/// Adds the demo member and the demo staff member (helpdesk, admin, auditor) unless present;
/// true when the member was added. Both start without a password: the first-login journey.
pub fn seed_member(state: &idp::app::AppState) -> anyhow::Result<bool> {
    use idp::store::roles::{self, Role};
    let mut conn = state.store.connection()?;
    let member = seed_person(&mut conn, DEMO_MEMBER, Some("12345"), "Marie", "Tremblay")?;
    if seed_person(&mut conn, DEMO_STAFF, None, "Luc", "Gagnon")? {
        let staff = idp::store::users::find_by_email(&mut conn, DEMO_STAFF)?
            .ok_or_else(|| anyhow::anyhow!("the demo staff member vanished"))?;
        for role in [Role::Helpdesk, Role::Admin, Role::Auditor] {
            roles::grant(&mut conn, &staff.id, role, idp::store::now())?;
        }
    }
    Ok(member)
}

fn seed_person(
    conn: &mut idp::store::DbConnection,
    email: &str,
    member_code: Option<&str>,
    given_name: &str,
    family_name: &str,
) -> anyhow::Result<bool> {
    use idp::store::users::{self, NewUser};
    if users::find_by_email(conn, email)?.is_some() {
        return Ok(false);
    }
    users::insert(
        conn,
        &NewUser {
            id: uuid::Uuid::new_v4().to_string(),
            email: email.into(),
            member_code: member_code.map(str::to_string),
            given_name: given_name.into(),
            family_name: family_name.into(),
            locale: "fr-CA".into(),
            password_hash: None,
            must_reset: true,
        },
        idp::store::now(),
    )?;
    Ok(true)
}
